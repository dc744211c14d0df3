//! BMC TrueSight Presentation Server's token API, as its documentation describes:
//! POST username/password/tenantName for an `authToken` that expires after the
//! configured lifetime (an hour), GET to check it, DELETE to log out. A wrong
//! password answers 401; a user without `api-access` answers 403 everywhere.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::{lock, Sandbox};

pub const DEMO_USER: &str = "demo";
pub const DEMO_PASSWORD: &str = "demo-password";
pub const DEMO_TENANT: &str = "BmcRealm";
/// A user that exists but lacks the api-access permission.
pub const NO_API_USER: &str = "noapi";
pub const NO_API_PASSWORD: &str = "noapi-password";

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub username: String,
    pub password: String,
    pub tenant: String,
    #[serde(default = "yes")]
    pub api_access: bool,
}

fn yes() -> bool {
    true
}

/// Users and live tokens.
#[derive(Debug, Default)]
pub struct TrueSightState {
    users: HashMap<String, User>,
    tokens: HashMap<String, (String, DateTime<Utc>)>,
    /// Every token created: (user, issued, expires), for `/_sandbox/issued`.
    issued: Vec<(String, DateTime<Utc>, DateTime<Utc>)>,
}

impl TrueSightState {
    pub fn seed(&mut self) {
        for (u, p, api) in [
            (DEMO_USER, DEMO_PASSWORD, true),
            (NO_API_USER, NO_API_PASSWORD, false),
        ] {
            self.users.insert(
                u.into(),
                User {
                    username: u.into(),
                    password: p.into(),
                    tenant: DEMO_TENANT.into(),
                    api_access: api,
                },
            );
        }
    }

    /// Every token created, oldest first: its user, and when it was issued and
    /// expires (milliseconds since the epoch).
    pub fn issued(&self) -> Vec<serde_json::Value> {
        self.issued
            .iter()
            .map(|(user, at, exp)| {
                json!({
                    "user": user,
                    "issued_at_ms": at.timestamp_millis(),
                    "expires_at_ms": exp.timestamp_millis(),
                })
            })
            .collect()
    }

    pub fn live_tokens(&self) -> usize {
        let now = Utc::now();
        self.tokens.values().filter(|(_, exp)| *exp > now).count()
    }

    /// The user a live token belongs to.
    fn user_of(&self, headers: &HeaderMap) -> Result<&User, Refusal> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("authToken "))
            .unwrap_or_default();
        match self.tokens.get(token) {
            Some((user, exp)) if *exp > Utc::now() => match self.users.get(user) {
                Some(u) if u.api_access => Ok(u),
                Some(_) => Err(Refusal::Forbidden),
                None => Err(Refusal::InvalidToken),
            },
            _ => Err(Refusal::InvalidToken),
        }
    }
}

pub fn router() -> Router<Sandbox> {
    Router::new()
        .route(
            "/tsws/api/v10.1/token",
            get(check).post(create).delete(logout),
        )
        .route("/tsws/api/v10.1/about", get(about))
}

/// Why an authenticated call is refused: 401 for a bad token, 403 without api-access.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    InvalidToken,
    Forbidden,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::InvalidToken => invalid_token(),
            Refusal::Forbidden => forbidden(),
        }
    }
}

fn invalid_token() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"statusCode": "401", "statusMsg": "Invalid/expired token", "status": "Unauthorized"})),
    )
        .into_response()
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(json!({"statusCode": "403", "statusMsg": "User does not have the api-access permission", "status": "Forbidden"})),
    )
        .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Credentials {
    username: String,
    password: String,
    tenant_name: String,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn create(State(sb): State<Sandbox>, body: Option<Json<Credentials>>) -> Response {
    let Some(Json(creds)) = body else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"statusMsg": "username, password and tenantName are required"})),
        )
            .into_response();
    };
    let mut state = lock(&sb.shared.truesight);
    let user = match state.users.get(&creds.username) {
        Some(u) if u.password == creds.password && u.tenant == creds.tenant_name => u.clone(),
        _ => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"authPassed": false, "status": "Unauthorized", "statusMsg": "Authentication failed"})),
            )
                .into_response()
        }
    };
    if !user.api_access {
        return forbidden();
    }
    let token = format!("_{}", uuid::Uuid::new_v4());
    let ttl = chrono::Duration::from_std(sb.config.truesight_token_ttl)
        .unwrap_or(chrono::Duration::hours(1));
    let issued = Utc::now();
    let expires = issued + ttl;
    state.issued.push((user.username.clone(), issued, expires));
    state
        .tokens
        .insert(token.clone(), (user.username.clone(), expires));
    Json(json!({
        "authToken": token,
        "authPassed": true,
        "expires": rfc3339(expires),
        "status": "OK",
    }))
    .into_response()
}

async fn check(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    let state = lock(&sb.shared.truesight);
    match state.user_of(&headers) {
        Ok(user) => {
            Json(json!({"status": "OK", "username": user.username, "tenantName": user.tenant}))
                .into_response()
        }
        Err(r) => r.into_response(),
    }
}

async fn logout(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    let mut state = lock(&sb.shared.truesight);
    if let Err(r) = state.user_of(&headers) {
        return r.into_response();
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("authToken "))
        .unwrap_or_default()
        .to_string();
    state.tokens.remove(&token);
    Json(json!({"status": "OK", "statusMsg": "Logged out"})).into_response()
}

/// An authenticated API call, to show that a token works.
async fn about(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    let state = lock(&sb.shared.truesight);
    match state.user_of(&headers) {
        Ok(_) => Json(json!({"product": "TrueSight Presentation Server (Tokenkeeper sandbox)", "version": "11.3.05"}))
            .into_response(),
        Err(r) => r.into_response(),
    }
}

/// Adds or replaces a user (a changed password, a revoked permission).
pub async fn put_user(State(sb): State<Sandbox>, Json(user): Json<User>) -> StatusCode {
    lock(&sb.shared.truesight)
        .users
        .insert(user.username.clone(), user);
    StatusCode::NO_CONTENT
}

/// Sandbox mode's TrueSight account: the demo user of the default tenant.
pub fn demo_account(urls: &crate::Urls) -> crate::DemoAccount {
    crate::DemoAccount {
        name: "truesight-demo",
        vendor: "truesight",
        base_url: urls.truesight.clone(),
        fields: vec![
            ("username", DEMO_USER.into()),
            ("tenant", DEMO_TENANT.into()),
        ],
        secret: Some(DEMO_PASSWORD),
        ca_cert_pem: None,
        labels: vec!["demo"],
    }
}
