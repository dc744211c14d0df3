//! The engine over thousands of accounts and days of simulated time, against an
//! in-memory vendor: no gap in any token, bounded concurrency, backoff while the
//! vendor is down, and each alert once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::clock::ManualClock;
use crate::error::Error;

/// An in-memory vendor and vault: renewing issues a token for `lifetime` from now.
struct FakeVault {
    clock: Arc<ManualClock>,
    accounts: Mutex<BTreeMap<String, (Duration, TokenMeta)>>,
    down: AtomicBool,
    refuse: Mutex<HashSet<String>>,
    attempts: Mutex<HashMap<String, usize>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// The admin's thresholds, where the vault keeps them (`None`: the policy's).
    thresholds: Mutex<Option<Vec<Duration>>>,
    /// Bumped by "another process"'s write.
    version: AtomicUsize,
}

impl FakeVault {
    fn new(clock: Arc<ManualClock>) -> Self {
        Self {
            clock,
            accounts: Mutex::new(BTreeMap::new()),
            down: AtomicBool::new(false),
            refuse: Mutex::new(HashSet::new()),
            attempts: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            thresholds: Mutex::new(None),
            version: AtomicUsize::new(0),
        }
    }

    fn add(&self, name: &str, lifetime: Duration, human_deadline: Option<DateTime<Utc>>) {
        let now = self.clock.now();
        let mut meta = TokenMeta::issued(now, Some(now + lifetime), RenewsWith::RefreshToken);
        meta.human_deadline = human_deadline;
        self.accounts
            .lock()
            .unwrap()
            .insert(name.to_string(), (lifetime, meta));
    }

    fn meta(&self, name: &str) -> TokenMeta {
        self.accounts.lock().unwrap()[name].1.clone()
    }

    fn attempts(&self, name: &str) -> usize {
        self.attempts
            .lock()
            .unwrap()
            .get(name)
            .copied()
            .unwrap_or(0)
    }
}

#[async_trait]
impl Renewer for FakeVault {
    fn changes(&self) -> Option<i64> {
        Some(self.version.load(Ordering::SeqCst) as i64)
    }

    fn alert_thresholds(&self) -> Option<Vec<Duration>> {
        self.thresholds.lock().unwrap().clone()
    }

    fn watched(&self) -> Result<Vec<Watched>> {
        Ok(self
            .accounts
            .lock()
            .unwrap()
            .iter()
            .map(|(name, (_, meta))| Watched {
                id: format!("id-{name}"),
                name: name.clone(),
                label: format!("account '{name}'"),
                meta: Some(meta.clone()),
            })
            .collect())
    }

    async fn renew(&self, name: &str) -> Result<()> {
        *self
            .attempts
            .lock()
            .unwrap()
            .entry(name.into())
            .or_default() += 1;
        let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        // Let the other renewals run meanwhile, as network calls would.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.refuse.lock().unwrap().contains(name) {
            let mut accounts = self.accounts.lock().unwrap();
            let meta = &mut accounts.get_mut(name).unwrap().1;
            meta.needs_human = true;
            meta.last_error = Some("the refresh token was revoked".into());
            return Err(Error::needs_sign_in("the refresh token was revoked"));
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::network("the vendor is down"));
        }
        let now = self.clock.now();
        let mut accounts = self.accounts.lock().unwrap();
        let (lifetime, meta) = accounts.get_mut(name).unwrap();
        let deadline = meta.human_deadline;
        *meta = TokenMeta::issued(now, Some(now + *lifetime), RenewsWith::RefreshToken);
        meta.human_deadline = deadline;
        Ok(())
    }
}

#[derive(Default)]
struct MemoryAlertLog(Mutex<HashMap<(String, i64), Vec<i64>>>);

impl AlertLog for MemoryAlertLog {
    fn fired(&self, account_id: &str, deadline: DateTime<Utc>) -> Result<Vec<i64>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(&(account_id.to_string(), deadline.timestamp_millis()))
            .cloned()
            .unwrap_or_default())
    }
    fn record(
        &self,
        account_id: &str,
        deadline: DateTime<Utc>,
        thresholds: &[i64],
        _now: DateTime<Utc>,
    ) -> Result<()> {
        self.0
            .lock()
            .unwrap()
            .entry((account_id.to_string(), deadline.timestamp_millis()))
            .or_default()
            .extend_from_slice(thresholds);
        Ok(())
    }
}

#[derive(Default)]
struct Recorded(Mutex<Vec<EngineEvent>>);

impl EventSink for Recorded {
    fn emit(&self, event: EngineEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorded {
    fn alerts(&self) -> Vec<Alert> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                EngineEvent::Alert(a) => Some(a.clone()),
                _ => None,
            })
            .collect()
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
}

struct World {
    clock: Arc<ManualClock>,
    vault: Arc<FakeVault>,
    log: Arc<MemoryAlertLog>,
    sink: Arc<Recorded>,
    engine: Arc<Engine>,
}

