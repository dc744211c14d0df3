//! The renewal engine inside the desktop app: it runs whether the window is open or
//! not, and its events reach the window (live updates), the tray (the worst state)
//! and desktop notifications (alerts). The engine itself knows nothing of tauri: it
//! is handed this sink.

use std::sync::Arc;
use std::time::Duration;

use tauri::{AppHandle, Emitter};
use tokenkeeper_core::clock::SystemClock;
use tokenkeeper_core::engine::{Engine, EngineEvent, EventSink, Policy};
use tokenkeeper_core::ipc_types::ShellEvent;
use tokenkeeper_notify::{AlertDelivery, Outcome};

use crate::notifications::Notifier;
use crate::{tray, Shell};

struct DesktopEvents {
    app: AppHandle,
    shell: Arc<Shell>,
    /// Off the engine's thread: a slow notification server never delays renewals,
    /// and alerts no server took are offered again (the agent's delivery, shared).
    alerts: Option<AlertDelivery>,
}

impl EventSink for DesktopEvents {
    fn emit(&self, event: EngineEvent) {
        let _ = self.app.emit(ShellEvent::EngineEvent.name(), &event);
        if let (EngineEvent::Alert(alert), Some(alerts)) = (&event, &self.alerts) {
            alerts.deliver(alert.clone());
        }
        tray::refresh(&self.app, &self.shell);
    }
}

/// Starts the engine once the vault opens (a locked keyring is retried).
pub fn start(app: AppHandle, shell: Arc<Shell>) {
    let clicks = app.clone();
    let notifier = Notifier::new(move |account| {
        // Windows are made on the main thread; this is the D-Bus listener's.
        let app = clicks.clone();
        let _ = clicks.run_on_main_thread(move || tray::open_account(&app, &account));
    });
    let failed = app.clone();
    let alerts = AlertDelivery::start(notifier, move |outcome| {
        if let Outcome::Kept { why, .. } = outcome {
            eprintln!("tokenkeeper-desktop: {why}; it is sent again once a server answers");
            let _ = failed.emit(ShellEvent::NotificationFailed.name(), why);
        }
    })
    .map_err(|e| eprintln!("tokenkeeper-desktop: no desktop notifications: {e}"))
    .ok();
    tauri::async_runtime::spawn(async move {
        let vault = loop {
            match shell.vault() {
                Ok(v) => break v,
                Err(_) => tokio::time::sleep(Duration::from_secs(10)).await,
            }
        };
        tray::refresh(&app, &shell);
        let sink = Arc::new(DesktopEvents {
            app: app.clone(),
            shell: shell.clone(),
            alerts,
        });
        let engine = Arc::new(Engine::new(
            vault.clone(),
            vault,
            Arc::new(SystemClock),
            sink,
            Policy::default(),
        ));
        engine.run(shell.wake.clone()).await;
    });
}
