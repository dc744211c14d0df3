/// Every command the window may call: `capabilities/main-window.json` grants exactly
/// these, and the e2e suite checks that the three lists agree.
const COMMANDS: &[&str] = &[
    "app_info",
    "list_accounts",
    "vendor_forms",
    "account_detail",
    "add_account",
    "edit_account",
    "set_trust",
    "sign_in",
    "start_device_sign_in",
    "device_sign_in_in_progress",
    "cancel_sign_in",
    "renew_now",
    "copy_token",
    "reveal_token",
    "remove_account",
    "bigfix_tokens",
    "bigfix_rename",
    "bigfix_extend",
    "bigfix_revoke",
    "bigfix_rotate",
    "preferences",
    "set_preferences",
    "take_pending_account",
];

fn main() {
    // Each command gets an `allow-…` permission; capabilities/ grants exactly these.
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("failed to run tauri-build");
}
