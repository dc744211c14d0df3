//! The tray as a desktop's panel sees it: this test is the panel. It owns
//! `org.kde.StatusNotifierWatcher` on the session's D-Bus (the protocol GNOME's
//! AppIndicator extension, KDE and most panels speak), so the real app registers its
//! tray item with it; the test then reads the item's icon and its menu over
//! `com.canonical.dbusmenu` and clicks the menu's entries as a person would.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbus::arg::{PropMap, RefArg, Variant};
use dbus::blocking::{BlockingSender, Connection};
use dbus::channel::{Channel, MatchingReceiver, Sender};
use dbus::message::MatchRule;
use dbus::Message;
use serde_json::json;
use tokenkeeper_e2e::{Display, Sandbox, Session};

const WAIT: Duration = Duration::from_secs(30);
const WATCHER: &str = "org.kde.StatusNotifierWatcher";

fn connect(bus: &str) -> Connection {
    let mut channel = Channel::open_private(bus).expect("the session bus");
    channel.register().expect("register on the bus");
    Connection::from(channel)
}

/// A minimal StatusNotifierWatcher with a host: records the items that register.
struct Panel {
    items: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Panel {
    fn start(bus: &str) -> Self {
        let conn = connect(bus);
        conn.request_name(WATCHER, false, true, true)
            .expect("own the watcher's name");
        let items: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let registered = items.clone();
        conn.start_receive(
            MatchRule::new_method_call(),
            Box::new(move |msg: Message, conn: &Connection| {
                let reply = answer(&msg, &registered);
                let _ = conn.send(reply);
                true
            }),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                let _ = conn.process(Duration::from_millis(100));
            }
        });
        Panel {
            items,
            stop,
            thread: Some(thread),
        }
    }

    fn item(&self) -> Option<(String, String)> {
        self.items.lock().unwrap().first().cloned()
    }
}

impl Drop for Panel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(msg: &Message, items: &Mutex<Vec<(String, String)>>) -> Message {
    let iface = msg.interface().map(|i| i.to_string()).unwrap_or_default();
    let member = msg.member().map(|m| m.to_string()).unwrap_or_default();
    let registered = || -> Vec<String> {
        items
            .lock()
            .unwrap()
            .iter()
            .map(|(s, p)| format!("{s}{p}"))
            .collect()
    };
    match (iface.as_str(), member.as_str()) {
        (WATCHER, "RegisterStatusNotifierItem") => {
            let arg: String = msg.read1().unwrap_or_default();
            let sender = msg.sender().map(|s| s.to_string()).unwrap_or_default();
            // Items give either their object path or their bus name.
            let item = if arg.starts_with('/') {
                (sender, arg)
            } else {
                (arg, "/StatusNotifierItem".to_string())
            };
            items.lock().unwrap().push(item);
            msg.method_return()
        }
        (WATCHER, "RegisterStatusNotifierHost") => msg.method_return(),
        ("org.freedesktop.DBus.Properties", "Get") => {
            let (_, prop): (String, String) = msg.read2().unwrap_or_default();
            match prop.as_str() {
                "IsStatusNotifierHostRegistered" => {
                    msg.method_return().append1(Variant(true))
                }
                "ProtocolVersion" => msg.method_return().append1(Variant(0i32)),
                "RegisteredStatusNotifierItems" => {
                    msg.method_return().append1(Variant(registered()))
                }
                _ => msg.error(
                    &"org.freedesktop.DBus.Error.UnknownProperty".into(),
                    c"no such property",
                ),
            }
        }
        ("org.freedesktop.DBus.Properties", "GetAll") => {
            let mut all = PropMap::new();
            all.insert(
                "IsStatusNotifierHostRegistered".into(),
                Variant(Box::new(true)),
            );
            all.insert("ProtocolVersion".into(), Variant(Box::new(0i32)));
            all.insert(
                "RegisteredStatusNotifierItems".into(),
                Variant(Box::new(registered())),
            );
            msg.method_return().append1(all)
        }
        ("org.freedesktop.DBus.Introspectable", "Introspect") => msg.method_return().append1(
            "<node><interface name=\"org.kde.StatusNotifierWatcher\">\
             <method name=\"RegisterStatusNotifierItem\"><arg type=\"s\" direction=\"in\"/></method>\
             <method name=\"RegisterStatusNotifierHost\"><arg type=\"s\" direction=\"in\"/></method>\
             <property name=\"IsStatusNotifierHostRegistered\" type=\"b\" access=\"read\"/>\
             <property name=\"ProtocolVersion\" type=\"i\" access=\"read\"/>\
             <property name=\"RegisteredStatusNotifierItems\" type=\"as\" access=\"read\"/>\
             </interface></node>",
        ),
        _ => msg.error(
            &"org.freedesktop.DBus.Error.UnknownMethod".into(),
            c"not implemented by this panel",
        ),
    }
}

/// One entry of the tray's menu.
#[derive(Debug, Clone)]
struct Entry {
    id: i32,
    label: String,
    enabled: bool,
}

