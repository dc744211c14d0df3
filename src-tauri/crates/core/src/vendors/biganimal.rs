//! EDB BigAnimal: the portal names its Auth0 issuer (`/api/v3/auth/provider`), the
//! admin approves a device code in the browser, and the issuer's raw access token is
//! exchanged at `/api/v3/auth/token` for the token BigAnimal's API accepts. Refresh
//! tokens rotate on every use and last 30 days: that is the human deadline.

use async_trait::async_trait;
use chrono::Duration;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::oauth::{self, DeviceRequest, Granted};
use super::{required, Call, DeviceCode, Issued, VendorFlow};
use crate::error::{Error, Result};
use crate::fields::{Field, FieldKey, MethodSpec};
use crate::http;
use crate::model::{Method, RenewsWith, TokenMeta, Vendor};
use crate::secret::{Secret, SecretBundle, SecretKind};

const PROVIDER_PATH: &str = "/api/v3/auth/provider";
const EXCHANGE_PATH: &str = "/api/v3/auth/token";
const PROJECTS_PATH: &str = "/api/v3/projects";
/// The documented lifetimes, used when the issuer does not say.
const ACCESS_LIFETIME: Duration = Duration::hours(24);
const REFRESH_LIFETIME: Duration = Duration::days(30);
const DEFAULT_SCOPE: &str = "openid profile email offline_access";

#[derive(Debug)]
pub struct BigAnimal;

const FIELDS: &[Field] = &[
    Field {
        key: FieldKey::ClientId,
        label: "Client ID",
        required: false,
        help: "Leave empty to use the one the portal names",
        default: None,
    },
    Field {
        key: FieldKey::FreeTrial,
        label: "Free-trial account",
        required: false,
        help: "\"yes\" signs in with the portal's free-trial client id",
        default: Some("no"),
    },
];

const METHODS: &[MethodSpec] = &[MethodSpec {
    method: Method::DeviceCode,
    fields: FIELDS,
    secret: None,
}];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Provider {
    client_id: String,
    freetrial_client_id: Option<String>,
    issuer_uri: String,
    scope: Option<String>,
    audience: Option<String>,
}

/// What renewal needs besides the refresh token, kept in the token's `vendor_ref`.
#[derive(Serialize, Deserialize)]
struct IssuerRef {
    token_endpoint: String,
    client_id: String,
}

#[derive(Deserialize)]
struct Exchanged {
    token: String,
}

impl BigAnimal {
    async fn provider(call: &Call<'_>) -> Result<Provider> {
        let url = format!("{}{PROVIDER_PATH}", call.account.base_url);
        let endpoint = format!("BigAnimal at {url}");
        let answer = http::send(call.http.get(&url), &endpoint).await?;
        if !answer.status.is_success() {
            return Err(answer.unexpected());
        }
        let p: Provider = answer.json()?;
        // The portal's words are not quoted: a hostile answer could carry anything.
        http::normalize_base_url(&p.issuer_uri)
            .map_err(|_| "it is not an https address of a server".to_string())
            .and_then(|_| http::bound_to(&call.account.base_url, &p.issuer_uri))
            .map_err(|why| {
                Error::vendor(format!(
                    "{endpoint} named an issuer Tokenkeeper will not use: {why}"
                ))
            })?;
        Ok(p)
    }

    /// Trades the issuer's raw access token for a BigAnimal token.
    async fn exchange(call: &Call<'_>, raw: &Secret) -> Result<Secret> {
        let url = format!("{}{EXCHANGE_PATH}", call.account.base_url);
        let endpoint = format!("BigAnimal at {url}");
        let answer = http::send(
            call.http.post(&url).json(&json!({ "token": raw.expose() })),
            &endpoint,
        )
        .await?;
        match answer.status {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(Error::refused(format!(
                    "{endpoint} refused the issuer's token for account '{}' (HTTP {}): the BigAnimal user may \
                     lack access; sign in again",
                    call.name(),
                    answer.status,
                ))
                .with_remedy(crate::error::Remedy::sign_in(call.name(), false)))
            }
            _ => return Err(answer.unexpected()),
        }
        let e: Exchanged = answer.json()?;
        if e.token.is_empty() {
            return Err(Error::vendor(format!(
                "{endpoint} answered without a token"
            )));
        }
        Ok(Secret::new(e.token))
    }

    async fn issue(
        call: &Call<'_>,
        granted: Granted,
        issuer: IssuerRef,
        human_deadline: chrono::DateTime<chrono::Utc>,
    ) -> Result<Issued> {
        let refresh = granted.refresh_token.ok_or_else(|| {
            Error::vendor(format!(
                "BigAnimal's issuer gave account '{}' no refresh token (the offline_access scope \
                 was not granted), so Tokenkeeper could not renew it",
                call.name()
            ))
        })?;
        let token = Self::exchange(call, &granted.access_token).await?;
        let now = call.now;
        let mut meta = TokenMeta::issued(
            now,
            Some(granted.expires_at.unwrap_or(now + ACCESS_LIFETIME)),
            RenewsWith::RefreshToken,
        );
        meta.human_deadline = Some(human_deadline);
        meta.vendor_ref = serde_json::to_string(&issuer).ok();
        Ok(Issued {
            token,
            meta,
            rotated: vec![(SecretKind::RefreshToken, refresh)],
            note: None,
        })
    }
}

