//! Local stand-ins for the vendor APIs, faithful to each vendor's documentation, so
//! that tests and the sandbox mode exercise real HTTP without vendor accounts. It
//! binds to loopback only, and has an admin API (`/_sandbox`) to inject faults and
//! count requests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub mod biganimal;
pub mod bigfix;
pub mod bigid;
pub mod device;
pub mod immuta;
pub mod jwt;
pub mod oidc;
pub mod truesight;

/// How the stand-ins behave. The defaults are the vendors' documented values.
#[derive(Debug, Clone)]
pub struct Config {
    /// TrueSight's token lifetime: one hour, as documented.
    pub truesight_token_ttl: Duration,
    /// The device-code polling interval the issuers ask for (RFC 8628's 5 s).
    pub device_interval: Duration,
    /// Lifetime of OAuth access tokens (BigAnimal's 24 h).
    pub oauth_access_ttl: Duration,
    /// Lifetime of a refresh-token family from its first grant (BigAnimal's 30 days).
    pub oauth_refresh_ttl: Duration,
    /// Auth0's "reuse interval": how long a rotated-out refresh token still works
    /// (0, the default, is strict: any reuse revokes the family).
    pub oauth_reuse_interval: Duration,
    /// Lifetime of a device code and its user code (BigAnimal's 900 s).
    pub device_code_ttl: Duration,
    /// BigID session tokens: 24 hours.
    pub bigid_session_ttl: Duration,
    /// Immuta bearer tokens: they die server-side after this, unannounced.
    pub immuta_token_ttl: Duration,
    /// Port of BigFix's HTTPS listener on 127.0.0.1; 0 picks a free one.
    pub bigfix_port: u16,
    /// BigFix's certificate and key (PEM files) instead of a CA and leaf made at
    /// start: for tests with certificates made as admins make them (`openssl req -x509`).
    pub bigfix_tls_files: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            truesight_token_ttl: Duration::from_secs(3600),
            device_interval: Duration::from_secs(5),
            oauth_access_ttl: Duration::from_secs(86_400),
            oauth_refresh_ttl: Duration::from_secs(30 * 86_400),
            oauth_reuse_interval: Duration::ZERO,
            device_code_ttl: Duration::from_secs(900),
            bigid_session_ttl: Duration::from_secs(86_400),
            immuta_token_ttl: Duration::from_secs(3600),
            bigfix_port: 0,
            bigfix_tls_files: None,
        }
    }
}

/// A misbehaviour to inject into the next `count` requests under `path_prefix`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Fault {
    pub path_prefix: String,
    pub kind: FaultKind,
    #[serde(default = "one")]
    pub count: u32,
    /// `rewrite`: fields set on the real JSON answer (top level), as a hostile or
    /// confused vendor might send them: absurd lifetimes, wrong types, huge strings.
    #[serde(default)]
    pub patch: Option<serde_json::Map<String, Value>>,
    /// `raw`: the answer's status, headers and body, exactly (duplicate keys, deep
    /// nesting, a redirect to another host: anything JSON values cannot say).
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub headers: Option<Vec<(String, String)>>,
    #[serde(default)]
    pub body: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A proxy's HTML error page with HTTP 502.
    Html,
    /// HTTP 500 with a JSON body.
    Status500,
    /// A JSON answer cut off halfway.
    Truncated,
    /// The real answer, five seconds late (a slow vendor, for races).
    Delay,
    /// No answer at all, for an hour.
    Hang,
    /// A 10 MB answer.
    Huge,
    /// A device-code poll answers `slow_down` and grows the code's interval by 5 s,
    /// however long the client waited (other requests pass untouched).
    SlowDown,
    /// HTTP 400 whose error fields quote back everything the request carried (its
    /// body, form values decoded, and its Authorization header), as a careless
    /// vendor's error page may: no message may repeat a secret.
    Echo,
    /// The same echo with HTTP 401, for vendors that quote only a refusal.
    EchoRefused,
    /// The real answer (the vendor did its work: a token was issued, a refresh token
    /// rotated), with the fault's `patch` set on its JSON.
    Rewrite,
    /// The fault's own `status`, `headers` and `body` instead of an answer.
    Raw,
}

/// Marks a request that the `slow_down` fault hit; the token endpoints read it.
#[derive(Debug, Clone, Copy)]
pub struct ForcedSlowDown;

