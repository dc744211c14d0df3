//! OpenBao and HashiCorp Vault tokens as accounts: a token the admin was given, kept
//! alive with `auth/token/renew-self` before its TTL ends and alerted on before the
//! max TTL that no renewal passes; or a userpass login (`auth/userpass/login/USER`)
//! whose token is traded again with the stored password. Sent as
//! `X-Vault-Token`, which both servers read (they also take `Authorization: Bearer`).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::{required, Call, Issued, VendorFlow};
use crate::error::{Error, Remedy, Result};
use crate::fields::{Field, FieldKey, MethodSpec};
use crate::http::{self, Answer};
use crate::model::{seconds_after, Method, RenewsWith, TokenMeta, Vendor};
use crate::secret::{quote_vendor, Secret, SecretBundle, SecretKind};

const LOOKUP_SELF: &str = "/v1/auth/token/lookup-self";
const RENEW_SELF: &str = "/v1/auth/token/renew-self";
/// The userpass method at its default mount.
const USERPASS_LOGIN: &str = "/v1/auth/userpass/login/";
/// How much of a server's error list a message quotes.
const QUOTED_CHARS: usize = 200;

#[derive(Debug)]
pub struct OpenBao;

const METHODS: &[MethodSpec] = &[
    MethodSpec {
        method: Method::UserToken,
        fields: &[],
        secret: Some(SecretKind::UserToken),
    },
    MethodSpec {
        method: Method::Password,
        fields: &[Field {
            key: FieldKey::Username,
            label: "Username",
            required: true,
            help: "A user of the userpass method (enabled at auth/userpass)",
            default: None,
        }],
        secret: Some(SecretKind::Password),
    },
];

/// `lookup-self`'s facts; its `id` (the token itself) is deliberately not read.
#[derive(Deserialize)]
struct Lookup {
    data: LookupData,
}

#[derive(Deserialize)]
struct LookupData {
    #[serde(default)]
    ttl: i64,
    #[serde(default)]
    creation_ttl: i64,
    #[serde(default)]
    renewable: bool,
    #[serde(default)]
    explicit_max_ttl: i64,
    #[serde(default)]
    issue_time: Option<String>,
}

/// A login's or a renewal's `auth` block.
#[derive(Deserialize)]
struct AuthAnswer {
    auth: Option<AuthBlock>,
}

#[derive(Deserialize)]
struct AuthBlock {
    #[serde(default)]
    client_token: Option<String>,
    #[serde(default)]
    lease_duration: i64,
    #[serde(default)]
    renewable: bool,
}

#[derive(Deserialize)]
struct Errors {
    #[serde(default)]
    errors: Vec<String>,
}

impl OpenBao {
    fn endpoint(call: &Call<'_>, path: &str) -> String {
        format!("OpenBao at {}{path}", call.account.base_url)
    }

    /// The server's own words (`errors`), with any secret sent scrubbed out.
    fn said(answer: &Answer, sent: &[&Secret]) -> String {
        let words = serde_json::from_slice::<Errors>(&answer.body)
            .map(|e| e.errors.join("; "))
            .unwrap_or_default();
        let words = quote_vendor(&words, sent.iter().copied(), QUOTED_CHARS);
        if words.is_empty() {
            format!("HTTP {}", answer.status.as_u16())
        } else {
            format!("HTTP {}: {words}", answer.status.as_u16())
        }
    }

    /// A token the server refuses (403: expired, revoked, or never valid).
    fn token_refused(call: &Call<'_>, answer: &Answer, token: &Secret) -> Error {
        let name = call.name();
        Error::needs_sign_in(format!(
            "{} refused the token of account '{name}' ({}): it expired or was revoked. \
             Get a new token (`bao login`, or from your Vault administrator) and sign in \
             to '{name}' again with it",
            Self::endpoint(call, LOOKUP_SELF),
            Self::said(answer, &[token]),
        ))
        .with_remedy(Remedy::sign_in(name, true))
    }

