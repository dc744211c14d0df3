//! The window's commands: each one call into the core; errors cross as `IpcError`
//! (`{code, message, remedy}`, phrased for the window) through `?`.
//! Only `reveal_token` returns a secret, and only on the admin's explicit click;
//! `copy_token` puts one on the clipboard without it crossing to the webview.

use std::sync::Arc;
use std::time::Duration;

use tauri::State;
use tokenkeeper_core::forms::{self, AccountEdit, AccountForm, VendorForm};
use tokenkeeper_core::ipc_types::{AppInfo, DeviceSignIn};
use tokenkeeper_core::model::{AccountDetail, AccountSummary, Preferences};
use tokenkeeper_core::vendors::bigfix::BigFixToken;
use tokenkeeper_core::{Error, IpcError, Secret, SignOut};

use crate::{agent_link, autostart, Shell};

type Answer<T> = Result<T, IpcError>;

/// A secret typed in the window: wrapped at once; empty means "none given".
fn typed(secret: Option<String>) -> Option<Secret> {
    secret.filter(|s| !s.is_empty()).map(Secret::new)
}

#[tauri::command]
pub fn app_info(shell: State<'_, Arc<Shell>>) -> AppInfo {
    AppInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        sandbox: shell.sandbox,
        data_dir: shell.dir.display().to_string(),
    }
}

#[tauri::command]
pub async fn list_accounts(shell: State<'_, Arc<Shell>>) -> Answer<Vec<AccountSummary>> {
    Ok(shell.vault().and_then(|v| v.list())?)
}

#[tauri::command]
pub fn vendor_forms() -> Vec<VendorForm> {
    forms::vendor_forms()
}

#[tauri::command]
pub async fn account_detail(shell: State<'_, Arc<Shell>>, name: String) -> Answer<AccountDetail> {
    Ok(shell.vault().and_then(|v| v.show(&name))?)
}

#[tauri::command]
pub async fn add_account(
    shell: State<'_, Arc<Shell>>,
    form: AccountForm,
    secret: Option<String>,
) -> Answer<AccountSummary> {
    let vault = shell.vault()?;
    // A browser sign-in starts from the details pane once the account exists.
    let added = vault
        .add(form.into_new_account(), typed(secret), true)
        .await?;
    Ok(added)
}

#[tauri::command]
pub async fn edit_account(
    shell: State<'_, Arc<Shell>>,
    name: String,
    edit: AccountEdit,
) -> Answer<AccountSummary> {
    let vault = shell.vault()?;
    let summary = vault.edit(&name, edit).await?;
    Ok(summary)
}

#[tauri::command]
pub async fn set_trust(
    shell: State<'_, Arc<Shell>>,
    name: String,
    ca_cert_pem: Option<String>,
    pin_sha256: Option<String>,
) -> Answer<()> {
    let vault = shell.vault()?;
    Ok(vault.set_trust(&name, ca_cert_pem, pin_sha256).await?)
}

#[tauri::command]
pub async fn sign_in(
    shell: State<'_, Arc<Shell>>,
    name: String,
    secret: Option<String>,
) -> Answer<AccountSummary> {
    let vault = shell.vault()?;
    let summary = vault.login(&name, typed(secret)).await?;
    Ok(summary)
}

/// Starts a browser sign-in in the agent (so that closing the window ends none) and
/// opens the browser at its address.
#[tauri::command]
pub async fn start_device_sign_in(
    shell: State<'_, Arc<Shell>>,
    name: String,
) -> Answer<DeviceSignIn> {
    Ok(agent_link::start_sign_in(shell.dir.clone(), name).await?)
}

/// The browser sign-in the agent awaits for `name`, if one is under way (shown again
/// when the window reopens).
#[tauri::command]
pub async fn device_sign_in_in_progress(
    shell: State<'_, Arc<Shell>>,
    name: String,
) -> Answer<Option<DeviceSignIn>> {
    Ok(agent_link::sign_in_in_progress(shell.dir.clone(), name).await?)
}

#[tauri::command]
pub async fn cancel_sign_in(shell: State<'_, Arc<Shell>>, name: String) -> Answer<()> {
    Ok(agent_link::cancel_sign_in(shell.dir.clone(), name).await?)
}

