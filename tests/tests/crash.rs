//! `kill -9` at random moments of a renewal, many times, for a password account, a
//! BigFix account (whose renewal creates a token and revokes the old one) and a
//! BigAnimal account (whose refresh token rotates): every time the account still
//! renews afterwards, nothing stored is lost, and the database passes
//! `PRAGMA integrity_check`.

use std::time::{Duration, Instant};

use serde_json::json;
use tokenkeeper_e2e::{Sandbox, Session};

/// A small deterministic generator, so a failing run can be replayed from its seed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// The vault key, read once from the keyring.
fn vault_key(s: &Session) -> String {
    s.keyring_lookup(&s.service(), "vault-key")
        .expect("vault key")
        .trim()
        .to_string()
}

fn integrity(s: &Session, key: &str) -> String {
    let conn = rusqlite::Connection::open(s.data_dir.join("vault.db")).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{key}'\";"))
        .unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// Waits until the sandbox has counted one more `request` than `before` (or the child
/// ended first), and says when.
fn wait_for_request(
    sb: &Sandbox,
    request: &str,
    before: u64,
    child: &mut std::process::Child,
) -> Option<Instant> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if sb.requests(request) > before {
            return Some(Instant::now());
        }
        if child.try_wait().ok().flatten().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("{request}: the renewal never reached the vendor");
}

