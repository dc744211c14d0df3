//! One error type for the core, whose message is written for the admin: what went
//! wrong and for which account. What to do about it is a `Remedy`, which the CLI and
//! the window each phrase their own way. Messages never contain a secret.

use std::fmt;

use serde::Serialize;
use ts_rs::TS;

/// The families of failure the CLI and the window act on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request itself is wrong: a bad flag, an invalid URL, an unknown account.
    Usage,
    /// A human must sign in again: no usable secret, or the vendor no longer accepts it.
    NeedsSignIn,
    /// The vendor refused the credentials or the permission (HTTP 401/403).
    Refused,
    /// The vendor answered, but not as documented: an HTML page, bad JSON, a 5xx.
    Vendor,
    /// The vendor could not be reached: DNS, refused connection, TLS, timeout.
    Network,
    /// The OS keyring is missing, locked, or did not answer.
    Keyring,
    /// The vault file could not be opened or written.
    Vault,
    /// A bug in Tokenkeeper.
    Internal,
}

impl ErrorKind {
    /// The CLI's exit code for this kind (documented in the README and `--help`).
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Internal => 1,
            ErrorKind::Usage => 2,
            ErrorKind::NeedsSignIn => 3,
            ErrorKind::Refused => 4,
            ErrorKind::Vendor | ErrorKind::Network => 5,
            ErrorKind::Keyring | ErrorKind::Vault => 6,
        }
    }

    /// The code the window acts on, where it acts differently; `None` elsewhere.
    pub fn ipc_code(self) -> Option<IpcCode> {
        match self {
            ErrorKind::NeedsSignIn => Some(IpcCode::NeedsSignIn),
            ErrorKind::Refused => Some(IpcCode::Refused),
            ErrorKind::Keyring => Some(IpcCode::KeyringUnavailable),
            ErrorKind::Vault => Some(IpcCode::VaultUnavailable),
            _ => None,
        }
    }
}

/// The error families the window acts on, as they cross IPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum IpcCode {
    NeedsSignIn,
    Refused,
    KeyringUnavailable,
    VaultUnavailable,
}

impl IpcCode {
    pub const ALL: [IpcCode; 4] = [
        IpcCode::NeedsSignIn,
        IpcCode::Refused,
        IpcCode::KeyringUnavailable,
        IpcCode::VaultUnavailable,
    ];
}

/// What the admin can do about an error, phrased by whoever shows it: the CLI names
/// its commands, the window its buttons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Remedy {
    /// Sign in to the account again; `with_secret` when that takes a password, key
    /// or token typed in (not a browser sign-in).
    SignIn { account: String, with_secret: bool },
    /// Trust the server's certificate: its own CA, or a pin of `sha256` when the
    /// fingerprint the server presented is known. `account` is `None` when the error
    /// arose before the account was known.
    TrustCertificate {
        account: Option<String>,
        sha256: Option<String>,
    },
}

impl Remedy {
    pub fn sign_in(account: &str, with_secret: bool) -> Self {
        Remedy::SignIn {
            account: account.to_string(),
            with_secret,
        }
    }

    pub fn trust_certificate(sha256: Option<&str>) -> Self {
        Remedy::TrustCertificate {
            account: None,
            sha256: sha256.map(str::to_string),
        }
    }

    /// The CLI's words: the command to run.
    pub fn cli_advice(&self) -> String {
        match self {
            Remedy::SignIn {
                account,
                with_secret: true,
            } => format!("Run: tokenkeeper login {account} --secret-stdin"),
            Remedy::SignIn {
                account,
                with_secret: false,
            } => format!("Run: tokenkeeper login {account}"),
            Remedy::TrustCertificate { account, sha256 } => {
                let account = account.as_deref().unwrap_or("<account>");
                let pin = match sha256 {
                    Some(sha) => format!("--pin-sha256 {sha}"),
                    None => "--pin-sha256 HEX (`tokenkeeper cert <url>` shows it)".to_string(),
                };
                format!(
                    "Trust the server's own CA with --ca-cert FILE, or pin its certificate after \
                     checking the fingerprint with your administrators: {pin}; on `tokenkeeper add`, \
                     or for an existing account: tokenkeeper trust {account} --ca-cert FILE | {pin}"
                )
            }
        }
    }

    /// The window's words: the button to use.
    pub fn window_advice(&self) -> String {
        match self {
            Remedy::SignIn { .. } => "Use “Sign in” to continue.".to_string(),
            Remedy::TrustCertificate { sha256, .. } => {
                let pin = match sha256 {
                    Some(sha) => format!("the fingerprint {sha}"),
                    None => "its SHA-256 fingerprint".to_string(),
                };
                format!(
                    "After checking with the server's administrators, give the server's CA \
                     certificate or {pin} under “Certificate trust” (for an existing account: \
                     “Edit”, then “Save certificate trust”)."
                )
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    remedy: Option<Remedy>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            remedy: None,
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }
    pub fn needs_sign_in(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NeedsSignIn, message)
    }
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Refused, message)
    }
    pub fn vendor(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Vendor, message)
    }
    pub fn network(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Network, message)
    }
    pub fn keyring(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Keyring, message)
    }
    pub fn vault(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Vault, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The plain message, without advice: for logs, history and alerts.
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn remedy(&self) -> Option<&Remedy> {
        self.remedy.as_ref()
    }

    pub fn with_remedy(mut self, remedy: Remedy) -> Self {
        self.remedy = Some(remedy);
        self
    }

    /// Prefixes the message with the account it concerns, and names it in a remedy
    /// that did not know it yet.
    pub fn for_account(mut self, name: &str) -> Self {
        if !self.message.contains(&format!("'{name}'")) {
            self.message = format!("account '{name}': {}", self.message);
        }
        if let Some(Remedy::TrustCertificate { account, .. }) = &mut self.remedy {
            account.get_or_insert_with(|| name.to_string());
        }
        self
    }

    /// The message with the CLI's advice, as the CLI prints it.
    /// The same error said after `words` ("renewal failed: …"), its kind and remedy kept.
    pub fn after(mut self, words: &str) -> Self {
        self.message = format!("{words}: {}", self.message);
        self
    }

    pub fn cli_text(&self) -> String {
        with_advice(&self.message, self.remedy.as_ref().map(Remedy::cli_advice))
    }
}

