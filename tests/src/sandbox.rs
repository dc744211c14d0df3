//! The sandbox vendors (`tokenkeeper-sandbox`) as a process on loopback, and its admin
//! API: fault injection, device-code approval, counters, and what it issued.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::process::{bin, first_line};

/// The sandbox vendors, as a separate process on loopback.
#[derive(Debug)]
pub struct Sandbox {
    child: Child,
    pub urls: Value,
    http: reqwest::blocking::Client,
}

impl Sandbox {
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(bin("tokenkeeper-sandbox"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sandbox");
        let line = first_line(&mut child, "sandbox's first line");
        let urls: Value = serde_json::from_str(&line).expect("sandbox URLs as JSON");
        Sandbox {
            child,
            urls,
            http: reqwest::blocking::Client::new(),
        }
    }

    pub fn url(&self, vendor: &str) -> String {
        self.urls[vendor].as_str().expect("vendor url").to_string()
    }

    /// An admin call (a POST with `body`, or a GET without), which must succeed.
    fn admin_call(&self, path: &str, body: Option<Value>) -> reqwest::blocking::Response {
        let url = format!("{}{path}", self.url("admin"));
        let request = match body {
            Some(body) => self.http.post(url).json(&body),
            None => self.http.get(url),
        };
        let r = request.send().expect("sandbox admin");
        assert!(
            r.status().is_success(),
            "sandbox admin {path}: {}",
            r.status()
        );
        r
    }

    pub fn admin(&self, path: &str, body: Value) {
        self.admin_call(path, Some(body));
    }

    /// An admin call whose answer is JSON.
    pub fn admin_json(&self, path: &str, body: Value) -> Value {
        self.admin_call(path, Some(body))
            .json()
            .expect("admin JSON")
    }

    /// An admin GET whose answer is JSON.
    pub fn admin_get(&self, path: &str) -> Value {
        self.admin_call(path, None).json().expect("admin JSON")
    }

    /// The next request under `path_prefix` misbehaves as `kind`.
    pub fn fault(&self, path_prefix: &str, kind: &str) {
        self.fault_times(path_prefix, kind, 1);
    }

    /// The next `count` requests under `path_prefix` misbehave as `kind`.
    pub fn fault_times(&self, path_prefix: &str, kind: &str, count: u32) {
        self.admin(
            "/faults",
            serde_json::json!({"path_prefix": path_prefix, "kind": kind, "count": count}),
        );
    }

    /// How many requests the sandbox served for `"METHOD /path"`.
    pub fn requests(&self, key: &str) -> u64 {
        self.stats()["requests"][key].as_u64().unwrap_or(0)
    }

    /// The sandbox's counters.
    pub fn stats(&self) -> Value {
        self.http
            .get(format!("{}/stats", self.url("admin")))
            .send()
            .and_then(|r| r.json())
            .expect("stats")
    }

    /// What the issuer makes of a refresh token now: `known`, `current` (the one the
    /// issuer takes next), `previous` (the one current replaced), `revoked`.
    pub fn refresh_token_state(&self, token: &str) -> Value {
        self.admin_json(
            "/oauth/refresh-token-state",
            serde_json::json!({ "token": token }),
        )
    }

    /// Every token the stand-ins issued, with `issued_at_ms` and `expires_at_ms`:
    /// `truesight` (by `user`), `biganimal` and `oidc` (by refresh-token `family`).
    pub fn issued(&self) -> Value {
        self.admin_get("/issued")
    }

    /// A BigID user token the stand-in issues, valid for `days` (a JWT or opaque).
    pub fn bigid_user_token(&self, days: u32, jwt: bool) -> String {
        self.bigid_user_token_for(Duration::from_secs(u64::from(days) * 86_400), jwt)
    }

    /// A BigID user token valid for `lifetime` (whole seconds), a JWT or opaque.
    pub fn bigid_user_token_for(&self, lifetime: Duration, jwt: bool) -> String {
        self.admin_json(
            "/bigid/user-tokens",
            serde_json::json!({"expires_in_secs": lifetime.as_secs(), "jwt": jwt}),
        )["token"]
            .as_str()
            .expect("a user token")
            .to_string()
    }

    /// Approves a device code as the admin would in the browser.
    pub fn approve(&self, user_code: &str) {
        self.device_code("approve", user_code);
    }

    pub fn deny(&self, user_code: &str) {
        self.device_code("deny", user_code);
    }

    /// Makes a pending device code expire now (as its `expires_in` running out would).
    pub fn expire(&self, user_code: &str) {
        self.device_code("expire", user_code);
    }

    /// `/device/ACTION` for a user code.
    fn device_code(&self, action: &str, user_code: &str) {
        self.admin(
            &format!("/device/{action}"),
            serde_json::json!({ "user_code": user_code }),
        );
    }

    /// A GET with an Authorization header; the HTTP status.
    pub fn get_status(&self, url: &str, authorization: &str) -> u16 {
        self.http
            .get(url)
            .header("Authorization", authorization)
            .send()
            .expect("request")
            .status()
            .as_u16()
    }

    /// A client that trusts the sandbox BigFix's CA.
    pub fn bigfix_client(&self) -> reqwest::blocking::Client {
        let pem = self.urls["bigfix_ca_pem"].as_str().expect("bigfix CA");
        reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("PEM"))
            .build()
            .expect("client")
    }

    /// Calls BigFix's `/api/login` with a token, trusting the sandbox's CA; returns
    /// the HTTP status.
    pub fn bigfix_login(&self, token: &str) -> u16 {
        self.bigfix_client()
            .get(format!("{}/api/login", self.url("bigfix")))
            .bearer_auth(token)
            .send()
            .expect("BigFix login")
            .status()
            .as_u16()
    }

    /// Calls TrueSight's authenticated `about` with a token; returns the HTTP status.
    pub fn truesight_about(&self, token: &str) -> u16 {
        self.get_status(
            &format!("{}/tsws/api/v10.1/about", self.url("truesight")),
            &format!("authToken {token}"),
        )
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