fn world(policy: Policy) -> World {
    let clock = Arc::new(ManualClock::new(start()));
    let vault = Arc::new(FakeVault::new(clock.clone()));
    let log = Arc::new(MemoryAlertLog::default());
    let sink = Arc::new(Recorded::default());
    let engine = Arc::new(Engine::new(
        vault.clone(),
        log.clone(),
        clock.clone(),
        sink.clone(),
        policy,
    ));
    World {
        clock,
        vault,
        log,
        sink,
        engine,
    }
}

impl World {
    /// Runs the engine as its loop would, jumping the clock to each wake-up (but at
    /// least `min_step`, as a busy machine wakes late), until `until`; checks right
    /// after each jump, before the engine's next pass can renew anything overdue, that
    /// no renewable token has expired.
    async fn run_until(&self, until: DateTime<Utc>, check_no_gap: bool) -> usize {
        self.run_steps(until, check_no_gap, Duration::seconds(1))
            .await
    }

    /// Every account's token is still valid now (the engine has not run since the
    /// clock moved: a token that lapsed in the jump is a gap, whatever the next pass does).
    fn assert_no_gap(&self) {
        let now = self.clock.now();
        for (name, (_, m)) in self.vault.accounts.lock().unwrap().iter() {
            assert!(
                m.expires_at.unwrap() > now,
                "{name} expired at {:?}, now {now}: a gap before the engine woke",
                m.expires_at
            );
        }
    }

    async fn run_steps(
        &self,
        until: DateTime<Utc>,
        check_no_gap: bool,
        min_step: Duration,
    ) -> usize {
        let mut passes = 0;
        while self.clock.now() < until {
            if check_no_gap {
                self.assert_no_gap();
            }
            let report = self.engine.tick().await.unwrap();
            assert!(report.peak_concurrency <= self.engine.policy().concurrency);
            passes += 1;
            let sleep = self.engine.sleep_for().unwrap();
            let step = Duration::from_std(sleep).unwrap().max(min_step);
            self.clock.advance(step.min(until - self.clock.now()));
        }
        if check_no_gap {
            self.assert_no_gap();
        }
        passes
    }
}

#[tokio::test]
async fn two_days_of_thousands_of_accounts_renew_with_no_gap_and_bounded_concurrency() {
    let w = world(Policy::default());
    let lifetimes = [
        Duration::minutes(5),
        Duration::hours(1),
        Duration::hours(24),
    ];
    for i in 0..2000 {
        w.vault.add(&format!("a{i:04}"), lifetimes[i % 3], None);
    }
    // Waking up to 25 s late (the shortest renewal window is 30 s) still leaves no gap.
    let passes = w
        .run_steps(start() + Duration::days(2), true, Duration::seconds(25))
        .await;
    // Every account renewed about as often as its lifetime allows, not more.
    for (i, lifetime) in lifetimes.iter().enumerate() {
        let name = format!("a{i:04}");
        let renewals = w.vault.attempts(&name) as i64;
        let at_least = Duration::days(2).num_seconds() / lifetime.num_seconds();
        assert!(
            renewals >= at_least && renewals <= at_least * 2 + 1,
            "{name}: {renewals} renewals for a {lifetime} token over 2 days"
        );
    }
    assert!(w.vault.peak.load(Ordering::SeqCst) <= 8);
    assert!(
        w.vault.peak.load(Ordering::SeqCst) > 1,
        "renewals did run in parallel"
    );
    // The engine sleeps until something is due: far fewer passes than seconds.
    assert!(passes <= 2 * 86400 / 25 + 1, "{passes} passes");
}

#[tokio::test]
async fn accounts_falling_due_together_are_spread_by_jitter() {
    let w = world(Policy::default());
    for i in 0..1000 {
        w.vault.add(&format!("b{i}"), Duration::hours(1), None);
    }
    let due: HashSet<DateTime<Utc>> = w
        .vault
        .watched()
        .unwrap()
        .iter()
        .filter_map(|a| w.engine.due_at(a))
        .collect();
    assert!(due.len() > 900, "{} distinct renewal times", due.len());
    let earliest = due.iter().min().unwrap();
    let latest = due.iter().max().unwrap();
    assert!(*latest - *earliest <= Duration::minutes(2));
    // Never later than the renewal window's start.
    let renew_at = w.vault.meta("b0").renew_at().unwrap();
    assert!(*latest <= renew_at);
}

#[tokio::test]
async fn a_vendor_outage_backs_off_exponentially_up_to_the_cap_then_recovers() {
    let w = world(Policy::default());
    for i in 0..200 {
        w.vault.add(&format!("c{i}"), Duration::hours(1), None);
    }
    // The vendor goes down just before the accounts fall due, for three hours.
    w.clock.advance(Duration::minutes(40));
    w.vault.down.store(true, Ordering::SeqCst);
    w.run_until(start() + Duration::minutes(220), false).await;
    // Without backoff a pass a second would be ~10,000 attempts each; with 30 s
    // doubling to a 30-minute cap, a 3-hour outage allows about a dozen.
    let worst = (0..200)
        .map(|i| w.vault.attempts(&format!("c{i}")))
        .max()
        .unwrap();
    assert!(
        (5..=14).contains(&worst),
        "{worst} attempts during the outage"
    );
    let failures = w
        .sink
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| {
            matches!(
                e,
                EngineEvent::RenewalFailed {
                    needs_human: false,
                    ..
                }
            )
        })
        .count();
    assert!(failures >= 200);

    w.vault.down.store(false, Ordering::SeqCst);
    // Within one capped backoff, every account has a fresh token again.
    w.run_until(start() + Duration::minutes(220 + 31), false)
        .await;
    let now = w.clock.now();
    for a in w.vault.watched().unwrap() {
        assert!(
            a.meta.unwrap().expires_at.unwrap() > now,
            "{} recovered",
            a.name
        );
    }
    assert!(
        w.sink.alerts().is_empty(),
        "an outage is not a human's deadline"
    );
}

