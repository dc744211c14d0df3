//! Alerts before the deadlines only a human can meet: each threshold raised once per
//! deadline, and after downtime one alert for the most urgent threshold passed, not
//! one per threshold missed.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use ts_rs::TS;

use super::{AlertLog, Watched};
use crate::error::Result;
use crate::model::RenewsWith;

/// The key under which a "needs you now" alert is logged (not a time before a deadline).
const NEEDS_SIGN_IN: i64 = -1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    /// A human deadline is near or has passed.
    DeadlineSoon,
    /// An automatic renewal was refused: a human must sign in.
    NeedsSignIn,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct Alert {
    /// The account's name (what the window opens on a click).
    pub account: String,
    pub kind: AlertKind,
    #[ts(type = "number")]
    pub deadline_ms: i64,
    /// How long before the deadline this alert is for (0: the deadline passed).
    #[ts(type = "number")]
    pub threshold_s: i64,
    pub message: String,
}

/// The deadlines of an account that a human must meet.
fn deadlines(w: &Watched) -> Vec<DateTime<Utc>> {
    let Some(meta) = &w.meta else {
        return Vec::new();
    };
    let mut out: Vec<DateTime<Utc>> = meta.human_deadline.into_iter().collect();
    if meta.renews_with == RenewsWith::Nothing {
        out.extend(meta.expires_at);
    }
    out
}

fn stages(thresholds: &[Duration]) -> Vec<i64> {
    let mut s: Vec<i64> = thresholds
        .iter()
        .map(|t| t.num_seconds())
        .filter(|t| *t > 0)
        .collect();
    s.push(0);
    s.sort_unstable();
    s.dedup();
    s
}

/// The alerts due now for one account, logged as raised.
pub(super) fn due(
    w: &Watched,
    thresholds: &[Duration],
    now: DateTime<Utc>,
    log: &dyn AlertLog,
) -> Result<Vec<Alert>> {
    let mut out = Vec::new();
    for deadline in deadlines(w) {
        let crossed: Vec<i64> = stages(thresholds)
            .into_iter()
            .filter(|t| now >= deadline - Duration::seconds(*t))
            .collect();
        let Some(&urgent) = crossed.first() else {
            continue;
        };
        if log.fired(&w.id, deadline)?.contains(&urgent) {
            continue;
        }
        log.record(&w.id, deadline, &crossed, now)?;
        out.push(Alert {
            account: w.name.clone(),
            kind: AlertKind::DeadlineSoon,
            deadline_ms: deadline.timestamp_millis(),
            threshold_s: urgent,
            message: deadline_message(w, deadline, now),
        });
    }
    if let Some(meta) = w.meta.as_ref().filter(|m| m.needs_human) {
        // One alert per token that stopped renewing: a new sign-in starts afresh.
        let key = meta.issued_at;
        if !log.fired(&w.id, key)?.contains(&NEEDS_SIGN_IN) {
            log.record(&w.id, key, &[NEEDS_SIGN_IN], now)?;
            let why = meta
                .last_error
                .clone()
                .unwrap_or_else(|| "its automatic renewal was refused".into());
            out.push(Alert {
                account: w.name.clone(),
                kind: AlertKind::NeedsSignIn,
                deadline_ms: key.timestamp_millis(),
                threshold_s: 0,
                message: format!("{} needs you to sign in again: {why}", w.label),
            });
        }
    }
    Ok(out)
}

/// The next threshold time after `now` for each deadline of the account.
pub(super) fn upcoming(
    w: &Watched,
    thresholds: &[Duration],
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    deadlines(w)
        .into_iter()
        .filter_map(|d| {
            stages(thresholds)
                .into_iter()
                .map(|t| d - Duration::seconds(t))
                .filter(|at| *at > now)
                .min()
        })
        .collect()
}

fn deadline_message(w: &Watched, deadline: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let when = deadline.format("%Y-%m-%d %H:%M UTC");
    if deadline <= now {
        format!("{}: its sign-in expired at {when}; sign in again", w.label)
    } else {
        format!(
            "{}: sign in again within {} (by {when}), or its token stops renewing",
            w.label,
            human_duration(deadline - now)
        )
    }
}

/// "6 days", "23 hours", "59 minutes", "30 seconds" (whole units, rounded down).
pub fn human_duration(d: Duration) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if d >= Duration::days(2) {
        plural(d.num_days(), "day")
    } else if d >= Duration::hours(2) {
        plural(d.num_hours(), "hour")
    } else if d >= Duration::minutes(2) {
        plural(d.num_minutes(), "minute")
    } else {
        plural(d.num_seconds().max(1), "second")
    }
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn spans_read_in_the_largest_whole_unit() {
        let cases = [
            (Duration::days(7), "7 days"),
            (Duration::hours(47), "47 hours"),
            (Duration::hours(1), "60 minutes"),
            (Duration::seconds(150), "2 minutes"),
            (Duration::seconds(90), "90 seconds"),
            (Duration::seconds(1), "1 second"),
            (Duration::zero(), "1 second"),
        ];
        for (d, words) in cases {
            assert_eq!(human_duration(d), words);
        }
    }
}
