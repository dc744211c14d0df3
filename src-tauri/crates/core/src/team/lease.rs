//! One renewal per rotation across machines: the single-flight lease of a shared
//! account, kept in the team store itself on KV version 2 check-and-set.
//!
//! The lease is one KV entry beside the account's secrets: `holder`, `fence`,
//! `expires_at_ms` and `secret_version`. Taking it is a write checked against the
//! version just read, refused while another holder's lease has not expired, and it
//! raises the fence by one; a holder that died leaves a lease that expires. Every
//! write of the account's secrets carries the writer's fence and is itself a
//! check-and-set on the version read under the lease, and the lease is checked (and
//! extended, again by check-and-set) just before: a late writer, whose lease lapsed
//! and was taken over, can never overwrite a newer refresh token. The lease records
//! the version of the secrets last written, so the next holder never acts on an
//! older one that a standby may still serve right after a failover. Each version of
//! the secrets is copied, token in use only, into the account's token entry, the one
//! entry a reader's policy needs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::failure::{Failure, TeamError, TeamResult};
use super::kv::{Entry, Fields, Kv};
use super::shared::is_bookkeeping;
use crate::clock::Clock;
use crate::secret::{Secret, SecretKind};

/// How long a lease holds unless extended; a holder extends it while it works.
pub const LEASE_TTL: Duration = Duration::seconds(90);

/// The longest one version of a lease is honoured from the moment this process
/// first read it, whatever its own `expires_at_ms` says (or three lease lifetimes,
/// when that is longer): a live holder extends it (a new version) every 15 s, and a
/// far expiry (a clock years ahead, an entry Tokenkeeper did not write) would
/// otherwise block the account's renewals for good. Measured on this machine's clock
/// alone, so a server or teammate whose clock is off cannot make a live lease look
/// lapsed; the fence keeps a holder overtaken this way from storing anything. Only a
/// long-running process (the agent, `watch`, the window) lives to see it lapse: a
/// one-shot CLI starts counting afresh.
pub const LEASE_HONOURED: Duration = Duration::minutes(10);

pub use super::shared::FENCE_FIELD;

/// The field of an account's token entry that holds the version of the secrets it
/// was copied from.
pub const SECRETS_VERSION_FIELD: &str = "tokenkeeper_secrets_version";

/// The key of an account's lease, beside its secrets.
const LEASE_KEY: &str = "lease";
/// The key of an account's secrets: every secret it renews with (refresh token,
/// password, API key) and the token in use.
const SECRETS_KEY: &str = "secrets";
/// The key of an account's token for readers: the token in use and its facts, copied
/// from each version of the secrets as it is written, so that a policy can give a
/// teammate the tokens without the secrets that make new ones.
const TOKEN_KEY: &str = "token";
/// The secret the token entry copies: the one Tokenkeeper hands out.
const HANDED_OUT: SecretKind = SecretKind::AccessToken;

/// A lease this process holds on one shared account.
#[derive(Debug)]
pub struct Lease {
    account: String,
    holder: String,
    fence: u64,
    /// The version of the lease entry this holder last wrote.
    doc_version: AtomicU64,
    /// The newest version of the secrets known under this lease.
    secret_version: AtomicU64,
}

impl Lease {
    pub fn account(&self) -> &str {
        &self.account
    }
    pub fn holder(&self) -> &str {
        &self.holder
    }
    /// This lease's fence: larger than every earlier lease's on the account.
    pub fn fence(&self) -> u64 {
        self.fence
    }
    /// The newest version of the account's secrets this holder knows exists.
    pub fn secret_version(&self) -> u64 {
        self.secret_version.load(Ordering::SeqCst)
    }

    /// Records a version of the secrets known to exist (seen before the lease was
    /// taken), so no read under the lease believes an older one.
    pub fn note_secret_version(&self, version: u64) {
        self.secret_version.fetch_max(version, Ordering::SeqCst);
    }
}

