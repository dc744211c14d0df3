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
    s.add_sandbox_biganimal(&sb, "ba").ok();
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
    let mut clis: Vec<(Instant, Child, Option<Instant>)> = (0..4)
        .map(|_| (Instant::now(), s.spawn_cli(&[], &["token", "ba"]), None))
        .collect();
    let spawned = Instant::now();
    assert_eq!(
        refreshes(),
        before,
        "all four started while the app's refresh was held at the issuer"
    );
    // When the issuer answered the app, and when each process ended.
    let mut answered = None;
    let end = Instant::now() + Duration::from_secs(30);
    while clis.iter().any(|(_, _, done)| done.is_none()) {
        assert!(Instant::now() < end, "the processes did not finish");
        if answered.is_none() && refreshes() > before {
            answered = Some(Instant::now());
        }
        for (_, child, done) in clis.iter_mut() {
            if done.is_none() && child.try_wait().expect("try_wait").is_some() {
                *done = Some(Instant::now());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let answered = answered.unwrap_or_else(Instant::now);
    // The issuer held the call open long after the last start: every process had
    // reached the vault (and its lease) by then, as a quick `token` below shows.
    let held_after_start = answered.duration_since(spawned);
    assert!(
        held_after_start >= Duration::from_millis(1500),
        "the refresh was held only {held_after_start:?} after the processes started"
    );
    let mut outputs = Vec::new();
    for (started, child, done) in clis {
        let done = done.expect("finished");
        // Each waited for the app's refresh: none ended before the issuer answered
        // (the poll above sees the answer up to a few milliseconds late).
        assert!(
            done + Duration::from_millis(100) >= answered,
            "a process ended {:?} before the issuer answered, after {:?}",
            answered.duration_since(done),
            done.duration_since(started)
        );
        let run = finish(child, Duration::from_secs(5));
        assert_eq!(run.code, 0, "{}", run.stderr);
        outputs.push(run.stdout.trim().to_string());
    }
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
    // A process reaches its answer (so the lease, which comes before) in far less
    // than the time the refresh was held after the four started.
    let quick = s.cli(&["token", "ba"], None).ok();
    assert_eq!(quick.stdout.trim(), stored);
    assert!(
        quick.took < held_after_start,
        "a plain token took {:?}, the hold after the starts {held_after_start:?}",
        quick.took
    );
    let projects = format!("{}/api/v3/projects", sb.url("biganimal"));
    assert_eq!(sb.get_status(&projects, &format!("Bearer {stored}")), 200);
    assert_eq!(sb.stats()["oauth"]["replays"], 0);
}