    async fn lookup(call: &Call<'_>, token: &Secret) -> Result<LookupData> {
        let url = format!("{}{LOOKUP_SELF}", call.account.base_url);
        let request = call.http.get(&url).header("X-Vault-Token", token.expose());
        let answer = http::send(request, &Self::endpoint(call, LOOKUP_SELF)).await?;
        match answer.status {
            s if s.is_success() => Ok(answer.json::<Lookup>()?.data),
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => {
                Err(Self::token_refused(call, &answer, token))
            }
            _ => Err(Self::server_error(call, &answer, LOOKUP_SELF, &[token])),
        }
    }

    /// Any other answer: sealed (503), a standby that cannot forward (429/473), a
    /// proxy's page; the server's words when it gave some.
    fn server_error(call: &Call<'_>, answer: &Answer, path: &str, sent: &[&Secret]) -> Error {
        if answer.is_html() || serde_json::from_slice::<Errors>(&answer.body).is_err() {
            return answer.unexpected();
        }
        let advice = if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            "the server is sealed or in maintenance: renewal is tried again once it is unsealed"
        } else {
            "check the address (the server's API, e.g. https://bao.example.com:8200) and try again"
        };
        Error::vendor(format!(
            "{} answered {}: {advice}",
            Self::endpoint(call, path),
            Self::said(answer, sent)
        ))
    }

    /// The facts of a token with `ttl` seconds left. `end` is the moment no renewal
    /// passes, where known (an explicit max TTL, or a renewal the server capped).
    fn meta(call: &Call<'_>, ttl: i64, renewable: bool, end: Option<DateTime<Utc>>) -> TokenMeta {
        // A TTL of 0 is a token that never expires (a root token).
        let expires_at = (ttl > 0).then(|| seconds_after(call.now, ttl));
        let renews_with = if renewable && expires_at.is_some() {
            RenewsWith::StoredUserToken
        } else {
            RenewsWith::Nothing
        };
        let mut meta = TokenMeta::issued(call.now, expires_at, renews_with);
        if renews_with == RenewsWith::StoredUserToken {
            meta.human_deadline = end.filter(|e| *e > call.now);
        }
        meta
    }

    /// Where an explicit max TTL ends, from `lookup-self`.
    fn explicit_end(data: &LookupData) -> Option<DateTime<Utc>> {
        if data.explicit_max_ttl <= 0 {
            return None;
        }
        let issued = DateTime::parse_from_rfc3339(data.issue_time.as_deref()?).ok()?;
        issued
            .with_timezone(&Utc)
            .checked_add_signed(Duration::seconds(
                data.explicit_max_ttl
                    .min(crate::model::MAX_LIFETIME.num_seconds()),
            ))
    }

    /// The token the admin gave: checked with `lookup-self`, used as it is.
    async fn take_token(call: &Call<'_>, token: &Secret) -> Result<Issued> {
        let data = Self::lookup(call, token).await?;
        let end = Self::explicit_end(&data);
        Ok(Issued {
            token: token.clone(),
            meta: Self::meta(call, data.ttl, data.renewable, end),
            rotated: Vec::new(),
            note: None,
        })
    }

    /// `renew-self` for the token's own period; a renewal that comes back shorter
    /// has reached the max TTL, which then is the human's deadline.
    async fn renew_token(call: &Call<'_>, token: &Secret) -> Result<Issued> {
        let data = Self::lookup(call, token).await?;
        if !data.renewable || data.ttl <= 0 {
            return Self::take_token(call, token).await;
        }
        let period = data.creation_ttl.max(data.ttl);
        let url = format!("{}{RENEW_SELF}", call.account.base_url);
        let request = call
            .http
            .post(&url)
            .header("X-Vault-Token", token.expose())
            .json(&json!({ "increment": format!("{period}s") }));
        let answer = http::send(request, &Self::endpoint(call, RENEW_SELF)).await?;
        match answer.status {
            s if s.is_success() => {}
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => {
                return Err(Self::token_refused(call, &answer, token))
            }
            _ => return Err(Self::server_error(call, &answer, RENEW_SELF, &[token])),
        }
        let auth = Self::auth_block(call, &answer, RENEW_SELF)?;
        // The answer repeats the token; the one held is the same.
        let ttl = auth.lease_duration;
        let capped = ttl + 1 < period;
        let end = if capped {
            Some(seconds_after(call.now, ttl))
        } else {
            Self::explicit_end(&data)
        };
        Ok(Issued {
            token: token.clone(),
            meta: Self::meta(call, ttl, auth.renewable, end),
            rotated: Vec::new(),
            note: None,
        })
    }

    fn auth_block(call: &Call<'_>, answer: &Answer, path: &str) -> Result<AuthBlock> {
        answer.json::<AuthAnswer>()?.auth.ok_or_else(|| {
            Error::vendor(format!(
                "{} answered without an auth block: check that the address is OpenBao's or \
                 Vault's API",
                Self::endpoint(call, path)
            ))
        })
    }

    /// A userpass login: a new token for the stored password.
    async fn log_in(call: &Call<'_>, password: &Secret) -> Result<Issued> {
        let account = call.account;
        let user = account.username.as_deref().unwrap_or_default();
        if user.is_empty() || user.contains(['/', '?', '#']) {
            return Err(Error::usage(format!(
                "account '{}' needs the userpass user name (no '/', '?' or '#')",
                account.name
            )));
        }
        let path = format!("{USERPASS_LOGIN}{user}");
        let url = format!("{}{path}", account.base_url);
        let request = call
            .http
            .post(&url)
            .json(&json!({ "password": password.expose() }));
        let answer = http::send(request, &Self::endpoint(call, &path)).await?;
        match answer.status {
            s if s.is_success() => {}
            StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => {
                let name = &account.name;
                return Err(Error::refused(format!(
                    "{} refused user '{user}' of account '{name}' ({}): check the user name \
                     and password, and that userpass is enabled at auth/userpass; if the \
                     password changed, sign in again with the new one",
                    Self::endpoint(call, &path),
                    Self::said(&answer, &[password]),
                ))
                .with_remedy(Remedy::sign_in(name, true)));
            }
            _ => return Err(Self::server_error(call, &answer, &path, &[password])),
        }
        let auth = Self::auth_block(call, &answer, &path)?;
        let token = auth.client_token.filter(|t| !t.is_empty()).ok_or_else(|| {
            Error::vendor(format!(
                "{} logged in without a client_token",
                Self::endpoint(call, &path)
            ))
        })?;
        let expires_at =
            (auth.lease_duration > 0).then(|| seconds_after(call.now, auth.lease_duration));
        Ok(Issued {
            token: Secret::new(token),
            // A new login is always possible with the password: no human deadline.
            meta: TokenMeta::issued(call.now, expires_at, RenewsWith::StoredPassword),
            rotated: Vec::new(),
            note: None,
        })
    }
}