#[derive(Debug, Default)]
pub struct Shared {
    pub truesight: Mutex<truesight::TrueSightState>,
    pub bigid: Mutex<bigid::BigIdState>,
    pub bigfix: Mutex<bigfix::BigFixState>,
    pub biganimal: Mutex<biganimal::BigAnimalState>,
    pub oidc: Mutex<device::Authority>,
    pub immuta: Mutex<immuta::ImmutaState>,
    faults: Mutex<Vec<Fault>>,
    requests: Mutex<HashMap<String, u64>>,
    /// Vendor requests being answered now, and the most at once (for benchmarks).
    in_flight: std::sync::atomic::AtomicUsize,
    peak_in_flight: std::sync::atomic::AtomicUsize,
}

/// The sandbox's state and configuration, shared by every handler.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub config: Arc<Config>,
    pub shared: Arc<Shared>,
    /// `http://127.0.0.1:port` of the plain-HTTP listener, for URLs in answers.
    pub base: Arc<str>,
}

/// A running sandbox and its addresses.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub sandbox: Sandbox,
    pub task: tokio::task::JoinHandle<()>,
    /// BigFix's HTTPS listener.
    pub bigfix_addr: SocketAddr,
    pub bigfix_task: tokio::task::JoinHandle<()>,
    /// PEM of the CA that signed the BigFix listener's certificate.
    pub bigfix_ca_pem: String,
    /// Lowercase hex SHA-256 of the BigFix leaf certificate's DER.
    pub bigfix_cert_sha256: String,
}

#[derive(Debug, Serialize)]
pub struct Urls {
    pub base: String,
    pub admin: String,
    pub truesight: String,
    pub bigid: String,
    /// BigAnimal's portal; its issuer is `{base}/biganimal-auth`.
    pub biganimal: String,
    /// A generic OIDC issuer with the device grant.
    pub oidc: String,
    pub immuta: String,
    pub bigfix: String,
    pub bigfix_ca_pem: String,
    pub bigfix_cert_sha256: String,
}

impl Running {
    pub fn urls(&self) -> Urls {
        let base = format!("http://{}", self.addr);
        Urls {
            admin: format!("{base}/_sandbox"),
            truesight: format!("{base}/truesight"),
            bigid: format!("{base}/bigid"),
            biganimal: format!("{base}/biganimal"),
            oidc: format!("{base}/oidc"),
            immuta: format!("{base}/immuta"),
            bigfix: format!("https://{}", self.bigfix_addr),
            bigfix_ca_pem: self.bigfix_ca_pem.clone(),
            bigfix_cert_sha256: self.bigfix_cert_sha256.clone(),
            base,
        }
    }
}

/// A demo account of sandbox mode's, in plain words: its vendor and fields by their
/// ids, so the app that adds it knows nothing of any vendor. Each stand-in's module
/// describes its own (the demo users are the stand-in's), and none of this is in a
/// build without the sandbox.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    pub name: &'static str,
    /// The vendor's id (`Vendor::id` in the core).
    pub vendor: &'static str,
    pub base_url: String,
    /// Fields by their ids (`FieldKey::id` in the core): username, tenant, …
    pub fields: Vec<(&'static str, String)>,
    /// The secret it signs in with; none for a browser sign-in.
    pub secret: Option<&'static str>,
    /// The CA its stand-in's certificate chains to, which changes each start.
    pub ca_cert_pem: Option<String>,
    pub labels: Vec<&'static str>,
}

