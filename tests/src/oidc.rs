//! The independent OAuth/OIDC server the tests run (`oidc-provider`, tests/oidc):
//! started on a free loopback port, its counters, and the browser played against
//! it, for a device code (approve.mjs) or an authorization code (authorize.mjs,
//! run as `$BROWSER` so the client's own one-click flow opens it).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// tests/oidc, where the server and its scripts are.
pub fn oidc_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

/// `node tests/oidc/server.mjs` on a free loopback port, stopped on drop.
#[derive(Debug)]
pub struct OidcServer {
    child: Child,
    pub issuer: String,
}

impl OidcServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Started with more of server.mjs's arguments (`--bao-redirect URI`).
    pub fn start_with(args: &[&str]) -> Self {
        let dir = oidc_dir();
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "tests/oidc has no node_modules: run scripts/setup-debian.sh (./dev test does)"
        );
        let mut child = Command::new("node")
            .arg("server.mjs")
            .args(["--port", "0", "--access-ttl", "60"])
            .args(args)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node server.mjs");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = lines
            .next()
            .expect("the server's first line")
            .expect("the server's first line");
        // Keep reading its event lines: a closed pipe would stop the server.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        let first: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("server.mjs printed {line:?}: {e}"));
        let issuer = first["issuer"].as_str().expect("issuer").to_string();
        Self { child, issuer }
    }

    pub fn stats(&self) -> Value {
        reqwest::blocking::get(format!("{}/_test/stats", self.issuer))
            .and_then(|r| r.json())
            .expect("/_test/stats")
    }

    /// Plays the browser: enters the code, signs in, consents (or denies).
    pub fn answer(&self, code: &str, approve: bool) {
        let mut cmd = Command::new("node");
        cmd.arg("approve.mjs").arg(&self.issuer).arg(code);
        if !approve {
            cmd.arg("--deny");
        }
        cmd.current_dir(oidc_dir());
        crate::run(cmd, None).ok();
    }
}

impl Drop for OidcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Plays the browser at `url` (authorize.mjs, as the test user alice): signs in,
/// consents and follows the redirect back to the client's callback. The callback
/// page's text; a script that fails fails the test with what it said.
pub fn authorize(url: &str) -> String {
    let mut cmd = Command::new("node");
    cmd.arg("authorize.mjs").arg(url).current_dir(oidc_dir());
    crate::run(cmd, None).ok().stdout
}

/// A `$BROWSER` for an authorization code sign-in: a script that signs in at the
/// address it is given as `login` (authorize.mjs), following the redirect back to
/// the client's callback, and appends what the last page said to `log`.
pub fn authorizing_browser(dir: &Path, login: &str) -> (PathBuf, PathBuf) {
    let script = dir.join("authorizing-browser.sh");
    let log = dir.join("authorizing-browser.log");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncd '{}' && node authorize.mjs \"$1\" --login '{login}' >> '{}' 2>&1\n",
            oidc_dir().display(),
            log.display()
        ),
    )
    .expect("browser script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (script, log)
}
