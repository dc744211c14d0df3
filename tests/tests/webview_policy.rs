//! What the webview may do, checked from the files that decide it: a strict Content
//! Security Policy, capabilities that grant our own commands and nothing else, the
//! same command list in the shell, its build script and its capability file, and
//! every command classified, so that a new one cannot slip in returning a secret.
//! (The window tests call the listing commands with canary secrets planted and find
//! none of them in the answers.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Commands that only read, and answer without any secret (the window tests check
/// their answers against planted canaries).
const READS: &[&str] = &[
    "app_info",
    "list_accounts",
    "vendor_forms",
    "account_detail",
    "bigfix_tokens",
    "preferences",
    "take_pending_account",
    "device_sign_in_in_progress",
];
/// Commands that act; their answers are summaries, messages or nothing.
const ACTIONS: &[&str] = &[
    "add_account",
    "edit_account",
    "set_trust",
    "sign_in",
    "start_device_sign_in",
    "cancel_sign_in",
    "renew_now",
    "copy_token",
    "remove_account",
    "bigfix_rename",
    "bigfix_extend",
    "bigfix_revoke",
    "bigfix_rotate",
    "set_preferences",
];
/// Tauri's own permissions the window has: receiving events, nothing more.
const EVENT_PERMISSIONS: &[&str] = &["core:event:allow-listen", "core:event:allow-unlisten"];

/// The one command that answers with a secret: the explicit "Reveal".
const REVEALS: &[&str] = &["reveal_token"];

fn quoted_names(text: &str) -> BTreeSet<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_csp_allows_only_our_own_files_and_ipc() {
    let conf: Value = serde_json::from_str(&read("src-tauri/tauri.conf.json")).unwrap();
    assert_eq!(conf["app"]["withGlobalTauri"], Value::Bool(false));
    assert_eq!(
        conf["app"]["security"]["freezePrototype"],
        Value::Bool(true)
    );
    let csp = conf["app"]["security"]["csp"]
        .as_object()
        .expect("a CSP object");
    assert_eq!(csp["default-src"], "'self'");
    assert_eq!(csp["script-src"], "'self'");
    assert_eq!(csp["object-src"], "'none'");
    assert_eq!(csp["frame-ancestors"], "'none'");
    for (directive, value) in csp {
        let value = value.as_str().unwrap();
        for bad in [
            "unsafe-inline",
            "unsafe-eval",
            "*",
            "https:",
            "http:",
            "data: *",
        ] {
            assert!(
                !value
                    .split_whitespace()
                    .any(|v| v.contains(bad) && v != "http://ipc.localhost"),
                "{directive} allows {bad}: {value}"
            );
        }
    }
    assert!(
        conf["app"]["security"]
            .get("dangerousDisableAssetCspModification")
            .is_none(),
        "Tauri's CSP nonces stay on"
    );
    // No remote content in the page itself: no inline script, nothing fetched from afar.
    let html = read("ui/index.html");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    assert_eq!(html.matches("<script").count(), 1, "one module script");
    assert!(html.contains("<script type=\"module\" src=\"/src/main.ts\">"));
}

#[test]
fn the_capabilities_grant_exactly_our_commands() {
    let build = read("src-tauri/build.rs");
    let start = build.find("const COMMANDS").expect("COMMANDS in build.rs");
    let end = start + build[start..].find("];").unwrap();
    let declared = quoted_names(&build[start..end]);

    let lib = read("src-tauri/src/lib.rs");
    let start = lib.find("generate_handler![").expect("generate_handler");
    let end = start + lib[start..].find(']').unwrap();
    let handled: BTreeSet<String> = lib[start..end]
        .split("commands::")
        .skip(1)
        .map(|s| s.split([',', '\n', ' ']).next().unwrap().to_string())
        .collect();
    assert_eq!(
        declared, handled,
        "build.rs and the invoke handler disagree"
    );

    let mut granted = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("src-tauri/capabilities")).unwrap() {
        let path = entry.unwrap().path();
        let cap: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(cap["windows"], serde_json::json!(["main"]), "{path:?}");
        assert!(
            cap.get("remote").is_none(),
            "no remote URL gets IPC: {path:?}"
        );
        for p in cap["permissions"].as_array().unwrap() {
            let p = p.as_str().expect("plain permission names");
            // Listening to the app's events (renewals, sign-ins ending) is the one
            // core permission; emitting, windows, paths and the rest stay closed.
            if EVENT_PERMISSIONS.contains(&p) {
                continue;
            }
            let name = p
                .strip_prefix("allow-")
                .unwrap_or_else(|| panic!("only our own allow- permissions, not {p}"));
            assert!(!name.contains(':'), "no plugin permission: {p}");
            granted.insert(name.replace('-', "_"));
        }
    }
    assert_eq!(granted, declared, "the capability grants other commands");

    let classified: BTreeSet<String> = READS
        .iter()
        .chain(ACTIONS)
        .chain(REVEALS)
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        classified, declared,
        "classify every command here (does it answer with a secret?)"
    );

    // Any answer can carry a secret, whatever its type (a summary, a number, an
    // error): the window test's canary sweep calls every command but the one that
    // reveals, and searches what each answers.
    let ui = read("tests/tests/ui.rs");
    let sweep = &ui[ui
        .find("// CANARY SWEEP")
        .expect("the canary sweep in ui.rs")..];
    let sweep = &sweep[..sweep
        .find("for (command, args, succeeds) in sweep")
        .expect("its loop")];
    let swept: BTreeSet<String> = quoted_names(sweep)
        .into_iter()
        .filter(|n| declared.contains(n))
        .collect();
    let unswept: Vec<&String> = declared
        .iter()
        .filter(|n| !swept.contains(*n) && !REVEALS.contains(&n.as_str()))
        .collect();
    assert!(
        unswept.is_empty(),
        "commands whose answers the canary sweep never searches: {unswept:?}"
    );

    // Each command's answer type, read from its signature: only reveal_token's is a
    // bare String that could be a token.
    let commands = read("src-tauri/src/commands.rs");
    for name in &declared {
        let at = commands
            .find(&format!("fn {name}("))
            .unwrap_or_else(|| panic!("{name} in commands.rs"));
        let sig = &commands[at..at + commands[at..].find('{').unwrap()];
        let answers_string = sig.contains("Answer<String>") || sig.contains("-> String");
        assert_eq!(
            answers_string,
            REVEALS.contains(&name.as_str()) || name == "remove_account",
            "{name}: {sig}"
        );
    }
}

#[test]
fn only_the_ipc_module_touches_tauri_and_nothing_writes_inline_styles() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo().join("ui/src"), &mut files);
    assert!(files.len() > 3);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let rel = f.strip_prefix(repo()).unwrap().display().to_string();
        if rel != "ui/src/ipc/index.ts" {
            assert!(!text.contains("@tauri-apps"), "{rel} imports tauri");
        }
        if rel.ends_with(".svelte") {
            // `style="…"` is blocked by the CSP; `style:prop={…}` goes through CSSOM.
            assert!(!text.contains(" style=\""), "{rel} writes an inline style");
            assert!(!text.contains("{@html"), "{rel} injects HTML");
        }
        assert!(!text.contains("eval("), "{rel} evaluates code");
        assert!(!text.contains("innerHTML"), "{rel} writes HTML");
    }
}
