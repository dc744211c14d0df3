//! HCL BigFix (11.0.6+): long-lived bearer tokens created, listed, renamed, extended
//! and revoked through `/api/token*` with the operator's HTTP Basic credentials.
//! Tokenkeeper creates the account's token itself and "renews" it by rotation: a new
//! token, stored first, then the old one revoked. Quirks: `Expiration` is documented
//! in milliseconds but arrives in microseconds too (parsed by magnitude); list
//! answers say `tokens` or `Tokens`.

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use reqwest::{Method as HttpMethod, StatusCode};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::{required, Call, Issued, VendorFlow};
use crate::error::{Error, Result};
use crate::fields::{Field, FieldKey, MethodSpec};
use crate::http::{self, Answer};
use crate::model::{EventKind, Method, Note, Outcome, RenewsWith, TokenMeta, Vendor};
use crate::secret::{quote_vendor, Secret, SecretBundle, SecretKind};

/// The vendor's default lifetime for a token, in days.
pub const DEFAULT_DURATION_DAYS: u32 = 30;
/// The longest lifetime Tokenkeeper asks for (BigFix sets no documented maximum).
const MAX_DURATION_DAYS: u32 = 3650;

#[derive(Debug)]
pub struct BigFix;

const METHODS: &[MethodSpec] = &[MethodSpec {
    method: Method::Password,
    fields: &[
        Field {
            key: FieldKey::Username,
            label: "Operator",
            required: true,
            help: "The BigFix operator whose tokens Tokenkeeper creates and rotates",
            default: None,
        },
        Field {
            key: FieldKey::TokenDuration,
            label: "Token lifetime (days)",
            required: false,
            help: "0 creates a token that never expires",
            default: Some("30"),
        },
        Field {
            key: FieldKey::TokenName,
            label: "Token name prefix",
            required: false,
            help: "Tokens are named <prefix>-<date>; the default is tokenkeeper-<account>",
            default: None,
        },
    ],
    secret: Some(SecretKind::Password),
}];

/// One token as the server lists it. Never carries the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
pub struct BigFixToken {
    #[ts(type = "number")]
    pub id: u64,
    pub name: String,
    /// Unix milliseconds; `None` for a token that never expires.
    #[ts(type = "number | null")]
    pub expires_at_ms: Option<i64>,
    #[ts(type = "number")]
    pub user: u64,
    /// The token this account uses (set by the vault).
    pub tracked: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TokenRecord {
    id: u64,
    name: String,
    #[serde(default)]
    expiration: Option<i64>,
    #[serde(default)]
    user: Option<u64>,
    /// Only the create call returns the token itself.
    #[serde(default)]
    token: Option<String>,
}

impl TokenRecord {
    fn public(&self) -> BigFixToken {
        BigFixToken {
            id: self.id,
            name: self.name.clone(),
            expires_at_ms: self
                .expiration
                .and_then(expiration)
                .map(|t| t.timestamp_millis()),
            user: self.user.unwrap_or_default(),
            tracked: false,
        }
    }
}

#[derive(Deserialize)]
struct TokenList {
    #[serde(alias = "Tokens")]
    tokens: Vec<TokenRecord>,
}

/// The tracked token's handle, kept in the token's `vendor_ref`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenRef {
    pub id: u64,
    pub name: String,
}

impl TokenRef {
    pub fn of(meta: Option<&TokenMeta>) -> Option<Self> {
        meta.and_then(|m| m.vendor_ref.as_deref())
            .and_then(|r| serde_json::from_str(r).ok())
    }
}

/// `Expiration` by magnitude: 0 is "never", then seconds, milliseconds (as
/// documented) or microseconds (as the documentation's own sample is).
pub fn expiration(value: i64) -> Option<DateTime<Utc>> {
    if value <= 0 {
        return None;
    }
    let ms = if value >= 100_000_000_000_000 {
        value / 1000
    } else if value >= 100_000_000_000 {
        value
    } else {
        value * 1000
    };
    Utc.timestamp_millis_opt(ms).single()
}

