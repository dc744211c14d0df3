//! The session's notification daemon (dunst) on a display, and what it showed: the
//! desktop app's alerts as a person would see them.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::display::Display;
use crate::process::{wait_for, Running};
use crate::session::Session;

/// The session's notification daemon (dunst), and what it showed.
impl Session {
    /// Starts dunst on the session's bus and `display`, its complaints in
    /// `dunst.log`, with a configuration that shows identical notifications each on
    /// its own (dunst's default stacks them into one, which would hide a duplicate)
    /// and keeps a long history, and keeps every notification on screen until it is
    /// closed (dunst's default closes a normal one after 10 s, which a test that
    /// clicks one on a loaded machine can miss); returns once it owns the
    /// notification service.
    pub fn start_dunst(&self, display: &Display) -> Running {
        let config = self.write_file(
            "dunstrc",
            "[global]\n    stack_duplicates = false\n    history_length = 200\n    idle_threshold = 0\n\
             [urgency_low]\n    timeout = 0\n[urgency_normal]\n    timeout = 0\n",
        );
        let dunst = Running(
            self.command("dunst")
                .arg("-config")
                .arg(&config)
                .env("DISPLAY", &display.name)
                .stdout(Stdio::null())
                .stderr(
                    std::fs::File::create(self.root.path().join("dunst.log")).expect("dunst.log"),
                )
                .spawn()
                .expect("dunst (install dunst: ./scripts/setup-debian.sh)"),
        );
        wait_for("dunst on the session bus", Duration::from_secs(10), || {
            self.on_bus("org.freedesktop.Notifications")
        });
        dunst
    }

    /// Runs `dunstctl ARGS` in the session; its output. A failing dunstctl fails the
    /// test (it must never read as "nothing shown").
    pub fn dunstctl(&self, args: &[&str]) -> String {
        let out = self
            .command("dunstctl")
            .args(args)
            .output()
            .expect("dunstctl (install dunst: ./scripts/setup-debian.sh)");
        assert!(
            out.status.success(),
            "dunstctl {args:?} failed ({}): {}; dunst said: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.root.path().join("dunst.log")).unwrap_or_default()
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Every notification the session's dunst has shown so far: (summary, body).
    pub fn notifications_shown(&self) -> Vec<(String, String)> {
        // Closed notifications move to the history, which keeps them all.
        self.dunstctl(&["close-all"]);
        let out = self.dunstctl(&["history"]);
        let history: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("dunstctl history is not JSON ({e}): {out}"));
        history["data"][0]
            .as_array()
            .unwrap_or_else(|| panic!("dunstctl history has no list: {history}"))
            .iter()
            .map(|n| {
                (
                    n["summary"]["data"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    n["body"]["data"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Waits until dunst has shown `n` notifications (or `timeout` passed); what it showed.
    pub fn wait_for_notifications(&self, n: usize, timeout: Duration) -> Vec<(String, String)> {
        let end = Instant::now() + timeout;
        loop {
            let now = self.notifications_shown();
            if now.len() >= n || Instant::now() > end {
                return now;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}
