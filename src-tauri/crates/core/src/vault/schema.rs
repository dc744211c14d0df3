//! The vault's schema as an ordered list of migrations, applied at open. A
//! migration is never edited once released: add a new one.

use rusqlite::Connection;

use crate::error::{Error, Result};

const MIGRATIONS: &[&str] = &[
    // 1: accounts, the token in use (metadata only), history, renewal leases.
    r#"
    CREATE TABLE accounts (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        vendor      TEXT NOT NULL,
        base_url    TEXT NOT NULL,
        method      TEXT NOT NULL,
        username    TEXT,
        tenant      TEXT,
        iam_id      TEXT,
        client_id   TEXT,
        ca_cert_pem TEXT,
        labels      TEXT NOT NULL DEFAULT '[]',
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE tokens (
        account_id     TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
        issued_at      INTEGER NOT NULL,
        expires_at     INTEGER,
        renews_with    TEXT NOT NULL,
        human_deadline INTEGER,
        needs_human    INTEGER NOT NULL DEFAULT 0,
        last_error     TEXT,
        updated_at     INTEGER NOT NULL
    );
    CREATE TABLE events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id TEXT NOT NULL,
        at         INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        outcome    TEXT NOT NULL,
        detail     TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX events_by_account ON events(account_id, at);
    CREATE TABLE leases (
        account_id TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        until      INTEGER NOT NULL
    );
    "#,
    // 2: vendor settings per account; the vendor's handle on the token in use.
    r#"
    ALTER TABLE accounts ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE tokens ADD COLUMN vendor_ref TEXT;
    "#,
    // 3: the alerts raised, so that each is raised once per deadline across restarts.
    r#"
    CREATE TABLE alerts (
        account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        deadline    INTEGER NOT NULL,
        threshold_s INTEGER NOT NULL,
        fired_at    INTEGER NOT NULL,
        PRIMARY KEY (account_id, deadline, threshold_s)
    );
    "#,
    // 4: the admin's preferences (alert thresholds, clipboard timeout), shared by the
    // window and every process that watches the vault.
    r#"
    CREATE TABLE preferences (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
    // 5: team stores (OpenBao/Vault) this vault is connected to, and which accounts are
    // shared in one (their secrets and lease are there; `version` is the newest version
    // of the account's secrets this vault has seen, so it never believes an older one).
    r#"
    CREATE TABLE teams (
        name        TEXT PRIMARY KEY,
        address     TEXT NOT NULL,
        ca_cert_pem TEXT,
        pin_sha256  TEXT,
        mount       TEXT NOT NULL,
        prefix      TEXT NOT NULL,
        login       TEXT NOT NULL,
        login_mount TEXT,
        login_name  TEXT,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE shared_accounts (
        account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
        team       TEXT NOT NULL,
        version    INTEGER NOT NULL DEFAULT 0
    );
    "#,
];

/// Brings the schema up to date; refuses a vault written by a newer Tokenkeeper.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = MIGRATIONS.len() as i64;
    if current > latest {
        return Err(Error::vault(format!(
            "this vault was written by a newer Tokenkeeper (schema {current}, this one knows {latest}): \
             update Tokenkeeper; the vault was not changed"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_is_idempotent() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate(&mut c).unwrap();
        migrate(&mut c).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        let e = migrate(&mut c).unwrap_err();
        assert!(e.message().contains("newer Tokenkeeper"));
    }
}
