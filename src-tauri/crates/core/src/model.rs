//! The vault's vocabulary: accounts, the token in use and its deadlines, events.
//! Nothing here holds a secret; secrets live in `secret.rs` and the keyring.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::{Error, Result};

/// The platforms Tokenkeeper signs in to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    Bigid,
    Bigfix,
    Biganimal,
    Immuta,
    Truesight,
    Oidc,
    Openbao,
}

impl Vendor {
    pub const ALL: [Vendor; 7] = [
        Vendor::Bigid,
        Vendor::Bigfix,
        Vendor::Biganimal,
        Vendor::Immuta,
        Vendor::Truesight,
        Vendor::Oidc,
        Vendor::Openbao,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Vendor::Bigid => "bigid",
            Vendor::Bigfix => "bigfix",
            Vendor::Biganimal => "biganimal",
            Vendor::Immuta => "immuta",
            Vendor::Truesight => "truesight",
            Vendor::Oidc => "oidc",
            Vendor::Openbao => "openbao",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Vendor::Bigid => "BigID",
            Vendor::Bigfix => "HCL BigFix",
            Vendor::Biganimal => "EDB BigAnimal",
            Vendor::Immuta => "Immuta",
            Vendor::Truesight => "BMC TrueSight",
            Vendor::Oidc => "OAuth 2.0 / OIDC",
            Vendor::Openbao => "OpenBao / Vault",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Vendor::ALL
            .into_iter()
            .find(|v| v.id() == s)
            .ok_or_else(|| {
                Error::usage(format!(
                    "unknown vendor '{s}': use one of {}",
                    Vendor::ALL.map(Vendor::id).join(", ")
                ))
            })
    }
}

/// How an account signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Password,
    UserToken,
    ApiKey,
    DeviceCode,
}

impl Method {
    pub const ALL: [Method; 4] = [
        Method::Password,
        Method::UserToken,
        Method::ApiKey,
        Method::DeviceCode,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::UserToken => "user-token",
            Method::ApiKey => "api-key",
            Method::DeviceCode => "device-code",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Method::ALL
            .into_iter()
            .find(|m| m.id() == s)
            .ok_or_else(|| {
                Error::usage(format!(
                    "unknown sign-in method '{s}': use one of {}",
                    Method::ALL.map(Method::id).join(", ")
                ))
            })
    }
}

/// One sign-in at one vendor instance, without secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub vendor: Vendor,
    pub base_url: String,
    pub method: Method,
    pub username: Option<String>,
    pub tenant: Option<String>,
    pub iam_id: Option<String>,
    pub client_id: Option<String>,
    /// A PEM bundle the account trusts in addition to the system's roots.
    pub ca_cert_pem: Option<String>,
    pub labels: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Vendor-specific, non-secret settings (an OIDC scope, a BigFix token duration,
    /// a pinned certificate), keyed by `FieldKey::id`.
    pub settings: BTreeMap<String, String>,
    /// The team store the account is shared in (its secrets and renewal lease are
    /// there), or `None` for an account of this vault alone (secrets in the keyring).
    pub team: Option<String>,
}

impl Account {
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .get(key)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

/// What renews the token in use without a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum RenewsWith {
    StoredPassword,
    StoredApiKey,
    StoredUserToken,
    RefreshToken,
    /// Nothing: a human must act when it expires.
    Nothing,
}

impl RenewsWith {
    pub fn id(self) -> &'static str {
        match self {
            RenewsWith::StoredPassword => "stored-password",
            RenewsWith::StoredApiKey => "stored-api-key",
            RenewsWith::StoredUserToken => "stored-user-token",
            RenewsWith::RefreshToken => "refresh-token",
            RenewsWith::Nothing => "nothing",
        }
    }
    pub fn parse(s: &str) -> Self {
        [
            RenewsWith::StoredPassword,
            RenewsWith::StoredApiKey,
            RenewsWith::StoredUserToken,
            RenewsWith::RefreshToken,
        ]
        .into_iter()
        .find(|r| r.id() == s)
        .unwrap_or(RenewsWith::Nothing)
    }
}

