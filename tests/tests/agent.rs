//! The resident agent for real (`tokenkeeper agent --no-tray`, issue 13): started
//! headless against the sandbox with a real keyring, it renews short-lived tokens
//! with no window, and `tokenkeeper token` through it prints and exits exactly as it
//! does alone. Its socket is private (another user cannot reach it), it survives
//! malformed lines and a flood of connections, its stderr and list answers carry no
//! secret, and it writes no core file.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokenkeeper_e2e::{bin, wait_for, Agent, Run, Sandbox, Session};

const NOBODY: &str = "65534";

/// The agent's socket for the session's vault: in the private runtime folder,
/// named after the vault's keyring service.
fn socket_of(s: &Session) -> PathBuf {
    let service = s.service();
    let tag = service.rsplit('/').next().unwrap();
    s.root
        .path()
        .join("run/tokenkeeper")
        .join(format!("agent-{tag}.sock"))
}

/// Sends one line and reads the answer line.
fn ask(socket: &Path, line: &str) -> Value {
    let mut c = UnixStream::connect(socket).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(line.as_bytes()).unwrap();
    let mut answer = String::new();
    BufReader::new(c).read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
}

fn same_output(via: &Run, alone: &Run, what: &str) {
    assert_eq!(
        via.code, alone.code,
        "{what}: exit codes; {via:?} {alone:?}"
    );
    assert_eq!(via.stdout, alone.stdout, "{what}: stdout");
    assert_eq!(via.stderr, alone.stderr, "{what}: stderr");
}

#[test]
fn token_through_the_agent_prints_and_exits_as_alone_and_comes_from_memory() {
    let sb = Sandbox::start(&[]);
    let mut s = Session::start();
    s.add_sandbox_truesight(&sb, "ts").ok();
    let later = s.cli(
        &[
            "add",
            "waiting",
            "--vendor",
            "truesight",
            "--url",
            &sb.url("truesight"),
            "--username",
            "demo",
            "--tenant",
            "BmcRealm",
            "--secret-stdin",
            "--no-login",
        ],
        Some("demo-password"),
    );
    assert_eq!(later.code, 0, "{}", later.stderr);
    let agent = Agent::start(&s);

    for (args, code) in [
        (vec!["token", "ts"], 0),
        (vec!["token", "ts", "--header"], 0),
        (vec!["token", "nobody"], 2),
        (vec!["token", "waiting"], 3),
    ] {
        let via = s.cli(&args, None);
        let mut alone_args = args.clone();
        alone_args.push("--no-agent");
        let alone = s.cli(&alone_args, None);
        assert_eq!(via.code, code, "{args:?}: {}", via.stderr);
        same_output(&via, &alone, &args.join(" "));
    }
    let token = s.cli(&["token", "ts"], None).ok().stdout.trim().to_string();
    assert_eq!(sb.truesight_about(&token), 200, "the vendor takes it");

    // With the agent gone, `token` works alone again, same output.
    let socket = socket_of(&s);
    let secrets = s.stored_secrets();
    assert!(secrets.contains(&token));
    let mut log = agent.stop();
    assert!(!socket.exists(), "the socket goes with the agent");
    let after = s.cli(&["token", "ts"], None).ok();
    assert_eq!(after.stdout.trim(), token);

    // With the keyring gone, working alone fails; an agent still answers from the
    // token it holds: the answer came from the agent's memory.
    let agent = Agent::start(&s);
    assert_eq!(s.cli(&["token", "ts"], None).ok().stdout.trim(), token);
    s.stop_keyring();
    let alone = s.cli(&["token", "ts", "--no-agent"], None);
    assert_eq!(
        alone.code, 6,
        "alone, the keyring is needed: {}",
        alone.stderr
    );
    let via = s.cli(&["token", "ts"], None).ok();
    assert_eq!(via.stdout.trim(), token);
    assert!(via.took < Duration::from_secs(10), "{:?}", via.took);
    log.extend(agent.stop());
    for secret in &secrets {
        assert!(
            !log.iter().any(|l| l.contains(secret.as_str())),
            "the agent's stderr holds a secret: {log:#?}"
        );
    }
}

