//! One OpenBao (or Vault) server as Tokenkeeper talks to it: the address and its TLS
//! trust (the vendors' HTTP rules: a CA or a pin, never verification turned off),
//! a login (a token, userpass or AppRole), the token it yields kept in a `Secret` and
//! renewed with `auth/token/renew-self` before its TTL ends, and every answer turned
//! into a typed `Failure` whose message says what to do.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderValue;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

use super::failure::{Failure, TeamError, TeamResult};
use crate::http::{self, Answer};
use crate::model::{Account, Method as SignIn, Vendor};
use crate::secret::{quote_vendor, Secret};

/// Where the team store is and how its certificate is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// `https://bao.example.com:8200` (plain http only on this machine).
    pub address: String,
    /// The server's own CA (PEM), trusted beside the system's roots.
    pub ca_cert_pem: Option<String>,
    /// A pinned certificate's SHA-256 (hex), instead of a CA.
    pub pin_sha256: Option<String>,
}

impl Server {
    pub fn at(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            ca_cert_pem: None,
            pin_sha256: None,
        }
    }
}

/// How Tokenkeeper logs in to the team store.
#[derive(Debug, Clone)]
pub enum Login {
    /// A token given by the admin (or a service manager): used as is, renewed while
    /// it is renewable; when it expires, a human must give a new one.
    Token(Secret),
    /// A person's user name and password (the userpass method at `mount`).
    Userpass {
        mount: String,
        username: String,
        password: Secret,
    },
    /// A machine's role id and secret id (the AppRole method at `mount`).
    AppRole {
        mount: String,
        role_id: String,
        secret_id: Secret,
    },
}

impl Login {
    pub fn userpass(username: impl Into<String>, password: Secret) -> Self {
        Login::Userpass {
            mount: "userpass".into(),
            username: username.into(),
            password,
        }
    }

    pub fn approle(role_id: impl Into<String>, secret_id: Secret) -> Self {
        Login::AppRole {
            mount: "approle".into(),
            role_id: role_id.into(),
            secret_id,
        }
    }

    /// The method's name, for messages.
    fn method(&self) -> &'static str {
        match self {
            Login::Token(_) => "token",
            Login::Userpass { .. } => "userpass",
            Login::AppRole { .. } => "AppRole",
        }
    }

    fn secrets(&self) -> Vec<&Secret> {
        match self {
            Login::Token(t) => vec![t],
            Login::Userpass { password, .. } => vec![password],
            Login::AppRole { secret_id, .. } => vec![secret_id],
        }
    }
}

/// What the server says about the token in use (`auth/token/lookup-self`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFacts {
    /// Time left; zero for a token that never expires (a root token).
    pub ttl: Duration,
    /// The TTL it was created (or last renewed) with.
    pub creation_ttl: Duration,
    pub renewable: bool,
    pub policies: Vec<String>,
    pub expire_time: Option<DateTime<Utc>>,
}

impl TokenFacts {
    /// Whether the token should be renewed now: a third of its lifetime or less
    /// left (as Vault Agent does), and never later than a minute before it ends.
    pub fn renewal_due(&self) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let margin = (self.creation_ttl / 3).max(Duration::from_secs(60).min(self.creation_ttl));
        self.ttl <= margin
    }
}

/// The token in use, with whatever login made it.
struct Held {
    token: Secret,
}

/// A connection to one OpenBao server under one login. Cheap to share (`Arc`).
pub struct OpenBao {
    address: String,
    http: reqwest::Client,
    login: Login,
    held: Mutex<Option<Held>>,
    /// Where requests go: the cluster's active node as the configured address says
    /// (`sys/leader`), so nothing is read from a standby that may be behind; `None`
    /// until asked, and forgotten whenever a node does not answer or leads no more.
    active: Mutex<Option<String>>,
}

impl std::fmt::Debug for OpenBao {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenBao")
            .field("address", &self.address)
            .field("login", &self.login.method())
            .finish_non_exhaustive()
    }
}

/// A secret read out of an answer, straight into a `Secret`.
struct SecretText(Secret);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretText(Secret::new(s)))
    }
}

#[derive(Deserialize)]
struct AuthAnswer {
    auth: Option<AuthBlock>,
}

