//! The fuzz targets' bodies, shared by the cargo-fuzz crate (`fuzz/`, nightly) and the
//! corpus replay test (`tests/fuzz_replay.rs`, stable, in CI). Each function takes the
//! fuzzer's bytes, decodes them into a vendor operation and the answers the vendor
//! gives (served through the [`crate::canned`] seam, never the network), runs the
//! vendor's flow as the vault would, and panics when an invariant breaks:
//!
//! - nothing panics (a vendor's numbers, types or bytes);
//! - no error message and no history note holds a secret the flow was given, as
//!   sent, JSON-escaped, percent-encoded or in base64;
//! - what a vendor issued has dates the vault can compute with;
//! - a refresh token the vendor rotated reached the rotation sink before the flow
//!   returned it (and a rotated BigFix token before the old one was revoked);
//! - a device-code sign-in opens only an https address, or http on this machine.
//!
//! The input of a vendor target: an operation byte, a flags byte, a parameter byte,
//! then the answers, separated by [`SEPARATOR`]; each answer is a big-endian status,
//! a content-type byte (an index into [`CONTENT_TYPES`]; for `any_vendor`, past the
//! table, the content type is the answer's first line) and the body. [`encode`]
//! writes one (the seed generator uses it).

use std::sync::{LazyLock, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};

use crate::error::{Error, Result};
use crate::http::canned::{self, Canned};
use crate::http::Answer;
use crate::model::{Account, Method, RenewsWith, TokenMeta, Vendor};
use crate::secret::{Secret, SecretBundle, SecretKind};
use crate::vendors::bigfix::{self, Inventory};
use crate::vendors::{self, jwt, Call, DeviceCode, DevicePrompt, Issued, RotationSink};

/// Between two answers of one input.
pub const SEPARATOR: u8 = 0x1e;

/// The content types an answer's type byte picks from; past the end, none.
pub const CONTENT_TYPES: [&str; 7] = [
    "application/json",
    "text/html; charset=utf-8",
    "application/json; charset=utf-8",
    "text/plain",
    "TEXT/HTML",
    "application/problem+json",
    "application/x-www-form-urlencoded",
];
/// The type byte for an answer with no `Content-Type`.
pub const NO_CONTENT_TYPE: u8 = CONTENT_TYPES.len() as u8;
/// For `any_vendor`: the type byte whose answer carries its content type as its first line.
pub const INLINE_CONTENT_TYPE: u8 = 0xff;

// The planted secrets: each holds characters that JSON, percent-encoding and base64
// each write differently, so an echo in any of those forms is told apart.
const PASSWORD: &str = "pw-canary\"Q7/x+1";
const API_KEY: &str = "ak-canary Z9&k=2";
const USER_TOKEN: &str = "ut-canary~R4.w";
const REFRESH_TOKEN: &str = "rt-canary%P3#v";
const ACCESS_TOKEN: &str = "at-canary:M5?y";
const DEVICE_CODE: &str = "dc-canary@K8!z";
/// A BigID user token that is a JWT whose `exp` is 2100-01-01.
static USER_JWT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}.{}.ut-canary-signature",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(br#"{"sub":"ut-canary","exp":4102444800}"#)
    )
});

/// What a flow is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    SignIn,
    Renew,
    /// `start_device` only.
    StartDevice,
    /// `start_device`, then `finish_device` on the code it gave.
    StartAndPoll,
    /// `finish_device` on a code the vault kept.
    Poll,
    Check,
    SignOut,
    /// BigFix's token inventory.
    List,
    ByName,
    ById,
    Create,
    Update,
    Revoke,
}

