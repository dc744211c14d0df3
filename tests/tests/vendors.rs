//! Every vendor's flow through the `tokenkeeper` binary against the sandbox over real
//! HTTP(S), with a real gnome-keyring: the documented happy path, the documented
//! errors, and the quirks (BigID's bare header, BigFix's microseconds and
//! self-signed TLS, device codes approved or denied in a "browser", rotation).

use std::io::{BufRead, BufReader};
use std::time::Duration;

use serde_json::{json, Value};
use tokenkeeper_e2e::{add_args, finish, now_ms, user_code, Sandbox, Session};

/// `tokenkeeper bigfix tokens NAME --json`: the BigFix tokens the account sees.
fn bigfix_tokens(s: &Session, name: &str) -> Vec<Value> {
    let listed = s
        .cli(&["bigfix", "tokens", name, "--json"], None)
        .ok()
        .json();
    listed.as_array().expect("a list of tokens").clone()
}

fn assert_near(ms: i64, expected_from_now: Duration, what: &str) {
    let left = ms - now_ms();
    let want = expected_from_now.as_millis() as i64;
    assert!(
        (left - want).abs() < 120_000,
        "{what}: {left} ms left, expected about {want}"
    );
}

#[test]
fn bigid_password_and_user_token_sessions_use_the_bare_header() {
    let s = Session::start();
    let sb = Sandbox::start(&[]);
    let url = sb.url("bigid");
    let ds = format!("{url}/api/v1/ds-connections");

    let wrong = s.add_bigid("bid", &url, "bigid", "not-the-password");
    assert_eq!(wrong.code, 4, "{}", wrong.stderr);
    assert!(wrong.stderr.contains("BigID refused"), "{}", wrong.stderr);
    assert!(!wrong.stderr.contains("not-the-password"));
    assert_eq!(s.cli(&["list", "--json"], None).ok().json(), json!([]));

    s.add_sandbox_bigid(&sb, "bid").ok();
    let t = s.token("bid");
    assert_eq!(t.split('.').count(), 3, "a JWT session token: {t}");
    let header = s.cli(&["token", "bid", "--header"], None).ok().stdout;
    assert_eq!(header.trim(), t, "BigID takes the bare token, no Bearer");
    assert_eq!(sb.get_status(&ds, &t), 200);
    assert_eq!(sb.get_status(&ds, &format!("Bearer {t}")), 401);
    assert_near(
        s.account("bid")["expires_at_ms"].as_i64().unwrap(),
        Duration::from_secs(86400),
        "the JWT's exp",
    );

    // A user token that is a JWT: its own expiry is the human deadline.
    let jwt = sb.bigid_user_token(10, true);
    s.add_bigid_user_token("ut", &url, &jwt).ok();
    let ut = s.account("ut");
    assert_eq!(ut["renews_with"], "stored-user-token");
    assert_near(
        ut["human_deadline_ms"].as_i64().unwrap(),
        Duration::from_secs(10 * 86400),
        "the user token's exp",
    );
    let system = s.token("ut");
    assert_eq!(sb.get_status(&ds, &system), 200);

    // An opaque user token: the admin gives its expiry; POST when told to.
    let opaque = sb.bigid_user_token(999, false);
    s.add_with_secret(
        "opaque",
        "bigid",
        &url,
        &opaque,
        &[
            "--method",
            "user-token",
            "--user-token-expires",
            "2029-01-31",
            "--refresh-method",
            "POST",
        ],
    )
    .ok();
    let deadline = s.account("opaque")["human_deadline_ms"].as_i64().unwrap();
    assert_eq!(deadline, 1_864_598_399_000, "2029-01-31T23:59:59Z");
    assert_eq!(sb.requests("POST /bigid/api/v1/refresh-access-token"), 1);
    let bad_date = s.add_with_secret(
        "x",
        "bigid",
        &url,
        &opaque,
        &["--method", "user-token", "--user-token-expires", "soon"],
    );
    assert_eq!(bad_date.code, 2, "{}", bad_date.stderr);

    // Revoked user tokens: renewal needs a human, and the stored token is kept.
    let before = s.account_secrets("ut");
    sb.admin("/bigid/revoke-user-tokens", json!({}));
    let r = s.cli(&["renew", "ut"], None);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("'ut'"), "{}", r.stderr);
    assert_eq!(s.account("ut")["state"], "needs-sign-in");
    assert_eq!(s.account_secrets("ut")["user_token"], before["user_token"]);
}

