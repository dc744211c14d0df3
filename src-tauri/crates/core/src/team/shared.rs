//! A shared account as the team store keeps it: its settings as one KV entry, and
//! its secrets with the facts of the token in use as another, so one check-and-set
//! write replaces the refresh token, the access token and its expiry together.

use chrono::{DateTime, TimeZone, Utc};

use super::kv::Fields;
use crate::error::{Error, Result};
use crate::model::{Account, Method, RenewsWith, TokenMeta, Vendor};
use crate::secret::{Secret, SecretBundle, SecretKind};

/// The key (under an account's folder) of its settings.
pub const ACCOUNT_KEY: &str = "account";

const ISSUED_AT: &str = "tokenkeeper_issued_at";
const EXPIRES_AT: &str = "tokenkeeper_expires_at";
const RENEWS_WITH: &str = "tokenkeeper_renews_with";
const HUMAN_DEADLINE: &str = "tokenkeeper_human_deadline";
const VENDOR_REF: &str = "tokenkeeper_vendor_ref";

/// The facts of the token in use, as fields of the secrets entry (and of its copy
/// for readers).
const TOKEN_FACTS: [&str; 5] = [
    ISSUED_AT,
    EXPIRES_AT,
    RENEWS_WITH,
    HUMAN_DEADLINE,
    VENDOR_REF,
];

/// The field of the secrets entry (and its copy) that holds the fence of the lease
/// they were written under.
pub const FENCE_FIELD: &str = "tokenkeeper_fence";

/// Whether a field is one of Tokenkeeper's bookkeeping fields, not a secret.
pub fn is_bookkeeping(key: &str) -> bool {
    key == FENCE_FIELD || TOKEN_FACTS.contains(&key)
}

fn text(value: impl Into<String>) -> Secret {
    Secret::new(value.into())
}

/// The account's settings entry (nothing secret in it).
pub fn account_fields(a: &Account) -> Fields {
    let mut f = Fields::default()
        .with("name", text(&a.name))
        .with("vendor", text(a.vendor.id()))
        .with("base_url", text(&a.base_url))
        .with("method", text(a.method.id()))
        .with(
            "labels",
            text(serde_json::to_string(&a.labels).unwrap_or_else(|_| "[]".into())),
        )
        .with(
            "settings",
            text(serde_json::to_string(&a.settings).unwrap_or_else(|_| "{}".into())),
        )
        .with(
            "created_at",
            text(a.created_at.timestamp_millis().to_string()),
        );
    for (key, value) in [
        ("username", &a.username),
        ("tenant", &a.tenant),
        ("iam_id", &a.iam_id),
        ("client_id", &a.client_id),
        ("ca_cert_pem", &a.ca_cert_pem),
    ] {
        if let Some(v) = value {
            f.set(key, text(v));
        }
    }
    f
}

/// The account an entry describes, as shared in `team` under `id`.
pub fn account_from(id: &str, team: &str, f: &Fields) -> Result<Account> {
    let bad = |what: &str| {
        Error::vault(format!(
            "the shared account {id} in team '{team}' has no valid {what}: it was not written \
             by Tokenkeeper, or by a newer one; it was left alone"
        ))
    };
    let field = |key: &str| f.text(key).map(str::to_string);
    Ok(Account {
        id: id.to_string(),
        name: field("name").ok_or_else(|| bad("name"))?,
        vendor: Vendor::parse(f.text("vendor").unwrap_or_default()).map_err(|_| bad("vendor"))?,
        base_url: field("base_url").ok_or_else(|| bad("address"))?,
        method: Method::parse(f.text("method").unwrap_or_default()).map_err(|_| bad("method"))?,
        username: field("username"),
        tenant: field("tenant"),
        iam_id: field("iam_id"),
        client_id: field("client_id"),
        ca_cert_pem: field("ca_cert_pem"),
        labels: f
            .text("labels")
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_default(),
        created_at: f
            .text("created_at")
            .and_then(|t| t.parse().ok())
            .and_then(from_ms)
            .unwrap_or_else(Utc::now),
        settings: f
            .text("settings")
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default(),
        team: Some(team.to_string()),
    })
}

/// The secrets entry: every secret of the bundle, and the facts of the token in use.
/// The fence is added by the lease's write.
pub fn secrets_fields(bundle: &SecretBundle, meta: Option<&TokenMeta>) -> Fields {
    let mut f = Fields::default();
    for kind in SecretKind::ALL {
        if let Some(s) = bundle.get(kind) {
            f.set(kind.key(), s.clone());
        }
    }
    if let Some(m) = meta {
        f.set(ISSUED_AT, text(m.issued_at.timestamp_millis().to_string()));
        f.set(RENEWS_WITH, text(m.renews_with.id()));
        if let Some(e) = m.expires_at {
            f.set(EXPIRES_AT, text(e.timestamp_millis().to_string()));
        }
        if let Some(h) = m.human_deadline {
            f.set(HUMAN_DEADLINE, text(h.timestamp_millis().to_string()));
        }
        if let Some(r) = &m.vendor_ref {
            f.set(VENDOR_REF, text(r));
        }
    }
    f
}

