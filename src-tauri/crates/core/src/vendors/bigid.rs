//! BigID: a username and password traded at `/api/v1/sessions` for a 24-hour session
//! token, or a user token (valid up to 999 days) traded at
//! `/api/v1/refresh-access-token` for a `systemToken`. Tokens travel as the bare
//! `Authorization` value, without `Bearer`. A user token's own expiry is the human
//! deadline: read from the token when it is a JWT, else entered by the admin.

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::{jwt, required, Call, Issued, VendorFlow};
use crate::error::{Error, Result};
use crate::fields::{Field, FieldKey, MethodSpec};
use crate::http::{self, Answer};
use crate::model::{Method, RenewsWith, TokenMeta, Vendor};
use crate::secret::{Secret, SecretBundle, SecretKind};

const SESSIONS_PATH: &str = "/api/v1/sessions";
const REFRESH_PATH: &str = "/api/v1/refresh-access-token";
/// The documented session lifetime, used when the token is not a JWT with `exp`.
const SESSION_LIFETIME: Duration = Duration::hours(24);

#[derive(Debug)]
pub struct BigId;

const METHODS: &[MethodSpec] = &[
    MethodSpec {
        method: Method::Password,
        fields: &[Field {
            key: FieldKey::Username,
            label: "Username",
            required: true,
            help: "",
            default: None,
        }],
        secret: Some(SecretKind::Password),
    },
    MethodSpec {
        method: Method::UserToken,
        fields: &[
            Field {
                key: FieldKey::UserTokenExpires,
                label: "User token expires",
                required: false,
                help: "The date BigID showed when the token was generated (YYYY-MM-DD); read from the token when it is a JWT",
                default: None,
            },
            Field {
                key: FieldKey::RefreshMethod,
                label: "Refresh call method",
                required: false,
                help: "GET as BigID's API browser documents it; POST for servers that want it",
                default: Some("GET"),
            },
        ],
        secret: Some(SecretKind::UserToken),
    },
];

#[derive(Deserialize)]
struct SessionAnswer {
    success: Option<bool>,
    message: Option<String>,
    auth_token: Option<String>,
    #[serde(rename = "systemToken")]
    system_token: Option<String>,
}

/// Parses the admin's expiry for a user token: a date (end of that day, UTC) or RFC 3339.
pub fn parse_expiry(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map(|d| d.and_utc())
}

impl BigId {
    fn refused(call: &Call<'_>, answer: &Answer, what: &str, secrets: &SecretBundle) -> Error {
        let name = call.name();
        let said = answer
            .json::<SessionAnswer>()
            .ok()
            .and_then(|a| a.message)
            .map(|m| secrets.quote(&m, 300))
            .filter(|m| !m.is_empty())
            .map(|m| format!(": \"{m}\""))
            .unwrap_or_default();
        Error::refused(format!(
            "BigID refused the {what} of account '{name}' (HTTP {}{said}). If it changed or expired, \
             sign in again with the new one",
            answer.status.as_u16()
        ))
        .with_remedy(crate::error::Remedy::sign_in(name, true))
    }

    fn session(
        call: &Call<'_>,
        answer: &Answer,
        what: &str,
        secrets: &SecretBundle,
    ) -> Result<(Secret, DateTime<Utc>)> {
        match answer.status {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(Self::refused(call, answer, what, secrets))
            }
            _ => return Err(answer.unexpected()),
        }
        let a: SessionAnswer = answer.json()?;
        if a.success == Some(false) {
            return Err(Self::refused(call, answer, what, secrets));
        }
        let token = a
            .auth_token
            .or(a.system_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Error::vendor(format!("{} answered without a token", answer.endpoint))
            })?;
        let expires = jwt::expiry(&token)
            .filter(|t| *t > call.now)
            .unwrap_or(call.now + SESSION_LIFETIME);
        Ok((Secret::new(token), expires))
    }
}

#[async_trait]
impl VendorFlow for BigId {
    fn vendor(&self) -> Vendor {
        Vendor::Bigid
    }

