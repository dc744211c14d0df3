//! The admin's preferences, kept in the vault so that the window, `tokenkeeper watch`
//! and every other process that alerts use the same thresholds.

use chrono::Duration;

use super::Vault;
use crate::error::{Error, Result};
use crate::model::Preferences;

const THRESHOLDS: &str = "alert_thresholds_s";
const CLIPBOARD: &str = "clipboard_clear_s";
/// The longest alert threshold: a year before the deadline.
const MAX_THRESHOLD_S: i64 = 365 * 86_400;
const MAX_THRESHOLDS: usize = 6;

impl Vault {
    /// The stored preferences, the defaults where none were set.
    pub fn preferences(&self) -> Result<Preferences> {
        let mut p = Preferences::default();
        if let Some(v) = self.database().preference(THRESHOLDS)? {
            if let Ok(t) = serde_json::from_str::<Vec<i64>>(&v) {
                p.alert_thresholds_s = t;
            }
        }
        if let Some(v) = self.database().preference(CLIPBOARD)? {
            if let Ok(s) = v.parse() {
                p.clipboard_clear_s = s;
            }
        }
        Ok(p)
    }

    /// Checks and stores the preferences; returns them as stored (thresholds sorted).
    pub fn set_preferences(&self, p: &Preferences) -> Result<Preferences> {
        let mut thresholds = p.alert_thresholds_s.clone();
        if thresholds.len() > MAX_THRESHOLDS {
            return Err(Error::usage(format!(
                "give at most {MAX_THRESHOLDS} alert thresholds"
            )));
        }
        if let Some(bad) = thresholds
            .iter()
            .find(|t| **t <= 0 || **t > MAX_THRESHOLD_S)
        {
            return Err(Error::usage(format!(
                "an alert threshold must be between 1 second and 365 days before the deadline, not {bad} s"
            )));
        }
        thresholds.sort_unstable_by(|a, b| b.cmp(a));
        thresholds.dedup();
        if !(5..=600).contains(&p.clipboard_clear_s) {
            return Err(Error::usage(format!(
                "the clipboard is cleared after 5 to 600 seconds, not {}",
                p.clipboard_clear_s
            )));
        }
        self.database().set_preferences(&[
            (
                THRESHOLDS,
                serde_json::to_string(&thresholds).unwrap_or_else(|_| "[]".into()),
            ),
            (CLIPBOARD, p.clipboard_clear_s.to_string()),
        ])?;
        Ok(Preferences {
            alert_thresholds_s: thresholds,
            ..p.clone()
        })
    }

    /// The alert thresholds as the engine takes them.
    pub fn alert_thresholds(&self) -> Result<Vec<Duration>> {
        Ok(self
            .preferences()?
            .alert_thresholds_s
            .into_iter()
            .map(Duration::seconds)
            .collect())
    }
}
