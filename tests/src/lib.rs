//! The parts the end-to-end tests stand on, each real: a private D-Bus session with
//! gnome-keyring, the sandbox vendors as a process, the `tokenkeeper` binary, Xvfb,
//! and tauri-driver in front of WebKitWebDriver. Every process is stopped on drop.

pub mod webdriver;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The folder with the workspace's built binaries (target/debug).
pub fn bin_dir() -> PathBuf {
    // Tests run from target/PROFILE/deps, the bench binary from target/PROFILE.
    let exe = std::env::current_exe().expect("current_exe");
    let here = exe.parent().expect("the binary's folder");
    let dir = if here.join("tokenkeeper").exists() {
        here.to_path_buf()
    } else {
        here.parent().expect("target dir").to_path_buf()
    };
    for bin in ["tokenkeeper", "tokenkeeper-sandbox"] {
        assert!(
            dir.join(bin).exists(),
            "{} is missing: build the binaries first (./dev test does: cargo build --workspace --bins)",
            dir.join(bin).display()
        );
    }
    dir
}

pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A private session: its own HOME and XDG folders, D-Bus session bus and
/// gnome-keyring, unlocked with a throwaway password.
#[derive(Debug)]
pub struct Session {
    pub root: tempfile::TempDir,
    pub bus: String,
    dbus: Child,
    keyring: Option<Child>,
    pub data_dir: PathBuf,
}

const KEYRING_PASSWORD: &str = "throwaway-test-password";

impl Session {
    pub fn start() -> Self {
        let root = tempfile::Builder::new()
            .prefix("tk-e2e-")
            .tempdir()
            .expect("tempdir");
        for d in ["home", "data", "config", "cache", "run", "tmp"] {
            std::fs::create_dir_all(root.path().join(d)).expect("mkdir");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                root.path().join("run"),
                std::fs::Permissions::from_mode(0o700),
            )
            .expect("chmod");
        }
        let mut cmd = Command::new("dbus-daemon");
        cmd.args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        Self::apply_home(&mut cmd, root.path());
        let mut dbus = cmd
            .spawn()
            .expect("dbus-daemon (install dbus: ./scripts/setup-debian.sh)");
        let mut line = String::new();
        BufReader::new(dbus.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("dbus address");
        let bus = line.trim().to_string();
        assert!(!bus.is_empty(), "dbus-daemon printed no address");
        let data_dir = root.path().join("vault");
        let mut s = Session {
            root,
            bus,
            dbus,
            keyring: None,
            data_dir,
        };
        s.start_keyring(true);
        s
    }

    fn apply_home(cmd: &mut Command, root: &Path) {
        cmd.env("HOME", root.join("home"))
            .env("XDG_DATA_HOME", root.join("data"))
            .env("XDG_CONFIG_HOME", root.join("config"))
            .env("XDG_CACHE_HOME", root.join("cache"))
            .env("XDG_RUNTIME_DIR", root.join("run"))
            .env("TMPDIR", root.join("tmp"))
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
    }

