//! The engine against vendors whose numbers make no sense: a token that expires the
//! moment it is issued (or before), and a renewal that panics. Neither may renew on
//! every pass; and the timing rules hold for any issued/expiry pair and any clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::clock::ManualClock;
use crate::model::{min_renewal_interval, seconds_after, MAX_LIFETIME};

/// One account whose vendor says each new token lasts `lifetime_s` seconds (zero,
/// negative: already expired), or whose renewal panics.
struct AbsurdVendor {
    clock: Arc<ManualClock>,
    lifetime_s: i64,
    panics: bool,
    meta: Mutex<TokenMeta>,
    renewals: AtomicUsize,
    floor: Duration,
}

impl AbsurdVendor {
    fn new(clock: Arc<ManualClock>, lifetime_s: i64, panics: bool, floor: Duration) -> Self {
        let now = clock.now();
        let meta = TokenMeta::issued(
            now - Duration::hours(1),
            Some(now - Duration::minutes(1)),
            RenewsWith::StoredPassword,
        );
        Self {
            clock,
            lifetime_s,
            panics,
            meta: Mutex::new(meta),
            renewals: AtomicUsize::new(0),
            floor,
        }
    }
}

#[async_trait]
impl Renewer for AbsurdVendor {
    fn watched(&self) -> Result<Vec<Watched>> {
        Ok(vec![Watched {
            id: "acc-1".into(),
            name: "absurd".into(),
            label: "TrueSight account 'absurd'".into(),
            meta: Some(self.meta.lock().unwrap().clone()),
        }])
    }

    async fn renew(&self, _name: &str) -> Result<()> {
        self.renewals.fetch_add(1, Ordering::SeqCst);
        if self.panics {
            // What an overflow in a vendor's numbers did before they were bounded.
            panic!("a vendor's number overflowed");
        }
        let now = self.clock.now();
        // As the vault stores it: the vendor's lifetime, then bounded.
        let expires = if self.lifetime_s >= 0 {
            seconds_after(now, self.lifetime_s)
        } else {
            now - Duration::seconds(self.lifetime_s.saturating_neg())
        };
        let mut meta = TokenMeta::issued(now, Some(expires), RenewsWith::StoredPassword);
        meta.clamp_lifetime(self.floor);
        *self.meta.lock().unwrap() = meta;
        Ok(())
    }
}

#[derive(Default)]
struct NoAlerts;

impl AlertLog for NoAlerts {
    fn fired(&self, _: &str, _: DateTime<Utc>) -> Result<Vec<i64>> {
        Ok(Vec::new())
    }
    fn record(&self, _: &str, _: DateTime<Utc>, _: &[i64], _: DateTime<Utc>) -> Result<()> {
        Ok(())
    }
}

#[derive(Default)]
struct Ignored;

impl EventSink for Ignored {
    fn emit(&self, _: EngineEvent) {}
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 8, 0, 0).unwrap()
}

/// Runs the engine's passes every 200 ms (the loop's shortest sleep, as if it never
/// slept longer) for `span`; the vendor's renewal count.
async fn renewals_over(lifetime_s: i64, panics: bool, span: Duration) -> (usize, Duration) {
    let clock = Arc::new(ManualClock::new(start()));
    let floor = Duration::seconds(30);
    let vendor = Arc::new(AbsurdVendor::new(clock.clone(), lifetime_s, panics, floor));
    let engine = Engine::new(
        vendor.clone(),
        Arc::new(NoAlerts),
        clock.clone(),
        Arc::new(Ignored),
        Policy {
            min_interval: floor,
            ..Policy::default()
        },
    );
    let until = clock.now() + span;
    while clock.now() < until {
        engine.tick().await.unwrap();
        clock.advance(Duration::milliseconds(200));
    }
    (vendor.renewals.load(Ordering::SeqCst), floor)
}

#[tokio::test]
async fn a_token_that_expires_at_once_is_renewed_no_more_often_than_the_floor() {
    let span = Duration::minutes(10);
    for lifetime_s in [0, 1, -3600, -1_000_000_000] {
        let (renewals, floor) = renewals_over(lifetime_s, false, span).await;
        let allowed = (span.num_seconds() / floor.num_seconds()) as usize + 1;
        assert!(
            renewals <= allowed,
            "lifetime {lifetime_s} s: {renewals} renewals in {span}, the floor allows {allowed}"
        );
        assert!(
            renewals >= 2,
            "lifetime {lifetime_s} s: never renewed again"
        );
    }
}

