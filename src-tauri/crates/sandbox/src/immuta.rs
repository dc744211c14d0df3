//! Immuta's HTTP API authentication, as its documentation describes: an API key at
//! `/bim/apikey/authenticate` for a bearer token that announces no expiry (yet dies
//! after the configured lifetime), or username/password at
//! `/bim/iam/{iamid}/user/authenticate` with a `tokenExpiration`; 401s carry
//! `{message, error, statusCode}`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::{after, lock, Sandbox};

pub const DEMO_USER: &str = "immuta-user";
pub const DEMO_PASSWORD: &str = "immuta-password";
pub const DEMO_APIKEY: &str = "immuta-demo-apikey";
/// The only IAM system: Immuta's built-in one.
pub const IAM_ID: &str = "bim";

/// Users, API keys and live tokens.
#[derive(Debug, Default)]
pub struct ImmutaState {
    users: HashMap<String, String>,
    /// API key -> user.
    apikeys: HashMap<String, String>,
    /// Token -> (user, expiry).
    tokens: HashMap<String, (String, DateTime<Utc>)>,
}

impl ImmutaState {
    pub fn seed(&mut self) {
        self.users.insert(DEMO_USER.into(), DEMO_PASSWORD.into());
        self.apikeys.insert(DEMO_APIKEY.into(), DEMO_USER.into());
    }

    pub fn live_tokens(&self) -> usize {
        let now = Utc::now();
        self.tokens.values().filter(|(_, exp)| *exp > now).count()
    }

    fn issue(&mut self, user: &str, ttl: std::time::Duration) -> (String, DateTime<Utc>) {
        let mut bytes = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        let token = hex::encode(bytes);
        let exp = after(Utc::now(), ttl.as_secs());
        self.tokens.insert(token.clone(), (user.to_string(), exp));
        (token, exp)
    }
}

pub fn router() -> Router<Sandbox> {
    Router::new()
        .route("/bim/apikey/authenticate", post(apikey))
        .route("/bim/iam/{iamid}/user/authenticate", post(password))
        .route("/bim/rpc/user/current", get(current))
}

fn error(status: StatusCode, message: &str) -> Response {
    let text = status.canonical_reason().unwrap_or_default();
    (
        status,
        Json(json!({"message": message, "error": text, "statusCode": status.as_u16()})),
    )
        .into_response()
}

async fn apikey(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or_default();
    let Some(key) = req.get("apikey").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "apikey is required");
    };
    let mut state = lock(&sb.shared.immuta);
    let Some(user) = state.apikeys.get(key).cloned() else {
        return error(
            StatusCode::UNAUTHORIZED,
            "Authentication failed for API key",
        );
    };
    let (token, _) = state.issue(&user, sb.config.immuta_token_ttl);
    Json(json!({"authenticated": true, "token": token})).into_response()
}

async fn password(State(sb): State<Sandbox>, Path(iamid): Path<String>, body: Bytes) -> Response {
    if iamid != IAM_ID {
        return error(
            StatusCode::NOT_FOUND,
            &format!("IAM system '{iamid}' not found"),
        );
    }
    let req: Value = serde_json::from_slice(&body).unwrap_or_default();
    let (Some(username), Some(password)) = (
        req.get("username").and_then(Value::as_str),
        req.get("password").and_then(Value::as_str),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            "username and password are required",
        );
    };
    let mut state = lock(&sb.shared.immuta);
    if state.users.get(username).map(String::as_str) != Some(password) {
        return error(StatusCode::UNAUTHORIZED, "Authentication failed for user");
    }
    let (token, exp) = state.issue(username, sb.config.immuta_token_ttl);
    Json(json!({
        "authenticated": true,
        "token": token,
        "tokenExpiration": exp.to_rfc3339_opts(SecondsFormat::Millis, true),
    }))
    .into_response()
}

/// The current user, to check a token.
async fn current(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let state = lock(&sb.shared.immuta);
    match state.tokens.get(token) {
        Some((user, exp)) if *exp > Utc::now() => Json(json!({
            "id": 1,
            "iamid": IAM_ID,
            "userid": user,
            "authentication_method": "bim",
            "profile": {"name": "Immuta Demo User", "email": "immuta-user@example.com"},
        }))
        .into_response(),
        _ => error(StatusCode::UNAUTHORIZED, "Invalid or expired token"),
    }
}

/// Admin: every live token dies, as after a server restart or a TTL lapse.
pub async fn expire_tokens(State(sb): State<Sandbox>) -> StatusCode {
    lock(&sb.shared.immuta).tokens.clear();
    StatusCode::NO_CONTENT
}

/// Sandbox mode's Immuta account: the demo API key.
pub fn demo_account(urls: &crate::Urls) -> crate::DemoAccount {
    crate::DemoAccount {
        name: "immuta-demo",
        vendor: "immuta",
        base_url: urls.immuta.clone(),
        fields: Vec::new(),
        secret: Some(DEMO_APIKEY),
        ca_cert_pem: None,
        labels: vec!["demo"],
    }
}
