//! Vendors Tokenkeeper has never seen, tried for real: BigFix servers with the
//! certificates admins actually make, a BigFix token revoked under the account,
//! numbers that overflowed or stormed, and issuers that point elsewhere. Each test
//! here failed before its fix (the commit that added it says how).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokenkeeper_e2e::{add_args, finish, free_port, Display, Sandbox, Session};

/// One way admins make a server certificate, with `openssl` as they would.
#[derive(Debug, Clone, Copy)]
enum CertKind {
    /// `openssl req -x509` as the issue quotes it: OpenSSL marks it `CA:TRUE`.
    PlainX509,
    /// A self-signed leaf that says `CA:FALSE`.
    LeafCaFalse,
    /// A CA of the admin's own, and a leaf for the server that it signed.
    CaAndLeaf,
}

/// Certificate files for a BigFix stand-in: (what the server presents, its key, what
/// the admin gives with `--ca-cert`).
struct Certs {
    cert: PathBuf,
    key: PathBuf,
    trust: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (Debian's openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_certs(dir: &Path, tag: &str, kind: CertKind, san: &str) -> Certs {
    let dir = dir.join(tag);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let subj = "/CN=127.0.0.1";
    let san = format!("subjectAltName={san}");
    match kind {
        CertKind::PlainX509 => openssl(
            &dir,
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", subj,
                "-addext", &san, "-keyout", "key.pem", "-out", "cert.pem",
            ],
        ),
        CertKind::LeafCaFalse => openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "30",
                "-subj",
                subj,
                "-addext",
                &san,
                "-addext",
                "basicConstraints=critical,CA:FALSE",
                "-addext",
                "extendedKeyUsage=serverAuth",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
            ],
        ),
        CertKind::CaAndLeaf => {
            openssl(
                &dir,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "30",
                    "-subj",
                    "/CN=Ops Root CA",
                    "-keyout",
                    "ca-key.pem",
                    "-out",
                    "ca.pem",
                ],
            );
            openssl(
                &dir,
                &[
                    "req", "-newkey", "rsa:2048", "-nodes", "-subj", subj, "-keyout", "key.pem",
                    "-out", "leaf.csr",
                ],
            );
            std::fs::write(
                dir.join("ext.cnf"),
                format!("{san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
            )
            .expect("ext");
            openssl(
                &dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    "leaf.csr",
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca-key.pem",
                    "-CAcreateserial",
                    "-days",
                    "30",
                    "-extfile",
                    "ext.cnf",
                    "-out",
                    "cert.pem",
                ],
            );
        }
    }
    let trust = match kind {
        CertKind::CaAndLeaf => dir.join("ca.pem"),
        _ => dir.join("cert.pem"),
    };
    Certs {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        trust,
    }
}

fn bigfix_with(certs: &Certs, port: &str) -> Sandbox {
    Sandbox::start(&[
        "--bigfix-port",
        port,
        "--bigfix-cert",
        certs.cert.to_str().unwrap(),
        "--bigfix-key",
        certs.key.to_str().unwrap(),
    ])
}

/// Whether BigFix accepts `token` (a GET of `/api/login` with it), asked by curl
/// trusting `ca` as `curl --cacert` does (reqwest, like rustls, refuses a CA:TRUE
/// certificate presented as the server's own).
fn bigfix_accepts(url: &str, ca: &Path, token: &str) -> bool {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
            ca.to_str().unwrap(),
            "-H",
            &format!("Authorization: Bearer {token}"),
            &format!("{url}/api/login"),
        ])
        .output()
        .expect("curl");
    let code = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(code != "000", "curl reached no BigFix at {url}: {out:?}");
    code == "200"
}

fn sha256_of_cert(pem_file: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-in", pem_file.to_str().unwrap(), "-outform", "DER"])
        .output()
        .expect("openssl");
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(&out.stdout))
}

