//! The window on demand: the agent opens Tokenkeeper's window (the tray's Show, a
//! notification's click, a client's `show`) by starting `tokenkeeper-desktop` for its
//! vault. A window already open takes the request over its one-instance socket and the
//! new start exits, so a click never makes a second window. The window process is the
//! agent's child only while it starts: it is reaped off the caller's thread.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The desktop app: `TOKENKEEPER_DESKTOP`, else `tokenkeeper-desktop` beside this
/// binary, else the one on PATH.
pub fn desktop_binary() -> PathBuf {
    tokenkeeper_core::process::sibling_program("TOKENKEEPER_DESKTOP", "tokenkeeper-desktop")
}

/// Starts the window for the vault in `dir`, on `account` when given. Err says why
/// it could not be started (no desktop app installed, say).
pub fn open(dir: &Path, account: Option<&str>) -> Result<(), String> {
    let program = desktop_binary();
    let mut cmd = Command::new(&program);
    cmd.arg("--data-dir").arg(dir).arg("--from-agent");
    if let Some(name) = account {
        // One argument, `--account=NAME`: a name that begins with '-' stays a value.
        cmd.arg(format!("--account={name}"));
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the window ({}): {e}", program.display()))?;
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}