impl Urls {
    /// The demo accounts of every stand-in, in the order the window lists them.
    pub fn demo_accounts(&self) -> Vec<DemoAccount> {
        vec![
            truesight::demo_account(self),
            bigid::demo_account(self),
            bigfix::demo_account(self),
            immuta::demo_account(self),
            biganimal::demo_account(self),
        ]
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `n` random bytes as unpadded base64url.
pub(crate) fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `secs` seconds after `t`, saturating at the far future instead of overflowing.
pub(crate) fn after(t: chrono::DateTime<chrono::Utc>, secs: u64) -> chrono::DateTime<chrono::Utc> {
    i64::try_from(secs)
        .ok()
        .and_then(chrono::Duration::try_seconds)
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

/// A request body's parameters, form-encoded or (when the content type says so) JSON.
pub(crate) fn body_params(headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if json {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(body).unwrap_or_default();
        map.into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect()
    } else {
        url::form_urlencoded::parse(body).into_owned().collect()
    }
}

/// Starts the sandbox on `port` of 127.0.0.1 (0 for any free port), and BigFix's
/// HTTPS listener on `config.bigfix_port`.
pub async fn start(config: Config, port: u16) -> std::io::Result<Running> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let addr = listener.local_addr()?;
    let tls = match &config.bigfix_tls_files {
        Some((cert, key)) => bigfix::Tls::from_pem_files(cert, key)?,
        None => bigfix::Tls::generate()?,
    };
    let bigfix_listener =
        TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], config.bigfix_port))).await?;
    let bigfix_addr = bigfix_listener.local_addr()?;
    let sandbox = Sandbox {
        config: Arc::new(config),
        shared: Arc::new(Shared::default()),
        base: Arc::from(format!("http://{addr}")),
    };
    lock(&sandbox.shared.truesight).seed();
    lock(&sandbox.shared.bigid).seed();
    lock(&sandbox.shared.bigfix).seed();
    lock(&sandbox.shared.biganimal).seed();
    lock(&sandbox.shared.oidc).register(oidc::CLIENT_ID);
    lock(&sandbox.shared.immuta).seed();
    let app = router(sandbox.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let bigfix_task = tokio::spawn(bigfix::serve(
        bigfix_listener,
        tls.server_config()?,
        bigfix_router(sandbox.clone()),
    ));
    Ok(Running {
        addr,
        sandbox,
        task,
        bigfix_addr,
        bigfix_task,
        bigfix_ca_pem: tls.ca_pem,
        bigfix_cert_sha256: tls.leaf_sha256,
    })
}

pub fn router(sandbox: Sandbox) -> Router {
    let admin = Router::new()
        .route("/faults", post(add_fault))
        .route("/faults/clear", post(clear_faults))
        .route("/stats", get(stats))
        .route("/truesight/users", post(truesight::put_user))
        .route("/bigid/user-tokens", post(bigid::mint_user_token))
        .route("/bigid/revoke-user-tokens", post(bigid::revoke_user_tokens))
        .route("/bigfix/rotatetokenkey", post(bigfix::rotate_token_key))
        .route("/device/approve", post(device::admin_approve))
        .route("/device/deny", post(device::admin_deny))
        .route("/device/expire", post(device::admin_expire))
        .route("/oauth/revoke-all", post(device::admin_revoke_all))
        .route("/oauth/refresh-tokens", get(device::admin_refresh_tokens))
        .route(
            "/oauth/refresh-token-state",
            post(device::admin_refresh_token_state),
        )
        .route("/issued", get(issued))
        .route("/immuta/expire-tokens", post(immuta::expire_tokens));
    Router::new()
        .nest("/truesight", truesight::router())
        .nest("/bigid", bigid::router())
        .nest("/biganimal", biganimal::portal_router())
        .nest("/biganimal-auth", biganimal::issuer_router())
        .nest("/oidc", oidc::router())
        .nest("/immuta", immuta::router())
        .nest("/_sandbox", admin)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            sandbox.clone(),
            faults_and_counts,
        ))
        .with_state(sandbox)
}

/// BigFix's REST API, served by the HTTPS listener, through the same middleware.
pub fn bigfix_router(sandbox: Sandbox) -> Router {
    bigfix::router()
        .layer(middleware::from_fn_with_state(
            sandbox.clone(),
            faults_and_counts,
        ))
        .with_state(sandbox)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response()
}

/// Drops every fault not yet used up.
async fn clear_faults(State(sb): State<Sandbox>) -> StatusCode {
    lock(&sb.shared.faults).clear();
    StatusCode::NO_CONTENT
}

async fn add_fault(State(sb): State<Sandbox>, Json(fault): Json<Fault>) -> StatusCode {
    lock(&sb.shared.faults).push(fault);
    StatusCode::NO_CONTENT
}

async fn stats(State(sb): State<Sandbox>) -> Json<serde_json::Value> {
    let requests = lock(&sb.shared.requests).clone();
    let truesight = lock(&sb.shared.truesight).live_tokens();
    let bigid = lock(&sb.shared.bigid).live_sessions();
    let bigfix = lock(&sb.shared.bigfix).live_tokens();
    let immuta = lock(&sb.shared.immuta).live_tokens();
    let mut oauth = lock(&sb.shared.biganimal).authority.stats;
    oauth.add(&lock(&sb.shared.oidc).stats);
    Json(json!({
        "requests": requests,
        "peak_in_flight": sb.shared.peak_in_flight.load(std::sync::atomic::Ordering::SeqCst),
        "truesight_live_tokens": truesight,
        "bigid_live_sessions": bigid,
        "bigfix_live_tokens": bigfix,
        "immuta_live_tokens": immuta,
        "oauth": oauth,
    }))
}