#[test]
fn bigfix_signs_in_with_each_kind_of_certificate_admins_make_and_a_changed_one_is_refused_in_words()
{
    let s = Session::start();
    let root = s.root.path().to_path_buf();
    for (i, kind) in [
        CertKind::PlainX509,
        CertKind::LeafCaFalse,
        CertKind::CaAndLeaf,
    ]
    .into_iter()
    .enumerate()
    {
        let port = free_port().to_string();
        let certs = make_certs(&root, &format!("k{i}"), kind, "IP:127.0.0.1");
        let sb = bigfix_with(&certs, &port);
        let url = sb.url("bigfix");
        let name = format!("bf{i}");
        let add = s.add_bigfix(
            &name,
            &url,
            "admin",
            "admin-password",
            &["--ca-cert", certs.trust.to_str().unwrap()],
        );
        assert_eq!(add.code, 0, "{kind:?}: {}", add.stderr);
        let token = s.token(&name);
        assert!(
            bigfix_accepts(&url, &certs.trust, &token),
            "{kind:?}: BigFix accepts the token"
        );

        // The same address, now with another certificate of the same kind: refused,
        // in words, with the new certificate's fingerprint and what to do.
        drop(sb);
        let other = make_certs(&root, &format!("k{i}-new"), kind, "IP:127.0.0.1");
        let impostor = bigfix_with(&other, &port);
        let r = s.cli(&["renew", &name], None);
        let what = format!("{kind:?}: {}", r.stderr);
        assert_eq!(r.code, 5, "{what}");
        assert!(r.stderr.contains("does not trust"), "{what}");
        assert!(r.stderr.contains(&sha256_of_cert(&other.cert)), "{what}");
        assert!(r.stderr.contains("tokenkeeper trust"), "{what}");
        assert!(
            !r.stderr.contains("Other(") && !r.stderr.contains("Error {"),
            "Rust's Debug text reached the admin: {what}"
        );
        assert_eq!(
            impostor.stats()["requests"],
            json!({}),
            "nothing reached it"
        );
        drop(impostor);
    }

    // A certificate for another host is refused as such, even when it is trusted.
    let port = free_port().to_string();
    let wrong = make_certs(
        &root,
        "wrong-host",
        CertKind::PlainX509,
        "DNS:bigfix.example.com",
    );
    let sb = bigfix_with(&wrong, &port);
    let r = s.add_bigfix(
        "wrong",
        &sb.url("bigfix"),
        "admin",
        "admin-password",
        &["--ca-cert", wrong.trust.to_str().unwrap()],
    );
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("it is for bigfix.example.com, not 127.0.0.1"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Check the account's URL"), "{}", r.stderr);
}

fn tracked_id(s: &Session, name: &str) -> u64 {
    let tokens = s
        .cli(&["bigfix", "tokens", name, "--json"], None)
        .ok()
        .json();
    tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tracked"] == true)
        .unwrap_or_else(|| panic!("no tracked token: {tokens}"))["id"]
        .as_u64()
        .unwrap()
}

fn events(s: &Session, name: &str) -> String {
    s.cli(&["show", name, "--json"], None).ok().json()["events"].to_string()
}

#[test]
fn a_revoked_bigfix_token_in_use_is_replaced_with_the_stored_password() {
    let s = Session::start();
    let sb = Sandbox::start(&[]);
    let url = sb.url("bigfix");
    s.add_sandbox_bigfix(&sb, "bf").ok();
    let ca = s.sandbox_bigfix_ca(&sb);
    let first = s.token("bf");

    // 1. Through Tokenkeeper: it says what will happen before it happens.
    let id = tracked_id(&s, "bf");
    let revoke = s
        .cli(&["bigfix", "revoke", "bf", "--id", &id.to_string()], None)
        .ok();
    assert!(
        revoke.stderr.contains("is the one account 'bf' uses")
            && revoke.stderr.contains("stored password"),
        "{}",
        revoke.stderr
    );
    assert!(!bigfix_accepts(&url, &ca, &first), "the token was revoked");
    let second = s.cli(&["token", "bf"], None);
    assert_eq!(second.code, 0, "no human needed: {}", second.stderr);
    let second = second.stdout.trim().to_string();
    assert_ne!(second, first);
    assert!(bigfix_accepts(&url, &ca, &second), "the new token works");
    assert!(
        events(&s, "bf").contains("the one in use"),
        "{}",
        events(&s, "bf")
    );

    // 2. By an operator in the console: the next `token` finds out and replaces it.
    let id = tracked_id(&s, "bf");
    let console = sb
        .bigfix_client()
        .delete(format!("{url}/api/token/{id}"))
        .basic_auth("admin", Some("admin-password"))
        .send()
        .unwrap();
    assert!(console.status().is_success(), "{}", console.status());
    let third = s.cli(&["token", "bf"], None);
    assert_eq!(third.code, 0, "{}", third.stderr);
    let third = third.stdout.trim().to_string();
    assert_ne!(third, second);
    assert!(bigfix_accepts(&url, &ca, &third));
    assert!(
        events(&s, "bf").contains("no longer accepts"),
        "{}",
        events(&s, "bf")
    );

    // 3. While `tokenkeeper watch` runs, a revoke through Tokenkeeper is repaired at once.
    let watch = s.spawn_cli(&[], &["watch"]);
    let id = tracked_id(&s, "bf");
    s.cli(&["bigfix", "revoke", "bf", "--id", &id.to_string()], None)
        .ok();
    let started = Instant::now();
    let replaced = loop {
        let now = s.account_secrets("bf")["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if now != third && bigfix_accepts(&url, &ca, &now) {
            break now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "watch did not replace the revoked token"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    tokenkeeper_e2e::terminate(&watch);
    let run = finish(watch, Duration::from_secs(10));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains(&replaced) && !run.stdout.contains(&replaced));

    // 4. The agent the desktop app starts (`--tray`) does the same.
    let display = Display::start();
    let _app = s.start_desktop(&display, &["--tray"]);
    std::thread::sleep(Duration::from_secs(2));
    let id = tracked_id(&s, "bf");
    s.cli(&["bigfix", "revoke", "bf", "--id", &id.to_string()], None)
        .ok();
    let started = Instant::now();
    loop {
        let now = s.account_secrets("bf")["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if now != replaced && bigfix_accepts(&url, &ca, &now) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the app did not replace the revoked token"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let list = s.cli(&["list", "--json"], None).ok().json();
    assert_eq!(list[0]["state"], "valid", "{list}");
}

fn fault(sb: &Sandbox, fault: Value) {
    sb.admin("/faults", fault);
}

#[test]
fn absurd_numbers_in_a_rotating_answer_neither_panic_nor_lose_the_refresh_token() {
    let s = Session::start();
    let sb = Sandbox::start(&["--device-interval", "1"]);
    s.add_sandbox_biganimal(&sb, "ba").ok();
    let token_path = "/biganimal-auth/oauth/token";
    for (what, patch) in [
        (
            "expires_in near 1e13",
            json!({"expires_in": 10_000_000_000_000_i64}),
        ),
        ("expires_in i64::MAX", json!({"expires_in": i64::MAX})),
        (
            "a negative lifetime",
            json!({"expires_in": -5, "refresh_expires_in": -1}),
        ),
        ("a fractional lifetime", json!({"expires_in": 0.5})),
        (
            "lifetimes of the wrong type",
            json!({"expires_in": "soon", "refresh_expires_in": {"a": [1]}}),
        ),
        (
            "a 1 MB non-ASCII field",
            json!({"scope": "é".repeat(500_000)}),
        ),
    ] {
        fault(
            &sb,
            json!({"path_prefix": token_path, "kind": "rewrite", "patch": patch}),
        );
        let r = s.cli(&["renew", "ba"], None);
        assert!(
            r.code == 0 || r.code == 5,
            "{what}: exit {} (a panic is 101): {}",
            r.code,
            r.stderr
        );
        let stored = s.account_secrets("ba")["refresh_token"]
            .as_str()
            .unwrap()
            .to_string();
        let state = sb.refresh_token_state(&stored);
        assert_eq!(
            state["current"], true,
            "{what}: the keyring holds the issuer's current refresh token: {state}"
        );
    }
    // An unusable answer after the issuer rotated: the new refresh token is kept.
    fault(
        &sb,
        json!({"path_prefix": token_path, "kind": "rewrite", "patch": {"access_token": 42}}),
    );
    let r = s.cli(&["renew", "ba"], None);
    assert_eq!(r.code, 5, "{}", r.stderr);
    let stored = s.account_secrets("ba")["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sb.refresh_token_state(&stored)["current"], true);
    s.cli(&["renew", "ba"], None).ok();
    assert_eq!(sb.stats()["oauth"]["replays"], 0, "{}", sb.stats());

    // A device answer with an interval that overflowed `Instant`: a clear expiry, no panic.
    fault(
        &sb,
        json!({"path_prefix": "/biganimal-auth/oauth/device/code", "kind": "rewrite",
               "patch": {"interval": u64::MAX, "expires_in": 2}}),
    );
    let child = s.spawn_cli(&[], &["login", "ba", "--no-browser"]);
    let r = finish(child, Duration::from_secs(30));
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("expired"), "{}", r.stderr);
}

#[test]
fn a_zero_or_past_lifetime_renews_no_more_often_than_the_floor() {
    let s = Session::start();
    let sb = Sandbox::start(&["--device-interval", "1"]);
    // From now on BigAnimal's issuer says each access token lasts one second, and
    // BigFix that each new token expires at 1970's second 1 (its "seconds" reading of
    // Expiration 1): both were due on every pass before the floor.
    fault(
        &sb,
        json!({"path_prefix": "/biganimal-auth/oauth/token", "kind": "rewrite", "count": 10_000,
               "patch": {"expires_in": 1}}),
    );
    fault(
        &sb,
        json!({"path_prefix": "/api/token", "kind": "rewrite", "count": 10_000,
               "patch": {"Expiration": 1}}),
    );
    s.add_sandbox_biganimal(&sb, "ba").ok();
    s.add_sandbox_bigfix(&sb, "bf").ok();
    let ba_before = sb.requests("POST /biganimal-auth/oauth/token");
    let bf_before = sb.requests("POST /api/token");
    let floor_s = 5;
    let span = Duration::from_secs(30);
    let floor = floor_s.to_string();
    let watch = s.spawn_cli(&[("TOKENKEEPER_MIN_RENEWAL_INTERVAL", &floor)], &["watch"]);
    // The CLI in a loop, as a script would call it, adds no storm either.
    let started = Instant::now();
    let mut handed_out = 0;
    while started.elapsed() < span {
        let r = s.cli_env(
            &[("TOKENKEEPER_MIN_RENEWAL_INTERVAL", &floor)],
            &["token", "ba"],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        handed_out += 1;
        // Twice a second: six calls per floor interval is a storm's worth of asking,
        // and the keyring daemon is spared 150 sessions in 30 s on a loaded machine
        // (gnome-keyring died under that once in a full run, and D-Bus restarted it
        // locked).
        std::thread::sleep(Duration::from_millis(500));
    }
    tokenkeeper_e2e::terminate(&watch);
    finish(watch, Duration::from_secs(10));
    let allowed = (span.as_secs() / floor_s) + 2;
    let ba = sb.requests("POST /biganimal-auth/oauth/token") - ba_before;
    let bf = sb.requests("POST /api/token") - bf_before;
    eprintln!(
        "floor {floor_s} s over {span:?}: BigAnimal {ba} refreshes, BigFix {bf} tokens created, \
         {handed_out} tokens handed out, at most {allowed} allowed"
    );
    assert!(
        ba <= allowed,
        "BigAnimal: {ba} refreshes in {span:?} (floor allows {allowed})"
    );
    assert!(
        bf <= allowed,
        "BigFix: {bf} tokens created in {span:?} (floor allows {allowed})"
    );
    assert!(ba >= 2 && bf >= 2, "both kept renewing: {ba}, {bf}");
    let shown = s.cli(&["show", "ba", "--json"], None).ok().json();
    assert!(
        shown["events"].to_string().contains("treats it as lasting"),
        "the clamp is shown: {shown}"
    );
}

#[test]
fn issuers_that_point_elsewhere_are_refused_before_anything_is_sent() {
    let s = Session::start();
    let sb = Sandbox::start(&["--device-interval", "1"]);
    let issuer = sb.url("oidc");
    let discovery = "/oidc/.well-known/openid-configuration";
    let good: Value = reqwest::blocking::get(format!("{issuer}/.well-known/openid-configuration"))
        .unwrap()
        .json()
        .unwrap();
    let raw = |doc: Value| {
        fault(
            &sb,
            json!({"path_prefix": discovery, "kind": "raw", "status": 200,
                   "headers": [["content-type", "application/json"]], "body": doc.to_string()}),
        )
    };
    let add = |name: &str| {
        let flags = ["--client-id", "tokenkeeper-sandbox", "--no-browser"];
        let child = s.spawn_cli(&[], &add_args(name, "oidc", &issuer, &flags));
        finish(child, Duration::from_secs(30))
    };
    let mut cases = Vec::new();
    let mut other_issuer = good.clone();
    other_issuer["issuer"] = json!("https://login.example.com");
    cases.push(("another issuer", other_issuer, "describes another issuer"));
    let mut no_issuer = good.clone();
    no_issuer.as_object_mut().unwrap().remove("issuer");
    cases.push(("no issuer", no_issuer, "describes another issuer"));
    let mut elsewhere = good.clone();
    elsewhere["token_endpoint"] = json!("https://collector.example.net/token");
    cases.push(("a token endpoint elsewhere", elsewhere, "on this machine"));
    let mut plain = good.clone();
    plain["device_authorization_endpoint"] = json!("http://collector.example.net/device");
    cases.push(("a plain-http device endpoint", plain, "will not use"));
    for (i, (what, doc, says)) in cases.into_iter().enumerate() {
        raw(doc);
        let before = sb.stats()["requests"].clone();
        let r = add(&format!("o{i}"));
        assert_eq!(r.code, 5, "{what}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{what}: {}", r.stderr);
        // The document's own words are not quoted (a hostile one could carry anything).
        assert!(
            !r.stderr.contains("example.com") && !r.stderr.contains("example.net"),
            "{what}: {}",
            r.stderr
        );
        let after = sb.stats()["requests"].clone();
        assert_eq!(
            after["POST /oidc/device/auth"], before["POST /oidc/device/auth"],
            "{what}: no device code was asked for"
        );
    }

    // BigAnimal's portal naming an issuer elsewhere (it is on this machine).
    fault(
        &sb,
        json!({"path_prefix": "/biganimal/api/v3/auth/provider", "kind": "rewrite",
               "patch": {"issuerUri": "https://auth.example.net"}}),
    );
    let portal = sb.url("biganimal");
    let child = s.spawn_cli(
        &[],
        &add_args("ba", "biganimal", &portal, &["--no-browser"]),
    );
    let r = finish(child, Duration::from_secs(30));
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(r.stderr.contains("will not use"), "{}", r.stderr);
}

#[test]
fn a_password_inside_the_url_is_refused_and_never_stored_or_echoed() {
    let s = Session::start();
    let sb = Sandbox::start(&[]);
    let url = sb
        .url("truesight")
        .replace("http://", "http://:CANARY-URL-PW@");
    let r = s.add_truesight("ts", &url, "demo", "demo-password", &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("password before '@'"), "{}", r.stderr);
    assert!(!r.stderr.contains("CANARY-URL-PW") && !r.stdout.contains("CANARY-URL-PW"));
    assert_eq!(s.cli(&["list", "--json"], None).ok().json(), json!([]));
}

#[test]
fn hostile_answers_from_every_vendor_are_clear_errors_and_lose_nothing() {
    let s = Session::start();
    let sb = Sandbox::start(&["--device-interval", "1"]);
    let accounts = s.add_every_vendor(&sb);
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let dup = r#"{"authToken":"a","authToken":"b","auth_token":"c","access_token":"x","access_token":7,"Token":"t","Token":null,"token":"k","refresh_token":"r","refresh_token":{},"expires_in":1,"expires_in":"1e400"}"#;
    let hostile: Vec<(&str, Value)> = vec![
        (
            "deep nesting",
            json!({"status": 200, "headers": [["content-type", "application/json"]], "body": deep}),
        ),
        (
            "duplicate keys of the wrong types",
            json!({"status": 200, "headers": [["content-type", "application/json"]], "body": dup}),
        ),
        (
            "a JSON string, not an object",
            json!({"status": 200, "headers": [["content-type", "application/json"]], "body": "\"token\""}),
        ),
        ("an empty 200", json!({"status": 200, "body": ""})),
        (
            "a redirect to another host",
            json!({"status": 302, "headers": [["location", "https://collector.example.net/steal"]], "body": ""}),
        ),
        (
            "a 429 with absurd Retry-After",
            json!({"status": 429, "headers": [["retry-after", "99999999999999999999"]], "body": "{}"}),
        ),
    ];
    for (name, prefix) in &accounts {
        for (what, answer) in &hostile {
            let before_secrets = s.account_secrets(name);
            let mut fault = answer.clone();
            fault["path_prefix"] = json!(prefix);
            fault["kind"] = json!("raw");
            fault["count"] = json!(50);
            sb.admin("/faults", fault);
            let r = s.cli(&["renew", name], None);
            let case = format!("{name}, {what}: exit {}: {}", r.code, r.stderr);
            assert!(
                [0, 3, 4, 5].contains(&r.code),
                "a clear outcome, not a crash or an internal error: {case}"
            );
            if r.code != 0 {
                assert!(
                    r.stderr.contains(&format!("'{name}'")) && r.stderr.len() < 2_000,
                    "the message names the account and is short: {case}"
                );
            }
            assert!(!r.stderr.contains("panicked"), "{case}");
            sb.admin("/faults/clear", json!({}));
            // What renewal does not replace is never lost; a refresh token is the
            // issuer's current one.
            let after = s.account_secrets(name);
            for key in ["password", "api_key", "user_token"] {
                assert_eq!(after[key], before_secrets[key], "{case}: {key} changed");
            }
            if let Some(rt) = after["refresh_token"].as_str() {
                assert_eq!(
                    sb.refresh_token_state(rt)["current"],
                    true,
                    "{case}: the stored refresh token is not the issuer's current one"
                );
            }
        }
        // And the account still renews once the vendor behaves.
        let again = s.cli(&["renew", name], None);
        assert_eq!(again.code, 0, "{name} renews afterwards: {}", again.stderr);
    }
    assert_eq!(sb.stats()["oauth"]["replays"], 0, "{}", sb.stats());
}
