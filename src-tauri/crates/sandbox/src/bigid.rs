//! BigID's authentication, as its API tutorial and API browser describe: username and
//! password at `/api/v1/sessions` for a 24-hour session token (a JWT), or a user token
//! (minted by an administrator, valid up to 999 days) exchanged for a session token at
//! `/api/v1/refresh-access-token`. Tokens travel as the bare `Authorization` header
//! value; a `Bearer ` prefix is refused.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{after, jwt, lock, random_token, Sandbox};

pub const DEMO_USER: &str = "bigid";
pub const DEMO_PASSWORD: &str = "bigid-password";

#[derive(Debug, Clone)]
struct User {
    password: String,
    first_name: String,
    permissions: Vec<String>,
}

/// Users, live session tokens and the user tokens administrators minted.
#[derive(Debug, Default)]
pub struct BigIdState {
    users: HashMap<String, User>,
    /// Session token -> (user, expiry).
    sessions: HashMap<String, (String, DateTime<Utc>)>,
    /// User token -> (user, expiry).
    user_tokens: HashMap<String, (String, DateTime<Utc>)>,
}

impl BigIdState {
    pub fn seed(&mut self) {
        self.users.insert(
            DEMO_USER.into(),
            User {
                password: DEMO_PASSWORD.into(),
                first_name: "BigID Admin".into(),
                permissions: [
                    "admin",
                    "permission.tasks.edit",
                    "permission.tasks.read_task_list",
                ]
                .map(String::from)
                .to_vec(),
            },
        );
    }

    pub fn live_sessions(&self) -> usize {
        let now = Utc::now();
        self.sessions.values().filter(|(_, exp)| *exp > now).count()
    }

    fn new_session(&mut self, user: &str, ttl: std::time::Duration) -> String {
        let now = Utc::now();
        let exp = after(now, ttl.as_secs());
        let token = jwt::encode(&json!({
            "sub": user,
            "username": user,
            "iat": now.timestamp(),
            "exp": exp.timestamp(),
            "jti": random_token(12),
        }));
        self.sessions.insert(token.clone(), (user.to_string(), exp));
        token
    }

    fn session_user(&self, headers: &HeaderMap) -> Option<&str> {
        let token = bare_authorization(headers)?;
        match self.sessions.get(token) {
            Some((user, exp)) if *exp > Utc::now() => Some(user),
            _ => None,
        }
    }
}

/// The `Authorization` value, unless it is missing or carries a `Bearer ` scheme.
fn bare_authorization(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?.trim();
    if value.is_empty() || value.to_ascii_lowercase().starts_with("bearer ") {
        return None;
    }
    Some(value)
}

pub fn router() -> Router<Sandbox> {
    Router::new()
        .route("/api/v1/sessions", post(sessions))
        .route(
            "/api/v1/refresh-access-token",
            get(refresh_access_token).post(refresh_access_token),
        )
        .route("/api/v1/ds-connections", get(ds_connections))
}

fn refused(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"success": false, "message": message}))).into_response()
}

async fn sessions(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let creds: Value = serde_json::from_slice(&body).unwrap_or_default();
    let (Some(username), Some(password)) = (
        creds.get("username").and_then(Value::as_str),
        creds.get("password").and_then(Value::as_str),
    ) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "username and password are required",
        );
    };
    let mut state = lock(&sb.shared.bigid);
    let user = match state.users.get(username) {
        Some(u) if u.password == password => u.clone(),
        _ => return refused(StatusCode::UNAUTHORIZED, "Invalid username or password"),
    };
    let token = state.new_session(username, sb.config.bigid_session_ttl);
    Json(json!({
        "success": true,
        "message": "Enjoy your token!",
        "auth_token": token,
        "username": username,
        "firstName": user.first_name,
        "permissions": user.permissions,
    }))
    .into_response()
}

async fn refresh_access_token(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    let mut state = lock(&sb.shared.bigid);
    let Some(token) = bare_authorization(&headers) else {
        return refused(StatusCode::UNAUTHORIZED, "Invalid or expired user token");
    };
    let user = match state.user_tokens.get(token) {
        Some((user, exp)) if *exp > Utc::now() => user.clone(),
        _ => return refused(StatusCode::UNAUTHORIZED, "Invalid or expired user token"),
    };
    let session = state.new_session(&user, sb.config.bigid_session_ttl);
    Json(json!({"success": true, "systemToken": session})).into_response()
}

/// An authenticated call: the data sources.
async fn ds_connections(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    let state = lock(&sb.shared.bigid);
    if state.session_user(&headers).is_none() {
        return refused(StatusCode::UNAUTHORIZED, "Invalid or expired session token");
    }
    Json(json!({"data": {"ds_connections": [
        {"_id": "64a0c0ffee0000000000000a", "name": "demo-postgres", "type": "rdb-postgresql", "enabled": "yes", "location": "us-east-1"},
        {"_id": "64a0c0ffee0000000000000b", "name": "demo-s3-bucket", "type": "s3-v2", "enabled": "yes", "location": "eu-west-1"},
        {"_id": "64a0c0ffee0000000000000c", "name": "demo-sharepoint", "type": "sharepoint-online-v2", "enabled": "no", "location": "global"},
    ]}}))
    .into_response()
}

#[derive(Debug, Deserialize)]
pub struct MintUserToken {
    #[serde(default = "thirty")]
    expires_in_days: u32,
    /// Overrides `expires_in_days`, for tests that watch a user token expire.
    #[serde(default)]
    expires_in_secs: Option<u64>,
    #[serde(default = "yes")]
    jwt: bool,
    #[serde(default)]
    username: Option<String>,
}

fn thirty() -> u32 {
    30
}

fn yes() -> bool {
    true
}

/// Admin: mints a user token, as Administration -> Access Management does.
pub async fn mint_user_token(
    State(sb): State<Sandbox>,
    Json(req): Json<MintUserToken>,
) -> Response {
    let user = req.username.unwrap_or_else(|| DEMO_USER.into());
    let now = Utc::now();
    let secs = req
        .expires_in_secs
        .unwrap_or(u64::from(req.expires_in_days) * 86_400);
    let exp = after(now, secs);
    let token = if req.jwt {
        jwt::encode(&json!({
            "sub": user,
            "username": user,
            "type": "user-token",
            "iat": now.timestamp(),
            "exp": exp.timestamp(),
            "jti": random_token(12),
        }))
    } else {
        random_token(32)
    };
    lock(&sb.shared.bigid)
        .user_tokens
        .insert(token.clone(), (user, exp));
    Json(json!({"token": token})).into_response()
}

/// Admin: revokes every user token.
pub async fn revoke_user_tokens(State(sb): State<Sandbox>) -> StatusCode {
    lock(&sb.shared.bigid).user_tokens.clear();
    StatusCode::NO_CONTENT
}

/// Sandbox mode's BigID account: the demo user, signing in with its password.
pub fn demo_account(urls: &crate::Urls) -> crate::DemoAccount {
    crate::DemoAccount {
        name: "bigid-demo",
        vendor: "bigid",
        base_url: urls.bigid.clone(),
        fields: vec![("username", DEMO_USER.into())],
        secret: Some(DEMO_PASSWORD),
        ca_cert_pem: None,
        labels: vec!["demo"],
    }
}
