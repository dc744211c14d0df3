//! `./dev bench`: prints Tokenkeeper's numbers beside references measured in the same
//! run, because these machines are shared and noisy.
//!
//! - renewal: N TrueSight accounts falling due at once (a simulated clock moved past
//!   their renewal window), renewed by the engine against the sandbox over HTTP with
//!   the real keyring; time, renewals/s, requests/s at the sandbox, peak memory, the
//!   sandbox's peak concurrency; references: the same sign-in call made by curl, and
//!   the same keyring write and read made by `secret-tool`, with the same items stored.
//! - memory: PSS of the desktop app and all its processes with the window open, in
//!   the tray after closing the window, and started in the tray (--tray, as at
//!   login), beside KeePassXC idle.
//! - token: `tokenkeeper token` on a fresh token through the agent and alone, beside
//!   `secret-tool lookup` of the account's keyring item (the read `token` makes alone);
//!   the agent's PSS with one account and with 1,000.
//! - window: 10,000 accounts in the real window (Xvfb, WebDriver): time to first
//!   render, and frame times while scrolling the list, beside the same window's frame
//!   times while idle (the display's own pacing, measured in the same run).

// Printing its numbers is this program's job.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
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
    let mut pids = vec![root];
    pids.extend(
        tokenkeeper_e2e::descendants(root)
            .into_iter()
            .map(|(pid, _)| pid),
    );
    pids.iter()
        .map(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
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

fn memory() {
    let s = Session::start();
    let display = Display::start();
    let sb = Sandbox::start(&[]);
    for i in 0..20 {
        s.add_sandbox_truesight(&sb, &format!("ts{i}")).ok();
    }
    let app = |extra: &[&str]| s.desktop_command(&display, extra);
    // The window open, then closed as a window manager's close button does.
    let (window, closed) = {
        let mut child = app(&[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tokenkeeper-desktop");
        std::thread::sleep(Duration::from_secs(12));
        let open = pss_tree(child.id());
        let asked = tokenkeeper_e2e::close_window(&display.name, "Tokenkeeper");
        std::thread::sleep(Duration::from_secs(12));
        let closed = asked.then(|| pss_tree(child.id()));
        let _ = child.kill();
        let _ = child.wait();
        (Some(open), closed)
    };
    std::thread::sleep(Duration::from_secs(1));
    let tray = settled_pss(app(&["--tray"]));
    let mut keepass = s.command("keepassxc");
    keepass.env("DISPLAY", &display.name);
    let reference = if Path::new("/usr/bin/keepassxc").exists() {
        settled_pss(keepass)
    } else {
        None
    };
    let mib = |k: Option<u64>| {
        k.map_or("unavailable".to_string(), |k| {
            format!("{:.1} MiB", k as f64 / 1024.0)
        })
    };
    println!("== memory: PSS of every process, 12 s after start, 20 accounts");
    println!("  Tokenkeeper, window open:     {}", mib(window));
    println!(
        "  Tokenkeeper, window closed:   {} (12 s after closing it)",
        mib(closed)
    );
    println!("  Tokenkeeper, started in tray: {}", mib(tray));
    println!("  reference: KeePassXC, idle:   {}", mib(reference));
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
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
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

    // The agent with 1,000 accounts (SQLite only: the engine watches them all).
    let seeded = s
        .command(bin("tokenkeeper-bench"))
        .args(["inner-seed", "1000"])
        .status()
        .expect("inner seed");
    assert!(seeded.success(), "seeding failed");
    let agent = start_agent(&s);
    std::thread::sleep(Duration::from_secs(5));
    let agent_many = pss_tree(agent.id());
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
    println!("  agent PSS, 1 account:           {}", kib(agent_one));
    println!("  agent PSS, 1,001 accounts:      {}", kib(agent_many));
}