#[derive(Deserialize)]
struct AuthBlock {
    client_token: SecretText,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
    #[serde(default)]
    policies: Vec<String>,
}

#[derive(Deserialize)]
struct LookupAnswer {
    data: LookupData,
}

/// `lookup-self`'s facts; its `id` (the token itself) is deliberately not read.
#[derive(Deserialize)]
struct LookupData {
    #[serde(default)]
    ttl: u64,
    #[serde(default)]
    creation_ttl: u64,
    #[serde(default)]
    renewable: bool,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    expire_time: Option<String>,
}

/// `sys/leader`: which node of a cluster is active.
#[derive(Deserialize)]
struct LeaderAnswer {
    #[serde(default)]
    ha_enabled: bool,
    #[serde(default)]
    is_self: bool,
    #[serde(default)]
    leader_address: String,
}

#[derive(Deserialize)]
struct ErrorsAnswer {
    #[serde(default)]
    errors: Vec<String>,
}

/// How long a request to the team store may take before it counts as unreachable:
/// a lease is short, so a hung server must not hold a renewal for long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl OpenBao {
    /// A connection to `server` that will log in with `login` at first use.
    pub fn new(server: &Server, login: Login) -> TeamResult<Self> {
        let address = http::normalize_base_url(&server.address)
            .map_err(|e| TeamError::new(Failure::Usage, e.message().to_string()))?;
        let http = http::client_for(&trust_of(server, &address))
            .map_err(|e| TeamError::new(Failure::Usage, e.message().to_string()))?;
        let held = match &login {
            Login::Token(t) => Some(Held { token: t.clone() }),
            _ => None,
        };
        Ok(Self {
            address,
            http,
            login,
            held: Mutex::new(held),
            active: Mutex::new(None),
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// "OpenBao at https://…", for messages.
    pub fn describe(&self) -> String {
        format!("the team store (OpenBao) at {}", self.address)
    }

    /// Starts from a token an earlier process of this user logged in with (kept in
    /// the OS keyring), so this one need not log in again; a dead one is replaced by
    /// a login at the first refusal. Only for logins that can log in again.
    pub fn resume(&self, token: Secret) {
        if self.can_log_in() && !token.is_empty() {
            self.set_token(token);
        }
    }

    /// Uses `token` from now on: the newest token of the OpenBao account that is
    /// this team's login (renewed, or traded again, by the vault's engine).
    pub fn use_token(&self, token: Secret) {
        if !token.is_empty() && self.token().as_ref() != Some(&token) {
            self.set_token(token);
        }
    }

    /// The token in use, for the session kept in the OS keyring (never shown).
    pub(crate) fn session_token(&self) -> Option<Secret> {
        self.token()
    }

    fn token(&self) -> Option<Secret> {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|h| h.token.clone())
    }

    fn set_token(&self, token: Secret) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(Held { token });
    }

    /// Logs in with the configured method (userpass or AppRole) and keeps the token.
    /// With a given token, checks it instead.
    pub async fn login(&self) -> TeamResult<TokenFacts> {
        let (path, body) = match &self.login {
            Login::Token(_) => return self.lookup_self().await,
            Login::Userpass {
                mount,
                username,
                password,
            } => (
                format!("auth/{}/login/{}", segment(mount)?, segment(username)?),
                json_body(&[("password", password.expose())]),
            ),
            Login::AppRole {
                mount,
                role_id,
                secret_id,
            } => (
                format!("auth/{}/login", segment(mount)?),
                json_body(&[("role_id", role_id), ("secret_id", secret_id.expose())]),
            ),
        };
        let answer = self
            .send(Method::POST, &path, Some(body), "log in", false)
            .await
            .map_err(|e| self.login_refused(e))?;
        let missing = format!("answered the {} login without a token", self.login.method());
        let (token, facts) = self.auth_of(answer, &missing)?;
        self.set_token(token);
        Ok(facts)
    }

    /// The `auth` block of a login's or a renewal's answer: the token and its facts.
    /// `missing` says what the server did when the block is absent.
    fn auth_of(&self, answer: Answer, missing: &str) -> TeamResult<(Secret, TokenFacts)> {
        let auth = self
            .secret_json::<AuthAnswer>(answer)?
            .auth
            .ok_or_else(|| {
                TeamError::new(Failure::Protocol, format!("{} {missing}", self.describe()))
            })?;
        let ttl = Duration::from_secs(auth.lease_duration);
        let facts = TokenFacts {
            ttl,
            creation_ttl: ttl,
            renewable: auth.renewable,
            policies: auth.policies,
            expire_time: None,
        };
        Ok((auth.client_token.0, facts))
    }

    /// A login refused is the login's fault, not the token's: say which credentials.
    fn login_refused(&self, e: TeamError) -> TeamError {
        match e.failure() {
            Failure::PermissionDenied | Failure::TokenInvalid | Failure::Usage => TeamError::new(
                Failure::TokenInvalid,
                format!(
                    "{} refused the {} login ({}): check the {} and that the method is \
                     enabled at that path, then log in again",
                    self.describe(),
                    self.login.method(),
                    e.message(),
                    match self.login {
                        Login::AppRole { .. } => "role id and secret id",
                        Login::Userpass { .. } => "user name and password",
                        Login::Token(_) => "token",
                    }
                ),
            ),
            _ => e,
        }
    }

    /// What the server says about the token in use.
    pub async fn lookup_self(&self) -> TeamResult<TokenFacts> {
        let answer = self
            .send(
                Method::GET,
                "auth/token/lookup-self",
                None,
                "look up its token",
                true,
            )
            .await?;
        let data = self.secret_json::<LookupAnswer>(answer)?.data;
        Ok(TokenFacts {
            ttl: Duration::from_secs(data.ttl),
            creation_ttl: Duration::from_secs(data.creation_ttl),
            renewable: data.renewable,
            policies: data.policies,
            expire_time: data
                .expire_time
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc)),
        })
    }

    /// Renews the token in use (`auth/token/renew-self`), asking for `increment`
    /// (the server caps it at the token's max TTL).
    pub async fn renew_self(&self, increment: Option<Duration>) -> TeamResult<TokenFacts> {
        let body = match increment {
            Some(i) => json_body(&[("increment", &format!("{}s", i.as_secs()))]),
            None => Zeroizing::new("{}".to_string()),
        };
        let answer = self
            .send(
                Method::POST,
                "auth/token/renew-self",
                Some(body),
                "renew its token",
                true,
            )
            .await?;
        let (token, facts) = self.auth_of(answer, "renewed the token but said nothing of it")?;
        // The token stays the same; keep the answer's copy out of memory.
        drop(token);
        Ok(facts)
    }

    /// Keeps the token alive: logs in if there is none, renews it when a third of
    /// its TTL or less is left, and logs in again (userpass, AppRole) when it can no
    /// longer be renewed or was revoked. Returns the facts of the token now in use.
    pub async fn keep_alive(&self) -> TeamResult<TokenFacts> {
        if self.token().is_none() {
            return self.login().await;
        }
        let facts = match self.lookup_self().await {
            Ok(f) => f,
            Err(e) if e.failure() == Failure::TokenInvalid && self.can_log_in() => {
                return self.login().await
            }
            Err(e) => return Err(e),
        };
        if !facts.renewal_due() {
            return Ok(facts);
        }
        if facts.renewable {
            match self.renew_self(None).await {
                // A token at its max TTL renews to less than it had: log in instead.
                Ok(renewed) if !renewed.renewal_due() || !self.can_log_in() => return Ok(renewed),
                Ok(_) => {}
                Err(e) if !self.can_log_in() => return Err(e),
                Err(e) if e.failure().is_transient() => return Err(e),
                Err(_) => {}
            }
        }
        if self.can_log_in() {
            return self.login().await;
        }
        Ok(facts)
    }

    /// Logs in unless a token is held already (a given token is taken as it is).
    pub async fn ready(&self) -> TeamResult<()> {
        if self.token().is_none() {
            self.login().await?;
        }
        Ok(())
    }

    /// Runs `op` (the caller has made sure of a token: [`Self::ready`], or the team
    /// store's own); a token refused midway (its TTL ran out while the machine slept,
    /// an admin revoked it) is replaced once by `log_in` when the login can be
    /// repeated (AppRole, userpass), then `op` runs again. When another call already
    /// replaced the refused token meanwhile, `op` just runs again: each login of an
    /// AppRole may use up one of its secret id's uses.
    pub async fn logged_in<T, F, Fut, L, LFut>(&self, op: F, log_in: L) -> TeamResult<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = TeamResult<T>>,
        L: FnOnce() -> LFut,
        LFut: std::future::Future<Output = TeamResult<TokenFacts>>,
    {
        let used = self.token();
        match op().await {
            Err(e) if e.failure() == Failure::TokenInvalid && self.can_log_in() => {
                if self.token() == used {
                    log_in().await?;
                }
                op().await
            }
            other => other,
        }
    }

    /// The node requests go to: the active node the configured address names
    /// (`sys/leader`, unauthenticated), or the configured address itself (a single
    /// server, a load balancer, or a cluster that did not say). A leader address is
    /// held to the same rules as the configured one (https, or plain http on
    /// loopback only) and the same certificate trust.
    async fn active_node(&self) -> String {
        if let Some(a) = self
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return a;
        }
        let url = format!("{}/v1/sys/leader", self.address);
        let request = self.http.get(&url).timeout(REQUEST_TIMEOUT);
        let leader = match http::send(request, &self.describe()).await {
            Ok(answer) if answer.status.is_success() => {
                serde_json::from_slice::<LeaderAnswer>(&answer.body).ok()
            }
            _ => None,
        };
        let node = leader
            .filter(|l| l.ha_enabled && !l.is_self && !l.leader_address.is_empty())
            .and_then(|l| http::normalize_base_url(&l.leader_address).ok())
            .unwrap_or_else(|| self.address.clone());
        *self.active.lock().unwrap_or_else(|p| p.into_inner()) = Some(node.clone());
        node
    }

    /// Forgets the active node, so the next request asks the configured address again.
    fn forget_active(&self) {
        *self.active.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Whether a refused token can be replaced by logging in again (userpass, AppRole).
    pub fn can_log_in(&self) -> bool {
        !matches!(self.login, Login::Token(_))
    }

    /// Parses an answer that may carry a secret, then wipes its bytes.
    fn secret_json<T: DeserializeOwned>(&self, mut answer: Answer) -> TeamResult<T> {
        let parsed = serde_json::from_slice::<T>(&answer.body);
        answer.body.zeroize();
        parsed.map_err(|_| {
            TeamError::new(
                Failure::Protocol,
                format!(
                    "{} sent an answer Tokenkeeper cannot read (HTTP {}): check that the address \
                     is OpenBao's or Vault's API, not a proxy or portal",
                    self.describe(),
                    answer.status
                ),
            )
        })
    }

    /// Sends one request under the token in use (`authed`) and sorts the answer:
    /// success, or a failure whose message says what to do. `what` is the action,
    /// for messages ("read team/ba/secrets").
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Zeroizing<String>>,
        what: &str,
        authed: bool,
    ) -> TeamResult<Answer> {
        let node = self.active_node().await;
        let url = format!("{node}/v1/{path}");
        let mut request = self
            .http
            .request(method, &url)
            .timeout(REQUEST_TIMEOUT)
            .header("X-Vault-Request", "true");
        let token = if authed {
            let token = self.token().ok_or_else(|| {
                TeamError::new(
                    Failure::TokenInvalid,
                    format!(
                        "Tokenkeeper has not logged in to {} yet: log in first",
                        self.describe()
                    ),
                )
            })?;
            let mut value = HeaderValue::from_str(token.expose()).map_err(|_| {
                TeamError::new(
                    Failure::TokenInvalid,
                    "the team store's token holds characters an HTTP header cannot carry: \
                     give the token again",
                )
            })?;
            value.set_sensitive(true);
            request = request.header("X-Vault-Token", value);
            Some(token)
        } else {
            None
        };
        // What was sent, for scrubbing the server's words before they are quoted.
        let mut sent: Vec<Secret> = self.login.secrets().into_iter().cloned().collect();
        sent.extend(token);
        if let Some(body) = &body {
            if let Ok(mut value) = serde_json::from_str::<serde_json::Value>(body) {
                leaves(&value, &mut sent);
                wipe(&mut value);
            }
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.as_bytes().to_vec());
        }
        let endpoint = format!("{} ({what})", self.describe());
        let answer = match http::send(request, &endpoint).await {
            Ok(a) => a,
            Err(e) => {
                self.forget_active();
                return Err(unreachable(self, e.message()));
            }
        };
        if answer.status.is_success() {
            return Ok(answer);
        }
        let failure = self.classify(&answer, what, &sent);
        if failure
            .as_ref()
            .is_err_and(|e| e.failure() == Failure::LeaderUnavailable)
        {
            // The node that led may lead no more: ask again at the next request.
            self.forget_active();
        }
        match failure {
            // A 403 is either a policy refusal or a dead token: the server says the
            // same words for both, so ask it about the token (allowed by `default`).
            Err(e) if e.failure() == Failure::PermissionDenied && authed && path != LOOKUP => {
                match Box::pin(self.lookup_self()).await {
                    // lookup-self refused: the token itself is dead.
                    Err(l) if l.failure() == Failure::TokenInvalid => {
                        Err(token_invalid(self, what))
                    }
                    _ => Err(e),
                }
            }
            Err(e) if e.failure() == Failure::PermissionDenied && path == LOOKUP => {
                Err(token_invalid(self, what))
            }
            other => other.map(|()| answer),
        }
    }

    fn classify(&self, answer: &Answer, what: &str, sent: &[Secret]) -> TeamResult<()> {
        let said = serde_json::from_slice::<ErrorsAnswer>(&answer.body)
            .map(|e| e.errors.join("; "))
            .unwrap_or_default();
        let said = quote_vendor(&said, sent, 300);
        let lower = said.to_lowercase();
        let status = answer.status.as_u16();
        let who = self.describe();
        let quoted = if said.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {said}")
        };
        let (failure, message) = if lower.contains("sealed") {
            (
                Failure::Sealed,
                format!(
                    "{who} is sealed, so Tokenkeeper could not {what}: ask its operators to \
                     unseal it (bao operator unseal). Shared accounts wait until then; local \
                     accounts are not affected"
                ),
            )
        } else if status == 400 && lower.contains("check-and-set") {
            (
                Failure::CasConflict,
                format!(
                    "{who} refused to {what}: another writer stored a newer version first \
                     (check-and-set). Read the account again; nothing was overwritten"
                ),
            )
        } else if status == 403 {
            (
                Failure::PermissionDenied,
                format!(
                    "{who} denied permission to {what} ({quoted}): the token's policies do not \
                     allow it. Ask the team store's administrators for a policy that grants it; \
                     Tokenkeeper does not work around a refusal"
                ),
            )
        } else if status == 404 {
            (
                Failure::NotFound,
                format!("{who} has nothing to {what}: check the mount and path"),
            )
        } else if status == 429
            || (300..400).contains(&status)
            || lower.contains("standby")
            || lower.contains("not active")
            || lower.contains("active node")
            || lower.contains("leader")
        {
            (
                Failure::LeaderUnavailable,
                format!(
                    "{who} could not {what}: the node that answered is a standby with no \
                     active node to forward to ({quoted}); a leader election may be under \
                     way. Tokenkeeper tries again; if it lasts, check the cluster (bao \
                     operator raft list-peers) or use the cluster's active address"
                ),
            )
        } else if answer.status.is_server_error() {
            (
                Failure::LeaderUnavailable,
                format!(
                    "{who} failed on its side to {what} ({quoted}); a leader change may be \
                     under way. Tokenkeeper tries again; if it lasts, tell the team store's \
                     administrators"
                ),
            )
        } else if status == 400 || status == 405 {
            (
                Failure::Usage,
                format!(
                    "{who} refused to {what} as asked ({quoted}): check the mount (a KV \
                     version 2 engine) and the path prefix"
                ),
            )
        } else {
            (
                Failure::Protocol,
                format!("{who} answered {quoted} to {what}, which Tokenkeeper did not expect"),
            )
        };
        Err(TeamError::new(failure, message))
    }
}

