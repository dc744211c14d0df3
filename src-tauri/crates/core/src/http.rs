//! Talking to vendors over HTTP: one client per account (its own trusted CA, never
//! a switch that turns verification off), deadlines, a cap on answer size, and
//! errors that tell the admin what the vendor actually sent back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Certificate, Client, ClientBuilder, RequestBuilder, StatusCode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use url::Url;

use crate::error::{Error, Result};
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
            "'{raw}' is not a URL ({e}): give the instance's address, like https://bigfix.example.com:52311"
        ))
    })?;
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
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(Error::usage(format!(
            "'{raw}' carries a query, fragment or user name: give only the instance's address"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
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

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
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
            "'{text}' is not a SHA-256 certificate fingerprint (64 hex digits):              `tokenkeeper cert <url>` prints the server's"
        )))
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
        // A custom verifier, not a disabled one: it checks the pin and every handshake signature.
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

/// Trusts exactly one certificate, by the SHA-256 of its DER: the admin's choice for a
/// self-signed server (BigFix on 52311). The handshake's signatures are still verified
/// against that certificate's key, so only its holder can answer.
#[derive(Debug)]
struct PinnedCertificate {
    pin: String,
    algorithms: WebPkiSupportedAlgorithms,
}

struct PinMismatch {
    presented: String,
}

/// rustls shows a custom verifier error with `{:?}`: make that the readable text.
impl std::fmt::Debug for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server's certificate (SHA-256 {}) is not the pinned one",
            self.presented
        )
    }
}

impl std::error::Error for PinMismatch {}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let presented = hex::encode(Sha256::digest(end_entity.as_ref()));
        if presented == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(PinMismatch { presented })),
            )))
        }
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

/// Records the certificate a server presents and then refuses it, so that nothing is
/// ever sent to that server: what `tokenkeeper cert` uses to show a fingerprint.
#[derive(Debug)]
struct CertificateRecorder {
    seen: Mutex<Option<Vec<u8>>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for CertificateRecorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(end_entity.to_vec());
        Err(rustls::Error::General("certificate recorded".into()))
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
    let recorder = Arc::new(CertificateRecorder {
        seen: Mutex::new(None),
        algorithms: algorithms(),
    });
    let client = base_builder()
        .use_preconfigured_tls(tls_with(recorder.clone())?)
        .build()
        .map_err(|e| Error::internal(format!("cannot build an HTTP client: {e}")))?;
    let outcome = client.head(&url).send().await;
    let seen = recorder
        .seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
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

/// The HTTP client for one account: the system's roots plus the account's own CA,
/// or exactly the certificate the account pinned.
///
/// Clients are kept per trust (system roots, a CA, a pin) for the life of the process:
/// building one loads the system's root certificates, which costs more than a
/// renewal's HTTP call, and a kept client reuses its connections.
pub fn client_for(account: &Account) -> Result<Client> {
    type Trust = (Option<String>, Option<String>);
    static CLIENTS: Mutex<Option<std::collections::HashMap<Trust, Client>>> = Mutex::new(None);
    let key: Trust = (
        account.setting(PIN_SETTING).map(str::to_string),
        account.ca_cert_pem.clone(),
    );
    if let Some(c) = CLIENTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(Default::default)
        .get(&key)
    {
        return Ok(c.clone());
    }
    let client = build_client(account)?;
    CLIENTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(Default::default)
        .insert(key, client.clone());
    Ok(client)
}

fn build_client(account: &Account) -> Result<Client> {
    let mut builder = base_builder();
    if let Some(pin) = account.setting(PIN_SETTING) {
        let pin = normalize_pin(pin)?;
        let verifier = Arc::new(PinnedCertificate {
            pin,
            algorithms: algorithms(),
        });
        return builder
            .use_preconfigured_tls(tls_with(verifier)?)
            .build()
            .map_err(|e| Error::internal(format!("cannot build an HTTP client: {e}")));
    }
    if let Some(pem) = &account.ca_cert_pem {
        let certs = Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
            Error::usage(format!(
                "the CA certificate stored for account '{}' is not valid PEM ({e}): give it again with --ca-cert",
                account.name
            ))
        })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| Error::internal(format!("cannot build an HTTP client: {e}")))
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

fn transport_error(endpoint: &str, e: &reqwest::Error) -> Error {
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
    } else if let Some(start) = all.find("the server's certificate (sha-256") {
        let end = all[start..]
            .find("pinned one")
            .map_or(all.len(), |i| start + i + "pinned one".len());
        let detail = &all[start..end];
        Error::network(format!(
            "{endpoint} presented a certificate other than the one pinned for this account ({detail}). \
             If the server's certificate was renewed, check the new fingerprint with your administrators \
             and pin it with `tokenkeeper trust <account> --pin-sha256 <fingerprint>`; otherwise someone may be intercepting the connection"
        ))
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        Error::network(format!(
            "{endpoint} presented a certificate this account does not trust ({detail}). If the server \
             uses its own CA (BigFix's self-signed certificate on 52311, say), trust that CA with --ca-cert, \
             or pin the server's certificate with --pin-sha256 (`tokenkeeper cert <url>` shows it), on \
             `tokenkeeper add` or, for an existing account, `tokenkeeper trust <account>`"
        ))
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
