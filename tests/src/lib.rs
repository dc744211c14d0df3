//! The parts the end-to-end tests stand on, each real: a private D-Bus session with
//! gnome-keyring, the sandbox vendors as a process, the `tokenkeeper` binary, Xvfb,
//! and tauri-driver in front of WebKitWebDriver. Every process is stopped on drop.
//!
//! - [`agent`]: `tokenkeeper agent`, its stderr, and stopping it;
//! - [`session`]: the test's private session (bus, keyring, folders, environment) and
//!   `tokenkeeper` run in it;
//! - [`accounts`]: `tokenkeeper add` per vendor and per sandbox stand-in, and what the
//!   vault lists and keeps in the keyring;
//! - [`browser`]: device-code sign-ins through a browser that records addresses;
//! - [`sandbox`]: the stand-in vendors and their admin API;
//! - [`display`]: Xvfb, its windows, and the desktop app on it;
//! - [`notifications`]: dunst, and what it showed;
//! - [`oidc`]: the independent OAuth/OIDC server, and the browser played against it;
//! - [`panel`]: a desktop's panel (StatusNotifierWatcher) that tray items register with;
//! - [`webdriver`]: tauri-driver and a WebDriver client for the real window;
//! - [`process`]: the built binaries, runs, waiting, and process trees.

pub mod accounts;
pub mod agent;
pub mod browser;
pub mod display;
pub mod notifications;
pub mod oidc;
pub mod openbao;
pub mod panel;
pub mod process;
pub mod sandbox;
pub mod session;
pub mod webdriver;

pub use accounts::{add_args, KeyringItem};
pub use agent::Agent;
pub use browser::{user_code, RecordingBrowser};
pub use display::{close_window, screenshot_path, window_mapped, Display};
pub use process::{
    bin, bin_dir, descendants, finish, free_port, run, terminate, wait_for, Run, Running,
};
pub use sandbox::Sandbox;
pub use session::{files_under, Session};

/// Milliseconds since the Unix epoch, the unit the vault's and the sandbox's times
/// are in.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as i64
}
