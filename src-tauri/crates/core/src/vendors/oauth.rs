//! The OAuth 2.0 pieces BigAnimal and any OIDC issuer share: the device
//! authorization grant (RFC 8628, with `slow_down` honoured) and the refresh grant
//! with rotation, where the new refresh token reaches the keyring before anything
//! uses what it bought, and the old one is never sent again.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde::Deserialize;

use super::{Call, DeviceCode};
use crate::error::{Error, Result};
use crate::http::{self, Answer};
use crate::model::seconds_after;
use crate::secret::{quote_vendor, Secret, SecretKind};

/// RFC 8628 §3.5: poll every 5 s when the issuer names no interval…
const DEFAULT_INTERVAL: StdDuration = StdDuration::from_secs(5);
/// …and add 5 s on every `slow_down`, for that and every later poll.
const SLOW_DOWN_STEP: StdDuration = StdDuration::from_secs(5);
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Where a device-code sign-in goes, and what it asks for.
#[derive(Debug, Clone)]
pub struct DeviceRequest<'a> {
    pub issuer_label: &'a str,
    pub device_endpoint: &'a str,
    pub token_endpoint: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub audience: Option<&'a str>,
    pub exchange_endpoint: Option<String>,
}

/// The longest wait between two polls that an issuer's `interval` can ask for…
const MAX_INTERVAL: StdDuration = StdDuration::from_secs(60);
/// …and the longest a device code is waited for, whatever its `expires_in` says.
const MAX_CODE_LIFETIME_S: i64 = 3600;

#[derive(Deserialize)]
struct DeviceAnswer {
    device_code: String,
    user_code: String,
    verification_uri: Option<String>,
    /// Some issuers (Google, older drafts) spell it `verification_url`.
    verification_url: Option<String>,
    verification_uri_complete: Option<String>,
    #[serde(default, deserialize_with = "lenient_seconds")]
    expires_in: Option<i64>,
    #[serde(default, deserialize_with = "lenient_seconds")]
    interval: Option<i64>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct RawTokenAnswer {
    access_token: String,
    #[serde(default, deserialize_with = "lenient_string")]
    refresh_token: Option<String>,
    #[serde(default, deserialize_with = "lenient_seconds")]
    expires_in: Option<i64>,
    /// Keycloak and others say how long the refresh token lives.
    #[serde(default, deserialize_with = "lenient_seconds")]
    refresh_expires_in: Option<i64>,
}

/// A count of seconds as issuers send it: an integer, a fraction, a numeral in a
/// string, or anything else (read as absent). Saturates instead of overflowing.
fn lenient_seconds<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<i64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(v.as_ref().and_then(seconds_of))
}

fn seconds_of(v: &serde_json::Value) -> Option<i64> {
    use serde_json::Value;
    let f = match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Some(i);
            }
            n.as_f64()?
        }
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    // `as` saturates at i64's bounds; NaN is absent.
    f.is_finite().then_some(f as i64)
}

/// A string field, or absent when the issuer sent another type.
fn lenient_string<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::String(s)) => Some(s),
        _ => None,
    })
}

/// The refresh token in a token answer, read before anything else in it, so that a
/// rotated one is stored even when the rest of the answer is unusable.
fn rotated_refresh_token(answer: &Answer) -> Option<Secret> {
    let v: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
    match v.get("refresh_token") {
        Some(serde_json::Value::String(t)) if !t.is_empty() => Some(Secret::new(t.clone())),
        _ => None,
    }
}

