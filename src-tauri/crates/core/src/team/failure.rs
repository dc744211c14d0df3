//! Why a call to the team store failed, as a type the lease and the renewal act on
//! (retry, take over, give up, ask for a login), each with a message that says what
//! to do. Messages quote the server only after scrubbing every secret that was sent.

use std::fmt;

use crate::error::{Error, ErrorKind};

/// The failures a caller of the team store acts on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The server is sealed: its operators must unseal it; nothing can be read.
    Sealed,
    /// No answer: refused connection, DNS, TLS, timeout.
    Unreachable,
    /// The node that answered is a standby with no active node to forward to (a
    /// leader election is under way), or the active node failed on its side (5xx).
    LeaderUnavailable,
    /// The token is valid but its policies do not allow this (HTTP 403).
    PermissionDenied,
    /// The token expired, was revoked, or was never valid: log in again.
    TokenInvalid,
    /// A check-and-set write lost: someone wrote a newer version first.
    CasConflict,
    /// Nothing at that path (or that version was deleted or destroyed).
    NotFound,
    /// Another holder's lease on a shared account has not expired.
    LeaseHeld,
    /// This process's lease lapsed and another holder took it: write nothing.
    LeaseLost,
    /// What was read is older than a version already seen (a standby right after a
    /// failover); reading again shortly answers the current one.
    Stale,
    /// A reader's copy of the token in use is missing or older than the secrets it
    /// would be copied from: a member's or server's next renewal writes it.
    CopyBehind,
    /// The request itself is wrong (a bad mount, path or setting).
    Usage,
    /// The server answered, but not as the API documents.
    Protocol,
}

impl Failure {
    /// Whether trying again (with backoff) may succeed without anyone acting.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Failure::Unreachable | Failure::LeaderUnavailable | Failure::Stale
        )
    }

    /// The core's error family for this failure, which sets the CLI's exit code.
    pub fn kind(self) -> ErrorKind {
        match self {
            Failure::Sealed | Failure::Unreachable | Failure::LeaderUnavailable => {
                ErrorKind::Network
            }
            Failure::PermissionDenied => ErrorKind::Refused,
            Failure::TokenInvalid => ErrorKind::NeedsSignIn,
            Failure::CasConflict
            | Failure::LeaseHeld
            | Failure::LeaseLost
            | Failure::Stale
            | Failure::CopyBehind => ErrorKind::Vault,
            Failure::NotFound | Failure::Usage => ErrorKind::Usage,
            Failure::Protocol => ErrorKind::Vendor,
        }
    }
}

/// A failure of the team store with the admin's message. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamError {
    failure: Failure,
    message: String,
}

impl TeamError {
    pub fn new(failure: Failure, message: impl Into<String>) -> Self {
        Self {
            failure,
            message: message.into(),
        }
    }

    pub fn failure(&self) -> Failure {
        self.failure
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TeamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TeamError {}

impl From<TeamError> for Error {
    fn from(e: TeamError) -> Self {
        Error::new(e.failure.kind(), e.message)
    }
}

pub type TeamResult<T> = std::result::Result<T, TeamError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_lands_in_the_family_the_cli_acts_on() {
        let e: Error = TeamError::new(Failure::PermissionDenied, "no").into();
        assert_eq!(e.kind(), ErrorKind::Refused);
        let e: Error = TeamError::new(Failure::TokenInvalid, "log in").into();
        assert_eq!(e.kind(), ErrorKind::NeedsSignIn);
        assert!(Failure::LeaderUnavailable.is_transient());
        assert!(!Failure::CasConflict.is_transient());
        assert!(!Failure::Sealed.is_transient());
    }
}