#[test]
fn bigfix_tokens_are_created_tracked_rotated_and_managed_over_tls_with_the_accounts_ca() {
    let s = Session::start();
    let sb = Sandbox::start(&[]);
    let url = sb.url("bigfix");
    let ca = s.sandbox_bigfix_ca(&sb);
    let ca = ca.to_str().unwrap();
    let add = |name: &str, user: &str, pw: &str, extra: &[&str]| {
        s.add_bigfix(name, &url, user, pw, extra)
    };
    let login_status = |t: &str| sb.bigfix_login(t);

    // The self-signed certificate is refused until the account trusts its CA.
    let untrusted = add("bf", "admin", "admin-password", &[]);
    assert_eq!(untrusted.code, 5, "{}", untrusted.stderr);
    assert!(
        untrusted.stderr.contains("certificate"),
        "{}",
        untrusted.stderr
    );
    assert!(
        untrusted.stderr.contains("--ca-cert"),
        "{}",
        untrusted.stderr
    );
    assert_eq!(s.cli(&["list", "--json"], None).ok().json(), json!([]));

    add("bf", "admin", "admin-password", &["--ca-cert", ca]).ok();
    let first = s.token("bf");
    assert_eq!(
        login_status(&first),
        200,
        "BigFix accepts the created token"
    );
    let listed = bigfix_tokens(&s, "bf");
    assert_eq!(listed.len(), 1);
    let tracked = &listed[0];
    assert_eq!(tracked["tracked"], true);
    // The list answer is in microseconds, the single-token one in milliseconds.
    let exp = tracked["expires_at_ms"].as_i64().unwrap();
    assert_near(exp, Duration::from_secs(30 * 86400), "a 30-day token");
    assert_eq!(s.account("bf")["expires_at_ms"].as_i64().unwrap(), exp);
    let id = tracked["id"].as_u64().unwrap();
    let by_id = s
        .cli(
            &["bigfix", "get", "bf", "--id", &id.to_string(), "--json"],
            None,
        )
        .ok()
        .json();
    assert_eq!(by_id["expires_at_ms"].as_i64().unwrap(), exp);
    let name = by_id["name"].as_str().unwrap().to_string();
    let by_name = s
        .cli(
            &["bigfix", "get", "bf", "--token-name", &name, "--json"],
            None,
        )
        .ok()
        .json();
    assert_eq!(by_name["id"].as_u64(), Some(id));

    // Create a never-expiring token: the account switches to it, the old one stays.
    s.cli(
        &[
            "bigfix",
            "create",
            "bf",
            "--token-name",
            "ci-forever",
            "--duration",
            "0",
        ],
        None,
    )
    .ok();
    let second = s.token("bf");
    assert_ne!(second, first);
    assert_eq!(login_status(&second), 200);
    assert!(s.account("bf")["expires_at_ms"].is_null());
    let listed = bigfix_tokens(&s, "bf");
    let untracked: Vec<&Value> = listed.iter().filter(|t| t["tracked"] == false).collect();
    assert_eq!(
        untracked.len(),
        1,
        "the first token is flagged as untracked"
    );
    assert_eq!(untracked[0]["id"].as_u64(), Some(id));
    let text = s.cli(&["bigfix", "tokens", "bf"], None).ok().stdout;
    assert!(
        text.contains("ci-forever") && text.contains("yes (this account)"),
        "{text}"
    );

    // Rename and extend the old one, then revoke it.
    s.cli(
        &[
            "bigfix",
            "rename",
            "bf",
            "--id",
            &id.to_string(),
            "--to",
            "renamed",
        ],
        None,
    )
    .ok();
    s.cli(
        &[
            "bigfix",
            "extend",
            "bf",
            "--id",
            &id.to_string(),
            "--duration",
            "5",
        ],
        None,
    )
    .ok();
    let got = s
        .cli(
            &["bigfix", "get", "bf", "--token-name", "renamed", "--json"],
            None,
        )
        .ok()
        .json();
    assert_near(
        got["expires_at_ms"].as_i64().unwrap(),
        Duration::from_secs(5 * 86400),
        "extended",
    );
    s.cli(&["bigfix", "revoke", "bf", "--id", &id.to_string()], None)
        .ok();
    assert_eq!(login_status(&first), 401, "revoked");
    let missing = s.cli(&["bigfix", "get", "bf", "--id", &id.to_string()], None);
    assert_eq!(missing.code, 2, "{}", missing.stderr);

    // Rotate: a new token in use, the old one revoked on the server.
    s.cli(&["bigfix", "rotate", "bf"], None).ok();
    let third = s.token("bf");
    assert_ne!(third, second);
    assert_eq!(login_status(&third), 200);
    assert_eq!(
        login_status(&second),
        401,
        "the rotated-out token is revoked"
    );
    let listed = bigfix_tokens(&s, "bf");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["tracked"], true);

    // A wrong password: BigFix's 401 becomes a clear refusal; nothing is stored.
    let wrong = add("wrong", "admin", "not-it", &["--ca-cert", ca]);
    assert_eq!(wrong.code, 4, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("BigFix rejected operator 'admin'"),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.stderr.contains("not-it"));
    assert!(!s.cli(&["list"], None).ok().stdout.contains("wrong"));

    // Only master operators see other operators' tokens.
    add("op", "operator", "operator-password", &["--ca-cert", ca]).ok();
    let denied = s.cli(&["bigfix", "tokens", "op", "--user", "1"], None);
    assert_eq!(denied.code, 4, "{}", denied.stderr);
    assert!(
        denied.stderr.contains("master operator"),
        "{}",
        denied.stderr
    );
    let theirs = s
        .cli(&["bigfix", "tokens", "bf", "--user", "2", "--json"], None)
        .ok()
        .json();
    assert_eq!(
        theirs.as_array().unwrap().len(),
        1,
        "the operator's own token"
    );

    // Pinning the server's certificate instead of trusting a CA.
    let fp = s.cli(&["cert", &url], None).ok().stdout;
    let fp = fp.lines().next().unwrap().to_string();
    assert_eq!(fp, sb.urls["bigfix_cert_sha256"].as_str().unwrap());
    add("pinned", "admin", "admin-password", &["--pin-sha256", &fp]).ok();
    assert_eq!(login_status(&s.token("pinned")), 200);
    let bad = add(
        "badpin",
        "admin",
        "admin-password",
        &["--pin-sha256", &"ab".repeat(32)],
    );
    assert_eq!(bad.code, 5, "{}", bad.stderr);
    assert!(bad.stderr.contains("pinned"), "{}", bad.stderr);
    assert!(!s.cli(&["list"], None).ok().stdout.contains("badpin"));
    // A CA and a pin at once is refused: the pin would leave the CA unused unsaid.
    let both = add(
        "both",
        "admin",
        "admin-password",
        &["--ca-cert", ca, "--pin-sha256", &fp],
    );
    assert_eq!(both.code, 2, "{}", both.stderr);
    assert!(!s.cli(&["list"], None).ok().stdout.contains("both"));

    // Removing the account revokes its token on the server.
    s.cli(&["remove", "bf"], None).ok();
    assert_eq!(login_status(&third), 401);
}

