//! The OAuth 2.0 device authorization grant (RFC 8628) with rotating refresh tokens,
//! as Auth0 runs it for BigAnimal: one `Authority` per issuer, shared by BigAnimal's
//! issuer and the generic OIDC issuer, with the approval page a browser would show.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{body_params, jwt, lock, random_token, Config, Sandbox};

pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The user every approval signs in as.
pub const SUBJECT: &str = "demo";

/// Refresh-token events, for `/_sandbox/stats`.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct OAuthStats {
    pub refreshes: u64,
    pub replays: u64,
    pub families_revoked: u64,
    /// Previous refresh tokens accepted inside the reuse interval.
    pub reuses: u64,
}

impl OAuthStats {
    pub fn add(&mut self, other: &OAuthStats) {
        self.refreshes += other.refreshes;
        self.replays += other.replays;
        self.families_revoked += other.families_revoked;
        self.reuses += other.reuses;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Approved,
    Denied,
}

#[derive(Debug)]
struct DeviceCode {
    user_code: String,
    client_id: String,
    scope: String,
    status: Status,
    expires_at: Instant,
    interval: Duration,
    last_poll: Option<Instant>,
}

#[derive(Debug)]
struct AccessToken {
    family: u64,
    expires_at: Instant,
}

/// Every token descending from one device grant.
#[derive(Debug)]
struct Family {
    client_id: String,
    scope: String,
    /// The one refresh token that works now; `None` without `offline_access`.
    current: Option<String>,
    /// The token `current` replaced, and when: Auth0's "reuse interval" accepts it
    /// for a while (a client that crashed before storing the answer retries).
    previous: Option<(String, Instant)>,
    started: Instant,
    revoked: bool,
}

/// An issuer's clients, device codes and tokens.
#[derive(Debug, Default)]
pub struct Authority {
    clients: HashSet<String>,
    /// Keyed by device code.
    codes: HashMap<String, DeviceCode>,
    access: HashMap<String, AccessToken>,
    families: HashMap<u64, Family>,
    /// Every refresh token ever issued (used ones too) -> its family.
    refresh: HashMap<String, u64>,
    next_family: u64,
    pub stats: OAuthStats,
    /// Every access token granted: (family, issued, expires), for `/_sandbox/issued`.
    issued: Vec<(
        u64,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
    )>,
}

/// An OAuth error answer: `{"error", "error_description"}`.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response()
    }
}

/// A device code just issued.
#[derive(Debug)]
pub struct Issued {
    pub device_code: String,
    pub user_code: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// What became of an approval or a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    Done,
    /// No pending code by that user code (unknown, expired or already redeemed).
    Unknown,
}

fn user_code() -> String {
    // Auth0's alphabet: consonants only, so that no word is spelt by accident.
    const LETTERS: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut rng = rand::rng();
    let mut pick = || char::from(LETTERS[rng.random_range(0..LETTERS.len())]);
    let a: String = (0..4).map(|_| pick()).collect();
    let b: String = (0..4).map(|_| pick()).collect();
    format!("{a}-{b}")
}

fn normalize_user_code(code: &str) -> String {
    let letters: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if letters.len() == 8 {
        format!("{}-{}", &letters[..4], &letters[4..])
    } else {
        letters
    }
}

impl Authority {
    pub fn register(&mut self, client_id: &str) {
        self.clients.insert(client_id.to_string());
    }

