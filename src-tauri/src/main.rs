// Keeps a console window away on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    // Before anything secret is in memory: no core dump, no same-user ptrace.
    if let Err(e) = tokenkeeper_core::process::forbid_core_dumps() {
        let _ = std::io::Write::write_fmt(
            &mut std::io::stderr(),
            format_args!("tokenkeeper-desktop: {e}\n"),
        );
    }
    tokenkeeper_desktop::run();
}
