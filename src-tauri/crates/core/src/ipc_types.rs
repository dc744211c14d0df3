//! What crosses IPC to the window: the types only the window uses, the names of the
//! events the shell emits, and the TypeScript of every type that crosses, generated
//! from the Rust types and committed at `ui/src/ipc/generated/ipc.ts`. A test fails
//! when the committed file is stale; `TOKENKEEPER_UPDATE_IPC=1` rewrites it.

use serde::Serialize;
use ts_rs::TS;

use crate::engine::{Alert, AlertKind, EngineEvent};
use crate::error::{IpcCode, IpcError, Remedy};
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
    pub code: Option<IpcCode>,
}

impl SignInOutcome {
    pub fn signed_in(account: &str) -> Self {
        SignInOutcome {
            account: account.to_string(),
            ok: true,
            message: format!("Signed in to '{account}'."),
            code: None,
        }
    }

    /// A failed sign-in, phrased for the window as any other error is.
    pub fn failed(account: &str, e: crate::Error) -> Self {
        let ipc = IpcError::from(e);
        SignInOutcome {
            account: account.to_string(),
            ok: false,
            message: ipc.message,
            code: ipc.code,
        }
    }
}

/// The events the shell emits to the window, by the name both sides listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum ShellEvent {
    /// An `EngineEvent`: a renewal, an alert.
    EngineEvent,
    /// A `SignInOutcome`: how a browser sign-in the window started ended.
    SignInFinished,
    /// Accounts were added, changed or removed elsewhere (the tray, the CLI).
    AccountsChanged,
    /// The account name a notification or the tray asks the window to show.
    OpenAccount,
    /// A desktop notification could not be shown: its message.
    NotificationFailed,
}

impl ShellEvent {
    pub const ALL: [ShellEvent; 5] = [
        ShellEvent::EngineEvent,
        ShellEvent::SignInFinished,
        ShellEvent::AccountsChanged,
        ShellEvent::OpenAccount,
        ShellEvent::NotificationFailed,
    ];

    /// The name the event is emitted and listened under.
    pub fn name(self) -> &'static str {
        match self {
            ShellEvent::EngineEvent => "engine-event",
            ShellEvent::SignInFinished => "sign-in-finished",
            ShellEvent::AccountsChanged => "accounts-changed",
            ShellEvent::OpenAccount => "open-account",
            ShellEvent::NotificationFailed => "notification-failed",
        }
    }
}

/// A TypeScript `const` object naming each value of a string union, so that the UI
/// compares with `IPC_CODE.needsSignIn` rather than a literal: keys in camelCase,
/// values as serde writes them.
fn const_object<T: Serialize>(name: &str, union: &str, values: &[T]) -> String {
    let mut out = format!("export const {name} = {{\n");
    for v in values {
        let wire = serde_json::to_value(v)
            .ok()
            .and_then(|j| j.as_str().map(str::to_string))
            .expect("a unit variant serializes to a string");
        let mut key = String::new();
        let mut upper = false;
        for c in wire.chars() {
            if c == '_' || c == '-' {
                upper = true;
            } else if upper {
                key.extend(c.to_uppercase());
                upper = false;
            } else {
                key.push(c);
            }
        }
        out.push_str(&format!("  {key}: \"{wire}\",\n"));
    }
    out.push_str(&format!(
        "}} as const satisfies Record<string, {union}>;\n\n"
    ));
    out
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
        IpcCode::decl(),
        Remedy::decl(),
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
        ShellEvent::decl(),
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
    out.push_str(&const_object("IPC_CODE", "IpcCode", &IpcCode::ALL));
    out.push_str(&const_object("SHELL_EVENT", "ShellEvent", &ShellEvent::ALL));
    out.trim_end().to_string() + "\n"
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::ShellEvent;

    #[test]
    fn each_event_is_emitted_under_the_name_the_window_listens_on() {
        for event in ShellEvent::ALL {
            assert_eq!(
                serde_json::to_value(event).unwrap(),
                serde_json::json!(event.name()),
                "{event:?}"
            );
        }
    }

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
