//! The team store end to end, on a real OpenBao the tests start: three desktops
//! (three vaults, three keyrings) and a headless `watch` (no Secret Service: AppRole
//! from a file) share a rotating BigAnimal account, and it is renewed once per
//! rotation across all four; the same while the OpenBao leader is killed; a
//! read-only teammate gets tokens but cannot renew or change the account; each
//! failure of the team store is a clear error and never touches a local account;
//! and no secret appears in OpenBao's storage or audit log as given. And the
//! OpenBao token as an account: given, from userpass, or from an OIDC sign-in in
//! the browser; renewed, alerted on before its max TTL, and a team's login.

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokenkeeper_e2e::oidc::{authorizing_browser, OidcServer};
use tokenkeeper_e2e::openbao::{
    Cluster, DevServer, MEMBER_POLICY as MEMBER, READER_POLICY as READER, SERVER_POLICY as SERVER,
};
use tokenkeeper_e2e::{add_args, files_under, finish, now_ms, wait_for, Sandbox, Session};

/// A short-lived BigAnimal token: valid 2 s, then in its renewal window 2 s.
const ACCESS_TTL: &str = "4";

/// A desktop that shares a signed-in BigAnimal account `ba` in team `ops`.
fn first_desktop(sb: &Sandbox, addr: &str) -> Session {
    let a = Session::start();
    a.add_sandbox_biganimal(sb, "ba").ok();
    a.team_connect(addr, "alice");
    a.cli(&["team", "add", "ba", "--team", "ops"], None).ok();
    a
}

/// A teammate's desktop that joined team `ops`.
fn teammate(addr: &str, user: &str) -> Session {
    let s = Session::start();
    s.team_connect(addr, user);
    let joined = s.cli(&["team", "join", "ops"], None).ok();
    assert!(joined.stdout.contains("ba"), "{}", joined.stdout);
    s
}

