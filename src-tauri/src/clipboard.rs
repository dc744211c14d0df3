//! Copying a token: it goes from the keyring to the system clipboard inside this
//! process (the webview never sees it), and is cleared after the admin's timeout
//! unless something else was copied over it meanwhile, and at the latest when the app
//! quits.
//!
//! Clearing overwrites the clipboard with nothing rather than giving it up: when a
//! clipboard's owner gives it up or goes away, clipboard managers (GNOME's mutter
//! among them) put back the last contents they saw, which would be the token.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokenkeeper_core::{Error, Secret};

/// The clipboard, kept open for the life of the app: on X11 the copying process
/// serves the contents, so closing it would take them away.
pub struct Clipboard {
    board: Mutex<Option<arboard::Clipboard>>,
    /// The digest of the token last copied, until it is cleared.
    copied: Mutex<Option<[u8; 32]>>,
}

impl std::fmt::Debug for Clipboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clipboard")
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl Clipboard {
    pub fn new() -> Self {
        Self {
            board: Mutex::new(None),
            copied: Mutex::new(None),
        }
    }

    fn copied(&self) -> std::sync::MutexGuard<'_, Option<[u8; 32]>> {
        self.copied.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Clears the clipboard if it still holds the token copied as `copied`; whether
    /// it did.
    fn clear_if_still(&self, copied: [u8; 32]) -> Result<bool, Error> {
        let still_ours = self
            .with(|b| b.get_text())
            .is_ok_and(|now| digest(&now) == copied);
        let cleared = if still_ours {
            self.with(|b| {
                use arboard::SetExtLinux;
                b.set().exclude_from_history().text(String::new())
            })
        } else {
            Ok(())
        };
        // Forgotten even if clearing failed: nothing more can be done from here, and
        // a window that waits for it would otherwise never end.
        let mut last = self.copied();
        if *last == Some(copied) {
            *last = None;
        }
        cleared.map(|()| still_ours)
    }

    /// Whether a token copied from here may still be on the clipboard (its timeout
    /// has not cleared it yet): on X11 it is served from this process.
    pub fn holds_copy(&self) -> bool {
        self.copied().is_some()
    }

    /// On quit: clears the clipboard if it still holds the token copied last, so
    /// that it does not outlive the app. Blocks (the clipboard is read and written).
    pub fn clear_on_quit(&self) {
        let Some(copied) = *self.copied() else {
            return;
        };
        match self.clear_if_still(copied) {
            // Clipboard managers copy a new clipboard when told its owner changed:
            // a moment for them to take the empty one before this process, and with it
            // the clipboard, is gone.
            Ok(true) => std::thread::sleep(Duration::from_millis(200)),
            Ok(false) => {}
            Err(e) => eprintln!("tokenkeeper-desktop: {e}"),
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut arboard::Clipboard) -> Result<T, arboard::Error>,
    ) -> Result<T, Error> {
        let mut slot = self.board.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(
                arboard::Clipboard::new()
                    .map_err(|e| Error::internal(format!("the clipboard is unavailable: {e}")))?,
            );
        }
        let board = slot
            .as_mut()
            .ok_or_else(|| Error::internal("no clipboard"))?;
        f(board).map_err(|e| Error::internal(format!("the clipboard failed: {e}")))
    }

    /// Puts `token` on the clipboard and clears it after `clear_after`, if it is
    /// still there then.
    pub fn copy(self: &Arc<Self>, token: &Secret, clear_after: Duration) -> Result<(), Error> {
        // Marked so that clipboard managers keep it out of their history.
        self.with(|b| {
            use arboard::SetExtLinux;
            b.set()
                .exclude_from_history()
                .text(token.expose().to_string())
        })?;
        let copied = digest(token.expose());
        *self.copied() = Some(copied);
        let me = self.clone();
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(clear_after).await;
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = me.clear_if_still(copied) {
                    eprintln!("tokenkeeper-desktop: {e}");
                }
            })
            .await;
        });
        Ok(())
    }
}
