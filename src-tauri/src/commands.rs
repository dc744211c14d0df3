//! The window's commands: each one call into the core; errors cross as `{code, message}`.
//! None of them returns a secret.

use std::sync::Arc;

use tauri::State;
use tokenkeeper_core::model::{AccountSummary, AppInfo};
use tokenkeeper_core::IpcError;

use crate::Shell;

#[tauri::command]
pub fn app_info(shell: State<'_, Arc<Shell>>) -> AppInfo {
    AppInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        sandbox: shell.sandbox,
        data_dir: shell.dir.display().to_string(),
    }
}

#[tauri::command]
pub async fn list_accounts(shell: State<'_, Arc<Shell>>) -> Result<Vec<AccountSummary>, IpcError> {
    shell.vault().and_then(|v| v.list()).map_err(|e| e.to_ipc())
}