/// The non-secret facts about the token in use; the token itself is in the keyring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMeta {
    pub issued_at: DateTime<Utc>,
    /// `None`: the vendor gives no expiry (renewed when it answers 401).
    pub expires_at: Option<DateTime<Utc>>,
    pub renews_with: RenewsWith,
    /// When a human must act (a refresh token's or a user token's own expiry).
    pub human_deadline: Option<DateTime<Utc>>,
    /// The last automatic renewal was refused: only a human can fix it.
    pub needs_human: bool,
    pub last_error: Option<String>,
    /// The vendor's own handle on the token, where it has one (a BigFix token's id
    /// and name, as JSON); never the token itself.
    pub vendor_ref: Option<String>,
}

/// Bounds on the renewal window: a share of the token's lifetime, within limits.
const RENEW_SHARE: f64 = 0.2;
const RENEW_WINDOW_MIN: i64 = 30;
const RENEW_WINDOW_MAX: i64 = 60 * 60;

/// The longest lifetime believed: a vendor's "year 9999" or 1e13 seconds is taken as
/// ten years (what BigFix's longest token lasts), so no date arithmetic overflows.
pub const MAX_LIFETIME: Duration = Duration::days(3660);

/// The least time between an account's renewals after a success, whatever the vendor
/// says of its token's lifetime (zero, one second, already past, or a clock that
/// disagrees): 30 s, or `TOKENKEEPER_MIN_RENEWAL_INTERVAL` seconds (at least 1; the
/// tests' six-second tokens set it low). No vendor documents a shorter-lived token.
pub fn min_renewal_interval() -> Duration {
    static FLOOR: std::sync::LazyLock<Duration> = std::sync::LazyLock::new(|| {
        let secs = std::env::var("TOKENKEEPER_MIN_RENEWAL_INTERVAL")
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(30)
            .clamp(1, 3600);
        Duration::seconds(secs)
    });
    *FLOOR
}

/// `now` plus a vendor's count of seconds, whatever the number: zero or less is
/// `now`, more than `MAX_LIFETIME` is that. Never overflows, never panics.
pub fn seconds_after(now: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    let s = seconds.clamp(0, MAX_LIFETIME.num_seconds());
    now.checked_add_signed(Duration::seconds(s)).unwrap_or(now)
}

/// A span for the admin: "0 s", "45 s", "3 min", "2 h", "5 days", "already past".
fn span(d: Duration) -> String {
    let s = d.num_seconds();
    match s {
        i64::MIN..=-1 => "a time already past".to_string(),
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

impl TokenMeta {
    /// A token just issued at `now`, with no human deadline and no error.
    pub fn issued(
        now: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        renews_with: RenewsWith,
    ) -> Self {
        Self {
            issued_at: now,
            expires_at,
            renews_with,
            human_deadline: None,
            needs_human: false,
            last_error: None,
            vendor_ref: None,
        }
    }

    /// Bounds a vendor's lifetime: at least twice the renewal floor (so that a token
    /// said to expire at once, or in the past, is renewed every floor and no more
    /// often), at most `MAX_LIFETIME`. Says what was changed, for the history.
    pub fn clamp_lifetime(&mut self, floor: Duration) -> Option<String> {
        let expires = self.expires_at?;
        let lifetime = expires - self.issued_at;
        let least = floor * 2;
        if lifetime < least {
            self.expires_at = Some(self.issued_at + least);
            Some(format!(
                "the vendor said this token expires after {}; Tokenkeeper treats it as lasting {} \
                 and renews it at most every {} (if tokens keep failing early, check the clocks)",
                span(lifetime),
                span(least),
                span(floor)
            ))
        } else if lifetime > MAX_LIFETIME {
            self.expires_at = self.issued_at.checked_add_signed(MAX_LIFETIME);
            Some(format!(
                "the vendor said this token expires after {}; Tokenkeeper treats it as lasting {}",
                span(lifetime),
                span(MAX_LIFETIME)
            ))
        } else {
            None
        }
    }

    /// From when the token should be renewed: a fifth of its lifetime before it
    /// expires, at least 30 s and at most an hour, and never more than half its
    /// lifetime (so a short-lived token is not renewed on every use).
    pub fn renew_at(&self) -> Option<DateTime<Utc>> {
        let expires = self.expires_at?;
        let lifetime = (expires - self.issued_at).num_milliseconds().max(0);
        let window = ((lifetime as f64 * RENEW_SHARE) as i64)
            .clamp(RENEW_WINDOW_MIN * 1000, RENEW_WINDOW_MAX * 1000)
            .min(lifetime / 2);
        Some(expires - Duration::milliseconds(window))
    }

    pub fn state(&self, now: DateTime<Utc>) -> TokenState {
        if self.needs_human {
            return TokenState::NeedsSignIn;
        }
        if self.human_deadline.is_some_and(|d| d <= now) {
            return TokenState::NeedsSignIn;
        }
        let Some(expires) = self.expires_at else {
            return TokenState::Valid;
        };
        if expires <= now {
            if self.renews_with == RenewsWith::Nothing {
                TokenState::NeedsSignIn
            } else {
                TokenState::Expired
            }
        } else if self.renew_at().is_some_and(|r| r <= now) {
            TokenState::RenewSoon
        } else {
            TokenState::Valid
        }
    }
}

/// An account's state as the list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum TokenState {
    /// A token is in use and not yet due for renewal.
    Valid,
    /// Inside the renewal window: the next use renews it.
    RenewSoon,
    /// Expired, and Tokenkeeper can renew it without a human.
    Expired,
    /// A human must sign in: never signed in, refused, or past the human deadline.
    NeedsSignIn,
}

/// One line of the account list: what the CLI's `list` and the window show. No secrets.
#[derive(Debug, Clone, Serialize, TS)]
pub struct AccountSummary {
    pub id: String,
    pub name: String,
    pub vendor: Vendor,
    pub vendor_name: String,
    pub base_url: String,
    pub method: Method,
    pub username: Option<String>,
    pub labels: Vec<String>,
    pub state: TokenState,
    /// Unix milliseconds; `None` when never signed in or the vendor gives no expiry.
    #[ts(type = "number | null")]
    pub expires_at_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub human_deadline_ms: Option<i64>,
    pub renews_with: Option<RenewsWith>,
    pub last_error: Option<String>,
    /// The team store the account is shared in; `None` for this vault's own.
    pub team: Option<String>,
}

/// What happened to an account, for its history. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct Event {
    #[ts(type = "number")]
    pub at_ms: i64,
    pub kind: EventKind,
    pub outcome: Outcome,
    pub detail: String,
}