/// The operations each vendor is fuzzed with; the operation byte indexes this.
pub fn ops(vendor: Vendor) -> &'static [Op] {
    use Op::*;
    match vendor {
        Vendor::Truesight => &[SignIn, Renew, Check, SignOut],
        Vendor::Bigid => &[SignIn, Renew],
        Vendor::Bigfix => &[
            SignIn, Renew, Check, SignOut, List, ByName, ById, Create, Update, Revoke,
        ],
        Vendor::Immuta => &[SignIn, Renew, Check],
        Vendor::Biganimal => &[StartDevice, StartAndPoll, Poll, Renew, Check, SignIn],
        Vendor::Oidc => &[StartDevice, StartAndPoll, Poll, Renew, SignIn],
        Vendor::Openbao => &[SignIn, Renew, Check],
    }
}

/// The operation byte for `op` (0, the first operation, if the vendor has no such one).
pub fn op_index(vendor: Vendor, op: Op) -> u8 {
    ops(vendor).iter().position(|o| *o == op).unwrap_or(0) as u8
}

/// Flag bits (the second byte).
pub mod flag {
    /// The vendor's other sign-in method (BigID user token, Immuta password).
    pub const OTHER_METHOD: u8 = 1;
    /// The token in use before this call is known.
    pub const PREVIOUS: u8 = 1 << 1;
    /// …with the vendor's handle (BigFix token id, an issuer's token endpoint).
    pub const VENDOR_REF: u8 = 1 << 2;
    /// The rotation sink (the keyring) fails.
    pub const SINK_FAILS: u8 = 1 << 3;
    /// BigID: refresh with POST; BigAnimal: the free-trial client.
    pub const VARIANT: u8 = 1 << 4;
    /// BigID: the user token is a JWT with `exp`.
    pub const JWT_USER_TOKEN: u8 = 1 << 5;
    /// BigID: the admin gave the user token's expiry; BigFix: a token duration of 0.
    pub const SETTING: u8 = 1 << 6;
    /// BigAnimal, OIDC: the account names its client id.
    pub const CLIENT_ID: u8 = 1 << 7;
}

/// Parameter bits (the third byte): bit 0 puts the instance on this machine (plain
/// http) instead of the vendor's own host; the rest is a number (a BigFix user or
/// token id; 0 is none).
pub const LOOPBACK: u8 = 1;

/// One fuzz input for a vendor target.
pub fn encode(op: u8, flags: u8, param: u8, answers: &[Canned]) -> Vec<u8> {
    let mut out = vec![op, flags, param];
    for (i, a) in answers.iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        out.extend_from_slice(&a.status.to_be_bytes());
        let ct = match a.content_type.as_deref() {
            None => NO_CONTENT_TYPE,
            Some(ct) => match CONTENT_TYPES.iter().position(|c| *c == ct) {
                Some(i) => i as u8,
                None => {
                    out.push(INLINE_CONTENT_TYPE);
                    out.extend_from_slice(ct.as_bytes());
                    out.push(b'\n');
                    out.extend_from_slice(&a.body);
                    continue;
                }
            },
        };
        out.push(ct);
        out.extend_from_slice(&a.body);
    }
    out
}

fn decode_answers(data: &[u8], inline_types: bool) -> Vec<Canned> {
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|b| *b == SEPARATOR)
        .map(|chunk| {
            let status = match chunk {
                [a, b, ..] => u16::from_be_bytes([*a, *b]),
                _ => 200,
            };
            let ct = chunk.get(2).copied().unwrap_or(0);
            let body = chunk.get(3..).unwrap_or_default();
            let (content_type, body) = match ct {
                c if (c as usize) < CONTENT_TYPES.len() => {
                    (Some(CONTENT_TYPES[c as usize].to_string()), body)
                }
                INLINE_CONTENT_TYPE if inline_types => {
                    let end = body.iter().position(|b| *b == b'\n').unwrap_or(body.len());
                    (
                        Some(String::from_utf8_lossy(&body[..end]).into_owned()),
                        body.get(end + 1..).unwrap_or_default(),
                    )
                }
                _ => (None, body),
            };
            Canned {
                status,
                content_type,
                body: body.to_vec(),
            }
        })
        .collect()
}

/// The HTTP client requests are built with (none is ever sent).
static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(reqwest::Client::new);

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = runtime();
}

