//! Desktop notifications through `org.freedesktop.Notifications` itself, so that
//! delivery is known (the server answers with an id) rather than assumed:
//! tauri-plugin-notification reports success on Linux even when nothing is shown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbus::arg::{PropMap, Variant};
use dbus::blocking::Connection;
use dbus::message::MatchRule;

const DEST: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends notifications and remembers which account each one is about.
pub struct Notifier {
    conn: Mutex<Option<Connection>>,
    about: Arc<Mutex<HashMap<u32, String>>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Notifier {
    pub fn new() -> Self {
        Self {
            conn: Mutex::new(None),
            about: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Shows a notification about `account`; the server's id, or why nothing was shown.
    pub fn send(
        &self,
        summary: &str,
        body: &str,
        account: &str,
        urgent: bool,
    ) -> Result<u32, String> {
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(
                Connection::new_session()
                    .map_err(|e| format!("no D-Bus session for notifications: {e}"))?,
            );
        }
        let conn = slot.as_ref().expect("connected above");
        let mut hints = PropMap::new();
        // 2 = critical: stays until dismissed; 1 = normal.
        hints.insert(
            "urgency".into(),
            Variant(Box::new(if urgent { 2u8 } else { 1u8 })),
        );
        hints.insert(
            "desktop-entry".into(),
            Variant(Box::new("tokenkeeper".to_string())),
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
                // A lost bus is reconnected on the next alert.
                *slot = None;
                Err(format!(
                    "no notification server answered ({}); the alert is shown in the window and the tray",
                    e.message().unwrap_or("unknown error")
                ))
            }
        }
    }

    /// Calls `on_click(account)` when a notification of ours is clicked, from a
    /// thread of its own with its own connection.
    pub fn on_click(&self, on_click: impl Fn(String) + Send + 'static) -> Result<(), String> {
        let about = self.about.clone();
        let conn = Connection::new_session()
            .map_err(|e| format!("no D-Bus session for notifications: {e}"))?;
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
        std::thread::Builder::new()
            .name("notification-clicks".into())
            .spawn(move || loop {
                if conn.process(Duration::from_secs(3600)).is_err() {
                    break;
                }
            })
            .map_err(|e| format!("cannot start the notification listener: {e}"))?;
        Ok(())
    }
}
