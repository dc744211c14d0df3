//! Talking to vendors over HTTP: one client per account (its own trusted CA, never
//! a switch that turns verification off), deadlines, a cap on answer size, and
//! errors that tell the admin what the vendor actually sent back.

#[doc(hidden)]
pub mod canned;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::{Client, ClientBuilder, RequestBuilder, StatusCode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use url::Url;

use crate::error::{Error, Remedy, Result};
use crate::model::Account;

/// The largest answer read from a vendor; a token answer is a few kilobytes.
pub const MAX_BODY: usize = 1024 * 1024;

/// How long a vendor call may take, overall; `TOKENKEEPER_HTTP_TIMEOUT` (seconds) overrides.
pub fn request_timeout() -> Duration {
    std::env::var("TOKENKEEPER_HTTP_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(30))
}

/// Checks an instance URL as the admin typed it and returns it without a trailing slash.
/// Plain `http://` is accepted only for this machine (the sandbox), never across a network.
pub fn normalize_base_url(raw: &str) -> Result<String> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        Error::usage(format!(
            "'{}' is not a URL ({e}): give the instance's address, like https://bigfix.example.com:52311",
            without_credentials(raw)
        ))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        // Never echoed: the part before '@' may be a password.
        return Err(Error::usage(
            "the URL carries a user name or password before '@': give only the instance's address \
             (https://host:port/path); a password goes to the keyring, never into the URL",
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(Error::usage(format!(
                "'{raw}' uses plain http: secrets would cross the network unencrypted. Use https://"
            )))
        }
        other => {
            return Err(Error::usage(format!(
                "'{raw}' has scheme '{other}': use https://"
            )))
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::usage(format!(
            "'{raw}' carries a query or fragment: give only the instance's address"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// `raw` for a message, with anything between "//" and "@" (credentials) cut out.
fn without_credentials(raw: &str) -> String {
    match (raw.find("//"), raw.rfind('@')) {
        (Some(start), Some(at)) if at > start => format!("{}//…@{}", &raw[..start], &raw[at + 1..]),
        _ => raw.to_string(),
    }
}

/// Whether a vendor-given address is fit to open in the browser: https, or http on
/// this machine only; never file:, javascript: or another scheme.
pub fn is_browser_safe(raw: &str) -> bool {
    match Url::parse(raw) {
        Ok(url) => match url.scheme() {
            "https" => url.host().is_some(),
            "http" => is_loopback(&url),
            _ => false,
        },
        Err(_) => false,
    }
}

/// The registrable part of a host, roughly: its last two labels ("biganimal.com" of
/// "auth.biganimal.com"); an IP address is itself.
fn site(url: &Url) -> Option<String> {
    match url.host()? {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            let labels: Vec<&str> = d.rsplitn(3, '.').collect();
            Some(match labels.as_slice() {
                [tld, name, ..] => format!("{name}.{tld}"),
                _ => d.clone(),
            })
        }
        host => Some(host.to_string()),
    }
}

/// Checks an endpoint an issuer (or a vendor's portal) named before anything secret
/// is sent to it: https (plain http only between two loopback addresses), never this
/// machine for an issuer elsewhere, and on the issuer's own domain.
///
/// The reason never quotes `endpoint`: it is the vendor's text, and the message it
/// goes into is for the admin (a hostile document could carry anything).
pub fn bound_to(issuer: &str, endpoint: &str) -> std::result::Result<(), String> {
    let (Ok(i), Ok(e)) = (Url::parse(issuer), Url::parse(endpoint)) else {
        return Err("it is not a URL".into());
    };
    if !e.username().is_empty() || e.password().is_some() {
        return Err("it carries credentials before '@'".into());
    }
    let local_issuer = is_loopback(&i);
    match (e.scheme(), is_loopback(&e)) {
        ("https", false) => {}
        ("https" | "http", true) if local_issuer => return Ok(()),
        (_, true) => {
            return Err(format!(
                "it is on this machine, but the issuer {issuer} is not"
            ))
        }
        ("http", false) => {
            return Err("it uses plain http: secrets would cross the network unencrypted".into())
        }
        (_, false) => return Err("it is not an https address".into()),
    }
    if local_issuer {
        return Err(format!(
            "it is elsewhere, but the issuer {issuer} is on this machine"
        ));
    }
    if site(&i) != site(&e) {
        return Err(format!(
            "it is not on the issuer's domain ({}); Tokenkeeper sends tokens only to the \
             issuer's own domain",
            site(&i).unwrap_or_default()
        ));
    }
    Ok(())
}

/// Whether an issuer's verification address may be opened in the browser: https, or
/// http on this machine for an issuer on this machine only; never this machine for an
/// issuer elsewhere (a page there could be anything).
pub fn is_browser_safe_for(issuer: &str, raw: &str) -> bool {
    let Ok(i) = Url::parse(issuer) else {
        return false;
    };
    match Url::parse(raw) {
        Ok(url) if is_loopback(&url) || is_unspecified(&url) => {
            is_loopback(&i) && matches!(url.scheme(), "http" | "https")
        }
        Ok(url) => url.scheme() == "https" && url.host().is_some(),
        Err(_) => false,
    }
}

fn is_unspecified(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_unspecified(),
        _ => false,
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    }
}

/// The account setting that pins the server's certificate.
pub const PIN_SETTING: &str = "pin_sha256";

/// Checks a certificate fingerprint as the admin typed it (hex, colons allowed) and
/// returns it as 64 lowercase hex digits.
pub fn normalize_pin(text: &str) -> Result<String> {
    let hex: String = text
        .trim()
        .trim_start_matches("sha256:")
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(Error::usage(format!(
            "'{text}' is not a SHA-256 certificate fingerprint (64 hex digits)"
        ))
        .with_remedy(Remedy::trust_certificate(None)))
    }
}

fn base_builder() -> ClientBuilder {
    Client::builder()
        .user_agent(concat!("tokenkeeper/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(request_timeout())
        .redirect(reqwest::redirect::Policy::none())
        .https_only(false)
}

fn tls_with(verifier: Arc<dyn ServerCertVerifier>) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("cannot set up TLS: {e}")))?
        // A custom verifier, not a disabled one: it checks the chain, the name and every
        // handshake signature (or the pin and the signatures).
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

/// Why a server's certificate was not trusted, in words, with the SHA-256 of the
/// certificate it presented: what `transport_error` turns into the admin's message.
#[derive(Clone)]
pub struct Untrusted {
    /// "it expired on 2026-01-01 00:00 UTC", "it is for other.example.com, not …".
    pub reason: String,
    /// Lowercase hex SHA-256 of the presented certificate's DER.
    pub presented: String,
    pub kind: UntrustedKind,
}

/// What kind of refusal, for the advice that follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UntrustedKind {
    /// Not the pinned certificate.
    NotPinned,
    /// Issued by nobody the account trusts (a self-signed server, another CA).
    UnknownIssuer,
    /// For another host name: a wrong URL, or someone else's server.
    WrongHost,
    /// Expired or not yet valid.
    Time,
    Other,
}

/// rustls shows a custom verifier error with `{:?}`: make that the readable text.
impl std::fmt::Debug for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (SHA-256 {})", self.reason, self.presented)
    }
}

