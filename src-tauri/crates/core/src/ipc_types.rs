//! The TypeScript types of everything that crosses IPC to the window, generated from
//! the Rust types and committed at `ui/src/ipc/generated/ipc.ts`. A test fails when
//! the committed file is stale; `TOKENKEEPER_UPDATE_IPC=1` rewrites it.

use ts_rs::TS;

use crate::engine::{Alert, AlertKind, EngineEvent};
use crate::error::IpcError;
use crate::forms::{AccountEdit, AccountForm, FormField, MethodForm, VendorForm};
use crate::model::{
    AccountDetail, AccountSummary, AppInfo, DeviceSignIn, Event, Method, Preferences, RenewsWith,
    SignInOutcome, TokenState, Vendor,
};
use crate::vendors::bigfix::BigFixToken;
use crate::vendors::{DevicePrompt, FieldKey};

/// The generated file's text.
pub fn typescript() -> String {
    let decls = [
        Vendor::decl(),
        Method::decl(),
        RenewsWith::decl(),
        TokenState::decl(),
        FieldKey::decl(),
        AccountSummary::decl(),
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