fn with_advice(message: &str, advice: Option<String>) -> String {
    match advice {
        None => message.to_string(),
        Some(advice) => {
            let message = message.trim_end();
            let stop = if message.ends_with(['.', '!', '?']) {
                ""
            } else {
                "."
            };
            format!("{message}{stop} {advice}")
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        // rusqlite's messages name SQL and constraints, never bound values.
        Error::vault(format!("the vault's database failed: {e}"))
    }
}

/// An error as it crosses IPC to the window: a code only where the UI acts on it, the
/// message with the window's advice, and the remedy for the UI to act on.
#[derive(Debug, Clone, Serialize, TS)]
pub struct IpcError {
    pub code: Option<IpcCode>,
    pub message: String,
    pub remedy: Option<Remedy>,
}

impl From<Error> for IpcError {
    fn from(e: Error) -> Self {
        IpcError {
            code: e.kind.ipc_code(),
            message: with_advice(&e.message, e.remedy.as_ref().map(Remedy::window_advice)),
            remedy: e.remedy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remedies() -> Vec<Remedy> {
        vec![
            Remedy::sign_in("ts", true),
            Remedy::sign_in("ba", false),
            Remedy::trust_certificate(Some(&"ab".repeat(32))),
            Remedy::trust_certificate(None),
            Remedy::TrustCertificate {
                account: Some("bf".into()),
                sha256: None,
            },
        ]
    }

    #[test]
    fn the_window_gets_no_cli_advice_and_the_cli_gets_its_command() {
        for remedy in remedies() {
            let e = Error::needs_sign_in("the password was refused").with_remedy(remedy.clone());
            let cli = e.cli_text();
            let ipc = IpcError::from(e.clone());
            assert!(cli.starts_with("the password was refused. "), "{cli}");
            assert!(cli.contains("tokenkeeper "), "{remedy:?}: {cli}");
            assert!(
                !ipc.message.contains("tokenkeeper ") && !ipc.message.contains("--"),
                "{remedy:?}: {}",
                ipc.message
            );
            assert!(ipc.message.starts_with("the password was refused. "));
            assert!(ipc.message.contains('“'), "names a button: {}", ipc.message);
            assert_eq!(ipc.remedy.as_ref(), Some(&remedy));
            assert_eq!(
                e.message(),
                "the password was refused",
                "the plain message stays plain"
            );
            match remedy {
                Remedy::SignIn {
                    account,
                    with_secret,
                } => {
                    assert!(
                        cli.contains(&format!("tokenkeeper login {account}")),
                        "{cli}"
                    );
                    assert_eq!(cli.contains("--secret-stdin"), with_secret, "{cli}");
                }
                Remedy::TrustCertificate { account, sha256 } => {
                    let account = account.unwrap_or_else(|| "<account>".into());
                    assert!(
                        cli.contains(&format!("tokenkeeper trust {account}")),
                        "{cli}"
                    );
                    assert!(cli.contains("--ca-cert"), "{cli}");
                    if let Some(sha) = sha256 {
                        assert!(cli.contains(&format!("--pin-sha256 {sha}")), "{cli}");
                        assert!(ipc.message.contains(&sha), "{}", ipc.message);
                    }
                }
            }
        }
    }

    #[test]
    fn an_error_without_a_remedy_reads_the_same_everywhere() {
        let e = Error::network("could not connect");
        assert_eq!(e.cli_text(), "could not connect");
        let ipc = IpcError::from(e);
        assert_eq!(ipc.message, "could not connect");
        assert_eq!(ipc.code, None);
        assert_eq!(ipc.remedy, None);
    }

    #[test]
    fn the_account_fills_in_a_certificate_remedy_that_lacked_it() {
        let e = Error::network("untrusted")
            .with_remedy(Remedy::trust_certificate(None))
            .for_account("bf");
        assert!(
            e.cli_text().contains("tokenkeeper trust bf "),
            "{}",
            e.cli_text()
        );
        assert_eq!(
            IpcError::from(e).code,
            None,
            "a network failure is shown, not acted on"
        );
    }

    #[test]
    fn codes_cross_as_their_snake_case_names() {
        let names: Vec<String> = IpcCode::ALL
            .iter()
            .map(|c| serde_json::to_string(c).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "\"needs_sign_in\"",
                "\"refused\"",
                "\"keyring_unavailable\"",
                "\"vault_unavailable\""
            ]
        );
    }
}