/// What an entry of an account's history is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// The account was added (signed in or not).
    Added,
    /// A sign-in that worked and stored a token.
    SignedIn,
    /// A sign-in under way or that did not work.
    SignIn,
    Renewed,
    /// A renewal that did not work.
    Renewal,
    /// The vendor was asked whether the token still works.
    Check,
    /// A BigFix token made, changed or revoked through its API.
    Created,
    Updated,
    Revoke,
    Edited,
    /// A desktop alert about a deadline.
    Alert,
}

/// How a history entry ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Ok,
    Started,
    Cancelled,
    /// The vendor no longer accepts the token.
    Invalid,
    Failed,
    /// The vendor refused the credentials: a human must sign in.
    Refused,
    /// An alert was shown.
    Raised,
    /// Done, but the account needs the admin's sign-in before it renews again.
    NeedsSignIn,
}

impl EventKind {
    pub const ALL: [EventKind; 11] = [
        EventKind::Added,
        EventKind::SignedIn,
        EventKind::SignIn,
        EventKind::Renewed,
        EventKind::Renewal,
        EventKind::Check,
        EventKind::Created,
        EventKind::Updated,
        EventKind::Revoke,
        EventKind::Edited,
        EventKind::Alert,
    ];

    /// Its text in the database, the CLI and IPC.
    pub fn id(self) -> &'static str {
        match self {
            EventKind::Added => "added",
            EventKind::SignedIn => "signed-in",
            EventKind::SignIn => "sign-in",
            EventKind::Renewed => "renewed",
            EventKind::Renewal => "renewal",
            EventKind::Check => "check",
            EventKind::Created => "created",
            EventKind::Updated => "updated",
            EventKind::Revoke => "revoke",
            EventKind::Edited => "edited",
            EventKind::Alert => "alert",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.id() == s)
    }
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Ok,
        Outcome::Started,
        Outcome::Cancelled,
        Outcome::Invalid,
        Outcome::Failed,
        Outcome::Refused,
        Outcome::Raised,
        Outcome::NeedsSignIn,
    ];

    /// Its text in the database, the CLI and IPC.
    pub fn id(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Started => "started",
            Outcome::Cancelled => "cancelled",
            Outcome::Invalid => "invalid",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
            Outcome::Raised => "raised",
            Outcome::NeedsSignIn => "needs-sign-in",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            // Written so by versions before the outcome was typed.
            "needs sign-in" => Some(Outcome::NeedsSignIn),
            _ => Self::ALL.into_iter().find(|o| o.id() == s),
        }
    }
}

