//! Signs in to a real, independent OAuth server (the npm package `oidc-provider`,
//! tests/oidc) through a generic OIDC account, and proves that rotation never replays
//! a refresh token: that server revokes the whole grant if one is ever sent twice.

use std::time::Duration;

use tokenkeeper_e2e::oidc::OidcServer;
use tokenkeeper_e2e::{add_args, finish, user_code, Session};

fn sign_in(s: &Session, server: &OidcServer, args: &[&str], approve: bool) -> tokenkeeper_e2e::Run {
    let browser = s.browser();
    let child = s.spawn_cli(&[browser.env()], args);
    let url = browser.wait_url(Duration::from_secs(30));
    assert!(
        url.starts_with(&server.issuer),
        "the browser opens the issuer's page: {url}"
    );
    server.answer(&user_code(&url), approve);
    // oidc-provider leaves `interval` out, so polls come every 5 s.
    finish(child, Duration::from_secs(60))
}

#[test]
fn device_sign_in_and_two_rotations_against_oidc_provider() {
    let s = Session::start();
    let server = OidcServer::start();
    let add = add_args(
        "corp",
        "oidc",
        &server.issuer,
        &["--client-id", "tokenkeeper-test"],
    );

    // Denied in the browser: a clear error, and nothing is stored.
    let denied = sign_in(&s, &server, &add, false);
    assert_ne!(denied.code, 0);
    assert!(denied.stderr.contains("denied"), "{}", denied.stderr);
    assert!(denied.stderr.contains("corp"), "{}", denied.stderr);
    // The account is kept (its settings worked), waiting for a sign-in, with no secret.
    let listed = s.cli(&["list", "--json"], None).ok().json();
    assert_eq!(listed[0]["state"], "needs-sign-in", "{listed}");
    assert!(s.stored_secrets().is_empty());

    let added = sign_in(&s, &server, &["login", "corp"], true);
    assert_eq!(added.code, 0, "{}", added.stderr);

    let first = s.account_secrets("corp");
    let access_1 = s.token("corp");
    assert!(!access_1.is_empty());

    let mut refresh_tokens = vec![first["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string()];
    let mut access_tokens = vec![access_1];
    for round in 1..=2 {
        let r = s.cli(&["renew", "corp"], None);
        assert_eq!(r.code, 0, "renewal {round}: {}", r.stderr);
        let secrets = s.account_secrets("corp");
        let refresh = secrets["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_string();
        assert!(
            !refresh_tokens.contains(&refresh),
            "renewal {round} stored a rotated refresh token"
        );
        refresh_tokens.push(refresh);
        let access = s.token("corp");
        assert!(
            !access_tokens.contains(&access),
            "renewal {round} issued a new access token"
        );
        access_tokens.push(access);
    }

    let stats = server.stats();
    assert_eq!(stats["refreshes"], 2, "{stats}");
    assert_eq!(
        stats["invalid_grants"], 0,
        "no refresh token was replayed: {stats}"
    );
    assert_eq!(stats["grants_revoked"], 0, "the grant is intact: {stats}");

    // The check above can fail: replaying the first, used refresh token (as a buggy
    // client would) makes this server refuse it and revoke the whole grant. Then
    // renewal says to sign in again and keeps what is stored.
    let replay = reqwest::blocking::Client::new()
        .post(format!("{}/token", server.issuer))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "tokenkeeper-test"),
            ("refresh_token", refresh_tokens[0].as_str()),
        ])
        .send()
        .expect("replay");
    assert_eq!(replay.status().as_u16(), 400);
    let stats = server.stats();
    assert_eq!(stats["invalid_grants"], 1, "{stats}");
    assert_eq!(stats["grants_revoked"], 1, "{stats}");

    let before = s.account_secrets("corp");
    let r = s.cli(&["renew", "corp"], None);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("tokenkeeper login corp"), "{}", r.stderr);
    assert_eq!(s.account_secrets("corp"), before, "nothing stored is lost");
    let secrets = serde_json::to_string(&before).unwrap();
    for token in refresh_tokens.iter().chain(&access_tokens) {
        assert!(!r.stderr.contains(token.as_str()) && !r.stdout.contains(token.as_str()));
    }
    assert!(secrets.contains(refresh_tokens.last().unwrap().as_str()));
}
