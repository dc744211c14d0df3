//! EDB BigAnimal, as "Using the BigAnimal API" describes: the portal's provider
//! discovery, raw-token -> BigAnimal-token exchange and an API call under `/biganimal`,
//! and its Auth0 issuer (device code, token, activation page) under `/biganimal-auth`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use crate::device::{self, Authority, CodeQuery};
use crate::{body_params, lock, random_token, ForcedSlowDown, Sandbox};

pub const CLIENT_ID: &str = "TkSandboxBigAnimalCli0000000000a";
pub const FREETRIAL_CLIENT_ID: &str = "TkSandboxBigAnimalFreeTrial0000b";
pub const SCOPE: &str = "openid profile email offline_access";

/// The issuer's state, and BigAnimal tokens -> the raw access token each came from.
#[derive(Debug, Default)]
pub struct BigAnimalState {
    pub authority: Authority,
    portal_tokens: HashMap<String, String>,
    /// Every BigAnimal token exchanged: (family, issued, expires), for `/_sandbox/issued`.
    issued: Vec<(
        u64,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
    )>,
}

impl BigAnimalState {
    pub fn seed(&mut self) {
        self.authority.register(CLIENT_ID);
        self.authority.register(FREETRIAL_CLIENT_ID);
    }

    /// Every BigAnimal token exchanged, oldest first: the family of its raw token,
    /// and when it was issued and expires (milliseconds since the epoch).
    pub fn issued(&self) -> Vec<Value> {
        self.issued
            .iter()
            .map(|(family, at, exp)| {
                json!({
                    "family": family,
                    "issued_at_ms": at.timestamp_millis(),
                    "expires_at_ms": exp.timestamp_millis(),
                })
            })
            .collect()
    }

    /// Whether a BigAnimal token works: its raw token must still be live.
    fn portal_token_live(&self, token: &str) -> bool {
        self.portal_tokens
            .get(token)
            .is_some_and(|raw| self.authority.access_expiry(raw).is_some())
    }
}

fn issuer(sb: &Sandbox) -> String {
    format!("{}/biganimal-auth", sb.base)
}

pub fn portal_router() -> Router<Sandbox> {
    Router::new()
        .route("/api/v3/auth/provider", get(provider))
        .route("/api/v3/auth/token", post(exchange))
        .route("/api/v3/projects", get(projects))
}

pub fn issuer_router() -> Router<Sandbox> {
    Router::new()
        .route("/oauth/device/code", post(device_code))
        .route("/oauth/token", post(token))
        .route("/activate", get(activate_page).post(activate))
}

fn portal_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"status": status.as_u16(), "message": message}})),
    )
        .into_response()
}

async fn provider(State(sb): State<Sandbox>) -> Json<Value> {
    Json(json!({
        "clientId": CLIENT_ID,
        "freetrialClientId": FREETRIAL_CLIENT_ID,
        "issuerUri": issuer(&sb),
        "scope": SCOPE,
        "audience": format!("{}/biganimal/api", sb.base),
    }))
}

async fn device_code(State(sb): State<Sandbox>, headers: HeaderMap, body: Bytes) -> Response {
    let params = body_params(&headers, &body);
    let issued = lock(&sb.shared.biganimal)
        .authority
        .device_authorization(&sb.config, &params);
    match issued {
        Ok(issued) => device::device_answer(issued, &format!("{}/activate", issuer(&sb))),
        Err(e) => e.into_response(),
    }
}

async fn token(
    State(sb): State<Sandbox>,
    slow: Option<Extension<ForcedSlowDown>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let issuer = issuer(&sb);
    let mut state = lock(&sb.shared.biganimal);
    device::token_endpoint(
        &sb,
        &mut state.authority,
        &issuer,
        &headers,
        &body,
        slow.is_some(),
    )
}

async fn activate_page(State(sb): State<Sandbox>, Query(q): Query<CodeQuery>) -> Response {
    device::approval_page(&lock(&sb.shared.biganimal).authority, "activate", &q)
}

async fn activate(State(sb): State<Sandbox>, body: Bytes) -> Response {
    device::approval_post(&mut lock(&sb.shared.biganimal).authority, &body)
}

/// `{"token": raw access token}` -> `{"token": BigAnimal token}`.
async fn exchange(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or_default();
    let Some(raw) = req.get("token").and_then(Value::as_str) else {
        return portal_error(StatusCode::BAD_REQUEST, "token is required");
    };
    let mut state = lock(&sb.shared.biganimal);
    if state.authority.access_expiry(raw).is_none() {
        return portal_error(
            StatusCode::UNAUTHORIZED,
            "The raw access token is invalid, expired or revoked",
        );
    }
    let token = random_token(48);
    if let (Some(family), Some(expires)) = (
        state.authority.access_family(raw),
        state.authority.access_expiry(raw),
    ) {
        // It lives as long as its raw token.
        let now = chrono::Utc::now();
        let left = expires.saturating_duration_since(std::time::Instant::now());
        let expires = now + chrono::Duration::from_std(left).unwrap_or(chrono::Duration::zero());
        state.issued.push((family, now, expires));
    }
    state.portal_tokens.insert(token.clone(), raw.to_string());
    Json(json!({"token": token})).into_response()
}

/// An authenticated API call: the demo project, as the documentation shows it.
async fn projects(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !lock(&sb.shared.biganimal).portal_token_live(token) {
        return portal_error(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    Json(json!({
        "projectId": "prj_abcd1234",
        "projectName": "Test project",
        "clusterCount": 4,
        "userCount": 10,
        "cloudProviders": [
            {"cloudProviderId": "aws", "cloudProviderName": "AWS"},
            {"cloudProviderId": "azure", "cloudProviderName": "Azure"},
        ],
    }))
    .into_response()
}

/// Sandbox mode's BigAnimal account: a browser sign-in the newcomer starts.
pub fn demo_account(urls: &crate::Urls) -> crate::DemoAccount {
    crate::DemoAccount {
        name: "biganimal-demo",
        vendor: "biganimal",
        base_url: urls.biganimal.clone(),
        fields: Vec::new(),
        secret: None,
        ca_cert_pem: None,
        labels: vec!["demo"],
    }
}