#[tokio::test]
async fn each_threshold_alerts_once_per_deadline() {
    let w = world(Policy::default());
    let deadline = start() + Duration::days(8);
    w.vault.add("ba", Duration::hours(24), Some(deadline));
    w.run_until(start() + Duration::days(9), false).await;
    let alerts = w.sink.alerts();
    let thresholds: Vec<i64> = alerts.iter().map(|a| a.threshold_s).collect();
    assert_eq!(thresholds, vec![7 * 86400, 86400, 3600, 0], "{alerts:#?}");
    assert!(alerts
        .iter()
        .all(|a| a.deadline_ms == deadline.timestamp_millis()));
    assert!(
        alerts[0].message.contains("within 7 days"),
        "{}",
        alerts[0].message
    );
    assert!(
        alerts[3].message.contains("expired"),
        "{}",
        alerts[3].message
    );
    // Past the deadline the engine stops renewing: only a human can.
    let renewals = w.vault.attempts("ba");
    assert!((8..=9).contains(&renewals), "{renewals}");
}

#[tokio::test]
async fn the_admins_thresholds_from_the_vault_replace_the_policys() {
    let w = world(Policy::default());
    *w.vault.thresholds.lock().unwrap() = Some(vec![Duration::days(2), Duration::hours(6)]);
    let deadline = start() + Duration::days(3);
    w.vault.add("ut", Duration::hours(24), Some(deadline));
    w.run_until(start() + Duration::days(4), false).await;
    let thresholds: Vec<i64> = w.sink.alerts().iter().map(|a| a.threshold_s).collect();
    assert_eq!(thresholds, vec![2 * 86400, 6 * 3600, 0]);
}

#[tokio::test]
async fn after_downtime_one_alert_for_the_most_urgent_threshold_passed() {
    let w = world(Policy::default());
    let deadline = start() + Duration::minutes(30);
    w.vault.add("ut", Duration::hours(24), Some(deadline));
    // The app starts with the 7-day, 1-day and 1-hour thresholds all passed.
    w.engine.tick().await.unwrap();
    w.engine.tick().await.unwrap();
    let alerts = w.sink.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].threshold_s, 3600);
    assert!(
        alerts[0].message.contains("within 30 minutes"),
        "{}",
        alerts[0].message
    );

    // A restart (a new engine on the same log) raises nothing again.
    let again = Engine::new(
        w.vault.clone(),
        w.log.clone(),
        w.clock.clone(),
        w.sink.clone(),
        Policy::default(),
    );
    again.tick().await.unwrap();
    assert_eq!(w.sink.alerts().len(), 1);
    // The deadline itself still alerts, once.
    w.clock.advance(Duration::minutes(31));
    again.tick().await.unwrap();
    again.tick().await.unwrap();
    assert_eq!(w.sink.alerts().len(), 2);
}

#[tokio::test]
async fn a_refused_renewal_alerts_at_once_and_is_not_retried() {
    let w = world(Policy::default());
    w.vault.add("rt", Duration::hours(1), None);
    w.vault.refuse.lock().unwrap().insert("rt".into());
    w.run_until(start() + Duration::hours(5), false).await;
    assert_eq!(
        w.vault.attempts("rt"),
        1,
        "a refusal needs a human, not retries"
    );
    let alerts = w.sink.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].kind, AlertKind::NeedsSignIn);
    assert!(
        alerts[0].message.contains("revoked"),
        "{}",
        alerts[0].message
    );
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let w = world(Policy::default());
    let d: Vec<i64> = (1..=10)
        .map(|n| w.engine.backoff_delay("x", n).num_seconds())
        .collect();
    for (i, s) in d.iter().enumerate() {
        let full = (30_i64 << i).min(1800);
        assert!(
            *s <= full && *s >= full * 9 / 10,
            "failure {}: {s} s",
            i + 1
        );
    }
}

#[tokio::test]
async fn another_processs_write_is_announced_while_the_engine_sleeps() {
    let w = world(Policy {
        max_sleep: Duration::hours(1),
        ..Policy::default()
    });
    let changed = |sink: &Recorded| {
        sink.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, EngineEvent::VaultChanged))
            .count()
    };
    let task = tokio::spawn(w.engine.clone().run(Arc::new(tokio::sync::Notify::new())));
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(changed(&w.sink), 0, "nothing changed yet");
    w.vault.version.fetch_add(1, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while changed(&w.sink) == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    task.abort();
    assert_eq!(changed(&w.sink), 1, "the change was announced once");
}