/// A current-thread runtime; under cargo-fuzz (`--cfg fuzzing`, where the fuzz crate
/// turns on tokio's `test-util`) its clock is paused, so a device-code poll's waits
/// take no time (each would otherwise take a millisecond tick of the timer wheel).
#[allow(unexpected_cfgs)]
fn runtime() -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_time();
    #[cfg(fuzzing)]
    builder.start_paused(true);
    builder.build().expect("a current-thread runtime")
}

/// Records what a flow stores mid-flight, or fails as a locked keyring would.
#[derive(Debug, Default)]
struct Recorder {
    fails: bool,
    stored: Mutex<Vec<(SecretKind, Secret)>>,
}

#[async_trait]
impl RotationSink for Recorder {
    async fn store_rotated(&self, rotated: &[(SecretKind, Secret)]) -> Result<()> {
        if self.fails {
            return Err(Error::keyring("the keyring is locked (fuzzing)"));
        }
        self.stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(rotated.iter().cloned());
        Ok(())
    }
}

impl Recorder {
    fn holds(&self, kind: SecretKind, secret: &Secret) -> bool {
        self.stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|(k, s)| *k == kind && s == secret)
    }
}

fn base_url(vendor: Vendor, loopback: bool) -> String {
    if loopback {
        return format!("http://127.0.0.1:9/{}", vendor.id());
    }
    match vendor {
        Vendor::Truesight => "https://truesight.example.com:8043",
        Vendor::Bigid => "https://bigid.example.com",
        Vendor::Bigfix => "https://server.bigfix.com:52311",
        Vendor::Immuta => "https://demo.immuta.com",
        Vendor::Biganimal => "https://portal.biganimal.com",
        Vendor::Oidc => "https://login.example.com/realms/ops",
        Vendor::Openbao => "https://bao.example.com:8200",
    }
    .to_string()
}

/// The issuer a BigAnimal or OIDC account's token endpoint is on.
fn issuer(vendor: Vendor, base: &str, loopback: bool) -> String {
    match (vendor, loopback) {
        (Vendor::Biganimal, false) => "https://auth.biganimal.com".into(),
        (Vendor::Biganimal, true) => "http://127.0.0.1:9/auth".into(),
        _ => base.to_string(),
    }
}

fn account(vendor: Vendor, flags: u8, loopback: bool) -> Account {
    let other = flags & flag::OTHER_METHOD != 0;
    let method = match vendor {
        Vendor::Bigid | Vendor::Openbao if other => Method::UserToken,
        Vendor::Immuta if !other => Method::ApiKey,
        Vendor::Biganimal | Vendor::Oidc => Method::DeviceCode,
        _ => Method::Password,
    };
    let mut settings = std::collections::BTreeMap::new();
    if flags & flag::VARIANT != 0 {
        settings.insert("refresh_method".into(), "POST".into());
        settings.insert("free_trial".into(), "yes".into());
    }
    if flags & flag::SETTING != 0 {
        settings.insert("user_token_expires".into(), "2099-12-31".into());
        settings.insert("token_duration".into(), "0".into());
    }
    Account {
        id: "fuzz-account".into(),
        name: "fuzz".into(),
        vendor,
        base_url: base_url(vendor, loopback),
        method,
        username: Some("operator".into()),
        tenant: Some("BmcRealm".into()),
        iam_id: Some("bim".into()),
        client_id: (flags & flag::CLIENT_ID != 0).then(|| "fuzz-client".into()),
        ca_cert_pem: None,
        labels: Vec::new(),
        created_at: DateTime::UNIX_EPOCH,
        settings,
        team: None,
    }
}