/// The bundle a secrets entry holds (its own fields only).
pub fn bundle_from(f: &Fields) -> SecretBundle {
    let mut bundle = SecretBundle::default();
    for kind in SecretKind::ALL {
        if let Some(s) = f.get(kind.key()) {
            bundle.set(kind, s.clone());
        }
    }
    bundle
}

/// The facts of the token in use a secrets entry records, if it records any.
pub fn meta_from(f: &Fields) -> Option<TokenMeta> {
    let ms = |key: &str| {
        f.text(key)
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(from_ms)
    };
    let issued_at = ms(ISSUED_AT)?;
    let mut meta = TokenMeta::issued(
        issued_at,
        ms(EXPIRES_AT),
        RenewsWith::parse(f.text(RENEWS_WITH).unwrap_or_default()),
    );
    meta.human_deadline = ms(HUMAN_DEADLINE);
    meta.vendor_ref = f.text(VENDOR_REF).map(str::to_string);
    // Bounded as a vendor's lifetime is: a zero or past one renews at the floor, not
    // in a loop; an absurd one lasts at most `MAX_LIFETIME`.
    meta.clamp_lifetime(crate::model::min_renewal_interval());
    Some(meta)
}

/// The token facts of `f` carried over into `into` (a write of rotated secrets keeps
/// the facts of the token in use, which did not change).
pub fn carry_meta(from: &Fields, into: &mut Fields) {
    for key in TOKEN_FACTS {
        if let (None, Some(v)) = (into.get(key), from.get(key)) {
            into.set(key, v.clone());
        }
    }
}

/// A time written in the team store, believed only between 2000 and 9999 (an entry
/// another writer damaged must not overflow the renewal's date arithmetic).
fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    const YEAR_2000_MS: i64 = 946_684_800_000;
    const YEAR_9999_END_MS: i64 = 253_402_300_799_999;
    if !(YEAR_2000_MS..=YEAR_9999_END_MS).contains(&ms) {
        return None;
    }
    Utc.timestamp_millis_opt(ms).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_and_its_secrets_round_trip_through_their_entries() {
        let now = Utc.timestamp_millis_opt(1_800_000_000_123).unwrap();
        let account = Account {
            id: "id-1".into(),
            name: "ba".into(),
            vendor: Vendor::Biganimal,
            base_url: "https://portal.example".into(),
            method: Method::DeviceCode,
            username: None,
            tenant: Some("t".into()),
            iam_id: None,
            client_id: Some("c".into()),
            ca_cert_pem: None,
            labels: vec!["prod".into()],
            created_at: now,
            settings: [("scope".to_string(), "openid".to_string())].into(),
            team: Some("ops".into()),
        };
        assert_eq!(
            account_from("id-1", "ops", &account_fields(&account)).unwrap(),
            account
        );
        let bundle = SecretBundle::default()
            .with(SecretKind::RefreshToken, Secret::new("rt-1"))
            .with(SecretKind::AccessToken, Secret::new("at-1"));
        let mut meta = TokenMeta::issued(
            now,
            Some(now + chrono::Duration::seconds(60)),
            RenewsWith::RefreshToken,
        );
        meta.human_deadline = Some(now + chrono::Duration::days(30));
        let f = secrets_fields(&bundle, Some(&meta));
        assert_eq!(bundle_from(&f), bundle);
        assert_eq!(meta_from(&f), Some(meta));
        assert!(f.names().filter(|n| is_bookkeeping(n)).count() >= 3);
        assert_eq!(meta_from(&secrets_fields(&bundle, None)), None);
    }

    #[test]
    fn absurd_times_in_an_entry_are_not_believed_and_lifetimes_are_bounded() {
        let bundle = SecretBundle::default();
        let far = Fields::default()
            .with(ISSUED_AT, Secret::new(i64::MAX.to_string()))
            .with(EXPIRES_AT, Secret::new(i64::MAX.to_string()));
        assert_eq!(meta_from(&far), None);
        let now = Utc::now();
        let zero = TokenMeta::issued(now, Some(now), RenewsWith::RefreshToken);
        let read = meta_from(&secrets_fields(&bundle, Some(&zero))).unwrap();
        assert!(read.expires_at.unwrap() > read.issued_at, "{read:?}");
        let mut long = zero.clone();
        long.expires_at = Some(now + chrono::Duration::days(365 * 5000));
        let read = meta_from(&secrets_fields(&bundle, Some(&long))).unwrap();
        assert!(read.expires_at.unwrap() - read.issued_at <= crate::model::MAX_LIFETIME);
    }

    #[test]
    fn an_entry_not_written_by_tokenkeeper_is_refused_by_name() {
        let e = account_from("x", "ops", &Fields::default()).unwrap_err();
        assert!(e.message().contains("left alone"), "{e}");
    }
}
