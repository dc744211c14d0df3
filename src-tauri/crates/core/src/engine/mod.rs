//! The renewal engine: renews every account's token inside its window before it
//! expires, with bounded concurrency, jitter and capped exponential backoff, and
//! raises each alert before a human deadline once. It takes an injected clock, the
//! thing that renews (`Renewer`, the vault in the app) and an event sink, so it runs
//! without a window and is tested over days of simulated time.

mod alerts;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use ts_rs::TS;

use crate::clock::Clock;
use crate::error::{ErrorKind, Result};
use crate::model::{RenewsWith, TokenMeta, TokenState};

pub use alerts::{human_duration, Alert, AlertKind};

/// One account as the engine sees it: no secret, only what decides when to act.
#[derive(Debug, Clone)]
pub struct Watched {
    pub id: String,
    pub name: String,
    /// "BigAnimal account 'prod'", for messages.
    pub label: String,
    pub meta: Option<TokenMeta>,
}

/// What the engine drives: lists the accounts and renews one (single-flight across
/// processes is the renewer's business: the vault's lease).
#[async_trait]
pub trait Renewer: Send + Sync {
    fn watched(&self) -> Result<Vec<Watched>>;
    async fn renew(&self, name: &str) -> Result<()>;
    /// The admin's alert thresholds, when set where every process sees them (the
    /// vault's preferences); `None` keeps the policy's.
    fn alert_thresholds(&self) -> Option<Vec<Duration>> {
        None
    }
    /// A number that changes when another process changed the accounts (a sign-in, a
    /// revoked token, an edit), so the engine looks again at once instead of after
    /// its longest sleep; `None` where nothing else can change them.
    fn changes(&self) -> Option<i64> {
        None
    }
}

/// Which alerts were already raised, kept where a restart finds them.
pub trait AlertLog: Send + Sync {
    /// The thresholds (seconds before `deadline`) already raised for this deadline.
    fn fired(&self, account_id: &str, deadline: DateTime<Utc>) -> Result<Vec<i64>>;
    fn record(
        &self,
        account_id: &str,
        deadline: DateTime<Utc>,
        thresholds: &[i64],
        now: DateTime<Utc>,
    ) -> Result<()>;
}

/// Where the engine reports: the window, the tray, notifications, a test.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: EngineEvent);
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum EngineEvent {
    Renewed {
        account: String,
    },
    RenewalFailed {
        account: String,
        message: String,
        needs_human: bool,
        #[ts(type = "number | null")]
        retry_at_ms: Option<i64>,
    },
    Alert(Alert),
    /// Another process changed the vault (an account added, signed in or removed
    /// from the CLI): listings are stale.
    VaultChanged,
}

/// How the engine paces itself.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Renewals at once, across all vendors.
    pub concurrency: usize,
    /// The wait after a first failure, doubled after each next one, up to the cap.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// The most by which a renewal is moved earlier to spread accounts that fall
    /// due together (never more than a quarter of the renewal window).
    pub jitter_max: Duration,
    /// Alert this long before each human deadline (and at the deadline itself).
    pub thresholds: Vec<Duration>,
    /// The longest the engine sleeps, so changes from other processes are seen.
    pub max_sleep: Duration,
    /// The least time from a token's issue to its renewal, whatever its lifetime says
    /// (a zero or past expiry must not renew on every pass).
    pub min_interval: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            concurrency: 8,
            backoff_base: Duration::seconds(30),
            backoff_cap: Duration::minutes(30),
            jitter_max: Duration::minutes(2),
            thresholds: vec![Duration::days(7), Duration::days(1), Duration::hours(1)],
            max_sleep: Duration::seconds(60),
            min_interval: crate::model::min_renewal_interval(),
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    pub renewed: usize,
    pub failed: usize,
    pub alerts: usize,
    pub peak_concurrency: usize,
}

#[derive(Debug, Clone, Copy)]
struct Backoff {
    /// The token the failures were about: a renewal elsewhere starts afresh.
    issued_at: DateTime<Utc>,
    failures: u32,
    next_try: DateTime<Utc>,
}

