//! The renewal engine for real: `tokenkeeper watch` (the engine the desktop app runs
//! in its tray) against the sandbox over HTTP with a real keyring. Short-lived tokens
//! stay valid with no gap while refresh tokens rotate without a replay, and alerts
//! come once per threshold, across restarts, and at once when a human is needed.
//!
//! `TOKENKEEPER_SOAK_SECS=3600` makes the no-gap run last an hour.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokenkeeper_e2e::{now_ms, Sandbox, Session};

/// `tokenkeeper watch --json`, its events collected as they come.
struct Watch {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    fn start(s: &Session) -> Self {
        let mut child = s.spawn_cli(&[], &["watch", "--json"]);
        let events = Arc::new(Mutex::new(Vec::new()));
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        let sink = events.clone();
        let reader = std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("watch printed {line:?}: {e}"));
                sink.lock().unwrap().push(v);
            }
        });
        Self {
            child,
            events,
            reader: Some(reader),
        }
    }

    fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    fn wait_for(&self, what: &str, timeout: Duration, ok: impl Fn(&[Value]) -> bool) {
        let end = Instant::now() + timeout;
        while !ok(&self.events()) {
            assert!(Instant::now() < end, "{what}: events {:#?}", self.events());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops it as a service manager would (SIGTERM) and checks it exits cleanly.
    fn stop(mut self) -> Vec<Value> {
        tokenkeeper_e2e::terminate(&self.child);
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "watch exits 0 on SIGTERM: {status}");
        // Every line it printed before exiting is read once its stdout closes.
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the event reader");
        }
        self.events()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn renewed(events: &[Value], account: &str) -> usize {
    events
        .iter()
        .filter(|e| e["type"] == "renewed" && e["account"] == account)
        .count()
}

fn alerts(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["type"] == "alert")
        .cloned()
        .collect()
}

/// `issued`: the tokens a vendor issued to one account (`issued_at_ms`,
/// `expires_at_ms`). From the first one issued after `from_ms` on (the watch's own
/// renewals), each token was issued before the one before it expired, and the last
/// one outlived `until_ms`: at no instant was the account without a valid token.
fn assert_chain_without_gap(name: &str, issued: &Value, from_ms: i64, until_ms: i64) {
    let mut tokens: Vec<(i64, i64)> = issued
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no issued tokens: {issued}"))
        .iter()
        .map(|t| {
            (
                t["issued_at_ms"].as_i64().expect("issued_at_ms"),
                t["expires_at_ms"].as_i64().expect("expires_at_ms"),
            )
        })
        .collect();
    tokens.sort_unstable();
    let first = tokens
        .iter()
        .position(|(at, _)| *at >= from_ms)
        .unwrap_or_else(|| panic!("{name}: nothing issued after the watch started"));
    let chain = &tokens[first..];
    assert!(chain.len() >= 2, "{name}: {chain:?}");
    for pair in chain.windows(2) {
        let ((_, expired), (next_at, _)) = (pair[0], pair[1]);
        assert!(
            next_at < expired,
            "{name}: a gap of {} ms: the next token was issued at {next_at}, the one \
             before it expired at {expired} (chain: {chain:?})",
            next_at - expired
        );
    }
    let (_, last_expires) = chain[chain.len() - 1];
    assert!(
        last_expires > until_ms,
        "{name}: the last token expired at {last_expires}, before the soak ended at {until_ms}"
    );
}