#[test]
fn the_agent_renews_short_lived_tokens_with_no_window() {
    let sb = Sandbox::start(&["--truesight-token-ttl", "6"]);
    let s = Session::start();
    s.add_sandbox_truesight(&sb, "ts").ok();
    let agent = Agent::start(&s);
    let end = Instant::now() + Duration::from_secs(30);
    while agent.count("renewed 'ts'") < 2 {
        assert!(Instant::now() < end, "no renewals: {:#?}", agent.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every token handed out through the agent works at the vendor.
    let mut handed_out = Vec::new();
    for _ in 0..3 {
        let token = s.cli(&["token", "ts"], None).ok().stdout.trim().to_string();
        assert_eq!(sb.truesight_about(&token), 200);
        handed_out.push(token);
        std::thread::sleep(Duration::from_secs(1));
    }
    // A second agent for the same vault says so and leaves.
    let second = s.cli(&["agent", "--no-tray"], None);
    assert_eq!(second.code, 2, "{}", second.stderr);
    assert!(
        second.stderr.contains("already serves")
            && second.stderr.contains(&agent.child.id().to_string()),
        "{}",
        second.stderr
    );
    // None of the renewed tokens, nor what is stored now, is in the agent's stderr.
    handed_out.extend(s.stored_secrets());
    let log = agent.stop();
    for secret in &handed_out {
        assert!(
            !log.iter().any(|l| l.contains(secret.as_str())),
            "the agent's stderr holds a secret: {log:#?}"
        );
    }
}

/// Not a test on its own: what `another_user_cannot_reach_the_socket` runs as the
/// user "nobody": connecting must be refused by the folder's mode.
#[test]
fn connect_as_told() {
    let Some(path) = std::env::var_os("TK_AGENT_SOCKET") else {
        return;
    };
    let e = UnixStream::connect(path).expect_err("another user connected");
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
}

#[test]
fn the_socket_is_private_and_survives_bad_lines_and_a_flood() {
    let sb = Sandbox::start(&[]);
    let s = Session::start();
    s.add_sandbox_truesight(&sb, "ts").ok();
    let agent = Agent::start(&s);
    let socket = socket_of(&s);
    let folder = socket.parent().unwrap();
    assert_eq!(std::fs::metadata(folder).unwrap().mode() & 0o777, 0o700);
    assert_eq!(
        std::fs::symlink_metadata(&socket).unwrap().mode() & 0o777,
        0o600
    );
    let token = s.cli(&["token", "ts"], None).ok().stdout.trim().to_string();

    // Another user: let it through every folder but the agent's own, then try.
    if nix_root() {
        for open in [s.root.path().to_path_buf(), s.root.path().join("run")] {
            std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o711)).unwrap();
        }
        let out = s
            .command("setpriv")
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
            ])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", "connect_as_told", "--nocapture"])
            .env("TK_AGENT_SOCKET", &socket)
            .output()
            .expect("setpriv");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
        // `tokenkeeper token` as that user gets no token either way.
        let other = s
            .command("setpriv")
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
            ])
            .arg(bin("tokenkeeper"))
            .args(["token", "ts"])
            .output()
            .expect("setpriv");
        assert_ne!(other.status.code(), Some(0));
        assert!(!String::from_utf8_lossy(&other.stdout).contains(&token));
    } else {
        let _ = writeln!(std::io::stderr(), "another user: skipped, needs root");
    }

    // Malformed lines: answered with bad_request, then closed.
    for bad in ["not json\n", "{\"op\":\"shout\"}\n", "{\"op\":\"token\"}\n"] {
        let mut c = UnixStream::connect(&socket).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(bad.as_bytes()).unwrap();
        let mut all = String::new();
        let _ = c.read_to_string(&mut all);
        let answer: Value = serde_json::from_str(all.trim()).unwrap();
        assert_eq!(answer["kind"], "bad_request", "{bad}");
        assert!(all.ends_with('\n') && all.lines().count() == 1, "{all:?}");
    }
    let long = format!("{}\n", "x".repeat(70 * 1024));
    assert_eq!(ask(&socket, &long)["kind"], "bad_request");

    // A flood of 1,000 silent connections: a script's `token` is still answered.
    let flood: Vec<UnixStream> = (0..1_000)
        .map(|_| UnixStream::connect(&socket).expect("flood connect"))
        .collect();
    let via = s.cli(&["token", "ts"], None).ok();
    assert_eq!(via.stdout.trim(), token);
    assert!(via.took < Duration::from_secs(15), "{:?}", via.took);
    // Served beside the flood, not after the agent gave up on it: the silent
    // connections are still open (a read would wait, not see the end).
    let last = flood.last().expect("the flood");
    last.set_nonblocking(true).unwrap();
    let still_open = matches!(
        (&*last).read(&mut [0u8; 1]),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    );
    assert!(still_open, "the agent closed the flood before answering");
    assert_eq!(ask(&socket, "{\"op\":\"ping\"}\n")["ok"], true);
    drop(flood);

    // The list answer carries no secret; the agent writes no core file.
    let list = ask(&socket, "{\"op\":\"list\"}\n");
    assert_eq!(list["accounts"][0]["name"], "ts");
    let secrets = s.stored_secrets();
    assert!(!secrets.is_empty());
    for secret in &secrets {
        assert!(!list.to_string().contains(secret.as_str()), "list: {list}");
    }
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", agent.child.id())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .and_then(|l| l.split_whitespace().nth(4))
        .unwrap();
    assert_eq!(core, "0", "the agent may write a core file");
    let log = agent.stop();
    for secret in &secrets {
        assert!(!log.iter().any(|l| l.contains(secret.as_str())), "{log:#?}");
    }
}

