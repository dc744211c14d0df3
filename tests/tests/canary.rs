//! Plants known canary secrets, uses them through every CLI command, and searches
//! every file of the session (the vault folder, the SQLite file and its WAL, HOME,
//! the XDG folders, TMPDIR), every page of the database and every frame of its WAL
//! decrypted (live rows, deleted rows, free pages and page versions the WAL has
//! superseded), the decrypted database's every cell as bytes, and every command's
//! output for them. Only `tokenkeeper token` may print the token, and nothing the
//! password. The resident agent (issue 13) likewise: its socket's answers carry no
//! secret but the asked account's token, its stderr none, `exec --keep-fresh` leaves
//! no token in any file however it ends, and the agent's memory cannot be dumped or
//! read by another process of its user. A team on OpenBao (issue 14) likewise: its
//! logins' passwords, AppRole secret id and tokens, and a shared account's secrets
//! are in no file, page or output of a member's, a reader's or a server's vault.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tokenkeeper_e2e::{files_under, wait_for, Agent, KeyringItem, Run, Sandbox, Session};

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

/// TrueSight user `canary` at the sandbox: its canary password, a wrong one for the
/// failures, and the stand-in's address.
fn canary_user(sb: &Sandbox) -> (String, String, String) {
    let password = format!("CANARY-PW-{}", std::process::id());
    let wrong = format!("CANARY-WRONG-{}", std::process::id());
    sb.admin(
        "/truesight/users",
        json!({"username": "canary", "password": password, "tenant": "BmcRealm"}),
    );
    (password, wrong, sb.url("truesight"))
}