#[async_trait]
impl VendorFlow for OpenBao {
    fn vendor(&self) -> Vendor {
        Vendor::Openbao
    }

    fn methods(&self) -> &'static [MethodSpec] {
        METHODS
    }

    fn url_hint(&self) -> &'static str {
        "https://bao.example.com:8200"
    }

    async fn sign_in(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<Issued> {
        match call.account.method {
            Method::Password => {
                Self::log_in(call, required(call, secrets, SecretKind::Password)?).await
            }
            _ => Self::take_token(call, required(call, secrets, SecretKind::UserToken)?).await,
        }
    }

    async fn renew(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<Issued> {
        match call.account.method {
            Method::Password => {
                Self::log_in(call, required(call, secrets, SecretKind::Password)?).await
            }
            _ => Self::renew_token(call, required(call, secrets, SecretKind::UserToken)?).await,
        }
    }

    /// `lookup-self` answers 403 for a token that expired or was revoked.
    async fn check(&self, call: &Call<'_>, token: &Secret) -> Result<Option<bool>> {
        match Self::lookup(call, token).await {
            Ok(data) => Ok(Some(data.ttl >= 0)),
            Err(e) if e.kind() == crate::error::ErrorKind::NeedsSignIn => Ok(Some(false)),
            Err(e) => Err(e),
        }
    }
}