    fn check_client(&self, client_id: Option<&String>) -> Result<String, OAuthError> {
        let Some(client_id) = client_id.filter(|c| !c.is_empty()) else {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: client_id",
            ));
        };
        if !self.clients.contains(client_id) {
            return Err(OAuthError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Unknown client.",
            ));
        }
        Ok(client_id.clone())
    }

    /// The device authorization endpoint.
    pub fn device_authorization(
        &mut self,
        config: &Config,
        params: &HashMap<String, String>,
    ) -> Result<Issued, OAuthError> {
        let client_id = self.check_client(params.get("client_id"))?;
        let device_code = random_token(18);
        let user_code = user_code();
        let now = Instant::now();
        self.codes.insert(
            device_code.clone(),
            DeviceCode {
                user_code: user_code.clone(),
                client_id,
                scope: params.get("scope").cloned().unwrap_or_default(),
                status: Status::Pending,
                expires_at: now + config.device_code_ttl,
                interval: config.device_interval,
                last_poll: None,
            },
        );
        Ok(Issued {
            device_code,
            user_code,
            expires_in: config.device_code_ttl.as_secs(),
            interval: config.device_interval.as_secs().max(1),
        })
    }

    /// The token endpoint: the device-code and refresh-token grants.
    pub fn token(
        &mut self,
        config: &Config,
        issuer: &str,
        params: &HashMap<String, String>,
        forced_slow_down: bool,
    ) -> Result<Value, OAuthError> {
        match params.get("grant_type").map(String::as_str) {
            Some(DEVICE_GRANT) => self.device_grant(config, issuer, params, forced_slow_down),
            Some("refresh_token") => self.refresh_grant(config, issuer, params),
            Some(other) => Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("Grant type '{other}' not allowed for the client."),
            )),
            None => Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: grant_type",
            )),
        }
    }

    fn device_grant(
        &mut self,
        config: &Config,
        issuer: &str,
        params: &HashMap<String, String>,
        forced_slow_down: bool,
    ) -> Result<Value, OAuthError> {
        let client_id = self.check_client(params.get("client_id"))?;
        let Some(device_code) = params.get("device_code").filter(|c| !c.is_empty()) else {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: device_code",
            ));
        };
        let now = Instant::now();
        let Some(code) = self
            .codes
            .get_mut(device_code)
            .filter(|c| c.client_id == client_id)
        else {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Invalid or expired device code.",
            ));
        };
        let previous = code.last_poll.replace(now);
        if now >= code.expires_at {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "expired_token",
                "The device code has expired.",
            ));
        }
        let too_soon = previous.is_some_and(|p| now.duration_since(p) < code.interval);
        if forced_slow_down || (code.status == Status::Pending && too_soon) {
            // RFC 8628 3.5: the interval grows by 5 s for this and every later poll.
            code.interval += Duration::from_secs(5);
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "slow_down",
                format!(
                    "You are polling faster than allowed; wait {} s between polls.",
                    code.interval.as_secs()
                ),
            ));
        }
        match code.status {
            Status::Pending => Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "authorization_pending",
                "User has yet to authorize device code.",
            )),
            Status::Denied => Err(OAuthError::new(
                StatusCode::FORBIDDEN,
                "access_denied",
                "User refused to authorize the device.",
            )),
            Status::Approved => {
                let scope = code.scope.clone();
                self.codes.remove(device_code);
                let family = self.next_family;
                self.next_family += 1;
                let offline = scope.split_whitespace().any(|s| s == "offline_access");
                self.families.insert(
                    family,
                    Family {
                        client_id: client_id.clone(),
                        scope: scope.clone(),
                        previous: None,
                        current: None,
                        started: now,
                        revoked: false,
                    },
                );
                let refresh = offline.then(|| self.new_refresh(family));
                Ok(self.grant(config, issuer, family, &client_id, &scope, refresh))
            }
        }
    }

    fn new_refresh(&mut self, family: u64) -> String {
        let token = format!("v1.{}", random_token(48));
        self.refresh.insert(token.clone(), family);
        if let Some(f) = self.families.get_mut(&family) {
            if let Some(old) = f.current.replace(token.clone()) {
                f.previous = Some((old, Instant::now()));
            }
        }
        token
    }

    fn grant(
        &mut self,
        config: &Config,
        issuer: &str,
        family: u64,
        client_id: &str,
        scope: &str,
        refresh: Option<String>,
    ) -> Value {
        let access = random_token(32);
        self.access.insert(
            access.clone(),
            AccessToken {
                family,
                expires_at: Instant::now() + config.oauth_access_ttl,
            },
        );
        let now = chrono::Utc::now();
        self.issued.push((
            family,
            now,
            crate::after(now, config.oauth_access_ttl.as_secs()),
        ));
        let id_token = jwt::encode(&json!({
            "iss": issuer,
            "sub": SUBJECT,
            "aud": client_id,
            "iat": now.timestamp(),
            "exp": crate::after(now, config.oauth_access_ttl.as_secs()).timestamp(),
            "name": "Demo User",
            "email": "demo@example.com",
        }));
        let mut answer = json!({
            "access_token": access,
            "id_token": id_token,
            "scope": scope,
            "expires_in": config.oauth_access_ttl.as_secs(),
            "token_type": "Bearer",
        });
        if let (Some(r), Some(map)) = (refresh, answer.as_object_mut()) {
            map.insert("refresh_token".into(), Value::String(r));
        }
        answer
    }

    fn refresh_grant(
        &mut self,
        config: &Config,
        issuer: &str,
        params: &HashMap<String, String>,
    ) -> Result<Value, OAuthError> {
        let client_id = self.check_client(params.get("client_id"))?;
        let invalid = || {
            OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Unknown or invalid refresh token.",
            )
        };
        let Some(token) = params.get("refresh_token").filter(|t| !t.is_empty()) else {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: refresh_token",
            ));
        };
        let Some(&family_id) = self.refresh.get(token) else {
            return Err(invalid());
        };
        let Some(family) = self.families.get(&family_id) else {
            return Err(invalid());
        };
        if family.client_id != client_id || family.revoked {
            return Err(invalid());
        }
        let reused = family
            .previous
            .as_ref()
            .is_some_and(|(p, at)| p == token && at.elapsed() < config.oauth_reuse_interval);
        if reused {
            self.stats.reuses += 1;
        } else if family.current.as_deref() != Some(token.as_str()) {
            // A used refresh token came back: someone may have stolen it. Revoke all.
            self.stats.replays += 1;
            self.revoke_family(family_id);
            return Err(invalid());
        }
        if family.started.elapsed() >= config.oauth_refresh_ttl {
            return Err(invalid());
        }
        let scope = family.scope.clone();
        self.stats.refreshes += 1;
        let refresh = self.new_refresh(family_id);
        Ok(self.grant(config, issuer, family_id, &client_id, &scope, Some(refresh)))
    }

    fn revoke_family(&mut self, family_id: u64) {
        if let Some(f) = self.families.get_mut(&family_id) {
            if !f.revoked {
                f.revoked = true;
                f.current = None;
                self.stats.families_revoked += 1;
            }
        }
        self.access.retain(|_, a| a.family != family_id);
    }

    /// Revokes every family: no refresh token nor access token works any more.
    pub fn revoke_all(&mut self) {
        let ids: Vec<u64> = self.families.keys().copied().collect();
        for id in ids {
            self.revoke_family(id);
        }
    }

    /// When a live access token expires, or `None` for a dead or unknown one.
    pub fn access_expiry(&self, token: &str) -> Option<Instant> {
        let a = self.access.get(token)?;
        let revoked = self.families.get(&a.family).is_none_or(|f| f.revoked);
        (a.expires_at > Instant::now() && !revoked).then_some(a.expires_at)
    }

    /// The family a live or dead access token belongs to.
    pub fn access_family(&self, token: &str) -> Option<u64> {
        self.access.get(token).map(|a| a.family)
    }

    /// Every access token granted, oldest first: its family, and when it was issued
    /// and expires (milliseconds since the epoch).
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

    /// Each family's refresh tokens as the issuer holds them: the current one and the
    /// one it replaced, as SHA-256 hex (a test compares them with what a client
    /// stored without the sandbox handing out live tokens).
    pub fn refresh_tokens(&self) -> Vec<Value> {
        let mut ids: Vec<&u64> = self.families.keys().collect();
        ids.sort();
        ids.into_iter()
            .map(|id| {
                let f = &self.families[id];
                json!({
                    "family": id,
                    "current_sha256": f.current.as_deref().map(sha256_hex),
                    "previous_sha256": f.previous.as_ref().map(|(p, _)| sha256_hex(p)),
                    "revoked": f.revoked,
                })
            })
            .collect()
    }

    /// What this issuer makes of a refresh token: `None` when it never issued it;
    /// else its family, whether it is the family's current one or the one that
    /// current replaced, and whether the family is revoked.
    pub fn refresh_token_state(&self, token: &str) -> Option<Value> {
        let id = self.refresh.get(token)?;
        let f = self.families.get(id)?;
        Some(json!({
            "family": id,
            "current": f.current.as_deref() == Some(token),
            "previous": f.previous.as_ref().is_some_and(|(p, _)| p == token),
            "revoked": f.revoked,
        }))
    }

    /// The code still pending by `user_code` (normalized), if any.
    fn pending_mut(&mut self, user_code: &str) -> Option<&mut DeviceCode> {
        let wanted = normalize_user_code(user_code);
        let now = Instant::now();
        self.codes
            .values_mut()
            .find(|c| c.user_code == wanted && c.expires_at > now)
    }

    /// Approves or denies the pending code by `user_code`.
    pub fn decide(&mut self, user_code: &str, approve: bool) -> Decided {
        match self.pending_mut(user_code) {
            Some(code) => {
                code.status = if approve {
                    Status::Approved
                } else {
                    Status::Denied
                };
                Decided::Done
            }
            None => Decided::Unknown,
        }
    }

    /// Ends a pending code's life now, as if its `expires_in` had run out: tests see
    /// an expired code without waiting for it.
    pub fn expire(&mut self, user_code: &str) -> Decided {
        match self.pending_mut(user_code) {
            Some(code) => {
                code.expires_at = Instant::now();
                Decided::Done
            }
            None => Decided::Unknown,
        }
    }

    /// Whether a live code has this user code.
    fn knows(&self, user_code: &str) -> bool {
        let wanted = normalize_user_code(user_code);
        let now = Instant::now();
        self.codes
            .values()
            .any(|c| c.user_code == wanted && c.expires_at > now)
    }
}