/// The secrets an account of this kind keeps: its credential (or refresh token) and
/// the token in use.
fn bundle(account: &Account, flags: u8) -> SecretBundle {
    let (kind, secret) = match account.method {
        Method::Password => (SecretKind::Password, PASSWORD),
        Method::ApiKey => (SecretKind::ApiKey, API_KEY),
        Method::UserToken if flags & flag::JWT_USER_TOKEN != 0 => {
            (SecretKind::UserToken, USER_JWT.as_str())
        }
        Method::UserToken => (SecretKind::UserToken, USER_TOKEN),
        Method::DeviceCode => (SecretKind::RefreshToken, REFRESH_TOKEN),
    };
    SecretBundle::default()
        .with(kind, Secret::new(secret))
        .with(SecretKind::AccessToken, Secret::new(ACCESS_TOKEN))
}

fn previous(vendor: Vendor, flags: u8, issuer: &str, now: DateTime<Utc>) -> Option<TokenMeta> {
    if flags & flag::PREVIOUS == 0 {
        return None;
    }
    let mut meta = TokenMeta::issued(
        now - Duration::hours(1),
        Some(now + Duration::hours(1)),
        RenewsWith::StoredPassword,
    );
    meta.human_deadline = Some(now + Duration::days(30));
    if flags & flag::VENDOR_REF != 0 {
        meta.vendor_ref = Some(match vendor {
            Vendor::Bigfix => r#"{"id":7,"name":"tokenkeeper-fuzz-old"}"#.to_string(),
            _ => serde_json::json!({
                "token_endpoint": format!("{issuer}/oauth/token"),
                "client_id": "fuzz-client",
            })
            .to_string(),
        });
    }
    Some(meta)
}

/// Each secret as a message could betray it (the forms a vendor echoes one in).
fn forms(secret: &str) -> Vec<String> {
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json[1..json.len() - 1].to_string();
    let percent = |lower: bool| -> String {
        secret
            .bytes()
            .map(
                |b| match (b.is_ascii_alphanumeric() || b"-._~".contains(&b), lower) {
                    (true, _) => char::from(b).to_string(),
                    (false, false) => format!("%{b:02X}"),
                    (false, true) => format!("%{b:02x}"),
                },
            )
            .collect()
    };
    let mut out = vec![
        secret.to_string(),
        json.replace('/', "\\/"),
        json,
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        percent(false),
        percent(true),
        STANDARD.encode(secret),
        STANDARD_NO_PAD.encode(secret),
        URL_SAFE.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
    ];
    out.sort();
    out.dedup();
    out
}

static FORMS: LazyLock<Vec<(String, Vec<String>)>> = LazyLock::new(|| {
    [
        PASSWORD,
        API_KEY,
        USER_TOKEN,
        USER_JWT.as_str(),
        REFRESH_TOKEN,
        ACCESS_TOKEN,
        DEVICE_CODE,
    ]
    .into_iter()
    .map(|s| (s.to_string(), forms(s)))
    .collect()
});

/// Panics when `text` holds any of `given` in any form.
fn assert_no_secret(what: &str, text: &str, given: &[&str]) {
    for (secret, forms) in FORMS.iter() {
        if !given.contains(&secret.as_str()) {
            continue;
        }
        for form in forms {
            assert!(
                !text.contains(form.as_str()),
                "{what} betrays a secret it was given ({form:?}): {text}"
            );
        }
    }
}

fn check_dates(meta: &TokenMeta, now: DateTime<Utc>) {
    for t in [Some(meta.issued_at), meta.expires_at, meta.human_deadline]
        .into_iter()
        .flatten()
    {
        let _ = t.timestamp_millis();
    }
    if let Some(r) = meta.renew_at() {
        assert!(
            meta.expires_at.is_some_and(|e| r <= e),
            "renewal after expiry"
        );
    }
    let _ = meta.state(now);
}

fn check_issued(issued: &Issued, now: DateTime<Utc>, given: &[&str]) {
    check_dates(&issued.meta, now);
    if let Some(note) = &issued.note {
        assert_no_secret("a history note", note, given);
    }
    if let Some(e) = &issued.meta.last_error {
        assert_no_secret("a recorded error", e, given);
    }
}

