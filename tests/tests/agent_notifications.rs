//! The headless agent's alerts as an admin sees them (issue 13): `tokenkeeper agent
//! --no-tray` started with no display, no window ever opened and no GTK or WebKit
//! loaded, with a real notification daemon (dunst) on the session's D-Bus. One
//! notification per threshold, none repeated while tokens renew, one at once when a
//! renewal needs a human, and no secret in any of them.

use std::time::{Duration, Instant};

use serde_json::json;
use tokenkeeper_e2e::{wait_for, Agent, Display, Sandbox, Session};

/// What the agent said on stderr so far.
fn said(agent: &Agent) -> String {
    agent.log().join("\n")
}

/// The shared libraries the agent has mapped.
fn libraries(agent: &Agent) -> String {
    std::fs::read_to_string(format!("/proc/{}/maps", agent.child.id())).expect("its maps")
}

#[test]
fn the_headless_agent_notifies_each_alert_once_with_no_window_and_no_secret() {
    let s = Session::start();
    let display = Display::start();
    // Identical notifications are not stacked: a repeated alert would show twice.
    let _dunst = s.start_dunst(&display);
    let sb = Sandbox::start(&["--bigid-session-ttl", "8"]);
    // A user token that dies in 3 days: its sign-in is due within 2 days.
    let user_token = sb.bigid_user_token(3, true);
    s.add_bigid_user_token("ut", &sb.url("bigid"), &user_token)
        .ok();

    let agent = Agent::start(&s);
    let first = s.wait_for_notifications(1, Duration::from_secs(60));
    assert_eq!(
        first.len(),
        1,
        "{first:?}; the agent said: {}",
        said(&agent)
    );
    assert_eq!(first[0].0, "Sign-in due soon");
    assert!(
        first[0].1.contains("BigID account 'ut'") && first[0].1.contains("within 2 days"),
        "{first:?}"
    );
    // Delivery is checked: the agent knows the server's id for it.
    wait_for(
        "the agent to log the delivery",
        Duration::from_secs(10),
        || said(&agent).contains("notified about 'ut' (notification "),
    );
    let maps = libraries(&agent);
    for heavy in ["libgtk", "libwebkit", "libjavascriptcore", "libgdk"] {
        assert!(!maps.contains(heavy), "the agent loaded {heavy}");
    }

    // Sessions of 8 s renew meanwhile; nothing more is shown.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        let now = s.notifications_shown();
        assert!(now.len() <= 1, "{now:?}; the agent said: {}", said(&agent));
        std::thread::sleep(Duration::from_secs(1));
    }
    let renewals = sb.requests("GET /bigid/api/v1/refresh-access-token");
    assert!(renewals >= 3, "the agent renewed meanwhile: {renewals}");

    // A refused renewal needs the admin now: shown at once, and once.
    sb.admin("/bigid/revoke-user-tokens", json!({}));
    let second = s.wait_for_notifications(2, Duration::from_secs(30));
    assert_eq!(
        second.len(),
        2,
        "{second:?}; the agent said: {}",
        said(&agent)
    );
    let needs = second
        .iter()
        .find(|(summary, _)| summary == "Sign-in needed");
    assert!(
        needs.is_some_and(|(_, body)| body.contains("'ut'")),
        "{second:?}"
    );
    std::thread::sleep(Duration::from_secs(12));
    let shown = s.notifications_shown();
    assert_eq!(shown.len(), 2, "a refusal is notified once: {shown:?}");

    // No secret in what the daemon received, nor in the agent's log.
    let mut secrets = s.stored_secrets();
    secrets.push(user_token);
    let said = said(&agent);
    for secret in secrets.iter().filter(|x| x.len() >= 8) {
        for (summary, body) in &shown {
            assert!(
                !summary.contains(secret.as_str()) && !body.contains(secret.as_str()),
                "a stored secret in a notification"
            );
        }
        assert!(
            !said.contains(secret.as_str()),
            "a stored secret in the log"
        );
    }
}