#[test]
fn canary_secrets_appear_nowhere_but_the_keyring_and_token_output() {
    let s = Session::start();
    let sb = Sandbox::start(&["--truesight-token-ttl", "1"]);
    let (password, wrong, url) = canary_user(&sb);
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

    let mut names = vec!["ts", "bid", "bidut", "bf", "imk", "imp", "ba", "oi"];
    // OpenBao: a token account and a userpass one, when `bao` is installed (the
    // set-up installs it; the server lives as long as the test).
    let bao = tokenkeeper_e2e::openbao::DevServer::start("canary: OpenBao accounts");
    if let Some(bao) = &bao {
        let password = format!("CANARY-BAO-PW-{}", std::process::id());
        bao.userpass_user("canary", &password, &["default"]);
        let token = bao.token(&["default"], "1h");
        let added: [&dyn Fn() -> Run; 2] = [
            &|| {
                s.add_with_secret(
                    "obt",
                    "openbao",
                    &bao.addr,
                    &token,
                    &["--method", "user-token"],
                )
            },
            &|| {
                s.add_with_secret(
                    "obp",
                    "openbao",
                    &bao.addr,
                    &password,
                    &["--username", "canary"],
                )
            },
        ];
        for add in added {
            outputs.push(add().ok());
            secrets.extend(s.stored_secrets());
        }
        secrets.extend([password, token]);
        names.extend(["obt", "obp"]);
    }
    for name in names.iter().copied() {
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
    tokenkeeper_e2e::terminate(&watch);
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

/// The agent's socket for the session's vault: in the private runtime folder, named
/// after the vault's keyring service.
fn agent_socket(s: &Session) -> PathBuf {
    let service = s.service();
    let tag = service.rsplit('/').next().expect("the service's tag");
    s.root
        .path()
        .join("run/tokenkeeper")
        .join(format!("agent-{tag}.sock"))
}

/// Sends one request line on a connection of its own; the answer line as it came.
fn ask(socket: &Path, line: &str) -> String {
    let mut c = UnixStream::connect(socket).expect("connect to the agent");
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(line.as_bytes()).expect("write the request");
    let mut answer = String::new();
    BufReader::new(c)
        .read_line(&mut answer)
        .expect("read the answer");
    assert!(answer.ends_with('\n'), "one whole answer line: {answer:?}");
    answer
}

/// Text to be searched, as `assert_nowhere` searches outputs.
fn said(text: impl Into<String>) -> Run {
    Run {
        code: 0,
        stdout: text.into(),
        stderr: String::new(),
        took: Duration::ZERO,
    }
}

/// The access token an account's keyring item holds now.
fn stored_token(s: &Session, item: &KeyringItem) -> String {
    item.secrets(s)["access_token"]
        .as_str()
        .expect("an access token")
        .to_string()
}

/// The agent's every answer (ping, list, renew, token, the errors for an unknown
/// account and an account that cannot sign in, bad requests that carry a secret)
/// through several renewals and a vendor failing: only the token answer holds a
/// secret, and only the asked account's current token. Neither the answers, nor the
/// agent's stderr, nor any file, nor the database hold any other.
#[test]
fn the_agents_answers_and_stderr_carry_no_secret_but_the_asked_token() {
    let s = Session::start();
    // 8 s tokens, renewed every 3-4 s: two renewals never fall between the keyring
    // reads around one token answer, so the token answered was seen in the keyring.
    let sb = Sandbox::start(&["--truesight-token-ttl", "8"]);
    let (password, wrong, url) = canary_user(&sb);
    s.add_truesight("ts", &url, "canary", &password, &[]).ok();
    let conn = hold_database(&s);
    s.add_truesight("other", &url, "canary", &password, &[])
        .ok();
    // A sign-in refused at once, and an account kept with the wrong password (its
    // token needs a sign-in; its renewal is refused by the vendor).
    let refused = s.add_truesight("tried", &url, "canary", &wrong, &[]);
    assert_ne!(refused.code, 0, "a wrong password is refused");
    s.add_truesight("wrong", &url, "canary", &wrong, &["--no-login"])
        .ok();
    let (ts, other) = (s.account_item("ts"), s.account_item("other"));
    let mut secrets: BTreeSet<String> = [password.clone(), wrong.clone()].into();
    secrets.extend(s.stored_secrets());
    let mut outputs = vec![refused];
    let agent = Agent::start(&s);
    let socket = agent_socket(&s);
    // A window's subscription: every event line the agent sends while it works.
    let (events, subscriber) = {
        let mut c = UnixStream::connect(&socket).expect("connect to the agent");
        c.write_all(b"{\"op\":\"subscribe\"}\n").unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(c).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        (lines, reader)
    };

    // Every token either account held, read from the keyring around each answer.
    let mut ts_tokens: BTreeSet<String> = BTreeSet::new();
    let mut other_tokens: BTreeSet<String> = BTreeSet::new();
    let mut handed_out = 0;
    let requests = [
        "{\"op\":\"ping\"}\n".to_string(),
        "{\"op\":\"list\"}\n".to_string(),
        "{\"op\":\"renew\",\"account\":\"other\"}\n".to_string(),
        "{\"op\":\"renew\",\"account\":\"nobody\"}\n".to_string(),
        "{\"op\":\"token\",\"account\":\"nobody\"}\n".to_string(),
        "{\"op\":\"sign_ins\"}\n".to_string(),
        "{\"op\":\"token\",\"account\":\"wrong\"}\n".to_string(),
        "{\"op\":\"renew\",\"account\":\"wrong\"}\n".to_string(),
        // Bad requests with a secret in them: never quoted back, never logged.
        format!("{{\"op\":\"{password}\"}}\n"),
        format!("{password}{{\n"),
        format!("{{\"op\":\"renew\",\"account\":5,\"password\":\"{wrong}\"}}\n"),
        format!("{{\"op\":[\"{password}\"]}}\n"),
    ];
    // A bound, not a speed: on a loaded two-core machine the rounds took over 60 s.
    let rounds_end = Instant::now() + Duration::from_secs(120);
    let mut round = 0;
    let mut failing = false;
    // Rounds until 'ts' was renewed twice by the agent's engine ('other' is renewed
    // by the rounds' own `renew` requests, so its engine never has to); the last ones
    // with the vendor failing, so that renewal errors are answered and logged.
    while agent.count("renewed 'ts'") < 2 || agent.count("renewal failed") < 1 {
        assert!(
            Instant::now() < rounds_end,
            "renewals and a failure within two minutes: {:#?}",
            agent.log()
        );
        // The vendor fails for good once 'ts' was renewed twice: a one-request fault
        // was taken by the round's own `renew other` before the engine came to 'ts'
        // (in CI, for two minutes on end).
        let renewed_enough = ts_tokens.len() >= 3 && other_tokens.len() >= 3;
        if !failing && renewed_enough && agent.count("renewed 'ts'") >= 2 {
            sb.fault_times("/truesight", "html", 10_000);
            failing = true;
        }
        for request in &requests {
            outputs.push(said(ask(&socket, request)));
        }
        // The token answer: the asked account's token, and no other secret.
        ts_tokens.insert(stored_token(&s, &ts));
        other_tokens.insert(stored_token(&s, &other));
        let answer = ask(&socket, "{\"op\":\"token\",\"account\":\"ts\"}\n");
        ts_tokens.insert(stored_token(&s, &ts));
        other_tokens.insert(stored_token(&s, &other));
        let v: serde_json::Value = serde_json::from_str(&answer).expect("a JSON answer");
        if v["ok"] == true {
            let token = v["token"].as_str().expect("the token").to_string();
            assert!(
                ts_tokens.contains(&token),
                "round {round}: the token answer holds a token 'ts' never held"
            );
            assert!(
                !other_tokens.contains(&token),
                "round {round}: 'other''s token"
            );
            assert!(
                v["authorization"]
                    .as_str()
                    .is_some_and(|a| a.ends_with(&token)),
                "round {round}: the authorization is built on the same token"
            );
            // What is left once the asked token is taken out is searched with the rest.
            outputs.push(said(answer.replace(&token, "")));
            handed_out += 1;
        } else {
            outputs.push(said(answer));
        }
        secrets.extend(s.stored_secrets());
        round += 1;
        std::thread::sleep(Duration::from_millis(700));
    }
    assert!(handed_out >= 3, "tokens were handed out: {handed_out}");
    assert!(
        ts_tokens.len() >= 3 && other_tokens.len() >= 3,
        "both accounts' tokens were renewed: {} and {}",
        ts_tokens.len(),
        other_tokens.len()
    );
    // The answers were those of a working agent (the search would find a leak).
    let all: String = outputs.iter().map(|o| o.stdout.as_str()).collect();
    for expected in [
        "\"accounts\"",
        "\"pid\"",
        "bad_request",
        "\"kind\":\"usage\"",
        "\"kind\":\"needs_sign_in\"",
    ] {
        assert!(all.contains(expected), "no answer with {expected}: {all}");
    }

    let log = agent.stop();
    assert!(
        log.iter().any(|l| l.contains("renewal failed")),
        "the failure was logged: {log:#?}"
    );
    subscriber.join().expect("the subscription's reader");
    let events = events.lock().unwrap().clone();
    assert!(
        events.first().is_some_and(|l| l.contains("\"ok\":true")),
        "the subscription was taken: {events:#?}"
    );
    // Renewals and a failure happened: a window would have heard of them.
    assert!(
        events.len() >= 3,
        "the engine's events came over the subscription: {events:#?}"
    );
    outputs.push(said(events.join("\n")));
    outputs.push(Run {
        stderr: log.join("\n"),
        ..said("")
    });
    secrets.extend(ts_tokens);
    secrets.extend(other_tokens);
    secrets.extend(s.stored_secrets());
    let secrets: Vec<String> = secrets.into_iter().collect();
    assert_nowhere(&s, &conn, &outputs, &secrets);
}

/// `exec --keep-fresh` as it ends both ways, the command finishing and `exec`
/// SIGKILLed while the command runs: every token the file held (two-second tokens,
/// rewritten while it runs) is then in no file of the session's tree, no page of the
/// database, and no output.
#[test]
fn keep_fresh_leaves_no_token_in_any_file_when_exec_ends_or_is_killed() {
    let s = Session::start();
    let sb = Sandbox::start(&["--truesight-token-ttl", "2"]);
    s.add_sandbox_truesight(&sb, "ts").ok();
    let conn = hold_database(&s);
    let mut secrets: BTreeSet<String> = s.stored_secrets().into_iter().collect();
    let mut outputs = Vec::new();
    for killed in [false, true] {
        // The command says where its file is, then runs (sleep replaces the shell,
        // so that the guard's SIGTERM ends it).
        let runs = if killed { 600 } else { 7 };
        let script = format!("echo \"$TOKENKEEPER_TOKEN_FILE\"; exec sleep {runs}");
        let mut exec = s.spawn_cli(
            &[],
            &["exec", "ts", "--keep-fresh", "--", "sh", "-c", &script],
        );
        let mut line = String::new();
        BufReader::new(exec.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("the token file's path");
        let file = PathBuf::from(line.trim());
        let folder = file.parent().expect("the token folder").to_path_buf();
        assert!(folder.starts_with(s.root.path()), "{}", folder.display());
        // What the file holds while the command runs: each token is a canary.
        let mut held: BTreeSet<String> = BTreeSet::new();
        let watched = Instant::now();
        while watched.elapsed() < Duration::from_secs(6) {
            if let Ok(token) = std::fs::read_to_string(&file) {
                if !token.is_empty() {
                    held.insert(token);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            held.len() >= 2,
            "killed {killed}: the file was rewritten: {} tokens",
            held.len()
        );
        if killed {
            exec.kill().expect("SIGKILL exec");
        }
        let run = tokenkeeper_e2e::finish(exec, Duration::from_secs(30));
        if !killed {
            assert_eq!(run.code, 0, "{}", run.stderr);
        }
        wait_for(
            &format!("killed {killed}: the token folder to go"),
            Duration::from_secs(15),
            || !folder.exists(),
        );
        // After the file's path (read above), the command printed nothing.
        assert_eq!(run.stdout, "", "killed {killed}");
        outputs.push(run);
        secrets.extend(held);
        secrets.extend(s.stored_secrets());
    }
    outputs.push(s.cli(&["list", "--json"], None).ok());
    let secrets: Vec<String> = secrets.into_iter().collect();
    assert_nowhere(&s, &conn, &outputs, &secrets);
}

/// The user "nobody", as which the agent runs for the memory test: `/proc` shows
/// whether a process is dumpable only across users (the kernel hands a
/// non-dumpable process's `/proc` files to root, and only the same user may read a
/// dumpable one's).
const NOBODY: u32 = 65534;

/// A private tree of folders, a D-Bus session bus and an unlocked gnome-keyring, all
/// owned by and run as "nobody", for an agent run as "nobody".
struct NobodySession {
    /// Stopped first (fields drop in order), then the folders go.
    daemons: Vec<tokenkeeper_e2e::Running>,
    envs: Vec<(String, String)>,
    _root: tempfile::TempDir,
}

impl NobodySession {
    fn start() -> Self {
        let root = tempfile::Builder::new()
            .prefix("tk-e2e-nobody-")
            .tempdir()
            .expect("tempdir");
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let mut envs: Vec<(String, String)> = Vec::new();
        for (var, dir) in [
            ("HOME", "home"),
            ("XDG_DATA_HOME", "data"),
            ("XDG_CONFIG_HOME", "config"),
            ("XDG_CACHE_HOME", "cache"),
            ("XDG_RUNTIME_DIR", "run"),
            ("TMPDIR", "tmp"),
            ("TOKENKEEPER_DATA_DIR", "vault"),
        ] {
            let path = root.path().join(dir);
            std::fs::create_dir(&path).unwrap();
            std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
            envs.push((var.into(), path.display().to_string()));
        }
        let mut s = NobodySession {
            daemons: Vec::new(),
            envs,
            _root: root,
        };
        let mut dbus = s
            .command("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon as nobody");
        let mut address = String::new();
        BufReader::new(dbus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        assert!(
            !address.trim().is_empty(),
            "dbus-daemon as nobody: no address"
        );
        s.daemons.push(tokenkeeper_e2e::Running(dbus));
        s.envs.push((
            "DBUS_SESSION_BUS_ADDRESS".into(),
            address.trim().to_string(),
        ));
        let mut keyring = s
            .command("gnome-keyring-daemon")
            .args(["--foreground", "--components=secrets", "--unlock"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon as nobody");
        keyring
            .stdin
            .take()
            .unwrap()
            .write_all(b"throwaway-test-password")
            .unwrap();
        s.daemons.push(tokenkeeper_e2e::Running(keyring));
        wait_for(
            "gnome-keyring on nobody's bus",
            Duration::from_secs(10),
            || {
                s.command("dbus-send")
                    .args([
                        "--session",
                        "--print-reply",
                        "--dest=org.freedesktop.DBus",
                        "/org/freedesktop/DBus",
                        "org.freedesktop.DBus.NameHasOwner",
                        "string:org.freedesktop.secrets",
                    ])
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
            },
        );
        s
    }

    /// `program` run as nobody (by `setpriv`, which execs it: the child's pid is the
    /// program's) in this session's environment and nothing else of ours.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            format!("--reuid={NOBODY}"),
            format!("--regid={NOBODY}"),
            "--clear-groups".to_string(),
        ])
        .arg(program)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LANG", "C.UTF-8")
        .envs(self.envs.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

/// The uids (real, effective, saved, fs) of a running process.
fn uids(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .map(|u| u.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The soft core-file limit of a running process, as /proc shows it.
fn core_limit(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .and_then(|l| l.split_whitespace().nth(4))
        .unwrap_or_default()
        .to_string()
}

/// Whether another process of the same user could read `pid`'s memory: the owner of
/// its `/proc` files (root for a non-dumpable process), and what a `cat` of its
/// `/proc/PID/environ` and a read of `/proc/PID/mem`, run as nobody, get.
fn readable_by_nobody(s: &NobodySession, pid: u32) -> (u32, bool, String) {
    let owner = std::fs::metadata(format!("/proc/{pid}/environ"))
        .map(|m| m.uid())
        .expect("the process runs");
    let environ = s
        .command("cat")
        .arg(format!("/proc/{pid}/environ"))
        .output()
        .expect("cat as nobody");
    let mem = s
        .command("head")
        .args(["-c", "1"])
        .arg(format!("/proc/{pid}/mem"))
        .output()
        .expect("head as nobody");
    (
        owner,
        environ.status.success() && !environ.stdout.is_empty(),
        String::from_utf8_lossy(&mem.stderr).to_string(),
    )
}

/// The agent's memory can be neither dumped nor read by another process of its
/// user: it is non-dumpable (PR_SET_DUMPABLE 0) and its core-file limit is 0, though
/// started with core files allowed. Seen from outside as the kernel shows it, the
/// agent run as "nobody" beside a process of "nobody" that did not protect itself
/// (which shows that the same look sees a dumpable process).
#[test]
fn the_agents_memory_cannot_be_dumped_or_read_by_its_own_user() {
    let me = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1);
    if me != 0 {
        let _ = writeln!(
            std::io::stderr(),
            "skipped: running the agent as another user needs root"
        );
        return;
    }
    let s = NobodySession::start();
    // A plain process of nobody's, core files allowed: dumpable.
    let plain = tokenkeeper_e2e::Running(
        s.command("prlimit")
            .args(["--core=unlimited", "sleep", "120"])
            .spawn()
            .expect("sleep as nobody"),
    );
    let agent = s
        .command("prlimit")
        .arg("--core=unlimited")
        .arg(tokenkeeper_e2e::bin("tokenkeeper"))
        .args(["agent", "--no-tray"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the agent as nobody");
    let mut agent = tokenkeeper_e2e::Running(agent);
    let mut line = String::new();
    BufReader::new(agent.0.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.contains("serving the vault"),
        "the agent as nobody: {line:?}"
    );
    let (agent_pid, plain_pid) = (agent.0.id(), plain.0.id());
    let nobody = format!("{NOBODY} {NOBODY} {NOBODY} {NOBODY}");
    assert_eq!(uids(agent_pid), nobody, "the agent runs as nobody");
    assert_eq!(uids(plain_pid), nobody, "the plain process runs as nobody");
    let exe = std::fs::read_link(format!("/proc/{agent_pid}/exe")).unwrap();
    assert_eq!(
        exe,
        tokenkeeper_e2e::bin("tokenkeeper"),
        "the pid is the agent's"
    );

    // The look sees a dumpable process as such.
    let (owner, environ, mem) = readable_by_nobody(&s, plain_pid);
    assert_eq!(
        owner, NOBODY,
        "a dumpable process's /proc files are its user's"
    );
    assert!(environ, "nobody reads a dumpable process's environment");
    // Yama (ptrace_scope 1 and up) keeps even a dumpable process's memory from
    // processes that are not its parent; without it, nobody may open it.
    let yama = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .map(|v| v.trim() != "0")
        .unwrap_or(false);
    if !yama {
        assert!(!mem.contains("Permission denied"), "{mem}");
    }
    assert_eq!(core_limit(plain_pid), "unlimited");

    // The agent: not dumpable, no core file.
    let (owner, environ, mem) = readable_by_nobody(&s, agent_pid);
    assert_eq!(
        owner, 0,
        "the agent's /proc files stay nobody's: it is dumpable (PR_SET_DUMPABLE is not 0)"
    );
    assert!(
        !environ,
        "another process of the agent's user read its environment"
    );
    assert!(
        mem.contains("Permission denied"),
        "another process of the agent's user opened its memory: {mem:?}"
    );
    assert_eq!(
        core_limit(agent_pid),
        "0",
        "the agent may write a core file"
    );
    drop(agent);
    drop(plain);
    drop(s);
}

/// Every secret value of a session's team items in its keyring (`team/NAME`: the
/// login's password or AppRole secret id; `team/NAME/session`: the OpenBao token).
fn team_items(s: &Session) -> Vec<String> {
    let service = s.service();
    let mut out = Vec::new();
    for item in s.keyring_items(&service) {
        if !item.starts_with("team/") {
            continue;
        }
        let text = s.keyring_lookup(&service, &item).unwrap_or_default();
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(map)) => {
                out.extend(map.values().filter_map(|v| v.as_str().map(str::to_string)))
            }
            _ => out.push(text.trim().to_string()),
        }
    }
    out.retain(|v| v.len() >= 8);
    out
}

/// A team's secrets: the member's and the reader's login passwords, a server's
/// AppRole secret id, the OpenBao tokens each login keeps in its keyring, and the
/// shared account's password and tokens (which live in the team store): none is in
/// any file, database page or output of the member's, the reader's or the server's
/// vault, and `token` prints the account's token and nothing else. (OpenBao's own
/// storage and audit log are searched by the team tests.)
#[test]
fn a_teams_secrets_appear_nowhere_but_the_keyrings_and_the_team_store() {
    use tokenkeeper_e2e::openbao::{DevServer, MEMBER_POLICY, READER_POLICY, SERVER_POLICY};
    let Some(bao) = DevServer::start("canary: team") else {
        return;
    };
    bao.policy("tokenkeeper-member", MEMBER_POLICY);
    bao.policy("tokenkeeper-reader", READER_POLICY);
    bao.policy("tokenkeeper-server", SERVER_POLICY);
    let member_pw = format!("CANARY-TEAM-MEMBER-{}", std::process::id());
    let reader_pw = format!("CANARY-TEAM-READER-{}", std::process::id());
    bao.userpass_user("cm", &member_pw, &["tokenkeeper-member"]);
    bao.userpass_user("cr", &reader_pw, &["tokenkeeper-reader"]);
    let (role_id, secret_id) = bao.approle("tk-server", &["tokenkeeper-server"], "1h");
    let sb = Sandbox::start(&["--truesight-token-ttl", "120"]);
    let (password, _, url) = canary_user(&sb);
    let mut secrets: BTreeSet<String> = [password.clone(), member_pw.clone(), reader_pw.clone()]
        .into_iter()
        .chain([secret_id.clone()])
        .collect();
    let connect = |s: &Session, how: [&str; 2], secret: &str| {
        let mut args = vec!["team", "connect", "ops", "--address", &bao.addr];
        args.extend(how);
        args.push("--secret-stdin");
        s.cli(&args, Some(secret)).ok()
    };
    // The shared account's secrets, as the team store holds them now.
    let shared_secrets = |s: &Session| -> Vec<String> {
        let id = s.account("ts")["id"].as_str().unwrap().to_string();
        let read = bao.bao_ok(&[
            "kv",
            "get",
            "-format=json",
            "-mount=secret",
            &format!("tokenkeeper/accounts/{id}/secrets"),
        ]);
        let v: serde_json::Value = serde_json::from_str(&read).expect("bao's JSON");
        let data = v["data"]["data"].as_object().expect("the secrets").clone();
        data.into_iter()
            .filter(|(k, _)| !k.starts_with("tokenkeeper_"))
            .filter_map(|(_, v)| v.as_str().map(str::to_string))
            .collect()
    };
    // `token` prints one of the account's tokens: taken out, the rest is searched.
    let token_run = |s: &Session, held: &mut BTreeSet<String>| {
        let mut run = s.cli(&["token", "ts"], None).ok();
        let token = run.stdout.trim().to_string();
        held.extend(shared_secrets(s));
        assert!(held.contains(&token), "a token the account held");
        run.stdout = run.stdout.replace(&token, "");
        run
    };
    let mut outputs = Vec::new();

    // The member shares an account and renews it.
    let m = Session::start();
    m.add_truesight("ts", &url, "canary", &password, &[]).ok();
    let m_db = hold_database(&m);
    outputs.push(connect(&m, ["--userpass", "cm"], &member_pw));
    outputs.push(m.cli(&["team", "add", "ts", "--team", "ops"], None).ok());
    secrets.extend(shared_secrets(&m));
    for args in [
        vec!["renew", "ts"],
        vec!["show", "ts"],
        vec!["show", "ts", "--json"],
        vec!["list", "--json"],
        vec!["team", "list", "--json"],
        vec!["exec", "ts", "--", "true"],
    ] {
        outputs.push(m.cli(&args, None).ok());
        secrets.extend(shared_secrets(&m));
    }
    outputs.push(token_run(&m, &mut secrets));

    // The reader joins, gets the token, and is refused a renewal.
    let r = Session::start();
    outputs.push(connect(&r, ["--userpass", "cr"], &reader_pw));
    let r_db = hold_database(&r);
    outputs.push(r.cli(&["team", "join", "ops"], None).ok());
    outputs.push(token_run(&r, &mut secrets));
    outputs.push(r.cli(&["show", "ts", "--json"], None).ok());
    let refused = r.cli(&["renew", "ts"], None);
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    outputs.push(refused);

    // A server logs in with AppRole, joins and renews.
    let h = Session::start();
    outputs.push(connect(&h, ["--approle", &role_id], &secret_id));
    let h_db = hold_database(&h);
    outputs.push(h.cli(&["team", "join", "ops"], None).ok());
    outputs.push(h.cli(&["renew", "ts"], None).ok());
    secrets.extend(shared_secrets(&h));
    outputs.push(token_run(&h, &mut secrets));

    for s in [&m, &r, &h] {
        let items = team_items(s);
        assert!(!items.is_empty(), "the team login is kept in the keyring");
        secrets.extend(items);
    }
    let secrets: Vec<String> = secrets.into_iter().collect();
    for (s, db) in [(&m, &m_db), (&r, &r_db), (&h, &h_db)] {
        assert_nowhere(s, db, &outputs, &secrets);
    }
}
