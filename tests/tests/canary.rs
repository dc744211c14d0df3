//! Plants known canary secrets, uses them through every CLI command, and searches
//! every file of the session (the vault folder, the SQLite file and its WAL, HOME,
//! the XDG folders), the decrypted database's every row, and every command's output
//! for them. Only `tokenkeeper token` may print the token, and nothing the password.

use serde_json::json;
use tokenkeeper_e2e::{files_under, Sandbox, Session};

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
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
    // Hold the database open, as the desktop app does, so that what the CLI writes
    // next stays in the WAL (SQLite folds it into the file when the last connection
    // closes) and the WAL is searched as it is while the app runs.
    let key = s
        .keyring_lookup(&s.service(), "vault-key")
        .expect("vault key in the keyring");
    let conn = rusqlite::Connection::open(s.data_dir.join("vault.db")).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", key.trim()))
        .unwrap();
    let _: i64 = conn
        .query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
        .unwrap();
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

    let secrets: Vec<&str> = [password.as_str(), wrong.as_str()]
        .into_iter()
        .chain(tokens.iter().map(String::as_str))
        .collect();
    for out in &outputs {
        for secret in &secrets {
            assert!(
                !out.stdout.contains(secret) && !out.stderr.contains(secret),
                "a secret leaked into CLI output: {out:?}"
            );
        }
    }

    // Every file of the session: vault.db, its WAL and SHM, the lock, HOME, XDG.
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
        for secret in &secrets {
            assert!(
                !contains(&bytes, secret),
                "a secret is in {}",
                file.display()
            );
        }
    }

    // The database decrypted with its key: every value of every row of every table.
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
                for secret in &secrets {
                    assert!(
                        !text.contains(secret),
                        "a secret is in table {table}: {text}"
                    );
                }
            }
        }
    }
    assert!(cells > 20, "the database was really read ({cells} cells)");

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
