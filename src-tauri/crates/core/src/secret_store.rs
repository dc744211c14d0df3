//! Where secrets live: the OS keyring (Secret Service on Linux), one item per account
//! under a service name unique to the vault's folder. Every call has a deadline, so a
//! missing, locked or crashed keyring is a clear error in about 2 s, never a hang;
//! a write (which follows a read that answered) is given longer, because giving up on
//! a slow write of a rotated refresh token would report as failed what may yet land.
//! On Linux, reads go first through one shared Secret Service session (`session`).

#[cfg(target_os = "linux")]
mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(target_os = "linux")]
use std::sync::Arc;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// A keyring holding the items of one vault, keyed by a per-vault item name.
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    fn get(&self, item: &str) -> Result<Option<Zeroizing<String>>>;
    fn set(&self, item: &str, value: &str) -> Result<()>;
    /// Deletes the item; an item that is not there is not an error.
    fn delete(&self, item: &str) -> Result<()>;
    /// Where the items are, for messages: "Secret Service, service 'tokenkeeper/…'".
    fn describe(&self) -> String;
}

/// How long a keyring read may take before it is reported as not answering.
pub const KEYRING_DEADLINE: Duration = Duration::from_secs(2);

/// How long a keyring write or delete may take: a large keyring on a busy machine
/// rewrites its file on every store (about 125 ms with 1,000 items here, idle).
pub const KEYRING_WRITE_DEADLINE: Duration = Duration::from_secs(15);

/// Whether a call only reads (nothing changes if it is abandoned) or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

impl Access {
    fn deadline(self) -> Duration {
        match self {
            Access::Read => KEYRING_DEADLINE,
            Access::Write => KEYRING_WRITE_DEADLINE,
        }
    }
}

/// The OS keyring through the `keyring` crate; on Linux, reads first through one
/// Secret Service session kept for the process (and its clones of this value).
#[derive(Debug, Clone)]
pub struct OsKeyring {
    service: String,
    #[cfg(target_os = "linux")]
    link: Arc<session::SharedLink>,
}

impl OsKeyring {
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            #[cfg(target_os = "linux")]
            link: Arc::default(),
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// Runs one keyring call on its own thread and waits at most its deadline: a
    /// Secret Service that hangs (a prompt nobody sees, a daemon being restarted)
    /// costs the caller seconds, not forever.
    fn call<T: Send + 'static>(
        &self,
        what: &'static str,
        item: &str,
        access: Access,
        op: impl FnOnce(keyring::Entry) -> keyring::Result<T> + Send + 'static,
    ) -> Result<T> {
        let entry = keyring::Entry::new(&self.service, item).map_err(|e| map_error(what, e))?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("keyring-call".into())
            .spawn(move || {
                let _ = tx.send(op(entry));
            })
            .map_err(|e| Error::internal(format!("could not start a keyring call: {e}")))?;
        let deadline = access.deadline();
        match rx.recv_timeout(deadline) {
            Ok(result) => result.map_err(|e| map_error(what, e)),
            Err(_) if access == Access::Read => Err(Error::keyring(format!(
                "the OS keyring did not answer within {} s while trying to {what}: \
                 it may be locked behind a prompt or restarting. Unlock it (or log in \
                 to the desktop session) and try again; nothing was changed",
                deadline.as_secs()
            ))),
            // The request was sent: the keyring may still carry it out.
            Err(_) => Err(Error::keyring(format!(
                "the OS keyring did not confirm within {} s that it could {what}: it may \
                 be locked behind a prompt or overloaded, and may yet do it. Unlock it \
                 and try again; the next renewal uses whatever the keyring holds",
                deadline.as_secs()
            ))),
        }
    }
}

fn map_error(what: &str, e: keyring::Error) -> Error {
    let detail = e.to_string();
    let lower = detail.to_lowercase();
    let advice = if lower.contains("locked")
        || lower.contains("prompt")
        || lower.contains("dismissed")
    {
        "The keyring is locked: unlock it (log in to the desktop session, or open your \
         keyring manager and unlock the 'login' collection) and try again"
    } else if lower.contains("dbus") || lower.contains("d-bus") || lower.contains("org.freedesktop")
    {
        "No Secret Service answered on the session D-Bus: start gnome-keyring (or \
         KeePassXC's Secret Service) in this session and try again"
    } else {
        "Check that the OS keyring is running and unlocked, then try again"
    };
    Error::keyring(format!(
        "the OS keyring failed to {what} ({detail}). {advice}; nothing was changed"
    ))
}

impl SecretStore for OsKeyring {
    fn get(&self, item: &str) -> Result<Option<Zeroizing<String>>> {
        #[cfg(target_os = "linux")]
        let (link, service, user) = (self.link.clone(), self.service.clone(), item.to_string());
        let read = move |entry: keyring::Entry| {
            // The keyring crate's own search: its attributes for `Entry::new`.
            #[cfg(target_os = "linux")]
            if let Some(text) = link.read_text(
                &[
                    ("target", "default"),
                    ("service", &service),
                    ("username", &user),
                ],
                std::time::Instant::now() + KEYRING_DEADLINE,
            ) {
                return Ok(Some(text));
            }
            match entry.get_password() {
                Ok(s) => Ok(Some(Zeroizing::new(s))),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(e),
            }
        };
        self.call("read a secret", item, Access::Read, read)
    }

    fn set(&self, item: &str, value: &str) -> Result<()> {
        let value = Zeroizing::new(value.to_string());
        self.call("store a secret", item, Access::Write, move |entry| {
            entry.set_password(&value)
        })
    }

    fn delete(&self, item: &str) -> Result<()> {
        self.call(
            "delete a secret",
            item,
            Access::Write,
            |entry| match entry.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                Err(e) => Err(e),
            },
        )
    }

    fn describe(&self) -> String {
        format!("the OS keyring, service '{}'", self.service)
    }
}

/// An in-memory keyring for unit tests, which can be locked and counts its writes.
#[derive(Debug, Default)]
pub struct MemoryKeyring {
    items: Mutex<HashMap<String, Zeroizing<String>>>,
    locked: AtomicBool,
    writes: AtomicUsize,
    reads: AtomicUsize,
}

impl MemoryKeyring {
    pub fn set_locked(&self, locked: bool) {
        self.locked.store(locked, Ordering::SeqCst);
    }
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
    pub fn len(&self) -> usize {
        self.items.lock().map(|m| m.len()).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn check(&self) -> Result<()> {
        if self.locked.load(Ordering::SeqCst) {
            Err(Error::keyring(
                "the keyring is locked (test keyring); nothing was changed",
            ))
        } else {
            Ok(())
        }
    }
    fn items(&self) -> std::sync::MutexGuard<'_, HashMap<String, Zeroizing<String>>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SecretStore for MemoryKeyring {
    fn get(&self, item: &str) -> Result<Option<Zeroizing<String>>> {
        self.check()?;
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.items().get(item).cloned())
    }
    fn set(&self, item: &str, value: &str) -> Result<()> {
        self.check()?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.items()
            .insert(item.to_string(), Zeroizing::new(value.to_string()));
        Ok(())
    }
    fn delete(&self, item: &str) -> Result<()> {
        self.check()?;
        self.items().remove(item);
        Ok(())
    }
    fn describe(&self) -> String {
        "an in-memory test keyring".into()
    }
}
