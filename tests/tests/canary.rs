//! Plants known canary secrets, uses them through every CLI command, and searches
//! every file of the session (the vault folder, the SQLite file and its WAL, HOME,
//! the XDG folders), the decrypted database's every row, and every command's output
//! for them. Only `tokenkeeper token` may print the token, and nothing the password.

use std::collections::BTreeSet;

use serde_json::json;
use tokenkeeper_e2e::{files_under, Run, Sandbox, Session};

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Opens the vault's database with its key and keeps it open, as the desktop app
/// does, so that what the CLI writes next stays in the WAL (SQLite folds it into the
/// file when the last connection closes) and the WAL is searched as it is while the
/// app runs.
fn hold_database(s: &Session) -> rusqlite::Connection {
    let key = s
        .keyring_lookup(&s.service(), "vault-key")
        .expect("vault key in the keyring");
    let conn = rusqlite::Connection::open(s.data_dir.join("vault.db")).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", key.trim()))
        .unwrap();
    let _: i64 = conn
        .query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
        .unwrap();
    conn
}

/// No secret in any output, any file of the session (vault.db, its WAL and SHM, the
/// lock, HOME, XDG), or any cell of the decrypted database.
fn assert_nowhere(s: &Session, conn: &rusqlite::Connection, outputs: &[Run], secrets: &[String]) {
    assert!(!secrets.is_empty());
    for secret in secrets {
        assert!(
            secret.len() >= 8,
            "a canary long enough not to match by chance"
        );
    }
    for out in outputs {
        for secret in secrets {
            assert!(
                !out.stdout.contains(secret.as_str()) && !out.stderr.contains(secret.as_str()),
                "a secret leaked into CLI output: {out:?}"
            );
        }
    }

    let files = files_under(s.root.path());
    assert!(files.iter().any(|f| f.ends_with("vault.db")));
    let wal = s.data_dir.join("vault.db-wal");
    assert!(
        std::fs::metadata(&wal)
            .map(|m| m.len() > 0)
            .unwrap_or(false),
        "the WAL is searched too: {files:?}"
    );
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_default();
        for secret in secrets {
            assert!(
                !contains(&bytes, secret),
                "a secret is in {}",
                file.display()
            );
        }
    }

    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.contains(&"accounts".to_string()) && tables.contains(&"events".to_string()));
    let mut cells = 0;
    for table in &tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                let v: rusqlite::types::Value = row.get(i).unwrap();
                let text = format!("{v:?}");
                cells += 1;
                for secret in secrets {
                    assert!(
                        !text.contains(secret.as_str()),
                        "a secret is in table {table}: {text}"
                    );
                }
            }
        }
    }
    assert!(cells > 20, "the database was really read ({cells} cells)");
}

#[test]
fn canary_secrets_appear_nowhere_but_the_keyring_and_token_output() {
    let s = Session::start();
    let sb = Sandbox::start(&["--truesight-token-ttl", "1"]);
    let password = format!("CANARY-PW-{}", std::process::id());
    let wrong = format!("CANARY-WRONG-{}", std::process::id());
    sb.admin(
        "/truesight/users",
        json!({"username": "canary", "password": password, "tenant": "BmcRealm"}),
    );
    let url = sb.url("truesight");
    let add = |name: &str, secret: &str| s.add_truesight(name, &url, "canary", secret, &[]);

    let mut outputs = Vec::new();
    let mut tokens = Vec::new();
    outputs.push(add("ts", &password).ok());
    let conn = hold_database(&s);
    outputs.push(add("wrong", &wrong));
    outputs.push(add("second", &password).ok());
    for _ in 0..2 {
        let t = s.cli(&["token", "ts"], None).ok();
        tokens.push(t.stdout.trim().to_string());
        outputs.push(tokenkeeper_e2e::Run {
            stdout: String::new(),
            ..t
        });
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert_ne!(
        tokens[0], tokens[1],
        "the token was renewed, so two tokens are planted"
    );
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["show", "ts"],
        vec!["show", "ts", "--json"],
        vec!["info", "--json"],
        vec!["login", "ts"],
        vec!["exec", "ts", "--", "true"],
        vec!["remove", "second"],
    ] {
        outputs.push(s.cli(&args, None));
    }
    sb.fault("/truesight", "html");
    outputs.push(s.cli(&["login", "ts"], None));

    let secrets: Vec<String> = [password.clone(), wrong.clone()]
        .into_iter()
        .chain(tokens.iter().cloned())
        .collect();
    assert_nowhere(&s, &conn, &outputs, &secrets);

    // The keyring does hold them: the search above would have found them had they leaked.
    let items = s.keyring_items(&s.service());
    let account_item = items
        .iter()
        .find(|i| i.starts_with("account/"))
        .expect("an account item");
    let stored = s
        .keyring_lookup(&s.service(), account_item)
        .expect("the account's secrets");
    assert!(stored.contains(&password), "the password is in the keyring");
}