#[test]
fn short_lived_tokens_stay_valid_with_no_gap_and_refresh_tokens_rotate_without_replay() {
    let soak = std::env::var("TOKENKEEPER_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40u64);
    let s = Session::start();
    let sb = Sandbox::start(&[
        "--truesight-token-ttl",
        "6",
        "--oauth-access-ttl",
        "6",
        "--device-interval",
        "1",
    ]);
    // TrueSight last: its 6-second token must not run out while BigAnimal signs in.
    s.add_sandbox_biganimal(&sb, "ba").ok();
    s.add_sandbox_truesight(&sb, "ts").ok();
    let projects = format!("{}/api/v3/projects", sb.url("biganimal"));
    let (ts_item, ba_item) = (s.account_item("ts"), s.account_item("ba"));

    let watch_started_ms = now_ms();
    let watch = Watch::start(&s);
    // From the watch's first renewal of each on: a slow first start is not a gap.
    watch.wait_for("the first renewals", Duration::from_secs(30), |e| {
        renewed(e, "ts") >= 1 && renewed(e, "ba") >= 1
    });
    let started = Instant::now();
    let mut probes = 0;
    while started.elapsed() < Duration::from_secs(soak) {
        // What a script would use right now: the token stored in the keyring.
        let ts = ts_item.secrets(&s)["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            sb.truesight_about(&ts),
            200,
            "TrueSight token dead after {:?}",
            started.elapsed()
        );
        let ba = ba_item.secrets(&s)["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            sb.get_status(&projects, &format!("Bearer {ba}")),
            200,
            "BigAnimal token dead after {:?}",
            started.elapsed()
        );
        probes += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let soak_ended_ms = now_ms();
    let events = watch.stop();
    // Between the samples too: the vendors' own record of every token they issued
    // says each account's next token was issued before the one before it expired.
    let issued = sb.issued();
    assert_chain_without_gap("ts", &issued["truesight"], watch_started_ms, soak_ended_ms);
    assert_chain_without_gap("ba", &issued["biganimal"], watch_started_ms, soak_ended_ms);
    let expected = (soak / 6) as usize;
    assert!(
        renewed(&events, "ts") >= expected,
        "{} renewals of ts",
        renewed(&events, "ts")
    );
    assert!(
        renewed(&events, "ba") >= expected,
        "{} renewals of ba",
        renewed(&events, "ba")
    );
    // About two a second; at least one every other second on a loaded machine.
    assert!(probes > soak as usize / 2, "{probes} probes");
    let oauth = &sb.stats()["oauth"];
    assert_eq!(oauth["replays"], 0, "{oauth}");
    assert!(
        oauth["refreshes"].as_u64().unwrap() >= expected as u64,
        "{oauth}"
    );
    assert!(
        !events.iter().any(|e| e["type"] == "renewal-failed"),
        "{events:#?}"
    );
}

#[test]
fn alerts_come_once_per_threshold_across_restarts_and_at_once_when_a_human_is_needed() {
    let s = Session::start();
    let sb = Sandbox::start(&["--bigid-session-ttl", "8"]);
    let url = sb.url("bigid");
    // A user token that expires in three days: the 7-day threshold has passed.
    let user_token = sb.bigid_user_token(3, true);
    s.add_bigid_user_token("ut", &url, &user_token).ok();

    let watch = Watch::start(&s);
    watch.wait_for("the 7-day alert", Duration::from_secs(20), |e| {
        !alerts(e).is_empty()
    });
    // Renewals go on (8 s sessions) without raising the alert again.
    watch.wait_for("two renewals", Duration::from_secs(30), |e| {
        renewed(e, "ut") >= 2
    });
    let events = watch.stop();
    let raised = alerts(&events);
    assert_eq!(raised.len(), 1, "{raised:#?}");
    assert_eq!(raised[0]["kind"], "deadline-soon");
    assert_eq!(raised[0]["account"], "ut");
    assert_eq!(raised[0]["threshold_s"], 7 * 86400);
    let message = raised[0]["message"].as_str().unwrap();
    assert!(
        message.contains("BigID account 'ut'") && message.contains("within 2 days"),
        "{message}"
    );

    // A restart raises nothing already raised; a revoked user token is a human's
    // job, alerted at the next renewal, once.
    // (Checked after its first renewal, so that its passes over the thresholds ran.)
    let watch = Watch::start(&s);
    watch.wait_for(
        "a renewal after the restart",
        Duration::from_secs(30),
        |e| renewed(e, "ut") >= 1,
    );
    assert!(alerts(&watch.events()).is_empty(), "{:#?}", watch.events());
    sb.admin("/bigid/revoke-user-tokens", json!({}));
    watch.wait_for("the sign-in alert", Duration::from_secs(20), |e| {
        !alerts(e).is_empty()
    });
    std::thread::sleep(Duration::from_secs(10));
    let events = watch.stop();
    let raised = alerts(&events);
    assert_eq!(raised.len(), 1, "{raised:#?}");
    assert_eq!(raised[0]["kind"], "needs-sign-in");
    assert!(
        raised[0]["message"]
            .as_str()
            .unwrap()
            .contains("sign in again"),
        "{raised:#?}"
    );
    let failures: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "renewal-failed")
        .collect();
    assert_eq!(failures.len(), 1, "a refusal is not retried: {failures:#?}");
    assert_eq!(failures[0]["needs_human"], true);
    // The history records each alert, without a secret.
    let shown = s.cli(&["show", "ut", "--json"], None).ok();
    assert!(!shown.stdout.contains(&user_token));
    let history = shown.json()["events"].clone();
    let alert_events = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "alert")
        .count();
    assert_eq!(alert_events, 2, "{history:#}");
}