#[tokio::test]
async fn a_renewal_that_panics_backs_off_like_any_failure() {
    let span = Duration::minutes(10);
    let (attempts, _) = renewals_over(3600, true, span).await;
    // 30 s doubling: 0, 30, 90, 210, 450 s… at most 6 in ten minutes (with jitter).
    assert!(
        attempts <= 6,
        "{attempts} attempts in ten minutes: a panicking renewal is retried on every pass"
    );
    assert!(attempts >= 2, "a failed renewal was never retried");
}

#[test]
fn the_default_floor_is_stated_and_sane() {
    let floor = min_renewal_interval();
    assert!(floor >= Duration::seconds(1) && floor <= Duration::hours(1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any issued/expiry pair and any clock: the bounded lifetime, the renewal time
    /// and the engine's due time are finite, ordered, and never sooner than the floor.
    #[test]
    fn timing_rules_hold_for_any_numbers(
        issued_s in 0i64..32_503_680_000, // 1970 to 3000
        lifetime_s in any::<i64>(),
        now_offset_s in -1_000_000_000i64..1_000_000_000,
        floor_s in 1i64..3600,
        id in "[a-z0-9-]{1,36}",
    ) {
        let issued = Utc.timestamp_opt(issued_s, 0).unwrap();
        let floor = Duration::seconds(floor_s);
        let expires = if lifetime_s >= 0 {
            seconds_after(issued, lifetime_s)
        } else {
            issued - Duration::seconds(lifetime_s.saturating_neg().min(10_000_000_000))
        };
        let mut meta = TokenMeta::issued(issued, Some(expires), RenewsWith::StoredPassword);
        meta.clamp_lifetime(floor);
        let expires = meta.expires_at.unwrap();
        prop_assert!(expires >= issued + floor * 2);
        prop_assert!(expires <= issued + MAX_LIFETIME);
        let renew_at = meta.renew_at().unwrap();
        prop_assert!(renew_at >= issued + floor, "renew_at {renew_at} before the floor");
        prop_assert!(renew_at <= expires);

        let now = issued + Duration::seconds(now_offset_s);
        let clock = Arc::new(ManualClock::new(now));
        let engine = Engine::new(
            Arc::new(AbsurdVendor::new(clock.clone(), 0, false, floor)),
            Arc::new(NoAlerts),
            clock,
            Arc::new(Ignored),
            Policy { min_interval: floor, ..Policy::default() },
        );
        let w = Watched { id, name: "n".into(), label: "l".into(), meta: Some(meta.clone()) };
        let due = engine.due_at(&w).unwrap();
        prop_assert!(due >= issued + floor, "due {due} before the floor");
        prop_assert!(due <= expires);
        // Whatever the clock says, the state is one of the four and never panics.
        let _ = meta.state(now);
    }

    /// Backoff: never below 90% of the base, never above the cap, never shrinking.
    #[test]
    fn backoff_is_bounded_and_grows(id in "[a-z0-9-]{1,36}", failures in 1u32..200) {
        let clock = Arc::new(ManualClock::new(start()));
        let engine = Engine::new(
            Arc::new(AbsurdVendor::new(clock.clone(), 0, false, Duration::seconds(30))),
            Arc::new(NoAlerts),
            clock,
            Arc::new(Ignored),
            Policy::default(),
        );
        let p = engine.policy().clone();
        let d = engine.backoff_delay(&id, failures);
        let next = engine.backoff_delay(&id, failures + 1);
        prop_assert!(d >= p.backoff_base * 9 / 10);
        prop_assert!(d <= p.backoff_cap);
        prop_assert!(next >= d);
    }

    /// A vendor's count of seconds never panics and lands within the bounds.
    #[test]
    fn any_count_of_seconds_is_safe(seconds in any::<i64>(), now_s in 0i64..253_402_300_000) {
        let now = Utc.timestamp_opt(now_s, 0).unwrap();
        let t = seconds_after(now, seconds);
        prop_assert!(t >= now);
        prop_assert!(t - now <= MAX_LIFETIME);
    }

    /// Alert thresholds: any span reads as words without panicking.
    #[test]
    fn any_span_reads_as_words(ms in any::<i64>()) {
        let text = human_duration(Duration::milliseconds(ms.max(i64::MIN + 1)));
        prop_assert!(!text.is_empty());
    }
}