impl std::error::Error for Untrusted {}

fn when(t: UnixTime) -> String {
    i64::try_from(t.as_secs())
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(
            || "an unreadable date".to_string(),
            |d| d.format("%Y-%m-%d %H:%M UTC").to_string(),
        )
}

/// A certificate refusal in the admin's words.
fn in_words(error: &rustls::Error, host: &str) -> (String, UntrustedKind) {
    use UntrustedKind as K;
    let rustls::Error::InvalidCertificate(e) = error else {
        return (format!("the TLS handshake failed ({error})"), K::Other);
    };
    match e {
        CertificateError::Expired => ("it has expired".into(), K::Time),
        CertificateError::ExpiredContext { not_after, .. } => {
            (format!("it expired on {}", when(*not_after)), K::Time)
        }
        CertificateError::NotValidYet => (
            "it is not valid yet (check this machine's clock)".into(),
            K::Time,
        ),
        CertificateError::NotValidYetContext { not_before, .. } => (
            format!(
                "it is valid only from {} (check this machine's clock)",
                when(*not_before)
            ),
            K::Time,
        ),
        CertificateError::NotValidForName => (format!("it is not for {host}"), K::WrongHost),
        CertificateError::NotValidForNameContext { presented, .. } => (
            if presented.is_empty() {
                format!("it names no host, so not {host}")
            } else {
                let names: Vec<String> = presented.iter().map(|n| plain_name(n)).collect();
                format!("it is for {}, not {host}", names.join(", "))
            },
            K::WrongHost,
        ),
        CertificateError::UnknownIssuer => (
            "it was not issued by a CA this account trusts".into(),
            K::UnknownIssuer,
        ),
        CertificateError::Revoked => ("its issuer has revoked it".into(), K::Other),
        CertificateError::BadSignature => (
            "its signature does not match its issuer's key".into(),
            K::UnknownIssuer,
        ),
        CertificateError::BadEncoding => ("it cannot be read".into(), K::Other),
        CertificateError::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => (
            "it is a CA certificate that is not among those this account trusts".into(),
            K::UnknownIssuer,
        ),
        other => (format!("it was refused ({other})"), K::Other),
    }
}

