//! The sender against a notification server of our own on a private session bus:
//! what the server receives (escaped only when it reads markup, an "Open" action
//! only when a click is answered), delivery known from the server's answer, an alert
//! no server took shown once one answers, and a click reaching the account's handler.
//! One test: the bus address is the process's environment.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use dbus::arg::PropMap;
use dbus::blocking::Connection;
use dbus::channel::{MatchingReceiver, Sender};
use dbus::message::MatchRule;
use dbus::Message;
use tokenkeeper_core::engine::{Alert, AlertKind};
use tokenkeeper_notify::{AlertDelivery, Notifier, Outcome, RETRY_UNDELIVERED};

const DEST: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";

/// A private `dbus-daemon`, stopped with the test.
struct Bus(Child);

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_bus() -> (Bus, String) {
    let mut child = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbus-daemon (install dbus: ./scripts/setup-debian.sh)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the bus's address");
    (Bus(child), line.trim().to_string())
}

/// What the server was asked to show.
#[derive(Debug, Clone)]
struct Received {
    summary: String,
    body: String,
    actions: Vec<String>,
    urgency: Option<u8>,
}

/// A notification server that records what it is asked to show; it says it reads
/// markup while `markup` is set.
struct Server {
    received: Arc<Mutex<Vec<Received>>>,
    markup: Arc<AtomicBool>,
    /// Asks the server to emit `ActionInvoked` for this id (0: nothing to do).
    click: Arc<AtomicU32>,
}

impl Server {
    fn start(address: &str) -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let markup = Arc::new(AtomicBool::new(true));
        let click = Arc::new(AtomicU32::new(0));
        let (ready, is_ready) = mpsc::channel();
        let (log, reads_markup, to_click) = (received.clone(), markup.clone(), click.clone());
        let address = address.to_string();
        std::thread::spawn(move || {
            let mut channel = dbus::channel::Channel::open_private(&address).expect("bus");
            channel.register().expect("register");
            let conn: Connection = channel.into();
            conn.request_name(DEST, false, true, true).expect("name");
            let next_id = AtomicU32::new(1);
            conn.start_receive(
                MatchRule::new_method_call(),
                Box::new(move |msg: Message, conn: &Connection| {
                    let reply = match msg.member().as_deref() {
                        Some("GetCapabilities") => {
                            let caps: Vec<String> = if reads_markup.load(Ordering::SeqCst) {
                                vec!["body".into(), "body-markup".into()]
                            } else {
                                vec!["body".into()]
                            };
                            msg.method_return().append1(caps)
                        }
                        Some("Notify") => {
                            let (_app, _replaces, _icon, summary, body, actions, hints, _t): (
                                String,
                                u32,
                                String,
                                String,
                                String,
                                Vec<String>,
                                PropMap,
                                i32,
                            ) = msg.read_all().expect("Notify's arguments");
                            let urgency = hints
                                .get("urgency")
                                .and_then(|v| v.0.as_u64())
                                .map(|u| u as u8);
                            log.lock().unwrap().push(Received {
                                summary,
                                body,
                                actions,
                                urgency,
                            });
                            msg.method_return()
                                .append1(next_id.fetch_add(1, Ordering::SeqCst))
                        }
                        _ => return true,
                    };
                    let _ = conn.send(reply);
                    true
                }),
            );
            ready.send(()).unwrap();
            loop {
                conn.process(Duration::from_millis(50)).expect("serve");
                let id = to_click.swap(0, Ordering::SeqCst);
                if id != 0 {
                    let signal = Message::new_signal(PATH, DEST, "ActionInvoked")
                        .unwrap()
                        .append2(id, "default");
                    let _ = conn.send(signal);
                }
            }
        });
        is_ready
            .recv_timeout(Duration::from_secs(10))
            .expect("the server on the bus");
        Server {
            received,
            markup,
            click,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn alert(account: &str, kind: AlertKind, threshold_s: i64, message: &str) -> Alert {
    Alert {
        account: account.into(),
        kind,
        deadline_ms: 0,
        threshold_s,
        message: message.into(),
    }
}

const VENDOR: &str = r#"Refused: <a href="https://evil.example/">sign in here</a> & 'now'"#;
const ESCAPED: &str =
    "Refused: &lt;a href=&quot;https://evil.example/&quot;&gt;sign in here&lt;/a&gt; \
                       &amp; &apos;now&apos;";

#[test]
fn alerts_reach_the_server_escaped_for_markup_kept_until_one_answers_and_clicks_come_back() {
    let (_bus, address) = start_bus();
    std::env::set_var("DBUS_SESSION_BUS_ADDRESS", &address);

    // No server yet: the alert is kept, and says so.
    let (outcomes, heard) = mpsc::channel();
    let delivery = AlertDelivery::start(Notifier::without_clicks(), move |o| {
        let _ = outcomes.send(o);
    })
    .expect("the delivery thread");
    delivery.deliver(alert("ut", AlertKind::NeedsSignIn, 0, VENDOR));
    let kept = heard
        .recv_timeout(Duration::from_secs(30))
        .expect("outcome");
    assert!(
        matches!(&kept, Outcome::Kept { account, .. } if account == "ut"),
        "{kept:?}"
    );

    // A server appears: the kept alert is shown, once, escaped, with no action
    // (the agent has no window to open).
    let server = Server::start(&address);
    let resent = heard
        .recv_timeout(RETRY_UNDELIVERED * 3)
        .expect("the kept alert resent");
    assert_eq!(resent, Outcome::Resent(1));
    let shown = server.received();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0].summary, "Sign-in needed");
    assert_eq!(shown[0].body, ESCAPED);
    assert!(shown[0].actions.is_empty(), "{shown:?}");
    assert_eq!(shown[0].urgency, Some(2));