const LOOKUP: &str = "auth/token/lookup-self";

fn token_invalid(bao: &OpenBao, what: &str) -> TeamError {
    let advice = match bao.login {
        Login::Token(_) => {
            "give a new token (bao token create, or ask the team store's administrators); \
             a team that logs in with an account: sign in to that account again"
        }
        Login::Userpass { .. } => "log in again with the user name and password",
        Login::AppRole { .. } => "log in again with the role id and a fresh secret id",
    };
    TeamError::new(
        Failure::TokenInvalid,
        format!(
            "{} no longer accepts Tokenkeeper's token (it expired or was revoked), so \
             Tokenkeeper could not {what}: {advice}",
            bao.describe()
        ),
    )
}

fn unreachable(bao: &OpenBao, detail: &str) -> TeamError {
    TeamError::new(
        Failure::Unreachable,
        format!(
            "{} did not answer: {detail}. Shared accounts wait and Tokenkeeper tries again; \
             local accounts are not affected",
            bao.describe()
        ),
    )
}

/// One segment of an API path (a mount, a user name): no slashes, dots or escapes.
pub(crate) fn segment(s: &str) -> TeamResult<&str> {
    let ok = !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if ok {
        Ok(s)
    } else {
        Err(TeamError::new(
            Failure::Usage,
            format!(
                "'{s}' is not a valid name here (one segment of an OpenBao path): use letters, \
                 digits, '-', '_', '.', '@'"
            ),
        ))
    }
}