/// A certificate's name as rustls lists it (`DnsName("a.example")`, `IpAddress(…)`),
/// as the admin would write it.
fn plain_name(listed: &str) -> String {
    match (listed.find('('), listed.rfind(')')) {
        (Some(a), Some(b)) if a < b => listed[a + 1..b].trim_matches('"').to_string(),
        _ => listed.to_string(),
    }
}

fn refuse(reason: String, kind: UntrustedKind, end_entity: &CertificateDer<'_>) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Untrusted {
        reason,
        presented: hex::encode(Sha256::digest(end_entity.as_ref())),
        kind,
    }))))
}

/// Checks that a certificate the admin gave as trusted is the server's own and fit
/// for this connection: its name covers the host and it is within its dates. What
/// `curl --cacert` accepts for a self-signed server, whatever its basic constraints
/// say (OpenSSL marks the certificates `openssl req -x509` makes as CAs).
fn check_exact(
    end_entity: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> std::result::Result<(), (String, UntrustedKind)> {
    let host = server_name.to_str();
    let parsed =
        rustls::server::ParsedCertificate::try_from(end_entity).map_err(|e| in_words(&e, &host))?;
    rustls::client::verify_server_name(&parsed, server_name).map_err(|e| in_words(&e, &host))?;
    let (_, cert) = x509_parser::parse_x509_certificate(end_entity.as_ref())
        .map_err(|_| ("it cannot be read".to_string(), UntrustedKind::Other))?;
    let validity = cert.validity();
    let now_s = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let at = |t: i64| UnixTime::since_unix_epoch(Duration::from_secs(t.max(0).unsigned_abs()));
    if now_s > validity.not_after.timestamp() {
        return Err((
            format!("it expired on {}", when(at(validity.not_after.timestamp()))),
            UntrustedKind::Time,
        ));
    }
    if now_s < validity.not_before.timestamp() {
        return Err((
            format!(
                "it is valid only from {} (check this machine's clock)",
                when(at(validity.not_before.timestamp()))
            ),
            UntrustedKind::Time,
        ));
    }
    Ok(())
}

/// How one connection decides whether to trust the server's certificate. Handshake
/// signatures are always verified against the presented certificate's key, so only
/// its holder can answer, whatever the rule.
#[derive(Debug)]
struct AccountTrust {
    rule: Rule,
    algorithms: WebPkiSupportedAlgorithms,
}

#[derive(Debug)]
enum Rule {
    /// The system's roots plus the account's CA file, whose certificates may also be
    /// the server's own (self-signed): one of them presented as such is trusted.
    Roots {
        chain: Arc<rustls::client::WebPkiServerVerifier>,
        exact: Vec<Vec<u8>>,
    },
    /// Exactly one certificate, by the SHA-256 of its DER.
    Pinned(String),
    /// Trusts nothing: keeps the presented certificate and ends the handshake, so
    /// nothing is sent (what `tokenkeeper cert` uses to show a fingerprint).
    Record(Mutex<Option<Vec<u8>>>),
}

impl AccountTrust {
    fn new(rule: Rule) -> Self {
        Self {
            rule,
            algorithms: algorithms(),
        }
    }

    fn roots(account_cas: Vec<CertificateDer<'static>>) -> Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        // The system's roots; a broken one among them is skipped, as browsers do.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        let exact = account_cas.iter().map(|c| c.to_vec()).collect();
        roots.add_parsable_certificates(account_cas);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| Error::internal(format!("cannot set up TLS: {e}")))?;
        Ok(Self::new(Rule::Roots { chain, exact }))
    }
}

