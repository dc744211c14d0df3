//! The `tokenkeeper` binary against the TrueSight sandbox over HTTP, with a real
//! gnome-keyring in a private D-Bus session: sign-in, tokens the vendor accepts,
//! renewal without a prompt, and every bad input leaving stored accounts intact.

use std::time::Duration;

use serde_json::json;
use tokenkeeper_e2e::{now_ms, Sandbox, Session};

const PW: &str = "demo-password";

const TOKEN_POST: &str = "POST /truesight/tsws/api/v10.1/token";

/// A session, the sandbox started with `sandbox_args`, and the stand-in's `demo`
/// user signed in as the TrueSight account `ts`.
fn session_with_ts(sandbox_args: &[&str]) -> (Session, Sandbox) {
    let s = Session::start();
    let sb = Sandbox::start(sandbox_args);
    s.add_sandbox_truesight(&sb, "ts").ok();
    (s, sb)
}

#[test]
fn signs_in_and_the_token_is_accepted_then_renewed_after_expiry_without_a_prompt() {
    // 4 s tokens: long enough that each is checked with the vendor while it lives on a
    // loaded machine, short enough to watch one expire.
    let (s, sb) = session_with_ts(&["--truesight-token-ttl", "4"]);
    assert_eq!(sb.requests(TOKEN_POST), 1);

    let first = s.token("ts");
    assert!(first.starts_with('_'), "a TrueSight authToken: {first}");
    assert_eq!(
        sb.truesight_about(&first),
        200,
        "the sandbox accepts the token"
    );

    std::thread::sleep(Duration::from_millis(4300));
    assert_eq!(
        sb.truesight_about(&first),
        401,
        "the first token has expired"
    );
    // stdin is closed: no prompt is possible, the stored password renews it. (The
    // first `token` may itself have renewed: a 4 s token falls due after 2 s.)
    let before = sb.requests(TOKEN_POST);
    let second = s.token("ts");
    assert_ne!(second, first);
    assert_eq!(sb.truesight_about(&second), 200);
    assert_eq!(
        sb.requests(TOKEN_POST),
        before + 1,
        "one renewal reached the vendor"
    );

    let header = s.cli(&["token", "ts", "--header"], None).ok().stdout;
    assert!(header.starts_with("authToken _"), "{header}");

    let shown = s.cli(&["show", "ts", "--json"], None).ok().json();
    let kinds: Vec<&str> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"renewed") && kinds.contains(&"signed-in"),
        "{kinds:?}"
    );
}

#[test]
fn a_valid_token_is_reused_without_calling_the_vendor() {
    let (s, sb) = session_with_ts(&[]);
    let a = s.cli(&["token", "ts"], None).ok().stdout;
    let b = s.cli(&["token", "ts"], None).ok().stdout;
    assert_eq!(a, b);
    assert_eq!(
        sb.requests(TOKEN_POST),
        1,
        "only the sign-in reached the vendor"
    );
    let list = s.cli(&["list", "--json"], None).ok().json();
    assert_eq!(list[0]["state"], "valid");
    let left = list[0]["expires_at_ms"].as_i64().unwrap() - now_ms();
    assert!(
        (3_500_000..=3_600_000).contains(&left),
        "about an hour left: {left} ms"
    );
}

#[test]
fn exec_hands_the_token_to_the_command_and_returns_its_exit_code() {
    let (s, _sb) = session_with_ts(&[]);
    let token = s.token("ts");
    let out = s
        .cli(
            &[
                "exec",
                "ts",
                "--",
                "sh",
                "-c",
                "printf '%s|%s' \"$TOKENKEEPER_TOKEN\" \"$TOKENKEEPER_AUTHORIZATION\"",
            ],
            None,
        )
        .ok();
    assert_eq!(out.stdout, format!("{token}|authToken {token}"));
    assert_eq!(
        s.cli(&["exec", "ts", "--", "sh", "-c", "exit 7"], None)
            .code,
        7
    );
}

