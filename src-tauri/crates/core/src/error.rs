//! One error type for the core, whose message is written for the admin: what went
//! wrong, for which account, and what to do. Messages never contain a secret.

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
    pub fn ipc_code(self) -> Option<&'static str> {
        match self {
            ErrorKind::NeedsSignIn => Some("needs_sign_in"),
            ErrorKind::Refused => Some("refused"),
            ErrorKind::Keyring => Some("keyring_unavailable"),
            ErrorKind::Vault => Some("vault_unavailable"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
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
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with the account it concerns.
    pub fn for_account(mut self, name: &str) -> Self {
        if !self.message.contains(&format!("'{name}'")) {
            self.message = format!("account '{name}': {}", self.message);
        }
        self
    }

    pub fn to_ipc(&self) -> IpcError {
        IpcError {
            code: self.kind.ipc_code().map(str::to_string),
            message: self.message.clone(),
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

/// An error as it crosses IPC to the window: a code only where the UI acts on it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct IpcError {
    pub code: Option<String>,
    pub message: String,
}
