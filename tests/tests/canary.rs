//! Plants known canary secrets, uses them through every CLI command, and searches
//! every file of the session (the vault folder, the SQLite file and its WAL, HOME,
//! the XDG folders, TMPDIR), every page of the database and every frame of its WAL
//! decrypted (live rows, deleted rows, free pages and page versions the WAL has
//! superseded), the decrypted database's every cell as bytes, and every command's
//! output for them. Only `tokenkeeper token` may print the token, and nothing the
//! password.

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

    // Temporary files went to the session's tree, which is searched.
    let tmp = s
        .envs()
        .into_iter()
        .find(|(k, _)| k == "TMPDIR")
        .expect("TMPDIR is set");
    assert!(std::path::Path::new(&tmp.1).starts_with(s.root.path()));
    // The key first (that runs `tokenkeeper info`), then the files as they are.
    let key = s
        .keyring_lookup(&s.service(), "vault-key")
        .expect("vault key");
    let db_bytes = std::fs::read(s.data_dir.join("vault.db")).expect("vault.db");
    let wal_bytes = std::fs::read(s.data_dir.join("vault.db-wal")).unwrap_or_default();
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
                // TEXT and BLOB as their bytes (a BLOB's Debug form is a list of
                // numbers, which no canary would ever match).
                use rusqlite::types::ValueRef;
                let bytes: Vec<u8> = match row.get_ref(i).unwrap() {
                    ValueRef::Text(b) | ValueRef::Blob(b) => b.to_vec(),
                    ValueRef::Integer(n) => n.to_string().into_bytes(),
                    ValueRef::Real(x) => x.to_string().into_bytes(),
                    ValueRef::Null => Vec::new(),
                };
                cells += 1;
                for secret in secrets {
                    assert!(
                        !contains(&bytes, secret),
                        "a secret is in table {table}: {}",
                        String::from_utf8_lossy(&bytes)
                    );
                }
            }
        }
    }
    assert!(cells > 20, "the database was really read ({cells} cells)");

    // Every page as stored, decrypted: what a row left behind when deleted, free
    // pages, and each older version of a page still in the WAL.
    let pages = decrypted_pages(key.trim(), &db_bytes, &wal_bytes);
    assert!(
        pages.len() > 10,
        "the file and the WAL were decrypted: {} pages",
        pages.len()
    );
    for (place, page) in &pages {
        for secret in secrets {
            assert!(!contains(page, secret), "a secret is in {place}, decrypted");
        }
    }
}

/// SQLCipher 4's page layout: 4096-byte pages, each ending in 80 reserved bytes (a
/// 16-byte IV, then the HMAC); page 1 starts with the 16-byte salt in clear.
const PAGE: usize = 4096;
const RESERVED: usize = 80;

