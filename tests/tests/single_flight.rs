//! The desktop app and four `tokenkeeper` processes on one vault, at the moment a
//! rotating account falls due: exactly one refresh reaches the issuer, and all five
//! end with the same valid token (the lease lives in SQLite, across processes).

use std::process::Child;
use std::time::{Duration, Instant};

use tokenkeeper_e2e::{finish, Display, Sandbox, Session};

#[test]
fn the_app_and_four_cli_processes_renew_a_rotating_account_once() {
    let s = Session::start();
    let display = Display::start();
    let sb = Sandbox::start(&["--device-interval", "1", "--oauth-access-ttl", "20"]);
    s.add_biganimal(&sb, "ba").ok();
    let first = s.account_secrets("ba")["access_token"].clone();
    let refreshes = || sb.stats()["oauth"]["refreshes"].as_u64().unwrap();
    let token_calls = || sb.requests("POST /biganimal-auth/oauth/token");
    let before = refreshes();
    let calls_before = token_calls();

    // The issuer answers the next refresh five seconds late, so the others arrive
    // while the first renewal holds the lease.
    sb.fault("/biganimal-auth/oauth/token", "delay");
    let _app = s.start_desktop(&display, &[]);
    // The app's engine renews inside the window (the last 10 s of 20 s).
    let end = Instant::now() + Duration::from_secs(30);
    while token_calls() == calls_before {
        assert!(Instant::now() < end, "the app did not renew");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The app renews up to a quarter of the window early (jitter); scripts renew
    // from the window's start (20 s tokens: the last 10 s). At that moment, with the
    // app's refresh in flight, four scripts ask for the token.
    let expires = s.cli(&["list", "--json"], None).ok().json()[0]["expires_at_ms"]
        .as_i64()
        .unwrap();
    let renew_at = expires - 10_000;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    while now() < renew_at + 50 {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(refreshes(), before, "the app's refresh is still in flight");
    let clis: Vec<Child> = (0..4).map(|_| s.spawn_cli(&[], &["token", "ba"])).collect();
    let outputs: Vec<String> = clis
        .into_iter()
        .map(|c| {
            let run = finish(c, Duration::from_secs(30));
            assert_eq!(run.code, 0, "{}", run.stderr);
            run.stdout.trim().to_string()
        })
        .collect();

    assert_eq!(refreshes() - before, 1, "one refresh reached the issuer");
    assert_eq!(token_calls() - calls_before, 1);
    let stored = s.account_secrets("ba")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(serde_json::Value::String(stored.clone()), first, "renewed");
    for out in &outputs {
        assert_eq!(out, &stored, "every process ends with the app's token");
    }
    let projects = format!("{}/api/v3/projects", sb.url("biganimal"));
    assert_eq!(sb.get_status(&projects, &format!("Bearer {stored}")), 200);
    assert_eq!(sb.stats()["oauth"]["replays"], 0);
}