/// Only https is opened for an issuer elsewhere; this machine only for one on it.
fn check_code(code: &DeviceCode, base_url: &str) {
    for url in [
        Some(&code.verification_uri),
        code.verification_uri_complete.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(
            crate::http::is_browser_safe_for(base_url, url),
            "a device sign-in for {base_url} would open {url:?} in the browser"
        );
    }
    assert!(code.interval <= StdDuration::from_secs(3600), "{code:?}");
    let _ = DevicePrompt::from(code);
}

/// `TOKENKEEPER_FUZZ_DEBUG=1`: each outcome on stderr, for triage.
static DEBUG: LazyLock<bool> =
    LazyLock::new(|| std::env::var_os("TOKENKEEPER_FUZZ_DEBUG").is_some());

/// The flow's result, with every error message checked for secrets.
fn checked<T: std::fmt::Debug>(r: Result<T>, given: &[&str]) -> Option<T> {
    if *DEBUG {
        eprintln!("{r:?}");
    }
    match r {
        Ok(t) => Some(t),
        Err(e) => {
            assert_no_secret("an error message", e.message(), given);
            None
        }
    }
}

/// A code as the vault keeps it between start and poll, polled without waiting: no
/// interval, and a deadline that any `slow_down` passes at once.
fn pollable(mut code: DeviceCode) -> DeviceCode {
    code.interval = StdDuration::ZERO;
    code.expires_at = Utc::now() + Duration::seconds(2);
    code
}

/// A vendor target: see the module's documentation for the input.
pub fn vendor(vendor: Vendor, data: &[u8]) {
    run(vendor, data, false);
}

/// Any vendor, any status and any content type: the first byte picks the vendor.
pub fn any_vendor(data: &[u8]) {
    let Some((&v, rest)) = data.split_first() else {
        return;
    };
    run(Vendor::ALL[v as usize % Vendor::ALL.len()], rest, true);
}

fn run(vendor: Vendor, data: &[u8], inline_types: bool) {
    let (op, flags, param) = match data {
        [o, f, p, ..] => (*o, *f, *p),
        _ => return,
    };
    let all = ops(vendor);
    let op = all[op as usize % all.len()];
    let answers = decode_answers(&data[3..], inline_types);
    let loopback = param & LOOPBACK != 0;
    let number = u64::from(param >> 1);
    let account = account(vendor, flags, loopback);
    let issuer = issuer(vendor, &account.base_url, loopback);
    let now = Utc::now();
    let previous = previous(vendor, flags, &issuer, now);
    let secrets = bundle(&account, flags);
    let sink = Recorder {
        fails: flags & flag::SINK_FAILS != 0,
        ..Recorder::default()
    };
    let call = Call::new(&account, &CLIENT, now)
        .after(previous.as_ref())
        .rotating_into(&sink);
    let Some(flow) = vendors::flow_for(vendor) else {
        return;
    };
    // What the flow may send: the credential (or refresh token); the token in use
    // only where the flow sends it (a check, a sign-out).
    let all_given: Vec<&str> = secrets.secrets().map(Secret::expose).collect();
    let credential: Vec<&str> = secrets
        .secrets()
        .map(Secret::expose)
        .filter(|s| *s != ACCESS_TOKEN)
        .collect();
    canned::arm(answers);
    RUNTIME.with(|rt| {
        rt.block_on(async {
            match op {
                Op::SignIn | Op::Renew => {
                    let r = if op == Op::SignIn {
                        flow.sign_in(&call, &secrets).await
                    } else {
                        flow.renew(&call, &secrets).await
                    };
                    if let Some(issued) = checked(r, &credential) {
                        check_issued(&issued, now, &credential);
                        for (kind, s) in &issued.rotated {
                            if *kind == SecretKind::RefreshToken && s.expose() != REFRESH_TOKEN {
                                assert!(
                                    sink.holds(*kind, s),
                                    "a rotated refresh token was returned before it was stored"
                                );
                            }
                        }
                        if vendor == Vendor::Bigfix && op == Op::Renew {
                            assert!(
                                sink.holds(SecretKind::AccessToken, &issued.token),
                                "a rotated BigFix token was not stored before the old one was revoked"
                            );
                        }
                    }
                }
                Op::StartDevice | Op::StartAndPoll => {
                    if let Some(code) = checked(flow.start_device(&call).await, &[]) {
                        check_code(&code, &account.base_url);
                        if op == Op::StartAndPoll {
                            let code = pollable(code);
                            if let Some(issued) =
                                checked(flow.finish_device(&call, &code).await, &[])
                            {
                                check_finished(&issued, &sink, now);
                            }
                        }
                    }
                }
                Op::Poll => {
                    let code = pollable(DeviceCode {
                        device_code: Secret::new(DEVICE_CODE),
                        user_code: "HHHJ-MMSZ".into(),
                        verification_uri: format!("{issuer}/activate"),
                        verification_uri_complete: None,
                        expires_at: now,
                        interval: StdDuration::ZERO,
                        token_endpoint: format!("{issuer}/oauth/token"),
                        client_id: "fuzz-client".into(),
                        exchange_endpoint: None,
                    });
                    let given = [DEVICE_CODE];
                    if let Some(issued) = checked(flow.finish_device(&call, &code).await, &given) {
                        check_issued(&issued, now, &given);
                        check_finished(&issued, &sink, now);
                    }
                }
                Op::Check => {
                    let token = Secret::new(ACCESS_TOKEN);
                    checked(flow.check(&call, &token).await, &[ACCESS_TOKEN]);
                }
                Op::SignOut => {
                    checked(flow.sign_out(&call, &secrets).await, &all_given);
                }
                _ => inventory(op, number, &call, &secrets, &credential).await,
            }
        });
    });
    canned::disarm();
}