/// Tokens the issuer granted. The refresh token, when present, replaces the stored one.
#[derive(Debug)]
pub struct Granted {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

impl Granted {
    fn from_raw(raw: RawTokenAnswer, now: DateTime<Utc>) -> Self {
        // Any number is safe here: zero or negative is "now", too large is bounded; the
        // vault then keeps an absurd lifetime within its floor and ceiling.
        let after = |s: Option<i64>| s.map(|s| seconds_after(now, s));
        Self {
            expires_at: after(raw.expires_in),
            refresh_expires_at: after(raw.refresh_expires_in),
            access_token: Secret::new(raw.access_token),
            refresh_token: raw.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
        }
    }
}

/// Asks the issuer for a device code.
pub async fn start(call: &Call<'_>, req: &DeviceRequest<'_>) -> Result<DeviceCode> {
    let mut form = vec![("client_id", req.client_id), ("scope", req.scope)];
    if let Some(aud) = req.audience {
        form.push(("audience", aud));
    }
    // Named without the address: it came from the issuer's document, whose words are
    // never quoted to the admin (a hostile one could carry anything).
    let endpoint = format!("the device endpoint of {}", req.issuer_label);
    let answer = http::send(call.http.post(req.device_endpoint).form(&form), &endpoint).await?;
    if !answer.status.is_success() {
        return Err(oauth_error(call, &answer, "asking for a device code", &[]));
    }
    let a: DeviceAnswer = answer.json()?;
    let verification_uri = a
        .verification_uri
        .or(a.verification_url)
        .filter(|u| http::is_browser_safe_for(req.device_endpoint, u))
        .ok_or_else(|| {
            Error::vendor(format!(
                "{endpoint} answered without a verification address Tokenkeeper will open in the browser (https, and on this machine only for an issuer on this machine)"
            ))
        })?;
    let now = Utc::now();
    Ok(DeviceCode {
        device_code: Secret::new(a.device_code),
        user_code: a.user_code,
        verification_uri,
        verification_uri_complete: a
            .verification_uri_complete
            .filter(|u| http::is_browser_safe_for(req.device_endpoint, u)),
        expires_at: seconds_after(
            now,
            a.expires_in
                .filter(|s| *s > 0)
                .unwrap_or(900)
                .min(MAX_CODE_LIFETIME_S),
        ),
        interval: a
            .interval
            .filter(|s| *s > 0)
            .map(|s| StdDuration::from_secs(s.unsigned_abs()).min(MAX_INTERVAL))
            .unwrap_or(DEFAULT_INTERVAL),
        token_endpoint: req.token_endpoint.to_string(),
        client_id: req.client_id.to_string(),
        exchange_endpoint: req.exchange_endpoint.clone(),
    })
}

/// Polls the token endpoint until the admin approves, denies, or the code expires.
/// Each wait starts after the previous answer arrived, as BigAnimal's page asks.
pub async fn poll(call: &Call<'_>, code: &DeviceCode, issuer_label: &str) -> Result<Granted> {
    let name = call.name();
    let left = (code.expires_at - Utc::now()).to_std().unwrap_or_default();
    let deadline = tokio::time::Instant::now() + left;
    let endpoint = format!("the token endpoint of {issuer_label}");
    let mut interval = code.interval;
    loop {
        if tokio::time::Instant::now() + interval > deadline {
            return Err(expired(name));
        }
        tokio::time::sleep(interval).await;
        let form = [
            ("grant_type", DEVICE_GRANT),
            ("device_code", code.device_code.expose()),
            ("client_id", code.client_id.as_str()),
        ];
        let answer =
            http::send(call.http.post(&code.token_endpoint).form(&form), &endpoint).await?;
        if answer.status.is_success() {
            let raw: RawTokenAnswer = answer.json()?;
            return Ok(Granted::from_raw(raw, Utc::now()));
        }
        let error = error_code(&answer);
        match error.as_deref() {
            Some("authorization_pending") => {}
            Some("slow_down") => interval = (interval + SLOW_DOWN_STEP).min(MAX_INTERVAL),
            Some("expired_token") => return Err(expired(name)),
            Some("access_denied") => {
                return Err(Error::refused(format!(
                    "the sign-in for account '{name}' was denied in the browser"
                ))
                .with_remedy(crate::error::Remedy::sign_in(name, false)))
            }
            _ => {
                return Err(oauth_error(
                    call,
                    &answer,
                    "waiting for the sign-in",
                    &[&code.device_code],
                ))
            }
        }
    }
}

fn expired(name: &str) -> Error {
    Error::needs_sign_in(format!(
        "the sign-in code for account '{name}' expired before it was approved in the browser. \
         Sign in again for a new code"
    ))
    .with_remedy(crate::error::Remedy::sign_in(name, false))
}

/// Trades the refresh token for new tokens. When the issuer rotates it, the new
/// refresh token is stored (through the call's sink) before this returns, so the
/// caller may use the access token at once and the old refresh token is gone.
pub async fn refresh(
    call: &Call<'_>,
    issuer_label: &str,
    token_endpoint: &str,
    client_id: &str,
    refresh_token: &Secret,
) -> Result<Granted> {
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("refresh_token", refresh_token.expose()),
    ];
    let endpoint = format!("the token endpoint of {issuer_label}");
    let answer = http::send(call.http.post(token_endpoint).form(&form), &endpoint).await?;
    if !answer.status.is_success() {
        let name = call.name();
        return Err(match error_code(&answer).as_deref() {
            Some("invalid_grant") => Error::needs_sign_in(format!(
                "{issuer_label} no longer accepts the refresh token of account '{name}' (revoked, \
                 expired, or its session ended)"
            ))
            .with_remedy(crate::error::Remedy::sign_in(name, false)),
            _ => oauth_error(call, &answer, "renewing the token", &[refresh_token]),
        });
    }
    // The issuer has rotated the refresh token now (the old one is spent): the new one
    // reaches the keyring before anything else is read from the answer, so no fault in
    // the rest of it can lose it.
    let rotated = rotated_refresh_token(&answer).filter(|new| new != refresh_token);
    if let Some(new) = &rotated {
        store_rotated(call, issuer_label, new).await?;
    }
    let raw: RawTokenAnswer = answer.json()?;
    let mut granted = Granted::from_raw(raw, Utc::now());
    // What was stored is what is kept, whatever the typed read made of the field.
    if rotated.is_some() {
        granted.refresh_token = rotated;
    } else if let Some(new) = granted
        .refresh_token
        .as_ref()
        .filter(|n| *n != refresh_token)
    {
        // One only the typed read found (it skips invalid UTF-8 in a field it ignores,
        // and reads an array as the fields in order; found by fuzzing): stored before
        // anything uses what it bought, all the same.
        store_rotated(call, issuer_label, new).await?;
    }
    Ok(granted)
}

