//! `./dev bench`: prints Tokenkeeper's numbers beside references measured in the same
//! run, because these machines are shared and noisy.
//!
//! - renewal: N TrueSight accounts falling due at once (a simulated clock moved past
//!   their renewal window), renewed by the engine against the sandbox over HTTP with
//!   the real keyring; time, renewals/s, requests/s at the sandbox, peak memory, the
//!   sandbox's peak concurrency; references: the same sign-in call made by curl, and
//!   the same keyring write and read made by `secret-tool`, with the same items stored.
//! - memory: PSS of all Tokenkeeper processes (the agent, the window, WebKit's
//!   processes; found by the session's HOME and under them) with the agent alone and
//!   its tray (a panel's StatusNotifierWatcher on the bus), with the window open (the
//!   window started as from the menu, making sure the agent runs), and 5 s after the
//!   window was closed as a window manager closes it; the agent with 1,000 accounts;
//!   beside KeePassXC idle, with the ratios the goals set (agent alone at most 0.5x
//!   KeePassXC, after the close within 10% of the agent alone).
//! - token: `tokenkeeper token` on a fresh token through the agent and alone, beside
//!   `secret-tool lookup` of the account's keyring item (the read `token` makes alone);
//!   the headless agent's PSS with one account.
//! - window: 10,000 accounts in the real window (Xvfb, WebDriver): time to first
//!   render, and frame times while scrolling the list, beside the same window's frame
//!   times while idle (the display's own pacing, measured in the same run).
//! - team: two vaults A and B on an OpenBao dev server (userpass, the member policy),
//!   A with a local TrueSight account and one shared in team `ops`, B joined:
//!   `tokenkeeper token --no-agent` and `tokenkeeper renew` of each, beside curl's read
//!   of the same KV entry, curl's userpass login and curl's TrueSight sign-in; and the
//!   time B takes to see a rotation A made. Skipped, saying so, without `bao`.

// Printing its numbers is this program's job.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokenkeeper_e2e::openbao::DevServer;
use tokenkeeper_e2e::{bin, Display, Sandbox, Session};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("inner-seed") {
        inner_seed(args[2].parse().expect("N"));
        return;
    }
    if args.get(1).map(String::as_str) == Some("inner-renew") {
        let url = &args[2];
        let n: usize = args[3].parse().expect("N");
        let concurrency: usize = args[4].parse().expect("concurrency");
        inner_renew(url, n, concurrency);
        return;
    }
    let n: usize = std::env::var("BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "renewal" {
        renewal(n);
    }
    if only.is_empty() || only == "memory" {
        memory();
    }
    if only.is_empty() || only == "token" {
        token();
    }
    if only.is_empty() || only == "team" {
        team();
    }
    if only.is_empty() || only == "window" {
        window(
            std::env::var("BENCH_WINDOW_ACCOUNTS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(10_000),
        );
    }
}

/// Writes `n` accounts straight into the vault's database (no keyring items: the
/// window lists without reading the keyring), spread over vendors, labels, states
/// and expiries days away, so that nothing falls due while the window is measured.
fn inner_seed(n: usize) {
    use tokenkeeper_core::model::{
        Account, EventKind, Method, Outcome, RenewsWith, TokenMeta, Vendor,
    };
    use tokenkeeper_core::Vault;

    let dir = std::env::var("TOKENKEEPER_DATA_DIR").expect("data dir");
    let vault = Vault::open(Path::new(&dir)).expect("vault");
    let now = chrono::Utc::now();
    let vendors = [
        (
            Vendor::Truesight,
            Method::Password,
            RenewsWith::StoredPassword,
        ),
        (
            Vendor::Bigid,
            Method::UserToken,
            RenewsWith::StoredUserToken,
        ),
        (Vendor::Bigfix, Method::Password, RenewsWith::StoredPassword),
        (Vendor::Immuta, Method::ApiKey, RenewsWith::StoredApiKey),
        (
            Vendor::Biganimal,
            Method::DeviceCode,
            RenewsWith::RefreshToken,
        ),
    ];
    for i in 0..n {
        let (vendor, method, renews_with) = vendors[i % vendors.len()];
        let account = Account {
            id: uuid_like(i),
            name: format!("acct-{i:05}"),
            vendor,
            base_url: format!("https://{}-{}.example.com", vendor.id(), i % 97),
            method,
            username: Some(format!("admin{}", i % 13)),
            tenant: None,
            iam_id: None,
            client_id: None,
            ca_cert_pem: None,
            labels: vec![["prod", "staging", "eu", "us"][i % 4].to_string()],
            created_at: now,
            settings: Default::default(),
            team: None,
        };
        let mut meta = TokenMeta::issued(
            now,
            Some(now + chrono::Duration::hours(48 + (i % 500) as i64)),
            renews_with,
        );
        meta.human_deadline =
            (i % 3 == 0).then(|| now + chrono::Duration::days(3 + (i % 40) as i64));
        meta.needs_human = i % 50 == 0;
        vault
            .database()
            .insert_account(
                &account,
                Some(&meta),
                (EventKind::Added, Outcome::Ok, "bench"),
                now,
            )
            .expect("insert");
    }
}

