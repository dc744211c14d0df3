//! HCL BigFix's REST API token family, as its "Token" page describes: operators
//! create, list, update and revoke long-lived bearer tokens with HTTP Basic auth,
//! over HTTPS with a self-signed chain, as most BigFix servers are. The page calls
//! `Expiration` milliseconds but shows microseconds; this stand-in answers
//! microseconds in lists and on creation and milliseconds from get-by-name/-id, so
//! that a client must read the value by its magnitude.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use chrono::{Datelike, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::{after, body_params, lock, random_token, Sandbox};

pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password";
pub const OPERATOR_USER: &str = "operator";
pub const OPERATOR_PASSWORD: &str = "operator-password";
/// Days a token lasts when `duration` is not given.
pub const DEFAULT_DURATION_DAYS: u64 = 30;

#[derive(Debug, Clone)]
struct Operator {
    id: u64,
    name: String,
    password: String,
    master: bool,
}

#[derive(Debug, Clone)]
struct Token {
    id: u64,
    name: String,
    user: u64,
    /// Unix milliseconds; 0 never expires.
    expiration_ms: i64,
    secret: String,
}

impl Token {
    fn live(&self) -> bool {
        self.expiration_ms == 0 || self.expiration_ms > Utc::now().timestamp_millis()
    }

    /// `Expiration` in microseconds (lists, creation) or milliseconds (get by name/id).
    fn json(&self, micros: bool) -> Value {
        let expiration = if micros {
            self.expiration_ms.saturating_mul(1000)
        } else {
            self.expiration_ms
        };
        json!({"Id": self.id, "Name": self.name, "Expiration": expiration, "User": self.user})
    }
}

/// Operators and tokens.
#[derive(Debug, Default)]
pub struct BigFixState {
    operators: Vec<Operator>,
    tokens: Vec<Token>,
    next_id: u64,
}

impl BigFixState {
    pub fn seed(&mut self) {
        self.next_id = 1;
        for (id, name, password, master) in [
            (1, ADMIN_USER, ADMIN_PASSWORD, true),
            (2, OPERATOR_USER, OPERATOR_PASSWORD, false),
        ] {
            self.operators.push(Operator {
                id,
                name: name.into(),
                password: password.into(),
                master,
            });
        }
    }

    pub fn live_tokens(&self) -> usize {
        self.tokens.iter().filter(|t| t.live()).count()
    }

    /// The operator that Basic auth or a live bearer token names.
    fn caller(&self, headers: &HeaderMap) -> Option<Operator> {
        let value = headers.get("authorization")?.to_str().ok()?;
        if let Some(basic) = value.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(basic.trim())
                .ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (name, password) = decoded.split_once(':')?;
            return self
                .operators
                .iter()
                .find(|o| o.name == name && o.password == password)
                .cloned();
        }
        let bearer = value.strip_prefix("Bearer ")?.trim();
        let token = self
            .tokens
            .iter()
            .find(|t| t.secret == bearer && t.live())?;
        self.operators.iter().find(|o| o.id == token.user).cloned()
    }

    fn name_taken(&self, user: u64, name: &str, except: Option<u64>) -> bool {
        self.tokens
            .iter()
            .any(|t| t.user == user && t.name == name && Some(t.id) != except)
    }
}

fn text(status: StatusCode, body: &str) -> Response {
    (status, body.to_string()).into_response()
}

fn login_failed() -> Response {
    text(StatusCode::UNAUTHORIZED, "Login failed")
}

/// `duration` in days from now as unix milliseconds; 0 days never expires.
fn expiration(days: u64) -> i64 {
    if days == 0 {
        0
    } else {
        after(Utc::now(), days.saturating_mul(86_400)).timestamp_millis()
    }
}

fn parse_duration(value: Option<&String>) -> Result<Option<u64>, &'static str> {
    match value.map(|v| v.trim()) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| "Invalid duration: a number of days is required"),
    }
}

