//! `tokenkeeper agent` as the tests run it: started in the session (headless with
//! `--no-tray`, or with its tray on a display), its stderr collected line by line,
//! stopped on drop. Started with core files allowed (`prlimit --core=unlimited`), so
//! that only the agent's own defence turns them off.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::process::bin;
use crate::session::Session;

/// A running `tokenkeeper agent`.
#[derive(Debug)]
pub struct Agent {
    pub child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    /// The headless agent (`--no-tray`), once it serves its socket.
    pub fn start(s: &Session) -> Self {
        Self::start_with(s, &["--no-tray"], |_| {})
    }

    /// The agent with `args`, its command adjusted by `adjust` (a display, say),
    /// once it serves its socket.
    pub fn start_with(s: &Session, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Self {
        let mut cmd = s.command("prlimit");
        cmd.arg("--core=unlimited")
            .arg(bin("tokenkeeper"))
            .arg("agent")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        adjust(&mut cmd);
        let mut child = cmd.spawn().expect("prlimit (util-linux)");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().expect("stderr"));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let agent = Agent { child, log };
        agent.wait_for("the agent to listen", |l| l.contains("serving the vault"));
        agent
    }

    /// Its stderr so far, a line each.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits up to 30 s for a stderr line that passes `ok`.
    pub fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) {
        let end = Instant::now() + Duration::from_secs(30);
        while !self.log().iter().any(|l| ok(l)) {
            assert!(Instant::now() < end, "{what}: stderr {:#?}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// How many stderr lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log().iter().filter(|l| l.contains(needle)).count()
    }

    /// Stops it as a service manager would, checks it exits 0, and returns its stderr.
    pub fn stop(mut self) -> Vec<String> {
        crate::process::terminate(&self.child);
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "the agent exits 0 on SIGTERM: {status}");
        std::thread::sleep(Duration::from_millis(100));
        self.log()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
