//! Desktop notifications through `org.freedesktop.Notifications` itself, so that
//! delivery is known (the server answers with an id) rather than assumed:
//! tauri-plugin-notification reports success on Linux even when nothing is shown.
//! Its own crate, with no GTK, no WebKit and no tauri, so that the headless agent
//! (`tokenkeeper agent`) and the desktop window send the same notifications.
//! Clicks come back as `ActionInvoked`, which servers such as dunst send only to the
//! connection that sent the notification: one thread owns one connection and does
//! both, so no call ever waits on another thread's read. An alert that no server took
//! (none running yet at login, a crashed daemon) is kept and sent again once one
//! answers, so it is not lost.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbus::arg::{PropMap, Variant};
use dbus::blocking::Connection;
use dbus::message::MatchRule;
use tokenkeeper_core::engine::{Alert, AlertKind};

const DEST: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
/// How long a notification server may take to answer (D-Bus's own default).
const CALL_TIMEOUT: Duration = Duration::from_secs(25);
/// How often the connection's thread looks for notifications to send between reads.
const TURN: Duration = Duration::from_millis(250);
/// How long an alert no server took is kept for another try.
const KEEP_UNDELIVERED: Duration = Duration::from_secs(24 * 3600);
/// At most this many undelivered alerts are kept (the newest per account).
const MAX_UNDELIVERED: usize = 50;
/// How often [`AlertDelivery`] offers the alerts no server took again.
pub const RETRY_UNDELIVERED: Duration = Duration::from_secs(10);

type OnClick = Arc<dyn Fn(String) + Send + Sync>;

struct Notice {
    summary: String,
    body: String,
    account: String,
    urgent: bool,
    /// Whether the notification offers "Open" (only when a click is answered).
    clickable: bool,
    answer: mpsc::Sender<Result<u32, String>>,
}

/// An alert that no notification server took yet.
#[derive(Clone)]
struct Undelivered {
    summary: String,
    body: String,
    account: String,
    urgent: bool,
    since: Instant,
}

/// Sends notifications and remembers which account each one is about.
pub struct Notifier {
    worker: Mutex<Option<mpsc::Sender<Notice>>>,
    on_click: Option<OnClick>,
    undelivered: Mutex<Vec<Undelivered>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Notifier {
    /// `on_click(account)` runs when a notification of ours is clicked, on the
    /// connection's thread.
    pub fn new(on_click: impl Fn(String) + Send + Sync + 'static) -> Self {
        Self {
            worker: Mutex::new(None),
            on_click: Some(Arc::new(on_click)),
            undelivered: Mutex::new(Vec::new()),
        }
    }

    /// Notifications that offer no action: for a process that has no window to open
    /// on a click (the headless agent), so none is promised.
    pub fn without_clicks() -> Self {
        Self {
            worker: Mutex::new(None),
            on_click: None,
            undelivered: Mutex::new(Vec::new()),
        }
    }

    /// The connection's thread, started on first use; a lost bus ends it and the
    /// next alert starts another.
    fn worker(&self) -> Result<mpsc::Sender<Notice>, String> {
        let mut slot = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = slot.as_ref() {
            return Ok(tx.clone());
        }
        let conn = Connection::new_session()
            .map_err(|e| format!("no D-Bus session for notifications: {e}"))?;
        let about: Arc<Mutex<HashMap<u32, String>>> = Arc::default();
        if let Some(on_click) = self.on_click.clone() {
            let clicked = about.clone();
            conn.add_match(
                MatchRule::new_signal(DEST, "ActionInvoked"),
                move |(id, _action): (u32, String), _, _| {
                    let account = clicked
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&id)
                        .cloned();
                    if let Some(account) = account {
                        on_click(account);
                    }
                    true
                },
            )
            .map_err(|e| format!("cannot listen for notification clicks: {e}"))?;
        }
        let (tx, rx) = mpsc::channel::<Notice>();
        std::thread::Builder::new()
            .name("notifications".into())
            .spawn(move || loop {
                if conn.process(TURN).is_err() {
                    break;
                }
                while let Ok(n) = rx.try_recv() {
                    let sent = notify(&conn, &n);
                    if let (Ok(id), true) = (&sent, n.clickable) {
                        let id = *id;
                        about
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(id, n.account.clone());
                    }
                    let _ = n.answer.send(sent);
                }
                if !conn.channel().is_connected() {
                    break;
                }
            })
            .map_err(|e| format!("cannot start the notification thread: {e}"))?;
        *slot = Some(tx.clone());
        Ok(tx)
    }