impl ServerCertVerifier for AccountTrust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let (chain, exact) = match &self.rule {
            Rule::Record(seen) => {
                *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(end_entity.to_vec());
                return Err(rustls::Error::General("certificate recorded".into()));
            }
            Rule::Pinned(pin) => {
                let presented = hex::encode(Sha256::digest(end_entity.as_ref()));
                return if &presented == pin {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(refuse(
                        "it is not the certificate pinned for this account".into(),
                        UntrustedKind::NotPinned,
                        end_entity,
                    ))
                };
            }
            Rule::Roots { chain, exact } => (chain, exact),
        };
        let refused = match chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        if exact.iter().any(|c| c.as_slice() == end_entity.as_ref()) {
            return match check_exact(end_entity, server_name, now) {
                Ok(()) => Ok(ServerCertVerified::assertion()),
                Err((reason, kind)) => Err(refuse(reason, kind, end_entity)),
            };
        }
        let (reason, kind) = in_words(&refused, &server_name.to_str());
        Err(refuse(reason, kind, end_entity))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The SHA-256 fingerprint (lowercase hex) of the certificate the server at `url`
/// presents, for pinning. Sends nothing beyond the TLS handshake.
pub async fn certificate_sha256(url: &str) -> Result<String> {
    let url = normalize_base_url(url)?;
    if !url.starts_with("https://") {
        return Err(Error::usage(format!(
            "{url} does not use TLS: nothing to pin"
        )));
    }
    let recorder = Arc::new(AccountTrust::new(Rule::Record(Mutex::new(None))));
    let client = base_builder()
        .use_preconfigured_tls(tls_with(recorder.clone())?)
        .build()
        .map_err(|e| Error::internal(format!("cannot build an HTTP client: {e}")))?;
    let outcome = client.head(&url).send().await;
    let seen = match &recorder.rule {
        Rule::Record(seen) => seen.lock().unwrap_or_else(|p| p.into_inner()).take(),
        _ => None,
    };
    match (seen, outcome) {
        (Some(der), _) => Ok(hex::encode(Sha256::digest(&der))),
        (None, Err(e)) => Err(transport_error(&url, &e)),
        (None, Ok(_)) => Err(Error::internal("the server's certificate was not seen")),
    }
}

/// Connects to `url` with `client` and completes the TLS handshake; any HTTP answer
/// will do. Shows that an account's trust settings work before they are saved.
pub async fn handshake(client: &Client, url: &str) -> Result<()> {
    client
        .head(url)
        .send()
        .await
        .map(drop)
        .map_err(|e| transport_error(url, &e))
}

/// How an account trusts its server, as the client cache's key.
type TrustKey = (Option<String>, Option<String>);

/// Clients kept per trust (system roots, a CA, a pin) for the life of the process:
/// building one loads the system's root certificates, which costs more than a
/// renewal's HTTP call, and a kept client reuses its connections.
static CLIENTS: LazyLock<Mutex<HashMap<TrustKey, Client>>> = LazyLock::new(Default::default);

/// The HTTP client for one account: the system's roots plus the account's own CA,
/// or exactly the certificate the account pinned.
pub fn client_for(account: &Account) -> Result<Client> {
    let key: TrustKey = (
        account.setting(PIN_SETTING).map(str::to_string),
        account.ca_cert_pem.clone(),
    );
    if let Some(c) = CLIENTS.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(c.clone());
    }
    let client = build_client(account)?;
    CLIENTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, client.clone());
    Ok(client)
}

