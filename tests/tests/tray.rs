//! The agent's tray as a desktop's panel sees it: this test is the panel. It owns
//! `org.kde.StatusNotifierWatcher` on the session's D-Bus (the protocol GNOME's
//! AppIndicator extension, KDE and most panels speak), so `tokenkeeper agent`
//! registers its tray item with it; the test then reads the item's icon
//! (IconPixmap) and its menu over `com.canonical.dbusmenu` and clicks the menu's
//! entries as a person would: Renew now renews, Show starts the window, Quit stops
//! the agent. With no watcher on the bus the agent renews all the same, says so, and
//! shows its item once a panel starts.

use std::collections::HashMap;
use std::time::Duration;

use dbus::arg::{RefArg, Variant};
use dbus::blocking::{BlockingSender, Connection};
use dbus::Message;
use serde_json::json;
use tokenkeeper_e2e::panel::{connect, Panel};
use tokenkeeper_e2e::{descendants, wait_for, Agent, Display, Sandbox, Session};

const WAIT: Duration = Duration::from_secs(30);
/// A dbusmenu label as a panel shows it: `__` is an underscore, a lone `_` marks the
/// access key and is not shown.
fn shown(label: &str) -> String {
    label
        .split("__")
        .map(|part| part.replace('_', ""))
        .collect::<Vec<_>>()
        .join("_")
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
            label: shown(&props.get("label").cloned().unwrap_or_default()),
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

    fn labels(&self) -> Vec<String> {
        self.entries().into_iter().map(|e| e.label).collect()
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

    /// The item's IconPixmap: (width, height, ARGB32 in network byte order) per size.
    fn pixmaps(&self) -> Vec<(i32, i32, Vec<u8>)> {
        use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
        let proxy = self.conn.with_proxy(self.service, self.path, WAIT);
        proxy
            .get("org.kde.StatusNotifierItem", "IconPixmap")
            .expect("the item's IconPixmap")
    }

    /// The RGBA of each size the item offers at a fifth of the way in from its lower
    /// right corner: inside the dot at every size (the app icon is blue there).
    fn dot_pixels(&self) -> Vec<[u8; 4]> {
        self.pixmaps()
            .iter()
            .map(|(w, h, argb)| {
                assert_eq!(argb.len(), (w * h * 4) as usize, "a {w}x{h} ARGB32 icon");
                let (x, y) = (w - 1 - w / 5, h - 1 - h / 5);
                let i = ((y * w + x) * 4) as usize;
                [argb[i + 1], argb[i + 2], argb[i + 3], argb[i]]
            })
            .collect()
    }

    /// Waits for the icon's corner to show `rgba`, in every size.
    fn wait_icon_dot(&self, rgba: [u8; 4], what: &str) {
        let mut seen = Vec::new();
        wait_for(what, WAIT, || {
            seen = self.dot_pixels();
            !seen.is_empty() && seen.iter().all(|p| *p == rgba)
        });
    }
}

/// The agent's socket, from the line it says when it serves.
fn socket_of(agent: &Agent) -> std::path::PathBuf {
    let log = agent.log();
    let line = log
        .iter()
        .find(|l| l.contains("serving the vault"))
        .expect("the agent's first line");
    let after = line.split(" on ").nth(1).expect("... on SOCKET (pid N)");
    std::path::PathBuf::from(after.rsplit_once(" (pid").expect("(pid N)").0)
}

/// The `tokenkeeper-desktop` processes of this session: the agent's descendants, or
/// any with the session's HOME (a window started detached from the agent).
fn desktops(s: &Session, agent_pid: u32) -> Vec<u32> {
    let home = format!("HOME={}", s.root.path().join("home").display());
    let mut found: Vec<u32> = descendants(agent_pid)
        .into_iter()
        .filter(|(_, comm)| comm.starts_with("tokenkeeper-des"))
        .map(|(pid, _)| pid)
        .collect();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("tokenkeeper-des") || found.contains(&pid) {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if environ.split(|b| *b == 0).any(|var| var == home.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// Stops the windows a test made, also when it fails.
struct Windows(Vec<u32>);

impl Drop for Windows {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

#[test]
fn the_agents_tray_shows_the_worst_state_lists_deadlines_and_its_menu_works() {
    let s = Session::start();
    let sb = Sandbox::start(&[]);
    // One account fine, one whose user token runs out in 3 days: "due soon".
    s.add_sandbox_truesight(&sb, "ts").ok();
    let user_token = sb.bigid_user_token(3, true);
    s.add_bigid_user_token("ut", &sb.url("bigid"), &user_token)
        .ok();
    let panel = Panel::start(&s.bus);
    let display = Display::start();
    let mut agent = Agent::start_with(&s, &[], |cmd| {
        cmd.env("DISPLAY", &display.name);
    });
    wait_for("the agent to register its tray item", WAIT, || {
        panel.item().is_some()
    });
    let (service, path) = panel.item().unwrap();
    let tray = Tray {
        conn: connect(&s.bus),
        service: &service,
        path: &path,
    };

    // The menu: the headline, the soonest deadline, then the actions.
    wait_for("the menu to say what is due", WAIT, || {
        tray.labels().iter().any(|l| l == "Tokenkeeper: 1 due soon")
    });
    let entries = tray.entries();
    let labels: Vec<&str> = entries.iter().map(|e| e.label.as_str()).collect();
    let headline = entries
        .iter()
        .find(|e| e.label.starts_with("Tokenkeeper:"))
        .unwrap();
    assert_eq!(
        entries.first().map(|e| &e.label),
        Some(&headline.label),
        "the headline comes first: {labels:?}"
    );
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
    wait_for("Renew now to reach BigID", WAIT, || refreshes() > before);
    // Every account, not only the one due: TrueSight renewed too.
    wait_for("Renew now to reach TrueSight", WAIT, || {
        ts_renewals() > ts_before
    });
    wait_for("the renewed TrueSight token stored", WAIT, || {
        s.account_secrets("ts")["access_token"] != ts_token
    });
    wait_for("the tray to say a sign-in is needed", WAIT, || {
        tray.labels().iter().any(|l| l == "Tokenkeeper: 1 need you")
    });
    assert!(tray.labels().iter().any(|l| l == "ut: sign in"));
    tray.wait_icon_dot(
        [0xdc, 0x26, 0x26, 0xff],
        "a red dot on the icon (needs you)",
    );

    // "Show" starts the window process (a webview starts in it).
    let agent_pid = agent.child.id();
    assert_eq!(
        desktops(&s, agent_pid),
        Vec::<u32>::new(),
        "the agent alone: no window"
    );
    tray.click("Show");
    let mut windows = Windows(Vec::new());
    let webviews = |windows: &mut Windows| {
        windows.0 = desktops(&s, agent_pid);
        windows
            .0
            .iter()
            .flat_map(|pid| descendants(*pid))
            .filter(|(_, c)| c.starts_with("WebKitWebProces"))
            .count()
    };
    wait_for("Show to open the window (a webview)", WAIT, || {
        webviews(&mut windows) > 0
    });

    // "Quit" stops the agent as SIGTERM does: exit 0, its socket gone.
    let socket = socket_of(&agent);
    assert!(socket.exists(), "{}", socket.display());
    tray.click("Quit");
    wait_for("the agent to quit", WAIT, || {
        agent.child.try_wait().ok().flatten().is_some()
    });
    let status = agent.child.try_wait().unwrap().unwrap();
    assert!(status.success(), "Quit exits 0: {status}");
    assert!(!socket.exists(), "the socket goes with the agent");
    wait_for("the item to leave the bus", WAIT, || {
        tray.property("Menu").is_none()
    });
    drop(windows);
    drop(panel);
}

#[test]
fn with_no_tray_host_the_agent_renews_says_so_and_shows_its_item_once_a_panel_starts() {
    let sb = Sandbox::start(&["--truesight-token-ttl", "6"]);
    let s = Session::start();
    s.add_sandbox_truesight(&sb, "ts").ok();
    // Nobody owns org.kde.StatusNotifierWatcher: no panel.
    let agent = Agent::start_with(&s, &[], |_| {});
    agent.wait_for("the agent to say there is no tray host", |l| {
        l.contains("no tray host")
    });
    let mut renewals = 0;
    wait_for("renewals with no tray host", WAIT, || {
        renewals = agent.count("renewed 'ts'");
        renewals >= 2
    });
    // It serves its socket: the token it hands out works at the vendor.
    let token = s.cli(&["token", "ts"], None).ok().stdout.trim().to_string();
    assert_eq!(sb.truesight_about(&token), 200);

    // A panel starts later: the item registers with it and reads as it should.
    let panel = Panel::start(&s.bus);
    wait_for(
        "the item to register with the panel started later",
        WAIT,
        || panel.item().is_some(),
    );
    let (service, path) = panel.item().unwrap();
    let tray = Tray {
        conn: connect(&s.bus),
        service: &service,
        path: &path,
    };
    wait_for("the late panel's menu to say all is fine", WAIT, || {
        tray.labels().iter().any(|l| l == "Tokenkeeper: all fine")
    });
    let log = agent.stop();
    assert_eq!(
        log.iter().filter(|l| l.contains("no tray host")).count(),
        1,
        "one line says there is no tray host: {log:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("a tray host appeared")),
        "{log:#?}"
    );
    drop(panel);
}
