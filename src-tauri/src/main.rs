// Keeps a console window away on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    tokenkeeper_desktop::run();
}
