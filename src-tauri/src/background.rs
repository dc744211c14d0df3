//! The renewal engine inside the desktop app: it runs whether the window is open or
//! not, and its events reach the window (live updates), the tray (the worst state)
//! and desktop notifications (alerts). The engine itself knows nothing of tauri: it
//! is handed this sink.

use std::sync::Arc;
use std::time::Duration;

use tauri::{AppHandle, Emitter};
use tokenkeeper_core::clock::SystemClock;
use tokenkeeper_core::engine::{AlertKind, Engine, EngineEvent, EventSink, Policy};
use tokenkeeper_core::ipc_types::ShellEvent;

use crate::notifications::Notifier;
use crate::{tray, Shell};

/// How often alerts that no notification server took are offered again.
const RETRY_UNDELIVERED: Duration = Duration::from_secs(10);

struct DesktopEvents {
    app: AppHandle,
    shell: Arc<Shell>,
    notifier: Arc<Notifier>,
}

impl EventSink for DesktopEvents {
    fn emit(&self, event: EngineEvent) {
        let _ = self.app.emit(ShellEvent::EngineEvent.name(), &event);
        if let EngineEvent::Alert(alert) = &event {
            let (summary, urgent) = match alert.kind {
                AlertKind::NeedsSignIn => ("Sign-in needed", true),
                AlertKind::DeadlineSoon if alert.threshold_s == 0 => ("Sign-in expired", true),
                AlertKind::DeadlineSoon => ("Sign-in due soon", alert.threshold_s <= 3600),
            };
            // Off the engine's thread: a slow notification server never delays renewals.
            let (notifier, app) = (self.notifier.clone(), self.app.clone());
            let (message, account) = (alert.message.clone(), alert.account.clone());
            tauri::async_runtime::spawn_blocking(move || {
                if let Err(e) = notifier.alert(summary, &message, &account, urgent) {
                    eprintln!("tokenkeeper-desktop: {e}; it is sent again once a server answers");
                    let _ = app.emit(ShellEvent::NotificationFailed.name(), e);
                }
            });
        }
        tray::refresh(&self.app, &self.shell);
    }
}

/// Starts the engine once the vault opens (a locked keyring is retried).
pub fn start(app: AppHandle, shell: Arc<Shell>) {
    let clicks = app.clone();
    let notifier = Arc::new(Notifier::new(move |account| {
        // Windows are made on the main thread; this is the D-Bus listener's.
        let app = clicks.clone();
        let _ = clicks.run_on_main_thread(move || tray::open_account(&app, &account));
    }));
    let retrying = notifier.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            tokio::time::sleep(RETRY_UNDELIVERED).await;
            if retrying.has_undelivered() {
                let notifier = retrying.clone();
                let _ = tauri::async_runtime::spawn_blocking(move || notifier.retry_undelivered())
                    .await;
            }
        }
    });
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
            notifier,
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