/// Checks a lifetime in days as the admin typed it.
pub fn parse_duration(text: &str) -> Result<u32> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|d| *d <= MAX_DURATION_DAYS)
        .ok_or_else(|| {
            Error::usage(format!(
                "'{text}' is not a token lifetime: give whole days from 0 (never expires) to {MAX_DURATION_DAYS}"
            ))
        })
}

/// The token-management calls of one account, made with the operator's Basic credentials.
pub struct Inventory<'a> {
    call: &'a Call<'a>,
    password: &'a Secret,
    secrets: &'a SecretBundle,
}

impl std::fmt::Debug for Inventory<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inventory")
            .field("account", &self.call.name())
            .finish_non_exhaustive()
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl<'a> Inventory<'a> {
    pub fn new(call: &'a Call<'a>, secrets: &'a SecretBundle) -> Result<Self> {
        let password = required(call, secrets, SecretKind::Password)?;
        Ok(Self {
            call,
            password,
            secrets,
        })
    }

    async fn send(&self, method: HttpMethod, path_and_query: &str) -> Result<Answer> {
        let url = format!("{}{path_and_query}", self.call.account.base_url);
        let path = path_and_query.split('?').next().unwrap_or_default();
        let endpoint = format!("BigFix at {}{path}", self.call.account.base_url);
        let request = self.call.http.request(method, &url).basic_auth(
            self.call.account.username.as_deref().unwrap_or_default(),
            Some(self.password.expose()),
        );
        let answer = http::send(request, &endpoint).await?;
        if answer.status.is_success() {
            Ok(answer)
        } else {
            Err(self.failure(&answer))
        }
    }

    fn failure(&self, answer: &Answer) -> Error {
        let name = self.call.name();
        let user = self.call.account.username.as_deref().unwrap_or("?");
        // A server that echoes the request may quote the Basic credential too.
        let basic = Secret::new(
            base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", self.password.expose())),
        );
        let text = if answer.is_html() {
            String::new()
        } else {
            quote_vendor(
                &String::from_utf8_lossy(&answer.body),
                self.secrets.secrets().chain([&basic]),
                200,
            )
        };
        let said = if text.is_empty() {
            String::new()
        } else {
            format!(": \"{text}\"")
        };
        match answer.status {
            StatusCode::UNAUTHORIZED => Error::refused(format!(
                "BigFix rejected operator '{user}' of account '{name}' (HTTP 401{said}). If the password \
                 changed, sign in again with the new one"
            ))
            .with_remedy(crate::error::Remedy::sign_in(name, true)),
            StatusCode::FORBIDDEN => Error::refused(format!(
                "BigFix operator '{user}' of account '{name}' may not do that (HTTP 403{said}); \
                 other operators' tokens need a master operator"
            )),
            StatusCode::NOT_FOUND => Error::usage(format!(
                "{} has no such token (HTTP 404{said}): `tokenkeeper bigfix tokens {name}` lists them",
                answer.endpoint
            )),
            StatusCode::BAD_REQUEST => Error::usage(format!(
                "{} refused the request (HTTP 400{said}); a token name must be unique",
                answer.endpoint
            )),
            _ => answer.unexpected(),
        }
    }

    /// The operator's own tokens, or (master operators) another operator's.
    pub async fn list(&self, user: Option<u64>) -> Result<Vec<BigFixToken>> {
        let path = match user {
            Some(u) => format!("/api/tokens/user/{u}"),
            None => "/api/tokens".to_string(),
        };
        let answer = self.send(HttpMethod::GET, &path).await?;
        let list: TokenList = answer.json()?;
        Ok(list.tokens.iter().map(TokenRecord::public).collect())
    }

    pub async fn by_name(&self, token_name: &str) -> Result<BigFixToken> {
        let answer = self
            .send(
                HttpMethod::GET,
                &format!("/api/token/name/{}", encode(token_name)),
            )
            .await?;
        Ok(answer.json::<TokenRecord>()?.public())
    }

    pub async fn by_id(&self, id: u64) -> Result<BigFixToken> {
        let answer = self
            .send(HttpMethod::GET, &format!("/api/token/id/{id}"))
            .await?;
        Ok(answer.json::<TokenRecord>()?.public())
    }

    /// Creates a token; the answer is the only time BigFix shows the token itself.
    pub async fn create(&self, token_name: &str, days: u32) -> Result<(Secret, BigFixToken)> {
        let answer = self
            .send(
                HttpMethod::POST,
                &format!("/api/token?name={}&duration={days}", encode(token_name)),
            )
            .await?;
        let mut record: TokenRecord = answer.json()?;
        let token = record.token.take().filter(|t| !t.is_empty()).ok_or_else(|| {
            Error::vendor(format!(
                "{} created token '{token_name}' but did not return it; revoke it in BigFix and try again",
                answer.endpoint
            ))
        })?;
        Ok((Secret::new(token), record.public()))
    }

    /// Renames a token and/or restarts its lifetime.
    pub async fn update(&self, id: u64, new_name: Option<&str>, days: Option<u32>) -> Result<()> {
        let mut query = Vec::new();
        if let Some(n) = new_name {
            query.push(format!("name={}", encode(n)));
        }
        if let Some(d) = days {
            query.push(format!("duration={d}"));
        }
        if query.is_empty() {
            return Err(Error::usage("give a new name, a new duration, or both"));
        }
        self.send(
            HttpMethod::PUT,
            &format!("/api/token/{id}?{}", query.join("&")),
        )
        .await?;
        Ok(())
    }

    pub async fn revoke(&self, id: u64) -> Result<()> {
        self.send(HttpMethod::DELETE, &format!("/api/token/{id}"))
            .await?;
        Ok(())
    }
}

