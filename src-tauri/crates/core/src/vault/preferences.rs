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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_are_checked_sorted_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, _keyring) = crate::vault::fixtures::open(dir.path());
        assert_eq!(vault.preferences().unwrap(), Preferences::default());
        let saved = vault
            .set_preferences(&Preferences {
                alert_thresholds_s: vec![3600, 172_800, 3600],
                clipboard_clear_s: 12,
                start_at_login: false,
            })
            .unwrap();
        assert_eq!(saved.alert_thresholds_s, vec![172_800, 3600]);
        assert_eq!(vault.preferences().unwrap().clipboard_clear_s, 12);
        assert_eq!(
            vault.alert_thresholds().unwrap(),
            vec![Duration::days(2), Duration::hours(1)]
        );
        for bad in [
            Preferences {
                alert_thresholds_s: vec![0],
                ..Preferences::default()
            },
            Preferences {
                alert_thresholds_s: vec![400 * 86_400],
                ..Preferences::default()
            },
            Preferences {
                alert_thresholds_s: vec![1, 2, 3, 4, 5, 6, 7],
                ..Preferences::default()
            },
            Preferences {
                clipboard_clear_s: 4,
                ..Preferences::default()
            },
        ] {
            assert!(vault.set_preferences(&bad).is_err(), "{bad:?}");
        }
        // A refused change leaves what was stored.
        assert_eq!(
            vault.preferences().unwrap().alert_thresholds_s,
            vec![172_800, 3600]
        );
    }
}
