//! A minimal W3C WebDriver client, enough to drive the real window through
//! tauri-driver: a session, finding elements, reading text, a script, a screenshot.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::Session;

/// tauri-driver (and WebKitWebDriver behind it), started in a session's environment
/// on a display, so the app it launches inherits both.
#[derive(Debug)]
pub struct Driver {
    child: Child,
    pub port: u16,
}

impl Driver {
    pub fn start(session: &Session, display: &str, extra_env: &[(&str, &str)]) -> Self {
        let port = crate::free_port();
        let native_port = crate::free_port();
        let mut cmd = session.command("tauri-driver");
        cmd.args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native_port.to_string(),
            "--native-driver",
            "/usr/bin/WebKitWebDriver",
        ])
        .env("DISPLAY", display)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        // Its own process group, so that it, WebKitWebDriver and the app stop together.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .expect("tauri-driver (./scripts/setup-debian.sh installs it)");
        let d = Driver { child, port };
        crate::wait_for("tauri-driver to listen", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        d
    }

    /// Launches the app and opens a WebDriver session on its window.
    pub fn launch(&self, application: &Path, args: &[&str]) -> Browser {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let base = format!("http://127.0.0.1:{}", self.port);
        let caps = json!({"capabilities": {"alwaysMatch": {"tauri:options": {
            "application": application, "args": args
        }}}});
        // tauri-driver accepts connections before WebKitWebDriver behind it is ready:
        // retry a session that fails to open, for a while.
        let start = Instant::now();
        let answer: Value = loop {
            match http
                .post(format!("{base}/session"))
                .json(&caps)
                .send()
                .and_then(|r| r.json())
            {
                Ok(v) => break v,
                Err(e) if start.elapsed() > Duration::from_secs(15) => {
                    panic!("no WebDriver session after 15 s: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(300)),
            }
        };
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_string();
        Browser {
            http,
            url: format!("{base}/session/{id}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // tauri-driver, WebKitWebDriver and the app: the whole group, so none outlives the test.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Browser {
    http: reqwest::blocking::Client,
    url: String,
}

impl Browser {
    fn post(&self, path: &str, body: Value) -> Value {
        let v: Value = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .and_then(|r| r.json())
            .expect("webdriver post");
        v["value"].clone()
    }

    fn get(&self, path: &str) -> Value {
        let v: Value = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .and_then(|r| r.json())
            .expect("webdriver get");
        v["value"].clone()
    }

    /// The texts of every element matching `css`.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let found = self.post("/elements", json!({"using": "css selector", "value": css}));
        found
            .as_array()
            .map(|els| {
                els.iter()
                    .filter_map(|e| {
                        e.as_object()
                            .and_then(|o| o.values().next())
                            .and_then(Value::as_str)
                    })
                    .map(|id| {
                        self.get(&format!("/element/{id}/text"))
                            .as_str()
                            .unwrap_or_default()
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until an element matching `css` exists and returns its text.
    pub fn wait_text(&self, css: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(t) = self.texts(css).into_iter().next() {
                return t;
            }
            assert!(
                start.elapsed() < timeout,
                "no element '{css}' after {timeout:?}; page: {}",
                self.page_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn page_text(&self) -> String {
        self.texts("body").join("\n")
    }

    /// Runs an async script; `args[last]` is the callback.
    pub fn execute_async(&self, script: &str) -> Value {
        self.post("/execute/async", json!({"script": script, "args": []}))
    }

    pub fn screenshot(&self, to: &Path) {
        let b64 = self.get("/screenshot");
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("screenshot base64");
        std::fs::write(to, png).expect("write screenshot");
    }

    pub fn close(self) {
        let _ = self.http.delete(&self.url).send();
    }
}