/// The certificates of a PEM bundle, or why it is not one.
fn pem_certificates(pem: &str) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("it holds no certificate".into());
    }
    Ok(certs)
}

fn build_client(account: &Account) -> Result<Client> {
    let trust = if let Some(pin) = account.setting(PIN_SETTING) {
        AccountTrust::new(Rule::Pinned(normalize_pin(pin)?))
    } else {
        let cas = match &account.ca_cert_pem {
            Some(pem) => pem_certificates(pem).map_err(|e| {
                Error::usage(format!(
                    "the CA certificate stored for account '{}' is not valid PEM ({e}): give it again",
                    account.name
                ))
                .with_remedy(Remedy::trust_certificate(None))
                .for_account(&account.name)
            })?,
            None => Vec::new(),
        };
        AccountTrust::roots(cas)?
    };
    base_builder()
        .use_preconfigured_tls(tls_with(Arc::new(trust))?)
        .build()
        .map_err(|e| Error::internal(format!("cannot build an HTTP client: {e}")))
}

/// An `Authorization` header value, marked sensitive so that no HTTP layer logs it.
pub fn authorization(value: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        Error::vendor("the token holds characters an HTTP header cannot carry: sign in again")
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// What a vendor sent back, read in full (up to `MAX_BODY`).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// Who answered, for messages: "TrueSight at https://…/tsws/api/v10.1/token".
    pub endpoint: String,
}

/// Sends a request and reads the answer, mapping transport failures to errors that
/// name `endpoint` and say what to check.
pub async fn send(request: RequestBuilder, endpoint: &str) -> Result<Answer> {
    // The fuzzing and replay seam: a thread that armed `canned` is answered from it,
    // never from the network. Unarmed (always, in the product): one thread-local check.
    if canned::is_armed() {
        return canned::answer(request, endpoint);
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| transport_error(endpoint, &e))?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if response
        .content_length()
        .is_some_and(|n| n as usize > MAX_BODY)
    {
        return Err(too_large(endpoint));
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(too_large(endpoint));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(transport_error(endpoint, &e)),
        }
    }
    Ok(Answer {
        status,
        content_type,
        body,
        endpoint: endpoint.to_string(),
    })
}

fn too_large(endpoint: &str) -> Error {
    Error::vendor(format!(
        "{endpoint} sent an answer larger than {} KiB, which no token answer is: check the URL",
        MAX_BODY / 1024
    ))
}

/// The certificate refusal behind a transport error, where there is one: rustls's
/// error sits in the chain, inside one or more `io::Error`s (whose `source` skips
/// what they wrap), so both ways down are searched.
fn untrusted_in(e: &reqwest::Error) -> Option<Untrusted> {
    let mut stack: Vec<&(dyn std::error::Error + 'static)> = vec![e];
    for _ in 0..64 {
        let s = stack.pop()?;
        if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) =
            s.downcast_ref::<rustls::Error>()
        {
            if let Some(u) = other.0.downcast_ref::<Untrusted>() {
                return Some(u.clone());
            }
        }
        if let Some(inner) = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            stack.push(inner);
        }
        if let Some(next) = s.source() {
            stack.push(next);
        }
    }
    None
}

fn untrusted_error(endpoint: &str, u: &Untrusted) -> Error {
    let sha = &u.presented;
    let (advice, remedy) = match u.kind {
        UntrustedKind::NotPinned => (
            "If the server's certificate was renewed, check the new fingerprint with your administrators \
             and pin it; otherwise someone may be intercepting the connection",
            Some(Remedy::trust_certificate(Some(sha))),
        ),
        UntrustedKind::UnknownIssuer => (
            "If the server uses its own CA (BigFix's self-signed certificate on 52311, say), trust that CA, \
             or pin this certificate",
            Some(Remedy::trust_certificate(Some(sha))),
        ),
        UntrustedKind::WrongHost => (
            "Check the account's URL: use the host name the certificate names, \
             or ask the server's administrators for a certificate that covers this one",
            None,
        ),
        UntrustedKind::Time => (
            "Ask the server's administrators to renew it (or check this machine's \
             clock); then trust the new one",
            Some(Remedy::trust_certificate(None)),
        ),
        UntrustedKind::Other => ("Check with the server's administrators", None),
    };
    let e = Error::network(format!(
        "{endpoint} presented a certificate this account does not trust: {}, SHA-256 {sha}. {advice}",
        u.reason
    ));
    match remedy {
        Some(r) => e.with_remedy(r),
        None => e,
    }
}