fn uuid_like(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// Percentiles of frame times in milliseconds.
fn frame_summary(deltas: &[f64]) -> String {
    if deltas.is_empty() {
        return "no frames".into();
    }
    let mut d = deltas.to_vec();
    d.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| d[((d.len() - 1) as f64 * p).round() as usize];
    let slow = d.iter().filter(|x| **x > 50.0).count();
    format!(
        "{} frames, p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms, over 50 ms: {slow}",
        d.len(),
        at(0.5),
        at(0.95),
        at(0.99),
        d[d.len() - 1]
    )
}

/// The reference list: plain text rows of the same height in a plain scrolling box
/// laid over the accounts list, no framework and no updates: what scrolling costs in
/// this webview on this display whatever the list does.
const REFERENCE_SCRIPT: &str = "const list = document.querySelector('[data-testid=accounts]');\
    const r = list.getBoundingClientRect();\
    const box = document.createElement('div');\
    box.id = 'bench-reference';\
    Object.assign(box.style, {position: 'fixed', left: r.left + 'px', top: r.top + 'px',\
      width: r.width + 'px', height: r.height + 'px', overflow: 'auto', background: 'white', zIndex: 99});\
    for (let i = 0; i < 2000; i++) {\
      const row = document.createElement('div');\
      row.textContent = 'acct-' + i + '   BMC TrueSight   https://truesight.example.com   Valid   59m 59s';\
      Object.assign(row.style, {height: '56px', borderBottom: '1px solid #ddd', padding: '0 14px'});\
      box.appendChild(row);\
    }\
    document.body.appendChild(box);";

/// Frame times (rAF deltas) for `secs`, scrolling the list by `step` px per frame.
const FRAMES_SCRIPT: &str = "const [secs, step, css] = [arguments[0], arguments[1], arguments[2]];\
    const done = arguments[arguments.length - 1];\
    const list = document.querySelector(css);\
    const deltas = []; let last = null; const end = performance.now() + secs * 1000;\
    function frame(t) {\
      if (last !== null) deltas.push(t - last);\
      last = t;\
      if (step) { list.scrollTop += step; if (list.scrollTop + list.clientHeight >= list.scrollHeight - 1) step = -Math.abs(step); if (list.scrollTop <= 0) step = Math.abs(step); }\
      if (t < end) requestAnimationFrame(frame); else done(deltas);\
    }\
    requestAnimationFrame(frame);";

/// The main thread's work for one scroll step, painting aside: the scroll handler,
/// the virtual list's update and the layout it forces. Under Xvfb the display paces
/// frames (see the idle reference), so this is the number that shows the list's cost.
const WORK_SCRIPT: &str = "const [steps, step] = [arguments[0], arguments[1]];\
    const done = arguments[arguments.length - 1];\
    const list = document.querySelector('[data-testid=accounts]');\
    const out = [];\
    (async () => {\
      for (let i = 0; i < steps; i++) {\
        const t0 = performance.now();\
        list.scrollTop = (list.scrollTop + step) % (list.scrollHeight - list.clientHeight);\
        list.dispatchEvent(new Event('scroll'));\
        await Promise.resolve(); await Promise.resolve(); await Promise.resolve();\
        void list.querySelector('[data-testid=account]').offsetHeight;\
        out.push(performance.now() - t0);\
      }\
      done(out);\
    })();";

fn window(n: usize) {
    use tokenkeeper_e2e::webdriver::Driver;
    let s = Session::start();
    let seeded = Instant::now();
    let out = s
        .command(bin("tokenkeeper-bench"))
        .args(["inner-seed", &n.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .expect("seed");
    assert!(out.status.success(), "seeding failed");
    let seed_secs = seeded.elapsed().as_secs_f64();
    let display = Display::start();
    let driver = Driver::start(&s, &display.name, &[]);
    let launched = Instant::now();
    let app = driver.launch(&bin("tokenkeeper-desktop"), &[]);
    app.wait_text("[data-testid='account']", Duration::from_secs(120));
    let launch_to_rows = launched.elapsed().as_secs_f64() * 1000.0;
    // The mark is set a frame after the rows are in the page: wait for it.
    let mut mark = Value::Null;
    let asked = Instant::now();
    while mark.is_null() && asked.elapsed() < Duration::from_secs(20) {
        mark = app.execute(
            "const m = performance.getEntriesByName('accounts-rendered')[0];\
             return m ? m.startTime : null;",
            json!([]),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let rendered_rows = app.texts("[data-testid='account']").len();
    let frames = |step: i64, css: &str| -> Vec<f64> {
        let v = app.execute_async_with(FRAMES_SCRIPT, json!([3, step, css]));
        serde_json::from_value(v.clone()).unwrap_or_else(|_| panic!("frame times: {v}"))
    };
    let work: Vec<f64> =
        serde_json::from_value(app.execute_async_with(WORK_SCRIPT, json!([300, 560])))
            .unwrap_or_default();
    let rows_mid = app.texts("[data-testid='account']").len();
    let accounts = "[data-testid=accounts]";
    let idle = frames(0, accounts);
    let scrolling = frames(120, accounts);
    let fast = frames(1200, accounts);
    app.execute(REFERENCE_SCRIPT, json!([]));
    let reference = frames(120, "#bench-reference");
    println!("== window: {n} accounts in the real window (Xvfb, software rendering)");
    println!("  seeding the vault (SQLite only):    {seed_secs:.1} s");
    println!(
        "  first render, from page start:      {}",
        mark.as_f64()
            .map_or("no mark".to_string(), |m| format!("{m:.0} ms"))
    );
    println!("  launch to rows on screen:           {launch_to_rows:.0} ms (app start, webview, IPC, render)");
    println!("  rows in the DOM (virtualized):      {rendered_rows} of {n}");
    println!(
        "  work per scroll step (10 rows):     {} (script, style, layout; no paint)",
        frame_summary(&work).replace("frames", "steps")
    );
    println!("  rows in the DOM mid-list:           {rows_mid}");
    println!(
        "  scrolling 120 px/frame:             {}",
        frame_summary(&scrolling)
    );
    println!(
        "  scrolling 1200 px/frame:            {}",
        frame_summary(&fast)
    );
    println!(
        "  reference: a plain static list, 120 px/frame: {}",
        frame_summary(&reference)
    );
    println!(
        "  reference: same window, idle:       {}",
        frame_summary(&idle)
    );
    app.close();
}

fn renewal(n: usize) {
    let s = Session::start();
    let sb = Sandbox::start(&[]);
    let url = sb.url("truesight");
    let concurrency = 8;
    let out = s
        .command(bin("tokenkeeper-bench"))
        .args([
            "inner-renew",
            &url,
            &n.to_string(),
            &concurrency.to_string(),
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("inner bench");
    assert!(out.status.success(), "the inner bench failed");
    let inner: Value = serde_json::from_slice(&out.stdout).expect("inner JSON");
    let stats = sb.stats();
    let renew_secs = inner["renew_ms"].as_f64().unwrap() / 1000.0;
    // Each add signed in once; what the sandbox served beyond that came from the renewals.
    let sign_ins = sb.requests("POST /truesight/tsws/api/v10.1/token");
    let renew_requests = sign_ins.saturating_sub(n as u64);

    // The keyring's own cost, with the same items stored: one write and one read of
    // an item the size of an account's, by secret-tool, one after another.
    let service = s.service();
    let item = format!(
        "{{\"v\":1,\"password\":\"demo-password\",\"access_token\":\"{}\"}}",
        "t".repeat(40)
    );
    let keyring_calls = 50;
    let started = Instant::now();
    for i in 0..keyring_calls {
        let mut store = s.command("secret-tool");
        store
            .args(["store", "--label", "bench", "service", &service, "username"])
            .arg(format!("bench/{i}"))
            .stdin(Stdio::piped());
        let mut child = store.spawn().expect("secret-tool store");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(item.as_bytes())
            .expect("write");
        assert!(
            child.wait().expect("secret-tool").success(),
            "secret-tool store failed"
        );
    }
    let store_ms = started.elapsed().as_secs_f64() * 1000.0 / keyring_calls as f64;
    let started = Instant::now();
    for i in 0..keyring_calls {
        assert!(
            s.keyring_lookup(&service, &format!("bench/{i}")).is_some(),
            "secret-tool lookup failed"
        );
    }
    let lookup_ms = started.elapsed().as_secs_f64() * 1000.0 / keyring_calls as f64;

    // The reference: the same sign-in, by curl, one call after another.
    let calls = 200;
    let body = json!({"username": "demo", "password": "demo-password", "tenantName": "BmcRealm"})
        .to_string();
    let started = Instant::now();
    for _ in 0..calls {
        let ok = Command::new("curl")
            .args([
                "-sf",
                "-o",
                "/dev/null",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
            ])
            .arg("--data")
            .arg(&body)
            .arg(format!("{url}/tsws/api/v10.1/token"))
            .status()
            .expect("curl");
        assert!(ok.success(), "curl sign-in failed");
    }
    let curl_ms = started.elapsed().as_secs_f64() * 1000.0 / calls as f64;

    println!("== renewal: {n} TrueSight accounts falling due at once (concurrency {concurrency})");
    println!(
        "  accounts added (sign-in each):  {:.1} s",
        inner["add_ms"].as_f64().unwrap() / 1000.0
    );
    println!("  renew all:                      {renew_secs:.2} s");
    println!(
        "  renewals per second:            {:.0}",
        inner["renewed"].as_f64().unwrap() / renew_secs
    );
    println!(
        "  requests per second at the sandbox: {:.0} ({renew_requests} sign-ins)",
        renew_requests as f64 / renew_secs
    );
    println!(
        "  renewed / failed:               {} / {}",
        inner["renewed"], inner["failed"]
    );
    println!(
        "  engine's peak concurrency:      {} (bound {concurrency}); sandbox saw at most {} at once",
        inner["peak_concurrency"], stats["peak_in_flight"]
    );
    println!(
        "  peak memory (VmHWM) while renewing: {:.1} MiB",
        inner["vm_hwm_kib"].as_f64().unwrap() / 1024.0
    );
    println!(
        "  per renewal, serial equivalent: {:.2} ms",
        renew_secs * 1000.0 * concurrency as f64 / n as f64
    );
    println!("  reference: curl, one sign-in:   {curl_ms:.2} ms");
    println!(
        "  reference: secret-tool with {n} items stored: store {store_ms:.2} ms, lookup {lookup_ms:.2} ms"
    );
}

/// Runs inside the session: the vault on a simulated clock, so all accounts fall due
/// at the same instant, renewed by the engine for real.
fn inner_renew(url: &str, n: usize, concurrency: usize) {
    use tokenkeeper_core::clock::ManualClock;
    use tokenkeeper_core::engine::{Engine, EngineEvent, EventSink, Policy};
    use tokenkeeper_core::model::Vendor;
    use tokenkeeper_core::secret_store::OsKeyring;
    use tokenkeeper_core::{vault, NewAccount, Secret, Vault};

    struct Quiet;
    impl EventSink for Quiet {
        fn emit(&self, _: EngineEvent) {}
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = std::env::var("TOKENKEEPER_DATA_DIR").expect("data dir");
        let dir = Path::new(&dir);
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let store = Arc::new(OsKeyring::new(vault::service_name_for(dir)));
        let vault = Arc::new(Vault::open_with(dir, store, clock.clone()).expect("vault"));
        let started = Instant::now();
        for i in 0..n {
            let new = NewAccount {
                name: format!("ts{i:05}"),
                vendor: Some(Vendor::Truesight),
                base_url: url.to_string(),
                username: Some("demo".into()),
                tenant: Some("BmcRealm".into()),
                ..NewAccount::default()
            };
            vault
                .add(new, Some(Secret::new("demo-password")), true)
                .await
                .expect("add");
        }
        let add_ms = started.elapsed().as_secs_f64() * 1000.0;
        // Past every renewal window but before expiry: all due at once.
        clock.advance(chrono::Duration::minutes(55));
        // The peak is measured for the renewals alone ("5" resets VmHWM).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let engine = Engine::new(
            vault.clone(),
            vault,
            clock,
            Arc::new(Quiet),
            Policy {
                concurrency,
                ..Policy::default()
            },
        );
        let started = Instant::now();
        let report = engine.tick().await.expect("tick");
        let renew_ms = started.elapsed().as_secs_f64() * 1000.0;
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        println!(
            "{}",
            json!({
                "add_ms": add_ms,
                "renew_ms": renew_ms,
                "renewed": report.renewed,
                "failed": report.failed,
                "peak_concurrency": report.peak_concurrency,
                "vm_hwm_kib": hwm,
            })
        );
    });
}

/// PSS in KiB of a process and all its descendants.
fn pss_tree(root: u32) -> u64 {
    let under = tokenkeeper_e2e::descendants(root);
    pss(root) + under.into_iter().map(|(pid, _)| pss(pid)).sum::<u64>()
}

fn settled_pss(mut cmd: Command) -> Option<u64> {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_secs(12));
    let pss = pss_tree(child.id());
    let _ = child.kill();
    let _ = child.wait();
    // Let the webview's helpers end before the next measure.
    std::thread::sleep(Duration::from_secs(1));
    Some(pss)
}

/// PSS in KiB of one process (0 once it is gone).
fn pss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
}

/// What a process is called in the memory table: `tokenkeeper agent` for the CLI
/// (by its subcommand), the program's own name otherwise (WebKit's processes).
fn process_name(pid: u32) -> String {
    let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut args = argv
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).to_string());
    let program = args.next().unwrap_or_default();
    let program = program.rsplit('/').next().unwrap_or_default().to_string();
    if program == "tokenkeeper" {
        // The subcommand: the first word that is neither an option nor the value of
        // `--data-dir` (the window starts `tokenkeeper --data-dir DIR agent`).
        let mut command = String::new();
        while let Some(arg) = args.next() {
            if arg == "--data-dir" {
                args.next();
            } else if !arg.starts_with('-') {
                command = arg;
                break;
            }
        }
        return format!("tokenkeeper {command}");
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if program.is_empty() {
        comm.trim().to_string()
    } else {
        program
    }
}

/// Tokenkeeper's processes in a session: each `tokenkeeper` and
/// `tokenkeeper-desktop` that runs with the session's HOME (the agent and the window,
/// whichever started the other, detached or not), and every process under them
/// (WebKit's web and network processes).
fn tokenkeeper_processes(s: &Session) -> Vec<u32> {
    let needle = format!("HOME={}", s.root.path().join("home").display()).into_bytes();
    let ours = |pid: u32| {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        let name = exe.file_name().map(|n| n.to_string_lossy().to_string());
        let name = name.unwrap_or_default();
        let name = name.trim_end_matches(" (deleted)");
        (name == "tokenkeeper" || name == "tokenkeeper-desktop")
            && std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == needle.as_slice()))
    };
    let roots: Vec<u32> = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| ours(*pid))
                .collect()
        })
        .unwrap_or_default();
    let mut all = roots.clone();
    for root in roots {
        all.extend(
            tokenkeeper_e2e::descendants(root)
                .into_iter()
                .map(|(pid, _)| pid),
        );
    }
    all.sort_unstable();
    all.dedup();
    all
}