#[test]
fn biganimal_device_sign_in_exchanges_the_token_and_rotates_refresh_tokens_without_replay() {
    let s = Session::start();
    let sb = Sandbox::start(&["--device-interval", "1"]);
    let portal = sb.url("biganimal");
    let projects = format!("{portal}/api/v3/projects");

    let (run, opened) = s.device_sign_in(&sb, &add_args("ba", "biganimal", &portal, &[]), true);
    let run = run.ok();
    assert!(opened.contains("/activate?user_code="), "{opened}");
    assert!(
        run.stderr.contains(&user_code(&opened)),
        "the code is shown: {}",
        run.stderr
    );
    let first = s.token("ba");
    assert_eq!(sb.get_status(&projects, &format!("Bearer {first}")), 200);
    let ba = s.account("ba");
    assert_eq!(ba["renews_with"], "refresh-token");
    assert_near(
        ba["expires_at_ms"].as_i64().unwrap(),
        Duration::from_secs(86400),
        "24 h",
    );
    assert_near(
        ba["human_deadline_ms"].as_i64().unwrap(),
        Duration::from_secs(30 * 86400),
        "the refresh token's 30 days",
    );

    let mut refresh = s.account_secrets("ba")["refresh_token"].clone();
    assert!(refresh.is_string());
    let mut last = first;
    for _ in 0..3 {
        s.cli(&["renew", "ba"], None).ok();
        let t = s.token("ba");
        assert_ne!(t, last);
        assert_eq!(sb.get_status(&projects, &format!("Bearer {t}")), 200);
        let r = s.account_secrets("ba")["refresh_token"].clone();
        assert_ne!(r, refresh, "the rotated refresh token is stored");
        refresh = r;
        last = t;
    }
    // The exchange fails after a rotation: the new refresh token is kept, never replayed.
    sb.fault("/biganimal/api/v3/auth/token", "status500");
    let failed = s.cli(&["renew", "ba"], None);
    assert_eq!(failed.code, 5, "{}", failed.stderr);
    let kept = s.account_secrets("ba")["refresh_token"].clone();
    assert_ne!(kept, refresh, "the rotation was stored before the exchange");
    s.cli(&["renew", "ba"], None).ok();
    let oauth = &sb.stats()["oauth"];
    assert_eq!(oauth["replays"], 0, "{oauth}");
    assert_eq!(oauth["refreshes"], 5, "{oauth}");

    // The issuer revokes everything: a human must sign in; nothing stored is lost.
    let before = s.account_secrets("ba");
    sb.admin("/oauth/revoke-all", json!({}));
    let revoked = s.cli(&["renew", "ba"], None);
    assert_eq!(revoked.code, 3, "{}", revoked.stderr);
    assert!(
        revoked.stderr.contains("tokenkeeper login ba"),
        "{}",
        revoked.stderr
    );
    assert_eq!(s.account("ba")["state"], "needs-sign-in");
    assert_eq!(s.account_secrets("ba"), before);
    let refused = s.cli(&["token", "ba"], None);
    assert_eq!(refused.code, 3, "{}", refused.stderr);

    // Denied in the browser: a clear error, and the account still needs a sign-in.
    let (denied, _) = s.device_sign_in(&sb, &["login", "ba"], false);
    assert_eq!(denied.code, 4, "{}", denied.stderr);
    assert!(denied.stderr.contains("denied"), "{}", denied.stderr);

    // Approved again: back to valid.
    s.device_sign_in(&sb, &["login", "ba"], true).0.ok();
    assert_eq!(s.account("ba")["state"], "valid");
    assert_eq!(
        sb.get_status(&projects, &format!("Bearer {}", s.token("ba"))),
        200
    );
}