/// The lease entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct LeaseDoc {
    holder: String,
    fence: u64,
    expires_at_ms: i64,
    secret_version: u64,
}

impl LeaseDoc {
    fn fields(&self) -> Fields {
        Fields::default()
            .with("holder", Secret::new(self.holder.clone()))
            .with("fence", Secret::new(self.fence.to_string()))
            .with("expires_at_ms", Secret::new(self.expires_at_ms.to_string()))
            .with(
                "secret_version",
                Secret::new(self.secret_version.to_string()),
            )
    }

    fn parse(fields: &Fields) -> Option<Self> {
        Some(Self {
            holder: fields.text("holder")?.to_string(),
            fence: fields.text("fence")?.parse().ok()?,
            expires_at_ms: fields.text("expires_at_ms")?.parse().ok()?,
            secret_version: fields
                .text("secret_version")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        })
    }
}

/// The leases and fenced writes of the shared accounts under one team store prefix,
/// for one holder (this process).
#[derive(Debug, Clone)]
pub struct TeamLeases {
    kv: Kv,
    clock: Arc<dyn Clock>,
    holder: String,
    ttl: Duration,
    /// By account: the lease version last read, and when this process first read it
    /// (ms on `clock`).
    first_read: Arc<Mutex<HashMap<String, (u64, i64)>>>,
}

impl TeamLeases {
    /// Leases taken as `holder` (unique per process: see [`holder_name`]).
    pub fn new(kv: Kv, clock: Arc<dyn Clock>, holder: impl Into<String>) -> Self {
        Self {
            kv,
            clock,
            holder: holder.into(),
            ttl: LEASE_TTL,
            first_read: Arc::default(),
        }
    }

    /// The same with another lease lifetime (tests; a team with slow vendors).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Until when this process honours version `version` of `account`'s lease, which
    /// says it expires at `expires_at_ms`: [`LEASE_HONOURED`] (or three lifetimes)
    /// after it first read it.
    fn honoured_until(&self, account: &str, version: u64, expires_at_ms: i64) -> i64 {
        let now = self.now_ms();
        let mut first_read = self.first_read.lock().unwrap_or_else(|p| p.into_inner());
        let seen = first_read
            .entry(account.to_string())
            .or_insert((version, now));
        if seen.0 != version {
            *seen = (version, now);
        }
        let honoured = LEASE_HONOURED.max(self.ttl * 3).num_milliseconds();
        expires_at_ms.min(seen.1.saturating_add(honoured))
    }