/// Every token issued so far, with when it was issued and when it expires: TrueSight
/// tokens by user, BigAnimal tokens and the generic issuer's access tokens by family.
async fn issued(State(sb): State<Sandbox>) -> Json<serde_json::Value> {
    Json(json!({
        "truesight": lock(&sb.shared.truesight).issued(),
        "biganimal": lock(&sb.shared.biganimal).issued(),
        "oidc": lock(&sb.shared.oidc).issued(),
    }))
}

/// Counts every vendor request and answers with an injected fault where one is due.
async fn faults_and_counts(State(sb): State<Sandbox>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if !path.starts_with("/_sandbox") {
        let key = format!("{} {}", request.method(), path);
        *lock(&sb.shared.requests).entry(key).or_default() += 1;
    }
    let due = {
        let mut faults = lock(&sb.shared.faults);
        let hit = faults
            .iter_mut()
            .find(|f| path.starts_with(&f.path_prefix) && f.count > 0);
        let fault = hit.map(|f| {
            f.count -= 1;
            f.clone()
        });
        faults.retain(|f| f.count > 0);
        fault
    };
    let counted = !path.starts_with("/_sandbox");
    if counted {
        use std::sync::atomic::Ordering;
        let n = sb.shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        sb.shared.peak_in_flight.fetch_max(n, Ordering::SeqCst);
    }
    let response = answer(due, request, next).await;
    if counted {
        sb.shared
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
    response
}

async fn answer(due: Option<Fault>, mut request: Request, next: Next) -> Response {
    let Some(fault) = due else {
        return next.run(request).await;
    };
    match Some(fault.kind) {
        None => next.run(request).await,
        Some(FaultKind::Rewrite) => rewrite(next.run(request).await, fault.patch).await,
        Some(FaultKind::Raw) => raw_response(&fault),
        Some(FaultKind::Delay) => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            next.run(request).await
        }
        Some(FaultKind::SlowDown) => {
            request.extensions_mut().insert(ForcedSlowDown);
            next.run(request).await
        }
        Some(FaultKind::Echo) => echo_response(request, StatusCode::BAD_REQUEST).await,
        Some(FaultKind::EchoRefused) => echo_response(request, StatusCode::UNAUTHORIZED).await,
        Some(kind) => fault_response(kind).await,
    }
}

/// The real answer with `patch`'s fields set on its JSON object.
async fn rewrite(response: Response, patch: Option<serde_json::Map<String, Value>>) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let mut value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if let (Value::Object(map), Some(patch)) = (&mut value, patch) {
        map.extend(patch);
    }
    let body = serde_json::to_vec(&value).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

fn raw_response(fault: &Fault) -> Response {
    let mut builder = Response::builder().status(fault.status.unwrap_or(200));
    for (k, v) in fault.headers.iter().flatten() {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder
        .body(Body::from(fault.body.clone().unwrap_or_default()))
        .unwrap_or_default()
}

async fn echo_response(request: Request, status: StatusCode) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = axum::body::to_bytes(request.into_body(), 1024 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).to_string();
    let decoded: Vec<String> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let said = format!(
        "rejected request {text} ({}) with Authorization {authorization}",
        decoded.join(" ")
    );
    (
        status,
        Json(json!({
            "error": "invalid_request",
            "error_description": said,
            "message": said,
            "statusCode": status.as_u16(),
        })),
    )
        .into_response()
}

async fn fault_response(kind: FaultKind) -> Response {
    match kind {
        FaultKind::Html => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>",
        )
            .into_response(),
        FaultKind::Status500 => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "Internal Server Error", "statusCode": 500})),
        )
            .into_response(),
        FaultKind::Truncated => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"authToken\": \"_trunc",
        )
            .into_response(),
        FaultKind::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        FaultKind::Huge => {
            let chunk = vec![b' '; 1024 * 1024];
            let body = [b"{\"pad\": \"".to_vec(), chunk.repeat(10), b"\"}".to_vec()].concat();
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap_or_default()
        }
        // Handled in the middleware, which lets the request through.
        FaultKind::SlowDown
        | FaultKind::Delay
        | FaultKind::Echo
        | FaultKind::EchoRefused
        | FaultKind::Rewrite
        | FaultKind::Raw => {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