#[test]
fn oidc_issuer_from_discovery_with_no_browser_and_slow_down_honoured() {
    let s = Session::start();
    let sb = Sandbox::start(&["--device-interval", "1"]);
    let issuer = sb.url("oidc");
    let mut child = s.spawn_cli(
        &[("BROWSER", "/bin/false")],
        &add_args(
            "generic",
            "oidc",
            &issuer,
            &["--client-id", "tokenkeeper-sandbox", "--no-browser"],
        ),
    );
    // With --no-browser the address is printed; read it as the admin would.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut url = String::new();
    while url.is_empty() {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no sign-in address printed"
        );
        if let Some(u) = line.trim().strip_prefix("To sign in, open ") {
            url = u.to_string();
        }
    }
    assert!(url.starts_with(&issuer), "{url}");
    // Taken first: a poll in flight may meet the fault as soon as it is set.
    let started = std::time::Instant::now();
    sb.admin(
        "/faults",
        json!({"path_prefix": "/oidc/token", "kind": "slow_down", "count": 1}),
    );
    sb.approve(&user_code(&url));
    let run = finish(child, Duration::from_secs(60));
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "after slow_down the client waits 1 + 5 s: {:?}",
        started.elapsed()
    );
    let generic = s.account("generic");
    assert_eq!(generic["state"], "valid");
    let shown = s.cli(&["show", "generic", "--json"], None).ok().json();
    assert_eq!(
        shown["settings"]["scope"],
        Value::Null,
        "the default scope is not stored"
    );
    let me = format!("{issuer}/me");
    let mut last = s.token("generic");
    assert_eq!(sb.get_status(&me, &format!("Bearer {last}")), 200);
    for _ in 0..2 {
        s.cli(&["renew", "generic"], None).ok();
        let t = s.token("generic");
        assert_ne!(t, last);
        assert_eq!(sb.get_status(&me, &format!("Bearer {t}")), 200);
        last = t;
    }
    assert_eq!(sb.stats()["oauth"]["replays"], 0);

    // An issuer without the device flow, and an unknown client, are clear errors.
    let unknown = s.spawn_cli(
        &[("BROWSER", "/bin/false")],
        &add_args("bad", "oidc", &issuer, &["--client-id", "nobody"]),
    );
    let r = finish(unknown, Duration::from_secs(30));
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("client id"), "{}", r.stderr);
}

