//! The window itself: shown (made anew if it was closed) and pointed at an account
//! when a notification, the tray or a later start asks for one.

use std::sync::Arc;

use tauri::{AppHandle, Manager, WebviewWindowBuilder};
use tokenkeeper_core::ipc_types::ShellEvent;

use crate::Shell;

/// Shows the window on `account` when given: a window that is up gets the event; one
/// that is starting takes the name once it listens.
pub fn show(app: &AppHandle, account: Option<&str>) {
    if let Some(name) = account {
        // Kept until the window takes it: a window still starting may not listen yet.
        app.state::<Arc<Shell>>().open_later(name);
    }
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    } else if let Some(config) = app.config().app.windows.first() {
        if let Ok(builder) = WebviewWindowBuilder::from_config(app, config) {
            if let Err(e) = builder.build() {
                crate::say(format_args!("cannot open the window: {e}"));
            }
        }
    }
    if let Some(name) = account {
        let _ = tauri::Emitter::emit(app, ShellEvent::OpenAccount.name(), name.to_string());
    }
}
