//! Browser sign-ins started from the window: the device code is shown at once while
//! the approval is awaited in the background, one per account, and how it ended
//! reaches the window as a `sign-in-finished` event.

use std::sync::{Arc, Mutex};

use tauri::{AppHandle, Emitter};
use tokenkeeper_core::model::{DeviceSignIn, SignInOutcome};
use tokenkeeper_core::vendors::DevicePrompt;
use tokenkeeper_core::{browser, Error, Result};
use tokio::sync::oneshot;

use crate::{tray, Shell};

pub async fn start(app: AppHandle, shell: Arc<Shell>, name: String) -> Result<DeviceSignIn> {
    let vault = shell.vault()?;
    cancel(&shell, &name);
    let (tx, rx) = oneshot::channel::<Result<DevicePrompt>>();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let on_prompt = tx.clone();
    let account = name.clone();
    let me = shell.clone();
    let task = tauri::async_runtime::spawn(async move {
        let result = vault
            .login_device(&account, move |prompt| {
                if let Some(tx) = on_prompt.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    let _ = tx.send(Ok(prompt.clone()));
                }
            })
            .await;
        let unsent = tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let outcome = match result {
            Ok(_) => SignInOutcome {
                account: account.clone(),
                ok: true,
                message: format!("Signed in to '{account}'."),
                code: None,
            },
            Err(e) => {
                // Failing before any code was shown: the command answers with it.
                if let Some(tx) = unsent {
                    let _ = tx.send(Err(e));
                    me.forget_sign_in(&account);
                    return;
                }
                let ipc = e.to_ipc();
                SignInOutcome {
                    account: account.clone(),
                    ok: false,
                    message: ipc.message,
                    code: ipc.code,
                }
            }
        };
        me.forget_sign_in(&account);
        me.changed();
        tray::refresh(&app, &me);
        let _ = app.emit("sign-in-finished", outcome);
    });
    shell.track_sign_in(&name, task);
    let prompt = rx
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

/// Stops waiting for an approval (the code simply expires at the vendor).
pub fn cancel(shell: &Shell, name: &str) {
    if let Some(task) = shell.forget_sign_in(name) {
        task.abort();
    }
}
