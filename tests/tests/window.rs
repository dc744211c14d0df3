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
    let token = s.token("ts-window");

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
    // The CLI sees the demo vault too, and its token works against the sandbox the
    // app runs (while it runs: the stand-ins live in the app).
    let list = s.accounts();
    let demo = list
        .iter()
        .find(|a| a["name"] == "truesight-demo")
        .expect("truesight-demo listed")
        .clone();
    let base = demo["base_url"].as_str().expect("base_url");
    let token = s.token("truesight-demo");
    assert!(!token.is_empty(), "a demo token");
    let about = |authorization: &str| {
        reqwest::blocking::Client::new()
            .get(format!("{base}/tsws/api/v10.1/about"))
            .header("Authorization", authorization)
            .send()
            .expect("the app's TrueSight stand-in")
            .status()
            .as_u16()
    };
    assert_eq!(
        about(&format!("authToken {token}")),
        200,
        "the demo token works at {base}"
    );
    assert_eq!(
        about("authToken _not-a-token"),
        401,
        "and the stand-in does check tokens"
    );
    app.close();
    let names: Vec<&str> = list.iter().map(|a| a["name"].as_str().unwrap()).collect();
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

/// 2,000 accounts: the list keeps only the rows in view in the page, orders them most
/// urgent first (checked at both ends against the order computed here from
/// `tokenkeeper list --json`), and the state filter narrows it.
#[test]
fn a_large_vault_is_virtualized_most_urgent_first_and_filtered_by_state() {
    let wait = Duration::from_secs(30);
    let s = Session::start();
    let n = 2000;
    let mut seed = s.command(bin("tokenkeeper-bench"));
    seed.args(["inner-seed", &n.to_string()]);
    tokenkeeper_e2e::run(seed, None).ok();
    let listed = s.cli(&["list", "--json"], None).ok().json();
    let mut expected: Vec<&serde_json::Value> = listed.as_array().expect("a list").iter().collect();
    let rank = |a: &serde_json::Value| match a["state"].as_str() {
        Some("needs-sign-in") => 0,
        Some("expired") => 1,
        Some("renew-soon") => 2,
        _ => 3,
    };
    let nulls_last = |v: &serde_json::Value| v.as_i64().map_or((1, 0), |t| (0, t));
    expected.sort_by_key(|a| {
        (
            rank(a),
            nulls_last(&a["human_deadline_ms"]),
            nulls_last(&a["expires_at_ms"]),
            a["name"].as_str().unwrap_or_default().to_string(),
        )
    });
    let expected: Vec<&str> = expected
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    let needing = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "needs-sign-in")
        .count();
    assert!(
        needing > 0 && needing < n,
        "the seed mixes states: {needing}"
    );

    let display = Display::start();
    let driver = Driver::start(&s, &display.name, &[]);
    let app = driver.launch(&bin("tokenkeeper-desktop"), &[]);
    app.wait_text("[data-testid='account']", Duration::from_secs(60));
    let count = format!("{n} of {n} accounts");
    tokenkeeper_e2e::wait_for("every account counted", wait, || {
        app.wait_text("[data-testid='count']", wait)
            .contains(&count)
    });
    let rows_in_page = || -> Vec<String> {
        let names = app.execute(
            "return [...document.querySelectorAll(\"[data-testid='account']\")].map(r => r.dataset.name);",
            json!([]),
        );
        serde_json::from_value(names).expect("row names")
    };
    let contiguous_at = |rows: &[String]| -> Option<usize> {
        let first = expected.iter().position(|n| *n == rows[0])?;
        (expected.get(first..first + rows.len())? == rows).then_some(first)
    };

    let top = rows_in_page();
    assert!(
        top.len() > 5 && top.len() < 100,
        "virtualized: {} rows in the page for {n} accounts",
        top.len()
    );
    assert_eq!(contiguous_at(&top), Some(0), "most urgent first: {top:?}");

    app.execute(
        "const l = document.querySelector(\"[data-testid='accounts']\"); l.scrollTop = l.scrollHeight;",
        json!([]),
    );
    tokenkeeper_e2e::wait_for("the list's end in view", wait, || {
        rows_in_page().last().map(String::as_str) == expected.last().copied()
    });
    let bottom = rows_in_page();
    assert!(bottom.len() < 100, "still virtualized: {}", bottom.len());
    assert!(
        contiguous_at(&bottom).is_some(),
        "the end of the list in order: {bottom:?}"
    );

    app.select("[data-testid='filter-state']", "needs-sign-in");
    let narrowed = format!("{needing} of {n} accounts");
    tokenkeeper_e2e::wait_for("the state filter", wait, || {
        app.wait_text("[data-testid='count']", wait)
            .contains(&narrowed)
    });
    let states = app.execute(
        "return [...document.querySelectorAll(\"[data-testid='account']\")].map(r => r.dataset.state);",
        json!([]),
    );
    let states: Vec<String> = serde_json::from_value(states).expect("states");
    assert!(
        !states.is_empty() && states.iter().all(|s| s == "needs-sign-in"),
        "the filtered list, from its top although the list was scrolled to its end: {states:?}"
    );
    // The accounts that need a sign-in lead the whole list, so the filtered rows are
    // its first ones, in the same order.
    assert_eq!(
        contiguous_at(&rows_in_page()),
        Some(0),
        "{:?}",
        rows_in_page()
    );
    app.close();
}

/// The window follows the system's theme: GTK's dark preference turns the page dark
/// (through `prefers-color-scheme`), and the default theme keeps it light.
#[test]
fn the_window_follows_the_systems_light_or_dark_theme() {
    let background = |env: &[(&str, &str)]| {
        let s = Session::start();
        let display = Display::start();
        let driver = Driver::start(&s, &display.name, env);
        let app = driver.launch(&bin("tokenkeeper-desktop"), &[]);
        app.wait_text("header", Duration::from_secs(30));
        let dark = app.execute(
            "return matchMedia('(prefers-color-scheme: dark)').matches;",
            json!([]),
        );
        let rgb = app.execute(
            "return getComputedStyle(document.body).backgroundColor;",
            json!([]),
        );
        app.close();
        (dark, rgb.as_str().unwrap_or_default().to_string())
    };
    let luminance = |rgb: &str| -> u32 {
        let n: Vec<u32> = rgb
            .trim_start_matches("rgba(")
            .trim_start_matches("rgb(")
            .trim_end_matches(')')
            .split(',')
            .take(3)
            .map(|p| p.trim().parse().unwrap_or(0))
            .collect();
        assert_eq!(n.len(), 3, "a colour: {rgb}");
        (n[0] * 299 + n[1] * 587 + n[2] * 114) / 1000
    };
    let (light_query, light) = background(&[("GTK_THEME", "Adwaita")]);
    let (dark_query, dark) = background(&[("GTK_THEME", "Adwaita:dark")]);
    assert_eq!(light_query, json!(false), "light theme: {light}");
    assert_eq!(dark_query, json!(true), "dark theme: {dark}");
    assert!(luminance(&light) > 200, "a light page: {light}");
    assert!(luminance(&dark) < 60, "a dark page: {dark}");
}
