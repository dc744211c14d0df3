//! OpenBao and HashiCorp Vault tokens as accounts: a token the admin was given, kept
//! alive with `auth/token/renew-self` before its TTL ends and alerted on before the
//! max TTL that no renewal passes; a userpass login (`auth/userpass/login/USER`)
//! whose token is traded again with the stored password; or an OIDC sign-in in the
//! browser (`auth/oidc`), which comes back to a loopback callback as `bao login
//! -method=oidc` does. Sent as `X-Vault-Token`, which both servers read.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use super::{required, Call, DeviceCode, Issued, VendorFlow};
use crate::error::{Error, Remedy, Result};
use crate::fields::{Field, FieldKey, MethodSpec};
use crate::http::{self, Answer};
use crate::model::{seconds_after, Method, RenewsWith, TokenMeta, Vendor};
use crate::secret::{quote_vendor, Secret, SecretBundle, SecretKind};

const LOOKUP_SELF: &str = "/v1/auth/token/lookup-self";
const RENEW_SELF: &str = "/v1/auth/token/renew-self";
/// The userpass method at its default mount.
const USERPASS_LOGIN: &str = "/v1/auth/userpass/login/";
/// The OIDC auth method at its default mount.
const OIDC_AUTH_URL: &str = "/v1/auth/oidc/oidc/auth_url";
const OIDC_CALLBACK: &str = "/v1/auth/oidc/oidc/callback";
/// The port `bao login -method=oidc` listens on by default.
const DEFAULT_CALLBACK_PORT: &str = "8250";
/// How long a browser sign-in waits for the browser to come back.
const BROWSER_WAIT: Duration = Duration::minutes(5);
/// How much of a server's error list a message quotes.
const QUOTED_CHARS: usize = 200;

#[derive(Debug)]
pub struct OpenBao;

const METHODS: &[MethodSpec] = &[
    MethodSpec {
        method: Method::UserToken,
        fields: &[],
        secret: Some(SecretKind::UserToken),
    },
    MethodSpec {
        method: Method::Password,
        fields: &[Field {
            key: FieldKey::Username,
            label: "Username",
            required: true,
            help: "A user of the userpass method (enabled at auth/userpass)",
            default: None,
        }],
        secret: Some(SecretKind::Password),
    },
    MethodSpec {
        method: Method::DeviceCode,
        fields: &[
            Field {
                key: FieldKey::Role,
                label: "Role",
                required: false,
                help: "The OIDC role at auth/oidc; empty: the server's default role",
                default: None,
            },
            Field {
                key: FieldKey::CallbackPort,
                label: "Callback port",
                required: false,
                help: "The browser comes back to http://127.0.0.1:PORT/oidc/callback, \
                       which the role's allowed_redirect_uris must name",
                default: Some(DEFAULT_CALLBACK_PORT),
            },
        ],
        secret: None,
    },
];

/// `lookup-self`'s facts; its `id` (the token itself) is deliberately not read.
#[derive(Deserialize)]
struct Lookup {
    data: LookupData,
}

#[derive(Deserialize)]
struct LookupData {
    /// Required: an answer without it says nothing of the token's life.
    ttl: i64,
    #[serde(default)]
    creation_ttl: i64,
    #[serde(default)]
    renewable: bool,
    #[serde(default)]
    explicit_max_ttl: i64,
    #[serde(default)]
    issue_time: Option<String>,
    /// `null` for a token that never expires (a root token).
    #[serde(default)]
    expire_time: Option<String>,
}

/// A login's or a renewal's `auth` block.
#[derive(Deserialize)]
struct AuthAnswer {
    auth: Option<AuthBlock>,
}

#[derive(Deserialize)]
struct AuthBlock {
    #[serde(default)]
    client_token: Option<String>,
    /// Required: a login or renewal that does not say how long is not believed.
    lease_duration: i64,
    #[serde(default)]
    renewable: bool,
}

#[derive(Deserialize)]
struct Errors {
    #[serde(default)]
    errors: Vec<String>,
}

impl OpenBao {
    fn endpoint(call: &Call<'_>, path: &str) -> String {
        format!("OpenBao at {}{path}", call.account.base_url)
    }

    /// The server's own words (`errors`), with any secret sent scrubbed out.
    fn said(answer: &Answer, sent: &[&Secret]) -> String {
        let words = serde_json::from_slice::<Errors>(&answer.body)
            .map(|e| e.errors.join("; "))
            .unwrap_or_default();
        let words = quote_vendor(&words, sent.iter().copied(), QUOTED_CHARS);
        if words.is_empty() {
            format!("HTTP {}", answer.status.as_u16())
        } else {
            format!("HTTP {}: {words}", answer.status.as_u16())
        }
    }