#[tauri::command]
pub async fn renew_now(shell: State<'_, Arc<Shell>>, name: String) -> Answer<AccountSummary> {
    let vault = shell.vault()?;
    let summary = vault.renew_now(&name).await?;
    Ok(summary)
}

#[tauri::command]
pub async fn copy_token(shell: State<'_, Arc<Shell>>, name: String) -> Answer<u32> {
    let vault = shell.vault()?;
    let fresh = vault.token(&name).await?;
    let seconds = vault.preferences()?.clipboard_clear_s;
    let clipboard = shell.clipboard.clone();
    tokio::task::spawn_blocking(move || {
        clipboard.copy(&fresh.token, Duration::from_secs(seconds.into()))
    })
    .await
    .map_err(|e| Error::internal(format!("copying failed: {e}")))??;
    Ok(seconds)
}

#[tauri::command]
pub async fn reveal_token(shell: State<'_, Arc<Shell>>, name: String) -> Answer<String> {
    let vault = shell.vault()?;
    let fresh = vault.token(&name).await?;
    Ok(fresh.token.expose().to_string())
}

#[tauri::command]
pub async fn remove_account(
    shell: State<'_, Arc<Shell>>,
    name: String,
    sign_out: bool,
) -> Answer<String> {
    let vault = shell.vault()?;
    // A browser sign-in under way would store a token for an account that is gone.
    let _ = agent_link::cancel_sign_in(shell.dir.clone(), name.clone()).await;
    let outcome = vault.remove(&name, sign_out).await?;
    Ok(match outcome {
        SignOut::Done => format!("Removed '{name}'; its session at the vendor was ended."),
        SignOut::NotOffered if sign_out => format!("Removed '{name}'."),
        SignOut::NotOffered => format!("Removed '{name}'; its session at the vendor was left as it is."),
        SignOut::Failed(why) => format!(
            "Removed '{name}', but ending its session at the vendor failed: {why}. End it there by hand."
        ),
    })
}

#[tauri::command]
pub async fn bigfix_tokens(
    shell: State<'_, Arc<Shell>>,
    name: String,
    user: Option<u64>,
) -> Answer<Vec<BigFixToken>> {
    let vault = shell.vault()?;
    Ok(vault.bigfix_tokens(&name, user).await?)
}

#[tauri::command]
pub async fn bigfix_rename(
    shell: State<'_, Arc<Shell>>,
    name: String,
    id: u64,
    new_name: String,
) -> Answer<BigFixToken> {
    let vault = shell.vault()?;
    Ok(vault
        .bigfix_update(&name, id, Some(&new_name), None)
        .await?)
}

#[tauri::command]
pub async fn bigfix_extend(
    shell: State<'_, Arc<Shell>>,
    name: String,
    id: u64,
    days: u32,
) -> Answer<BigFixToken> {
    let vault = shell.vault()?;
    Ok(vault.bigfix_update(&name, id, None, Some(days)).await?)
}

#[tauri::command]
pub async fn bigfix_revoke(shell: State<'_, Arc<Shell>>, name: String, id: u64) -> Answer<()> {
    let vault = shell.vault()?;
    vault.bigfix_revoke(&name, id).await?;
    Ok(())
}

#[tauri::command]
pub async fn bigfix_rotate(shell: State<'_, Arc<Shell>>, name: String) -> Answer<AccountSummary> {
    let vault = shell.vault()?;
    let summary = vault.bigfix_rotate(&name).await?;
    Ok(summary)
}

#[tauri::command]
pub async fn preferences(shell: State<'_, Arc<Shell>>) -> Answer<Preferences> {
    let mut p = shell.vault().and_then(|v| v.preferences())?;
    p.start_at_login = autostart::is_on();
    Ok(p)
}

#[tauri::command]
pub async fn set_preferences(
    shell: State<'_, Arc<Shell>>,
    preferences: Preferences,
) -> Answer<Preferences> {
    let mut saved = shell
        .vault()
        .and_then(|v| v.set_preferences(&preferences))?;
    if let Err(why) = autostart::set(preferences.start_at_login) {
        return Err(Error::internal(format!(
            "the alert thresholds and clipboard timeout were saved, but start at login could not be changed: {why}"
        ))
        .into());
    }
    saved.start_at_login = autostart::is_on();
    Ok(saved)
}

#[tauri::command]
pub fn take_pending_account(shell: State<'_, Arc<Shell>>) -> Option<String> {
    shell.take_pending_account()
}
