//! BMC TrueSight Presentation Server (TSWS): username, password and tenant traded at
//! `/tsws/api/v10.1/token` for an `authToken` that expires after one hour, sent as
//! `Authorization: authToken <token>`; renewed with the stored password.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::{Call, Issued, VendorFlow};
use crate::error::{Error, Result};
use crate::fields::{Field, FieldKey, MethodSpec};
use crate::http::{self, Answer};
use crate::model::{Method, RenewsWith, TokenMeta, Vendor};
use crate::secret::{Secret, SecretBundle, SecretKind};

pub const TOKEN_PATH: &str = "/tsws/api/v10.1/token";
/// The documented lifetime, used when an answer carries no `expires`.
const TOKEN_LIFETIME: Duration = Duration::hours(1);

#[derive(Debug)]
pub struct TrueSight;

const FIELDS: &[Field] = &[
    Field {
        key: FieldKey::Username,
        label: "Username",
        required: true,
        help: "A TrueSight user with the api-access permission",
        default: None,
    },
    Field {
        key: FieldKey::Tenant,
        label: "Tenant",
        required: true,
        help: "The tenant name, often BmcRealm or *",
        default: None,
    },
];

const METHODS: &[MethodSpec] = &[MethodSpec {
    method: Method::Password,
    fields: FIELDS,
    secret: Some(SecretKind::Password),
}];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenAnswer {
    auth_token: Option<String>,
    expires: Option<String>,
    auth_passed: Option<bool>,
    /// Some TSWS builds wrap the fields in `response`.
    response: Option<Box<TokenAnswer>>,
}

impl TrueSight {
    fn endpoint(call: &Call<'_>) -> String {
        format!("TrueSight at {}{TOKEN_PATH}", call.account.base_url)
    }

    fn refused(call: &Call<'_>, answer: &Answer) -> Error {
        let user = call.account.username.as_deref().unwrap_or("?");
        let name = &call.account.name;
        if answer.status == StatusCode::FORBIDDEN {
            Error::refused(format!(
                "TrueSight user '{user}' lacks the api-access permission (HTTP 403) for account '{name}'. \
                 Ask a TrueSight administrator to grant api-access, or use a user of type \"API Access\""
            ))
        } else {
            Error::refused(format!(
                "TrueSight rejected the username, password or tenant for account '{name}' (HTTP 401), \
                 or the user is deactivated. If the password changed, sign in again with the new one"
            ))
            .with_remedy(crate::error::Remedy::sign_in(name, true))
        }
    }
}

#[async_trait]
impl VendorFlow for TrueSight {
    fn vendor(&self) -> Vendor {
        Vendor::Truesight
    }

    fn methods(&self) -> &'static [MethodSpec] {
        METHODS
    }

    fn url_hint(&self) -> &'static str {
        "https://truesight.example.com"
    }

    async fn sign_in(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<Issued> {
        let account = call.account;
        let password = secrets.get(SecretKind::Password).ok_or_else(|| {
            Error::needs_sign_in(format!(
                "no password is stored for account '{}'",
                account.name
            ))
            .with_remedy(crate::error::Remedy::sign_in(&account.name, true))
        })?;
        let body = json!({
            "username": account.username.as_deref().unwrap_or_default(),
            "password": password.expose(),
            "tenantName": account.tenant.as_deref().unwrap_or_default(),
        });
        let url = format!("{}{TOKEN_PATH}", account.base_url);
        let answer = http::send(call.http.post(&url).json(&body), &Self::endpoint(call)).await?;
        match answer.status {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(Self::refused(call, &answer))
            }
            _ => return Err(answer.unexpected()),
        }
        let parsed: TokenAnswer = answer.json()?;
        let parsed = match parsed.response {
            Some(inner) if parsed.auth_token.is_none() => *inner,
            _ => parsed,
        };
        if parsed.auth_passed == Some(false) {
            return Err(Self::refused(call, &answer));
        }
        let token = parsed.auth_token.filter(|t| !t.is_empty()).ok_or_else(|| {
            Error::vendor(format!(
                "{} answered without an authToken",
                Self::endpoint(call)
            ))
        })?;
        let expires_at = parsed
            .expires
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| *t > call.now)
            .unwrap_or(call.now + TOKEN_LIFETIME);
        Ok(Issued {
            token: Secret::new(token),
            meta: TokenMeta::issued(call.now, Some(expires_at), RenewsWith::StoredPassword),
            rotated: Vec::new(),
            note: None,
        })
    }

    /// `GET` on the token path answers 401 "Invalid/expired token" for a dead token.
    async fn check(&self, call: &Call<'_>, token: &Secret) -> Result<Option<bool>> {
        let url = format!("{}{TOKEN_PATH}", call.account.base_url);
        let answer = http::send(
            call.http.get(&url).header(
                reqwest::header::AUTHORIZATION,
                http::authorization(&self.authorization(token))?,
            ),
            &Self::endpoint(call),
        )
        .await?;
        match answer.status {
            s if s.is_success() => Ok(Some(true)),
            StatusCode::UNAUTHORIZED => Ok(Some(false)),
            StatusCode::FORBIDDEN => Err(Self::refused(call, &answer)),
            _ => Err(answer.unexpected()),
        }
    }

    async fn sign_out(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<()> {
        let Some(token) = secrets.get(SecretKind::AccessToken) else {
            return Ok(());
        };
        let url = format!("{}{TOKEN_PATH}", call.account.base_url);
        let answer = http::send(
            call.http.delete(&url).header(
                reqwest::header::AUTHORIZATION,
                http::authorization(&self.authorization(token))?,
            ),
            &Self::endpoint(call),
        )
        .await?;
        // An expired token is already logged out.
        if answer.status.is_success() || answer.status == StatusCode::UNAUTHORIZED {
            Ok(())
        } else {
            Err(answer.unexpected())
        }
    }

    fn authorization(&self, token: &Secret) -> String {
        format!("authToken {}", token.expose())
    }
}