/// Every string in a JSON document, as secrets to scrub from the server's words.
fn leaves(value: &serde_json::Value, out: &mut Vec<Secret>) {
    match value {
        serde_json::Value::String(s) => out.push(Secret::new(s.as_str())),
        serde_json::Value::Object(map) => map.values().for_each(|v| leaves(v, out)),
        serde_json::Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
        _ => {}
    }
}

/// Wipes every string of a JSON document that held secrets.
pub(super) fn wipe(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Object(map) => map.values_mut().for_each(wipe),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe),
        _ => {}
    }
}

/// A JSON object of string fields, built in a buffer that is wiped after use.
fn json_body(fields: &[(&str, &str)]) -> Zeroizing<String> {
    let mut map = serde_json::Map::new();
    for (k, v) in fields {
        map.insert((*k).into(), serde_json::Value::String((*v).to_string()));
    }
    let mut value = serde_json::Value::Object(map);
    let text = Zeroizing::new(value.to_string());
    wipe(&mut value);
    text
}

/// The trust settings of the team store in the shape the HTTP layer builds clients
/// from: the same rules as a vendor's (system roots plus a CA, or a pin).
fn trust_of(server: &Server, address: &str) -> Account {
    let mut settings = std::collections::BTreeMap::new();
    if let Some(pin) = &server.pin_sha256 {
        settings.insert(http::PIN_SETTING.to_string(), pin.clone());
    }
    Account {
        id: String::new(),
        name: "team store".into(),
        vendor: Vendor::Oidc,
        base_url: address.to_string(),
        method: SignIn::Password,
        username: None,
        tenant: None,
        iam_id: None,
        client_id: None,
        ca_cert_pem: server.ca_cert_pem.clone(),
        labels: Vec::new(),
        created_at: Utc::now(),
        settings,
        team: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_in_the_last_third_and_never_for_a_root_token() {
        let facts = |ttl, creation| TokenFacts {
            ttl: Duration::from_secs(ttl),
            creation_ttl: Duration::from_secs(creation),
            renewable: true,
            policies: vec![],
            expire_time: None,
        };
        assert!(!facts(0, 0).renewal_due(), "a root token never expires");
        assert!(!facts(3000, 3600).renewal_due());
        assert!(facts(1200, 3600).renewal_due());
        assert!(!facts(70, 120).renewal_due());
        assert!(facts(40, 120).renewal_due());
        assert!(facts(5, 10).renewal_due());
    }

    #[test]
    fn a_login_never_shows_its_secrets() {
        let login = Login::approle("role-1", Secret::new("secret-id-canary"));
        let bao = OpenBao::new(&Server::at("http://127.0.0.1:1"), login).unwrap();
        let shown = format!("{bao:?} {:?}", bao.login);
        assert!(!shown.contains("secret-id-canary"), "{shown}");
    }

    #[test]
    fn names_in_paths_are_checked() {
        assert!(segment("approle").is_ok());
        assert!(segment("alice@example.com").is_ok());
        for bad in ["", "..", "a/b", "a?b", "a b"] {
            assert!(segment(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn plain_http_is_refused_across_the_network() {
        let e = OpenBao::new(
            &Server::at("http://bao.example.com:8200"),
            Login::Token(Secret::new("t")),
        )
        .unwrap_err();
        assert_eq!(e.failure(), Failure::Usage);
        assert!(e.message().contains("plain http"), "{e}");
    }
}