    /// A token the server refuses (403: expired, revoked, or never valid).
    fn token_refused(call: &Call<'_>, answer: &Answer, token: &Secret, path: &str) -> Error {
        let name = call.name();
        let browser = call.account.method == Method::DeviceCode;
        let what = if browser {
            format!("Sign in to '{name}' again through the browser")
        } else {
            format!(
                "Get a new token (`bao login`, or from your Vault administrator) and sign in \
                 to '{name}' again with it"
            )
        };
        Error::needs_sign_in(format!(
            "{} refused the token of account '{name}' ({}): it expired or was revoked, or \
             lacks the default policy. {what}",
            Self::endpoint(call, path),
            Self::said(answer, &[token]),
        ))
        .with_remedy(Remedy::sign_in(name, !browser))
    }

    async fn lookup(call: &Call<'_>, token: &Secret) -> Result<LookupData> {
        let url = format!("{}{LOOKUP_SELF}", call.account.base_url);
        let request = call.http.get(&url).header("X-Vault-Token", token.expose());
        let answer = http::send(request, &Self::endpoint(call, LOOKUP_SELF)).await?;
        match answer.status {
            s if s.is_success() => {
                let data = answer.json::<Lookup>()?.data;
                // Zero is a token that never expires, and only one without an expiry.
                if data.ttl < 0 || (data.ttl == 0 && data.expire_time.is_some()) {
                    return Err(Error::vendor(format!(
                        "{} said the token of account '{}' has {} s left but an expiry: \
                         Tokenkeeper does not guess; try again, and check the server's clock",
                        Self::endpoint(call, LOOKUP_SELF),
                        call.name(),
                        data.ttl
                    )));
                }
                Ok(data)
            }
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => {
                Err(Self::token_refused(call, &answer, token, LOOKUP_SELF))
            }
            _ => Err(Self::server_error(call, &answer, LOOKUP_SELF, &[token])),
        }
    }

    /// An error answer that is not OpenBao's own (`{"errors": [...]}`): a proxy's
    /// page, a truncated body; `Answer::unexpected` says so.
    fn not_openbaos(answer: &Answer) -> bool {
        answer.is_html() || serde_json::from_slice::<Errors>(&answer.body).is_err()
    }

