//! The encrypted SQLite file: accounts, token metadata, history and renewal leases.
//! Opening never creates over, rekeys or rewrites an existing file it cannot read.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension, Row};
use zeroize::Zeroizing;

use super::schema;
use crate::error::{Error, Result};
use crate::model::{Account, Event, EventKind, Method, Outcome, RenewsWith, TokenMeta, Vendor};
use crate::secret_store::SecretStore;
use crate::team::client::Server;
use crate::team::config::{LoginKind, TeamConfig};

/// A history entry as it is written: what, how it ended, the words.
pub type Entry<'a> = (EventKind, Outcome, &'a str);

/// The keyring item that holds the database key.
pub const KEY_ITEM: &str = "vault-key";
const DB_FILE: &str = "vault.db";
const LOCK_FILE: &str = "vault.lock";

#[derive(Debug)]
pub struct Database {
    conn: Mutex<Connection>,
    path: PathBuf,
}

fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ts(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl Database {
    /// Opens (or creates) the vault database in `dir`, with its key from `store`.
    pub fn open(dir: &Path, store: &dyn SecretStore) -> Result<Self> {
        create_private_dir(dir)?;
        // One opener at a time, so that two first runs never create two keys.
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(|e| {
                Error::vault(format!(
                    "cannot open {}: {e}",
                    dir.join(LOCK_FILE).display()
                ))
            })?;
        lock.lock().map_err(|e| {
            Error::vault(format!(
                "cannot lock {}: {e}",
                dir.join(LOCK_FILE).display()
            ))
        })?;

        let path = dir.join(DB_FILE);
        let exists = path.exists();
        // SQLCipher's first connection in a process sets up its crypto library (a few
        // ms): done on another thread while the keyring looks up the key. A connection
        // in memory touches no file.
        let warm_up = std::thread::Builder::new()
            .name("sqlcipher-init".into())
            .spawn(|| drop(Connection::open_in_memory()));
        let key = store.get(KEY_ITEM);
        if let Ok(warm_up) = warm_up {
            let _ = warm_up.join();
        }
        let key = match key? {
            Some(hex) if is_key(&hex) => hex,
            Some(_) => {
                return Err(Error::vault(format!(
                    "the vault key in {} is not a Tokenkeeper key; the vault at {} was not changed",
                    store.describe(),
                    path.display()
                )))
            }
            None if exists => {
                return Err(Error::vault(format!(
                "the vault at {} exists but its key is not in {}. Restore that keyring (or open \
                     the vault in the session that created it); to start afresh, move the folder \
                     away. Nothing was changed",
                path.display(),
                store.describe()
            )))
            }
            None => {
                let mut raw = Zeroizing::new([0u8; 32]);
                rand::rng().fill_bytes(raw.as_mut());
                let hex = Zeroizing::new(hex::encode(raw.as_ref()));
                store.set(KEY_ITEM, &hex)?;
                hex
            }
        };

        let mut conn = Connection::open(&path).map_err(|e| {
            Error::vault(format!("cannot open the vault at {}: {e}", path.display()))
        })?;
        let key_sql = Zeroizing::new(format!("PRAGMA key = \"x'{}'\";", key.as_str()));
        conn.execute_batch(&key_sql)?;
        let readable: rusqlite::Result<i64> =
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0));
        if let Err(e) = readable {
            return Err(Error::vault(format!(
                "the vault at {} cannot be read with the key in {} ({e}): the file is damaged, or \
                 the key belongs to another vault. It was not changed; restore it from a backup, or \
                 move it away to start afresh",
                path.display(),
                store.describe()
            )));
        }
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )?;
        schema::migrate(&mut conn)?;
        restrict_permissions(&path);
        drop(lock);
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// SQLite's `data_version`: changes when another connection (another process)
    /// commits to the vault.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    pub fn insert_account(
        &self,
        a: &Account,
        meta: Option<&TokenMeta>,
        event: Entry<'_>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO accounts (id, name, vendor, base_url, method, username, tenant, iam_id, client_id, ca_cert_pem, labels, created_at, settings)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                a.id,
                a.name,
                a.vendor.id(),
                a.base_url,
                a.method.id(),
                a.username,
                a.tenant,
                a.iam_id,
                a.client_id,
                a.ca_cert_pem,
                serde_json::to_string(&a.labels).unwrap_or_else(|_| "[]".into()),
                ts(a.created_at),
                serde_json::to_string(&a.settings).unwrap_or_else(|_| "{}".into())
            ],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                Error::usage(format!("an account named '{}' already exists", a.name))
            }
            e => e.into(),
        })?;
        if let Some(meta) = meta {
            put_token(&tx, &a.id, meta, now)?;
        }
        if let Some(team) = &a.team {
            tx.execute(
                "INSERT INTO shared_accounts (account_id, team, version) VALUES (?1, ?2, 0)",
                params![a.id, team],
            )?;
        }
        add_event(&tx, &a.id, now, event)?;
        tx.commit()?;
        Ok(())
    }

    /// Saves a team store's settings (a second `connect` of the same name replaces them).
    pub fn put_team(&self, t: &TeamConfig, now: DateTime<Utc>) -> Result<()> {
        let (login_mount, login_name) = t.login.columns();
        self.conn().execute(
            "INSERT INTO teams (name, address, ca_cert_pem, pin_sha256, mount, prefix, login, login_mount, login_name, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(name) DO UPDATE SET address = excluded.address, ca_cert_pem = excluded.ca_cert_pem,
               pin_sha256 = excluded.pin_sha256, mount = excluded.mount, prefix = excluded.prefix,
               login = excluded.login, login_mount = excluded.login_mount, login_name = excluded.login_name",
            params![
                t.name,
                t.server.address,
                t.server.ca_cert_pem,
                t.server.pin_sha256,
                t.mount,
                t.prefix,
                t.login.id(),
                login_mount,
                login_name,
                ts(now)
            ],
        )?;
        Ok(())
    }

    /// The team stores this vault is connected to, by name.
    pub fn teams(&self) -> Result<Vec<TeamConfig>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT name, address, ca_cert_pem, pin_sha256, mount, prefix, login, login_mount, login_name
             FROM teams ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                TeamConfig {
                    name: r.get(0)?,
                    server: Server {
                        address: r.get(1)?,
                        ca_cert_pem: r.get(2)?,
                        pin_sha256: r.get(3)?,
                    },
                    mount: r.get(4)?,
                    prefix: r.get(5)?,
                    login: LoginKind::Token,
                },
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<String>>(8)?,
            ))
        })?;
        let mut teams = Vec::new();
        for row in rows {
            let (mut team, login, mount, name) = row?;
            team.login = LoginKind::parse(&login, mount, name)?;
            teams.push(team);
        }
        Ok(teams)
    }

    /// The team a shared account is in and the newest version of its secrets this
    /// vault has seen, or `None` for an account of this vault alone.
    pub fn shared_in(&self, id: &str) -> Result<Option<(String, u64)>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT team, version FROM shared_accounts WHERE account_id = ?1")?;
        Ok(stmt
            .query_row([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .optional()?
            .map(|(team, v)| (team, v.max(0) as u64)))
    }

    /// Marks an account of this vault as shared in `team`, its secrets there at `version`.
    pub fn mark_shared(&self, id: &str, team: &str, version: u64) -> Result<()> {
        let version = stored_version(version)?;
        self.conn().execute(
            "INSERT INTO shared_accounts (account_id, team, version) VALUES (?1, ?2, ?3)
             ON CONFLICT(account_id) DO UPDATE SET team = excluded.team, version = excluded.version",
            params![id, team, version],
        )?;
        Ok(())
    }

    /// Records a newer version of a shared account's secrets, read from its team store,
    /// and the facts of the token it holds (no event: nothing happened here). An older
    /// version than one already seen changes nothing. Returns whether it was newer.
    pub fn cache_shared(
        &self,
        id: &str,
        version: u64,
        meta: Option<&TokenMeta>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let version = stored_version(version)?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let newer = tx.execute(
            "UPDATE shared_accounts SET version = ?2 WHERE account_id = ?1 AND version < ?2",
            params![id, version],
        )? > 0;
        if newer {
            if let Some(meta) = meta {
                put_token(&tx, id, meta, now)?;
            }
        }
        tx.commit()?;
        Ok(newer)
    }

    pub fn set_base_url(&self, id: &str, url: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE accounts SET base_url = ?2 WHERE id = ?1",
            params![id, url],
        )?;
        Ok(())
    }

    /// Writes what the edit form may change: address, labels and the vendor's fields.
    /// Only the settings named in `edited` are taken from `a`; the others (a pinned
    /// certificate that `set_trust` changed meanwhile) are kept as stored.
    pub fn update_account(
        &self,
        a: &Account,
        edited: &[&str],
        event: Entry<'_>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let stored: String = tx.query_row(
            "SELECT settings FROM accounts WHERE id = ?1",
            [&a.id],
            |r| r.get(0),
        )?;
        let mut settings: BTreeMap<String, String> =
            serde_json::from_str(&stored).unwrap_or_default();
        for key in edited {
            match a.settings.get(*key) {
                Some(v) => settings.insert(key.to_string(), v.clone()),
                None => settings.remove(*key),
            };
        }
        tx.execute(
            "UPDATE accounts SET base_url = ?2, username = ?3, tenant = ?4, iam_id = ?5, client_id = ?6, labels = ?7, settings = ?8 WHERE id = ?1",
            params![
                a.id,
                a.base_url,
                a.username,
                a.tenant,
                a.iam_id,
                a.client_id,
                serde_json::to_string(&a.labels).unwrap_or_else(|_| "[]".into()),
                serde_json::to_string(&settings).unwrap_or_else(|_| "{}".into())
            ],
        )?;
        add_event(&tx, &a.id, now, event)?;
        tx.commit()?;
        Ok(())
    }

    pub fn preference(&self, key: &str) -> Result<Option<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT value FROM preferences WHERE key = ?1")?;
        Ok(stmt.query_row([key], |r| r.get(0)).optional()?)
    }

    pub fn set_preferences(&self, values: &[(&str, String)]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (key, value) in values {
            tx.execute(
                "INSERT INTO preferences (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn set_settings(&self, id: &str, settings: &BTreeMap<String, String>) -> Result<()> {
        self.conn().execute(
            "UPDATE accounts SET settings = ?2 WHERE id = ?1",
            params![
                id,
                serde_json::to_string(settings).unwrap_or_else(|_| "{}".into())
            ],
        )?;
        Ok(())
    }

    /// Replaces an account's TLS trust: its own CA, and its settings (where the pin is).
    pub fn set_trust(
        &self,
        id: &str,
        ca_cert_pem: Option<&str>,
        settings: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE accounts SET ca_cert_pem = ?2, settings = ?3 WHERE id = ?1",
            params![
                id,
                ca_cert_pem,
                serde_json::to_string(settings).unwrap_or_else(|_| "{}".into())
            ],
        )?;
        Ok(())
    }

    pub fn account_by_name(&self, name: &str) -> Result<Option<(Account, Option<TokenMeta>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!("{ACCOUNT_SELECT} WHERE a.name = ?1"))?;
        Ok(stmt.query_row([name], read_account_row).optional()?)
    }

    pub fn accounts(&self) -> Result<Vec<(Account, Option<TokenMeta>)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!("{ACCOUNT_SELECT} ORDER BY a.name"))?;
        let rows = stmt.query_map([], read_account_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn token_meta(&self, id: &str) -> Result<Option<TokenMeta>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT issued_at, expires_at, renews_with, human_deadline, needs_human, last_error, vendor_ref FROM tokens WHERE account_id = ?1",
        )?;
        Ok(stmt
            .query_row([id], |r| read_token(r, 0))
            .optional()?
            .flatten())
    }

    /// Records a new token and its event in one transaction.
    pub fn put_token_meta(
        &self,
        id: &str,
        meta: &TokenMeta,
        event: Entry<'_>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        put_token(&tx, id, meta, now)?;
        add_event(&tx, id, now, event)?;
        tx.commit()?;
        Ok(())
    }

    /// Records a failed renewal: the token stays; `needs_human` when only a person can fix it.
    pub fn record_failure(
        &self,
        id: &str,
        needs_human: bool,
        message: &str,
        event: (EventKind, Outcome),
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE tokens SET needs_human = needs_human OR ?2, last_error = ?3, updated_at = ?4 WHERE account_id = ?1",
            params![id, needs_human, message, ts(now)],
        )?;
        add_event(&tx, id, now, (event.0, event.1, message))?;
        tx.commit()?;
        Ok(())
    }

    pub fn record_event(&self, id: &str, event: Entry<'_>, now: DateTime<Utc>) -> Result<()> {
        add_event(&self.conn(), id, now, event)
    }

    /// The alert thresholds already raised for an account's deadline.
    pub fn alerts_fired(&self, id: &str, deadline: DateTime<Utc>) -> Result<Vec<i64>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT threshold_s FROM alerts WHERE account_id = ?1 AND deadline = ?2",
        )?;
        let rows = stmt.query_map(params![id, ts(deadline)], |r| r.get(0))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Logs alerts as raised, with one history event for the most urgent.
    pub fn record_alerts(
        &self,
        id: &str,
        deadline: DateTime<Utc>,
        thresholds: &[i64],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for t in thresholds {
            tx.execute(
                "INSERT OR IGNORE INTO alerts (account_id, deadline, threshold_s, fired_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, ts(deadline), t, ts(now)],
            )?;
        }
        let detail = match thresholds.iter().min() {
            Some(t) if *t < 0 => "a sign-in is needed".to_string(),
            Some(0) => "the deadline passed".to_string(),
            Some(t) => format!(
                "{} before the deadline",
                crate::engine::human_duration(chrono::Duration::seconds(*t))
            ),
            None => String::new(),
        };
        add_event(&tx, id, now, (EventKind::Alert, Outcome::Raised, &detail))?;
        tx.commit()?;
        Ok(())
    }

    pub fn events(&self, id: &str, limit: usize) -> Result<Vec<Event>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT at, kind, outcome, detail FROM events WHERE account_id = ?1 ORDER BY at DESC, id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![id, limit as i64], |r| {
            let kind: String = r.get(1)?;
            let outcome: String = r.get(2)?;
            Ok(EventKind::parse(&kind)
                .zip(Outcome::parse(&outcome))
                .map(|(kind, outcome)| Event {
                    at_ms: r.get(0).unwrap_or_default(),
                    kind,
                    outcome,
                    detail: r.get(3).unwrap_or_default(),
                }))
        })?;
        // An entry a newer Tokenkeeper wrote, of a kind this one does not know, is
        // left out of the listing (and kept in the file).
        Ok(rows
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect())
    }

    pub fn delete_account(&self, id: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM tokens WHERE account_id = ?1", [id])?;
        tx.execute("DELETE FROM events WHERE account_id = ?1", [id])?;
        tx.execute("DELETE FROM leases WHERE account_id = ?1", [id])?;
        tx.execute("DELETE FROM accounts WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    /// Takes the renewal lease on an account unless another holder has a live one.
    /// The lease lives in the database, so it holds across every process.
    pub fn try_lease(
        &self,
        id: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current: Option<(String, i64)> = tx
            .query_row(
                "SELECT holder, until FROM leases WHERE account_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let free = match current {
            None => true,
            Some((h, u)) => h == holder || u <= ts(now) || holder_died(&h),
        };
        if free {
            tx.execute(
                "INSERT INTO leases (account_id, holder, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT(account_id) DO UPDATE SET holder = excluded.holder, until = excluded.until",
                params![id, holder, ts(until)],
            )?;
        }
        tx.commit()?;
        Ok(free)
    }

    /// Extends `holder`'s lease to `until` if it still holds it: false when the lease
    /// lapsed and another process took it (its renewal is then the newer one).
    pub fn extend_lease(&self, id: &str, holder: &str, until: DateTime<Utc>) -> Result<bool> {
        let changed = self.conn().execute(
            "UPDATE leases SET until = ?3 WHERE account_id = ?1 AND holder = ?2",
            params![id, holder, ts(until)],
        )?;
        Ok(changed == 1)
    }

    pub fn release_lease(&self, id: &str, holder: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM leases WHERE account_id = ?1 AND holder = ?2",
            params![id, holder],
        )?;
        Ok(())
    }

    /// `PRAGMA integrity_check`'s verdict: "ok" for a sound file.
    pub fn integrity_check(&self) -> Result<String> {
        Ok(self
            .conn()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

const ACCOUNT_SELECT: &str =
    "SELECT a.id, a.name, a.vendor, a.base_url, a.method, a.username, a.tenant, a.iam_id,
        a.client_id, a.ca_cert_pem, a.labels, a.created_at, a.settings,
        t.issued_at, t.expires_at, t.renews_with, t.human_deadline, t.needs_human, t.last_error,
        t.vendor_ref, s.team
    FROM accounts a LEFT JOIN tokens t ON t.account_id = a.id
        LEFT JOIN shared_accounts s ON s.account_id = a.id";

fn read_account_row(r: &Row<'_>) -> rusqlite::Result<(Account, Option<TokenMeta>)> {
    let vendor: String = r.get(2)?;
    let method: String = r.get(4)?;
    let labels: String = r.get(10)?;
    let bad = |what: &str, v: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown {what} '{v}'").into(),
        )
    };
    let account = Account {
        id: r.get(0)?,
        name: r.get(1)?,
        vendor: Vendor::parse(&vendor).map_err(|_| bad("vendor", &vendor))?,
        base_url: r.get(3)?,
        method: Method::parse(&method).map_err(|_| bad("method", &method))?,
        username: r.get(5)?,
        tenant: r.get(6)?,
        iam_id: r.get(7)?,
        client_id: r.get(8)?,
        ca_cert_pem: r.get(9)?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        created_at: from_ts(r.get(11)?),
        settings: serde_json::from_str(&r.get::<_, String>(12)?).unwrap_or_default(),
        team: r.get(20)?,
    };
    Ok((account, read_token(r, 13)?))
}

fn read_token(r: &Row<'_>, at: usize) -> rusqlite::Result<Option<TokenMeta>> {
    let issued: Option<i64> = r.get(at)?;
    let Some(issued) = issued else {
        return Ok(None);
    };
    let renews: String = r.get(at + 2)?;
    Ok(Some(TokenMeta {
        issued_at: from_ts(issued),
        expires_at: r.get::<_, Option<i64>>(at + 1)?.map(from_ts),
        renews_with: RenewsWith::parse(&renews),
        human_deadline: r.get::<_, Option<i64>>(at + 3)?.map(from_ts),
        needs_human: r.get(at + 4)?,
        last_error: r.get(at + 5)?,
        vendor_ref: r.get(at + 6)?,
    }))
}

fn put_token(conn: &Connection, id: &str, m: &TokenMeta, now: DateTime<Utc>) -> Result<()> {
    conn.execute(
        "INSERT INTO tokens (account_id, issued_at, expires_at, renews_with, human_deadline, needs_human, last_error, updated_at, vendor_ref)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT(account_id) DO UPDATE SET issued_at = excluded.issued_at, expires_at = excluded.expires_at,
           renews_with = excluded.renews_with, human_deadline = excluded.human_deadline,
           needs_human = excluded.needs_human, last_error = excluded.last_error, updated_at = excluded.updated_at,
           vendor_ref = excluded.vendor_ref",
        params![
            id,
            ts(m.issued_at),
            m.expires_at.map(ts),
            m.renews_with.id(),
            m.human_deadline.map(ts),
            m.needs_human,
            m.last_error,
            ts(now),
            m.vendor_ref
        ],
    )?;
    Ok(())
}

fn add_event(
    conn: &Connection,
    id: &str,
    now: DateTime<Utc>,
    (kind, outcome, detail): Entry<'_>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO events (account_id, at, kind, outcome, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, ts(now), kind.id(), outcome.id(), detail],
    )?;
    Ok(())
}

