//! Start at login (off by default): an XDG autostart entry that starts Tokenkeeper's
//! agent (the tray, renewals and alerts, no window), as the freedesktop Desktop
//! Application Autostart specification describes.

use std::path::PathBuf;

fn entry_path() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("autostart").join("tokenkeeper.desktop"))
}

/// Turns start at login on or off; says where the entry is.
pub fn set(on: bool) -> Result<String, String> {
    let path = entry_path().ok_or("no home folder: cannot set start at login")?;
    if !on {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
        }
        return Ok(format!(
            "start at login is off ({} removed)",
            path.display()
        ));
    }
    let exe = crate::agent_link::cli_binary();
    let exe = std::fs::canonicalize(&exe).map_err(|e| {
        format!(
            "cannot find the tokenkeeper program ({}): {e}",
            exe.display()
        )
    })?;
    let exe = exe.display().to_string();
    // The Exec key quotes arguments with spaces; our own argument has none.
    let quoted = if exe.contains(' ') {
        format!("\"{}\"", exe.replace('"', "\\\""))
    } else {
        exe
    };
    let text = format!(
        "[Desktop Entry]\nType=Application\nName=Tokenkeeper\nComment=Keeps API tokens fresh and warns before deadlines\nExec={quoted} agent\nIcon=tokenkeeper-desktop\nTerminal=false\nX-GNOME-Autostart-enabled=true\n"
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(format!("start at login is on ({})", path.display()))
}

/// Whether the autostart entry is there.
pub fn is_on() -> bool {
    entry_path().is_some_and(|p| p.exists())
}