/// `tokenkeeper watch --json` on a server without a desktop: AppRole from a file.
fn headless_watch(h: &Session, addr: &str, role_id: &str, secret_id: &str) -> Child {
    let file = h.write_file("secret-id", secret_id);
    h.headless_cli(
        &[
            ("TOKENKEEPER_TEAM_ADDR", addr),
            ("TOKENKEEPER_TEAM_NAME", "ops"),
            ("TOKENKEEPER_TEAM_ROLE_ID", role_id),
            ("TOKENKEEPER_TEAM_SECRET_ID_FILE", file.to_str().unwrap()),
        ],
        &["watch", "--json"],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn the headless watch")
}

/// Team members, a reader and a server role on `bao`.
fn set_up_policies(policy: impl Fn(&str, &str), userpass: impl Fn(&str, &str, &[&str])) {
    policy("tokenkeeper-member", MEMBER);
    policy("tokenkeeper-reader", READER);
    policy("tokenkeeper-server", SERVER);
    for user in ["alice", "bob", "carol"] {
        userpass(user, &format!("pw-{user}"), &["tokenkeeper-member"]);
    }
    userpass("rita", "pw-rita", &["tokenkeeper-reader"]);
}

/// A dev server with the team's policies and users (`set_up_policies`).
fn team_server(test: &str) -> Option<DevServer> {
    let bao = DevServer::start(test)?;
    set_up_policies(
        |n, h| bao.policy(n, h),
        |u, p, pol| bao.userpass_user(u, p, pol),
    );
    Some(bao)
}

/// The expiry of the shared token as `s` sees it after asking for a token.
fn expiry(s: &Session) -> i64 {
    s.cli(&["token", "ba"], None).ok();
    s.cli(&["list", "--json"], None).ok().json()[0]["expires_at_ms"]
        .as_i64()
        .expect("an expiry")
}

/// Asks each of `desktops` for the token at once; every one must succeed. Each token
/// is handed to `check` as soon as its process ends (a short-lived token is checked
/// while it is fresh, not after the slowest teammate). Returns their tokens.
fn all_ask(desktops: &[&Session], check: impl Fn(&str)) -> Vec<String> {
    let mut asking: Vec<Child> = desktops
        .iter()
        .map(|s| s.spawn_cli(&[], &["token", "ba"]))
        .collect();
    let give_up = Instant::now() + Duration::from_secs(150);
    let mut tokens = Vec::new();
    while !asking.is_empty() {
        assert!(Instant::now() < give_up, "a teammate's token took 150 s");
        match asking
            .iter_mut()
            .position(|c| c.try_wait().expect("the CLI's state").is_some())
        {
            Some(i) => {
                let run = finish(asking.swap_remove(i), Duration::from_secs(10));
                assert_eq!(run.code, 0, "a teammate's token failed: {}", run.stderr);
                let token = run.stdout.trim().to_string();
                check(&token);
                tokens.push(token);
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    tokens
}

/// The BigAnimal refresh grants the issuer answered, as the times it issued tokens.
fn refresh_grants(sb: &Sandbox) -> Vec<i64> {
    let issued = sb.issued();
    let mut times: Vec<i64> = issued["biganimal"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["issued_at_ms"].as_i64())
        .collect();
    times.sort_unstable();
    times
}

/// Runs `rotations` rotations with `desktops` all asking at the moment each falls
/// due; `during` is called once per rotation (a fault to inject). Checks every
/// token handed out is accepted by the issuer.
fn rotate(
    sb: &Sandbox,
    desktops: &[&Session],
    (rotations, ttl_ms): (usize, i64),
    mut during: impl FnMut(usize),
) -> BTreeSet<String> {
    let projects = format!("{}/api/v3/projects", sb.url("biganimal"));
    let mut seen = BTreeSet::new();
    for i in 0..rotations {
        // Due for renewal in the second half of its life.
        let due = expiry(desktops[i % desktops.len()]) - ttl_ms / 2;
        while now_ms() < due + 50 {
            std::thread::sleep(Duration::from_millis(10));
        }
        during(i);
        let accepted = |token: &str| {
            assert_eq!(
                sb.get_status(&projects, &format!("Bearer {token}")),
                200,
                "rotation {i}: a token the issuer does not accept"
            );
        };
        seen.extend(all_ask(desktops, accepted));
    }
    seen
}

/// No refresh grant came while the previous one's token was still valid and not
/// yet due (half its life, at least 2 s, less the engine's early jitter): one per
/// rotation.
fn assert_one_grant_per_rotation(grants: &[i64], rotations: usize) {
    assert!(
        grants.len() >= rotations,
        "{} grants for {rotations} rotations",
        grants.len()
    );
    for pair in grants.windows(2) {
        assert!(
            pair[1] - pair[0] >= 1_200,
            "two refresh grants {} ms apart: a rotation was renewed twice ({grants:?})",
            pair[1] - pair[0]
        );
    }
}

#[test]
fn three_desktops_and_a_headless_watch_renew_a_shared_account_once_per_rotation() {
    let Some(bao) = team_server("team e2e") else {
        return;
    };
    let (role_id, secret_id) = bao.approle("tokenkeeper-watch", &["tokenkeeper-server"], "1m");
    let sb = Sandbox::start(&["--device-interval", "1", "--oauth-access-ttl", ACCESS_TTL]);
    let a = first_desktop(&sb, &bao.addr);
    // The account left a's keyring for the team store.
    assert!(
        a.keyring_items(&a.service())
            .iter()
            .all(|i| !i.contains("account/")),
        "{:?}",
        a.keyring_items(&a.service())
    );
    let b = teammate(&bao.addr, "bob");
    let c = teammate(&bao.addr, "carol");
    let listed = b.cli(&["list", "--json"], None).ok().json();
    assert_eq!(listed[0]["team"], "ops", "{listed}");
    // B's OpenBao session is kept in its keyring, for its next process to resume.
    assert!(
        b.keyring_items(&b.service())
            .iter()
            .any(|i| i == "team/ops/session"),
        "{:?}",
        b.keyring_items(&b.service())
    );

    // The headless server: its own keyring stopped, no session bus at all.
    let mut h = Session::start();
    h.stop_keyring();
    let mut watch = headless_watch(&h, &bao.addr, &role_id, &secret_id);
    let grants_before = refresh_grants(&sb).len();
    let before = sb.stats()["oauth"]["refreshes"].as_u64().unwrap();

    let seen = rotate(&sb, &[&a, &b, &c], (20, 4_000), |_| {});

    assert_eq!(
        sb.stats()["oauth"]["replays"],
        0,
        "no refresh token replayed"
    );
    let grants = refresh_grants(&sb);
    assert_one_grant_per_rotation(&grants[grants_before..], 20);
    let refreshes = sb.stats()["oauth"]["refreshes"].as_u64().unwrap() - before;
    assert!(refreshes >= 20, "{refreshes} refreshes for 20 rotations");
    assert!(seen.len() >= 20, "{} tokens seen", seen.len());

    // The headless watch took part (it ran from its AppRole login, no keyring).
    assert!(
        watch.try_wait().unwrap().is_none(),
        "the headless watch stopped"
    );
    let _ = watch.kill();
    let out = watch.wait_with_output().unwrap();
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(
        events.contains("\"type\":\"renewed\""),
        "the headless watch never renewed: {events}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every teammate ends with a token the issuer accepts.
    let projects = format!("{}/api/v3/projects", sb.url("biganimal"));
    for s in [&a, &b, &c] {
        let t = s.cli(&["token", "ba"], None).ok().stdout;
        assert_eq!(
            sb.get_status(&projects, &format!("Bearer {}", t.trim())),
            200
        );
    }
    h.stop_keyring();
}

#[test]
fn a_read_only_teammate_gets_tokens_but_cannot_renew_or_change_the_account() {
    let Some(bao) = team_server("team read-only") else {
        return;
    };
    let sb = Sandbox::start(&["--device-interval", "1", "--oauth-access-ttl", "6"]);
    let a = first_desktop(&sb, &bao.addr);
    let r = teammate(&bao.addr, "rita");
    // The member's token (renewed if the reader's set-up took half its 6 s).
    let token = a.cli(&["token", "ba"], None).ok().stdout;
    // While the token is valid, the reader gets it: from the account's token entry,
    // the one its policy lets it read (the secrets that renew it are refused).
    assert_eq!(r.cli(&["token", "ba"], None).ok().stdout, token);
    // Once it falls due, the reader may not renew: a permission refusal, said as one.
    let refreshes = sb.stats()["oauth"]["refreshes"].as_u64().unwrap();
    wait_for("the token to fall due", Duration::from_secs(10), || {
        r.cli(&["list", "--json"], None).ok().json()[0]["expires_at_ms"]
            .as_i64()
            .unwrap()
            - 3_000
            <= now_ms()
    });
    std::thread::sleep(Duration::from_millis(200));
    let refused = r.cli(&["renew", "ba"], None);
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("policy") && refused.stderr.contains("team 'ops'"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        sb.stats()["oauth"]["refreshes"].as_u64().unwrap(),
        refreshes,
        "the reader never used the refresh token"
    );
    // Nor may it share an account of its own into the team.
    r.add_sandbox_truesight(&sb, "rita-ts").ok();
    let share = r.cli(&["team", "add", "rita-ts", "--team", "ops"], None);
    assert_eq!(share.code, 4, "{}", share.stderr);
    assert!(share.stderr.contains("polic"), "{}", share.stderr);
    // Refused before anything moved: the account is still hers alone.
    let mine = r.cli(&["token", "rita-ts"], None).ok();
    assert!(!mine.stdout.trim().is_empty());
    let listed = r.cli(&["list", "--json"], None).ok().json();
    let rita = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "rita-ts")
        .unwrap()
        .clone();
    assert!(rita["team"].is_null(), "{rita}");
    // A member renews; the reader then gets the new token.
    let renewed = a.cli(&["renew", "ba"], None).ok();
    assert!(renewed.stdout.contains("renewed"), "{}", renewed.stdout);
    let fresh = a.cli(&["token", "ba"], None).ok().stdout;
    assert_ne!(fresh, token);
    assert_eq!(r.cli(&["token", "ba"], None).ok().stdout, fresh);
    assert_eq!(sb.stats()["oauth"]["replays"], 0);

    // Without its copy for readers (removed by hand), the reader is told which entry
    // is missing and what writes it (exit 6); a member's renewal writes it again.
    let id = a.account("ba")["id"].as_str().unwrap().to_string();
    let copy = format!("secret/tokenkeeper/accounts/{id}/token");
    bao.bao_ok(&["kv", "metadata", "delete", &copy]);
    let behind = r.cli(&["token", "ba"], None);
    assert_eq!(behind.code, 6, "{}", behind.stderr);
    assert!(
        behind
            .stderr
            .contains(&format!("tokenkeeper/accounts/{id}/token"))
            && behind.stderr.contains("renew"),
        "{}",
        behind.stderr
    );
    a.cli(&["renew", "ba"], None).ok();
    let again = a.cli(&["token", "ba"], None).ok().stdout;
    assert_eq!(r.cli(&["token", "ba"], None).ok().stdout, again);
}

#[test]
fn a_team_store_down_sealed_or_missing_is_said_and_never_touches_a_local_account() {
    let Some(mut bao) = team_server("team failures") else {
        return;
    };
    let sb = Sandbox::start(&["--device-interval", "1", "--oauth-access-ttl", "60"]);
    let a = first_desktop(&sb, &bao.addr);
    a.add_sandbox_truesight(&sb, "ts").ok();
    a.cli(&["token", "ba"], None).ok();

    // A wrong password is refused before anything is saved.
    let wrong = a.cli(
        &[
            "team",
            "connect",
            "other",
            "--address",
            &bao.addr,
            "--userpass",
            "alice",
            "--secret-stdin",
        ],
        Some("not-her-password"),
    );
    assert_eq!(wrong.code, 3, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("refused the userpass login"),
        "{}",
        wrong.stderr
    );
    let teams = a.cli(&["team", "list", "--json"], None).ok().json();
    assert_eq!(teams.as_array().unwrap().len(), 1, "{teams}");

    // Sealed: the shared account says so; the local one works on.
    bao.seal();
    let sealed = a.cli(&["token", "ba"], None);
    assert_eq!(sealed.code, 5, "{}", sealed.stderr);
    assert!(sealed.stderr.contains("sealed"), "{}", sealed.stderr);
    assert!(sealed.stderr.contains("unseal"), "{}", sealed.stderr);
    a.cli(&["token", "ts"], None).ok();

    // Unreachable: the same, after a short wait, and local accounts unaffected.
    bao.stop();
    let down = a.cli(&["token", "ba"], None);
    assert_eq!(down.code, 5, "{}", down.stderr);
    assert!(down.stderr.contains("team 'ops'"), "{}", down.stderr);
    a.cli(&["token", "ts"], None).ok();
    a.cli(&["renew", "ts"], None).ok();
    // The list still shows both, the shared one with its team.
    let list = a.cli(&["list", "--json"], None).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 2);

    // A server with neither a keyring nor a team store: a way out, not a dead end.
    let h = Session::start();
    let mut cmd = h.headless_cli(&[], &["watch"]);
    let run = tokenkeeper_e2e::run(
        {
            cmd.stdin(Stdio::null());
            cmd
        },
        None,
    );
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(
        run.stderr.contains("TOKENKEEPER_TEAM_ADDR") && run.stderr.contains("Teams"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_leader_killed_mid_renewals_loses_no_refresh_token_and_nothing_leaks() {
    let Some(mut cluster) = Cluster::start("team leader kill") else {
        return;
    };
    let leader = cluster.wait_for_leader(Duration::from_secs(60));
    // The desktops talk to a node that stays up; it forwards to whichever leads.
    let stays = (leader + 1) % 3;
    let addr = cluster.addr(stays);
    let audit = tempfile::tempdir().unwrap();
    let bao = |args: &[&str]| {
        let out = cluster.bao_on(leader, args);
        assert!(
            out.status.success(),
            "bao {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // (The cluster's harness mounts KV version 2 at secret/ and declares a file audit
    // device on each node.)
    bao(&["auth", "enable", "userpass"]);
    let member = audit.path().join("member.hcl");
    std::fs::write(&member, MEMBER).unwrap();
    bao(&[
        "policy",
        "write",
        "tokenkeeper-member",
        member.to_str().unwrap(),
    ]);
    for user in ["alice", "bob"] {
        bao(&[
            "write",
            &format!("auth/userpass/users/{user}"),
            &format!("password=pw-{user}"),
            "token_policies=tokenkeeper-member",
        ]);
    }
    // Longer-lived tokens than on the dev server: a Raft cluster on a shared machine
    // commits a write in up to a second, and a renewal writes a few times.
    let sb = Sandbox::start(&["--device-interval", "1", "--oauth-access-ttl", "10"]);
    let a = first_desktop(&sb, &addr);
    let b = teammate(&addr, "bob");
    let grants_before = refresh_grants(&sb).len();

    let mut killed = false;
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rotate(&sb, &[&a, &b], (8, 10_000), |i| {
            if i == 3 && !killed {
                // The leader dies as the renewals start.
                let current = cluster.leader().unwrap_or(leader);
                if current != stays {
                    cluster.kill(current);
                    killed = true;
                }
            }
        })
    }));
    let seen = match run {
        Ok(seen) => seen,
        Err(e) => {
            let logs = cluster.logs();
            let tail: Vec<&str> = logs.lines().rev().take(60).collect();
            eprintln!("cluster logs (newest first):\n{}", tail.join("\n"));
            eprintln!("issuer: {}\nissued: {}", sb.stats(), sb.issued());
            std::panic::resume_unwind(e)
        }
    };
    assert!(killed, "the leader was killed mid-run");
    assert_eq!(
        sb.stats()["oauth"]["replays"],
        0,
        "no refresh token replayed"
    );
    let grants = refresh_grants(&sb);
    assert_one_grant_per_rotation(&grants[grants_before..], 8);
    // Every teammate ends with a token the issuer accepts.
    let projects = format!("{}/api/v3/projects", sb.url("biganimal"));
    let stored = a.cli(&["token", "ba"], None).ok().stdout.trim().to_string();
    assert_eq!(sb.get_status(&projects, &format!("Bearer {stored}")), 200);
    assert!(seen.len() >= 8);
    let id = a.cli(&["list", "--json"], None).ok().json()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let read = cluster.bao_on(
        stays,
        &[
            "kv",
            "get",
            "-format=json",
            &format!("secret/tokenkeeper/accounts/{id}/secrets"),
        ],
    );
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let entry: Value = serde_json::from_slice(&read.stdout).unwrap();
    let data = &entry["data"]["data"];
    let refresh = data["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();
    // The refresh token in the store is the newest the issuer gave: none lost.
    let state = sb.refresh_token_state(&refresh);
    assert!(
        state["current"] == true && state["revoked"] == false,
        "the stored refresh token is not the family's current one: {state}"
    );

    // Canary: the newest secrets appear in no OpenBao storage or audit file as
    // given (storage is encrypted, the audit log hashes values), nor in any file of
    // the desktops' Tokenkeeper.
    // With them, the team logins' passwords and the OpenBao session a desktop keeps
    // in its keyring for its next process.
    let session = a
        .keyring_lookup(&a.service(), "team/ops/session")
        .expect("a's OpenBao session in its keyring");
    let secrets = [
        stored,
        refresh,
        data["access_token"].as_str().unwrap().to_string(),
        "pw-alice".to_string(),
        "pw-bob".to_string(),
        session,
    ];
    let mut files = files_under(cluster.dir());
    files.extend(files_under(&a.data_dir));
    files.extend(files_under(&b.data_dir));
    let audit_text: String = cluster
        .audit_logs()
        .iter()
        .map(|l| std::fs::read_to_string(l).unwrap_or_default())
        .collect();
    assert!(
        audit_text.contains("hmac-sha256:") && audit_text.contains("tokenkeeper/accounts"),
        "the audit log records the team's requests, values hashed"
    );
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "a secret in {}", file.display());
        }
    }
}

/// The lines a child prints on stdout, collected as it prints them.
struct Printed(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Printed {
    /// How many lines so far contain every one of `words`.
    fn count(&self, words: &[&str]) -> usize {
        self.lines()
            .iter()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .count()
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Starts collecting what `child` prints on stdout.
fn collect_stdout(child: &mut Child) -> Printed {
    use std::io::BufRead;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = child.stdout.take().expect("stdout");
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    Printed(lines)
}

/// An OpenBao token is itself an account: listed with its expiry, kept alive with
/// `renew-self` past the TTL it was made with, alerted on before the max TTL that
/// no renewal passes, said as revoked when it is; and a userpass login is traded
/// again with the stored password.
#[test]
fn an_openbao_token_is_an_account_kept_alive_and_alerted_on_before_its_max_ttl() {
    let Some(bao) = DevServer::start("openbao token account") else {
        return;
    };
    let s = Session::start();
    // A mount whose tokens' max TTL only shows when a renewal comes back capped (its
    // max lease TTL, not an explicit one), set up before the 10 s token is made, so
    // that the watch starts well inside that token's life.
    bao.bao_ok(&["auth", "enable", "-path=short", "userpass"]);
    bao.bao_ok(&["auth", "tune", "-max-lease-ttl=20s", "short/"]);
    bao.bao_ok(&[
        "write",
        "auth/short/users/dora",
        "password=pw-dora",
        "token_ttl=8s",
    ]);
    let created: Value = serde_json::from_str(&bao.bao_ok(&[
        "token",
        "create",
        "-format=json",
        "-policy=default",
        "-ttl=10s",
        "-explicit-max-ttl=60s",
    ]))
    .expect("bao's JSON");
    let token = created["auth"]["client_token"]
        .as_str()
        .expect("a client token")
        .to_string();
    let started = now_ms();
    s.add_with_secret(
        "bao",
        "openbao",
        &bao.addr,
        &token,
        &["--method", "user-token"],
    )
    .ok();
    let listed = s.account("bao");
    assert_eq!(listed["vendor"], "openbao", "{listed}");
    let expires = listed["expires_at_ms"].as_i64().expect("an expiry");
    assert!(
        (expires - (started + 10_000)).abs() < 5_000,
        "the token's TTL is its expiry: {listed}"
    );
    let deadline = listed["human_deadline_ms"]
        .as_i64()
        .expect("the max TTL is a human's deadline");
    assert!(
        (deadline - (started + 60_000)).abs() < 5_000,
        "the deadline is the explicit max TTL: {listed}"
    );

    // A token of that mount: no deadline until a renewal comes back capped.
    let capped_started = now_ms();
    let capped: Value = serde_json::from_str(&bao.bao_ok(&[
        "write",
        "-format=json",
        "auth/short/login/dora",
        "password=pw-dora",
    ]))
    .expect("bao's JSON");
    let capped = capped["auth"]["client_token"].as_str().unwrap().to_string();
    s.add_with_secret(
        "capped",
        "openbao",
        &bao.addr,
        &capped,
        &["--method", "user-token"],
    )
    .ok();
    assert!(s.account("capped")["human_deadline_ms"].is_null());

    // `watch` keeps it alive past its TTL, and alerts before the max TTL (the
    // default thresholds' last, one hour, has already passed).
    let mut watch = s.spawn_cli(&[], &["watch", "--json"]);
    let printed = collect_stdout(&mut watch);
    wait_for("the alert on the max TTL", Duration::from_secs(20), || {
        printed.count(&["deadline-soon", "\"bao\""]) > 0
    });
    let past_ttl = started + 25_000;
    while now_ms() < past_ttl {
        std::thread::sleep(Duration::from_millis(200));
    }
    let lookup = bao.bao(&["token", "lookup", "-format=json", &token]);
    assert!(
        lookup.status.success(),
        "the token lives past the 10 s it was made with: {}",
        String::from_utf8_lossy(&lookup.stderr)
    );
    let renewed = printed.count(&["\"type\":\"renewed\"", "\"bao\""]);
    assert!(
        renewed >= 2,
        "renewed with renew-self: {:?}",
        printed.lines()
    );
    let _ = watch.kill();
    let _ = watch.wait();
    // The capped renewal made the role's max TTL the deadline, and said so.
    let capped_now = s.account("capped");
    let capped_deadline = capped_now["human_deadline_ms"]
        .as_i64()
        .unwrap_or_else(|| panic!("a capped renewal sets the deadline: {capped_now}"));
    assert!(
        (capped_deadline - (capped_started + 20_000)).abs() < 6_000,
        "the mount's 20 s max TTL: {capped_now}"
    );
    assert!(
        printed.count(&["deadline-soon", "\"capped\""]) > 0,
        "{:?}",
        printed.lines()
    );
    // The vault hands out that same token (renew-self keeps it).
    assert_eq!(s.token("bao"), token);
    let after = s.account("bao");
    assert_eq!(
        after["human_deadline_ms"], listed["human_deadline_ms"],
        "{after}"
    );

    // Revoked on the server: said as such, with what to do, and kept for a new sign-in.
    bao.bao_ok(&["token", "revoke", &token]);
    let refused = s.cli(&["renew", "bao"], None);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("expired or was revoked") && refused.stderr.contains("'bao'"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains(&token), "{}", refused.stderr);
    assert!(s.account_names().contains(&"bao".to_string()));

    // Userpass: each renewal is a new login with the stored password.
    bao.userpass_user("carol", "pw-carol-canary", &["default"]);
    s.add_with_secret(
        "carol-bao",
        "openbao",
        &bao.addr,
        "pw-carol-canary",
        &["--username", "carol"],
    )
    .ok();
    let first = s.token("carol-bao");
    s.cli(&["renew", "carol-bao"], None).ok();
    let second = s.token("carol-bao");
    assert_ne!(first, second, "a new login's token");
    let works = bao.bao(&["token", "lookup", "-format=json", &second]);
    assert!(works.status.success());
    let carol = s.account("carol-bao");
    assert!(carol["human_deadline_ms"].is_null(), "{carol}");
    let wrong = s.add_with_secret(
        "carol-wrong",
        "openbao",
        &bao.addr,
        "not-her-password",
        &["--username", "carol"],
    );
    assert_eq!(wrong.code, 4, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("user name and password"),
        "{}",
        wrong.stderr
    );

    // None of it in the vault's files.
    for file in files_under(&s.data_dir) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for secret in [
            token.as_str(),
            first.as_str(),
            second.as_str(),
            "pw-carol-canary",
        ] {
            assert!(!text.contains(secret), "{} holds a secret", file.display());
        }
    }
}

/// A team's login can be an OpenBao account of the vault: the team store then uses
/// that account's token, which the vault lists, renews and alerts on like any other,
/// and which never leaves this keyring.
#[test]
fn a_team_logs_in_with_an_openbao_account_that_the_vault_keeps_fresh() {
    let Some(bao) = team_server("team login account") else {
        return;
    };
    let s = Session::start();
    // An account of its own first (a userpass login, no team call), so that the 8 s
    // login token below is minted just before the calls that keep it alive.
    s.add_with_secret(
        "carol-bao",
        "openbao",
        &bao.addr,
        "pw-carol",
        &["--username", "carol"],
    )
    .ok();
    let login = bao.token(&["tokenkeeper-member"], "8s");
    s.add_with_secret(
        "ops-login",
        "openbao",
        &bao.addr,
        &login,
        &["--method", "user-token"],
    )
    .ok();
    let connected = s
        .cli(&["team", "connect", "ops", "--account", "ops-login"], None)
        .ok();
    assert!(
        connected.stdout.contains("connected to team 'ops'"),
        "{}",
        connected.stdout
    );
    let teams = s.cli(&["team", "list", "--json"], None).ok().json();
    assert_eq!(teams[0]["login"], "account 'ops-login'", "{teams}");
    assert!(
        teams[0]["address"].as_str().unwrap().starts_with(&bao.addr),
        "the account's address: {teams}"
    );
    assert_eq!(
        s.keyring_lookup(&s.service(), "team/ops"),
        None,
        "the token stays the account's alone"
    );
    let refused = s.cli(&["team", "add", "ops-login", "--team", "ops"], None);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("how this machine logs in to team 'ops'"),
        "{}",
        refused.stderr
    );

    // Share an account through that login, then let `watch` run past the login
    // token's 8 s: the vault renews the login account, and the team store keeps
    // answering with it.
    s.cli(&["team", "add", "carol-bao", "--team", "ops"], None)
        .ok();
    let mut watch = s.spawn_cli(&[], &["watch", "--json"]);
    let printed = collect_stdout(&mut watch);
    std::thread::sleep(Duration::from_secs(14));
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(
        printed.count(&["\"type\":\"renewed\"", "\"ops-login\""]) > 0,
        "{:?}",
        printed.lines()
    );
    let lookup = bao.bao(&["token", "lookup", "-format=json", &login]);
    assert!(
        lookup.status.success(),
        "the login token lives past its 8 s: {}",
        String::from_utf8_lossy(&lookup.stderr)
    );
    let carol = s.token("carol-bao");
    let works = bao.bao(&["token", "lookup", "-format=json", &carol]);
    assert!(works.status.success(), "the shared account's token works");
    let listed = s.account("carol-bao");
    assert_eq!(listed["team"], "ops", "{listed}");
}

/// OpenBao's OIDC sign-in through the browser, the one-click flow: Tokenkeeper asks
/// OpenBao for the provider's address, opens the browser there (here a script that
/// signs in at the independent oidc-provider), takes the redirect back on its
/// loopback callback and trades the code at OpenBao. The token is an account like
/// any other (listed with its TTL and max TTL, renewed with renew-self), a team can
/// log in with it, and a refusal is said with what to check.
#[test]
fn an_openbao_oidc_sign_in_in_the_browser_is_an_account_a_team_logs_in_with() {
    let Some(bao) = team_server("openbao oidc sign-in") else {
        return;
    };
    let port = tokenkeeper_e2e::free_port().to_string();
    let callback = format!("http://127.0.0.1:{port}/oidc/callback");
    let idp = OidcServer::start_with(&["--bao-redirect", &callback]);
    bao.enable_oidc(
        &idp.issuer,
        &callback,
        &["tokenkeeper-member"],
        "10s",
        "120s",
    );

    let s = Session::start();
    let (browser, log) = authorizing_browser(s.root.path(), "alice");
    let browser = browser.to_str().unwrap();
    let started = now_ms();
    let browser_add = |name: &str, flags: &[&str]| {
        let mut flags = flags.to_vec();
        flags.extend(["--method", "device-code", "--callback-port", &port]);
        s.cli_env(
            &[("BROWSER", browser)],
            &add_args(name, "openbao", &bao.addr, &flags),
        )
    };
    let added = browser_add("bao", &[]);
    let ended = now_ms();
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert!(
        added.stdout.contains("signed in to 'bao'"),
        "{}",
        added.stdout
    );
    assert!(
        added.stderr.contains("To sign in, open"),
        "{}",
        added.stderr
    );
    let page = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        page.contains("Signed in to OpenBao"),
        "the browser's tab: {page}"
    );
    let listed = s.account("bao");
    assert_eq!(listed["method"], "device-code", "{listed}");
    let expires = listed["expires_at_ms"].as_i64().expect("an expiry");
    // The role's TTL and max TTL, from a moment during the sign-in.
    let during = |after: i64| (started + after - 2_000)..=(ended + after + 2_000);
    assert!(during(10_000).contains(&expires), "{listed}");
    let deadline = listed["human_deadline_ms"].as_i64().expect("a deadline");
    assert!(during(120_000).contains(&deadline), "{listed}");

    // The token is OpenBao's, for alice, with the role's policy.
    let token = s.token("bao");
    let looked: Value =
        serde_json::from_str(&bao.bao_ok(&["token", "lookup", "-format=json", &token])).unwrap();
    assert!(
        looked["data"]["policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "tokenkeeper-member"),
        "{looked}"
    );
    // Renewed as an OpenBao token is: the same token, a new TTL.
    std::thread::sleep(Duration::from_secs(2));
    s.cli(&["renew", "bao"], None).ok();
    assert_eq!(s.token("bao"), token);
    assert!(s.account("bao")["expires_at_ms"].as_i64().unwrap() > expires);

    // A team logs in with it.
    s.cli(&["team", "connect", "ops", "--account", "bao"], None)
        .ok();
    let teams = s.cli(&["team", "list", "--json"], None).ok().json();
    assert_eq!(teams[0]["login"], "account 'bao'", "{teams}");

    // A role OpenBao does not have: refused before the browser opens, in words.
    let before = std::fs::read_to_string(&log).unwrap_or_default();
    let refused = browser_add("nope", &["--role", "nobody"]);
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("role 'nobody'")
            && refused.stderr.contains("allowed_redirect_uris"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap_or_default(), before);

    // Nothing of it in the vault's files or the outputs.
    for file in files_under(&s.data_dir) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).to_string();
        assert!(!text.contains(&token), "{} holds the token", file.display());
    }
    assert!(!added.stderr.contains(&token) && !added.stdout.contains(&token));
}

/// The policies' own checker (`scripts/openbao/check-policies.sh`, which the README
/// points admins to) passes on a real dev server: each access the three policies
/// allow, and each one they refuse.
#[test]
fn the_policy_checker_passes_on_a_real_server() {
    let Some(bao) = tokenkeeper_e2e::openbao::bao_or_skip("check-policies") else {
        return;
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/openbao/check-policies.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .env("BAO", &bao)
        .output()
        .expect("bash check-policies.sh");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && printed.contains(" passed, 0 failed"),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