    fn methods(&self) -> &'static [MethodSpec] {
        METHODS
    }

    fn url_hint(&self) -> &'static str {
        "https://bigid.example.com"
    }

    fn check_setting(&self, key: FieldKey, value: &str) -> Result<()> {
        match key {
            FieldKey::UserTokenExpires => parse_expiry(value).map(drop).ok_or_else(|| {
                Error::usage(format!(
                    "'{value}' is not a date: give the user token's expiry as YYYY-MM-DD"
                ))
            }),
            FieldKey::RefreshMethod
                if !matches!(value.to_ascii_uppercase().as_str(), "GET" | "POST") =>
            {
                Err(Error::usage(format!("'{value}' is not GET or POST")))
            }
            _ => Ok(()),
        }
    }

    async fn sign_in(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<Issued> {
        let account = call.account;
        let (token, expires, meta_base) = match account.method {
            Method::UserToken => {
                let user_token = required(call, secrets, SecretKind::UserToken)?;
                let human_deadline = match jwt::expiry(user_token.expose()) {
                    Some(t) => Some(t),
                    None => match account.setting(FieldKey::UserTokenExpires.id()) {
                        Some(text) => Some(parse_expiry(text).ok_or_else(|| {
                            Error::usage(format!(
                                "'{text}' is not a date: give the user token's expiry as YYYY-MM-DD with --user-token-expires"
                            ))
                        })?),
                        None => None,
                    },
                };
                if human_deadline.is_some_and(|d| d <= call.now) {
                    return Err(Error::needs_sign_in(format!(
                        "the BigID user token of account '{}' has expired: generate a new one under \
                         Administration > Access Management and sign in again with it",
                        account.name
                    ))
                    .with_remedy(crate::error::Remedy::sign_in(&account.name, true)));
                }
                let url = format!("{}{REFRESH_PATH}", account.base_url);
                let endpoint = format!("BigID at {url}");
                let request = match call
                    .setting(FieldKey::RefreshMethod, "GET")
                    .to_ascii_uppercase()
                    .as_str()
                {
                    "POST" => call.http.post(&url),
                    _ => call.http.get(&url),
                };
                // BigID takes the bare token as the header value.
                let answer = http::send(
                    request.header(
                        reqwest::header::AUTHORIZATION,
                        http::authorization(user_token.expose())?,
                    ),
                    &endpoint,
                )
                .await?;
                let (token, expires) = Self::session(call, &answer, "user token", secrets)?;
                let mut meta =
                    TokenMeta::issued(call.now, Some(expires), RenewsWith::StoredUserToken);
                meta.human_deadline = human_deadline;
                (token, expires, meta)
            }
            _ => {
                let password = required(call, secrets, SecretKind::Password)?;
                let url = format!("{}{SESSIONS_PATH}", account.base_url);
                let endpoint = format!("BigID at {url}");
                let body = json!({
                    "username": account.username.as_deref().unwrap_or_default(),
                    "password": password.expose(),
                });
                let answer = http::send(call.http.post(&url).json(&body), &endpoint).await?;
                let (token, expires) =
                    Self::session(call, &answer, "username or password", secrets)?;
                let meta = TokenMeta::issued(call.now, Some(expires), RenewsWith::StoredPassword);
                (token, expires, meta)
            }
        };
        debug_assert_eq!(meta_base.expires_at, Some(expires));
        Ok(Issued {
            token,
            meta: meta_base,
            rotated: Vec::new(),
            note: None,
        })
    }

    fn authorization(&self, token: &Secret) -> String {
        token.expose().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_dates_are_read_as_the_end_of_the_day() {
        assert_eq!(
            parse_expiry("2027-03-01").unwrap().to_rfc3339(),
            "2027-03-01T23:59:59+00:00"
        );
        assert!(parse_expiry("2027-03-01T10:00:00Z").is_some());
        assert!(parse_expiry("next tuesday").is_none());
    }
}