fn transport_error(endpoint: &str, e: &reqwest::Error) -> Error {
    if let Some(u) = untrusted_in(e) {
        return untrusted_error(endpoint, &u);
    }
    let mut chain = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !chain.iter().any(|c: &String| c.contains(&text)) {
            chain.push(text);
        }
        source = s.source();
    }
    let detail = chain.last().cloned().unwrap_or_default();
    let all = chain.join(": ").to_lowercase();
    if e.is_timeout() {
        Error::network(format!(
            "{endpoint} did not answer within {} s: the server may be down or overloaded; try again later",
            request_timeout().as_secs()
        ))
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        Error::network(format!(
            "the TLS handshake with {endpoint} failed ({detail}). If the server uses its own CA, trust it, \
             or pin its certificate"
        ))
        .with_remedy(Remedy::trust_certificate(None))
    } else if e.is_connect() {
        Error::network(format!(
            "could not connect to {endpoint} ({detail}): check the URL, the port and your network"
        ))
    } else {
        Error::network(format!(
            "the request to {endpoint} failed ({detail}); try again later"
        ))
    }
}

impl Answer {
    pub fn is_html(&self) -> bool {
        let ct = self.content_type.as_deref().unwrap_or("").to_lowercase();
        let head = String::from_utf8_lossy(&self.body[..self.body.len().min(256)])
            .trim_start()
            .to_lowercase();
        ct.contains("text/html") || head.starts_with("<!doctype html") || head.starts_with("<html")
    }