/// Parameters from the query string, then the form body for those not in it.
fn params(
    query: HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> HashMap<String, String> {
    let mut all = body_params(headers, body);
    all.extend(query);
    all
}

pub fn router() -> Router<Sandbox> {
    Router::new()
        .route("/api/login", get(login))
        .route("/api/tokens", get(list_own))
        .route("/api/tokens/user/{user_id}", get(list_user))
        .route("/api/token", post(create))
        .route("/api/token/name/{name}", get(by_name))
        .route("/api/token/id/{id}", get(by_id))
        .route("/api/token/{id}", put(update).delete(revoke))
        .fallback(|| async { text(StatusCode::NOT_FOUND, "Not Found") })
}

async fn login(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    match lock(&sb.shared.bigfix).caller(&headers) {
        Some(_) => text(StatusCode::OK, "ok"),
        None => login_failed(),
    }
}

async fn list_own(State(sb): State<Sandbox>, headers: HeaderMap) -> Response {
    let state = lock(&sb.shared.bigfix);
    let Some(me) = state.caller(&headers) else {
        return login_failed();
    };
    let tokens: Vec<Value> = state
        .tokens
        .iter()
        .filter(|t| t.user == me.id)
        .map(|t| t.json(true))
        .collect();
    Json(json!({"tokens": tokens})).into_response()
}

async fn list_user(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Response {
    let state = lock(&sb.shared.bigfix);
    let Some(me) = state.caller(&headers) else {
        return login_failed();
    };
    if !me.master {
        return text(
            StatusCode::FORBIDDEN,
            "Only master operators can see the tokens of other operators",
        );
    }
    let Some(user) = user_id
        .parse::<u64>()
        .ok()
        .filter(|id| state.operators.iter().any(|o| o.id == *id))
    else {
        return text(StatusCode::NOT_FOUND, "Operator not found");
    };
    let tokens: Vec<Value> = state
        .tokens
        .iter()
        .filter(|t| t.user == user)
        .map(|t| t.json(true))
        .collect();
    Json(json!({"Tokens": tokens})).into_response()
}

async fn by_name(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let state = lock(&sb.shared.bigfix);
    let Some(me) = state.caller(&headers) else {
        return login_failed();
    };
    let own = state
        .tokens
        .iter()
        .find(|t| t.user == me.id && t.name == name);
    let any = || state.tokens.iter().find(|t| me.master && t.name == name);
    match own.or_else(any) {
        Some(t) => Json(t.json(false)).into_response(),
        None => text(StatusCode::NOT_FOUND, "Token not found"),
    }
}

async fn by_id(State(sb): State<Sandbox>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let state = lock(&sb.shared.bigfix);
    let Some(me) = state.caller(&headers) else {
        return login_failed();
    };
    let id = id.parse::<u64>().ok();
    match state
        .tokens
        .iter()
        .find(|t| Some(t.id) == id && (t.user == me.id || me.master))
    {
        Some(t) => Json(t.json(false)).into_response(),
        None => text(StatusCode::NOT_FOUND, "Token not found"),
    }
}

async fn create(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut state = lock(&sb.shared.bigfix);
    let Some(me) = state.caller(&headers) else {
        return login_failed();
    };
    let params = params(query, &headers, &body);
    let Some(name) = params
        .get("name")
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
    else {
        return text(StatusCode::BAD_REQUEST, "Missing parameter: name");
    };
    let days = match parse_duration(params.get("duration")) {
        Ok(d) => d.unwrap_or(DEFAULT_DURATION_DAYS),
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    if state.name_taken(me.id, &name, None) {
        return text(
            StatusCode::BAD_REQUEST,
            &format!("A token named '{name}' already exists"),
        );
    }
    let token = Token {
        id: state.next_id,
        name,
        user: me.id,
        expiration_ms: expiration(days),
        secret: random_token(32),
    };
    state.next_id += 1;
    let mut answer = json!({"Token": token.secret});
    if let (Some(map), Value::Object(fields)) = (answer.as_object_mut(), token.json(true)) {
        map.extend(fields);
    }
    state.tokens.push(token);
    Json(answer).into_response()
}

/// The token `id` if the caller may change it (its owner or a master operator).
fn changeable(state: &BigFixState, me: &Operator, id: &str) -> Option<usize> {
    let id = id.parse::<u64>().ok()?;
    state
        .tokens
        .iter()
        .position(|t| t.id == id && (t.user == me.id || me.master))
}

async fn update(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut state = lock(&sb.shared.bigfix);
    let Some(me) = state.caller(&headers) else {
        return login_failed();
    };
    let Some(index) = changeable(&state, &me, &id) else {
        return text(StatusCode::NOT_FOUND, "Token not found");
    };
    let params = params(query, &headers, &body);
    let days = match parse_duration(params.get("duration")) {
        Ok(d) => d,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let name = params
        .get("name")
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    let (owner, token_id) = (state.tokens[index].user, state.tokens[index].id);
    if let Some(name) = &name {
        if state.name_taken(owner, name, Some(token_id)) {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("A token named '{name}' already exists"),
            );
        }
    }
    let token = &mut state.tokens[index];
    if let Some(name) = name {
        token.name = name;
    }
    if let Some(days) = days {
        token.expiration_ms = expiration(days);
    }
    text(StatusCode::OK, "OK")
}

async fn revoke(State(sb): State<Sandbox>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let mut state = lock(&sb.shared.bigfix);
    let Some(me) = state.caller(&headers) else {
        return login_failed();
    };
    match changeable(&state, &me, &id) {
        Some(index) => {
            state.tokens.remove(index);
            text(StatusCode::OK, "OK")
        }
        None => text(StatusCode::NOT_FOUND, "Token not found"),
    }
}

/// Admin: `BESAdmin rotatetokenkey`: every token stops working at once.
pub async fn rotate_token_key(State(sb): State<Sandbox>) -> StatusCode {
    lock(&sb.shared.bigfix).tokens.clear();
    StatusCode::NO_CONTENT
}

/// A CA made at start and a certificate for 127.0.0.1 and localhost that it signed.
#[derive(Debug)]
pub struct Tls {
    pub ca_pem: String,
    pub leaf_sha256: String,
    leaf_der: CertificateDer<'static>,
    leaf_key_der: Vec<u8>,
}

impl Tls {
    pub fn generate() -> std::io::Result<Self> {
        let err = std::io::Error::other;
        let yesterday = Utc::now() - chrono::Duration::days(1);
        // Short enough for platforms that cap leaf lifetimes (398 days).
        let until = yesterday + chrono::Duration::days(390);
        let ymd = |d: chrono::DateTime<Utc>| {
            rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
        };

        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Tokenkeeper sandbox BigFix CA");
        ca_params
            .distinguished_name
            .push(DnType::OrganizationName, "Tokenkeeper sandbox");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.not_before = ymd(yesterday);
        ca_params.not_after = ymd(until);
        let ca_key = KeyPair::generate().map_err(err)?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .map_err(err)?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        leaf_params.is_ca = IsCa::ExplicitNoCa;
        leaf_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.not_before = ymd(yesterday);
        leaf_params.not_after = ymd(until);
        let leaf_key = KeyPair::generate().map_err(err)?;
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).map_err(err)?;

        Ok(Self {
            ca_pem: ca_cert.pem(),
            leaf_sha256: hex::encode(Sha256::digest(leaf.der())),
            leaf_der: leaf.der().clone(),
            leaf_key_der: leaf_key.serialize_der(),
        })
    }

    /// A certificate (the first in `cert`) and its PKCS#8 key, as `openssl req -x509
    /// -nodes` writes them; `ca_pem` is then the certificate file itself.
    pub fn from_pem_files(cert: &std::path::Path, key: &std::path::Path) -> std::io::Result<Self> {
        use rustls::pki_types::pem::PemObject;
        use std::io::Error;
        let cert_pem = std::fs::read_to_string(cert)?;
        let leaf_der = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .next()
            .ok_or_else(|| Error::other(format!("{} holds no certificate", cert.display())))?
            .map_err(Error::other)?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(Error::other)?;
        let PrivateKeyDer::Pkcs8(key) = key else {
            return Err(Error::other("the key must be PKCS#8 (BEGIN PRIVATE KEY)"));
        };
        Ok(Self {
            ca_pem: cert_pem,
            leaf_sha256: hex::encode(Sha256::digest(leaf_der.as_ref())),
            leaf_der,
            leaf_key_der: key.secret_pkcs8_der().to_vec(),
        })
    }

    pub fn server_config(&self) -> std::io::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key_der.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(vec![self.leaf_der.clone()], key)
            .map_err(std::io::Error::other)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Connections whose TLS handshake succeeded, each done in its own task so that a
/// slow or failing client holds up no other.
struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

/// Serves `app` over TLS on `listener` until the runtime stops.
pub async fn serve(listener: TcpListener, config: Arc<rustls::ServerConfig>, app: Router) {
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    let acceptor = TlsAcceptor::from(config);
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(conn) => conn,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
                if let Ok(Ok(tls)) = handshake.await {
                    let _ = tx.send((tls, peer)).await;
                }
            });
        }
    });
    let _ = axum::serve(TlsListener { accepted: rx, addr }, app).await;
}

/// Sandbox mode's BigFix account: the admin on the self-signed TLS listener, with
/// 30-day tokens.
pub fn demo_account(urls: &crate::Urls) -> crate::DemoAccount {
    crate::DemoAccount {
        name: "bigfix-demo",
        vendor: "bigfix",
        base_url: urls.bigfix.clone(),
        fields: vec![
            ("username", ADMIN_USER.into()),
            ("token_duration", DEFAULT_DURATION_DAYS.to_string()),
        ],
        secret: Some(ADMIN_PASSWORD),
        ca_cert_pem: Some(urls.bigfix_ca_pem.clone()),
        labels: vec!["demo", "on-prem"],
    }
}