    pub fn kv(&self) -> &Kv {
        &self.kv
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn key(account: &str, part: &str) -> String {
        format!("{account}/{part}")
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    async fn read_doc(&self, account: &str) -> TeamResult<(u64, LeaseDoc)> {
        self.read_doc_at_least(account, 0).await
    }

    /// The lease entry, never older than `min_version` (one known to exist: a
    /// standby right after a failover may still serve an older one).
    async fn read_doc_at_least(
        &self,
        account: &str,
        min_version: u64,
    ) -> TeamResult<(u64, LeaseDoc)> {
        let key = Self::key(account, LEASE_KEY);
        match self.kv.read_at_least(&key, min_version).await? {
            None => Ok((0, LeaseDoc::default())),
            Some(Entry { version, data, .. }) => {
                let mut doc = LeaseDoc::parse(&data).ok_or_else(|| {
                    TeamError::new(
                        Failure::Protocol,
                        format!(
                            "the lease at {} is not in Tokenkeeper's format: remove it (bao kv \
                             metadata delete) only if no Tokenkeeper is renewing the account",
                            self.kv.describe(&key)
                        ),
                    )
                })?;
                doc.expires_at_ms = self.honoured_until(account, version, doc.expires_at_ms);
                Ok((version, doc))
            }
        }
    }

    /// Takes the account's lease now, or says who holds it: refused while another
    /// holder's lease has not expired; an expired one is taken over.
    pub async fn try_take(&self, account: &str) -> TeamResult<Lease> {
        let (version, doc) = self.read_doc(account).await?;
        let now = self.now_ms();
        if !doc.holder.is_empty() && doc.holder != self.holder && doc.expires_at_ms > now {
            return Err(held(account, &doc.holder, doc.expires_at_ms));
        }
        // A fence at its limit (an entry Tokenkeeper did not write) is refused, not
        // wrapped: fences only grow.
        let fence = doc.fence.checked_add(1).ok_or_else(|| {
            TeamError::new(
                Failure::Protocol,
                format!(
                    "the lease at {} holds a fence Tokenkeeper cannot raise: remove it (bao kv \
                     metadata delete) only if no Tokenkeeper is renewing the account",
                    self.kv.describe(&Self::key(account, LEASE_KEY))
                ),
            )
        })?;
        let mine = LeaseDoc {
            holder: self.holder.clone(),
            fence,
            expires_at_ms: now + self.ttl.num_milliseconds(),
            secret_version: doc.secret_version,
        };
        let key = Self::key(account, LEASE_KEY);
        match self.kv.write(&key, &mine.fields(), version).await {
            Ok(written) => Ok(Lease {
                account: account.to_string(),
                holder: self.holder.clone(),
                fence: mine.fence,
                doc_version: AtomicU64::new(written),
                secret_version: AtomicU64::new(doc.secret_version),
            }),
            Err(e) if e.failure() == Failure::CasConflict => Err(TeamError::new(
                Failure::LeaseHeld,
                format!(
                    "another Tokenkeeper took the lease of shared account '{account}' at the \
                     same moment; it is renewing the account, so wait for its token"
                ),
            )),
            Err(e) => Err(e),
        }
    }

    /// Takes the account's lease, waiting (with backoff) while another holder has it
    /// or the team store is briefly unavailable, for at most `patience`.
    pub async fn take(&self, account: &str, patience: StdDuration) -> TeamResult<Lease> {
        let give_up = tokio::time::Instant::now() + patience;
        let mut wait = StdDuration::from_millis(50);
        loop {
            match self.try_take(account).await {
                Ok(lease) => return Ok(lease),
                Err(e)
                    if (e.failure() == Failure::LeaseHeld || e.failure().is_transient())
                        && tokio::time::Instant::now() + wait < give_up =>
                {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(StdDuration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Checks that `lease` still holds (no one took it over) and extends it by the
    /// lease lifetime, by check-and-set on the lease entry this holder last wrote.
    pub async fn extend(&self, lease: &Lease) -> TeamResult<()> {
        let key = Self::key(&lease.account, LEASE_KEY);
        for attempt in 0..3 {
            let doc = LeaseDoc {
                holder: lease.holder.clone(),
                fence: lease.fence,
                expires_at_ms: self.now_ms() + self.ttl.num_milliseconds(),
                secret_version: lease.secret_version(),
            };
            let cas = lease.doc_version.load(Ordering::SeqCst);
            match self.kv.write(&key, &doc.fields(), cas).await {
                Ok(written) => {
                    lease.doc_version.store(written, Ordering::SeqCst);
                    return Ok(());
                }
                Err(e) if e.failure() == Failure::CasConflict && attempt < 2 => {
                    // An earlier attempt whose answer was lost (a leader that died
                    // after committing) may have landed: the lease is still ours if
                    // the entry names this holder and this fence.
                    let (version, now) = self
                        .read_doc_at_least(&lease.account, cas.saturating_add(1))
                        .await?;
                    if now.holder != lease.holder || now.fence != lease.fence {
                        return Err(lost(&lease.account));
                    }
                    lease.doc_version.store(version, Ordering::SeqCst);
                }
                Err(e) if e.failure() == Failure::CasConflict => return Err(lost(&lease.account)),
                Err(e) => return Err(e),
            }
        }
        Err(lost(&lease.account))
    }

    /// Reads the account's secrets under `lease`: never a version older than the
    /// newest the lease knows of, and never one written under a later lease.
    pub async fn read_secrets(&self, lease: &Lease) -> TeamResult<Option<Entry>> {
        let key = Self::key(&lease.account, SECRETS_KEY);
        let entry = self.kv.read_at_least(&key, lease.secret_version()).await?;
        if let Some(e) = &entry {
            let fence = stored_fence(e);
            if fence > lease.fence {
                return Err(lost(&lease.account));
            }
            lease.secret_version.fetch_max(e.version, Ordering::SeqCst);
        }
        Ok(entry)
    }

    /// Writes the account's secrets under `lease`, over exactly `read_version` (the
    /// version read under this lease; 0 for the first): the lease is checked and
    /// extended first, the entry carries the lease's fence, and the write is a
    /// check-and-set, so a holder whose lease was taken over writes nothing.
    pub async fn write_secrets(
        &self,
        lease: &Lease,
        data: &Fields,
        read_version: u64,
    ) -> TeamResult<u64> {
        self.extend(lease).await?;
        let mut data = data.clone();
        data.set(FENCE_FIELD, Secret::new(lease.fence.to_string()));
        let key = Self::key(&lease.account, SECRETS_KEY);
        let written = match self.kv.write(&key, &data, read_version).await {
            Ok(v) => v,
            Err(e) if e.failure() == Failure::CasConflict => {
                // An earlier attempt whose answer was lost may have landed: a version
                // written under this lease's fence is this holder's own.
                if let Some(current) = self
                    .kv
                    .read_at_least(&key, read_version.saturating_add(1))
                    .await?
                {
                    if stored_fence(&current) == lease.fence && current.version > read_version {
                        lease
                            .secret_version
                            .fetch_max(current.version, Ordering::SeqCst);
                        self.publish_token(lease, &current.data, current.version)
                            .await?;
                        self.extend(lease).await?;
                        return Ok(current.version);
                    }
                }
                return Err(TeamError::new(
                    Failure::LeaseLost,
                    format!(
                        "newer secrets of shared account '{}' were stored by another \
                         Tokenkeeper since this one read them, so this one stored nothing \
                         (a newer refresh token is never overwritten); try again",
                        lease.account
                    ),
                ));
            }
            Err(e) => return Err(e),
        };
        lease.secret_version.fetch_max(written, Ordering::SeqCst);
        // The readers' copy first, so that a lease naming this version finds it there.
        self.publish_token(lease, &data, written).await?;
        // Recorded in the lease at once, so the next holder reads at least this one.
        self.extend(lease).await?;
        Ok(written)
    }

    /// Copies the token in use out of version `version` of the account's secrets
    /// (`secrets`, written under `lease`) into its token entry, by check-and-set: a
    /// copy made under a later lease, or of a later version under this one, is left
    /// alone, so a late writer never hands readers an older token (and a copy whose
    /// version outruns secrets written again from version 1 is replaced by the next
    /// lease's). A policy that does not let this login write the
    /// token entry leaves the copy behind (its readers are told so when they read
    /// it); the secrets are stored all the same.
    pub async fn publish_token(
        &self,
        lease: &Lease,
        secrets: &Fields,
        version: u64,
    ) -> TeamResult<()> {
        let key = Self::key(&lease.account, TOKEN_KEY);
        let copy = token_fields(secrets, version);
        for _ in 0..4 {
            let current = match self.kv.read(&key).await {
                Err(e) if e.failure() == Failure::PermissionDenied => return Ok(()),
                other => other?,
            };
            if current.as_ref().is_some_and(|e| {
                (stored_fence(e), copied_version(&e.data)) >= (lease.fence, version)
            }) {
                return Ok(());
            }
            let cas = current.as_ref().map_or(0, |e| e.version);
            match self.kv.write(&key, &copy, cas).await {
                Ok(_) => return Ok(()),
                Err(e) if e.failure() == Failure::PermissionDenied => return Ok(()),
                // Another writer's copy landed first (or a standby answered an older
                // version): read again.
                Err(e) if e.failure() == Failure::CasConflict => {}
                Err(e) => return Err(e),
            }
        }
        // Still losing: a lagging node; the caller's retry writes it again.
        Err(TeamError::new(
            Failure::Stale,
            format!(
                "the token of shared account '{}' for readers could not be updated at {}: \
                 the node keeps answering an older copy; try again",
                lease.account,
                self.kv.describe(&key)
            ),
        ))
    }

    /// Gives the lease back (the fence stays, so fences only grow). A lease already
    /// taken over is not an error: there is nothing left to give back.
    pub async fn release(&self, lease: &Lease) -> TeamResult<()> {
        let doc = LeaseDoc {
            holder: String::new(),
            fence: lease.fence,
            expires_at_ms: 0,
            secret_version: lease.secret_version(),
        };
        let key = Self::key(&lease.account, LEASE_KEY);
        match self
            .kv
            .write(
                &key,
                &doc.fields(),
                lease.doc_version.load(Ordering::SeqCst),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.failure() == Failure::CasConflict => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs `work` holding `lease`, extending it every third of the lease lifetime
    /// so a slow vendor never lets it lapse; a failed extension is left for the
    /// write's own check, which refuses a lease that was lost.
    pub async fn holding<T>(
        &self,
        lease: &Lease,
        work: impl std::future::Future<Output = TeamResult<T>>,
    ) -> TeamResult<T> {
        let every = (self.ttl / 3)
            .to_std()
            .unwrap_or(StdDuration::from_secs(30))
            .max(StdDuration::from_millis(100));
        tokio::pin!(work);
        let mut beat = tokio::time::interval(every);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        beat.tick().await;
        loop {
            tokio::select! {
                r = &mut work => return r,
                _ = beat.tick() => { let _ = self.extend(lease).await; }
            }
        }
    }

    /// The newest secrets of a shared account for a reader that will hand a token
    /// out (not renew): never older than `seen`, the newest version this reader has
    /// already seen or been told of by the lease.
    ///
    /// A reader whose policy does not grant the secrets gets the token entry instead:
    /// the token in use and its facts, as version `version` of the secrets they were
    /// copied from (so `seen` counts the same either way), and nothing that renews.
    pub async fn read_current(&self, account: &str, seen: u64) -> TeamResult<Option<Entry>> {
        let (_, doc) = self.read_doc(account).await?;
        let newest = seen.max(doc.secret_version);
        // Asked each time (a refusal costs one round trip): a policy changed on the
        // server, or a refusal that was a login's hiccup, is followed at once.
        let key = Self::key(account, SECRETS_KEY);
        match self.kv.read_at_least(&key, newest).await {
            Err(e) if e.failure() == Failure::PermissionDenied => {
                self.read_token(account, newest).await
            }
            other => other,
        }
    }

    /// The token entry of `account`, copied from version `newest` of its secrets or a
    /// later one, as that version of the secrets.
    async fn read_token(&self, account: &str, newest: u64) -> TeamResult<Option<Entry>> {
        let key = Self::key(account, TOKEN_KEY);
        // Not retried: waiting longer than the catch-up already waited brings no copy.
        let behind = |what: &str| {
            TeamError::new(
                Failure::CopyBehind,
                format!(
                    "shared account '{account}' has {what} at {}, and this login may read \
                     only that (not its secrets): a member's or server's Tokenkeeper writes it \
                     at the account's next renewal (`tokenkeeper renew` of it there; a login \
                     whose policy lacks the token entry's path renews without writing it), or \
                     the node that answered is behind (a standby after a failover); try again",
                    self.kv.describe(&key)
                ),
            )
        };
        let copy = match self
            .kv
            .read_counting(&key, newest, |e| copied_version(&e.data))
            .await
        {
            Ok(copy) => copy,
            Err(e) if e.failure() == Failure::Stale => {
                return Err(behind("no copy of its newest token for readers"))
            }
            Err(e) => return Err(e),
        };
        match copy {
            Some(Entry {
                created_time, data, ..
            }) if i64::try_from(copied_version(&data)).is_ok() => Ok(Some(Entry {
                version: copied_version(&data),
                created_time,
                data,
            })),
            Some(_) => Err(TeamError::new(
                Failure::Protocol,
                format!(
                    "the copy for readers at {} names a version of the secrets no KV engine \
                     counts to: it was not written by Tokenkeeper; a member's next renewal \
                     of '{account}' replaces it",
                    self.kv.describe(&key)
                ),
            )),
            None => Err(behind("no copy of its token for readers")),
        }
    }
}

/// The token entry made from `secrets` (version `version`): the token handed out and
/// the bookkeeping fields (its facts, the fence), named one by one, nothing that
/// renews.
fn token_fields(secrets: &Fields, version: u64) -> Fields {
    let mut copy = Fields::default();
    for name in secrets.names() {
        if name == HANDED_OUT.key() || is_bookkeeping(name) {
            if let Some(value) = secrets.get(name) {
                copy.set(name, value.clone());
            }
        }
    }
    copy.set(SECRETS_VERSION_FIELD, Secret::new(version.to_string()));
    copy
}

/// The version of the secrets a token entry was copied from (0 if it says none).
fn copied_version(data: &Fields) -> u64 {
    data.text(SECRETS_VERSION_FIELD)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Runs `op` again, with backoff, while it fails in a way that passes by itself
/// (unreachable, a leader election, a node catching up), for at most `patience`.
/// The lease's writes are safe to repeat: each is a check-and-set that recognises
/// its own earlier write.
pub async fn retrying<T, F, Fut>(patience: StdDuration, op: F) -> TeamResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = TeamResult<T>>,
{
    retrying_for(|_| patience, op).await
}

/// `retrying`, waiting out each failure for as long as `patience` gives it.
pub async fn retrying_for<T, F, Fut>(
    patience: impl Fn(&TeamError) -> StdDuration,
    mut op: F,
) -> TeamResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = TeamResult<T>>,
{
    let start = tokio::time::Instant::now();
    let mut wait = StdDuration::from_millis(100);
    loop {
        match op().await {
            Err(e) if e.failure().is_transient() && start.elapsed() + wait < patience(&e) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(StdDuration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// The fence a secrets' entry was written under (0 if none).
pub fn stored_fence(entry: &Entry) -> u64 {
    entry
        .data
        .text(FENCE_FIELD)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

/// A holder name unique to this process on this machine: host, process id and a
/// random part (a restarted process with the same id is another holder).
pub fn holder_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    format!(
        "{host}/{}/{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

fn held(account: &str, holder: &str, until_ms: i64) -> TeamError {
    let until = Utc
        .timestamp_millis_opt(until_ms)
        .single()
        .map(|t: DateTime<Utc>| t.format("%H:%M:%S UTC").to_string())
        .unwrap_or_default();
    TeamError::new(
        Failure::LeaseHeld,
        format!(
            "shared account '{account}' is being renewed by another Tokenkeeper ({holder}) \
             until {until} at the latest; wait for its token"
        ),
    )
}

fn lost(account: &str) -> TeamError {
    TeamError::new(
        Failure::LeaseLost,
        format!(
            "another Tokenkeeper took over the lease of shared account '{account}' while this \
             one worked (its lease expired), so this one stored nothing; try again"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_entry_round_trips_and_a_foreign_one_is_refused() {
        let doc = LeaseDoc {
            holder: "h/1/ab".into(),
            fence: 7,
            expires_at_ms: 1_800_000_000_000,
            secret_version: 12,
        };
        assert_eq!(LeaseDoc::parse(&doc.fields()), Some(doc));
        let foreign = Fields::default().with("holder", Secret::new("x"));
        assert_eq!(LeaseDoc::parse(&foreign), None);
    }

    #[test]
    fn holder_names_differ_between_leases_of_one_process() {
        assert_ne!(holder_name(), holder_name());
    }
}