    /// Shows a notification about `account`, or keeps it for `retry_undelivered`
    /// when no server takes it (and says why). Blocks until the server answers: call
    /// it off the async runtime.
    pub fn alert(
        &self,
        summary: &str,
        body: &str,
        account: &str,
        urgent: bool,
    ) -> Result<u32, String> {
        let sent = self.send(summary, body, account, urgent);
        let mut kept = self.undelivered.lock().unwrap_or_else(|p| p.into_inner());
        // The newest alert about an account is the one that matters: an older one
        // still kept would be stale once this one is shown.
        kept.retain(|u| u.account != account);
        if sent.is_err() {
            kept.push(Undelivered {
                summary: summary.to_string(),
                body: body.to_string(),
                account: account.to_string(),
                urgent,
                since: Instant::now(),
            });
            let excess = kept.len().saturating_sub(MAX_UNDELIVERED);
            kept.drain(..excess);
        }
        sent
    }

    /// Sends the alerts that no server took before, oldest first, until one fails
    /// again; those older than a day are dropped (the window and tray still show the
    /// state). How many were delivered now.
    pub fn retry_undelivered(&self) -> usize {
        let waiting: Vec<Undelivered> = {
            let mut kept = self.undelivered.lock().unwrap_or_else(|p| p.into_inner());
            kept.retain(|u| u.since.elapsed() < KEEP_UNDELIVERED);
            kept.clone()
        };
        let mut delivered = 0;
        for u in waiting {
            if self
                .send(&u.summary, &u.body, &u.account, u.urgent)
                .is_err()
            {
                break;
            }
            delivered += 1;
            self.undelivered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|k| !(k.account == u.account && k.since == u.since));
        }
        delivered
    }

    /// Whether any alert is waiting for a notification server.
    pub fn has_undelivered(&self) -> bool {
        !self
            .undelivered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Shows a notification about `account`; the server's id, or why nothing was
    /// shown. Blocks until the server answers: call it off the async runtime.
    fn send(&self, summary: &str, body: &str, account: &str, urgent: bool) -> Result<u32, String> {
        let (answer, answered) = mpsc::channel();
        let notice = Notice {
            summary: summary.to_string(),
            body: body.to_string(),
            account: account.to_string(),
            urgent,
            clickable: self.on_click.is_some(),
            answer,
        };
        if self.worker()?.send(notice).is_err() {
            // The thread ended with its bus: the next alert connects again.
            *self.worker.lock().unwrap_or_else(|p| p.into_inner()) = None;
            return Err("the session bus was lost; the next alert reconnects".into());
        }
        answered
            .recv_timeout(CALL_TIMEOUT + TURN * 2)
            .map_err(|_| "no notification server answered in time".to_string())?
    }
}

/// The summary of an alert's notification and whether it is urgent (stays until
/// dismissed): a passed deadline or a refused renewal need the admin now, a deadline
/// within the hour nearly so.
pub fn headline(alert: &Alert) -> (&'static str, bool) {
    match alert.kind {
        AlertKind::NeedsSignIn => ("Sign-in needed", true),
        AlertKind::DeadlineSoon if alert.threshold_s == 0 => ("Sign-in expired", true),
        AlertKind::DeadlineSoon => ("Sign-in due soon", alert.threshold_s <= 3600),
    }
}

/// What became of an alert handed to [`AlertDelivery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A server showed the alert about `account` (its id for the notification).
    Shown { account: String, id: u32 },
    /// No server took it (why): it is kept and offered again.
    Kept { account: String, why: String },
    /// This many alerts kept before were shown now that a server answers.
    Resent(usize),
}

/// Carries the engine's alerts to the notification server on a thread of its own,
/// in the order they were raised, so that a slow or missing server never delays a
/// renewal; every [`RETRY_UNDELIVERED`] it offers the alerts no server took again.
/// The engine already raises each threshold once per deadline: every alert handed
/// here is sent once (and kept until a server takes it).
#[derive(Debug)]
pub struct AlertDelivery {
    alerts: mpsc::Sender<Alert>,
}

