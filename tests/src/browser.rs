//! Browser sign-ins without a browser: what `tokenkeeper` runs as `$BROWSER` records
//! the addresses it is asked to open, and a device-code sign-in is approved or denied
//! at the sandbox as the admin would in the page.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::{finish, wait_for, Run};
use crate::sandbox::Sandbox;
use crate::session::Session;

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
        wait_for("the browser to be opened", timeout, || {
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

impl Session {
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
}