fn check_finished(issued: &Issued, sink: &Recorder, now: DateTime<Utc>) {
    check_dates(&issued.meta, now);
    for (kind, s) in &issued.rotated {
        if *kind == SecretKind::RefreshToken {
            assert!(
                sink.holds(*kind, s),
                "a device sign-in's refresh token was returned before it was stored"
            );
        }
    }
}

async fn inventory(op: Op, number: u64, call: &Call<'_>, secrets: &SecretBundle, given: &[&str]) {
    let Some(inventory) = checked(Inventory::new(call, secrets), given) else {
        return;
    };
    let id = number;
    let r = match op {
        Op::List => inventory
            .list((number != 0).then_some(number))
            .await
            .map(|tokens| tokens.len()),
        Op::ByName => inventory.by_name("token_for_env1").await.map(|_| 1),
        Op::ById => inventory.by_id(id).await.map(|_| 1),
        Op::Create => inventory
            .create("tokenkeeper-fuzz", number as u32)
            .await
            .map(|_| 1),
        Op::Update => inventory
            .update(id, Some("renamed"), Some(10))
            .await
            .map(|()| 0),
        _ => inventory.revoke(id).await.map(|()| 0),
    };
    checked(r, given);
}

/// BigID's JWT `exp`: the bytes as a token, and as the claims of one.
pub fn jwt_expiry(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(t) = jwt::expiry(text) {
            let _ = t.timestamp_millis();
        }
    }
    let token = format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(data));
    if let Some(t) = jwt::expiry(&token) {
        let _ = t.timestamp_millis();
    }
}

/// BigFix's `Expiration` by magnitude (the first eight bytes), then the rest as a
/// token list (and as one token) through the answer path.
pub fn bigfix_expiration(data: &[u8]) {
    let (head, rest) = data.split_at(data.len().min(8));
    let mut raw = [0u8; 8];
    raw[..head.len()].copy_from_slice(head);
    let value = i64::from_le_bytes(raw);
    if let Some(t) = bigfix::expiration(value) {
        assert!(value > 0, "{value} read as {t}");
        let _ = t.timestamp_millis();
    }
    let body = rest.to_vec();
    let ok = |body: Vec<u8>| Canned {
        status: 200,
        content_type: Some("application/json".into()),
        body,
    };
    for op in [Op::List, Op::ById] {
        vendor(
            Vendor::Bigfix,
            &encode(op_index(Vendor::Bigfix, op), 0, 2, &[ok(body.clone())]),
        );
    }
    // The same record as a created token, whose expiry becomes the token's.
    vendor(
        Vendor::Bigfix,
        &encode(op_index(Vendor::Bigfix, Op::SignIn), 0, 0, &[ok(body)]),
    );
}