impl AlertDelivery {
    /// Starts the thread; `report` hears what became of each alert (on that thread).
    pub fn start(
        notifier: Notifier,
        report: impl Fn(Outcome) + Send + 'static,
    ) -> std::io::Result<Self> {
        let (alerts, raised) = mpsc::channel::<Alert>();
        std::thread::Builder::new()
            .name("alert-delivery".into())
            .spawn(move || loop {
                match raised.recv_timeout(RETRY_UNDELIVERED) {
                    Ok(alert) => {
                        let (summary, urgent) = headline(&alert);
                        let account = alert.account.clone();
                        report(
                            match notifier.alert(summary, &alert.message, &account, urgent) {
                                Ok(id) => Outcome::Shown { account, id },
                                Err(why) => Outcome::Kept { account, why },
                            },
                        );
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if notifier.has_undelivered() {
                            let resent = notifier.retry_undelivered();
                            if resent > 0 {
                                report(Outcome::Resent(resent));
                            }
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            })?;
        Ok(Self { alerts })
    }

    /// Hands an alert over; it never blocks.
    pub fn deliver(&self, alert: Alert) {
        // The thread ends only when this sender is dropped.
        let _ = self.alerts.send(alert);
    }
}

/// The body as the server should read it: servers with the `body-markup`
/// capability parse the body as markup (a subset of XML), so vendor text such as
/// `<a href=...>` or `&` would be taken as tags and entities. The Desktop
/// Notifications spec asks for `&`, `<` and `>` to be escaped; quotes are escaped too,
/// since some servers hand the body to a full XML parser. Servers without markup
/// show the body as it is, so it is left alone for them.
fn body_for(body: &str, markup: bool) -> String {
    if !markup {
        return body.to_string();
    }
    let mut out = String::with_capacity(body.len());
    for c in body.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether the server reads bodies as markup; when it does not say, it is assumed to
/// (escaped text on a plain server shows entities; raw text on a markup server can be
/// taken for tags).
fn server_reads_markup(conn: &Connection) -> bool {
    let caps: Result<(Vec<String>,), dbus::Error> = conn
        .with_proxy(DEST, PATH, CALL_TIMEOUT)
        .method_call(DEST, "GetCapabilities", ());
    caps.map_or(true, |(caps,)| caps.iter().any(|c| c == "body-markup"))
}

fn notify(conn: &Connection, n: &Notice) -> Result<u32, String> {
    let body = body_for(&n.body, server_reads_markup(conn));
    let mut hints = PropMap::new();
    // 2 = critical: stays until dismissed; 1 = normal.
    hints.insert(
        "urgency".into(),
        Variant(Box::new(if n.urgent { 2u8 } else { 1u8 })),
    );
    hints.insert(
        "desktop-entry".into(),
        Variant(Box::new("tokenkeeper-desktop".to_string())),
    );
    let actions = if n.clickable {
        vec!["default", "Open"]
    } else {
        Vec::new()
    };
    let result: Result<(u32,), dbus::Error> =
        conn.with_proxy(DEST, PATH, CALL_TIMEOUT).method_call(
            DEST,
            "Notify",
            (
                "Tokenkeeper",
                0u32,
                "dialog-password",
                n.summary.as_str(),
                body.as_str(),
                actions,
                hints,
                -1i32,
            ),
        );
    result.map(|(id,)| id).map_err(|e| {
        format!(
            "no notification server answered ({}); the alert is shown in the window and the tray",
            e.message().unwrap_or("unknown error")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::{body_for, headline};
    use tokenkeeper_core::engine::{Alert, AlertKind};

    fn alert(kind: AlertKind, threshold_s: i64) -> Alert {
        Alert {
            account: "ut".into(),
            kind,
            deadline_ms: 0,
            threshold_s,
            message: "BigID account 'ut': sign in again".into(),
        }
    }

    #[test]
    fn the_headline_says_how_soon_and_only_the_near_deadlines_are_urgent() {
        assert_eq!(
            headline(&alert(AlertKind::NeedsSignIn, 0)),
            ("Sign-in needed", true)
        );
        assert_eq!(
            headline(&alert(AlertKind::DeadlineSoon, 0)),
            ("Sign-in expired", true)
        );
        assert_eq!(
            headline(&alert(AlertKind::DeadlineSoon, 3600)),
            ("Sign-in due soon", true)
        );
        assert_eq!(
            headline(&alert(AlertKind::DeadlineSoon, 2 * 86_400)),
            ("Sign-in due soon", false)
        );
    }

    #[test]
    fn vendor_text_is_escaped_for_servers_that_read_markup() {
        let vendor = r#"Denied: <a href="https://evil.example/">sign in here</a> & <b>'now'</b>"#;
        let body = body_for(vendor, true);
        assert_eq!(
            body,
            "Denied: &lt;a href=&quot;https://evil.example/&quot;&gt;sign in here&lt;/a&gt; \
             &amp; &lt;b&gt;&apos;now&apos;&lt;/b&gt;"
        );
        assert!(!body.contains('<') && !body.contains('>') && !body.contains('"'));
        // An entity in the vendor's text stays text.
        assert_eq!(body_for("&lt;", true), "&amp;lt;");
        // Plain servers show the text as it is.
        assert_eq!(body_for(vendor, false), vendor);
        assert_eq!(body_for("ok – ünïcode", true), "ok – ünïcode");
    }
}