impl BigFix {
    fn next_name(call: &Call<'_>) -> String {
        let prefix = call
            .account
            .setting(FieldKey::TokenName.id())
            .map(str::to_string)
            .unwrap_or_else(|| format!("tokenkeeper-{}", call.name()));
        format!("{prefix}-{}", call.now.format("%Y%m%d-%H%M%S-%3f"))
    }

    fn duration(call: &Call<'_>) -> Result<u32> {
        match call.account.setting(FieldKey::TokenDuration.id()) {
            Some(text) => parse_duration(text),
            None => Ok(DEFAULT_DURATION_DAYS),
        }
    }

    /// Creates a token for the account and describes it as the token in use.
    pub async fn issue_new(
        call: &Call<'_>,
        secrets: &SecretBundle,
        token_name: Option<&str>,
        days: Option<u32>,
    ) -> Result<Issued> {
        let inventory = Inventory::new(call, secrets)?;
        let token_name = token_name
            .map(str::to_string)
            .unwrap_or_else(|| Self::next_name(call));
        let days = match days {
            Some(d) => d,
            None => Self::duration(call)?,
        };
        let (token, record) = inventory.create(&token_name, days).await?;
        let expires_at = record
            .expires_at_ms
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
        let mut meta = TokenMeta::issued(call.now, expires_at, RenewsWith::StoredPassword);
        meta.vendor_ref = serde_json::to_string(&TokenRef {
            id: record.id,
            name: record.name.clone(),
        })
        .ok();
        Ok(Issued {
            token,
            meta,
            rotated: Vec::new(),
            note: None,
        })
    }
}

#[async_trait]
impl VendorFlow for BigFix {
    fn vendor(&self) -> Vendor {
        Vendor::Bigfix
    }

