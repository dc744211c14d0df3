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
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;

pub mod truesight;

/// How the stand-ins behave.
#[derive(Debug, Clone)]
pub struct Config {
    /// TrueSight's token lifetime: one hour, as documented.
    pub truesight_token_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            truesight_token_ttl: Duration::from_secs(3600),
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
    /// No answer at all, for an hour.
    Hang,
    /// A 10 MB answer.
    Huge,
}

#[derive(Debug, Default)]
pub struct Shared {
    pub truesight: Mutex<truesight::TrueSightState>,
    faults: Mutex<Vec<Fault>>,
    requests: Mutex<HashMap<String, u64>>,
}

/// The sandbox's state and configuration, shared by every handler.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub config: Arc<Config>,
    pub shared: Arc<Shared>,
}

/// A running sandbox and its addresses.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub sandbox: Sandbox,
    pub task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Serialize)]
pub struct Urls {
    pub base: String,
    pub admin: String,
    pub truesight: String,
}

impl Running {
    pub fn urls(&self) -> Urls {
        let base = format!("http://{}", self.addr);
        Urls {
            admin: format!("{base}/_sandbox"),
            truesight: format!("{base}/truesight"),
            base,
        }
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the sandbox on `port` of 127.0.0.1 (0 for any free port).
pub async fn start(config: Config, port: u16) -> std::io::Result<Running> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let addr = listener.local_addr()?;
    let sandbox = Sandbox {
        config: Arc::new(config),
        shared: Arc::new(Shared::default()),
    };
    lock(&sandbox.shared.truesight).seed();
    let app = router(sandbox.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Running {
        addr,
        sandbox,
        task,
    })
}

pub fn router(sandbox: Sandbox) -> Router {
    let admin = Router::new()
        .route("/faults", post(add_fault))
        .route("/stats", get(stats))
        .route("/truesight/users", post(truesight::put_user));
    Router::new()
        .nest("/truesight", truesight::router())
        .nest("/_sandbox", admin)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            sandbox.clone(),
            faults_and_counts,
        ))
        .with_state(sandbox)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response()
}

async fn add_fault(State(sb): State<Sandbox>, Json(fault): Json<Fault>) -> StatusCode {
    lock(&sb.shared.faults).push(fault);
    StatusCode::NO_CONTENT
}

async fn stats(State(sb): State<Sandbox>) -> Json<serde_json::Value> {
    let requests = lock(&sb.shared.requests).clone();
    let live = lock(&sb.shared.truesight).live_tokens();
    Json(json!({ "requests": requests, "truesight_live_tokens": live }))
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
        let kind = hit.map(|f| {
            f.count -= 1;
            f.kind
        });
        faults.retain(|f| f.count > 0);
        kind
    };
    match due {
        None => next.run(request).await,
        Some(kind) => fault_response(kind).await,
    }
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
    }
}
