//! Immuta: an API key traded at `/bim/apikey/authenticate` for a bearer token that
//! carries no expiry (used until Immuta answers 401, then traded again with the
//! stored key), or a username and password traded at
//! `/bim/iam/{iamid}/user/authenticate` for a token with `tokenExpiration`. Error
//! answers carry `message`, `error` and `statusCode`: the admin sees them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::{required, Call, Issued, VendorFlow};
use crate::error::{Error, Result};
use crate::fields::{Field, FieldKey, MethodSpec};
use crate::http::{self, Answer};
use crate::model::{Method, RenewsWith, TokenMeta, Vendor};
use crate::secret::{Secret, SecretBundle, SecretKind};

const APIKEY_PATH: &str = "/bim/apikey/authenticate";
const CURRENT_USER_PATH: &str = "/bim/rpc/user/current";
const DEFAULT_IAM: &str = "bim";

#[derive(Debug)]
pub struct Immuta;

const METHODS: &[MethodSpec] = &[
    MethodSpec {
        method: Method::ApiKey,
        fields: &[],
        secret: Some(SecretKind::ApiKey),
    },
    MethodSpec {
        method: Method::Password,
        fields: &[
            Field {
                key: FieldKey::Username,
                label: "Username",
                required: true,
                help: "",
                default: None,
            },
            Field {
                key: FieldKey::IamId,
                label: "IAM system",
                required: false,
                help: "The IAM system the user signs in with",
                default: Some(DEFAULT_IAM),
            },
        ],
        secret: Some(SecretKind::Password),
    },
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthAnswer {
    authenticated: Option<bool>,
    token: Option<String>,
    token_expiration: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorAnswer {
    message: Option<String>,
    error: Option<String>,
}

impl Immuta {
    /// Immuta's own words about a failure, scrubbed of anything that was sent.
    fn said(answer: &Answer, secrets: &SecretBundle) -> String {
        match answer.json::<ErrorAnswer>() {
            Ok(ErrorAnswer {
                message: Some(m),
                error,
            }) => {
                let e = error
                    .map(|e| secrets.quote(&e, 80))
                    .filter(|e| !e.is_empty())
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                format!(": \"{}\"{e}", secrets.quote(&m, 300))
            }
            _ => String::new(),
        }
    }

    fn failure(call: &Call<'_>, answer: &Answer, what: &str, secrets: &SecretBundle) -> Error {
        let name = call.name();
        let said = Self::said(answer, secrets);
        let status = answer.status.as_u16();
        match answer.status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::refused(format!(
                "Immuta refused the {what} of account '{name}' (HTTP {status}{said}). If it changed or \
                 was revoked, sign in again with the new one"
            ))
            .with_remedy(crate::error::Remedy::sign_in(name, true)),
            StatusCode::NOT_FOUND if call.account.method == Method::Password => {
                Error::usage(format!(
                    "Immuta does not know the IAM system '{}' of account '{name}' (HTTP 404{said}): \
                     check the IAM id on Immuta's sign-in page and add the account again with --iam-id",
                    call.setting(FieldKey::IamId, DEFAULT_IAM)
                ))
            }
            _ if answer.is_html() || said.is_empty() => answer.unexpected(),
            s if s.is_server_error() => Error::vendor(format!(
                "{} failed on its side (HTTP {status}{said}); try again later",
                answer.endpoint
            )),
            _ => Error::vendor(format!(
                "{} answered HTTP {status}{said}",
                answer.endpoint
            )),
        }
    }
}

#[async_trait]
impl VendorFlow for Immuta {
    fn vendor(&self) -> Vendor {
        Vendor::Immuta
    }

    fn methods(&self) -> &'static [MethodSpec] {
        METHODS
    }

    fn url_hint(&self) -> &'static str {
        "https://example.immuta.com"
    }

    async fn sign_in(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<Issued> {
        let account = call.account;
        let (url, body, what, renews_with) = match account.method {
            Method::Password => {
                let password = required(call, secrets, SecretKind::Password)?;
                let iam = call.setting(FieldKey::IamId, DEFAULT_IAM);
                let iam: String = url::form_urlencoded::byte_serialize(iam.as_bytes()).collect();
                (
                    format!("{}/bim/iam/{iam}/user/authenticate", account.base_url),
                    json!({
                        "username": account.username.as_deref().unwrap_or_default(),
                        "password": password.expose(),
                    }),
                    "username or password",
                    RenewsWith::StoredPassword,
                )
            }
            _ => {
                let key = required(call, secrets, SecretKind::ApiKey)?;
                (
                    format!("{}{APIKEY_PATH}", account.base_url),
                    json!({ "apikey": key.expose() }),
                    "API key",
                    RenewsWith::StoredApiKey,
                )
            }
        };
        let endpoint = format!("Immuta at {url}");
        let answer = http::send(call.http.post(&url).json(&body), &endpoint).await?;
        if !answer.status.is_success() {
            return Err(Self::failure(call, &answer, what, secrets));
        }
        let a: AuthAnswer = answer.json()?;
        if a.authenticated == Some(false) {
            return Err(Self::failure(call, &answer, what, secrets));
        }
        let token = a
            .token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::vendor(format!("{endpoint} answered without a token")))?;
        // API-key tokens carry no expiry: they are renewed when Immuta answers 401.
        let expires_at = a
            .token_expiration
            .as_deref()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc));
        Ok(Issued {
            token: Secret::new(token),
            meta: TokenMeta::issued(call.now, expires_at, renews_with),
            rotated: Vec::new(),
            note: None,
        })
    }

    async fn check(&self, call: &Call<'_>, token: &Secret) -> Result<Option<bool>> {
        let url = format!("{}{CURRENT_USER_PATH}", call.account.base_url);
        let answer = http::send(
            call.http.get(&url).header(
                reqwest::header::AUTHORIZATION,
                http::authorization(&self.authorization(token))?,
            ),
            &format!("Immuta at {url}"),
        )
        .await?;
        match answer.status {
            s if s.is_success() => Ok(Some(true)),
            StatusCode::UNAUTHORIZED => Ok(Some(false)),
            _ => Err(answer.unexpected()),
        }
    }
}
