//! A generic OpenID Connect issuer with the device grant, for accounts of any vendor
//! that signs in through standard OIDC: discovery, device authorization, token,
//! userinfo and the verification page, on the same device authority as BigAnimal's.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use crate::device::{self, CodeQuery, DEVICE_GRANT};
use crate::{body_params, lock, ForcedSlowDown, Sandbox};

/// The registered public client.
pub const CLIENT_ID: &str = "tokenkeeper-sandbox";

fn issuer(sb: &Sandbox) -> String {
    format!("{}/oidc", sb.base)
}

pub fn router() -> Router<Sandbox> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/device/auth", post(device_authorization))
        .route("/token", post(token))
        .route("/me", get(userinfo))
        .route("/jwks", get(jwks))
        .route("/device", get(device_page).post(device_post))
}

async fn discovery(State(sb): State<Sandbox>) -> Json<Value> {
    let issuer = issuer(&sb);
    Json(json!({
        "issuer": issuer,
        "device_authorization_endpoint": format!("{issuer}/device/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/me"),
        "jwks_uri": format!("{issuer}/jwks"),
        "grant_types_supported": [DEVICE_GRANT, "refresh_token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "response_types_supported": ["none"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["HS256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "name", "email"],
    }))
}

/// No published keys: ID tokens are HS256 over a key only the sandbox has.
async fn jwks() -> Json<Value> {
    Json(json!({"keys": []}))
}

async fn device_authorization(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = body_params(&headers, &body);
    let issued = lock(&sb.shared.oidc).device_authorization(&sb.config, &params);
    match issued {
        Ok(issued) => device::device_answer(issued, &format!("{}/device", issuer(&sb))),
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
    let mut authority = lock(&sb.shared.oidc);
    device::token_endpoint(
        &sb,
        &mut authority,
        &issuer,
        &headers,
        &body,
        slow.is_some(),
    )
}

async fn userinfo(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if lock(&sb.shared.oidc).access_expiry(token).is_some() {
        return Json(json!({"sub": device::SUBJECT})).into_response();
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Bearer error=\"invalid_token\", error_description=\"The access token is invalid or expired\"",
        )],
        Json(json!({"error": "invalid_token", "error_description": "The access token is invalid or expired"})),
    )
        .into_response()
}

async fn device_page(State(sb): State<Sandbox>, Query(q): Query<CodeQuery>) -> Response {
    device::approval_page(&lock(&sb.shared.oidc), "device", &q)
}

async fn device_post(State(sb): State<Sandbox>, body: Bytes) -> Response {
    device::approval_post(&mut lock(&sb.shared.oidc), &body)
}