/// Decrypts every page of `db` and every frame of `wal` with the vault's raw key
/// (`x'HEX'`: 32 bytes, used as the AES-256 key as it is): AES-256-CBC with each
/// page's own IV. `openssl` decrypts every block in one run (ECB), the CBC chaining is
/// done here. Returns (where, plaintext) for each page; checks that the decryption is
/// right (page 1 reads as SQLite's header and schema).
fn decrypted_pages(key_hex: &str, file: &[u8], wal_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    // (where, page number, the stored page)
    let mut stored: Vec<(String, u32, Vec<u8>)> = Vec::new();
    assert_eq!(file.len() % PAGE, 0, "vault.db is whole pages");
    for (i, page) in file.chunks(PAGE).enumerate() {
        stored.push((
            format!("vault.db page {}", i + 1),
            i as u32 + 1,
            page.to_vec(),
        ));
    }
    // A 32-byte header, then frames: a 24-byte header (page number first) and the page.
    let mut at = 32;
    let mut frames = 0;
    while at + 24 + PAGE <= wal_bytes.len() {
        let number = u32::from_be_bytes(wal_bytes[at..at + 4].try_into().unwrap());
        stored.push((
            format!("WAL frame {frames} (page {number})"),
            number,
            wal_bytes[at + 24..at + 24 + PAGE].to_vec(),
        ));
        at += 24 + PAGE;
        frames += 1;
    }
    assert!(
        frames > 0,
        "the WAL has frames to decrypt: {} bytes",
        wal_bytes.len()
    );
    // The encrypted part of each page (page 1's salt stays out), in one run.
    let span = |number: u32| {
        if number == 1 {
            16..PAGE - RESERVED
        } else {
            0..PAGE - RESERVED
        }
    };
    let mut ciphertext = Vec::new();
    for (_, number, page) in &stored {
        ciphertext.extend_from_slice(&page[span(*number)]);
    }
    let mut openssl = std::process::Command::new("openssl")
        .args(["enc", "-d", "-aes-256-ecb", "-nopad", "-K", key_hex])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    let mut input = openssl.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        std::io::Write::write_all(&mut input, &ciphertext).expect("openssl's input")
    });
    let out = openssl.wait_with_output().expect("openssl");
    writer.join().unwrap();
    assert!(out.status.success(), "openssl failed");
    let mut blocks = out.stdout.as_slice();
    let mut pages = Vec::new();
    for (place, number, page) in stored {
        let range = span(number);
        let cipher = &page[range.clone()];
        let (mine, rest) = blocks.split_at(cipher.len());
        blocks = rest;
        // CBC: each block XOR the ciphertext block before it (the IV for the first).
        let iv = &page[PAGE - RESERVED..PAGE - RESERVED + 16];
        let mut plain = vec![0u8; range.start];
        for (j, block) in mine.chunks(16).enumerate() {
            let prev = if j == 0 {
                iv
            } else {
                &cipher[(j - 1) * 16..j * 16]
            };
            plain.extend(block.iter().zip(prev).map(|(a, b)| a ^ b));
        }
        if number == 1 {
            // SQLite's header after the salt: page size 4096, 80 reserved bytes, and
            // the schema: proof that the key and the layout are right.
            assert_eq!(&plain[16..18], &[0x10, 0x00], "{place}: page size");
            assert_eq!(plain[20] as usize, RESERVED, "{place}: reserved bytes");
            assert!(contains(&plain, "CREATE TABLE"), "{place}: the schema");
        }
        pages.push((place, plain));
    }
    assert!(blocks.is_empty());
    pages
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
    let ca = s.sandbox_bigfix_ca(&sb);
    let user_token = sb.bigid_user_token(30, true);
    let mut outputs: Vec<Run> = Vec::new();
    let mut secrets: BTreeSet<String> = BTreeSet::new();

    let conn = {
        s.add_sandbox_truesight(&sb, "ts").ok();
        hold_database(&s)
    };
    let immuta = sb.url("immuta");
    // Every account that signs in with a secret; what each stored is planted too.
    let with_secret: [&dyn Fn() -> Run; 5] = [
        &|| s.add_sandbox_bigid(&sb, "bid"),
        &|| s.add_bigid_user_token("bidut", &sb.url("bigid"), &user_token),
        &|| s.add_sandbox_bigfix(&sb, "bf"),
        &|| {
            s.add_with_secret(
                "imk",
                "immuta",
                &immuta,
                "immuta-demo-apikey",
                &["--method", "api-key"],
            )
        },
        &|| s.add_sandbox_immuta(&sb, "imp"),
    ];
    for add in with_secret {
        outputs.push(add().ok());
        secrets.extend(s.stored_secrets());
    }
    let run = s.add_sandbox_biganimal(&sb, "ba");
    outputs.push(run.ok());
    outputs.push(s.add_sandbox_oidc(&sb, "oi").ok());
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
        if !["ba", "oi"].contains(&name) {
            // With the stored secret (the browser sign-ins would wait for a human).
            outputs.push(s.cli(&["login", name], None).ok());
            secrets.extend(s.stored_secrets());
        }
        // `token` prints the account's own token and nothing else: that token is
        // taken out of what it printed, the rest is searched with every output.
        for extra in [None, Some("--check"), Some("--header")] {
            let mut args = vec!["token", name];
            args.extend(extra);
            let mut run = s.cli(&args, None).ok();
            let own = s.account_secrets(name)["access_token"]
                .as_str()
                .expect("an access token")
                .to_string();
            assert!(run.stdout.contains(&own), "{args:?}: {}", run.stdout);
            run.stdout = run.stdout.replace(&own, "");
            outputs.push(run);
            secrets.extend(s.stored_secrets());
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
    // The BigFix inventory's every command, on the token just created.
    let listed = s
        .cli(&["bigfix", "tokens", "bf", "--json"], None)
        .ok()
        .json();
    let extra = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "extra")
        .unwrap_or_else(|| panic!("the created token is listed: {listed}"))["id"]
        .as_u64()
        .expect("its id")
        .to_string();
    let bigfix_url = sb.url("bigfix");
    for args in [
        vec!["bigfix", "get", "bf", "--id", &extra],
        vec!["bigfix", "get", "bf", "--id", &extra, "--json"],
        vec!["bigfix", "get", "bf", "--token-name", "extra", "--json"],
        vec!["bigfix", "rename", "bf", "--id", &extra, "--to", "extra-2"],
        vec!["bigfix", "extend", "bf", "--id", &extra, "--duration", "2"],
        vec!["bigfix", "revoke", "bf", "--id", &extra],
        vec!["cert", &bigfix_url],
        vec!["trust", "bf", "--ca-cert", ca.to_str().unwrap()],
        vec!["renew", "bf"],
    ] {
        outputs.push(s.cli(&args, None).ok());
        secrets.extend(s.stored_secrets());
    }
    // Failures, whose messages quote what the vendor said.
    sb.fault("/immuta/", "status500");
    outputs.push(s.cli(&["renew", "imp"], None));
    outputs.push(s.add_with_secret(
        "bad",
        "immuta",
        &immuta,
        "CANARY-WRONG-KEY-1234",
        &["--method", "api-key"],
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