/// Walks a dbusmenu layout node `(ia{sv}av)`.
fn walk(node: &dyn RefArg, out: &mut Vec<Entry>) {
    let Some(mut fields) = node.as_iter() else {
        return;
    };
    let id = fields.next().and_then(|f| f.as_i64()).unwrap_or(-1) as i32;
    let mut props: HashMap<String, String> = HashMap::new();
    if let Some(dict) = fields.next().and_then(|d| d.as_iter()) {
        let kv: Vec<&dyn RefArg> = dict.collect();
        for pair in kv.chunks(2) {
            if let [k, v] = pair {
                let key = k.as_str().unwrap_or_default().to_string();
                // Values are variants: look inside.
                let inner = v.as_iter().and_then(|mut i| i.next());
                let text = inner
                    .map(|i| {
                        i.as_str()
                            .map(str::to_string)
                            .or_else(|| i.as_i64().map(|n| n.to_string()))
                            .unwrap_or_default()
                    })
                    .unwrap_or_default();
                props.insert(key, text);
            }
        }
    }
    if id != 0 {
        out.push(Entry {
            id,
            label: props
                .get("label")
                .cloned()
                .unwrap_or_default()
                .replace('_', ""),
            enabled: props.get("enabled").map(|e| e != "0").unwrap_or(true),
        });
    }
    if let Some(children) = fields.next().and_then(|c| c.as_iter()) {
        for child in children {
            // Each child is a variant holding a node.
            if let Some(inner) = child.as_iter().and_then(|mut i| i.next()) {
                walk(inner, out);
            }
        }
    }
}

struct Tray<'a> {
    conn: Connection,
    service: &'a str,
    path: &'a str,
}

impl Tray<'_> {
    fn property(&self, name: &str) -> Option<Box<dyn RefArg>> {
        let proxy = self.conn.with_proxy(self.service, self.path, WAIT);
        let (v,): (Variant<Box<dyn RefArg>>,) = proxy
            .method_call(
                "org.freedesktop.DBus.Properties",
                "Get",
                ("org.kde.StatusNotifierItem", name),
            )
            .ok()?;
        Some(v.0)
    }

    fn menu_path(&self) -> String {
        let menu = self.property("Menu").expect("the item's Menu property");
        menu.as_str().expect("an object path").to_string()
    }

    fn entries(&self) -> Vec<Entry> {
        let path = self.menu_path();
        let call = Message::new_method_call(
            self.service,
            path.as_str(),
            "com.canonical.dbusmenu",
            "GetLayout",
        )
        .expect("a method call")
        .append3(0i32, -1i32, Vec::<String>::new());
        let reply = self
            .conn
            .send_with_reply_and_block(call, WAIT)
            .expect("GetLayout");
        // (revision, layout): the layout is a tree of (id, properties, children).
        let mut args = reply.iter_init();
        args.next();
        let layout = args.get_refarg().expect("the layout");
        let mut out = Vec::new();
        walk(&*layout, &mut out);
        out
    }

    fn click(&self, label: &str) {
        let entries = self.entries();
        let entry = entries
            .iter()
            .find(|e| e.label == label)
            .unwrap_or_else(|| panic!("no '{label}' in the tray's menu: {entries:?}"));
        let path = self.menu_path();
        let proxy = self.conn.with_proxy(self.service, path.as_str(), WAIT);
        let _: () = proxy
            .method_call(
                "com.canonical.dbusmenu",
                "Event",
                (entry.id, "clicked", Variant(0i32), 0u32),
            )
            .expect("a click on the menu");
    }

    /// The RGBA of the icon's pixel at (x, y) from the right and bottom edges, read
    /// from the PNG the item names (appindicator icons are files).
    fn icon_pixel_from_corner(&self, dx: u32, dy: u32) -> Option<[u8; 4]> {
        let name = self
            .property("IconName")
            .and_then(|n| n.as_str().map(str::to_string))
            .expect("IconName");
        let dir = self
            .property("IconThemePath")
            .and_then(|n| n.as_str().map(str::to_string))
            .unwrap_or_default();
        let file = if name.starts_with('/') {
            std::path::PathBuf::from(&name)
        } else {
            std::path::Path::new(&dir).join(format!("{name}.png"))
        };
        // The icon file is replaced on each change: a read may miss it.
        let (w, h, rgba) = image_rgba(&file)?;
        let (x, y) = (w - 1 - dx, h - 1 - dy);
        let i = ((y * w + x) * 4) as usize;
        Some([rgba[i], rgba[i + 1], rgba[i + 2], rgba[i + 3]])
    }

    /// Waits for the icon's corner to show `rgba`.
    fn wait_icon_dot(&self, rgba: [u8; 4], what: &str) {
        let mut seen = None;
        tokenkeeper_e2e::wait_for(what, WAIT, || {
            seen = self.icon_pixel_from_corner(4, 4);
            seen == Some(rgba)
        });
    }
}