/// A history entry before it is recorded: what happened, how it ended, and the words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub kind: EventKind,
    pub outcome: Outcome,
    pub detail: String,
}

/// An account with its token facts and recent history, for `show` and the details pane.
#[derive(Debug, Clone, Serialize, TS)]
pub struct AccountDetail {
    pub summary: AccountSummary,
    pub tenant: Option<String>,
    pub iam_id: Option<String>,
    pub client_id: Option<String>,
    pub trusts_custom_ca: bool,
    /// The vendor's other settings (scope, token lifetime, pinned certificate).
    pub settings: BTreeMap<String, String>,
    #[ts(type = "number")]
    pub created_at_ms: i64,
    #[ts(type = "number | null")]
    pub issued_at_ms: Option<i64>,
    #[ts(type = "number | null")]
    pub renew_at_ms: Option<i64>,
    pub events: Vec<Event>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn meta(lifetime_s: i64) -> TokenMeta {
        let issued = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        TokenMeta::issued(
            issued,
            Some(issued + Duration::seconds(lifetime_s)),
            RenewsWith::StoredPassword,
        )
    }

    #[test]
    fn renewal_window_is_a_bounded_share_of_the_lifetime() {
        let m = meta(3600);
        assert_eq!(
            m.renew_at().unwrap(),
            m.expires_at.unwrap() - Duration::seconds(720)
        );
        let minute = meta(100);
        assert_eq!(
            minute.renew_at().unwrap(),
            minute.expires_at.unwrap() - Duration::seconds(30)
        );
        let short = meta(10);
        assert_eq!(
            short.renew_at().unwrap(),
            short.expires_at.unwrap() - Duration::seconds(5),
            "at most half the lifetime"
        );
        let long = meta(86400 * 30);
        assert_eq!(
            long.renew_at().unwrap(),
            long.expires_at.unwrap() - Duration::seconds(3600)
        );
    }

    #[test]
    fn state_follows_the_clock() {
        let m = meta(3600);
        let t0 = m.issued_at;
        assert_eq!(m.state(t0), TokenState::Valid);
        assert_eq!(m.state(t0 + Duration::seconds(3000)), TokenState::RenewSoon);
        assert_eq!(m.state(t0 + Duration::seconds(3600)), TokenState::Expired);
        let mut dead = m.clone();
        dead.renews_with = RenewsWith::Nothing;
        assert_eq!(
            dead.state(t0 + Duration::seconds(4000)),
            TokenState::NeedsSignIn
        );
        let mut refused = m;
        refused.needs_human = true;
        assert_eq!(refused.state(t0), TokenState::NeedsSignIn);
    }

    #[test]
    fn event_kinds_and_outcomes_read_back_as_serde_writes_them() {
        for k in EventKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.id());
            assert_eq!(EventKind::parse(k.id()), Some(k));
        }
        for o in Outcome::ALL {
            assert_eq!(serde_json::to_value(o).unwrap(), o.id());
            assert_eq!(Outcome::parse(o.id()), Some(o));
        }
        assert_eq!(EventKind::parse("renewed-by-a-newer-version"), None);
    }

    #[test]
    fn vendor_and_method_ids_round_trip() {
        for v in Vendor::ALL {
            assert_eq!(Vendor::parse(v.id()).unwrap(), v);
        }
        for m in Method::ALL {
            assert_eq!(Method::parse(m.id()).unwrap(), m);
        }
        assert!(Vendor::parse("okta")
            .unwrap_err()
            .message()
            .contains("truesight"));
    }
}

/// The admin's preferences, set in the window's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Preferences {
    /// Alert this many seconds before each human deadline (largest first).
    #[ts(type = "Array<number>")]
    pub alert_thresholds_s: Vec<i64>,
    /// A copied token is cleared from the clipboard after this many seconds.
    pub clipboard_clear_s: u32,
    /// Start in the tray at login (the desktop's autostart entry, not the vault's).
    pub start_at_login: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            alert_thresholds_s: vec![7 * 86_400, 86_400, 3_600],
            clipboard_clear_s: 30,
            start_at_login: false,
        }
    }
}
