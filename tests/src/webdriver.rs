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
        // A "session not created" answer (the app came up too slowly) is retried too.
        let id = loop {
            let answer = http
                .post(format!("{base}/session"))
                .json(&caps)
                .send()
                .and_then(|r| r.json::<Value>());
            let problem = match answer {
                Ok(v) => match v["value"]["sessionId"].as_str() {
                    Some(id) => break id.to_string(),
                    None => v.to_string(),
                },
                Err(e) => e.to_string(),
            };
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no WebDriver session after 30 s: {problem}"
            );
            std::thread::sleep(Duration::from_millis(300));
        };
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

    fn element_ids(&self, css: &str) -> Vec<String> {
        self.post("/elements", json!({"using": "css selector", "value": css}))
            .as_array()
            .map(|els| {
                els.iter()
                    .filter_map(|e| {
                        e.as_object()
                            .and_then(|o| o.values().next())
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits for an element matching `css` and returns its WebDriver id.
    fn wait_element(&self, css: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(id) = self.element_ids(css).into_iter().next() {
                return id;
            }
            assert!(
                start.elapsed() < timeout,
                "no element '{css}' after {timeout:?}; page: {}",
                self.page_text()
            );
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Whether an element matching `css` is in the page now.
    pub fn exists(&self, css: &str) -> bool {
        !self.element_ids(css).is_empty()
    }

    /// Waits until no element matches `css`.
    pub fn wait_gone(&self, css: &str, timeout: Duration) {
        crate::wait_for(&format!("'{css}' to go"), timeout, || !self.exists(css));
    }

    /// Clicks the first element matching `css` (waiting up to 20 s for it).
    pub fn click(&self, css: &str) {
        let id = self.wait_element(css, Duration::from_secs(20));
        // WebKitWebDriver does not scroll an element inside a scrolled pane into view
        // before clicking it ("element not interactable"); a person would scroll.
        self.execute(
            "arguments[0].scrollIntoView({block: 'nearest'});",
            json!([{ "element-6066-11e4-a52f-4d52d4ad7d6d": id }]),
        );
        let v = self.post(&format!("/element/{id}/click"), json!({}));
        assert!(
            v.is_null() || v.get("error").is_none(),
            "clicking '{css}' failed: {v}"
        );
    }

    /// Types `text` into the field matching `css`, replacing what it held.
    pub fn fill(&self, css: &str, text: &str) {
        let id = self.wait_element(css, Duration::from_secs(20));
        self.post(&format!("/element/{id}/clear"), json!({}));
        // Clearing fires no input event: say it, as deleting the text by hand would.
        self.execute(
            "document.querySelector(arguments[0]).dispatchEvent(new Event('input', {bubbles: true}));",
            json!([css]),
        );
        if !text.is_empty() {
            let v = self.post(&format!("/element/{id}/value"), json!({"text": text}));
            assert!(
                v.is_null() || v.get("error").is_none(),
                "typing into '{css}' failed: {v}"
            );
        }
    }

    /// Presses keys (WebDriver key codes allowed: "\u{E015}" is ArrowDown) in the
    /// element matching `css`, as typing there would.
    pub fn keys(&self, css: &str, keys: &str) {
        let id = self.wait_element(css, Duration::from_secs(20));
        let v = self.post(&format!("/element/{id}/value"), json!({"text": keys}));
        assert!(
            v.is_null() || v.get("error").is_none(),
            "keys into '{css}' failed: {v}"
        );
    }

    /// Presses keys wherever the keyboard focus is.
    pub fn press(&self, keys: &str) {
        let active = self.get("/element/active");
        let id = active
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no focused element: {active}"))
            .to_string();
        let v = self.post(&format!("/element/{id}/value"), json!({"text": keys}));
        assert!(
            v.is_null() || v.get("error").is_none(),
            "pressing keys failed: {v}"
        );
    }

    /// Presses `key` with `modifier` held (WebDriver key codes: "\u{E008}" is Shift),
    /// through the actions API, which keeps the modifier down for the key's events.
    pub fn chord(&self, modifier: &str, key: &str) {
        let v = self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": modifier},
                {"type": "keyDown", "value": key},
                {"type": "keyUp", "value": key},
                {"type": "keyUp", "value": modifier},
            ]}]}),
        );
        assert!(
            v.is_null() || v.get("error").is_none(),
            "pressing a chord failed: {v}"
        );
        self.http
            .delete(format!("{}/actions", self.url))
            .send()
            .ok();
    }

    /// The data-testid of the element that has the keyboard focus.
    pub fn focused(&self) -> String {
        self.execute(
            "return document.activeElement?.getAttribute('data-testid') ?? '';",
            json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Pastes `text` into the field matching `css` (a PEM file's contents, say): the
    /// value changes at once and the page sees the input event.
    pub fn paste(&self, css: &str, text: &str) {
        self.wait_element(css, Duration::from_secs(20));
        self.execute(
            "const el = document.querySelector(arguments[0]);\
             el.focus(); el.value = arguments[1];\
             el.dispatchEvent(new Event('input', {bubbles: true}));",
            json!([css, text]),
        );
    }

    /// Chooses the option with `value` in the select matching `css`, as a person
    /// would (the page sees the change event).
    pub fn select(&self, css: &str, value: &str) {
        self.wait_element(css, Duration::from_secs(20));
        let done = self.execute(
            "const el = document.querySelector(arguments[0]);\
             if (![...el.options].some(o => o.value === arguments[1])) return false;\
             el.value = arguments[1];\
             el.dispatchEvent(new Event('change', {bubbles: true}));\
             el.dispatchEvent(new Event('input', {bubbles: true}));\
             return true;",
            json!([css, value]),
        );
        assert_eq!(done, json!(true), "no option '{value}' in '{css}'");
    }

    /// An attribute of the first element matching `css`.
    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        let id = self.element_ids(css).into_iter().next()?;
        self.get(&format!("/element/{id}/attribute/{name}"))
            .as_str()
            .map(str::to_string)
    }

    /// Whether the checkbox matching `css` is checked.
    pub fn checked(&self, css: &str) -> bool {
        self.execute(
            "return !!document.querySelector(arguments[0])?.checked;",
            json!([css]),
        ) == json!(true)
    }

    /// Runs a script synchronously with `args` and returns its value.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
    }

    /// Invokes one of the app's commands as the page would, and returns the answer
    /// as JSON text (or "ERR " and the error).
    pub fn invoke(&self, command: &str, args: Value) -> String {
        let v = self.post(
            "/execute/async",
            json!({"script": "const done = arguments[arguments.length - 1];\
                window.__TAURI_INTERNALS__.invoke(arguments[0], arguments[1]).then(\
                  r => done(JSON.stringify(r === undefined ? null : r)),\
                  e => done('ERR ' + JSON.stringify(e)));",
                   "args": [command, args]}),
        );
        v.as_str()
            .unwrap_or_else(|| panic!("invoking {command} failed in WebDriver: {v}"))
            .to_string()
    }

    /// Waits until the text of the first element matching `css` satisfies `ok`.
    pub fn wait_text_where(
        &self,
        css: &str,
        timeout: Duration,
        mut ok: impl FnMut(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            if let Some(t) = self.texts(css).into_iter().next() {
                if ok(&t) {
                    return t;
                }
                assert!(
                    start.elapsed() < timeout,
                    "'{css}' still says {t:?} after {timeout:?}"
                );
            } else {
                assert!(
                    start.elapsed() < timeout,
                    "no element '{css}' after {timeout:?}; page: {}",
                    self.page_text()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The texts of every element matching `css`.
    pub fn texts(&self, css: &str) -> Vec<String> {
        self.element_ids(css)
            .iter()
            .map(|id| {
                self.get(&format!("/element/{id}/text"))
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
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

    /// Everything the page holds that a secret could sit in: the rendered text, the
    /// whole document's HTML (attributes, hidden elements, templates) and the current
    /// value of every input, select and text area (a value typed or set by script is
    /// not in the HTML).
    pub fn page_everything(&self) -> String {
        let found = self.execute(
            "const values = Array.from(document.querySelectorAll('input, textarea, select'))\
               .map(e => e.value);\
             return [document.body.innerText, document.documentElement.outerHTML]\
               .concat(values).join('\\n');",
            json!([]),
        );
        let found = found
            .as_str()
            .unwrap_or_else(|| panic!("the page's content: {found}"))
            .to_string();
        assert!(found.contains("<html"), "the document's HTML was read");
        format!("{}\n{found}", self.page_text())
    }

    /// Runs an async script; `args[last]` is the callback.
    pub fn execute_async(&self, script: &str) -> Value {
        self.execute_async_with(script, json!([]))
    }

    /// Runs an async script with `args`; the callback comes after them.
    pub fn execute_async_with(&self, script: &str, args: Value) -> Value {
        self.post("/execute/async", json!({"script": script, "args": args}))
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