    /// Parses a JSON answer, or says precisely why it is not one.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        if self.is_html() {
            return Err(Error::vendor(format!(
                "{} answered with an HTML page (HTTP {}) where JSON was expected: check that the URL is \
                 the API's address, not a portal, proxy or login page",
                self.endpoint, self.status
            )));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            let why = if e.is_eof() {
                "it was cut off before the end"
            } else if e.is_data() {
                "it lacks the fields the vendor documents"
            } else {
                "it is not valid JSON"
            };
            Error::vendor(format!(
                "{} sent an answer Tokenkeeper cannot read (HTTP {}): {why}. The server may be \
                 misconfigured or a proxy may be in the way; try again later",
                self.endpoint, self.status
            ))
        })
    }

    /// An error for an answer that is neither success nor a case the vendor module handles.
    pub fn unexpected(&self) -> Error {
        if self.is_html() {
            return Error::vendor(format!(
                "{} answered HTTP {} with an HTML page: check the URL, or try again if the server is restarting",
                self.endpoint, self.status
            ));
        }
        if self.status.is_server_error() {
            Error::vendor(format!(
                "{} failed on its side (HTTP {}); try again later, and tell the platform's administrators if it persists",
                self.endpoint, self.status
            ))
        } else {
            Error::vendor(format!(
                "{} answered HTTP {}, which Tokenkeeper did not expect",
                self.endpoint, self.status
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_normalized() {
        assert_eq!(
            normalize_base_url("https://ts.example.com:8043/").unwrap(),
            "https://ts.example.com:8043"
        );
        assert_eq!(
            normalize_base_url("http://127.0.0.1:9000/truesight").unwrap(),
            "http://127.0.0.1:9000/truesight"
        );
        assert!(normalize_base_url("http://ts.example.com")
            .unwrap_err()
            .message()
            .contains("plain http"));
        assert!(normalize_base_url("ts.example.com").is_err());
        assert!(normalize_base_url("https://u:p@ts.example.com").is_err());
        // A password with no user name was once accepted and stored in clear.
        let e = normalize_base_url("https://:hunter2-canary@ts.example.com").unwrap_err();
        assert!(e.message().contains("password"), "{e}");
        assert!(!e.message().contains("hunter2-canary"), "{e}");
        let e = normalize_base_url("http://:hunter2-canary@ts.example.com").unwrap_err();
        assert!(!e.message().contains("hunter2-canary"), "{e}");
        let e = normalize_base_url("ht!tp://:hunter2-canary@x").unwrap_err();
        assert!(!e.message().contains("hunter2-canary"), "{e}");
    }

    #[test]
    fn endpoints_are_bound_to_their_issuer() {
        let issuer = "https://login.example.com/realms/ops";
        assert!(bound_to(issuer, "https://login.example.com/realms/ops/token").is_ok());
        assert!(bound_to(issuer, "https://api.example.com/oauth/token").is_ok());
        for bad in [
            "https://evil.example.net/token",
            "http://login.example.com/token",
            "http://127.0.0.1:8080/token",
            "https://127.0.0.1/token",
            "https://localhost/token",
            "https://[::ffff:127.0.0.1]/token",
            "https://u:p@login.example.com/token",
            "file:///etc/passwd",
        ] {
            assert!(bound_to(issuer, bad).is_err(), "{bad} was accepted");
        }
        let local = "http://127.0.0.1:4000/oidc";
        assert!(bound_to(local, "http://127.0.0.1:4000/oidc/token").is_ok());
        assert!(bound_to(local, "https://login.example.com/token").is_err());
    }

    #[test]
    fn a_remote_issuer_never_opens_this_machine_in_the_browser() {
        let remote = "https://auth.biganimal.com/oauth/device/code";
        assert!(is_browser_safe_for(
            remote,
            "https://auth.biganimal.com/activate"
        ));
        assert!(!is_browser_safe_for(remote, "http://127.0.0.1/activate"));
        assert!(!is_browser_safe_for(remote, "https://127.0.0.1/activate"));
        assert!(!is_browser_safe_for(remote, "https://localhost:8443/x"));
        assert!(!is_browser_safe_for(remote, "http://0.0.0.0:80/x"));
        assert!(!is_browser_safe_for(remote, "javascript:alert(1)"));
        let local = "http://127.0.0.1:4000/device/code";
        assert!(is_browser_safe_for(local, "http://127.0.0.1:4000/device"));
    }

    #[test]
    fn authorization_headers_are_sensitive() {
        assert!(authorization("Bearer abc").unwrap().is_sensitive());
        assert!(authorization("bad\nvalue").is_err());
    }

    #[test]
    fn only_web_addresses_are_opened_in_the_browser() {
        assert!(is_browser_safe(
            "https://auth.biganimal.com/activate?user_code=A-B"
        ));
        assert!(is_browser_safe("http://127.0.0.1:4000/device"));
        assert!(!is_browser_safe("http://auth.example.com/activate"));
        assert!(!is_browser_safe("file:///etc/passwd"));
        assert!(!is_browser_safe("javascript:alert(1)"));
    }

    #[test]
    fn pins_are_normalized() {
        let hex = "AB".repeat(32);
        assert_eq!(normalize_pin(&hex).unwrap(), "ab".repeat(32));
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(normalize_pin(&colons).unwrap(), "ab".repeat(32));
        assert!(normalize_pin("abcd").is_err());
    }

    fn answer(ct: &str, body: &str) -> Answer {
        Answer {
            status: StatusCode::OK,
            content_type: Some(ct.into()),
            body: body.as_bytes().to_vec(),
            endpoint: "X".into(),
        }
    }

    #[test]
    fn html_and_truncated_answers_are_named() {
        let e = answer("text/html", "<html>login</html>")
            .json::<serde_json::Value>()
            .unwrap_err();
        assert!(e.message().contains("HTML page"), "{e}");
        let e = answer("application/json", "{\"a\": ")
            .json::<serde_json::Value>()
            .unwrap_err();
        assert!(e.message().contains("cut off"), "{e}");
    }
}