/// Every vendor's secrets (passwords, API keys, user tokens, refresh tokens, access
/// tokens, the ones rotated away included) are taken from the keyring as they are
/// stored after each step, then searched for everywhere else.
#[test]
fn every_vendors_secrets_appear_nowhere_but_the_keyring() {
    let s = Session::start();
    let sb = Sandbox::start(&["--device-interval", "1"]);
    let ca = s.write_file("bigfix-ca.pem", sb.urls["bigfix_ca_pem"].as_str().unwrap());
    let user_token = sb.bigid_user_token(30, true);
    let mut outputs: Vec<Run> = Vec::new();
    let mut secrets: BTreeSet<String> = BTreeSet::new();

    let with_secret: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "bid",
                "--vendor",
                "bigid",
                "--url",
                &sb.url("bigid"),
                "--username",
                "bigid",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "bigid-password",
        ),
        (
            vec![
                "bidut",
                "--vendor",
                "bigid",
                "--url",
                &sb.url("bigid"),
                "--method",
                "user-token",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            &user_token,
        ),
        (
            vec![
                "bf",
                "--vendor",
                "bigfix",
                "--url",
                &sb.url("bigfix"),
                "--username",
                "admin",
                "--ca-cert",
                ca.to_str().unwrap(),
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "admin-password",
        ),
        (
            vec![
                "imk",
                "--vendor",
                "immuta",
                "--url",
                &sb.url("immuta"),
                "--method",
                "api-key",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "immuta-demo-apikey",
        ),
        (
            vec![
                "imp",
                "--vendor",
                "immuta",
                "--url",
                &sb.url("immuta"),
                "--username",
                "immuta-user",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            "immuta-password",
        ),
    ];
    let conn = {
        s.add_truesight("ts", &sb.url("truesight"), "demo", "demo-password", &[])
            .ok();
        hold_database(&s)
    };
    for (args, secret) in &with_secret {
        let mut full = vec!["add"];
        full.extend(args.iter().map(String::as_str));
        full.push("--secret-stdin");
        outputs.push(s.cli(&full, Some(secret)).ok());
        secrets.extend(s.stored_secrets());
    }
    let run = s.add_biganimal(&sb, "ba");
    outputs.push(run.ok());
    let (run, _) = s.device_sign_in(
        &sb,
        &[
            "add",
            "oi",
            "--vendor",
            "oidc",
            "--url",
            &sb.url("oidc"),
            "--client-id",
            "tokenkeeper-sandbox",
        ],
        true,
    );
    outputs.push(run.ok());
    secrets.extend(s.stored_secrets());

    let names = ["ts", "bid", "bidut", "bf", "imk", "imp", "ba", "oi"];
    for name in names {
        // Renewal rotates tokens: the old ones are canaries too.
        outputs.push(s.cli(&["renew", name], None).ok());
        secrets.extend(s.stored_secrets());
        for args in [
            vec!["show", name],
            vec!["show", name, "--json"],
            vec!["exec", name, "--", "true"],
        ] {
            outputs.push(s.cli(&args, None));
        }
    }
    for args in [
        vec!["bigfix", "tokens", "bf"],
        vec!["bigfix", "tokens", "bf", "--json"],
        vec!["bigfix", "rotate", "bf"],
        vec![
            "bigfix",
            "create",
            "bf",
            "--token-name",
            "extra",
            "--duration",
            "1",
        ],
        vec!["list"],
        vec!["list", "--json"],
        vec!["info", "--json"],
    ] {
        outputs.push(s.cli(&args, None).ok());
        secrets.extend(s.stored_secrets());
    }
    // Failures, whose messages quote what the vendor said.
    sb.fault("/immuta/", "status500");
    outputs.push(s.cli(&["renew", "imp"], None));
    outputs.push(s.cli(
        &[
            "add",
            "bad",
            "--vendor",
            "immuta",
            "--url",
            &sb.url("immuta"),
            "--method",
            "api-key",
            "--secret-stdin",
        ],
        Some("CANARY-WRONG-KEY-1234"),
    ));
    sb.admin("/oauth/revoke-all", json!({}));
    outputs.push(s.cli(&["renew", "ba"], None));
    outputs.push(s.cli(&["remove", "bidut"], None).ok());
    secrets.extend(s.stored_secrets());

    // The engine's events (alerts quote the last error) as `watch` prints them.
    // Read as it prints, and stopped once the alert came (or after 30 s).
    let mut watch = s.spawn_cli(&[], &["watch", "--json"]);
    let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let out = watch.stdout.take().expect("stdout");
        let printed = printed.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let mut p = printed.lock().unwrap();
                p.push_str(&line);
                p.push('\n');
            }
        })
    };
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !printed.lock().unwrap().contains("needs-sign-in") && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &watch.id().to_string()])
        .status()
        .expect("kill");
    let mut watched = tokenkeeper_e2e::finish(watch, std::time::Duration::from_secs(10));
    reader.join().expect("the watch's output");
    watched.stdout = printed.lock().unwrap().clone();
    assert!(
        watched.stdout.contains("needs-sign-in"),
        "the revoked BigAnimal account was alerted: {}",
        watched.stdout
    );
    outputs.push(watched);

    secrets.insert("CANARY-WRONG-KEY-1234".to_string());
    secrets.insert(user_token);
    // Every kind of secret was planted.
    assert!(secrets.len() >= 20, "{} secrets", secrets.len());
    let secrets: Vec<String> = secrets.into_iter().collect();
    assert_nowhere(&s, &conn, &outputs, &secrets);
}