    /// Any other answer: sealed (503), a standby that cannot forward (429/473), a
    /// proxy's page; the server's words when it gave some.
    fn server_error(call: &Call<'_>, answer: &Answer, path: &str, sent: &[&Secret]) -> Error {
        if Self::not_openbaos(answer) {
            return answer.unexpected();
        }
        let advice = if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            "the server is sealed or in maintenance: renewal is tried again once it is unsealed"
        } else {
            "check the address (the server's API, e.g. https://bao.example.com:8200) and try again"
        };
        Error::vendor(format!(
            "{} answered {}: {advice}",
            Self::endpoint(call, path),
            Self::said(answer, sent)
        ))
    }

    /// The facts of a token with `ttl` seconds left. `end` is the moment no renewal
    /// passes, where known (an explicit max TTL, or a renewal the server capped).
    fn meta(call: &Call<'_>, ttl: i64, renewable: bool, end: Option<DateTime<Utc>>) -> TokenMeta {
        // A TTL of 0 is a token that never expires (a root token).
        let expires_at = (ttl > 0).then(|| seconds_after(call.now, ttl));
        let renews_with = if renewable && expires_at.is_some() {
            RenewsWith::StoredUserToken
        } else {
            RenewsWith::Nothing
        };
        let mut meta = TokenMeta::issued(call.now, expires_at, renews_with);
        if renews_with == RenewsWith::StoredUserToken {
            meta.human_deadline = end.filter(|e| *e > call.now);
        }
        meta
    }

    /// Where an explicit max TTL ends, from `lookup-self`.
    fn explicit_end(data: &LookupData) -> Option<DateTime<Utc>> {
        if data.explicit_max_ttl <= 0 {
            return None;
        }
        let issued = DateTime::parse_from_rfc3339(data.issue_time.as_deref()?).ok()?;
        issued
            .with_timezone(&Utc)
            .checked_add_signed(Duration::seconds(
                data.explicit_max_ttl
                    .min(crate::model::MAX_LIFETIME.num_seconds()),
            ))
    }

    /// The token the admin gave: checked with `lookup-self`, used as it is.
    async fn take_token(call: &Call<'_>, token: &Secret) -> Result<Issued> {
        let data = Self::lookup(call, token).await?;
        let end = Self::explicit_end(&data);
        Ok(Issued {
            token: token.clone(),
            meta: Self::meta(call, data.ttl, data.renewable, end),
            rotated: Vec::new(),
            note: None,
        })
    }

    /// `renew-self` for the token's own period; a renewal that comes back shorter
    /// has reached the max TTL, which then is the human's deadline.
    async fn renew_token(call: &Call<'_>, token: &Secret) -> Result<Issued> {
        let data = Self::lookup(call, token).await?;
        if !data.renewable || data.ttl <= 0 {
            return Self::take_token(call, token).await;
        }
        let most = crate::model::MAX_LIFETIME.num_seconds();
        let period = data.creation_ttl.max(data.ttl).clamp(1, most);
        let url = format!("{}{RENEW_SELF}", call.account.base_url);
        let request = call
            .http
            .post(&url)
            .header("X-Vault-Token", token.expose())
            .json(&json!({ "increment": format!("{period}s") }));
        let answer = http::send(request, &Self::endpoint(call, RENEW_SELF)).await?;
        match answer.status {
            s if s.is_success() => {}
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => {
                return Err(Self::token_refused(call, &answer, token, RENEW_SELF))
            }
            _ => return Err(Self::server_error(call, &answer, RENEW_SELF, &[token])),
        }
        let auth = Self::auth_block(call, &answer, RENEW_SELF)?;
        // The answer repeats the token; the one held is the same.
        if auth.lease_duration <= 0 {
            return Err(Error::vendor(format!(
                "{} renewed the token of account '{}' for {} s: the stored token is kept \
                 and renewal is tried again; check the server's token settings",
                Self::endpoint(call, RENEW_SELF),
                call.name(),
                auth.lease_duration
            )));
        }
        let ttl = auth.lease_duration.min(most);
        let capped = ttl.saturating_add(1) < period;
        let end = if capped {
            Some(seconds_after(call.now, ttl))
        } else {
            Self::explicit_end(&data)
        };
        Ok(Issued {
            token: token.clone(),
            meta: Self::meta(call, ttl, auth.renewable, end),
            rotated: Vec::new(),
            note: None,
        })
    }

    fn auth_block(call: &Call<'_>, answer: &Answer, path: &str) -> Result<AuthBlock> {
        answer.json::<AuthAnswer>()?.auth.ok_or_else(|| {
            Error::vendor(format!(
                "{} answered without an auth block: check that the address is OpenBao's or \
                 Vault's API",
                Self::endpoint(call, path)
            ))
        })
    }

    /// The token a login handed out; a login without one is the server's fault.
    fn client_token(call: &Call<'_>, auth: AuthBlock, path: &str) -> Result<Secret> {
        auth.client_token
            .filter(|t| !t.is_empty())
            .map(Secret::new)
            .ok_or_else(|| {
                Error::vendor(format!(
                    "{} logged in without a client_token",
                    Self::endpoint(call, path)
                ))
            })
    }

    /// A userpass login: a new token for the stored password.
    async fn log_in(call: &Call<'_>, password: &Secret) -> Result<Issued> {
        let account = call.account;
        // One path segment, as the team store's own userpass login checks it: a '\\'
        // or '%2e' would move the password to another path of the server.
        let user = crate::team::client::segment(account.username.as_deref().unwrap_or_default())
            .map_err(|e| {
                Error::usage(format!(
                    "account '{}' needs the userpass user name: {}",
                    account.name,
                    e.message()
                ))
            })?;
        let path = format!("{USERPASS_LOGIN}{user}");
        let url = format!("{}{path}", account.base_url);
        let request = call
            .http
            .post(&url)
            .json(&json!({ "password": password.expose() }));
        let answer = http::send(request, &Self::endpoint(call, &path)).await?;
        match answer.status {
            s if s.is_success() => {}
            StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => {
                let name = &account.name;
                return Err(Error::refused(format!(
                    "{} refused user '{user}' of account '{name}' ({}): check the user name \
                     and password, and that userpass is enabled at auth/userpass; if the \
                     password changed, sign in again with the new one",
                    Self::endpoint(call, &path),
                    Self::said(&answer, &[password]),
                ))
                .with_remedy(Remedy::sign_in(name, true)));
            }
            _ => return Err(Self::server_error(call, &answer, &path, &[password])),
        }
        let auth = Self::auth_block(call, &answer, &path)?;
        let lease = auth.lease_duration;
        let token = Self::client_token(call, auth, &path)?;
        let expires_at = (lease > 0).then(|| seconds_after(call.now, lease));
        Ok(Issued {
            token,
            // A new login is always possible with the password: no human deadline.
            meta: TokenMeta::issued(call.now, expires_at, RenewsWith::StoredPassword),
            rotated: Vec::new(),
            note: None,
        })
    }
}

/// A browser sign-in under way: the loopback listener the browser comes back to,
/// with what the callback must match. Kept here between `start_device` and
/// `finish_device` (a `DeviceCode` is plain data), one per port, naming its account;
/// one that nobody went on to wait for lapses at its expiry.
struct Waiting {
    account_id: String,
    account: String,
    nonce: Secret,
    state: String,
    expires_at: DateTime<Utc>,
    listener: std::net::TcpListener,
}

static WAITING: LazyLock<Mutex<HashMap<u16, Waiting>>> = LazyLock::new(Default::default);

fn waiting() -> std::sync::MutexGuard<'static, HashMap<u16, Waiting>> {
    WAITING.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Deserialize)]
struct AuthUrlAnswer {
    data: Option<AuthUrlData>,
}

#[derive(Deserialize)]
struct AuthUrlData {
    #[serde(default)]
    auth_url: String,
}

