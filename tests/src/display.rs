//! The display the real window needs: an Xvfb of the test's own, the X windows on it
//! (mapped? closed as a window manager would), the desktop app started on it, and
//! where screenshots of it go.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::process::{bin, bin_dir, first_line, Running};
use crate::session::Session;

/// An X server with no screen, for the real window.
#[derive(Debug)]
pub struct Display {
    child: Child,
    pub name: String,
}

impl Display {
    /// Xvfb picks a free display itself (`-displayfd`) and says which once it
    /// listens, so tests running in parallel never share (and kill) one.
    pub fn start() -> Self {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
                // Xvfb resets when its last client leaves (a window killed with -9,
                // between two checks of ours), and a client that connects meanwhile
                // is dropped: a window that never maps, GTK that cannot start.
                "-noreset",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (install xvfb: ./scripts/setup-debian.sh)");
        let line = first_line(&mut child, "Xvfb's display number");
        let n: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("Xvfb printed {line:?} for its display"));
        Display {
            child,
            name: format!(":{n}"),
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The desktop app on a display.
impl Session {
    /// `tokenkeeper-desktop ARGS` in this session on `display`, its output not yet
    /// directed.
    pub fn desktop_command(&self, display: &Display, args: &[&str]) -> Command {
        let mut cmd = self.command(bin("tokenkeeper-desktop"));
        cmd.args(args).env("DISPLAY", &display.name);
        cmd
    }

    /// Starts the desktop app on `display` with `args`, quiet, stopped when dropped.
    pub fn start_desktop(&self, display: &Display, args: &[&str]) -> Running {
        Running(
            self.desktop_command(display, args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("tokenkeeper-desktop"),
        )
    }

    /// Starts the desktop app on `display` with `args`, its stderr kept for `finish`
    /// to read (a start that hands over to a running app, or refuses, and exits).
    pub fn spawn_desktop(&self, display: &Display, args: &[&str]) -> Child {
        self.desktop_command(display, args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tokenkeeper-desktop")
    }
}

/// Asks the window titled `title` on `display` to close, as a window manager's close
/// button does (a WM_DELETE_WINDOW message); false when no such window is mapped.
pub fn close_window(display: &str, title: &str) -> bool {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt, EventMask};
    with_mapped_window(display, title, |conn, w| {
        let atom = |name: &[u8]| {
            conn.intern_atom(false, name)
                .expect("intern_atom")
                .reply()
                .expect("atom")
                .atom
        };
        let (protocols, delete) = (atom(b"WM_PROTOCOLS"), atom(b"WM_DELETE_WINDOW"));
        let event = ClientMessageEvent::new(32, w, protocols, [delete, 0, 0, 0, 0]);
        conn.send_event(false, w, EventMask::NO_EVENT, event)
            .expect("send_event");
        conn.flush().expect("flush");
    })
}

/// Whether a window titled `title` is mapped (viewable) on `display`.
pub fn window_mapped(display: &str, title: &str) -> bool {
    with_mapped_window(display, title, |_, _| ())
}

/// Finds a mapped window titled `title` on `display` and runs `act` on it; false when
/// there is none.
fn with_mapped_window(
    display: &str,
    title: &str,
    act: impl FnOnce(&x11rb::rust_connection::RustConnection, x11rb::protocol::xproto::Window),
) -> bool {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{AtomEnum, ConnectionExt, MapState, Window};
    let (conn, screen) = x11rb::connect(Some(display)).expect("the X display");
    let net_name = conn
        .intern_atom(false, b"_NET_WM_NAME")
        .expect("intern_atom")
        .reply()
        .expect("atom")
        .atom;
    let name_of = |w: Window, prop: u32| {
        conn.get_property(false, w, prop, AtomEnum::ANY, 0, 256)
            .ok()
            .and_then(|c| c.reply().ok())
            .map(|r| String::from_utf8_lossy(&r.value).to_string())
            .unwrap_or_default()
    };
    let mut stack = vec![conn.setup().roots[screen].root];
    while let Some(w) = stack.pop() {
        if let Ok(Ok(tree)) = conn.query_tree(w).map(|c| c.reply()) {
            stack.extend(tree.children);
        }
        let mapped = conn
            .get_window_attributes(w)
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some_and(|a| a.map_state == MapState::VIEWABLE);
        let named = name_of(w, AtomEnum::WM_NAME.into()) == title || name_of(w, net_name) == title;
        if mapped && named {
            act(&conn, w);
            return true;
        }
    }
    false
}

/// Where a test saves a screenshot of the window: `TOKENKEEPER_SCREENSHOT_DIR`, or
/// `target/debug/screenshots/`.
pub fn screenshot_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("TOKENKEEPER_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("screenshots"));
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    dir.join(name)
}
