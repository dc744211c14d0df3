//! `./dev bench`: prints Tokenkeeper's numbers beside references measured in the same
//! run, because these machines are shared and noisy.
//!
//! - renewal: N TrueSight accounts falling due at once (a simulated clock moved past
//!   their renewal window), renewed by the engine against the sandbox over HTTP with
//!   the real keyring; time, renewals/s, peak memory, the sandbox's peak concurrency;
//!   reference: the same sign-in call made by curl, one after another.
//! - memory: PSS of the desktop app and all its processes with the window open, and
//!   in the tray (started with --tray, as at login), beside KeePassXC idle.

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
    renewal(n);
    memory();
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
        "  renewed / failed:               {} / {}",
        inner["renewed"], inner["failed"]
    );
    println!(
        "  engine's peak concurrency:      {} (bound {concurrency}); sandbox saw at most {} at once",
        inner["peak_concurrency"], stats["peak_in_flight"]
    );
    println!(
        "  peak memory (VmHWM) of the process: {:.1} MiB",
        inner["vm_hwm_kib"].as_f64().unwrap() / 1024.0
    );
    println!(
        "  per renewal, serial equivalent: {:.2} ms   (reference: curl, one sign-in: {curl_ms:.2} ms)",
        renew_secs * 1000.0 * concurrency as f64 / n as f64
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
    let mut i = 0;
    while i < pids.len() {
        let parent = pids[i];
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                // The ppid is the second field after the parenthesised name.
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<u32>().ok());
                if ppid == Some(parent) && !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
        }
        i += 1;
    }
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
        s.add_truesight(
            &format!("ts{i}"),
            &sb.url("truesight"),
            "demo",
            "demo-password",
            &[],
        )
        .ok();
    }
    let app = |extra: &[&str]| {
        let mut c = s.command(bin("tokenkeeper-desktop"));
        c.args(extra).env("DISPLAY", &display.name);
        c
    };
    let window = settled_pss(app(&[]));
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
    println!("  Tokenkeeper, in the tray:     {}", mib(tray));
    println!("  reference: KeePassXC, idle:   {}", mib(reference));
}
