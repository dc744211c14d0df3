//! Browser sign-ins started from the window: the device code is shown at once while
//! the approval is awaited in the background, one per account, and how it ended
//! reaches the window as a `sign-in-finished` event. Cancelling stops the wait for
//! approval only; an approval already being stored is finished first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tauri::async_runtime::JoinHandle;
use tauri::{AppHandle, Emitter};
use tokenkeeper_core::ipc_types::{DeviceSignIn, ShellEvent, SignInOutcome};
use tokenkeeper_core::vendors::DevicePrompt;
use tokenkeeper_core::{browser, Error, Result};
use tokio::sync::oneshot;

use crate::{tray, Shell};

/// One sign-in waiting for approval.
struct Pending {
    generation: u64,
    cancel: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// The sign-ins in progress, by account name.
#[derive(Default)]
pub struct SignIns {
    pending: Mutex<HashMap<String, Pending>>,
    next: AtomicU64,
}

impl std::fmt::Debug for SignIns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIns").finish_non_exhaustive()
    }
}

impl SignIns {
    fn take(&self, name: &str) -> Option<Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
    }

    /// Forgets `name`'s sign-in if it is still this generation's.
    fn finished(&self, name: &str, generation: u64) {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(name).is_some_and(|p| p.generation == generation) {
            map.remove(name);
        }
    }
}

/// Starts the sign-in task and registers it; the receiver gets the prompt (or why
/// there is none). Not async: the registry's lock is never held across an await.
fn spawn(
    app: AppHandle,
    shell: Arc<Shell>,
    vault: Arc<tokenkeeper_core::Vault>,
    name: String,
) -> oneshot::Receiver<Result<DevicePrompt>> {
    let generation = shell.sign_ins.next.fetch_add(1, Ordering::SeqCst);
    let (prompt_tx, prompt_rx) = oneshot::channel::<Result<DevicePrompt>>();
    let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
    let prompt_tx = Arc::new(Mutex::new(Some(prompt_tx)));
    let on_prompt = prompt_tx.clone();
    let account = name.clone();
    let me = shell.clone();
    // Registered before the task can end, so that its end always finds its entry.
    let mut pending = shell
        .sign_ins
        .pending
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let task = tauri::async_runtime::spawn(async move {
        let cancelled = async {
            let _ = cancel_rx.await;
        };
        let result = vault
            .login_device(
                &account,
                move |prompt| {
                    if let Some(tx) = on_prompt.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        let _ = tx.send(Ok(prompt.clone()));
                    }
                },
                cancelled,
            )
            .await;
        me.sign_ins.finished(&account, generation);
        let unsent = prompt_tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let outcome = match result {
            Ok(_) => SignInOutcome::signed_in(&account),
            Err(e) => {
                // Failing before any code was shown: the command answers with it.
                if let Some(tx) = unsent {
                    let _ = tx.send(Err(e));
                    return;
                }
                SignInOutcome::failed(&account, e)
            }
        };
        me.changed();
        tray::refresh(&app, &me);
        let _ = app.emit(ShellEvent::SignInFinished.name(), outcome);
    });
    pending.insert(
        name,
        Pending {
            generation,
            cancel: cancel_tx,
            task,
        },
    );
    drop(pending);
    prompt_rx
}

pub async fn start(app: AppHandle, shell: Arc<Shell>, name: String) -> Result<DeviceSignIn> {
    let vault = shell.vault()?;
    cancel(&shell, &name).await;
    let prompt_rx = spawn(app, shell, vault, name);
    let prompt = prompt_rx
        .await
        .map_err(|_| Error::internal("the sign-in stopped before it began"))??;
    let (browser_opened, browser_error) = match browser::open(&prompt.browser_url) {
        Ok(()) => (true, None),
        Err(why) => (false, Some(why)),
    };
    Ok(DeviceSignIn {
        prompt,
        browser_opened,
        browser_error,
    })
}

/// Stops waiting for an approval (the code simply expires at the vendor) and waits
/// for the sign-in to end, storing an approval that already arrived.
pub async fn cancel(shell: &Shell, name: &str) {
    if let Some(p) = shell.sign_ins.take(name) {
        let _ = p.cancel.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), p.task).await;
    }
}
