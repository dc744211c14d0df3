// Generated from the Rust types by tokenkeeper-core's ipc_types test. Do not edit:
// run `TOKENKEEPER_UPDATE_IPC=1 cargo test -p tokenkeeper-core ipc_types` instead.

export type Vendor = "bigid" | "bigfix" | "biganimal" | "immuta" | "truesight" | "oidc" | "openbao";

export type Method = "password" | "user-token" | "api-key" | "device-code";

export type RenewsWith = "stored-password" | "stored-api-key" | "stored-user-token" | "refresh-token" | "nothing";

export type TokenState = "valid" | "renew-soon" | "expired" | "needs-sign-in";

export type FieldKey = "username" | "tenant" | "iam_id" | "client_id" | "scope" | "audience" | "user_token_expires" | "token_duration" | "token_name" | "refresh_method" | "free_trial" | "role" | "callback_port";

export type AccountSummary = { id: string, name: string, vendor: Vendor, vendor_name: string, base_url: string, method: Method, username: string | null, labels: Array<string>, state: TokenState, 
/**
 * Unix milliseconds; `None` when never signed in or the vendor gives no expiry.
 */
expires_at_ms: number | null, human_deadline_ms: number | null, renews_with: RenewsWith | null, last_error: string | null, 
/**
 * The team store the account is shared in; `None` for this vault's own.
 */
team: string | null, };

export type EventKind = "added" | "signed-in" | "sign-in" | "renewed" | "renewal" | "check" | "created" | "updated" | "revoke" | "edited" | "alert";

export type Outcome = "ok" | "started" | "cancelled" | "invalid" | "failed" | "refused" | "raised" | "needs-sign-in";

export type Event = { at_ms: number, kind: EventKind, outcome: Outcome, detail: string, };

export type AccountDetail = { summary: AccountSummary, tenant: string | null, iam_id: string | null, client_id: string | null, trusts_custom_ca: boolean, 
/**
 * The vendor's other settings (scope, token lifetime, pinned certificate).
 */
settings: { [key in string]?: string }, created_at_ms: number, issued_at_ms: number | null, renew_at_ms: number | null, events: Array<Event>, };

export type AppInfo = { version: string, 
/**
 * Running against the built-in sandbox vendors with a demo vault.
 */
sandbox: boolean, data_dir: string, };

export type IpcCode = "needs_sign_in" | "refused" | "keyring_unavailable" | "vault_unavailable";

export type Remedy = { "kind": "sign_in", account: string, with_secret: boolean, } | { "kind": "trust_certificate", account: string | null, sha256: string | null, };

export type IpcError = { code: IpcCode | null, message: string, remedy: Remedy | null, };

export type DevicePrompt = { user_code: string, verification_uri: string, browser_url: string, expires_at_ms: number, };

export type BigFixToken = { id: number, name: string, 
/**
 * Unix milliseconds; `None` for a token that never expires.
 */
expires_at_ms: number | null, user: number, 
/**
 * The token this account uses (set by the vault).
 */
tracked: boolean, };

export type AlertKind = "deadline-soon" | "needs-sign-in";

export type Alert = { 
/**
 * The account's name (what the window opens on a click).
 */
account: string, kind: AlertKind, deadline_ms: number, 
/**
 * How long before the deadline this alert is for (0: the deadline passed).
 */
threshold_s: number, message: string, };

export type EngineEvent = { "type": "renewed", account: string, } | { "type": "renewal-failed", account: string, message: string, needs_human: boolean, retry_at_ms: number | null, } | { "type": "alert" } & Alert | { "type": "vault-changed" };

export type FormField = { key: FieldKey, label: string, required: boolean, help: string, default: string | null, };

export type MethodForm = { method: Method, label: string, 
/**
 * The secret the admin types once ("password", "API key"); `None` for a
 * browser sign-in.
 */
secret_label: string | null, fields: Array<FormField>, };

export type VendorForm = { vendor: Vendor, vendor_name: string, 
/**
 * The first method is the one suggested.
 */
methods: Array<MethodForm>, 
/**
 * What the instance URL looks like, as a placeholder.
 */
url_hint: string, };

export type AccountForm = { name: string, vendor: Vendor, base_url: string, method: Method, fields: Partial<Record<FieldKey, string>>, labels: Array<string>, 
/**
 * A CA certificate (PEM) this account trusts for its server (on-prem BigFix).
 */
ca_cert_pem: string | null, 
/**
 * Or the SHA-256 of the one certificate the server may present.
 */
pin_sha256: string | null, };

export type AccountEdit = { base_url: string, fields: Partial<Record<FieldKey, string>>, labels: Array<string>, };

export type Preferences = { 
/**
 * Alert this many seconds before each human deadline (largest first).
 */
alert_thresholds_s: Array<number>, 
/**
 * A copied token is cleared from the clipboard after this many seconds.
 */
clipboard_clear_s: number, 
/**
 * Start in the tray at login (the desktop's autostart entry, not the vault's).
 */
start_at_login: boolean, };

export type DeviceSignIn = { prompt: DevicePrompt, browser_opened: boolean, browser_error: string | null, };

export type SignInOutcome = { account: string, ok: boolean, 
/**
 * What happened, to show as it is: the vendor's refusal, an expired code.
 */
message: string, code: IpcCode | null, };

export type ShellEvent = "engine-event" | "sign-in-finished" | "accounts-changed" | "open-account" | "notification-failed";

export const IPC_CODE = {
  needsSignIn: "needs_sign_in",
  refused: "refused",
  keyringUnavailable: "keyring_unavailable",
  vaultUnavailable: "vault_unavailable",
} as const satisfies Record<string, IpcCode>;

export const SHELL_EVENT = {
  engineEvent: "engine-event",
  signInFinished: "sign-in-finished",
  accountsChanged: "accounts-changed",
  openAccount: "open-account",
  notificationFailed: "notification-failed",
} as const satisfies Record<string, ShellEvent>;
