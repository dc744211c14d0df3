// How the account list is ordered, filtered and worded: pure, so it is cheap to run over 10,000 rows.
import type { AccountSummary, Method, RenewsWith, TokenState, VendorForm } from "../ipc";

export const STATE_LABEL: Record<TokenState, string> = {
  valid: "Valid",
  "renew-soon": "Renews soon",
  expired: "Expired, renews on use",
  "needs-sign-in": "Needs sign-in",
};

/** Most urgent first: what needs a human comes before what renews by itself. */
export const STATE_ORDER: TokenState[] = ["needs-sign-in", "expired", "renew-soon", "valid"];

const RANK: Record<TokenState, number> = { "needs-sign-in": 0, expired: 1, "renew-soon": 2, valid: 3 };

export const RENEWS_WITH_LABEL: Record<RenewsWith, string> = {
  "stored-password": "The stored password",
  "stored-api-key": "The stored API key",
  "stored-user-token": "The stored user token",
  "refresh-token": "A refresh token",
  nothing: "Nothing: a person signs in again",
};

const METHOD_LABEL: Record<Method, string> = {
  password: "Password",
  "user-token": "User token",
  "api-key": "API key",
  "device-code": "Browser sign-in",
};

/** The method's label as the vendor's form words it, or a plain fallback. */
export function methodLabel(forms: VendorForm[], vendor: string, method: Method): string {
  const m = forms.find((f) => f.vendor === vendor)?.methods.find((x) => x.method === method);
  return m?.label ?? METHOD_LABEL[method] ?? method;
}

/** The secret a method asks for ("Password", "API key"), or null for a browser sign-in. */
export function secretLabel(forms: VendorForm[], vendor: string, method: Method): string | null {
  const m = forms.find((f) => f.vendor === vendor)?.methods.find((x) => x.method === method);
  if (m) return m.secret_label;
  return method === "device-code" ? null : METHOD_LABEL[method];
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

function nullsLast(a: number | null, b: number | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return a - b;
}

export function byUrgency(a: AccountSummary, b: AccountSummary): number {
  return (
    RANK[a.state] - RANK[b.state] ||
    nullsLast(a.human_deadline_ms, b.human_deadline_ms) ||
    nullsLast(a.expires_at_ms, b.expires_at_ms) ||
    collator.compare(a.name, b.name)
  );
}

export function sortByUrgency(list: readonly AccountSummary[]): AccountSummary[] {
  return list.slice().sort(byUrgency);
}

export type Filter = { search: string; vendor: string; state: "" | TokenState; label: string };

export const NO_FILTER: Filter = { search: "", vendor: "", state: "", label: "" };

// The lowercased text a search looks through, built once per account object.
const haystacks = new WeakMap<AccountSummary, string>();

function haystack(a: AccountSummary): string {
  let h = haystacks.get(a);
  if (h === undefined) {
    h = [a.name, a.username ?? "", a.vendor_name, a.base_url, ...a.labels].join("\n").toLowerCase();
    haystacks.set(a, h);
  }
  return h;
}

export function applyFilter(list: readonly AccountSummary[], f: Filter): AccountSummary[] {
  const q = f.search.trim().toLowerCase();
  if (!q && !f.vendor && !f.state && !f.label) return list as AccountSummary[];
  return list.filter(
    (a) =>
      (!f.vendor || a.vendor === f.vendor) &&
      (!f.state || a.state === f.state) &&
      (!f.label || a.labels.includes(f.label)) &&
      (!q || haystack(a).includes(q)),
  );
}

/** Every label in use, sorted, for the label filter. */
export function labelsOf(list: readonly AccountSummary[]): string[] {
  const seen = new Set<string>();
  for (const a of list) for (const l of a.labels) seen.add(l);
  return [...seen].sort(collator.compare);
}

/** The vendors to filter by: every known vendor form, plus any vendor only seen in the list. */
export function vendorsOf(list: readonly AccountSummary[], forms: readonly VendorForm[]): { id: string; name: string }[] {
  const map = new Map<string, string>();
  for (const f of forms) map.set(f.vendor, f.vendor_name);
  for (const a of list) if (!map.has(a.vendor)) map.set(a.vendor, a.vendor_name);
  return [...map].map(([id, name]) => ({ id, name })).sort((a, b) => collator.compare(a.name, b.name));
}

/** Whether two copies of an account say the same: every field equal, lists element by element. */
export function sameSummary(a: AccountSummary, b: AccountSummary): boolean {
  const keys = Object.keys(a) as (keyof AccountSummary)[];
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => {
    const x = a[k];
    const y = b[k];
    if (Array.isArray(x) && Array.isArray(y)) return x.length === y.length && x.every((v, i) => v === y[i]);
    return x === y;
  });
}

/**
 * A fresh listing, sorted by urgency, that keeps what did not change: the previous list itself
 * when nothing did, else a new list that reuses the previous object of every unchanged account
 * (so its row, its search text and an open details pane are left alone).
 */
export function mergeListing(previous: readonly AccountSummary[], fresh: readonly AccountSummary[]): AccountSummary[] {
  const sorted = sortByUrgency(fresh);
  if (sorted.length === previous.length && sorted.every((a, i) => sameSummary(a, previous[i]))) {
    return previous as AccountSummary[];
  }
  const before = new Map(previous.map((a) => [a.id, a]));
  return sorted.map((a) => {
    const old = before.get(a.id);
    return old && sameSummary(old, a) ? old : a;
  });
}