fn nix_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        == 0
}

#[test]
fn another_agent_for_another_vault_runs_beside() {
    let s = Session::start();
    let agent = Agent::start(&s);
    let other_dir = s.root.path().join("other-vault");
    let mut other = s
        .command(bin("tokenkeeper"))
        .args(["agent", "--no-tray"])
        .env("TOKENKEEPER_DATA_DIR", &other_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(other.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("serving the vault"), "{line}");
    wait_for("both sockets", Duration::from_secs(5), || {
        std::fs::read_dir(s.root.path().join("run/tokenkeeper"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "sock"))
                    .count()
            })
            .unwrap_or(0)
            == 2
    });
    let _ = other.kill();
    let _ = other.wait();
    agent.stop();
}

#[test]
fn one_agent_per_vault_whatever_runtime_folder_each_was_started_with() {
    let s = Session::start();
    let agent = Agent::start(&s);
    let socket = socket_of(&s);
    let pid = agent.child.id();
    // The lock is the vault's own, and says who holds it.
    let lock = s.data_dir.join("agent.lock");
    assert_eq!(
        std::fs::symlink_metadata(&lock).unwrap().mode() & 0o777,
        0o600
    );
    let record = std::fs::read_to_string(&lock).unwrap();
    assert_eq!(record, format!("{pid}\n{}\n", socket.display()));

    // Another private runtime folder (another login), and none at all (cron, ssh):
    // each second agent is refused and names the running one and its socket.
    let other_run = s.root.path().join("run-other");
    std::fs::create_dir_all(&other_run).unwrap();
    std::fs::set_permissions(&other_run, std::fs::Permissions::from_mode(0o700)).unwrap();
    for runtime in [Some(other_run.clone()), None] {
        let mut cmd = s.command(bin("tokenkeeper"));
        cmd.args(["agent", "--no-tray"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match &runtime {
            Some(run) => cmd.env("XDG_RUNTIME_DIR", run),
            None => cmd.env_remove("XDG_RUNTIME_DIR"),
        };
        let second = tokenkeeper_e2e::finish(cmd.spawn().unwrap(), Duration::from_secs(30));
        assert_eq!(second.code, 2, "{runtime:?}: {}", second.stderr);
        assert!(
            second.stderr.contains("already serves")
                && second.stderr.contains(&format!("(pid {pid})"))
                && second.stderr.contains(&socket.display().to_string()),
            "{runtime:?}: {}",
            second.stderr
        );
    }
    for elsewhere in [
        other_run.join("tokenkeeper"),
        s.root.path().join("data/tokenkeeper-run"),
    ] {
        let sockets: Vec<_> = std::fs::read_dir(&elsewhere)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(sockets.is_empty(), "a second socket: {sockets:?}");
    }
    // The running agent still serves, and its record is unchanged.
    assert_eq!(ask(&socket, "{\"op\":\"ping\"}\n")["pid"], pid);
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), record);
    agent.stop();
}
