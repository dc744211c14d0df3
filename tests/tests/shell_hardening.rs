//! The desktop shell's and the processes' own defences (issue 11, item 6): the
//! single-instance socket is private, checks who connects and is not held up by a
//! client that never writes; neither binary can be dumped or read by another process
//! of the user; a copied token does not outlive the app on the clipboard; sandbox mode
//! never touches a real vault.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokenkeeper_e2e::webdriver::Driver;
use tokenkeeper_e2e::{bin, Display, Running, Sandbox, Session};

const WAIT: Duration = Duration::from_secs(20);

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).expect("stat").mode() & 0o777
}

/// The `.sock` files in `dir` (not below it).
fn sockets_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "sock"))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_socket(dir: &Path) -> PathBuf {
    let mut found = None;
    tokenkeeper_e2e::wait_for("the app's socket", WAIT, || {
        found = sockets_in(dir).pop();
        found.is_some()
    });
    found.unwrap()
}

/// A second start, which must hand over to the running app and exit 0 quickly.
fn second_start_hands_over(s: &Session, display: &Display, env: &[(&str, &str)], unset: &[&str]) {
    let mut cmd = s.desktop_command(display, &[]);
    cmd.envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for k in unset {
        cmd.env_remove(k);
    }
    let out = tokenkeeper_e2e::finish(cmd.spawn().expect("second start"), WAIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("already running"), "{}", out.stderr);
    assert!(out.took < Duration::from_secs(10), "{:?}", out.took);
}

#[test]
fn the_instance_socket_is_private_and_a_client_that_never_writes_blocks_no_handover() {
    let s = Session::start();
    let display = Display::start();
    let run = s.root.path().join("run");
    let _first = s.start_desktop(&display, &[]);
    let sock = wait_socket(&run);
    assert_eq!(mode(&run), 0o700, "the runtime folder is private");
    assert_eq!(mode(&sock), 0o600, "the socket is the user's alone");

    // A client that connects and never writes (a hung or hostile process of the
    // user's) must not stop the next start from being heard.
    let _silent = UnixStream::connect(&sock).expect("connect");
    let _silent_too = UnixStream::connect(&sock).expect("connect");
    second_start_hands_over(&s, &display, &[], &[]);
}

