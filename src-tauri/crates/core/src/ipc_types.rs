//! What crosses IPC to the window: the types only the window uses, and the
//! TypeScript of every type that crosses, generated from the Rust types and committed at `ui/src/ipc/generated/ipc.ts`. A test fails when
//! the committed file is stale; `TOKENKEEPER_UPDATE_IPC=1` rewrites it.

use serde::Serialize;
use ts_rs::TS;

use crate::engine::{Alert, AlertKind, EngineEvent};
use crate::error::IpcError;
use crate::fields::FieldKey;
use crate::forms::{AccountEdit, AccountForm, FormField, MethodForm, VendorForm};
use crate::model::{
    AccountDetail, AccountSummary, Event, EventKind, Method, Outcome, Preferences, RenewsWith,
    TokenState, Vendor,
};
use crate::vendors::bigfix::BigFixToken;
use crate::vendors::DevicePrompt;

/// What the window needs to know about the app itself.
#[derive(Debug, Clone, Serialize, TS)]
pub struct AppInfo {
    pub version: String,
    /// Running against the built-in sandbox vendors with a demo vault.
    pub sandbox: bool,
    pub data_dir: String,
}

/// A browser sign-in the window started: the code to show, and whether the browser
/// opened (if not, the admin opens `browser_url` by hand).
#[derive(Debug, Clone, Serialize, TS)]
pub struct DeviceSignIn {
    pub prompt: DevicePrompt,
    pub browser_opened: bool,
    pub browser_error: Option<String>,
}

/// How a sign-in the window started in the background ended.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SignInOutcome {
    pub account: String,
    pub ok: bool,
    /// What happened, to show as it is: the vendor's refusal, an expired code.
    pub message: String,
    pub code: Option<String>,
}

/// The generated file's text.
pub fn typescript() -> String {
    let decls = [
        Vendor::decl(),
        Method::decl(),
        RenewsWith::decl(),
        TokenState::decl(),
        FieldKey::decl(),
        AccountSummary::decl(),
        EventKind::decl(),
        Outcome::decl(),
        Event::decl(),
        AccountDetail::decl(),
        AppInfo::decl(),
        IpcError::decl(),
        DevicePrompt::decl(),
        BigFixToken::decl(),
        AlertKind::decl(),
        Alert::decl(),
        EngineEvent::decl(),
        FormField::decl(),
        MethodForm::decl(),
        VendorForm::decl(),
        AccountForm::decl(),
        AccountEdit::decl(),
        Preferences::decl(),
        DeviceSignIn::decl(),
        SignInOutcome::decl(),
    ];
    let mut out = String::from(
        "// Generated from the Rust types by tokenkeeper-core's ipc_types test. Do not edit:\n\
         // run `TOKENKEEPER_UPDATE_IPC=1 cargo test -p tokenkeeper-core ipc_types` instead.\n\n",
    );
    for d in decls {
        out.push_str("export ");
        out.push_str(&d);
        out.push_str("\n\n");
    }
    out.trim_end().to_string() + "\n"
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn ipc_types_are_fresh() {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../ui/src/ipc/generated/ipc.ts");
        let want = super::typescript();
        if std::env::var_os("TOKENKEEPER_UPDATE_IPC").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is stale: run `TOKENKEEPER_UPDATE_IPC=1 cargo test -p tokenkeeper-core ipc_types` and commit it",
            path.display()
        );
    }
}