    // Delivered at once now, and known to be (the server's id).
    delivery.deliver(alert(
        "bf",
        AlertKind::DeadlineSoon,
        2 * 86_400,
        "BigFix & co <soon>",
    ));
    let now = heard
        .recv_timeout(Duration::from_secs(30))
        .expect("outcome");
    assert_eq!(
        now,
        Outcome::Shown {
            account: "bf".into(),
            id: 2
        }
    );
    let shown = server.received();
    assert_eq!(shown.len(), 2, "nothing sent twice: {shown:?}");
    assert_eq!(shown[1].summary, "Sign-in due soon");
    assert_eq!(shown[1].body, "BigFix &amp; co &lt;soon&gt;");
    assert_eq!(shown[1].urgency, Some(1));

    // A server that shows plain text gets the text as it is.
    server.markup.store(false, Ordering::SeqCst);
    delivery.deliver(alert("ut", AlertKind::DeadlineSoon, 0, VENDOR));
    let plain = heard
        .recv_timeout(Duration::from_secs(30))
        .expect("outcome");
    assert!(matches!(plain, Outcome::Shown { .. }), "{plain:?}");
    let shown = server.received();
    assert_eq!(shown[2].summary, "Sign-in expired");
    assert_eq!(shown[2].body, VENDOR);

    // The window's notifier offers "Open", and a click names the account.
    server.markup.store(true, Ordering::SeqCst);
    let (clicks, clicked) = mpsc::channel();
    let window = Notifier::new(move |account| {
        let _ = clicks.send(account);
    });
    let id = window
        .alert("Sign-in needed", "BigID account 'ut'", "ut", true)
        .expect("delivered");
    let shown = server.received();
    assert_eq!(shown[3].actions, ["default", "Open"]);
    assert_eq!(shown[3].body, "BigID account &apos;ut&apos;");
    server.click.store(id, Ordering::SeqCst);
    assert_eq!(
        clicked
            .recv_timeout(Duration::from_secs(10))
            .expect("click"),
        "ut"
    );
}