#[async_trait]
impl VendorFlow for BigAnimal {
    fn vendor(&self) -> Vendor {
        Vendor::Biganimal
    }

    fn methods(&self) -> &'static [MethodSpec] {
        METHODS
    }

    fn url_hint(&self) -> &'static str {
        "https://portal.biganimal.com"
    }

    fn check_setting(&self, key: FieldKey, value: &str) -> Result<()> {
        match key {
            FieldKey::FreeTrial
                if !matches!(value, "yes" | "no" | "true" | "false" | "1" | "0") =>
            {
                Err(Error::usage(format!("'{value}' is not yes or no")))
            }
            _ => Ok(()),
        }
    }

    async fn sign_in(&self, call: &Call<'_>, _secrets: &SecretBundle) -> Result<Issued> {
        let name = call.name();
        Err(
            Error::needs_sign_in("BigAnimal accounts sign in through the browser")
                .with_remedy(crate::error::Remedy::sign_in(name, false)),
        )
    }

    async fn start_device(&self, call: &Call<'_>) -> Result<DeviceCode> {
        let p = Self::provider(call).await?;
        let free_trial = call
            .account
            .setting(FieldKey::FreeTrial.id())
            .is_some_and(|v| matches!(v, "yes" | "true" | "1"));
        let client_id = match (call.account.client_id.as_deref(), free_trial) {
            (Some(id), _) => id.to_string(),
            (None, true) => p.freetrial_client_id.clone().ok_or_else(|| {
                Error::vendor(format!(
                    "BigAnimal at {} names no free-trial client id: sign in without --free-trial",
                    call.account.base_url
                ))
            })?,
            (None, false) => p.client_id.clone(),
        };
        let issuer = p.issuer_uri.trim_end_matches('/');
        let device = format!("{issuer}/oauth/device/code");
        let token = format!("{issuer}/oauth/token");
        oauth::start(
            call,
            &DeviceRequest {
                issuer_label: "BigAnimal's sign-in service",
                device_endpoint: &device,
                token_endpoint: &token,
                client_id: &client_id,
                scope: p.scope.as_deref().unwrap_or(DEFAULT_SCOPE),
                audience: p.audience.as_deref(),
                exchange_endpoint: None,
            },
        )
        .await
    }

    async fn finish_device(&self, call: &Call<'_>, code: &DeviceCode) -> Result<Issued> {
        let granted = oauth::poll(call, code, "BigAnimal's sign-in service").await?;
        // The first refresh token is stored before its access token is exchanged.
        if let Some(refresh) = &granted.refresh_token {
            call.sink
                .store_rotated(&[(SecretKind::RefreshToken, refresh.clone())])
                .await?;
        }
        let deadline = granted
            .refresh_expires_at
            .unwrap_or(call.now + REFRESH_LIFETIME);
        let issuer = IssuerRef {
            token_endpoint: code.token_endpoint.clone(),
            client_id: code.client_id.clone(),
        };
        Self::issue(call, granted, issuer, deadline).await
    }

    async fn renew(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<Issued> {
        let refresh = required(call, secrets, SecretKind::RefreshToken)?;
        let issuer: IssuerRef = call
            .previous
            .and_then(|m| m.vendor_ref.as_deref())
            .and_then(|r| serde_json::from_str(r).ok())
            .ok_or_else(|| {
                Error::needs_sign_in(format!("account '{}' has no sign-in to renew", call.name()))
                    .with_remedy(crate::error::Remedy::sign_in(call.name(), false))
            })?;
        let granted = oauth::refresh(
            call,
            "BigAnimal's sign-in service",
            &issuer.token_endpoint,
            &issuer.client_id,
            refresh,
        )
        .await?;
        let deadline = call
            .previous
            .and_then(|m| m.human_deadline)
            .unwrap_or(call.now + REFRESH_LIFETIME);
        let mut granted = granted;
        if granted.refresh_token.is_none() {
            // An issuer that does not rotate keeps the stored refresh token valid.
            granted.refresh_token = Some(refresh.clone());
        }
        Self::issue(call, granted, issuer, deadline).await
    }

    async fn check(&self, call: &Call<'_>, token: &Secret) -> Result<Option<bool>> {
        let url = format!("{}{PROJECTS_PATH}", call.account.base_url);
        let answer = http::send(
            call.http.get(&url).header(
                reqwest::header::AUTHORIZATION,
                http::authorization(&self.authorization(token))?,
            ),
            &format!("BigAnimal at {url}"),
        )
        .await?;
        Ok(Some(answer.status != StatusCode::UNAUTHORIZED))
    }
}
