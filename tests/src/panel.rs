//! A desktop's panel as the tests and the bench play it: it owns
//! `org.kde.StatusNotifierWatcher` on the session's D-Bus (the protocol GNOME's
//! AppIndicator extension, KDE and most panels speak), so a tray item registers with
//! it as at a desktop's login, and it records the items that did.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbus::arg::{PropMap, Variant};
use dbus::blocking::Connection;
use dbus::channel::{Channel, MatchingReceiver, Sender};
use dbus::message::MatchRule;
use dbus::Message;

/// The watcher's well-known name.
pub const WATCHER: &str = "org.kde.StatusNotifierWatcher";

/// A private connection to the bus at `bus`.
pub fn connect(bus: &str) -> Connection {
    let mut channel = Channel::open_private(bus).expect("the session bus");
    channel.register().expect("register on the bus");
    Connection::from(channel)
}

/// A minimal StatusNotifierWatcher with a host: records the items that register.
#[allow(missing_debug_implementations)]
pub struct Panel {
    items: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Panel {
    /// Owns the watcher's name on `bus` and answers for it until dropped.
    pub fn start(bus: &str) -> Self {
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

    /// The items registered so far: (bus name, object path) each.
    pub fn items(&self) -> Vec<(String, String)> {
        self.items.lock().unwrap().clone()
    }

    /// The first item that registered.
    pub fn item(&self) -> Option<(String, String)> {
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