#[test]
fn without_a_runtime_folder_the_socket_is_in_a_private_folder_of_ours_not_in_tmp() {
    let s = Session::start();
    let display = Display::start();
    // std::env::temp_dir() reads TMPDIR: a shared /tmp of this test's own, to look in.
    let tmp = s.root.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let tmpdir = tmp.display().to_string();
    let env = [("TMPDIR", tmpdir.as_str())];
    let mut cmd = s.desktop_command(&display, &[]);
    cmd.env("TMPDIR", &tmp)
        .env_remove("XDG_RUNTIME_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _first = Running(cmd.spawn().expect("tokenkeeper-desktop"));

    let private = s.root.path().join("data/tokenkeeper-run");
    let end = Instant::now() + WAIT;
    while sockets_in(&private).is_empty() {
        assert!(
            sockets_in(&tmp).is_empty(),
            "the socket went to the shared temporary folder: {:?}",
            sockets_in(&tmp)
        );
        assert!(Instant::now() < end, "no socket in {}", private.display());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(mode(&private), 0o700);
    assert_eq!(
        std::fs::symlink_metadata(&private).unwrap().uid(),
        std::fs::metadata(s.root.path()).unwrap().uid(),
        "ours"
    );
    assert_eq!(mode(&sockets_in(&private)[0]), 0o600);
    assert!(sockets_in(&tmp).is_empty(), "{:?}", sockets_in(&tmp));
    second_start_hands_over(&s, &display, &env, &["XDG_RUNTIME_DIR"]);
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        == 0
}

/// The owner of `/proc/PID/status`: the process's user while it is dumpable, root
/// once it is not (the kernel hands a non-dumpable process's /proc files to root, so
/// that other processes of the same user cannot read its memory, environment or files).
fn proc_owner(pid: u32) -> u32 {
    std::fs::metadata(format!("/proc/{pid}/status"))
        .expect("the process is running")
        .uid()
}

/// The soft limit on core files of `pid`, as /proc shows it ("0", "unlimited").
fn core_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .and_then(|l| l.split_whitespace().nth(4))
        .expect("the core line")
        .to_string()
}

/// A folder the unprivileged user may write to, for a process run as that user.
fn nobody_folder(s: &Session, name: &str) -> PathBuf {
    let dir = s.root.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    dir
}

const NOBODY: u32 = 65534;

/// `prlimit --core=unlimited BINARY ARGS` as the user "nobody", quiet: the binary
/// starts with core files allowed, so only its own defence keeps it undumpable.
fn as_nobody_with_core_files(binary: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("prlimit");
    cmd.arg("--core=unlimited")
        .arg(binary)
        .args(args)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

#[test]
fn the_cli_and_the_app_cannot_be_dumped_and_write_no_core_files() {
    if !running_as_root() {
        // The check runs each binary as another user, which only root may do.
        let _ = writeln!(std::io::stderr(), "skipped: needs root");
        return;
    }
    let s = Session::start();
    // The session's root folder is 0700 (a tempdir): let the other user through.
    std::fs::set_permissions(s.root.path(), std::fs::Permissions::from_mode(0o711)).unwrap();

    // The CLI: `cert` against a server that accepts and never answers keeps it
    // running (it opens no vault, so it needs nothing of the session). It starts
    // with core files allowed (prlimit), as the user "nobody".
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://127.0.0.1:{}/", server.local_addr().unwrap().port());
    let cli = Running(
        as_nobody_with_core_files(&bin("tokenkeeper"), &["cert", &url])
            .env("TOKENKEEPER_HTTP_TIMEOUT", "30")
            .spawn()
            .expect("prlimit (util-linux)"),
    );
    let (_conn, _) = server.accept().expect("the CLI connects");
    let pid = cli.0.id();
    assert_eq!(
        proc_owner(pid),
        0,
        "tokenkeeper is dumpable: another process of its user could read its memory"
    );
    assert_eq!(core_limit(pid), "0", "tokenkeeper may write a core file");
    drop(cli);

    // The window, as "nobody" in a home of its own (its agent cannot start without a
    // session bus, which the window survives): once its socket exists, its main has
    // run.
    let display = Display::start();
    let home = nobody_folder(&s, "nobody");
    let run = nobody_folder(&s, "nobody-run");
    let app = Running(
        as_nobody_with_core_files(&bin("tokenkeeper-desktop"), &[])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &run)
            .env("TOKENKEEPER_DATA_DIR", home.join("vault"))
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
            .env("DISPLAY", &display.name)
            .spawn()
            .expect("prlimit (util-linux)"),
    );
    wait_socket(&run);
    let pid = app.0.id();
    assert_eq!(
        proc_owner(pid),
        0,
        "tokenkeeper-desktop is dumpable: another process of its user could read its memory"
    );
    assert_eq!(
        core_limit(pid),
        "0",
        "tokenkeeper-desktop may write a core file"
    );
}

#[test]
fn sandbox_mode_refuses_a_real_vault_and_leaves_its_accounts_alone() {
    let s = Session::start();
    let display = Display::start();
    // A real vault (the session's, TOKENKEEPER_DATA_DIR) with an account whose name a
    // demo account also has.
    let added = s.add_with_secret(
        "truesight-demo",
        "truesight",
        "https://truesight.example.com",
        "the real password",
        &["--username", "admin", "--tenant", "Corp", "--no-login"],
    );
    assert_eq!(added.code, 0, "{}", added.stderr);
    let url_of = |s: &Session| {
        s.account("truesight-demo")["base_url"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(url_of(&s), "https://truesight.example.com");

    // Given by the environment, and by --data-dir.
    let start = |extra: &[&str]| s.spawn_desktop(&display, &[&["--sandbox"], extra].concat());
    let vault = s.data_dir.display().to_string();
    for extra in [vec![], vec!["--data-dir", vault.as_str()]] {
        let out = tokenkeeper_e2e::finish(start(&extra), WAIT);
        assert_eq!(out.code, 2, "refused: {}", out.stderr);
        assert!(
            out.stderr.contains("refusing to start sandbox mode") && out.stderr.contains(&vault),
            "{}",
            out.stderr
        );
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        url_of(&s),
        "https://truesight.example.com",
        "the real account still points at its server"
    );
    assert_eq!(
        s.account_names(),
        ["truesight-demo"],
        "no demo account was added"
    );
}

/// Reads the clipboard of `display` with xclip: the text, or None when no one
/// holds the clipboard, or it cannot be read within a second (xclip waits forever
/// for an owner that went away while it asked).
fn clipboard(display: &str) -> Option<String> {
    let mut child = Command::new("xclip")
        .args(["-selection", "clipboard", "-o"])
        .env("DISPLAY", display)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("xclip (./scripts/setup-debian.sh installs it)");
    let end = Instant::now() + Duration::from_secs(1);
    while child.try_wait().ok()?.is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

/// The app's process: the one running our binary in this session.
fn app_pid(s: &Session) -> u32 {
    let binary = bin("tokenkeeper-desktop").display().to_string();
    let runtime = format!("XDG_RUNTIME_DIR={}", s.root.path().join("run").display());
    let mut found = None;
    tokenkeeper_e2e::wait_for("the app's process", WAIT, || {
        found = std::fs::read_dir("/proc").ok().and_then(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .find(|pid| {
                    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                    cmd.starts_with(binary.as_bytes())
                        && env.split(|b| *b == 0).any(|kv| kv == runtime.as_bytes())
                })
        });
        found.is_some()
    });
    found.unwrap()
}

#[test]
fn a_token_copied_from_the_app_does_not_outlive_it_on_the_clipboard() {
    let s = Session::start();
    let sb = Sandbox::start(&[]);
    s.add_sandbox_truesight(&sb, "ts").ok();
    let display = Display::start();
    let driver = Driver::start(&s, &display.name, &[]);
    let app = driver.launch(&bin("tokenkeeper-desktop"), &[]);
    app.wait_text("[data-name='ts']", WAIT);
    let answer = app.invoke("copy_token", json!({"name": "ts"}));
    assert!(!answer.starts_with("ERR"), "{answer}");
    let token = s.token("ts");
    tokenkeeper_e2e::wait_for("the token on the clipboard", WAIT, || {
        clipboard(&display.name).as_deref() == Some(token.as_str())
    });

    // Watch the clipboard as a clipboard manager does: whatever it last read while
    // the clipboard had an owner is what it puts back once the owner is gone
    // (GNOME's mutter does exactly this).
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (seen, stop, name) = (seen.clone(), stop.clone(), display.name.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let now = clipboard(&name);
                seen.lock().unwrap().push(now);
            }
        })
    };
    tokenkeeper_e2e::wait_for("the watcher to see the token", WAIT, || {
        seen.lock()
            .unwrap()
            .iter()
            .any(|c| c.as_deref() == Some(token.as_str()))
    });
    // The app ends as at logout (SIGTERM), which quits it as the tray's Quit does.
    let pid = app_pid(&s);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    tokenkeeper_e2e::wait_for("the app to end", WAIT, || {
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|st| st.contains(") Z "))
    });
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();

    let seen = seen.lock().unwrap();
    let last_held = seen.iter().rev().find_map(|c| c.clone());
    assert_ne!(
        last_held.as_deref(),
        Some(token.as_str()),
        "the last clipboard before the app ended held the token: a clipboard manager \
         would keep it ({} reads)",
        seen.len()
    );
    assert_eq!(
        clipboard(&display.name),
        None,
        "nothing is left on the clipboard"
    );
}
