//! Opens the admin's browser at a vendor's sign-in address (device-code flows), for
//! the CLI and the window alike: `$BROWSER` when set, else `xdg-open`, and only for
//! https addresses or loopback ones (the sandbox).

use crate::http;

pub fn open(url: &str) -> Result<(), String> {
    if !http::is_browser_safe(url) {
        return Err("the vendor's address is not an https address".into());
    }
    let program = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| "xdg-open".into());
    let mut child = std::process::Command::new(&program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    // Reaped when it ends, so that a long-running app leaves no zombie behind.
    let _ = std::thread::Builder::new()
        .name("browser".into())
        .spawn(move || child.wait());
    Ok(())
}