/// The PSS of Tokenkeeper's processes at one moment: the total, and per process
/// name (how many, and their sum).
#[derive(Default)]
struct Footprint {
    total_kib: u64,
    parts: Vec<(String, usize, u64)>,
}

impl Footprint {
    fn of(s: &Session) -> Self {
        let mut parts: Vec<(String, usize, u64)> = Vec::new();
        for pid in tokenkeeper_processes(s) {
            let (name, kib) = (process_name(pid), pss(pid));
            match parts.iter_mut().find(|(n, _, _)| *n == name) {
                Some(part) => {
                    part.1 += 1;
                    part.2 += kib;
                }
                None => parts.push((name, 1, kib)),
            }
        }
        parts.sort_by_key(|p| std::cmp::Reverse(p.2));
        Footprint {
            total_kib: parts.iter().map(|p| p.2).sum(),
            parts,
        }
    }

    fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// "12.3 MiB (tokenkeeper agent 12.3)"; "none" when nothing runs.
    fn describe(&self) -> String {
        if self.is_empty() {
            return "none running".into();
        }
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|(name, n, kib)| {
                let times = if *n > 1 {
                    format!(" x{n}")
                } else {
                    String::new()
                };
                format!("{name}{times} {:.1}", *kib as f64 / 1024.0)
            })
            .collect();
        format!("{} ({})", mib(self.total_kib), parts.join(", "))
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// How long a process is left to settle before its PSS is read.
const SETTLE: Duration = Duration::from_secs(12);

/// `tokenkeeper agent` with its tray, as the start-at-login entry starts it (no
/// `--no-tray`), on the display.
fn spawn_tray_agent(s: &Session, display: &Display) -> std::process::Child {
    s.command(bin("tokenkeeper"))
        .arg("agent")
        .env("DISPLAY", &display.name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tokenkeeper agent")
}

/// Ends every Tokenkeeper process of the session (SIGTERM, then SIGKILL after 5 s)
/// and waits until none is left.
fn end_all(s: &Session) {
    for pid in tokenkeeper_processes(s) {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    let end = Instant::now() + Duration::from_secs(5);
    while !tokenkeeper_processes(s).is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    for pid in tokenkeeper_processes(s) {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    std::thread::sleep(Duration::from_millis(500));
}

/// `a / b` and whether it is at most `goal`.
fn ratio(a: u64, b: Option<u64>, goal: f64) -> String {
    match b {
        Some(b) if b > 0 && a > 0 => {
            let r = a as f64 / b as f64;
            let met = if r <= goal { "met" } else { "NOT met" };
            format!("{r:.2}x (goal <= {goal}x: {met})")
        }
        _ => "no ratio".into(),
    }
}

/// What the window's process did after its window was closed.
enum AfterClose {
    /// No window titled "Tokenkeeper" was mapped to be closed.
    NoWindow,
    /// The process ended, as the window-only app does.
    Exited(std::process::ExitStatus),
    /// The process still runs (the app before the split hides to its tray).
    StillRuns,
}

fn memory() {
    let s = Session::start();
    let display = Display::start();
    let sb = Sandbox::start(&[]);
    let accounts = 20;
    for i in 0..accounts {
        s.add_sandbox_truesight(&sb, &format!("ts{i}")).ok();
    }
    // A panel for the tray items, as at a desktop's login.
    let watcher = tokenkeeper_e2e::panel::Panel::start(&s.bus);

    // (a) The agent alone with its tray.
    let agent = spawn_tray_agent(&s, &display);
    std::thread::sleep(SETTLE);
    let alone = Footprint::of(&s);
    let tray_items = watcher.items().len();
    stop(agent);
    end_all(&s);

    // (b) The window, launched as from the menu: it makes sure the agent runs.
    let mut window = s
        .desktop_command(&display, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tokenkeeper-desktop");
    let shown = Instant::now();
    while !tokenkeeper_e2e::window_mapped(&display.name, "Tokenkeeper")
        && shown.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let mapped_after = shown.elapsed();
    std::thread::sleep(SETTLE);
    let open = Footprint::of(&s);

    // (c) Closed as a window manager's close button does; measured 5 s later.
    let after = if tokenkeeper_e2e::close_window(&display.name, "Tokenkeeper") {
        std::thread::sleep(Duration::from_secs(5));
        match window.try_wait() {
            Ok(Some(status)) => AfterClose::Exited(status),
            _ => AfterClose::StillRuns,
        }
    } else {
        AfterClose::NoWindow
    };
    let closed = Footprint::of(&s);
    let _ = window.kill();
    let _ = window.wait();
    end_all(&s);
    drop(watcher);

    // (d) The agent with its tray and 1,000 accounts (SQLite only: the engine
    // watches them all, none falls due).
    let many = {
        let s = Session::start();
        let seeded = s
            .command(bin("tokenkeeper-bench"))
            .args(["inner-seed", "1000"])
            .status()
            .expect("inner seed");
        assert!(seeded.success(), "seeding failed");
        let _watcher = tokenkeeper_e2e::panel::Panel::start(&s.bus);
        let agent = spawn_tray_agent(&s, &display);
        std::thread::sleep(SETTLE);
        let many = Footprint::of(&s);
        stop(agent);
        end_all(&s);
        many
    };

    let mut keepass = s.command("keepassxc");
    keepass.env("DISPLAY", &display.name);
    let reference = if Path::new("/usr/bin/keepassxc").exists() {
        settled_pss(keepass)
    } else {
        None
    };

    println!(
        "== memory: PSS of all Tokenkeeper processes (the agent, the window and WebKit's), {accounts} accounts"
    );
    println!("  agent alone, with its tray:     {}", alone.describe());
    println!(
        "    {} s after start; tray items registered with the panel: {tray_items}; {} KeePassXC idle",
        SETTLE.as_secs(),
        ratio(alone.total_kib, reference, 0.5)
    );
    println!("  window open:                    {}", open.describe());
    println!(
        "    {} s after tokenkeeper-desktop started (window mapped after {:.1} s)",
        SETTLE.as_secs(),
        mapped_after.as_secs_f64()
    );
    println!("  5 s after the window closed:    {}", closed.describe());
    let what = match after {
        AfterClose::NoWindow => "no window was mapped to close".to_string(),
        AfterClose::Exited(status) => format!("the window process exited ({status})"),
        AfterClose::StillRuns => {
            "the window process still runs (the app before the split hides to its tray)".to_string()
        }
    };
    println!(
        "    {what}; {} the agent alone",
        ratio(closed.total_kib, Some(alone.total_kib), 1.1)
    );
    println!("  agent with 1,000 accounts:      {}", many.describe());
    println!(
        "  reference: KeePassXC, idle:     {}",
        reference.map_or("unavailable".to_string(), mib)
    );
}

/// Runs `tokenkeeper token ts` `calls` times with `extra` flags; ms per call.
fn token_calls(s: &Session, calls: usize, extra: &[&str]) -> f64 {
    let started = Instant::now();
    for _ in 0..calls {
        let out = s
            .command(bin("tokenkeeper"))
            .args(["token", "ts"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("tokenkeeper token");
        assert!(out.success(), "tokenkeeper token failed");
    }
    started.elapsed().as_secs_f64() * 1000.0 / calls as f64
}

/// Starts `tokenkeeper agent --no-tray` and waits for its socket.
fn start_agent(s: &Session) -> std::process::Child {
    let child = s
        .command(bin("tokenkeeper"))
        .args(["agent", "--no-tray"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tokenkeeper agent");
    let service = s.service();
    let tag = service.rsplit('/').next().expect("service tag");
    let socket = s
        .root
        .path()
        .join("run/tokenkeeper")
        .join(format!("agent-{tag}.sock"));
    let end = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < end, "the agent's socket never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn stop(mut child: std::process::Child) {
    tokenkeeper_e2e::terminate(&child);
    let _ = child.wait();
}

fn token() {
    let s = Session::start();
    let sb = Sandbox::start(&[]);
    s.add_sandbox_truesight(&sb, "ts").ok();
    let calls = 50;
    // Warm both paths once (page cache, keyring unlocked).
    token_calls(&s, 2, &["--no-agent"]);
    let alone_ms = token_calls(&s, calls, &["--no-agent"]);

    // The reference: the one keyring read `token` makes alone, by secret-tool.
    let id = s.account("ts")["id"].as_str().expect("id").to_string();
    let service = s.service();
    let item = format!("account/{id}");
    assert!(
        s.keyring_lookup(&service, &item).is_some(),
        "no keyring item"
    );
    let started = Instant::now();
    for _ in 0..calls {
        assert!(s.keyring_lookup(&service, &item).is_some());
    }
    let lookup_ms = started.elapsed().as_secs_f64() * 1000.0 / calls as f64;

    let agent = start_agent(&s);
    token_calls(&s, 2, &[]);
    let agent_ms = token_calls(&s, calls, &[]);
    std::thread::sleep(Duration::from_secs(2));
    let agent_one = pss_tree(agent.id());
    stop(agent);

    let kib = |k: u64| format!("{:.1} MiB", k as f64 / 1024.0);
    println!("== token: `tokenkeeper token` on a fresh token, {calls} calls each");
    println!(
        "  through the agent:              {agent_ms:.2} ms ({:.2}x secret-tool lookup)",
        agent_ms / lookup_ms
    );
    println!(
        "  alone (--no-agent):             {alone_ms:.2} ms ({:.2}x secret-tool lookup)",
        alone_ms / lookup_ms
    );
    println!("  reference: secret-tool lookup:  {lookup_ms:.2} ms (the account's item)");
    println!(
        "  agent PSS, headless (--no-tray), 1 account: {}",
        kib(agent_one)
    );
}

/// `tokenkeeper ARGS` in `s`, to be timed.
fn tokenkeeper(s: &Session, args: &[&str]) -> Command {
    let mut cmd = s.command(bin("tokenkeeper"));
    cmd.args(args);
    cmd
}

/// Runs the command `make` gives `runs` times, one after another; the milliseconds
/// each run took. Every run must succeed.
fn timed(runs: usize, mut make: impl FnMut() -> Command) -> Vec<f64> {
    (0..runs)
        .map(|_| {
            let mut cmd = make();
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let started = Instant::now();
            let out = cmd.output().expect("run a timed command");
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            assert!(
                out.status.success(),
                "{:?} {:?} failed: {}",
                cmd.get_program(),
                cmd.get_args().collect::<Vec<_>>(),
                String::from_utf8_lossy(&out.stderr)
            );
            ms
        })
        .collect()
}

/// The `p` quantile of `values` (0.5: the median), nearest rank.
fn quantile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// "median 12.3 ms, p90 15.0 ms".
fn median_p90(ms: &[f64]) -> String {
    format!(
        "median {:.1} ms, p90 {:.1} ms",
        quantile(ms, 0.5),
        quantile(ms, 0.9)
    )
}

/// `tokenkeeper token NAME --no-agent` in `s`: the token.
fn token_of(s: &Session, name: &str) -> String {
    s.cli(&["token", name, "--no-agent"], None)
        .ok()
        .stdout
        .trim()
        .to_string()
}

/// A renews the shared account; B asks for its token until it is the new one. The
/// milliseconds from A's `renew` ending to B's first new token, and B's calls.
fn rotation_seen(a: &Session, b: &Session, name: &str) -> (f64, usize) {
    let old = token_of(b, name);
    a.cli(&["renew", name], None).ok();
    let renewed = Instant::now();
    let mut polls = 0;
    let new = loop {
        polls += 1;
        let token = token_of(b, name);
        if token != old {
            break token;
        }
        assert!(
            renewed.elapsed() < Duration::from_secs(60),
            "B did not see A's rotation within 60 s"
        );
    };
    let ms = renewed.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(new, token_of(a, name), "B's new token is not A's");
    (ms, polls)
}

fn team() {
    if tokenkeeper_e2e::openbao::bao_binary().is_none() {
        println!(
            "== team: skipped: OpenBao's `bao` is not installed (scripts/setup-debian.sh \
             installs it, or set TOKENKEEPER_BAO)"
        );
        return;
    }
    let Some(bao) = DevServer::start("bench team") else {
        return;
    };
    bao.policy(
        "tokenkeeper-member",
        tokenkeeper_e2e::openbao::MEMBER_POLICY,
    );
    for user in ["alice", "bob"] {
        bao.userpass_user(user, &format!("pw-{user}"), &["tokenkeeper-member"]);
    }
    let sb = Sandbox::start(&[]);
    let a = Session::start();
    a.add_sandbox_truesight(&sb, "ts-local").ok();
    a.add_sandbox_truesight(&sb, "ts-shared").ok();
    a.team_connect(&bao.addr, "alice");
    a.cli(&["team", "add", "ts-shared", "--team", "ops"], None)
        .ok();
    let b = Session::start();
    b.team_connect(&bao.addr, "bob");
    let joined = b.cli(&["team", "join", "ops"], None).ok();
    assert!(joined.stdout.contains("ts-shared"), "{}", joined.stdout);

    // `token`, each path warmed once (page cache, keyring unlocked, OpenBao token
    // looked up).
    let calls = 30;
    let token = |s: &Session, name: &str, runs: usize| {
        timed(runs, || tokenkeeper(s, &["token", name, "--no-agent"]))
    };
    token(&a, "ts-local", 2);
    token(&a, "ts-shared", 2);
    token(&b, "ts-shared", 2);
    let local = token(&a, "ts-local", calls);
    let shared = token(&a, "ts-shared", calls);
    let teammate = token(&b, "ts-shared", calls);

    // The reference: the KV read a shared `token` makes, by curl as root.
    let id = a.account("ts-shared")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let entry = format!(
        "{}/v1/secret/data/tokenkeeper/accounts/{id}/secrets",
        bao.addr
    );
    let header = format!("X-Vault-Token: {}", bao.root_token);
    let curl_read = || {
        let mut cmd = Command::new("curl");
        cmd.args(["-sf", "-o", "/dev/null", "-H", &header, &entry]);
        cmd
    };
    timed(2, curl_read);
    let kv_read = timed(calls, curl_read);
    // A new `tokenkeeper` process holds no OpenBao token: with userpass it logs in.
    let login_url = format!("{}/v1/auth/userpass/login/alice", bao.addr);
    let login = timed(calls, || {
        let mut cmd = Command::new("curl");
        cmd.args(["-sf", "-o", "/dev/null", "-X", "POST"])
            .args(["--data", r#"{"password":"pw-alice"}"#])
            .arg(&login_url);
        cmd
    });

    // `renew`: a TrueSight sign-in, stored in the keyring or in the team store.
    let renewals = 10;
    let renew = |name: &str| timed(renewals, || tokenkeeper(&a, &["renew", name]));
    let renew_local = renew("ts-local");
    let renew_shared = renew("ts-shared");
    // The reference: the sign-in alone, by curl.
    let body = json!({"username": "demo", "password": "demo-password", "tenantName": "BmcRealm"})
        .to_string();
    let sign_in_url = format!("{}/tsws/api/v10.1/token", sb.url("truesight"));
    let sign_in = timed(renewals, || {
        let mut cmd = Command::new("curl");
        cmd.args(["-sf", "-o", "/dev/null", "-X", "POST"])
            .args(["-H", "Content-Type: application/json", "--data", &body])
            .arg(&sign_in_url);
        cmd
    });

    // A rotation seen from the other machine.
    let tries = 5;
    let (seen, polls): (Vec<f64>, Vec<usize>) = (0..tries)
        .map(|_| rotation_seen(&a, &b, "ts-shared"))
        .unzip();
    let polls_f: Vec<f64> = polls.iter().map(|p| *p as f64).collect();

    let over = |ms: &[f64]| quantile(ms, 0.5) - quantile(&local, 0.5);
    println!(
        "== team: a TrueSight account local and shared in team `ops` (OpenBao dev server on loopback, userpass)"
    );
    println!("  token --no-agent, {calls} calls each:");
    println!("    local, keyring:                 {}", median_p90(&local));
    println!(
        "    shared, on A:                   {} (+{:.1} ms over local)",
        median_p90(&shared),
        over(&shared)
    );
    println!(
        "    shared, on teammate B:          {} (+{:.1} ms over local)",
        median_p90(&teammate),
        over(&teammate)
    );
    println!(
        "    reference: curl, the KV read:   {} (GET secret/data/…/secrets)",
        median_p90(&kv_read)
    );
    println!(
        "    reference: curl, a userpass login: {} (what resuming the kept session saves)",
        median_p90(&login)
    );
    println!("  renew, {renewals} each:");
    println!(
        "    local:                          {}",
        median_p90(&renew_local)
    );
    println!(
        "    shared:                         {} (+{:.1} ms over local)",
        median_p90(&renew_shared),
        quantile(&renew_shared, 0.5) - quantile(&renew_local, 0.5)
    );
    println!(
        "    reference: curl, one sign-in:   {}",
        median_p90(&sign_in)
    );
    println!("  a rotation seen by B, {tries} tries (A renews, B runs token --no-agent until it changes):");
    println!(
        "    A's renew ended to B's new token: median {:.1} ms (max {:.1} ms); B's calls: median {:.0} (max {})",
        quantile(&seen, 0.5),
        quantile(&seen, 1.0),
        quantile(&polls_f, 0.5),
        polls.iter().max().copied().unwrap_or(0)
    );
}
