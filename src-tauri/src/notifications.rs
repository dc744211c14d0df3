//! Desktop notifications through `org.freedesktop.Notifications` itself, so that
//! delivery is known (the server answers with an id) rather than assumed:
//! tauri-plugin-notification reports success on Linux even when nothing is shown.
//! Clicks come back as `ActionInvoked`, which servers such as dunst send only to the
//! connection that sent the notification: one connection does both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbus::arg::{PropMap, Variant};
use dbus::blocking::SyncConnection;
use dbus::message::MatchRule;

const DEST: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

type OnClick = Arc<dyn Fn(String) + Send + Sync>;

/// Sends notifications and remembers which account each one is about.
pub struct Notifier {
    conn: Mutex<Option<Arc<SyncConnection>>>,
    about: Arc<Mutex<HashMap<u32, String>>>,
    on_click: Option<OnClick>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Notifier {
    /// `on_click(account)` runs when a notification of ours is clicked, on the
    /// connection's own listening thread.
    pub fn new(on_click: impl Fn(String) + Send + Sync + 'static) -> Self {
        Self {
            conn: Mutex::new(None),
            about: Arc::new(Mutex::new(HashMap::new())),
            on_click: Some(Arc::new(on_click)),
        }
    }

    /// The session bus connection, made on first use with a thread that hears clicks;
    /// a lost one is replaced on the next alert.
    fn connection(&self) -> Result<Arc<SyncConnection>, String> {
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let conn = Arc::new(
            SyncConnection::new_session()
                .map_err(|e| format!("no D-Bus session for notifications: {e}"))?,
        );
        if let Some(on_click) = self.on_click.clone() {
            let about = self.about.clone();
            let rule = MatchRule::new_signal(DEST, "ActionInvoked");
            conn.add_match(rule, move |(id, _action): (u32, String), _, _| {
                let account = about
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&id)
                    .cloned();
                if let Some(account) = account {
                    on_click(account);
                }
                true
            })
            .map_err(|e| format!("cannot listen for notification clicks: {e}"))?;
            let listening = conn.clone();
            std::thread::Builder::new()
                .name("notification-clicks".into())
                .spawn(move || {
                    // Ends when the connection is lost (and replaced by a new one).
                    while listening.process(Duration::from_secs(1)).is_ok() {}
                })
                .map_err(|e| format!("cannot start the notification listener: {e}"))?;
        }
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Shows a notification about `account`; the server's id, or why nothing was shown.
    pub fn send(
        &self,
        summary: &str,
        body: &str,
        account: &str,
        urgent: bool,
    ) -> Result<u32, String> {
        let conn = self.connection()?;
        let mut hints = PropMap::new();
        // 2 = critical: stays until dismissed; 1 = normal.
        hints.insert(
            "urgency".into(),
            Variant(Box::new(if urgent { 2u8 } else { 1u8 })),
        );
        hints.insert(
            "desktop-entry".into(),
            Variant(Box::new("tokenkeeper-desktop".to_string())),
        );
        let actions = vec!["default", "Open"];
        let result: Result<(u32,), dbus::Error> =
            conn.with_proxy(DEST, PATH, CALL_TIMEOUT).method_call(
                DEST,
                "Notify",
                (
                    "Tokenkeeper",
                    0u32,
                    "dialog-password",
                    summary,
                    body,
                    actions,
                    hints,
                    -1i32,
                ),
            );
        match result {
            Ok((id,)) => {
                self.about
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id, account.to_string());
                Ok(id)
            }
            Err(e) => {
                // A lost bus is reconnected on the next alert (its listener thread
                // ends with it); no notification server is not a lost bus.
                if !conn.channel().is_connected() {
                    *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                Err(format!(
                    "no notification server answered ({}); the alert is shown in the window and the tray",
                    e.message().unwrap_or("unknown error")
                ))
            }
        }
    }
}