    fn methods(&self) -> &'static [MethodSpec] {
        METHODS
    }

    fn url_hint(&self) -> &'static str {
        "https://bigfix.example.com:52311"
    }

    fn check_setting(&self, key: FieldKey, value: &str) -> Result<()> {
        match key {
            FieldKey::TokenDuration => parse_duration(value).map(drop),
            _ => Ok(()),
        }
    }

    /// Signing in again created a new token: the one it replaces is revoked.
    async fn after_sign_in(&self, call: &Call<'_>, secrets: &SecretBundle) -> Option<Note> {
        let old = TokenRef::of(call.previous)?;
        let e = self.sign_out(call, secrets).await.err()?;
        Some(Note {
            kind: EventKind::Revoke,
            outcome: Outcome::Failed,
            detail: format!(
                "the previous token '{}' (id {}) was not revoked: {}",
                old.name,
                old.id,
                e.message()
            ),
        })
    }

    async fn sign_in(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<Issued> {
        Self::issue_new(call, secrets, None, None).await
    }

    /// Rotation: a new token, stored before anything else happens, then the old one revoked.
    async fn renew(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<Issued> {
        let mut issued = Self::issue_new(call, secrets, None, None).await?;
        call.sink
            .store_rotated(&[(SecretKind::AccessToken, issued.token.clone())])
            .await?;
        if let Some(old) = TokenRef::of(call.previous) {
            let inventory = Inventory::new(call, secrets)?;
            match inventory.revoke(old.id).await {
                Ok(()) => {
                    issued.note = Some(format!("rotated: revoked the previous token '{}'", old.name))
                }
                Err(e) if e.kind() == crate::error::ErrorKind::Usage => {
                    issued.note = Some(format!("rotated: the previous token '{}' was already gone", old.name))
                }
                Err(e) => {
                    issued.note = Some(format!(
                        "rotated, but the previous token '{}' (id {}) could not be revoked: {}. Revoke it with \
                         tokenkeeper bigfix revoke {} --id {}",
                        old.name,
                        old.id,
                        e.message(),
                        call.name(),
                        old.id
                    ))
                }
            }
        }
        Ok(issued)
    }

    /// An operator may revoke the token in the console at any time; the check is one
    /// GET on the same server, and a revoked token is replaced with the stored password.
    fn checks_before_use(&self) -> bool {
        true
    }

    async fn check(&self, call: &Call<'_>, token: &Secret) -> Result<Option<bool>> {
        let url = format!("{}/api/login", call.account.base_url);
        let answer = http::send(
            call.http.get(&url).header(
                reqwest::header::AUTHORIZATION,
                http::authorization(&self.authorization(token))?,
            ),
            &format!("BigFix at {url}"),
        )
        .await?;
        Ok(Some(answer.status != StatusCode::UNAUTHORIZED))
    }

    /// Revokes the account's token on the server.
    async fn sign_out(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<()> {
        let Some(tracked) = TokenRef::of(call.previous) else {
            return Ok(());
        };
        match Inventory::new(call, secrets)?.revoke(tracked.id).await {
            Err(e) if e.kind() != crate::error::ErrorKind::Usage => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_is_parsed_by_magnitude() {
        // The documentation's sample, in microseconds: 2026-02-27.
        let micro = expiration(1_772_191_430_000_000).unwrap();
        let milli = expiration(1_772_191_430_000).unwrap();
        let secs = expiration(1_772_191_430).unwrap();
        assert_eq!(micro, milli);
        assert_eq!(milli, secs);
        assert_eq!(micro.format("%Y-%m-%d").to_string(), "2026-02-27");
        assert_eq!(expiration(0), None);
    }

    #[test]
    fn list_answers_take_either_key() {
        let lower: TokenList = serde_json::from_str(
            r#"{"tokens":[{"Id":1,"Name":"a","Expiration":1772191430000000,"User":1}]}"#,
        )
        .unwrap();
        let upper: TokenList = serde_json::from_str(
            r#"{"Tokens":[{"Id":1,"Name":"a","Expiration":1772191430000,"User":1}]}"#,
        )
        .unwrap();
        assert_eq!(lower.tokens[0].public(), upper.tokens[0].public());
    }

    #[test]
    fn durations_are_whole_days_within_bounds() {
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert_eq!(parse_duration(" 30 ").unwrap(), 30);
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("9999").is_err());
        assert!(parse_duration("a week").is_err());
    }
}