async fn store_rotated(call: &Call<'_>, issuer_label: &str, new: &Secret) -> Result<()> {
    call.sink
        .store_rotated(&[(SecretKind::RefreshToken, new.clone())])
        .await
        .map_err(|e| {
            Error::new(
                e.kind(),
                format!(
                    "{issuer_label} rotated the refresh token of account '{}', but the keyring \
                     did not store the new one ({}); the new token was not used. Unlock the \
                     keyring and sign in again",
                    call.name(),
                    e.message(),
                ),
            )
            .with_remedy(crate::error::Remedy::sign_in(call.name(), false))
        })
}

fn error_code(answer: &Answer) -> Option<String> {
    serde_json::from_slice::<ErrorAnswer>(&answer.body)
        .ok()
        .and_then(|e| e.error)
}

/// An OAuth error answer as a message for the admin. The issuer's words are quoted
/// only after every secret that was `sent` is scrubbed from them.
fn oauth_error(call: &Call<'_>, answer: &Answer, doing: &str, sent: &[&Secret]) -> Error {
    let parsed = serde_json::from_slice::<ErrorAnswer>(&answer.body).ok();
    let Some(ErrorAnswer {
        error: Some(code),
        error_description,
    }) = parsed
    else {
        return answer.unexpected();
    };
    let name = call.name();
    let code = quote_vendor(&code, sent.iter().copied(), 64);
    let why = error_description
        .map(|d| quote_vendor(&d, sent.iter().copied(), 200))
        .filter(|d| !d.is_empty())
        .map(|d| format!("{code}: {d}"))
        .unwrap_or(code.clone());
    let message = format!(
        "{} refused {doing} for account '{name}' ({why})",
        answer.endpoint
    );
    match (answer.status, code.as_str()) {
        (_, "invalid_client" | "unauthorized_client") => Error::refused(format!(
            "{message}. Check the client id: tokenkeeper show {name}"
        )),
        (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => Error::refused(message),
        (s, _) if s.is_server_error() => Error::vendor(format!(
            "{} failed on its side while {doing} for account '{name}' (HTTP {s}: {why}); \
             try again later",
            answer.endpoint
        )),
        _ => Error::vendor(message),
    }
}
