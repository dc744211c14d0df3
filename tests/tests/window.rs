//! The real desktop binary in a real window (Xvfb), driven over WebDriver through
//! tauri-driver and WebKitWebDriver: it lists what the CLI wrote to the same vault,
//! counts down live, answers IPC without secrets, and its sandbox mode works.

use std::time::Duration;

use serde_json::json;
use tokenkeeper_e2e::webdriver::Driver;
use tokenkeeper_e2e::{bin, Display, Sandbox, Session};

fn is_countdown(text: &str) -> bool {
    // "59m 58s": minutes and seconds of the hour-long TrueSight token.
    let parts: Vec<&str> = text.split_whitespace().collect();
    parts.len() == 2 && parts[0].ends_with('m') && parts[1].ends_with('s')
}

#[test]
fn the_window_lists_what_the_cli_wrote_counts_down_live_and_leaks_nothing() {
    let s = Session::start();
    let sb = Sandbox::start(&[]);
    let password = format!("CANARY-WINDOW-{}", std::process::id());
    sb.admin(
        "/truesight/users",
        json!({"username": "ops", "password": password, "tenant": "BmcRealm"}),
    );
    let add = |name: &str| {
        s.add_truesight(
            name,
            &sb.url("truesight"),
            "ops",
            &password,
            &["--label", "prod"],
        )
        .ok();
    };
    add("ts-window");
    let token = s
        .cli(&["token", "ts-window"], None)
        .ok()
        .stdout
        .trim()
        .to_string();

    let display = Display::start();
    let driver = Driver::start(&s, &display.name, &[]);
    let app = driver.launch(&bin("tokenkeeper-desktop"), &[]);

    let row = app.wait_text("[data-name='ts-window']", Duration::from_secs(30));
    assert!(
        row.contains("BMC TrueSight") && row.contains("Valid") && row.contains("ops"),
        "row: {row}"
    );
    let cell = "[data-name='ts-window'] [data-testid='time-left']";
    let first = app.wait_text(cell, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(2200));
    let second = app.wait_text(cell, Duration::from_secs(5));
    assert!(
        is_countdown(&first) && is_countdown(&second),
        "countdowns: {first} / {second}"
    );
    assert_ne!(first, second, "the countdown moves");

    // The window reads the same vault: an account the CLI adds now shows up.
    add("ts-later");
    app.wait_text("[data-name='ts-later']", Duration::from_secs(10));

    // The listing answer, as the webview receives it, carries no secret.
    let answer = app.execute_async(
        "const done = arguments[arguments.length - 1];\
         window.__TAURI_INTERNALS__.invoke('list_accounts').then(r => done(JSON.stringify(r)), e => done('ERR ' + JSON.stringify(e)));",
    );
    let answer = answer.as_str().unwrap_or_default().to_string();
    assert!(
        answer.contains("ts-window") && answer.contains("expires_at_ms"),
        "{answer}"
    );
    assert!(
        !answer.contains(&password) && !answer.contains(&token),
        "the IPC answer leaks a secret"
    );

    app.screenshot(&tokenkeeper_e2e::screenshot_path("window.png"));
    app.close();
}

#[test]
fn sandbox_mode_shows_a_working_demo_account() {
    let s = Session::start();
    let display = Display::start();
    let driver = Driver::start(&s, &display.name, &[]);
    let app = driver.launch(&bin("tokenkeeper-desktop"), &["--sandbox"]);
    for name in ["truesight-demo", "bigid-demo", "bigfix-demo", "immuta-demo"] {
        app.wait_text(
            &format!("[data-name='{name}'][data-state='valid']"),
            Duration::from_secs(30),
        );
    }
    // The browser sign-in waits for the newcomer to click "Sign in".
    app.wait_text(
        "[data-name='biganimal-demo'][data-state='needs-sign-in']",
        Duration::from_secs(30),
    );
    assert!(app.page_text().contains("Sandbox mode"));
    app.screenshot(&tokenkeeper_e2e::screenshot_path("sandbox.png"));
    app.close();
    // The CLI sees the demo vault too, and its token works against the sandbox.
    let list = s.cli(&["list", "--json"], None).ok().json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "biganimal-demo",
            "bigfix-demo",
            "bigid-demo",
            "immuta-demo",
            "truesight-demo"
        ]
    );
}