/// `http::Answer` alone: a big-endian status, a content-type line, the body.
pub fn answer(data: &[u8]) {
    let status = match data {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => return,
    };
    let rest = &data[2..];
    let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
    let content_type = match &rest[..end] {
        [] => None,
        ct => Some(String::from_utf8_lossy(ct).into_owned()),
    };
    let answer = Answer {
        status: reqwest::StatusCode::from_u16(status)
            .unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR),
        content_type,
        body: rest.get(end + 1..).unwrap_or_default().to_vec(),
        endpoint: "Vendor at https://vendor.example.com/api".into(),
    };
    let _ = answer.is_html();
    let _ = answer.json::<serde_json::Value>();
    let _ = answer.unexpected();
}

/// The state the `openbao_callback` target's sign-in waits for.
pub const CALLBACK_STATE: &str = "st4te-0f-th1s-sign-in";

/// OpenBao's loopback OIDC callback, which any local process or web page can reach:
/// the bytes as a request (head and body), read as the callback reads it. Only a GET
/// to the callback's path with this sign-in's state and a code hands a code back;
/// only a post of this sign-in's state ends it; a provider's refusal is quoted
/// short, on one line; nothing panics.
pub fn openbao_callback(data: &[u8]) {
    use crate::vendors::openbao::{request_parts, CallbackRequest};
    let Some((method, target, body)) = request_parts(data) else {
        return;
    };
    assert!(
        target.starts_with('/') && !method.contains(' '),
        "{method} {target}"
    );
    assert!(body.len() <= data.len());
    let Some(request) = CallbackRequest::read(&method, &target, body, CALLBACK_STATE) else {
        return;
    };
    match request {
        CallbackRequest::Code(code) => {
            assert_eq!(method, "GET");
            assert!(!code.expose().is_empty());
            let url = url::Url::parse(&format!("http://127.0.0.1{target}")).unwrap();
            assert_eq!(url.path(), "/oidc/callback");
            assert!(url
                .query_pairs()
                .any(|(k, v)| k == "state" && v == CALLBACK_STATE));
        }
        CallbackRequest::Refused(why) => {
            // 200 characters and an ellipsis at most.
            assert!(why.chars().count() <= 201, "{} chars", why.chars().count());
            assert!(!why.chars().any(char::is_control), "{why:?}");
        }
        CallbackRequest::FormPost => {
            assert_eq!(method, "POST");
            assert!(
                url::form_urlencoded::parse(body).any(|(k, v)| k == "state" && v == CALLBACK_STATE)
            );
        }
        CallbackRequest::Elsewhere
        | CallbackRequest::NotGet
        | CallbackRequest::OtherSignIn
        | CallbackRequest::NoCode => {}
    }
}

/// A fuzz target: its name and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target by name, for the replay test and the seed generator.
pub const TARGETS: &[Target] = &[
    ("truesight", |d| vendor(Vendor::Truesight, d)),
    ("bigid", |d| vendor(Vendor::Bigid, d)),
    ("bigfix", |d| vendor(Vendor::Bigfix, d)),
    ("immuta", |d| vendor(Vendor::Immuta, d)),
    ("biganimal", |d| vendor(Vendor::Biganimal, d)),
    ("oidc", |d| vendor(Vendor::Oidc, d)),
    ("any_vendor", any_vendor),
    ("jwt_expiry", jwt_expiry),
    ("bigfix_expiration", bigfix_expiration),
    ("answer", answer),
    ("openbao_callback", openbao_callback),
];