#[test]
fn immuta_api_key_tokens_renew_on_401_and_errors_carry_immutas_message() {
    let s = Session::start();
    let sb = Sandbox::start(&[]);
    let url = sb.url("immuta");
    let current = format!("{url}/bim/rpc/user/current");
    let add = |name: &str, secret: &str, flags: &[&str]| {
        s.add_with_secret(name, "immuta", &url, secret, flags)
    };

    let wrong = add("im", "wrong-api-key", &["--method", "api-key"]);
    assert_eq!(wrong.code, 4, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("Authentication failed for API key"),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.stderr.contains("wrong-api-key"));

    add("im", "immuta-demo-apikey", &["--method", "api-key"]).ok();
    let im = s.account("im");
    assert!(
        im["expires_at_ms"].is_null(),
        "API-key tokens carry no expiry"
    );
    assert_eq!(im["state"], "valid");
    let t1 = s.token("im");
    assert_eq!(sb.get_status(&current, &format!("Bearer {t1}")), 200);
    assert_eq!(s.token("im"), t1, "still accepted: reused");

    sb.admin("/immuta/expire-tokens", json!({}));
    assert_eq!(sb.get_status(&current, &format!("Bearer {t1}")), 401);
    let t2 = s.token("im");
    assert_ne!(t2, t1, "renewed transparently after Immuta answered 401");
    assert_eq!(sb.get_status(&current, &format!("Bearer {t2}")), 200);
    // The refused key, the sign-in, the renewal after the 401.
    assert_eq!(sb.requests("POST /immuta/bim/apikey/authenticate"), 3);

    add("imp", "immuta-password", &["--username", "immuta-user"]).ok();
    let imp = s.account("imp");
    assert_eq!(imp["method"], "password");
    assert!(imp["expires_at_ms"].as_i64().unwrap() > now_ms());
    assert_eq!(
        sb.get_status(&current, &format!("Bearer {}", s.token("imp"))),
        200
    );

    let bad_iam = add(
        "x",
        "immuta-password",
        &["--username", "immuta-user", "--iam-id", "ldap9"],
    );
    assert_eq!(bad_iam.code, 2, "{}", bad_iam.stderr);
    assert!(
        bad_iam.stderr.contains("IAM system 'ldap9'"),
        "{}",
        bad_iam.stderr
    );
    let bad_pw = add("y", "nope", &["--username", "immuta-user"]);
    assert_eq!(bad_pw.code, 4, "{}", bad_pw.stderr);
    assert!(
        bad_pw.stderr.contains("Authentication failed for user"),
        "{}",
        bad_pw.stderr
    );
}

#[test]
fn truesight_token_check_renews_a_token_the_server_dropped() {
    let s = Session::start();
    let sb = Sandbox::start(&[]);
    s.add_sandbox_truesight(&sb, "ts").ok();
    let t1 = s.token("ts");
    // The token is logged out behind Tokenkeeper's back.
    let r = reqwest::blocking::Client::new()
        .delete(format!("{}/tsws/api/v10.1/token", sb.url("truesight")))
        .header("Authorization", format!("authToken {t1}"))
        .send()
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(
        s.token("ts"),
        t1,
        "without --check the stored token is trusted"
    );
    let t2 = s
        .cli(&["token", "ts", "--check"], None)
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_ne!(t2, t1);
    assert_eq!(sb.truesight_about(&t2), 200);
    assert_eq!(
        s.cli(&["token", "ts", "--check"], None).ok().stdout.trim(),
        t2
    );
}

#[test]
fn a_device_code_nobody_approves_expires_with_a_clear_error_and_waits_for_login() {
    let s = Session::start();
    let sb = Sandbox::start(&["--device-interval", "1"]);
    let browser = s.browser();
    let portal = sb.url("biganimal");
    let child = s.spawn_cli(
        &[browser.env()],
        &add_args("late", "biganimal", &portal, &[]),
    );
    let url = browser.wait_url(Duration::from_secs(20));
    assert!(url.contains("user_code="), "{url}");
    // The code's time runs out at the issuer.
    sb.expire(&user_code(&url));
    let run = finish(child, Duration::from_secs(30));
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("expired"), "{}", run.stderr);
    assert!(
        run.stderr.contains("tokenkeeper login late"),
        "says what to do: {}",
        run.stderr
    );
    // The account waits for a sign-in; no secret was stored.
    assert_eq!(s.account("late")["state"], "needs-sign-in");
    assert!(s.stored_secrets().is_empty());
    // A new code, approved in time, signs it in.
    s.device_sign_in(&sb, &["login", "late"], true).0.ok();
    assert_eq!(s.account("late")["state"], "valid");
}