pub struct Engine {
    renewer: Arc<dyn Renewer>,
    alert_log: Arc<dyn AlertLog>,
    clock: Arc<dyn Clock>,
    sink: Arc<dyn EventSink>,
    policy: Policy,
    backoff: Mutex<HashMap<String, Backoff>>,
    /// The accounts as the last pass left them, for `next_wake` without a re-read.
    last_seen: Mutex<Option<Vec<Watched>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(
        renewer: Arc<dyn Renewer>,
        alert_log: Arc<dyn AlertLog>,
        clock: Arc<dyn Clock>,
        sink: Arc<dyn EventSink>,
        policy: Policy,
    ) -> Self {
        Self {
            renewer,
            alert_log,
            clock,
            sink,
            policy,
            backoff: Mutex::new(HashMap::new()),
            last_seen: Mutex::new(None),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// When the engine means to renew this account, if it renews it at all.
    pub fn due_at(&self, w: &Watched) -> Option<DateTime<Utc>> {
        let meta = w.meta.as_ref()?;
        if meta.needs_human || meta.renews_with == RenewsWith::Nothing {
            return None;
        }
        if meta.human_deadline.is_some_and(|d| d <= self.clock.now()) {
            return None;
        }
        let expires = meta.expires_at?;
        let renew_at = meta.renew_at()?;
        let window = expires - renew_at;
        let spread = (window / 4).min(self.policy.jitter_max);
        let at = (renew_at - jitter(&w.id, expires, spread))
            .max(meta.issued_at + self.policy.min_interval);
        match self.backoff_for(w) {
            Some(b) => Some(at.max(b.next_try)),
            None => Some(at),
        }
    }

    fn backoff_for(&self, w: &Watched) -> Option<Backoff> {
        let issued = w.meta.as_ref()?.issued_at;
        let map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&w.id).copied().filter(|b| b.issued_at == issued)
    }

    /// One pass: renews what is due, at most `concurrency` at once, then raises the
    /// alerts whose time has come.
    pub async fn tick(&self) -> Result<TickReport> {
        let now = self.clock.now();
        let watched = self.renewer.watched()?;
        let due: Vec<Watched> = watched
            .iter()
            .filter(|w| self.due_at(w).is_some_and(|at| at <= now))
            .cloned()
            .collect();
        // Renewals change what is stored: read again only when some ran.
        let reread = !due.is_empty();
        let mut report = TickReport::default();
        let limit = Arc::new(tokio::sync::Semaphore::new(self.policy.concurrency.max(1)));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        // Which account each task renews, so that a task that panicked still backs off.
        let mut renewing = HashMap::new();
        for w in due {
            let renewer = self.renewer.clone();
            let limit = limit.clone();
            let in_flight = in_flight.clone();
            let peak = peak.clone();
            let name = w.name.clone();
            let handle = tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let n = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                let result = renewer.renew(&name).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                result
            });
            renewing.insert(handle.id(), w);
        }
        while let Some(joined) = tasks.join_next_with_id().await {
            let (id, result) = match joined {
                Ok((id, result)) => (id, result),
                Err(e) => {
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    (
                        e.id(),
                        Err(crate::error::Error::internal(
                            "the renewal stopped on an internal error (a bug); it will be retried later",
                        )),
                    )
                }
            };
            let Some(w) = renewing.remove(&id) else {
                continue;
            };
            let mut map = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
            match result {
                Ok(()) => {
                    map.remove(&w.id);
                    report.renewed += 1;
                    drop(map);
                    self.sink.emit(EngineEvent::Renewed { account: w.name });
                }
                Err(e) => {
                    report.failed += 1;
                    let needs_human =
                        matches!(e.kind(), ErrorKind::Refused | ErrorKind::NeedsSignIn);
                    let issued_at = w.meta.as_ref().map_or(now, |m| m.issued_at);
                    let failures = map
                        .get(&w.id)
                        .filter(|b| b.issued_at == issued_at)
                        .map_or(1, |b| b.failures + 1);
                    let wait = self.backoff_delay(&w.id, failures);
                    let retry = self.clock.now() + wait;
                    map.insert(
                        w.id.clone(),
                        Backoff {
                            issued_at,
                            failures,
                            next_try: retry,
                        },
                    );
                    drop(map);
                    self.sink.emit(EngineEvent::RenewalFailed {
                        account: w.name,
                        message: e.message().to_string(),
                        needs_human,
                        retry_at_ms: (!needs_human).then(|| retry.timestamp_millis()),
                    });
                }
            }
        }
        report.peak_concurrency = peak.load(Ordering::SeqCst);
        let watched = if reread {
            self.renewer.watched()?
        } else {
            watched
        };
        report.alerts = self.raise_alerts(&watched)?;
        *self.last_seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(watched);
        Ok(report)
    }

    /// `base × 2^(failures−1)`, capped, less up to a tenth of it (spread per account).
    fn backoff_delay(&self, id: &str, failures: u32) -> Duration {
        let base = self.policy.backoff_base.num_milliseconds().max(1);
        let cap = self.policy.backoff_cap.num_milliseconds().max(base);
        let exp = failures.saturating_sub(1).min(30);
        let ms = base.saturating_mul(1_i64 << exp).min(cap);
        let spread = Duration::milliseconds(ms / 10);
        Duration::milliseconds(ms) - jitter(id, DateTime::<Utc>::MIN_UTC, spread)
    }

    fn thresholds(&self) -> Vec<Duration> {
        self.renewer
            .alert_thresholds()
            .unwrap_or_else(|| self.policy.thresholds.clone())
    }

    fn raise_alerts(&self, watched: &[Watched]) -> Result<usize> {
        let now = self.clock.now();
        let thresholds = self.thresholds();
        let mut raised = 0;
        for w in watched {
            for alert in alerts::due(w, &thresholds, now, self.alert_log.as_ref())? {
                self.sink.emit(EngineEvent::Alert(alert));
                raised += 1;
            }
        }
        Ok(raised)
    }

    /// The next moment something is due (a renewal, a retry, an alert threshold),
    /// from what the last pass saw.
    pub fn next_wake(&self) -> Result<Option<DateTime<Utc>>> {
        let now = self.clock.now();
        let cached = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
        let read;
        let watched = match cached.as_ref() {
            Some(w) => w,
            None => {
                read = self.renewer.watched()?;
                &read
            }
        };
        let renewals = watched.iter().filter_map(|w| self.due_at(w));
        let policy = self.thresholds();
        let thresholds = watched
            .iter()
            .flat_map(|w| alerts::upcoming(w, &policy, now));
        Ok(renewals.chain(thresholds).min())
    }

    /// How long to sleep from now: until the next wake, at most `max_sleep`.
    pub fn sleep_for(&self) -> Result<std::time::Duration> {
        let now = self.clock.now();
        let until = self.next_wake()?.map_or(self.policy.max_sleep, |t| {
            (t - now).min(self.policy.max_sleep)
        });
        Ok(until.max(Duration::zero()).to_std().unwrap_or_default())
    }

    /// Runs until the task is dropped: a pass, then sleep until the next thing is due
    /// or `wake` is notified (an account was added or signed in).
    pub async fn run(self: Arc<Self>, wake: Arc<tokio::sync::Notify>) {
        /// How often, while asleep, the engine asks whether another process changed
        /// the accounts (one cheap SQLite pragma).
        const LOOK: std::time::Duration = std::time::Duration::from_secs(1);
        loop {
            let seen = self.renewer.changes();
            if let Err(e) = self.tick().await {
                self.sink.emit(EngineEvent::RenewalFailed {
                    account: String::new(),
                    message: e.message().to_string(),
                    needs_human: false,
                    retry_at_ms: None,
                });
            }
            let sleep = self
                .sleep_for()
                .unwrap_or(std::time::Duration::from_secs(60));
            // Never spin: at least a moment between passes.
            let sleep = sleep.max(std::time::Duration::from_millis(200));
            let until = tokio::time::Instant::now() + sleep;
            loop {
                let step = until
                    .saturating_duration_since(tokio::time::Instant::now())
                    .min(LOOK);
                tokio::select! {
                    _ = tokio::time::sleep(step) => {}
                    _ = wake.notified() => break,
                }
                if self.renewer.changes() != seen {
                    self.sink.emit(EngineEvent::VaultChanged);
                    break;
                }
                if tokio::time::Instant::now() >= until {
                    break;
                }
            }
        }
    }
}

/// A stable share of `spread` for this account and token, so accounts that fall due
/// together spread out, the same way in every process.
fn jitter(id: &str, expires: DateTime<Utc>, spread: Duration) -> Duration {
    let ms = spread.num_milliseconds();
    if ms <= 0 {
        return Duration::zero();
    }
    // FNV-1a: stable across processes and versions, and cheap for thousands of accounts.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id
        .as_bytes()
        .iter()
        .chain(&expires.timestamp_millis().to_le_bytes())
    {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    Duration::milliseconds((h % ms as u64) as i64)
}

/// The state a watched account is in now (for the tray's worst state).
pub fn state_of(w: &Watched, now: DateTime<Utc>) -> TokenState {
    w.meta
        .as_ref()
        .map_or(TokenState::NeedsSignIn, |m| m.state(now))
}

#[cfg(test)]
mod floor_tests;
#[cfg(test)]
mod tests;