fn is_key(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn create_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| {
        Error::vault(format!(
            "cannot create the vault folder {}: {e}",
            dir.display()
        ))
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// A lease holder's name, "pid/uuid/pid-namespace": a lease left by a process that
/// died (kill -9) is free at once, judged only within the same PID namespace.
pub(super) fn lease_holder() -> String {
    format!(
        "{}/{}/{}",
        std::process::id(),
        uuid::Uuid::new_v4(),
        pid_namespace()
    )
}

/// This process's PID namespace ("pid:[4026531836]"), empty where there is none.
fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether a lease's holder ("pid/uuid/pid-namespace") was a process of this
/// machine's PID namespace that is gone. Elsewhere than Linux, for a holder in another
/// namespace (a container sharing the home folder) or an unknown one, the lease's
/// expiry decides.
fn holder_died(holder: &str) -> bool {
    let mut parts = holder.splitn(3, '/');
    let Some(pid) = parts.next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    let namespace = parts.nth(1).unwrap_or_default();
    if namespace != pid_namespace() {
        return false;
    }
    if pid == std::process::id() {
        return false;
    }
    let proc = std::path::Path::new("/proc");
    proc.join("self").exists() && !proc.join(pid.to_string()).exists()
}

/// A team store's KV version as SQLite keeps it (an INTEGER): one past `i64::MAX` is
/// no version OpenBao makes, and is refused rather than wrapped negative.
fn stored_version(version: u64) -> Result<i64> {
    i64::try_from(version).map_err(|_| {
        crate::error::Error::vendor(format!(
            "the team store gave version {version} for an account's secrets, which no \
             KV engine counts to: check the team store"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_store::MemoryKeyring;

    fn account(name: &str) -> Account {
        Account {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.into(),
            vendor: Vendor::Truesight,
            base_url: "https://ts.example".into(),
            method: Method::Password,
            username: Some("u".into()),
            tenant: Some("*".into()),
            iam_id: None,
            client_id: None,
            ca_cert_pem: None,
            labels: vec!["prod".into()],
            created_at: Utc::now(),
            settings: Default::default(),
            team: None,
        }
    }

    #[test]
    fn creates_then_reopens_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let ks = MemoryKeyring::default();
        let db = Database::open(dir.path(), &ks).unwrap();
        db.insert_account(
            &account("a"),
            None,
            (EventKind::Added, Outcome::Ok, ""),
            Utc::now(),
        )
        .unwrap();
        drop(db);
        let db = Database::open(dir.path(), &ks).unwrap();
        assert_eq!(db.accounts().unwrap().len(), 1);
        assert_eq!(db.integrity_check().unwrap(), "ok");
        assert_eq!(ks.writes(), 1, "the key is written once, at creation");
    }

    #[test]
    fn wrong_key_is_refused_and_the_file_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let ks = MemoryKeyring::default();
        let db = Database::open(dir.path(), &ks).unwrap();
        db.insert_account(
            &account("a"),
            None,
            (EventKind::Added, Outcome::Ok, ""),
            Utc::now(),
        )
        .unwrap();
        drop(db);
        let before = fs::read(dir.path().join(DB_FILE)).unwrap();
        let other = MemoryKeyring::default();
        other.set(KEY_ITEM, &"ab".repeat(32)).unwrap();
        let e = Database::open(dir.path(), &other).unwrap_err();
        assert!(e.message().contains("cannot be read"), "{e}");
        assert_eq!(fs::read(dir.path().join(DB_FILE)).unwrap(), before);
    }

    #[test]
    fn missing_key_for_an_existing_vault_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Database::open(dir.path(), &MemoryKeyring::default()).unwrap();
        let e = Database::open(dir.path(), &MemoryKeyring::default()).unwrap_err();
        assert!(e.message().contains("its key is not in"), "{e}");
    }

    #[test]
    fn a_damaged_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let ks = MemoryKeyring::default();
        drop(Database::open(dir.path(), &ks).unwrap());
        let garbage = vec![0x5a; 8192];
        fs::write(dir.path().join(DB_FILE), &garbage).unwrap();
        let _ = fs::remove_file(dir.path().join("vault.db-wal"));
        let e = Database::open(dir.path(), &ks).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Vault);
        assert_eq!(fs::read(dir.path().join(DB_FILE)).unwrap(), garbage);
    }

    #[test]
    fn locked_keyring_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ks = MemoryKeyring::default();
        ks.set_locked(true);
        let e = Database::open(dir.path(), &ks).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Keyring);
        assert!(!dir.path().join(DB_FILE).exists());
    }

    #[test]
    fn lease_is_exclusive_until_released_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path(), &MemoryKeyring::default()).unwrap();
        let now = Utc::now();
        let later = now + chrono::Duration::seconds(60);
        assert!(db.try_lease("x", "one", later, now).unwrap());
        assert!(!db.try_lease("x", "two", later, now).unwrap());
        assert!(
            db.try_lease("x", "two", later, later).unwrap(),
            "an expired lease is free"
        );
        db.release_lease("x", "two").unwrap();
        assert!(db.try_lease("x", "one", later, now).unwrap());
    }

    #[test]
    fn only_the_holder_extends_a_lease_and_not_once_it_was_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path(), &MemoryKeyring::default()).unwrap();
        let now = Utc::now();
        let soon = now + chrono::Duration::seconds(60);
        let later = now + chrono::Duration::seconds(120);
        assert!(db.try_lease("x", "one", soon, now).unwrap());
        assert!(db.extend_lease("x", "one", later).unwrap());
        assert!(!db.extend_lease("x", "two", later).unwrap());
        assert!(
            !db.try_lease("x", "two", later, soon).unwrap(),
            "extended: still held after its first expiry"
        );
        assert!(db.try_lease("x", "two", later, later).unwrap());
        assert!(
            !db.extend_lease("x", "one", later).unwrap(),
            "a holder whose lease was taken over is told so"
        );
    }

    #[test]
    fn duplicate_names_are_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path(), &MemoryKeyring::default()).unwrap();
        db.insert_account(
            &account("a"),
            None,
            (EventKind::Added, Outcome::Ok, ""),
            Utc::now(),
        )
        .unwrap();
        let e = db
            .insert_account(
                &account("a"),
                None,
                (EventKind::Added, Outcome::Ok, ""),
                Utc::now(),
            )
            .unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Usage);
    }
}