#[test]
fn wrong_password_is_refused_and_nothing_is_stored() {
    let s = Session::start();
    let sb = Sandbox::start(&[]);
    s.add_sandbox_truesight(&sb, "good").ok();
    let service = s.service();
    let before = s.keyring_items(&service);
    let out = s.add_truesight("bad", &sb.url("truesight"), "demo", "not-the-password", &[]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("rejected the username, password or tenant"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("'bad'"),
        "names the account: {}",
        out.stderr
    );
    assert_eq!(
        s.keyring_items(&service),
        before,
        "no secret stored for a refused account"
    );
    assert_eq!(s.account_names(), ["good"]);
    s.cli(&["token", "good"], None).ok();
}

#[test]
fn a_user_without_api_access_gets_its_own_message() {
    let s = Session::start();
    let sb = Sandbox::start(&[]);
    let out = s.add_truesight("ts", &sb.url("truesight"), "noapi", "noapi-password", &[]);
    assert_eq!(out.code, 4);
    assert!(
        out.stderr
            .contains("lacks the api-access permission (HTTP 403)"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("rejected the username"),
        "not the 401 message: {}",
        out.stderr
    );
}

#[test]
fn unreachable_url_html_page_truncated_500_and_hung_server_are_clear_and_change_nothing() {
    let (s, sb) = session_with_ts(&[]);
    let token = s.cli(&["token", "ts"], None).ok().stdout;

    let dead = s.add_truesight("dead", "http://127.0.0.1:9", "demo", PW, &[]);
    assert_eq!(dead.code, 5, "{}", dead.stderr);
    assert!(dead.stderr.contains("could not connect"), "{}", dead.stderr);

    for (fault, says) in [
        ("html", "HTML page"),
        ("truncated", "cut off"),
        ("status500", "failed on its side"),
    ] {
        sb.fault("/truesight", fault);
        let out = s.cli(&["login", "ts"], None);
        assert_eq!(out.code, 5, "{fault}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{fault}: {}", out.stderr);
        assert!(
            out.stderr.contains("'ts'"),
            "{fault} names the account: {}",
            out.stderr
        );
    }
    sb.fault("/truesight", "hang");
    let out = s.cli_env(&[("TOKENKEEPER_HTTP_TIMEOUT", "2")], &["login", "ts"]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(
        out.stderr.contains("did not answer within 2 s"),
        "{}",
        out.stderr
    );

    sb.fault("/truesight", "huge");
    let out = s.cli(&["login", "ts"], None);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(out.stderr.contains("larger than"), "{}", out.stderr);

    assert_eq!(
        s.cli(&["token", "ts"], None).ok().stdout,
        token,
        "the stored token is intact"
    );
    assert_eq!(
        s.cli(&["list", "--json"], None).ok().json()[0]["state"],
        "valid"
    );
}

#[test]
fn a_changed_password_needs_a_human_then_login_with_the_new_one_fixes_it() {
    let (s, sb) = session_with_ts(&["--truesight-token-ttl", "1"]);
    sb.admin(
        "/truesight/users",
        json!({"username": "demo", "password": "changed-pw", "tenant": "BmcRealm"}),
    );
    std::thread::sleep(Duration::from_millis(1200));
    let out = s.cli(&["token", "ts"], None);
    assert_eq!(out.code, 4, "refused: {}", out.stderr);
    assert!(
        out.stderr.contains("tokenkeeper login ts"),
        "says what to do: {}",
        out.stderr
    );
    assert_eq!(
        s.cli(&["list", "--json"], None).ok().json()[0]["state"],
        "needs-sign-in"
    );

    let posts = sb.requests(TOKEN_POST);
    let again = s.cli(&["token", "ts"], None);
    assert_eq!(again.code, 3, "a human must sign in: {}", again.stderr);
    assert_eq!(
        sb.requests(TOKEN_POST),
        posts,
        "a refused password is not retried against the vendor"
    );

    s.cli(&["login", "ts", "--secret-stdin"], Some("changed-pw"))
        .ok();
    let token = s.cli(&["token", "ts"], None).ok().stdout;
    assert_eq!(sb.truesight_about(token.trim()), 200);
}

#[test]
fn remove_logs_out_at_the_vendor_and_deletes_the_secrets() {
    let (s, sb) = session_with_ts(&[]);
    let service = s.service();
    assert_eq!(
        s.keyring_items(&service).len(),
        2,
        "the vault key and one item for the account"
    );
    let token = s.token("ts");
    let out = s.cli(&["remove", "ts"], None).ok();
    assert!(out.stdout.contains("logged out"), "{}", out.stdout);
    assert_eq!(sb.truesight_about(&token), 401, "the token no longer works");
    assert_eq!(s.keyring_items(&service), ["vault-key"]);
    assert_eq!(s.cli(&["list", "--json"], None).ok().json(), json!([]));
    assert_eq!(
        s.cli(&["token", "ts"], None).code,
        2,
        "unknown account is a usage error"
    );
}

/// The core gives up on a keyring that does not answer after 2 s (`KEYRING_DEADLINE`);
/// with a process start and exit on a loaded machine around it. D-Bus's own default
/// (25 s, what a keyring call without a deadline waits) fails this.
const KEYRING_ANSWER: Duration = Duration::from_secs(12);

#[test]
fn a_locked_keyring_is_a_clear_error_within_its_deadline_and_loses_nothing() {
    let (mut s, _sb) = session_with_ts(&[]);
    let token = s.cli(&["token", "ts"], None).ok().stdout;
    s.lock_keyring();
    for args in [vec!["list"], vec!["token", "ts"]] {
        let out = s.cli(&args, None);
        assert_eq!(out.code, 6, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.to_lowercase().contains("keyring"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("nothing was changed"), "{}", out.stderr);
        assert!(out.took < KEYRING_ANSWER, "{args:?} took {:?}", out.took);
    }
    s.unlock_keyring();
    assert_eq!(
        s.cli(&["token", "ts"], None).ok().stdout,
        token,
        "the account survived"
    );
}

#[test]
fn no_keyring_at_all_is_a_clear_error() {
    let s = Session::start();
    let no_bus = format!("unix:path={}/no-bus", s.root.path().display());
    let out = s.cli_env(&[("DBUS_SESSION_BUS_ADDRESS", &no_bus)], &["list"]);
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(out.stderr.contains("keyring"), "{}", out.stderr);
    assert!(out.took < KEYRING_ANSWER, "took {:?}", out.took);
    assert!(
        !s.data_dir.join("vault.db").exists(),
        "no vault created without a key store"
    );
}

#[test]
fn a_vault_whose_key_is_wrong_is_refused_and_never_overwritten() {
    let (s, _sb) = session_with_ts(&[]);
    let service = s.service();
    let db = s.data_dir.join("vault.db");
    // Settle the WAL into the file so the comparison sees everything.
    s.cli(&["list"], None).ok();
    let before = std::fs::read(&db).unwrap();
    let mut store = s.command("secret-tool");
    store.args([
        "store",
        "--label=wrong",
        "service",
        &service,
        "username",
        "vault-key",
        "target",
        "default",
        "application",
        "rust-keyring",
    ]);
    tokenkeeper_e2e::run(store, Some(&"ab".repeat(32))).ok();
    let out = s.cli(&["list"], None);
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot be read with the key"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the vault file is untouched"
    );
}

#[test]
fn two_vaults_never_share_secrets() {
    let (s, sb) = session_with_ts(&[]);
    let other = s.root.path().join("other-vault");
    let other_dir = other.display().to_string();
    s.add_truesight(
        "ts",
        &sb.url("truesight"),
        "demo",
        PW,
        &["--data-dir", &other_dir],
    )
    .ok();
    let info = s
        .cli(&["--data-dir", &other_dir, "info", "--json"], None)
        .ok()
        .json();
    assert_ne!(info["keyring_service"].as_str().unwrap(), s.service());
    s.cli(&["--data-dir", &other_dir, "remove", "ts"], None)
        .ok();
    s.cli(&["token", "ts"], None).ok();
}

#[test]
fn concurrent_processes_renew_once_and_share_the_result() {
    let s = Session::start();
    // A 20 s token is due for renewal in its last 10 s: all five processes find it
    // due at once, and the renewed token stays fresh for 10 s however slowly the
    // last of them starts.
    let sb = Sandbox::start(&["--truesight-token-ttl", "20"]);
    s.add_sandbox_truesight(&sb, "ts").ok();
    let expires = s.cli(&["list", "--json"], None).ok().json()[0]["expires_at_ms"]
        .as_i64()
        .expect("expires_at_ms");
    let due = expires - 10_000 + 100;
    std::thread::sleep(Duration::from_millis((due - now_ms()).max(0) as u64));
    let before = sb.requests(TOKEN_POST);
    // TrueSight answers the renewal five seconds late: the lease is held that long,
    // so all five are running while it is (none can come after the renewal ended).
    sb.fault("/truesight/tsws/api/v10.1/token", "delay");
    let handles: Vec<_> = (0..5)
        .map(|_| {
            let mut cmd = s.command(tokenkeeper_e2e::bin("tokenkeeper"));
            cmd.args(["token", "ts"]);
            std::thread::spawn(move || tokenkeeper_e2e::run(cmd, None))
        })
        .collect();
    let runs: Vec<tokenkeeper_e2e::Run> = handles
        .into_iter()
        .map(|h| h.join().unwrap().ok())
        .collect();
    // Each waited for the one renewal held open at the vendor, rather than renewing
    // again or printing the old token at once.
    for run in &runs {
        assert!(
            run.took >= Duration::from_millis(4500),
            "every process waited for the renewal in flight: this one took {:?}",
            run.took
        );
    }
    let tokens: Vec<String> = runs.into_iter().map(|r| r.stdout).collect();
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "all five got the same token: {tokens:?}"
    );
    assert_eq!(
        sb.requests(TOKEN_POST) - before,
        1,
        "exactly one renewal reached the vendor"
    );
    assert_ne!(tokens[0].trim(), "", "a token was printed");
    assert_eq!(sb.truesight_about(tokens[0].trim()), 200);
}

#[test]
fn secrets_are_never_taken_from_argv() {
    let s = Session::start();
    let sb = Sandbox::start(&[]);
    let url = sb.url("truesight");
    let base = [
        "add",
        "ts",
        "--vendor",
        "truesight",
        "--url",
        url.as_str(),
        "--username",
        "demo",
        "--tenant",
        "BmcRealm",
    ];
    // Any flag that would carry a secret is unknown: clap's usage error names it
    // (exit 2 alone would not tell it from any other parse error).
    for flag in ["--password", "--secret", "--token", "--api-key"] {
        let mut args = base.to_vec();
        args.extend([flag, PW]);
        let out = s.cli(&args, None);
        assert_eq!(out.code, 2, "no {flag} flag exists: {}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("unexpected argument '{flag}' found")),
            "{flag}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains(PW), "{flag}: the secret is not echoed");
        let listed = s.cli(&["list", "--json"], None).ok().json();
        assert_eq!(listed, json!([]), "{flag}: nothing was added");
    }
    let out = s.cli(&base, None);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--secret-stdin"), "{}", out.stderr);
}

#[test]
fn a_crashed_keyring_is_a_clear_error_and_the_account_survives_its_restart() {
    let (mut s, _sb) = session_with_ts(&[]);
    let token = s.cli(&["token", "ts"], None).ok().stdout;
    // The daemon dies; D-Bus may start a fresh one, which comes up locked.
    s.stop_keyring();
    let out = s.cli(&["token", "ts"], None);
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(out.stderr.contains("keyring"), "{}", out.stderr);
    assert!(out.took < KEYRING_ANSWER, "took {:?}", out.took);
    s.unlock_keyring();
    assert_eq!(s.cli(&["token", "ts"], None).ok().stdout, token);
}