/// What the browser brought back to the callback: a code, with the tab still
/// waiting for the page that says how the trade went; or the provider's refusal.
enum Returned {
    Code {
        code: Secret,
        tab: tokio::net::TcpStream,
    },
    Refused(String),
}

/// How many browser connections the callback serves at once (a browser opens a
/// few; anything past this is closed at once).
const TABS_AT_ONCE: usize = 16;

impl OpenBao {
    fn callback_port(call: &Call<'_>) -> Result<u16> {
        let text = call.setting(FieldKey::CallbackPort, DEFAULT_CALLBACK_PORT);
        port_from(&text).ok_or_else(|| {
            Error::usage(format!(
                "account '{}': the callback port '{text}' is not a port from 1024 to 65535",
                call.name()
            ))
        })
    }

    /// Binds the callback, asks OpenBao for the provider's address, and keeps the
    /// listener for `finish_device`.
    async fn start_browser(call: &Call<'_>) -> Result<DeviceCode> {
        let port = Self::callback_port(call)?;
        {
            let mut w = waiting();
            let now = call.now;
            w.retain(|_, h| h.expires_at > now);
            if let Some(h) = w.get(&port) {
                if h.account_id != call.account.id {
                    return Err(Error::usage(format!(
                        "account '{}' is signing in through the browser on port {port}: \
                         finish that sign-in first, or give '{}' another callback port",
                        h.account,
                        call.name()
                    )));
                }
            }
            // The same account's sign-in started again replaces the one before it.
            w.remove(&port);
        }
        let redirect = format!("http://127.0.0.1:{port}/oidc/callback");
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
            Error::usage(format!(
                "cannot listen on 127.0.0.1:{port} for the browser's return ({e}): another \
                 sign-in (or `bao login`) may be using it. Use another callback port, and \
                 allow http://127.0.0.1:PORT/oidc/callback in the role"
            ))
        })?;
        let nonce = Secret::new(random_hex(20));
        let role = call.setting(FieldKey::Role, "");
        let url = format!("{}{OIDC_AUTH_URL}", call.account.base_url);
        let request = call.http.post(&url).json(&json!({
            "role": role,
            "redirect_uri": redirect,
            "client_nonce": nonce.expose(),
        }));
        let answer = http::send(request, &Self::endpoint(call, OIDC_AUTH_URL)).await?;
        let refused = |said: String| {
            Error::refused(format!(
                "{} would not start an OIDC sign-in for {} with the return address {redirect} \
                 ({said}): check that the OIDC auth method is enabled at auth/oidc, the role \
                 exists, and its allowed_redirect_uris names exactly that address (to \
                 OpenBao, localhost is another one)",
                Self::endpoint(call, OIDC_AUTH_URL),
                if role.is_empty() {
                    "the default role".to_string()
                } else {
                    format!("role '{role}'")
                },
            ))
        };
        if !answer.status.is_success() {
            if Self::not_openbaos(&answer) {
                return Err(answer.unexpected());
            }
            return Err(refused(Self::said(&answer, &[&nonce])));
        }
        let auth_url = answer
            .json::<AuthUrlAnswer>()?
            .data
            .map(|d| d.auth_url)
            .unwrap_or_default();
        let parsed = url::Url::parse(&auth_url)
            .map_err(|_| refused("no sign-in address in its answer".into()))?;
        let state = parsed
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| refused("a sign-in address without a state".into()))?;
        let expires_at = call.now + BROWSER_WAIT;
        waiting().insert(
            port,
            Waiting {
                account_id: call.account.id.clone(),
                account: call.name().to_string(),
                nonce: nonce.clone(),
                state,
                expires_at,
                listener,
            },
        );
        Ok(DeviceCode {
            device_code: nonce,
            user_code: String::new(),
            verification_uri: auth_url.clone(),
            verification_uri_complete: Some(auth_url),
            expires_at,
            interval: std::time::Duration::from_secs(1),
            token_endpoint: format!("{}{OIDC_CALLBACK}", call.account.base_url),
            client_id: String::new(),
            exchange_endpoint: None,
        })
    }

    /// Waits for the browser to come back, trades its code at OpenBao, and tells the
    /// tab how that went.
    async fn finish_browser(call: &Call<'_>, code: &DeviceCode) -> Result<Issued> {
        let port = Self::callback_port(call)?;
        let held = {
            let mut w = waiting();
            match w.get(&port) {
                Some(h) if h.nonce == code.device_code => w.remove(&port),
                _ => None,
            }
        };
        let held = held.ok_or_else(|| {
            Error::usage(format!(
                "the browser sign-in of '{}' was replaced by a newer one, or lapsed: sign \
                 in again",
                call.name()
            ))
        })?;
        let listener = held
            .listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(held.listener))
            .map_err(|e| Error::internal(format!("the browser's return listener: {e}")))?;
        let left = (code.expires_at - Utc::now()).to_std().unwrap_or_default();
        let returned = tokio::time::timeout(left, await_return(listener, held.state.clone()))
            .await
            .map_err(|_| {
                Error::needs_sign_in(format!(
                    "the browser did not come back within {} minutes: sign in to '{}' again",
                    BROWSER_WAIT.num_minutes(),
                    call.name()
                ))
            })?;
        let (auth_code, mut tab) = match returned {
            Returned::Code { code, tab } => (code, tab),
            Returned::Refused(why) => {
                return Err(Error::refused(format!(
                    "the sign-in of '{}' did not come back ({why}): sign in again, or ask your \
                     OpenBao administrator about the role",
                    call.name()
                )))
            }
        };
        let traded = Self::trade(call, code, &held.state, &auth_code).await;
        let page = match &traded {
            Ok(_) => "Signed in to OpenBao. You can close this tab and go back to Tokenkeeper.",
            Err(_) => {
                "OpenBao did not take the sign-in. Tokenkeeper says why; you can close \
                       this tab."
            }
        };
        respond(&mut tab, "200 OK", page).await;
        traded
    }

    /// Trades the code the browser brought back at OpenBao for a token.
    async fn trade(
        call: &Call<'_>,
        code: &DeviceCode,
        state: &str,
        auth_code: &Secret,
    ) -> Result<Issued> {
        let url = format!("{}{OIDC_CALLBACK}", call.account.base_url);
        let request = call.http.get(&url).query(&[
            ("state", state),
            ("code", auth_code.expose()),
            ("client_nonce", code.device_code.expose()),
        ]);
        let answer = http::send(request, &Self::endpoint(call, OIDC_CALLBACK)).await?;
        let sent = [auth_code, &code.device_code];
        if !answer.status.is_success() {
            if Self::not_openbaos(&answer) {
                return Err(answer.unexpected());
            }
            return Err(Error::refused(format!(
                "{} refused the browser sign-in of '{}' ({}): sign in again; if it keeps \
                 failing, ask your OpenBao administrator to check the role's bound claims",
                Self::endpoint(call, OIDC_CALLBACK),
                call.name(),
                Self::said(&answer, &sent),
            )));
        }
        let auth = Self::auth_block(call, &answer, OIDC_CALLBACK)?;
        let token = Self::client_token(call, auth, OIDC_CALLBACK)?;
        Self::take_token(call, &token).await
    }
}

