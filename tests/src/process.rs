//! The workspace's built binaries as processes: where they are, running one to its
//! end with its output kept, stopping one when a test ends however it ends, waiting
//! for a condition, and the tree of processes one started.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
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

/// One of the workspace's built binaries.
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// Waits until `ok` holds, failing the test with `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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

/// Runs `cmd` to its end with `stdin` as its input (none: closed).
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

/// Collects a process started by `Session::spawn_cli` (or any with piped output),
/// failing the test if it runs over `timeout`.
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

/// The first line that `child` (started with its stdout piped) prints: a daemon
/// saying where it listens. `what` names the line in a failure.
pub fn first_line(child: &mut Child, what: &str) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    line
}

/// Sends SIGTERM to `child`, as a service manager stops a service.
pub fn terminate(child: &Child) {
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill -TERM {}", child.id());
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

/// A free TCP port on loopback, for a process to listen on (outside the range of
/// outgoing connections: see `openbao::loopback_ports`).
pub fn free_port() -> u16 {
    crate::openbao::loopback_ports(1)
}