fn seed() -> u64 {
    let seed = std::env::var("TOKENKEEPER_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        });
    eprintln!("TOKENKEEPER_CRASH_SEED={seed}");
    seed
}

fn kills() -> usize {
    std::env::var("TOKENKEEPER_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15)
}

/// What the kills of one account came to.
#[derive(Debug, Default)]
struct Figures {
    kills: usize,
    /// Killed after its request reached the vendor.
    after_ask: usize,
    /// The renewal had finished before the kill.
    finished: usize,
    /// Killed after the issuer rotated the refresh token and before the keyring
    /// stored the new one: the keyring holds the one the issuer just replaced.
    in_window: usize,
    /// Refresh tokens lost: the next renewal was refused and a human had to sign in.
    lost: usize,
    /// Old refresh tokens the issuer accepted inside its reuse interval.
    reuses: u64,
}

/// The sandbox's OAuth counters (both issuers).
fn oauth(sb: &Sandbox, key: &str) -> u64 {
    sb.stats()["oauth"][key].as_u64().expect("oauth counter")
}

/// The account's access token works at its vendor now.
fn assert_token_works(s: &Session, sb: &Sandbox, name: &str, token: &str, context: &str) {
    let status = match name {
        "ts" => sb.truesight_about(token),
        "ba" => sb.get_status(
            &format!("{}/api/v3/projects", sb.url("biganimal")),
            &format!("Bearer {token}"),
        ),
        "bf" => sb
            .bigfix_client()
            .get(format!("{}/api/login", sb.url("bigfix")))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
            .as_u16(),
        other => panic!("no check for {other}"),
    };
    assert_eq!(
        status, 200,
        "{name}, {context}: the stored token is refused ({:?})",
        s.root
    );
}

/// Kills `tokenkeeper renew NAME` at random moments, `kills` times (more while no
/// kill landed where it matters), and after each kill checks what was stored, that
/// the next renewal goes through (or, for a rotating account at a `strict` issuer,
/// counts a lost refresh token and signs in again), that the token works at the
/// vendor, and that the database passes `integrity_check`.
#[allow(clippy::too_many_arguments)]
fn kill_renewals(
    s: &Session,
    sb: &Sandbox,
    key: &str,
    name: &str,
    request: &str,
    rng: &mut Lcg,
    kills: usize,
    strict: bool,
    seed: u64,
) -> Figures {
    let rotating = name == "ba";
    let item = s.account_item(name);
    // What must hold in a round: a rotating account's keyring holds the issuer's
    // current refresh token. Checked before the kills too.
    let holds_current = |context: &str| {
        if rotating {
            let stored = item.secrets(s);
            let refresh = stored["refresh_token"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}, {context}: no refresh token stored"));
            let state = sb.refresh_token_state(refresh);
            assert_eq!(
                state["current"], true,
                "{name}, {context}: the keyring's refresh token is not the issuer's current \
                 one: {state} (TOKENKEEPER_CRASH_SEED={seed})"
            );
        }
    };
    // A renewal's length, and its tail from the vendor's request to the exit, as
    // measured here (median of three), so the kills land before, during and after
    // the vendor call whatever this machine's speed.
    s.cli(&["renew", name], None).ok();
    holds_current("after a plain renewal");
    let mut timings: Vec<(u64, u64)> = (0..3)
        .map(|_| {
            let asked_before = sb.requests(request);
            let started = Instant::now();
            let mut child = s.spawn_cli(&[], &["renew", name]);
            let asked = wait_for_request(sb, request, asked_before, &mut child);
            let status = child.wait().expect("wait");
            assert!(status.success(), "{name}: a plain renewal failed");
            holds_current("after a plain renewal");
            let total = started.elapsed().as_millis() as u64;
            (
                total,
                total - asked.unwrap_or(started).duration_since(started).as_millis() as u64,
            )
        })
        .collect();
    timings.sort();
    let span = std::env::var("TOKENKEEPER_CRASH_SPAN_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or((timings[1].0 * 6 / 5).max(20));
    timings.sort_by_key(|t| t.1);
    let tail = timings[1].1.max(2);
    let mut f = Figures::default();
    holds_current("before the kills");
    let mut round = 0;
    // Every other kill is timed from the vendor's request, so some land in the
    // window between the vendor's answer and the keyring write; if none did, a few
    // more rounds kill soon after the request (the test must not prove nothing).
    let landed = |f: &Figures| if rotating { f.in_window } else { f.after_ask };
    while round < kills || (landed(&f) == 0 && round < kills * 3) {
        let after_ask = strict || round % 2 == 1 || round >= kills;
        let asked_before = sb.requests(request);
        let mut child = s.spawn_cli(&[], &["renew", name]);
        let delay = if after_ask {
            wait_for_request(sb, request, asked_before, &mut child);
            Duration::from_millis(rng.below(tail))
        } else {
            Duration::from_millis(rng.below(span))
        };
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().expect("wait");
        let when = format!(
            "round {round}, killed {delay:?} after {} (TOKENKEEPER_CRASH_SEED={seed})",
            if after_ask {
                "the vendor was asked"
            } else {
                "the start"
            },
        );
        use std::os::unix::process::ExitStatusExt;
        if status.signal().is_none() {
            f.finished += 1;
        } else if sb.requests(request) > asked_before {
            f.after_ask += 1;
        }
        // Where the kill landed, as the issuer and the keyring tell it.
        let mut window = false;
        if rotating {
            let stored = item.secrets(s);
            let refresh = stored["refresh_token"].as_str().expect("a refresh token");
            let state = sb.refresh_token_state(refresh);
            if state["previous"] == true && state["revoked"] == false {
                // The issuer rotated, the keyring never got the new one.
                window = true;
                f.in_window += 1;
            } else {
                assert_eq!(
                    state["current"], true,
                    "{name}, {when}: the keyring holds a refresh token the issuer neither \
                     takes nor just replaced: {state}"
                );
            }
        }
        let reuses_before = oauth(sb, "reuses");
        // The next renewal must go through, without waiting out the dead lease.
        let retried = Instant::now();
        let next = s.cli(&["renew", name], None);
        assert!(
            retried.elapsed() < Duration::from_secs(20),
            "{name}: renewal waited"
        );
        if window && strict {
            // A strict issuer takes the replaced token for a replay: the family is
            // revoked and a human must sign in again. A loss, counted, not hidden.
            assert_eq!(
                next.code, 3,
                "{name}, {when}: a strict issuer refuses the old refresh token: {}",
                next.stderr
            );
            f.lost += 1;
            let (login, _) = s.device_sign_in(sb, &["login", name], true);
            login.ok();
        } else {
            assert_eq!(next.code, 0, "{name}, {when}: {}", next.stderr);
        }
        if rotating {
            let reused = oauth(sb, "reuses") - reuses_before;
            f.reuses += reused;
            assert_eq!(
                reused,
                u64::from(window && !strict),
                "{name}, {when}: the issuer accepts the replaced refresh token exactly when \
                 the kill left it in the keyring"
            );
        }
        holds_current(&when);
        let token = item.secrets(s)["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}, {when}: no access token stored"))
            .to_string();
        assert_token_works(s, sb, name, &token, &when);
        assert_eq!(integrity(s, key), "ok", "{name}, {when}");
        round += 1;
    }
    f.kills = round;
    eprintln!(
        "{name}{}: {} kills over {span} ms (TOKENKEEPER_CRASH_SPAN_MS), tail {tail} ms: {} after \
         the vendor was asked, {} after the renewal finished, {} between the issuer's answer and \
         the keyring write; {} refresh tokens lost, {} reuses",
        if strict { " (strict issuer)" } else { "" },
        f.kills,
        f.after_ask,
        f.finished,
        f.in_window,
        f.lost,
        f.reuses
    );
    assert!(
        f.after_ask >= 1,
        "{name}: no kill landed after the vendor call started; the test proved nothing \
         (TOKENKEEPER_CRASH_SEED={seed})"
    );
    assert!(
        f.finished < f.kills,
        "{name}: every renewal finished before its kill"
    );
    f
}

#[test]
fn renewals_killed_at_random_moments_lose_nothing() {
    let seed = seed();
    let mut rng = Lcg(seed);
    let kills = kills();

    let s = Session::start();
    // Auth0's reuse interval: a client that died after the issuer rotated the
    // refresh token but before the answer was stored may present the old one again.
    let sb = Sandbox::start(&["--device-interval", "1", "--oauth-reuse-interval", "60"]);
    s.add_sandbox_truesight(&sb, "ts").ok();
    s.add_sandbox_bigfix(&sb, "bf").ok();
    s.add_sandbox_biganimal(&sb, "ba").ok();
    let key = vault_key(&s);
    assert_eq!(integrity(&s, &key), "ok");

    // (account, the request that does its renewal at the vendor)
    let renewals = [
        ("ts", "POST /truesight/tsws/api/v10.1/token"),
        ("bf", "POST /api/token"),
        ("ba", "POST /biganimal-auth/oauth/token"),
    ];
    for (name, request) in renewals {
        let f = kill_renewals(&s, &sb, &key, name, request, &mut rng, kills, false, seed);
        assert_eq!(f.lost, 0, "{name}: {f:?}");
        if name == "ba" {
            // Every reuse is explained by a kill that truly left the replaced token.
            assert!(f.reuses <= f.in_window as u64, "{f:?}");
            assert!(
                f.in_window >= 1,
                "ba: no kill landed between the issuer's answer and the keyring write \
                 (TOKENKEEPER_CRASH_SEED={seed}): {f:?}"
            );
        }
    }

    // Each account's token works at its vendor.
    let ts = s.token("ts");
    assert_eq!(sb.truesight_about(&ts), 200);
    let ba = s.token("ba");
    let projects = format!("{}/api/v3/projects", sb.url("biganimal"));
    assert_eq!(sb.get_status(&projects, &format!("Bearer {ba}")), 200);
    let bf = s.token("bf");
    let login = sb
        .bigfix_client()
        .get(format!("{}/api/login", sb.url("bigfix")))
        .bearer_auth(&bf)
        .send()
        .unwrap()
        .status();
    assert_eq!(login.as_u16(), 200);

    let oauth = &sb.stats()["oauth"];
    eprintln!("oauth: {oauth}");
    assert_eq!(oauth["replays"], 0, "{oauth}");
    assert_eq!(oauth["families_revoked"], 0, "{oauth}");
    // BigFix: rotations left no token of ours behind but the one in use (a kill
    // between creating and revoking may leave one, which `bigfix tokens` flags).
    let listed = s
        .cli(&["bigfix", "tokens", "bf", "--json"], None)
        .ok()
        .json();
    let tracked: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["tracked"] == json!(true))
        .collect();
    assert_eq!(tracked.len(), 1, "{listed}");
}

/// The same kills at a strict issuer (no reuse interval, as Auth0 runs without one):
/// a kill between the issuer's answer and the keyring write loses the refresh token
/// (the next renewal presents the replaced one, a replay, and the family is revoked).
/// The test counts and prints that loss rate rather than hiding it, and checks that
/// nothing else loses one.
#[test]
fn a_strict_issuer_loses_the_refresh_token_only_to_kills_before_the_keyring_write() {
    let seed = seed();
    let mut rng = Lcg(seed ^ 0x5eed);
    let s = Session::start();
    let sb = Sandbox::start(&["--device-interval", "1"]);
    s.add_sandbox_biganimal(&sb, "ba").ok();
    let key = vault_key(&s);
    let f = kill_renewals(
        &s,
        &sb,
        &key,
        "ba",
        "POST /biganimal-auth/oauth/token",
        &mut rng,
        kills(),
        true,
        seed,
    );
    eprintln!(
        "strict issuer: {} of {} kills lost the refresh token ({:.0}%)",
        f.lost,
        f.kills,
        100.0 * f.lost as f64 / f.kills as f64
    );
    assert_eq!(f.lost, f.in_window, "{f:?}");
    assert_eq!(f.reuses, 0, "{f:?}");
    let oauth = &sb.stats()["oauth"];
    assert_eq!(oauth["replays"], json!(f.lost), "{oauth}");
    assert_eq!(oauth["families_revoked"], json!(f.lost), "{oauth}");
}