    /// The environment every process of this session runs with.
    pub fn envs(&self) -> Vec<(String, String)> {
        let r = self.root.path();
        vec![
            ("HOME".into(), r.join("home").display().to_string()),
            ("XDG_DATA_HOME".into(), r.join("data").display().to_string()),
            (
                "XDG_CONFIG_HOME".into(),
                r.join("config").display().to_string(),
            ),
            (
                "XDG_CACHE_HOME".into(),
                r.join("cache").display().to_string(),
            ),
            (
                "XDG_RUNTIME_DIR".into(),
                r.join("run").display().to_string(),
            ),
            // Temporary files land in the session's tree (searched by the canary tests).
            ("TMPDIR".into(), r.join("tmp").display().to_string()),
            ("DBUS_SESSION_BUS_ADDRESS".into(), self.bus.clone()),
            (
                "TOKENKEEPER_DATA_DIR".into(),
                self.data_dir.display().to_string(),
            ),
            // The sandbox's tokens live seconds, not hours: renewals may come a second
            // apart (the default floor is 30 s; tests/tests/hardening.rs tests it).
            ("TOKENKEEPER_MIN_RENEWAL_INTERVAL".into(), "1".into()),
        ]
    }

    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
        cmd.envs(self.envs());
        cmd
    }

    /// Asks the session bus about the Secret Service name; the reply as text.
    fn bus_call(&self, method: &str) -> String {
        self.command("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                &format!("org.freedesktop.DBus.{method}"),
                "string:org.freedesktop.secrets",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    }

    fn secrets_on_bus(&self) -> bool {
        self.bus_call("NameHasOwner").contains("boolean true")
    }

    /// Starts gnome-keyring: unlocked with the session's password, or locked.
    pub fn start_keyring(&mut self, unlocked: bool) {
        let mut cmd = self.command("gnome-keyring-daemon");
        cmd.args(["--foreground", "--components=secrets"]);
        if unlocked {
            cmd.arg("--unlock").stdin(Stdio::piped());
        } else {
            cmd.stdin(Stdio::null());
        }
        // Its complaints are kept for a failing test to be read (it has crashed
        // under heavy parallel load once: "recipient disconnected").
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join("gnome-keyring.log"))
            .expect("the keyring's log");
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("gnome-keyring-daemon (install gnome-keyring: ./scripts/setup-debian.sh)");
        if unlocked {
            let mut stdin = child.stdin.take().expect("stdin");
            stdin
                .write_all(KEYRING_PASSWORD.as_bytes())
                .expect("password");
        }
        self.keyring = Some(child);
        wait_until(
            "gnome-keyring on the session bus",
            Duration::from_secs(10),
            || self.secrets_on_bus(),
        );
    }

    /// The process that owns the Secret Service name: ours, or one D-Bus started.
    fn secrets_owner_pid(&self) -> Option<u32> {
        self.bus_call("GetConnectionUnixProcessID")
            .split_whitespace()
            .skip_while(|w| *w != "uint32")
            .nth(1)
            .and_then(|n| n.parse().ok())
    }

    /// Kills the keyring daemon, as a crash would; D-Bus may start a fresh, locked
    /// one on the next call.
    pub fn stop_keyring(&mut self) {
        if let Some(mut k) = self.keyring.take() {
            let _ = k.kill();
            let _ = k.wait();
        }
        // A daemon D-Bus started on its own is not our child: find it on the bus.
        wait_until(
            "gnome-keyring to leave the bus",
            Duration::from_secs(5),
            || match self.secrets_owner_pid() {
                Some(pid) => {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    false
                }
                None => !self.secrets_on_bus(),
            },
        );
    }

    /// Restarts gnome-keyring with its login collection locked.
    pub fn lock_keyring(&mut self) {
        self.stop_keyring();
        self.start_keyring(false);
    }

    pub fn unlock_keyring(&mut self) {
        self.stop_keyring();
        self.start_keyring(true);
    }

    /// Runs `tokenkeeper ARGS` with `stdin` as its input.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut cmd = self.command(bin("tokenkeeper"));
        cmd.args(args);
        run(cmd, stdin)
    }

    /// `tokenkeeper add NAME --vendor truesight …` with the secret on stdin.
    pub fn add_truesight(
        &self,
        name: &str,
        url: &str,
        user: &str,
        secret: &str,
        extra: &[&str],
    ) -> Run {
        let mut args = vec![
            "add",
            name,
            "--vendor",
            "truesight",
            "--url",
            url,
            "--username",
            user,
            "--tenant",
            "BmcRealm",
            "--secret-stdin",
        ];
        args.extend_from_slice(extra);
        self.cli(&args, Some(secret))
    }

    /// Adds a BigID account that signs in with a user token.
    pub fn add_bigid_user_token(&self, name: &str, url: &str, user_token: &str) -> Run {
        self.cli(
            &[
                "add",
                name,
                "--vendor",
                "bigid",
                "--url",
                url,
                "--method",
                "user-token",
                "--secret-stdin",
            ],
            Some(user_token),
        )
    }

    /// Adds a BigFix account for `user` (its password on stdin), with `extra` flags
    /// (`--ca-cert FILE`, `--pin-sha256 HEX`).
    pub fn add_bigfix(
        &self,
        name: &str,
        url: &str,
        user: &str,
        password: &str,
        extra: &[&str],
    ) -> Run {
        let mut args = vec![
            "add",
            name,
            "--vendor",
            "bigfix",
            "--url",
            url,
            "--username",
            user,
            "--secret-stdin",
        ];
        args.extend_from_slice(extra);
        self.cli(&args, Some(password))
    }

    /// Starts `tokenkeeper ARGS` without waiting (a device-code sign-in that waits for
    /// an approval); `finish` collects it.
    pub fn spawn_cli(&self, env: &[(&str, &str)], args: &[&str]) -> Child {
        self.command(bin("tokenkeeper"))
            .envs(env.iter().copied())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tokenkeeper")
    }

    /// A browser for this session that records the addresses it is asked to open.
    pub fn browser(&self) -> RecordingBrowser {
        RecordingBrowser::new(self.root.path())
    }

    /// Runs a device-code sign-in (`tokenkeeper ARGS`) through a recording browser and
    /// approves or denies the code it was sent to; returns the run and the address.
    pub fn device_sign_in(&self, sb: &Sandbox, args: &[&str], approve: bool) -> (Run, String) {
        let browser = self.browser();
        let child = self.spawn_cli(&[browser.env()], args);
        let url = browser.wait_url(Duration::from_secs(20));
        let code = user_code(&url);
        if approve {
            sb.approve(&code);
        } else {
            sb.deny(&code);
        }
        (finish(child, Duration::from_secs(60)), url)
    }

    /// Starts the desktop app on `display` with `args`, quiet, stopped when dropped.
    pub fn start_desktop(&self, display: &Display, args: &[&str]) -> Running {
        Running(
            self.command(bin("tokenkeeper-desktop"))
                .args(args)
                .env("DISPLAY", &display.name)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("tokenkeeper-desktop"),
        )
    }

    /// Adds a BigAnimal account at the sandbox's portal, approving its browser
    /// sign-in; the finished `tokenkeeper add`.
    pub fn add_biganimal(&self, sb: &Sandbox, name: &str) -> Run {
        let portal = sb.url("biganimal");
        self.device_sign_in(
            sb,
            &["add", name, "--vendor", "biganimal", "--url", &portal],
            true,
        )
        .0
    }

    /// Writes the sandbox's BigFix CA into this session; the file's path.
    pub fn sandbox_bigfix_ca(&self, sb: &Sandbox) -> PathBuf {
        self.write_file(
            "bigfix-ca.pem",
            sb.urls["bigfix_ca_pem"].as_str().expect("bigfix CA"),
        )
    }

    /// Adds a BigFix account at the sandbox for its `admin` operator, trusting the
    /// sandbox's CA.
    pub fn add_sandbox_bigfix(&self, sb: &Sandbox, name: &str) -> Run {
        let ca = self.sandbox_bigfix_ca(sb);
        self.add_bigfix(
            name,
            &sb.url("bigfix"),
            "admin",
            "admin-password",
            &["--ca-cert", ca.to_str().expect("path")],
        )
    }

    /// Adds an account at the sandbox's generic OIDC issuer, approving its browser
    /// sign-in; the finished `tokenkeeper add`.
    pub fn add_sandbox_oidc(&self, sb: &Sandbox, name: &str) -> Run {
        let issuer = sb.url("oidc");
        self.device_sign_in(
            sb,
            &[
                "add",
                name,
                "--vendor",
                "oidc",
                "--url",
                &issuer,
                "--client-id",
                "tokenkeeper-sandbox",
            ],
            true,
        )
        .0
    }

    /// Adds one signed-in account of every vendor (BigAnimal and OIDC approved in the
    /// browser); each account's name with the path prefix its renewal calls first.
    pub fn add_every_vendor(&self, sb: &Sandbox) -> Vec<(&'static str, &'static str)> {
        let s = self;
        let add = |args: &[&str], secret: &str| s.cli(args, Some(secret)).ok();
        add(
            &[
                "add",
                "bid",
                "--vendor",
                "bigid",
                "--url",
                &sb.url("bigid"),
                "--username",
                "bigid",
                "--secret-stdin",
            ],
            "bigid-password",
        );
        s.add_sandbox_bigfix(sb, "bf").ok();
        add(
            &[
                "add",
                "im",
                "--vendor",
                "immuta",
                "--url",
                &sb.url("immuta"),
                "--username",
                "immuta-user",
                "--secret-stdin",
            ],
            "immuta-password",
        );
        s.add_truesight("ts", &sb.url("truesight"), "demo", "demo-password", &[])
            .ok();
        s.add_biganimal(sb, "ba").ok();
        s.add_sandbox_oidc(sb, "oi").ok();
        // (account, the path prefix its renewal calls first)
        vec![
            ("bid", "/bigid/"),
            ("bf", "/api/"),
            ("im", "/immuta/"),
            ("ts", "/truesight/"),
            ("ba", "/biganimal-auth/"),
            ("oi", "/oidc/"),
        ]
    }

    /// Writes `text` to a file of this session and returns its path.
    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.root.path().join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// Every secret the vault keeps in the keyring, from every account item.
    pub fn stored_secrets(&self) -> Vec<String> {
        let service = self.service();
        let mut out = Vec::new();
        for item in self.keyring_items(&service) {
            if !item.starts_with("account/") {
                continue;
            }
            let text = self.keyring_lookup(&service, &item).unwrap_or_default();
            if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&text) {
                out.extend(map.values().filter_map(|v| v.as_str().map(str::to_string)));
            }
        }
        out
    }

    /// The named account's keyring item, parsed.
    pub fn account_secrets(&self, name: &str) -> Value {
        self.account_item(name).secrets(self)
    }

    /// Where an account's secrets are in the keyring (found once, read many times).
    pub fn account_item(&self, name: &str) -> KeyringItem {
        let shown = self.cli(&["show", name, "--json"], None).ok().json();
        let id = shown["summary"]["id"].as_str().expect("account id");
        KeyringItem {
            service: self.service(),
            item: format!("account/{id}"),
        }
    }

    /// Runs `tokenkeeper ARGS` with extra environment variables.
    pub fn cli_env(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut cmd = self.command(bin("tokenkeeper"));
        cmd.envs(env.iter().copied()).args(args);
        run(cmd, None)
    }

    /// Items this session's keyring holds for a keyring service.
    pub fn keyring_items(&self, service: &str) -> Vec<String> {
        let out = self
            .command("secret-tool")
            .args(["search", "--all", "--unlock", "service", service])
            .output()
            .expect("secret-tool");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        text.lines()
            .filter_map(|l| l.strip_prefix("attribute.username = ").map(str::to_string))
            .collect()
    }

    pub fn keyring_lookup(&self, service: &str, item: &str) -> Option<String> {
        let out = self
            .command("secret-tool")
            .args(["lookup", "service", service, "username", item])
            .output()
            .expect("secret-tool");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// The vault's keyring service, as `tokenkeeper info` reports it.
    pub fn service(&self) -> String {
        let info = self.cli(&["info", "--json"], None);
        assert_eq!(info.code, 0, "info failed: {}", info.stderr);
        info.json()["keyring_service"]
            .as_str()
            .expect("service")
            .to_string()
    }
}

