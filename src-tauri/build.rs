fn main() {
    // Each command gets an `allow-…` permission; capabilities/ grants exactly these.
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(&["app_info", "list_accounts"])),
    )
    .expect("failed to run tauri-build");
}