/// A callback port as typed: 1024 to 65535 (an empty setting is the default).
fn port_from(text: &str) -> Option<u16> {
    text.trim().parse::<u16>().ok().filter(|p| *p >= 1024)
}

/// Serves the loopback callback until the browser brings back this sign-in's state.
/// Each connection is served on its own (a browser keeps idle ones open); any other
/// request (a favicon, a stale tab) is answered and waited past.
async fn await_return(listener: tokio::net::TcpListener, state: String) -> Returned {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Returned>(1);
    // Dropped on return: the other connections' tasks end with it.
    let mut tabs = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            Some(returned) = rx.recv() => return returned,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if tabs.len() < TABS_AT_ONCE => {
                    tabs.spawn(serve_tab(stream, state.clone(), tx.clone()));
                }
                Ok(_) => {}
                // Out of descriptors, say: wait a moment rather than spin.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            },
        }
        while tabs.try_join_next().is_some() {}
    }
}

/// What one request to the callback is, read from its method, target and (for a
/// form post) its body.
#[derive(Debug)]
pub(crate) enum CallbackRequest {
    /// Not the callback's path (a favicon, a guess): answered 404 and waited past.
    Elsewhere,
    /// A role with oidc_response_mode=form_post posts this sign-in's code in a form:
    /// the sign-in cannot finish, and says so.
    FormPost,
    /// Another method, or a post without this sign-in's state (any web page can
    /// post here): answered 405 and waited past.
    NotGet,
    /// Not this sign-in's state (a stale tab, another sign-in): waited past.
    OtherSignIn,
    /// The provider refused the sign-in: its words, quoted and cut short.
    Refused(String),
    /// This sign-in's state but no code: waited past.
    NoCode,
    /// This sign-in's code.
    Code(Secret),
}

impl CallbackRequest {
    /// The request `method target` (with `body`) to the callback of the sign-in
    /// whose state is `state`; `None` for a target that is not a URL path (the
    /// connection closes).
    pub(crate) fn read(method: &str, target: &str, body: &[u8], state: &str) -> Option<Self> {
        let url = url::Url::parse(&format!("http://127.0.0.1{target}")).ok()?;
        if url.path() != "/oidc/callback" {
            return Some(Self::Elsewhere);
        }
        if method == "POST" {
            let ours = url::form_urlencoded::parse(body).any(|(k, v)| k == "state" && v == state);
            return Some(if ours { Self::FormPost } else { Self::NotGet });
        }
        if method != "GET" {
            return Some(Self::NotGet);
        }
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if param("state").as_deref() != Some(state) {
            return Some(Self::OtherSignIn);
        }
        if let Some(error) = param("error") {
            return Some(Self::Refused(quote_vendor(
                &format!(
                    "the provider said {error}: {}",
                    param("error_description").unwrap_or_default()
                ),
                std::iter::empty(),
                QUOTED_CHARS,
            )));
        }
        Some(match param("code").filter(|c| !c.is_empty()) {
            Some(code) => Self::Code(Secret::new(code)),
            None => Self::NoCode,
        })
    }
}