/// One account's item in the session's keyring.
#[derive(Debug)]
pub struct KeyringItem {
    service: String,
    item: String,
}

impl KeyringItem {
    /// The secrets stored there now, read with `secret-tool`.
    pub fn secrets(&self, s: &Session) -> Value {
        let text = s
            .keyring_lookup(&self.service, &self.item)
            .expect("the account's keyring item");
        serde_json::from_str(&text).expect("keyring JSON")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(mut k) = self.keyring.take() {
            let _ = k.kill();
            let _ = k.wait();
        }
        let _ = self.dbus.kill();
        let _ = self.dbus.wait();
    }
}

/// Collects a process started by `spawn_cli`, failing the test if it runs too long.
pub fn finish(mut child: Child, timeout: Duration) -> Run {
    let start = Instant::now();
    loop {
        match child.try_wait().expect("try_wait") {
            Some(_) => break,
            None if start.elapsed() > timeout => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("wait");
                panic!(
                    "tokenkeeper ran over {timeout:?}; stderr: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    Run::from_output(child.wait_with_output().expect("wait"), start)
}

/// What `tokenkeeper` runs as `$BROWSER`: a script that appends each address to a log.
#[derive(Debug)]
pub struct RecordingBrowser {
    pub script: PathBuf,
    log: PathBuf,
}

impl RecordingBrowser {
    fn new(dir: &Path) -> Self {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let script = dir.join(format!("browser-{n}.sh"));
        let log = dir.join(format!("browser-{n}.log"));
        std::fs::write(
            &script,
            format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n", log.display()),
        )
        .expect("browser script");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        Self { script, log }
    }

    pub fn env(&self) -> (&'static str, &str) {
        ("BROWSER", self.script.to_str().expect("utf-8 path"))
    }

    /// Every address opened so far.
    pub fn opened(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits for the browser to be opened and returns the address.
    pub fn wait_url(&self, timeout: Duration) -> String {
        wait_until("the browser to be opened", timeout, || {
            !self.opened().is_empty()
        });
        self.opened().remove(0)
    }
}

/// The `user_code` query parameter of a verification address.
pub fn user_code(url: &str) -> String {
    url.split(['?', '&'])
        .find_map(|p| p.strip_prefix("user_code="))
        .map(|c| c.replace("%2D", "-"))
        .unwrap_or_else(|| panic!("no user_code in {url}"))
}

/// A finished process: exit code, output, and how long it took.
#[derive(Debug, Clone)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    fn from_output(out: Output, start: Instant) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
            took: start.elapsed(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success; stderr: {}", self.stderr);
        self
    }
}

pub fn run(mut cmd: Command, stdin: Option<&str>) -> Run {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    Run::from_output(child.wait_with_output().expect("wait"), start)
}

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
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("sandbox's first line");
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

    pub fn admin(&self, path: &str, body: Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url("admin")))
            .json(&body)
            .send()
            .expect("sandbox admin");
        assert!(
            r.status().is_success(),
            "sandbox admin {path}: {}",
            r.status()
        );
    }

    /// An admin call whose answer is JSON.
    pub fn admin_json(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.url("admin")))
            .json(&body)
            .send()
            .expect("sandbox admin");
        assert!(
            r.status().is_success(),
            "sandbox admin {path}: {}",
            r.status()
        );
        r.json().expect("admin JSON")
    }

    pub fn fault(&self, path_prefix: &str, kind: &str) {
        self.admin(
            "/faults",
            serde_json::json!({"path_prefix": path_prefix, "kind": kind, "count": 1}),
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

    /// An admin GET whose answer is JSON.
    pub fn admin_get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.url("admin")))
            .send()
            .expect("sandbox admin");
        assert!(
            r.status().is_success(),
            "sandbox admin {path}: {}",
            r.status()
        );
        r.json().expect("admin JSON")
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
        self.admin(
            "/device/approve",
            serde_json::json!({ "user_code": user_code }),
        );
    }

    pub fn deny(&self, user_code: &str) {
        self.admin(
            "/device/deny",
            serde_json::json!({ "user_code": user_code }),
        );
    }

    /// Makes a pending device code expire now (as its `expires_in` running out would).
    pub fn expire(&self, user_code: &str) {
        self.admin(
            "/device/expire",
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

    /// Calls TrueSight's authenticated `about` with a token; returns the HTTP status.
    pub fn truesight_about(&self, token: &str) -> u16 {
        self.http
            .get(format!("{}/tsws/api/v10.1/about", self.url("truesight")))
            .header("Authorization", format!("authToken {token}"))
            .send()
            .expect("about")
            .status()
            .as_u16()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process killed when the test ends, however it ends.
#[derive(Debug)]
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An X server with no screen, for the real window.
#[derive(Debug)]
pub struct Display {
    child: Child,
    pub name: String,
}

impl Display {
    /// Xvfb picks a free display itself (`-displayfd`) and says which once it
    /// listens, so tests running in parallel never share (and kill) one.
    pub fn start() -> Self {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (install xvfb: ./scripts/setup-debian.sh)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("Xvfb's display number");
        let n: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("Xvfb printed {line:?} for its display"));
        Display {
            child,
            name: format!(":{n}"),
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

pub fn wait_for(what: &str, timeout: Duration, ok: impl FnMut() -> bool) {
    wait_until(what, timeout, ok)
}

/// Every process under `pid`, with its command name (15 characters at most).
pub fn descendants(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        // Any thread may have started a child: read every task's list.
        let children: String = std::fs::read_dir(format!("/proc/{p}/task"))
            .map(|tasks| {
                tasks
                    .flatten()
                    .map(|t| std::fs::read_to_string(t.path().join("children")).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        for c in children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            let comm = std::fs::read_to_string(format!("/proc/{c}/comm")).unwrap_or_default();
            out.push((c, comm.trim().to_string()));
            frontier.push(c);
        }
    }
    out
}

/// Asks the window titled `title` on `display` to close, as a window manager's close
/// button does (a WM_DELETE_WINDOW message); false when no such window is mapped.
pub fn close_window(display: &str, title: &str) -> bool {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt, EventMask};
    with_mapped_window(display, title, |conn, w| {
        let atom = |name: &[u8]| {
            conn.intern_atom(false, name)
                .expect("intern_atom")
                .reply()
                .expect("atom")
                .atom
        };
        let (protocols, delete) = (atom(b"WM_PROTOCOLS"), atom(b"WM_DELETE_WINDOW"));
        let event = ClientMessageEvent::new(32, w, protocols, [delete, 0, 0, 0, 0]);
        conn.send_event(false, w, EventMask::NO_EVENT, event)
            .expect("send_event");
        conn.flush().expect("flush");
    })
}

/// Whether a window titled `title` is mapped (viewable) on `display`.
pub fn window_mapped(display: &str, title: &str) -> bool {
    with_mapped_window(display, title, |_, _| ())
}

/// Finds a mapped window titled `title` on `display` and runs `act` on it; false when
/// there is none.
fn with_mapped_window(
    display: &str,
    title: &str,
    act: impl FnOnce(&x11rb::rust_connection::RustConnection, x11rb::protocol::xproto::Window),
) -> bool {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{AtomEnum, ConnectionExt, MapState, Window};
    let (conn, screen) = x11rb::connect(Some(display)).expect("the X display");
    let net_name = conn
        .intern_atom(false, b"_NET_WM_NAME")
        .expect("intern_atom")
        .reply()
        .expect("atom")
        .atom;
    let name_of = |w: Window, prop: u32| {
        conn.get_property(false, w, prop, AtomEnum::ANY, 0, 256)
            .ok()
            .and_then(|c| c.reply().ok())
            .map(|r| String::from_utf8_lossy(&r.value).to_string())
            .unwrap_or_default()
    };
    let mut stack = vec![conn.setup().roots[screen].root];
    while let Some(w) = stack.pop() {
        if let Ok(Ok(tree)) = conn.query_tree(w).map(|c| c.reply()) {
            stack.extend(tree.children);
        }
        let mapped = conn
            .get_window_attributes(w)
            .ok()
            .and_then(|c| c.reply().ok())
            .is_some_and(|a| a.map_state == MapState::VIEWABLE);
        let named = name_of(w, AtomEnum::WM_NAME.into()) == title || name_of(w, net_name) == title;
        if mapped && named {
            act(&conn, w);
            return true;
        }
    }
    false
}

/// Where a test saves a screenshot of the window: `TOKENKEEPER_SCREENSHOT_DIR`, or
/// `target/debug/screenshots/`.
pub fn screenshot_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("TOKENKEEPER_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("screenshots"));
    std::fs::create_dir_all(&dir).expect("the screenshot folder");
    dir.join(name)
}

/// The session's notification daemon (dunst), and what it showed.
impl Session {
    /// Starts dunst on the session's bus and `display`, its complaints in
    /// `dunst.log`, with a configuration that shows identical notifications each on
    /// its own (dunst's default stacks them into one, which would hide a duplicate)
    /// and keeps a long history; returns once it owns the notification service.
    pub fn start_dunst(&self, display: &Display) -> Running {
        let config = self.write_file(
            "dunstrc",
            "[global]\n    stack_duplicates = false\n    history_length = 200\n    idle_threshold = 0\n",
        );
        let dunst = Running(
            self.command("dunst")
                .arg("-config")
                .arg(&config)
                .env("DISPLAY", &display.name)
                .stdout(Stdio::null())
                .stderr(
                    std::fs::File::create(self.root.path().join("dunst.log")).expect("dunst.log"),
                )
                .spawn()
                .expect("dunst (install dunst: ./scripts/setup-debian.sh)"),
        );
        wait_until("dunst on the session bus", Duration::from_secs(10), || {
            self.command("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.Notifications",
                ])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
        });
        dunst
    }

    /// Runs `dunstctl ARGS` in the session; its output. A failing dunstctl fails the
    /// test (it must never read as "nothing shown").
    pub fn dunstctl(&self, args: &[&str]) -> String {
        let out = self
            .command("dunstctl")
            .args(args)
            .output()
            .expect("dunstctl (install dunst: ./scripts/setup-debian.sh)");
        assert!(
            out.status.success(),
            "dunstctl {args:?} failed ({}): {}; dunst said: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.root.path().join("dunst.log")).unwrap_or_default()
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Every notification the session's dunst has shown so far: (summary, body).
    pub fn notifications_shown(&self) -> Vec<(String, String)> {
        // Closed notifications move to the history, which keeps them all.
        self.dunstctl(&["close-all"]);
        let out = self.dunstctl(&["history"]);
        let history: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("dunstctl history is not JSON ({e}): {out}"));
        history["data"][0]
            .as_array()
            .unwrap_or_else(|| panic!("dunstctl history has no list: {history}"))
            .iter()
            .map(|n| {
                (
                    n["summary"]["data"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    n["body"]["data"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Waits until dunst has shown `n` notifications (or `timeout` passed); what it showed.
    pub fn wait_for_notifications(&self, n: usize, timeout: Duration) -> Vec<(String, String)> {
        let end = Instant::now() + timeout;
        loop {
            let now = self.notifications_shown();
            if now.len() >= n || Instant::now() > end {
                return now;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}