/// Decodes a PNG with ImageMagick (already needed for screenshots) into RGBA.
fn image_rgba(file: &std::path::Path) -> Option<(u32, u32, Vec<u8>)> {
    let size = std::process::Command::new("identify")
        .args(["-format", "%w %h"])
        .arg(file)
        .output()
        .expect("identify (imagemagick)");
    let size = String::from_utf8_lossy(&size.stdout).to_string();
    let mut wh = size
        .split_whitespace()
        .filter_map(|n| n.parse::<u32>().ok());
    let (w, h) = (wh.next()?, wh.next()?);
    let out = std::process::Command::new("convert")
        .arg(file)
        .args(["-depth", "8", "rgba:-"])
        .output()
        .expect("convert (imagemagick)");
    (out.stdout.len() as u32 == w * h * 4).then_some((w, h, out.stdout))
}

#[test]
fn the_tray_item_shows_the_worst_state_lists_deadlines_and_its_menu_works() {
    let s = Session::start();
    let sb = Sandbox::start(&[]);
    // One account fine, one whose user token runs out in 3 days: "due soon".
    s.add_sandbox_truesight(&sb, "ts").ok();
    let user_token = sb.bigid_user_token(3, true);
    s.add_bigid_user_token("ut", &sb.url("bigid"), &user_token)
        .ok();
    let panel = Panel::start(&s.bus);
    let display = Display::start();
    let mut app = s.start_desktop(&display, &["--tray"]);
    tokenkeeper_e2e::wait_for("the app to register its tray item", WAIT, || {
        panel.item().is_some()
    });
    let (service, path) = panel.item().unwrap();
    let tray = Tray {
        conn: connect(&s.bus),
        service: &service,
        path: &path,
    };

    // The menu: the headline, the soonest deadline, then the actions.
    tokenkeeper_e2e::wait_for("the menu to say what is due", WAIT, || {
        tray.entries()
            .iter()
            .any(|e| e.label == "Tokenkeeper: 1 due soon")
    });
    let entries = tray.entries();
    let labels: Vec<&str> = entries.iter().map(|e| e.label.as_str()).collect();
    let headline = entries
        .iter()
        .find(|e| e.label.starts_with("Tokenkeeper:"))
        .unwrap();
    assert!(
        !headline.enabled,
        "the headline is not an action: {entries:?}"
    );
    // The user token runs out in 3 days less the seconds since: "2 days" (whole days
    // left), and the password account has no human deadline to list.
    let deadlines: Vec<&&str> = labels.iter().filter(|l| l.contains(": sign in")).collect();
    assert_eq!(deadlines, [&"ut: sign in within 2 days"], "{labels:?}");
    for action in ["Renew now", "Show", "Quit"] {
        assert!(labels.contains(&action), "{labels:?}");
    }
    // The icon carries an amber dot in its lower right corner.
    tray.wait_icon_dot(
        [0xf5, 0x9e, 0x0b, 0xff],
        "an amber dot on the icon (due soon)",
    );

    // The user token is revoked: the next renewal needs a human, and the tray says so.
    // "Renew now" renews at once, and a refusal shows.
    sb.admin("/bigid/revoke-user-tokens", json!({}));
    let refreshes = || sb.requests("GET /bigid/api/v1/refresh-access-token");
    let ts_renewals = || sb.requests("POST /truesight/tsws/api/v10.1/token");
    let (before, ts_before) = (refreshes(), ts_renewals());
    let ts_token = s.account_secrets("ts")["access_token"].clone();
    tray.click("Renew now");
    tokenkeeper_e2e::wait_for("Renew now to reach BigID", WAIT, || refreshes() > before);
    // Every account, not only the one due: TrueSight renewed too.
    tokenkeeper_e2e::wait_for("Renew now to reach TrueSight", WAIT, || {
        ts_renewals() > ts_before
    });
    tokenkeeper_e2e::wait_for("the renewed TrueSight token stored", WAIT, || {
        s.account_secrets("ts")["access_token"] != ts_token
    });
    tokenkeeper_e2e::wait_for("the tray to say a sign-in is needed", WAIT, || {
        tray.entries()
            .iter()
            .any(|e| e.label == "Tokenkeeper: 1 need you")
    });
    assert!(tray.entries().iter().any(|e| e.label == "ut: sign in"));
    tray.wait_icon_dot(
        [0xdc, 0x26, 0x26, 0xff],
        "a red dot on the icon (needs you)",
    );

    // "Show" opens the window (a webview starts); "Quit" ends the app.
    let pid = app.0.id();
    let webviews = || {
        tokenkeeper_e2e::descendants(pid)
            .iter()
            .filter(|(_, c)| c.starts_with("WebKitWebProces"))
            .count()
    };
    assert_eq!(webviews(), 0, "started in the tray: no window");
    tray.click("Show");
    tokenkeeper_e2e::wait_for("the window to open", WAIT, || webviews() > 0);
    tray.click("Quit");
    tokenkeeper_e2e::wait_for("the app to quit", WAIT, || {
        app.0.try_wait().ok().flatten().is_some()
    });
    let status = app.0.try_wait().unwrap().unwrap();
    assert!(status.success(), "Quit exits cleanly: {status}");
    drop(panel);
}