/// One connection to the callback: answered, or handed back when it is the return.
async fn serve_tab(
    mut stream: tokio::net::TcpStream,
    state: String,
    returned: tokio::sync::mpsc::Sender<Returned>,
) {
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(5), read_request(&mut stream)).await;
    let Ok(Some(raw)) = read else {
        return;
    };
    let Some((method, target, body)) = request_parts(&raw) else {
        return;
    };
    let Some(request) = CallbackRequest::read(&method, &target, body, &state) else {
        return;
    };
    let (status, text) = match request {
        CallbackRequest::Code(code) => {
            let _ = returned.send(Returned::Code { code, tab: stream }).await;
            return;
        }
        CallbackRequest::Elsewhere => ("404 Not Found", "Nothing here."),
        CallbackRequest::NotGet => ("405 Method Not Allowed", "Only GET is served here."),
        CallbackRequest::OtherSignIn => (
            "400 Bad Request",
            "This is not the sign-in Tokenkeeper is waiting for: start it again.",
        ),
        CallbackRequest::NoCode => ("400 Bad Request", "The sign-in came back without a code."),
        CallbackRequest::FormPost => {
            respond(
                &mut stream,
                "400 Bad Request",
                "This OpenBao role sends the sign-in back as a form post. Tokenkeeper takes it \
                 in the address: ask your OpenBao administrator to set the role's \
                 oidc_response_mode to query.",
            )
            .await;
            let why = "the role's oidc_response_mode is form_post; Tokenkeeper needs query";
            let _ = returned.send(Returned::Refused(why.into())).await;
            return;
        }
        CallbackRequest::Refused(why) => {
            respond(
                &mut stream,
                "200 OK",
                "The sign-in was refused. Tokenkeeper says why; you can close this tab.",
            )
            .await;
            let _ = returned.send(Returned::Refused(why)).await;
            return;
        }
    };
    respond(&mut stream, status, text).await;
}

