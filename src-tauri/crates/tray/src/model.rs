//! What the tray says, from the accounts' states (read from SQLite, never the
//! keyring): the worst state of all accounts for the icon, a headline, and the
//! soonest deadlines for the menu. Pure, so it is tested without a bus.

use tokenkeeper_core::model::{AccountSummary, Preferences, TokenState};

/// Human deadlines closer than this make the tray say "due soon", when the admin set
/// no alert thresholds (else the largest one decides, as the first alert does).
pub const DUE_SOON_MS: i64 = 7 * 86_400_000;

/// At most this many accounts are listed in the menu.
pub const LISTED: usize = 5;

/// The worst state of all accounts, for the icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worst {
    AllFine,
    DueSoon,
    NeedsYou,
}

/// How close a human deadline must be to count as due soon: the largest alert
/// threshold (the first alert), else a week.
pub fn due_soon_ms(preferences: &Preferences) -> i64 {
    preferences
        .alert_thresholds_s
        .iter()
        .max()
        .map_or(DUE_SOON_MS, |s| s.saturating_mul(1000))
}

/// The worst state, the headline, and up to [`LISTED`] accounts as (name, text):
/// those that need a sign-in first, then the soonest human deadlines.
pub fn summary(
    accounts: &[AccountSummary],
    now_ms: i64,
    due_soon_ms: i64,
) -> (Worst, String, Vec<(String, String)>) {
    let needs_you = accounts
        .iter()
        .filter(|a| a.state == TokenState::NeedsSignIn)
        .count();
    let due_soon = accounts
        .iter()
        .filter(|a| a.state != TokenState::NeedsSignIn)
        .filter(|a| {
            a.human_deadline_ms
                .is_some_and(|d| d - now_ms < due_soon_ms)
        })
        .count();
    let (worst, headline) = match (needs_you, due_soon) {
        (0, 0) => (Worst::AllFine, "Tokenkeeper: all fine".to_string()),
        (0, n) => (Worst::DueSoon, format!("Tokenkeeper: {n} due soon")),
        (n, _) => (Worst::NeedsYou, format!("Tokenkeeper: {n} need you")),
    };
    let mut soonest: Vec<(&AccountSummary, i64)> = accounts
        .iter()
        .filter_map(|a| a.human_deadline_ms.map(|d| (a, d)))
        .collect();
    soonest.sort_by_key(|(_, d)| *d);
    let mut lines: Vec<(String, String)> = accounts
        .iter()
        .filter(|a| a.state == TokenState::NeedsSignIn)
        .take(LISTED)
        .map(|a| (a.name.clone(), format!("{}: sign in", a.name)))
        .collect();
    for (a, d) in soonest {
        if lines.len() >= LISTED {
            break;
        }
        if a.state == TokenState::NeedsSignIn {
            continue;
        }
        let days = (d - now_ms) / 86_400_000;
        let hours = (d - now_ms) / 3_600_000;
        let left = if days >= 2 {
            format!("{days} days")
        } else {
            format!("{} h", hours.max(0))
        };
        lines.push((a.name.clone(), format!("{}: sign in within {left}", a.name)));
    }
    (worst, headline, lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenkeeper_core::model::{Method, Vendor};

    const DAY_MS: i64 = 86_400_000;

    fn account(name: &str, state: TokenState, deadline_in_days: Option<i64>) -> AccountSummary {
        AccountSummary {
            id: name.into(),
            name: name.into(),
            vendor: Vendor::Biganimal,
            vendor_name: "EDB BigAnimal".into(),
            base_url: "https://portal.example".into(),
            method: Method::DeviceCode,
            username: None,
            labels: Vec::new(),
            state,
            expires_at_ms: None,
            human_deadline_ms: deadline_in_days.map(|d| d * DAY_MS),
            renews_with: None,
            last_error: None,
            team: None,
        }
    }

    #[test]
    fn the_headline_is_the_worst_state_and_due_soon_follows_the_largest_threshold() {
        let fine = [
            account("a", TokenState::Valid, Some(20)),
            account("b", TokenState::Valid, None),
        ];
        let (worst, headline, lines) = summary(&fine, 0, 7 * DAY_MS);
        assert_eq!(worst, Worst::AllFine);
        assert_eq!(headline, "Tokenkeeper: all fine");
        assert_eq!(lines.len(), 1, "the one deadline is listed: {lines:?}");

        let (worst, headline, _) = summary(&fine, 0, 30 * DAY_MS);
        assert_eq!(
            worst,
            Worst::DueSoon,
            "a 30-day threshold makes 20 days soon"
        );
        assert_eq!(headline, "Tokenkeeper: 1 due soon");

        let mixed = [
            account("a", TokenState::Valid, Some(3)),
            account("b", TokenState::NeedsSignIn, Some(3)),
        ];
        let (worst, headline, lines) = summary(&mixed, 0, 7 * DAY_MS);
        assert_eq!(worst, Worst::NeedsYou);
        assert_eq!(headline, "Tokenkeeper: 1 need you");
        assert_eq!(lines[0], ("b".to_string(), "b: sign in".to_string()));
        assert_eq!(
            lines[1],
            ("a".to_string(), "a: sign in within 3 days".to_string())
        );
    }

    #[test]
    fn at_most_five_soonest_are_listed_and_the_last_two_days_count_in_hours() {
        let many: Vec<AccountSummary> = (0..8)
            .map(|i| account(&format!("n{i}"), TokenState::Valid, Some(8 - i)))
            .collect();
        let (_, _, lines) = summary(&many, 0, DAY_MS);
        let names: Vec<&str> = lines.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["n7", "n6", "n5", "n4", "n3"], "soonest first");
        assert_eq!(lines[0].1, "n7: sign in within 24 h");
        assert_eq!(lines[2].1, "n5: sign in within 3 days");
        // Past the deadline (the state not yet caught up): 0 h, never negative.
        let late = [account("late", TokenState::Valid, Some(-1))];
        assert_eq!(summary(&late, 0, DAY_MS).2[0].1, "late: sign in within 0 h");
    }

    #[test]
    fn due_soon_is_the_largest_threshold_or_a_week() {
        let mut p = Preferences {
            alert_thresholds_s: vec![3600, 30 * 86_400, 86_400],
            ..Preferences::default()
        };
        assert_eq!(due_soon_ms(&p), 30 * DAY_MS);
        p.alert_thresholds_s.clear();
        assert_eq!(due_soon_ms(&p), 7 * DAY_MS);
    }
}
