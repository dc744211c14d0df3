//! Any OAuth 2.0 / OpenID Connect issuer with the device authorization grant: its
//! endpoints come from `/.well-known/openid-configuration`, and its refresh tokens
//! follow the same rotation rules as BigAnimal's. This is how admins bring in
//! platforms Tokenkeeper has no module for.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::oauth::{self, DeviceRequest, Granted};
use super::{required, Call, DeviceCode, Issued, VendorFlow};
use crate::error::{Error, Result};
use crate::fields::{Field, FieldKey, MethodSpec};
use crate::http;
use crate::model::{Method, RenewsWith, TokenMeta, Vendor};
use crate::secret::{SecretBundle, SecretKind};

const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
const DEFAULT_SCOPE: &str = "openid offline_access";

#[derive(Debug)]
pub struct Oidc;

const FIELDS: &[Field] = &[
    Field {
        key: FieldKey::ClientId,
        label: "Client ID",
        required: true,
        help: "The public client registered at the issuer for the device flow",
        default: None,
    },
    Field {
        key: FieldKey::Scope,
        label: "Scope",
        required: false,
        help: "offline_access is needed for a refresh token",
        default: Some(DEFAULT_SCOPE),
    },
    Field {
        key: FieldKey::Audience,
        label: "Audience",
        required: false,
        help: "The API the token is for, if the issuer asks for one",
        default: None,
    },
];

const METHODS: &[MethodSpec] = &[MethodSpec {
    method: Method::DeviceCode,
    fields: FIELDS,
    secret: None,
}];

#[derive(Deserialize)]
struct Discovery {
    /// Must be the configured URL itself (OpenID Connect Discovery §4.3).
    issuer: Option<String>,
    device_authorization_endpoint: Option<String>,
    token_endpoint: String,
}

#[derive(Serialize, Deserialize)]
struct IssuerRef {
    token_endpoint: String,
    client_id: String,
}

impl Oidc {
    fn label(call: &Call<'_>) -> String {
        format!("the issuer {}", call.account.base_url)
    }

    async fn discover(call: &Call<'_>) -> Result<(String, String)> {
        let url = format!("{}{DISCOVERY_PATH}", call.account.base_url);
        let endpoint = format!("{} at {url}", Self::label(call));
        let answer = http::send(call.http.get(&url), &endpoint).await?;
        if !answer.status.is_success() {
            return Err(answer.unexpected());
        }
        let d: Discovery = answer.json()?;
        let configured = call.account.base_url.trim_end_matches('/');
        // The document's own words are not quoted: a hostile one could carry anything.
        if d.issuer.as_deref().map(|i| i.trim_end_matches('/')) != Some(configured) {
            return Err(Error::vendor(format!(
                "{endpoint} describes another issuer than {configured} (its `issuer` must be \
                 exactly the account's URL), so its endpoints are not used. Check the account's \
                 URL: it must be the issuer itself, exactly as the issuer names it"
            )));
        }
        let device = d.device_authorization_endpoint.ok_or_else(|| {
            Error::usage(format!(
                "{endpoint} offers no device authorization endpoint: this issuer does not support \
                 the device flow (ask its administrators to enable it)"
            ))
        })?;
        for (which, e) in [("device", &device), ("token", &d.token_endpoint)] {
            http::bound_to(configured, e).map_err(|why| {
                Error::vendor(format!(
                    "{endpoint} names a {which} endpoint Tokenkeeper will not use: {why}"
                ))
            })?;
        }
        Ok((device, d.token_endpoint))
    }

    fn client_id(call: &Call<'_>) -> Result<String> {
        call.account.client_id.clone().ok_or_else(|| {
            Error::usage(format!(
                "account '{}' has no client id: add it again with --client-id",
                call.name()
            ))
        })
    }

    fn issue(call: &Call<'_>, granted: Granted, issuer: &IssuerRef, renewed: bool) -> Issued {
        let now = call.now;
        let renews_with = if granted.refresh_token.is_some() {
            RenewsWith::RefreshToken
        } else {
            RenewsWith::Nothing
        };
        let mut meta = TokenMeta::issued(now, granted.expires_at, renews_with);
        meta.human_deadline = granted.refresh_expires_at.or(if renewed {
            call.previous.and_then(|m| m.human_deadline)
        } else {
            None
        });
        meta.vendor_ref = serde_json::to_string(issuer).ok();
        Issued {
            token: granted.access_token,
            meta,
            rotated: granted
                .refresh_token
                .map(|r| vec![(SecretKind::RefreshToken, r)])
                .unwrap_or_default(),
            note: None,
        }
    }
}

#[async_trait]
impl VendorFlow for Oidc {
    fn vendor(&self) -> Vendor {
        Vendor::Oidc
    }

    fn methods(&self) -> &'static [MethodSpec] {
        METHODS
    }

    fn url_hint(&self) -> &'static str {
        "https://issuer.example.com"
    }

    async fn sign_in(&self, call: &Call<'_>, _secrets: &SecretBundle) -> Result<Issued> {
        let name = call.name();
        Err(
            Error::needs_sign_in(format!("account '{name}' signs in through the browser"))
                .with_remedy(crate::error::Remedy::sign_in(name, false)),
        )
    }

    async fn start_device(&self, call: &Call<'_>) -> Result<DeviceCode> {
        let (device, token) = Self::discover(call).await?;
        let client_id = Self::client_id(call)?;
        let scope = call.setting(FieldKey::Scope, DEFAULT_SCOPE);
        let audience = call.account.setting(FieldKey::Audience.id());
        oauth::start(
            call,
            &DeviceRequest {
                issuer_label: &Self::label(call),
                device_endpoint: &device,
                token_endpoint: &token,
                client_id: &client_id,
                scope: &scope,
                audience,
                exchange_endpoint: None,
            },
        )
        .await
    }

    async fn finish_device(&self, call: &Call<'_>, code: &DeviceCode) -> Result<Issued> {
        let granted = oauth::poll(call, code, &Self::label(call)).await?;
        if let Some(refresh) = &granted.refresh_token {
            call.sink
                .store_rotated(&[(SecretKind::RefreshToken, refresh.clone())])
                .await?;
        }
        let issuer = IssuerRef {
            token_endpoint: code.token_endpoint.clone(),
            client_id: code.client_id.clone(),
        };
        Ok(Self::issue(call, granted, &issuer, false))
    }

    async fn renew(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<Issued> {
        let refresh = required(call, secrets, SecretKind::RefreshToken)?;
        let issuer: IssuerRef = match call
            .previous
            .and_then(|m| m.vendor_ref.as_deref())
            .and_then(|r| serde_json::from_str(r).ok())
        {
            Some(i) => i,
            None => IssuerRef {
                token_endpoint: Self::discover(call).await?.1,
                client_id: Self::client_id(call)?,
            },
        };
        let mut granted = oauth::refresh(
            call,
            &Self::label(call),
            &issuer.token_endpoint,
            &issuer.client_id,
            refresh,
        )
        .await?;
        if granted.refresh_token.is_none() {
            granted.refresh_token = Some(refresh.clone());
        }
        Ok(Self::issue(call, granted, &issuer, true))
    }
}