/// One request to the callback, its head and then its body up to the head's
/// `Content-Length`, [`REQUEST_BYTES`] at most; `None` when the peer closes first or
/// sends more.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut raw = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = head_end(&raw) {
            // A length past what is read at all ends the request unread.
            let len = content_length(&raw[..end]);
            if len > REQUEST_BYTES {
                return None;
            }
            if raw.len() >= end + len {
                return Some(raw);
            }
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || raw.len() + n > REQUEST_BYTES {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// The most of a request the callback reads, head and body.
const REQUEST_BYTES: usize = 8192;

/// Where the head of `raw` ends (after its blank line), once it has.
fn head_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// The `Content-Length` a request head declares: 0 when it declares none or one
/// that cannot be read.
fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

/// The method, target and body of the request in `raw`: its request line, when its
/// target is a path, and what follows its head up to its `Content-Length`.
pub(crate) fn request_parts(raw: &[u8]) -> Option<(String, String, &[u8])> {
    let end = head_end(raw)?;
    let (method, target) = request_line(&raw[..end])?;
    let body = &raw[end..];
    Some((
        method,
        target,
        &body[..body.len().min(content_length(&raw[..end]))],
    ))
}

/// The method and target of the request line that begins `head`, when the target
/// is a path.
fn request_line(head: &[u8]) -> Option<(String, String)> {
    let end = head.iter().position(|b| *b == b'\n').unwrap_or(head.len());
    let line = std::str::from_utf8(&head[..end])
        .ok()?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let method = parts.next()?.to_string();
    let target = parts.next()?;
    target
        .starts_with('/')
        .then(|| (method, target.to_string()))
}

/// A small page for the browser tab, with nothing loaded from anywhere.
async fn respond(stream: &mut tokio::net::TcpStream, status: &str, text: &str) {
    use tokio::io::AsyncWriteExt;
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Tokenkeeper</title></head>\
         <body><p>{text}</p></body></html>"
    );
    let answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Security-Policy: default-src 'none'\r\nCache-Control: no-store\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

#[async_trait]
impl VendorFlow for OpenBao {
    fn vendor(&self) -> Vendor {
        Vendor::Openbao
    }

    fn methods(&self) -> &'static [MethodSpec] {
        METHODS
    }

    fn url_hint(&self) -> &'static str {
        "https://bao.example.com:8200"
    }

    async fn sign_in(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<Issued> {
        match call.account.method {
            Method::Password => {
                Self::log_in(call, required(call, secrets, SecretKind::Password)?).await
            }
            // A browser sign-in's token, when asked to sign in without the browser.
            Method::DeviceCode => {
                Self::take_token(call, required(call, secrets, SecretKind::AccessToken)?).await
            }
            _ => Self::take_token(call, required(call, secrets, SecretKind::UserToken)?).await,
        }
    }

    async fn renew(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<Issued> {
        match call.account.method {
            Method::Password => {
                Self::log_in(call, required(call, secrets, SecretKind::Password)?).await
            }
            Method::DeviceCode => {
                Self::renew_token(call, required(call, secrets, SecretKind::AccessToken)?).await
            }
            _ => Self::renew_token(call, required(call, secrets, SecretKind::UserToken)?).await,
        }
    }

    async fn start_device(&self, call: &Call<'_>) -> Result<DeviceCode> {
        Self::start_browser(call).await
    }

    async fn finish_device(&self, call: &Call<'_>, code: &DeviceCode) -> Result<Issued> {
        Self::finish_browser(call, code).await
    }

    fn check_setting(&self, key: FieldKey, value: &str) -> Result<()> {
        if key == FieldKey::CallbackPort && !value.trim().is_empty() && port_from(value).is_none() {
            return Err(Error::usage(format!(
                "the callback port '{value}' is not a port from 1024 to 65535"
            )));
        }
        Ok(())
    }

    /// `lookup-self` answers 403 for a token that expired or was revoked.
    async fn check(&self, call: &Call<'_>, token: &Secret) -> Result<Option<bool>> {
        match Self::lookup(call, token).await {
            // `lookup` refuses an answer that says nothing sound of the token.
            Ok(_) => Ok(Some(true)),
            Err(e) if e.kind() == crate::error::ErrorKind::NeedsSignIn => Ok(Some(false)),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OpenBao account at `base_url` signing in with `method`.
    fn bao_account(base_url: &str, method: Method) -> crate::model::Account {
        crate::model::Account {
            id: "a".into(),
            name: "bao".into(),
            vendor: Vendor::Openbao,
            base_url: base_url.into(),
            method,
            username: None,
            tenant: None,
            iam_id: None,
            client_id: None,
            ca_cert_pem: None,
            labels: Vec::new(),
            created_at: Utc::now(),
            settings: Default::default(),
            team: None,
        }
    }

    async fn get(port: u16, path: &str) -> (u16, String) {
        let answer = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
            .await
            .expect("the callback answers");
        let status = answer.status().as_u16();
        (status, answer.text().await.unwrap_or_default())
    }

    async fn callback(state: &'static str) -> (u16, tokio::task::JoinHandle<Returned>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let waiting = tokio::spawn(await_return(listener, state.to_string()));
        (port, waiting)
    }

    #[tokio::test]
    async fn the_callback_waits_past_other_requests_and_hands_back_its_own_tab() {
        let (port, waiting) = callback("st_1").await;
        // A browser's idle connection holds nothing up.
        let _idle = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        assert_eq!(get(port, "/favicon.ico").await.0, 404);
        let (status, page) = get(port, "/oidc/callback?state=st_0&code=stale").await;
        assert_eq!(status, 400);
        assert!(page.contains("not the sign-in"), "{page}");
        let (status, _) = get(port, "/oidc/callback?state=st_1").await;
        assert_eq!(status, 400, "no code: waited past");
        // A length past what is read at all (here past usize) is closed unanswered.
        {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut huge = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            huge.write_all(
                b"POST /oidc/callback HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n",
            )
            .await
            .unwrap();
            let mut answer = Vec::new();
            let _ = huge.read_to_end(&mut answer).await;
            assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
        }
        assert!(!waiting.is_finished());
        let tab = tokio::spawn(get(port, "/oidc/callback?state=st_1&code=abc%2Bd"));
        match waiting.await.unwrap() {
            Returned::Code { code, mut tab } => {
                assert_eq!(code.expose(), "abc+d");
                // The tab waits for the page that says how the trade went.
                respond(&mut tab, "200 OK", "traded").await;
            }
            Returned::Refused(why) => panic!("refused: {why}"),
        }
        let (status, page) = tab.await.unwrap();
        assert_eq!(status, 200);
        assert!(page.contains("traded"), "{page}");
    }

    #[tokio::test]
    async fn a_provider_refusal_or_a_form_post_ends_the_wait_in_words() {
        let (port, waiting) = callback("st_1").await;
        let path =
            "/oidc/callback?state=st_1&error=access_denied&error_description=The+user+said+no";
        assert_eq!(get(port, path).await.0, 200);
        match waiting.await.unwrap() {
            Returned::Refused(why) => assert!(
                why.contains("access_denied") && why.contains("The user said no"),
                "{why}"
            ),
            Returned::Code { .. } => panic!("a refusal taken as a code"),
        }
        let (port, waiting) = callback("st_1").await;
        let post = |state: &'static str| {
            reqwest::Client::new()
                .post(format!("http://127.0.0.1:{port}/oidc/callback"))
                .form(&[("state", state), ("code", "abc")])
                .send()
        };
        // A post from anywhere else (any web page can post here) is waited past.
        let stray = post("st_0").await.unwrap();
        assert_eq!(stray.status().as_u16(), 405);
        assert!(!waiting.is_finished());
        let posted = post("st_1").await.unwrap();
        assert_eq!(posted.status().as_u16(), 400);
        assert!(posted.text().await.unwrap().contains("oidc_response_mode"));
        match waiting.await.unwrap() {
            Returned::Refused(why) => assert!(why.contains("form_post"), "{why}"),
            Returned::Code { .. } => panic!("a form post taken as a code"),
        }
    }

    #[test]
    fn a_callback_request_is_read_from_its_line_and_a_posts_state() {
        let read = |raw: &[u8]| {
            let (method, target, body) = request_parts(raw)?;
            CallbackRequest::read(&method, &target, body, "s1")
        };
        let code = read(b"GET /oidc/callback?state=s1&code=one&code=two HTTP/1.1\r\n\r\n");
        assert!(matches!(&code, Some(CallbackRequest::Code(c)) if c.expose() == "one"));
        // A form post of this sign-in ends it in words; any other post (a web page
        // can post here) is waited past, a body that is not text included.
        let post = read(
            b"POST /oidc/callback HTTP/1.1\r\nContent-Length: 15\r\n\r\ncode=c&state=s1\xff\xfe",
        );
        assert!(matches!(post, Some(CallbackRequest::FormPost)), "{post:?}");
        for other in [
            &b"POST /oidc/callback HTTP/1.1\r\n\r\ncode=c&state=s1"[..],
            b"POST /oidc/callback HTTP/1.1\r\ncontent-length: 15\r\n\r\ncode=c&state=s2",
            b"POST /oidc/callback HTTP/1.1\r\nContent-Length: 4\r\n\r\n\xff\xfe\x00\x01",
        ] {
            let post = read(other);
            assert!(matches!(post, Some(CallbackRequest::NotGet)), "{post:?}");
        }
        let refused = read(
            b"GET /oidc/callback?state=s1&error=access_denied&error_description=a%0Ab HTTP/1.1\r\n\r\n",
        );
        assert!(
            matches!(&refused, Some(CallbackRequest::Refused(w)) if w == "the provider said access_denied: ab"),
            "{refused:?}"
        );
        for (head, expected) in [
            (
                &b"GET /oidc/callback?state=s2&code=x HTTP/1.1\r\n\r\n"[..],
                "OtherSignIn",
            ),
            (
                b"GET /oidc/callback?state=s1&code= HTTP/1.1\r\n\r\n",
                "NoCode",
            ),
            (
                b"PUT /oidc/callback?state=s1&code=x HTTP/1.1\r\n\r\n",
                "NotGet",
            ),
            (b"GET /favicon.ico HTTP/1.1\r\n\r\n", "Elsewhere"),
        ] {
            let got = format!("{:?}", read(head));
            assert!(got.starts_with(&format!("Some({expected}")), "{got}");
        }
        assert!(read(b"GET http://evil.example/ HTTP/1.1\r\n\r\n").is_none());
        assert!(read(b"\xffGET / HTTP/1.1\r\n\r\n").is_none());
        assert!(read(b"GET /oidc/callback?state=s1&code=x HTTP/1.1\r\n").is_none());
    }

    #[tokio::test]
    async fn a_userpass_name_that_leaves_its_path_is_refused_before_anything_is_sent() {
        // Nothing listens here: a request sent would fail as unreachable.
        let mut account = bao_account("http://127.0.0.1:9", Method::Password);
        let http = reqwest::Client::new();
        for bad in ["", "..", "a/b", "a\\..\\..\\sys\\x", "%2e%2e", "a?b"] {
            account.username = Some(bad.into());
            let call = Call::new(&account, &http, Utc::now());
            let e = OpenBao::log_in(&call, &Secret::new("pw-canary"))
                .await
                .unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::Usage, "{bad}: {e:?}");
            assert!(e.message().contains("user name"), "{bad}: {e:?}");
        }
    }

    #[test]
    fn the_callback_port_is_checked() {
        let mut account = bao_account("https://bao.example.com:8200", Method::DeviceCode);
        let http = reqwest::Client::new();
        let port = |account: &crate::model::Account| {
            OpenBao::callback_port(&Call::new(account, &http, Utc::now()))
        };
        assert_eq!(
            port(&account).unwrap(),
            8250,
            "bao login's port unless told"
        );
        for bad in ["80", "65536", "http", "-1"] {
            account.settings.insert("callback_port".into(), bad.into());
            let e = port(&account).unwrap_err();
            assert!(
                e.message().contains("1024 to 65535"),
                "{bad}: {}",
                e.message()
            );
        }
        account
            .settings
            .insert("callback_port".into(), " 18250 ".into());
        assert_eq!(port(&account).unwrap(), 18250);
    }
}
