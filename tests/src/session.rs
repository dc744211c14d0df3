//! A test's private session: its own HOME and XDG folders, D-Bus session bus and
//! gnome-keyring (unlocked with a throwaway password), the vault's folder, the one
//! environment every process of the session runs with, and `tokenkeeper` run in it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::process::{bin, first_line, run, wait_for, Run};

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

/// The folders of a session's tree that stand in for the user's own, by the variable
/// that names each.
fn user_folders(root: &Path) -> [(&'static str, PathBuf); 6] {
    [
        ("HOME", root.join("home")),
        ("XDG_DATA_HOME", root.join("data")),
        ("XDG_CONFIG_HOME", root.join("config")),
        ("XDG_CACHE_HOME", root.join("cache")),
        ("XDG_RUNTIME_DIR", root.join("run")),
        // Temporary files land in the session's tree (searched by the canary tests).
        ("TMPDIR", root.join("tmp")),
    ]
}

/// `program` with the session's folders as the user's, and no display.
fn command_in(root: &Path, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .envs(user_folders(root));
    cmd
}

impl Session {
    pub fn start() -> Self {
        let root = tempfile::Builder::new()
            .prefix("tk-e2e-")
            .tempdir()
            .expect("tempdir");
        for (_, dir) in user_folders(root.path()) {
            std::fs::create_dir_all(dir).expect("mkdir");
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
        let mut dbus = command_in(root.path(), "dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (install dbus: ./scripts/setup-debian.sh)");
        let line = first_line(&mut dbus, "dbus address");
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

    /// What this session adds to the user's folders: its bus and its vault.
    fn vault_envs(&self) -> [(&'static str, String); 3] {
        [
            ("DBUS_SESSION_BUS_ADDRESS", self.bus.clone()),
            ("TOKENKEEPER_DATA_DIR", self.data_dir.display().to_string()),
            // The sandbox's tokens live seconds, not hours: renewals may come a
            // second apart (the default floor is 30 s; tests/tests/hardening.rs
            // tests it).
            ("TOKENKEEPER_MIN_RENEWAL_INTERVAL", "1".into()),
        ]
    }

    /// The environment every process of this session runs with.
    pub fn envs(&self) -> Vec<(String, String)> {
        let folders = user_folders(self.root.path())
            .into_iter()
            .map(|(k, dir)| (k.to_string(), dir.display().to_string()));
        let vault = self
            .vault_envs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v));
        folders.chain(vault).collect()
    }

    /// `program` in this session's environment, with no display.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = command_in(self.root.path(), program);
        cmd.envs(self.vault_envs());
        cmd
    }

    /// Whether a process owns `name` on the session bus.
    pub(crate) fn on_bus(&self, name: &str) -> bool {
        self.bus_call("NameHasOwner", name).contains("boolean true")
    }

    /// Asks the session bus about a name; the reply as text.
    fn bus_call(&self, method: &str, name: &str) -> String {
        self.command("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                &format!("org.freedesktop.DBus.{method}"),
                &format!("string:{name}"),
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
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
        wait_for(
            "gnome-keyring on the session bus",
            Duration::from_secs(10),
            || self.on_bus("org.freedesktop.secrets"),
        );
    }

    /// The process that owns the Secret Service name: ours, or one D-Bus started.
    fn secrets_owner_pid(&self) -> Option<u32> {
        self.bus_call("GetConnectionUnixProcessID", "org.freedesktop.secrets")
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
        wait_for(
            "gnome-keyring to leave the bus",
            Duration::from_secs(5),
            || match self.secrets_owner_pid() {
                Some(pid) => {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    false
                }
                None => !self.on_bus("org.freedesktop.secrets"),
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

    /// `tokenkeeper ARGS` in this session, with extra environment variables.
    fn cli_command(&self, env: &[(&str, &str)], args: &[&str]) -> Command {
        let mut cmd = self.command(bin("tokenkeeper"));
        cmd.envs(env.iter().copied()).args(args);
        cmd
    }

    /// `tokenkeeper ARGS` as on a server without a desktop: this session's folders,
    /// but no session D-Bus (so no Secret Service) and `env` added.
    pub fn headless_cli(&self, env: &[(&str, &str)], args: &[&str]) -> Command {
        let run = self.root.path().join("run-headless");
        std::fs::create_dir_all(&run).expect("mkdir");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        }
        let mut cmd = self.cli_command(env, args);
        // A runtime folder without the session bus's socket in it, as on a server.
        cmd.env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("XDG_RUNTIME_DIR", run);
        cmd
    }

    /// Runs `tokenkeeper ARGS` with `stdin` as its input.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Run {
        run(self.cli_command(&[], args), stdin)
    }

    /// Runs `tokenkeeper ARGS` with extra environment variables.
    pub fn cli_env(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        run(self.cli_command(env, args), None)
    }

    /// Starts `tokenkeeper ARGS` without waiting (a device-code sign-in that waits for
    /// an approval); `finish` collects it.
    pub fn spawn_cli(&self, env: &[(&str, &str)], args: &[&str]) -> Child {
        self.cli_command(env, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tokenkeeper")
    }

    /// Writes `text` to a file of this session and returns its path.
    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.root.path().join(name);
        std::fs::write(&path, text).expect("write file");
        path
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
}

/// The parent of `pid`, from /proc/PID/stat (after the name, which may hold spaces
/// and parentheses: the field after the last ')' is the state, then the parent).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// Every process that runs with `home` as its HOME (the session's processes, also
/// those that left the test's process tree: an agent a window started, a window an
/// agent started).
fn processes_with_home(home: &Path) -> Vec<u32> {
    let needle = format!("HOME={}", home.display()).into_bytes();
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| *pid != me)
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/environ"))
                        .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle.as_slice()))
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Session {
    /// This session's processes whose command name (15 characters at most, as
    /// /proc/PID/comm has it) is `comm`, wherever in the process tree they are.
    ///
    /// A child between its fork and its exec still carries its parent's name (the
    /// window forks WebKit's helpers whenever it likes): one whose parent has the
    /// same name is that parent, not a second process of its own.
    pub fn processes_named(&self, comm: &str) -> Vec<u32> {
        let named: Vec<u32> = processes_with_home(&self.root.path().join("home"))
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
            })
            .collect();
        named
            .iter()
            .copied()
            .filter(|pid| parent_of(*pid).is_none_or(|parent| !named.contains(&parent)))
            .collect()
    }

    /// The pid of the vault's agent, from its lock file, if one is alive.
    pub fn agent_pid(&self) -> Option<u32> {
        let lock = std::fs::read_to_string(self.data_dir.join("agent.lock")).ok()?;
        let pid: u32 = lock.lines().next()?.trim().parse().ok()?;
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "));
        alive.then_some(pid)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // What the test's handles do not reach: the agents and windows that started
        // each other. Killed before the bus and keyring they talk to.
        for pid in processes_with_home(&self.root.path().join("home")) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        if let Some(mut k) = self.keyring.take() {
            let _ = k.kill();
            let _ = k.wait();
        }
        let _ = self.dbus.kill();
        let _ = self.dbus.wait();
    }
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