/// The device authorization endpoint's answer.
pub fn device_answer(issued: Issued, verification_uri: &str) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "device_code": issued.device_code,
            "user_code": issued.user_code,
            "verification_uri": verification_uri,
            "verification_uri_complete": format!("{verification_uri}?user_code={}", issued.user_code),
            "expires_in": issued.expires_in,
            "interval": issued.interval,
        })),
    )
        .into_response()
}

/// The token endpoint of the issuer `issuer` whose state is `authority`.
pub fn token_endpoint(
    sb: &Sandbox,
    authority: &mut Authority,
    issuer: &str,
    headers: &HeaderMap,
    body: &Bytes,
    forced_slow_down: bool,
) -> Response {
    let params = body_params(headers, body);
    match authority.token(&sb.config, issuer, &params, forced_slow_down) {
        Ok(answer) => ([(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct CodeQuery {
    #[serde(default)]
    user_code: Option<String>,
}

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body><h1>{title}</h1>\n{body}\n</body></html>\n"
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; form-action 'self'",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

/// The page at the verification URI: the code to confirm, and Approve/Deny buttons
/// that post back to the same path (`action` is that path's last segment).
pub fn approval_page(authority: &Authority, action: &str, query: &CodeQuery) -> Response {
    let buttons = "<button type=\"submit\" name=\"action\" value=\"approve\">Approve</button>\n<button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>";
    match query.user_code.as_deref().filter(|c| !c.is_empty()) {
        Some(code) if authority.knows(code) => {
            let code = escape(&normalize_user_code(code));
            page(
                StatusCode::OK,
                "Device confirmation",
                &format!(
                    "<p>Confirm that your device shows this code: <strong>{code}</strong></p>\n<form method=\"post\" action=\"{action}\">\n<input type=\"hidden\" name=\"user_code\" value=\"{code}\">\n{buttons}\n</form>"
                ),
            )
        }
        Some(_) => page(
            StatusCode::NOT_FOUND,
            "Unknown code",
            "<p>This code is unknown or has expired. Start again on your device.</p>",
        ),
        None => page(
            StatusCode::OK,
            "Device activation",
            &format!(
                "<form method=\"post\" action=\"{action}\">\n<label>Enter the code your device shows: <input type=\"text\" name=\"user_code\" autocomplete=\"off\"></label>\n{buttons}\n</form>"
            ),
        ),
    }
}

/// What the approval form posts.
pub fn approval_post(authority: &mut Authority, body: &Bytes) -> Response {
    let params: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let code = params.get("user_code").cloned().unwrap_or_default();
    let approve = match params.get("action").map(String::as_str) {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "<p>Choose Approve or Deny.</p>",
            )
        }
    };
    match authority.decide(&code, approve) {
        Decided::Done if approve => page(
            StatusCode::OK,
            "Device approved",
            "<p>You can close this window and return to your device.</p>",
        ),
        Decided::Done => page(
            StatusCode::OK,
            "Denied",
            "<p>The device was not given access.</p>",
        ),
        Decided::Unknown => page(
            StatusCode::NOT_FOUND,
            "Unknown code",
            "<p>This code is unknown or has expired. Start again on your device.</p>",
        ),
    }
}

#[derive(Debug, Deserialize)]
pub struct UserCode {
    user_code: String,
}

/// Applies `act` to the pending code at whichever issuer has it.
fn at_either_issuer(sb: &Sandbox, act: impl Fn(&mut Authority) -> Decided) -> StatusCode {
    let done = act(&mut lock(&sb.shared.biganimal).authority) == Decided::Done
        || act(&mut lock(&sb.shared.oidc)) == Decided::Done;
    if done {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

/// Admin: approves a pending device code at whichever issuer has it.
pub async fn admin_approve(State(sb): State<Sandbox>, Json(req): Json<UserCode>) -> StatusCode {
    at_either_issuer(&sb, |a| a.decide(&req.user_code, true))
}

/// Admin: denies a pending device code at whichever issuer has it.
pub async fn admin_deny(State(sb): State<Sandbox>, Json(req): Json<UserCode>) -> StatusCode {
    at_either_issuer(&sb, |a| a.decide(&req.user_code, false))
}

/// Admin: makes a pending device code expire now, at whichever issuer has it.
pub async fn admin_expire(State(sb): State<Sandbox>, Json(req): Json<UserCode>) -> StatusCode {
    at_either_issuer(&sb, |a| a.expire(&req.user_code))
}

/// Lowercase hex SHA-256 of a token.
pub fn sha256_hex(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Admin: every refresh-token family at both issuers, its current and previous
/// refresh token as SHA-256 hex.
pub async fn admin_refresh_tokens(State(sb): State<Sandbox>) -> Json<Value> {
    Json(json!({
        "biganimal": lock(&sb.shared.biganimal).authority.refresh_tokens(),
        "oidc": lock(&sb.shared.oidc).refresh_tokens(),
    }))
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    token: String,
}

/// Admin: what the issuer that issued a refresh token makes of it now (is it the
/// family's current one?); `{"known": false}` when neither issuer issued it.
pub async fn admin_refresh_token_state(
    State(sb): State<Sandbox>,
    Json(q): Json<TokenQuery>,
) -> Json<Value> {
    let at_biganimal = lock(&sb.shared.biganimal)
        .authority
        .refresh_token_state(&q.token)
        .map(|v| ("biganimal", v));
    let found = at_biganimal.or_else(|| {
        lock(&sb.shared.oidc)
            .refresh_token_state(&q.token)
            .map(|v| ("oidc", v))
    });
    Json(match found {
        Some((issuer, mut v)) => {
            v["known"] = json!(true);
            v["issuer"] = json!(issuer);
            v
        }
        None => json!({"known": false}),
    })
}

/// Admin: revokes every refresh-token family at both issuers.
pub async fn admin_revoke_all(State(sb): State<Sandbox>) -> StatusCode {
    lock(&sb.shared.biganimal).authority.revoke_all();
    lock(&sb.shared.oidc).revoke_all();
    StatusCode::NO_CONTENT
}
