//! The alerts as an admin sees them: the agent the desktop app starts (`--tray`, no
//! window, under Xvfb) with a real notification daemon (dunst) on the session's
//! D-Bus. One notification per threshold, none repeated while tokens renew, one at
//! once when a renewal needs a human, and a click on one that opens the window (the
//! agent starts it), which ends when closed.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use tokenkeeper_e2e::{wait_for, Display, Running, Sandbox, Session};

#[test]
fn one_notification_per_threshold_and_one_when_a_human_is_needed() {
    let s = Session::start();
    let display = Display::start();
    // Identical notifications are not stacked: a repeated alert would show twice.
    let _dunst = s.start_dunst(&display);
    let sb = Sandbox::start(&["--bigid-session-ttl", "8"]);
    let user_token = sb.bigid_user_token(3, true);
    s.add_bigid_user_token("ut", &sb.url("bigid"), &user_token)
        .ok();

    let _app = s.start_desktop(&display, &["--tray"]);
    // The first alert, clicked while it shows (dunst invokes its default action):
    // with no window open, the agent starts one on the account; closing it ends the
    // window's process, and the agent goes on.
    const WINDOW: &str = "tokenkeeper-des";
    wait_for(
        "the first notification on screen",
        Duration::from_secs(60),
        || s.dunstctl(&["count", "displayed"]).trim() != "0",
    );
    // The launcher (`--tray`) exits once the agent runs, which may be after the
    // agent's first notification; no window opens until the click.
    wait_for(
        "no window before the click",
        Duration::from_secs(10),
        || s.processes_named(WINDOW).is_empty(),
    );
    let agent = s.agent_pid().expect("the agent");
    s.dunstctl(&["action", "0"]);
    wait_for(
        "the window, opened by the click",
        Duration::from_secs(30),
        || tokenkeeper_e2e::window_mapped(&display.name, "Tokenkeeper"),
    );
    // (A helper the window spawns may pass for a moment as a second one; a second
    // window would stay.)
    wait_for("one window process", Duration::from_secs(10), || {
        s.processes_named(WINDOW).len() == 1
    });
    wait_for(
        "the window's process to end",
        Duration::from_secs(30),
        || {
            tokenkeeper_e2e::close_window(&display.name, "Tokenkeeper");
            std::thread::sleep(Duration::from_millis(500));
            s.processes_named(WINDOW).is_empty()
        },
    );
    assert_eq!(s.agent_pid(), Some(agent), "the agent stays");
    let first = s.wait_for_notifications(1, Duration::from_secs(60));
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].0, "Sign-in due soon");
    assert!(
        first[0].1.contains("BigID account 'ut'") && first[0].1.contains("within 2 days"),
        "{first:?}"
    );

    // Sessions of 8 s renew meanwhile; nothing more is shown.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        // At most one (a failing dunstctl fails the test).
        let now = s.notifications_shown();
        assert!(
            now.len() <= 1,
            "{now:?}; dunst said: {}",
            std::fs::read_to_string(s.root.path().join("dunst.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let renewals = sb.requests("GET /bigid/api/v1/refresh-access-token");
    assert!(renewals >= 3, "the app renewed meanwhile: {renewals}");

    sb.admin("/bigid/revoke-user-tokens", json!({}));
    let second = s.wait_for_notifications(2, Duration::from_secs(30));
    assert_eq!(second.len(), 2, "{second:?}");
    let needs = second
        .iter()
        .find(|(summary, _)| summary == "Sign-in needed");
    assert!(
        needs.is_some_and(|(_, body)| body.contains("'ut'")),
        "{second:?}"
    );
    // The window stayed closed: the agent alone raised every alert.
    assert!(s.processes_named(WINDOW).is_empty(), "no window");
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(
        s.notifications_shown().len(),
        2,
        "a refusal is notified once: {:?}",
        s.notifications_shown()
    );
    for (summary, body) in s.notifications_shown() {
        assert!(!summary.contains(&user_token) && !body.contains(&user_token));
    }
}

/// An alert raised while no notification server runs (the app started at login
/// before the desktop's daemon, or the daemon crashed) is not lost: it is shown once
/// a server answers, and only once.
#[test]
fn an_alert_no_server_took_is_shown_once_a_server_answers() {
    let s = Session::start();
    let display = Display::start();
    let sb = Sandbox::start(&[]);
    let user_token = sb.bigid_user_token(3, true);
    s.add_bigid_user_token("ut", &sb.url("bigid"), &user_token)
        .ok();
    let log = s.root.path().join("desktop.log");
    let _app = Running(
        s.desktop_command(&display, &[])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("tokenkeeper-desktop"),
    );
    // The alert is raised (it is in the account's history) but nothing can show it.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let shown_json = s.cli(&["show", "ut", "--json"], None).ok().json();
        let raised = shown_json["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["kind"] == "alert"));
        // The agent the app started says it, in its log in the vault's folder.
        let told = std::fs::read_to_string(s.data_dir.join("agent.log")).unwrap_or_default();
        if raised && told.contains("sent again once a server answers") {
            break;
        }
        assert!(
            Instant::now() < end,
            "no undelivered alert: {shown_json}; the app said: {told}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let _dunst = s.start_dunst(&display);
    let first = s.wait_for_notifications(1, Duration::from_secs(40));
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].0, "Sign-in due soon");
    assert!(first[0].1.contains("BigID account 'ut'"), "{first:?}");
    std::thread::sleep(Duration::from_secs(25));
    assert_eq!(
        s.notifications_shown().len(),
        1,
        "delivered once: {:?}",
        s.notifications_shown()
    );
}
