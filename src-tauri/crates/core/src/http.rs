//! Talking to vendors over HTTP: one client per account (its own trusted CA, never
//! a switch that turns verification off), deadlines, a cap on answer size, and
//! errors that tell the admin what the vendor actually sent back.

use std::time::Duration;

use reqwest::{Certificate, Client, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
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

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The HTTP client for one account: the system's roots plus the account's own CA.
pub fn client_for(account: &Account) -> Result<Client> {
    let mut builder = Client::builder()
        .user_agent(concat!("tokenkeeper/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(request_timeout())
        .redirect(reqwest::redirect::Policy::none())
        .https_only(false);
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
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        Error::network(format!(
            "{endpoint} presented a certificate this account does not trust ({detail}). If the server \
             uses its own CA (BigFix's self-signed certificate on 52311, say), give that CA with --ca-cert"
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
