//! The cross-machine single-flight lease on a real OpenBao: each "machine" is its own
//! client and holder. A lease is refused while another's is alive and taken over
//! once it expired (or ten minutes after it was first read, whatever it claims);
//! exactly one of many racing takers wins; a late writer whose lease was taken over
//! never overwrites the newer refresh token; and on a three-node Raft cluster whose
//! leader is killed mid-lease, no write is lost and none is overwritten by a stale one.

#[allow(dead_code)]
#[path = "../../../../tests/src/openbao.rs"]
mod openbao;

use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as ChronoDuration;
use openbao::{Cluster, DevServer};
use tokenkeeper_core::clock::{ManualClock, SystemClock};
use tokenkeeper_core::team::lease::{stored_fence, FENCE_FIELD};
use tokenkeeper_core::team::{retrying, Failure, Fields, Kv, Login, OpenBao, Server, TeamLeases};
use tokenkeeper_core::Secret;

/// One machine's view of the team store at `addr`, holding leases as `holder`.
fn machine(addr: &str, token: &str, holder: &str, ttl_ms: i64) -> TeamLeases {
    let bao = OpenBao::new(&Server::at(addr), Login::Token(Secret::new(token))).unwrap();
    let kv = Kv::new(Arc::new(bao), "secret", "tokenkeeper/ops").unwrap();
    TeamLeases::new(kv, Arc::new(SystemClock), holder)
        .with_ttl(ChronoDuration::milliseconds(ttl_ms))
}

fn rotated(rt: &str) -> Fields {
    Fields::default().with("refresh_token", Secret::new(rt))
}

#[tokio::test]
async fn a_live_lease_is_refused_and_an_expired_one_taken_over() {
    let Some(dev) = DevServer::start("a_live_lease_is_refused_and_an_expired_one_taken_over")
    else {
        return;
    };
    let a = machine(&dev.addr, &dev.root_token, "desk-a", 1500);
    let b = machine(&dev.addr, &dev.root_token, "desk-b", 1500);
    let held = a.try_take("ba").await.unwrap();
    assert_eq!(held.fence(), 1);
    let e = b.try_take("ba").await.unwrap_err();
    assert_eq!(e.failure(), Failure::LeaseHeld, "{e}");
    assert!(e.message().contains("desk-a"), "{e}");
    // desk-a dies holding it: after the lease's lifetime desk-b takes over, with
    // a larger fence.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let taken = b.try_take("ba").await.unwrap();
    assert_eq!(taken.fence(), 2);
    // A release gives it back at once; fences only grow.
    b.release(&taken).await.unwrap();
    let again = a.try_take("ba").await.unwrap();
    assert_eq!(again.fence(), 3);
    // `take` waits for a holder that releases.
    let waiter = tokio::spawn(async move {
        b.take("ba", Duration::from_secs(10))
            .await
            .map(|l| l.fence())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.release(&again).await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), 4);
}

#[tokio::test]
async fn a_lease_that_claims_to_last_for_ever_lapses_ten_minutes_after_it_was_first_read() {
    let Some(dev) = DevServer::start("a_lease_that_claims_to_last_for_ever") else {
        return;
    };
    // A lease Tokenkeeper would never write (a clock centuries ahead, a hand edit).
    let stuck = Fields::default()
        .with("holder", Secret::new("stuck"))
        .with("fence", Secret::new("5"))
        .with("expires_at_ms", Secret::new(i64::MAX.to_string()))
        .with("secret_version", Secret::new("0"));
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let bao = OpenBao::new(
        &Server::at(&dev.addr),
        Login::Token(Secret::new(&dev.root_token)),
    )
    .unwrap();
    let kv = Kv::new(Arc::new(bao), "secret", "tokenkeeper/ops").unwrap();
    kv.write_unchecked("ba/lease", &stuck).await.unwrap();
    let b = TeamLeases::new(kv, clock.clone(), "desk-b");
    let e = b.try_take("ba").await.unwrap_err();
    assert_eq!(e.failure(), Failure::LeaseHeld, "{e}");
    // Nine minutes on (this machine's clock: the server's plays no part), still held.
    clock.advance(ChronoDuration::minutes(9));
    let e = b.try_take("ba").await.unwrap_err();
    assert_eq!(e.failure(), Failure::LeaseHeld, "{e}");
    // Ten minutes after this process first read that version, it has lapsed, and
    // is taken over with a larger fence.
    clock.advance(ChronoDuration::minutes(1) + ChronoDuration::seconds(1));
    let taken = b.try_take("ba").await.unwrap();
    assert_eq!(taken.fence(), 6);
}

#[tokio::test]
async fn of_many_racing_takers_exactly_one_wins() {
    let Some(dev) = DevServer::start("of_many_racing_takers_exactly_one_wins") else {
        return;
    };
    for round in 0..5 {
        let account = format!("race-{round}");
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let m = machine(&dev.addr, &dev.root_token, &format!("desk-{i}"), 60_000);
                let account = account.clone();
                tokio::spawn(async move { m.try_take(&account).await.map(|l| l.fence()) })
            })
            .collect();
        let mut won = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(fence) => won.push(fence),
                Err(e) => assert_eq!(e.failure(), Failure::LeaseHeld, "{e}"),
            }
        }
        assert_eq!(won, vec![1], "round {round}: winners' fences {won:?}");
    }
}

#[tokio::test]
async fn a_late_writer_whose_lease_was_taken_over_never_overwrites_the_newer_token() {
    let Some(dev) = DevServer::start("a_late_writer_never_overwrites_the_newer_token") else {
        return;
    };
    let a = machine(&dev.addr, &dev.root_token, "desk-a", 1000);
    let b = machine(&dev.addr, &dev.root_token, "desk-b", 1000);
    // The account's first refresh token.
    let first = a.try_take("ba").await.unwrap();
    a.write_secrets(&first, &rotated("rt-1"), 0).await.unwrap();
    a.release(&first).await.unwrap();

    // desk-a takes the lease, reads rt-1, then stalls (a vendor that hangs, a
    // laptop lid closed) past its lease.
    let slow = a.try_take("ba").await.unwrap();
    let seen = a.read_secrets(&slow).await.unwrap().unwrap();
    assert_eq!(seen.data.text("refresh_token"), Some("rt-1"));
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // desk-b takes over and rotates rt-1 into rt-2.
    let fast = b.try_take("ba").await.unwrap();
    assert!(fast.fence() > slow.fence());
    let read = b.read_secrets(&fast).await.unwrap().unwrap();
    assert_eq!(read.version, seen.version);
    let v = b
        .write_secrets(&fast, &rotated("rt-2"), read.version)
        .await
        .unwrap();

    // desk-a wakes with its vendor's answer: refused, whatever it tries.
    let e = a
        .write_secrets(&slow, &rotated("rt-stale"), seen.version)
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::LeaseLost, "{e}");
    assert!(e.message().contains("stored nothing"), "{e}");
    // Nor can it read under its old lease and write over the new version.
    let e = a.read_secrets(&slow).await.unwrap_err();
    assert_eq!(e.failure(), Failure::LeaseLost, "{e}");
    let e = a
        .write_secrets(&slow, &rotated("rt-stale"), v)
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::LeaseLost, "{e}");

    b.release(&fast).await.unwrap();
    let now = b.read_current("ba", 0).await.unwrap().unwrap();
    assert_eq!(now.data.text("refresh_token"), Some("rt-2"));
    assert_eq!(now.version, v);
    assert_eq!(stored_fence(&now), 3, "written under desk-b's fence");
    assert!(now.data.text(FENCE_FIELD).is_some());
}

#[tokio::test]
async fn the_heartbeat_keeps_a_slow_holders_lease() {
    let Some(dev) = DevServer::start("the_heartbeat_keeps_a_slow_holders_lease") else {
        return;
    };
    // 3 s leases, extended every second: a server or scheduler stall of well over a
    // second on a loaded machine does not let one lapse.
    let a = machine(&dev.addr, &dev.root_token, "desk-a", 3_000);
    let b = machine(&dev.addr, &dev.root_token, "desk-b", 3_000);
    let lease = a.try_take("ba").await.unwrap();
    let work = async {
        // A vendor call three lease lifetimes long, while another machine asks.
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let e = b.try_take("ba").await.unwrap_err();
            assert_eq!(e.failure(), Failure::LeaseHeld, "the lease lapsed: {e}");
        }
        a.write_secrets(&lease, &rotated("rt-after-a-slow-vendor"), 0)
            .await
    };
    a.holding(&lease, work).await.unwrap();
    a.release(&lease).await.unwrap();
    assert_eq!(b.try_take("ba").await.unwrap().fence(), 2);
}

/// One rotation as a machine does it: take the lease, read the refresh token,
/// ("call the vendor",) write its successor over exactly the version read, release.
/// Transient failures (an election) are retried: every write is a check-and-set
/// that recognises its own earlier attempt. `midway` runs between read and write.
async fn rotate(m: &TeamLeases, midway: impl FnOnce()) -> (u64, String) {
    let patience = Duration::from_secs(60);
    let lease = m.take("ba", patience).await.unwrap();
    let read = retrying(patience, || m.read_secrets(&lease))
        .await
        .unwrap()
        .expect("the account's secrets");
    let old = read.data.text("refresh_token").unwrap().to_string();
    let n: u64 = old.trim_start_matches("rt-").parse().unwrap();
    let new = format!("rt-{}", n + 1);
    midway();
    let data = rotated(&new);
    let written = retrying(patience, || m.write_secrets(&lease, &data, read.version))
        .await
        .unwrap();
    assert_eq!(written, read.version + 1, "one version per rotation");
    retrying(patience, || m.release(&lease)).await.unwrap();
    (written, new)
}

#[tokio::test]
async fn a_leader_killed_mid_lease_loses_no_write_and_lets_no_stale_one_in() {
    let Some(mut cluster) = Cluster::start("a_leader_killed_mid_lease") else {
        return;
    };
    let token = cluster.root_token.clone();
    let addrs = cluster.addrs();
    // Three machines, each talking to its own node (standbys forward to the leader).
    let machines: Vec<TeamLeases> = addrs
        .iter()
        .enumerate()
        .map(|(i, addr)| machine(addr, &token, &format!("desk-{i}"), 20_000))
        .collect();
    let leader = cluster.wait_for_leader(Duration::from_secs(60));
    let first = machines[leader]
        .take("ba", Duration::from_secs(60))
        .await
        .unwrap();
    machines[leader]
        .write_secrets(&first, &rotated("rt-0"), 0)
        .await
        .unwrap();
    machines[leader].release(&first).await.unwrap();

    // A machine that will be late: it reads rt-0 under a short lease and stalls.
    let late = machine(&addrs[leader], &token, "desk-late", 1000);
    let stale_lease = late.take("ba", Duration::from_secs(60)).await.unwrap();
    let stale_read = late.read_secrets(&stale_lease).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let mut dead: Option<usize> = None;
    let mut kills = 0;
    for round in 1..=6u64 {
        let leader = cluster.wait_for_leader(Duration::from_secs(60));
        // A machine on a live node other than the leader.
        let on = (0..3).find(|i| *i != leader && Some(*i) != dead).unwrap();
        let kill = round == 2 || round == 4;
        let (written, new) = rotate(&machines[on], || {
            if kill {
                // Between the read and the write, under the lease.
                cluster.kill(leader);
                dead = Some(leader);
                kills += 1;
            }
        })
        .await;
        assert_eq!(
            new,
            format!("rt-{round}"),
            "round {round}: a rotation was lost"
        );
        assert_eq!(
            written,
            round + 1,
            "round {round}: one version per rotation"
        );
        // Every live node serves at least this version to a reader that compares.
        for i in (0..3).filter(|i| Some(*i) != dead) {
            let seen = retrying(Duration::from_secs(60), || {
                machines[i].read_current("ba", written)
            })
            .await
            .unwrap()
            .unwrap();
            assert_eq!(seen.version, written, "node {i}");
            assert_eq!(seen.data.text("refresh_token"), Some(new.as_str()));
        }
        if !kill {
            if let Some(d) = dead.take() {
                cluster.restart(d);
            }
        }
    }
    assert_eq!(kills, 2);

    // The late machine wakes with its vendor's answer for rt-0: refused.
    let live = (0..3).find(|i| Some(*i) != dead).unwrap();
    let late = machine(&addrs[live], &token, "desk-late", 1000);
    let stale = rotated("rt-stale");
    let e = retrying(Duration::from_secs(60), || {
        late.write_secrets(&stale_lease, &stale, stale_read.version)
    })
    .await
    .unwrap_err();
    assert_eq!(e.failure(), Failure::LeaseLost, "{e}");
    let end = retrying(Duration::from_secs(60), || {
        machines[live].read_current("ba", 7)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(end.data.text("refresh_token"), Some("rt-6"));
    let meta = machines[live]
        .kv()
        .metadata("ba/secrets")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(meta.current_version, 7, "no write lost, none extra");
}

/// What the reader policy grants, under this file's prefix: the token entries, the
/// leases and the versions, not the secrets.
const TOKENS_ONLY: &str = r#"
path "secret/data/tokenkeeper/ops/+/token" { capabilities = ["read"] }
path "secret/data/tokenkeeper/ops/+/lease" { capabilities = ["read"] }
path "secret/metadata/tokenkeeper/ops/*" { capabilities = ["read", "list"] }
"#;

fn secrets(rt: &str, at: &str, expires_ms: &str) -> Fields {
    Fields::default()
        .with("refresh_token", Secret::new(rt))
        .with("password", Secret::new(format!("pw-{rt}")))
        .with("access_token", Secret::new(at))
        .with("tokenkeeper_expires_at", Secret::new(expires_ms))
}

#[tokio::test]
async fn a_reader_gets_the_token_in_use_from_its_copy_and_never_what_renews_it() {
    let Some(dev) = DevServer::start("a_reader_gets_the_token_in_use_from_its_copy") else {
        return;
    };
    dev.policy("tokens-only", TOKENS_ONLY);
    let token = dev.token(&["tokens-only"], "10m");
    let reader = machine(&dev.addr, &token, "reader", 60_000);
    let member = machine(&dev.addr, &dev.root_token, "desk-a", 60_000);

    // Shared by hand (no copy for readers): said, naming the entry, at once.
    let root = member.kv().clone();
    root.write("by-hand/secrets", &secrets("rt-0", "at-0", "1"), 0)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let e = reader.read_current("by-hand", 0).await.unwrap_err();
    assert_eq!(e.failure(), Failure::CopyBehind, "{e}");
    assert!(
        e.message().contains("tokenkeeper/ops/by-hand/token") && e.message().contains("renew"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "not waited on");

    // A renewal writes the secrets and the copy: the reader gets the token and its
    // facts, as that version of the secrets, and nothing that renews.
    let lease = member.try_take("ba").await.unwrap();
    let v1 = member
        .write_secrets(&lease, &secrets("rt-1", "at-1", "1001"), 0)
        .await
        .unwrap();
    let got = reader.read_current("ba", 0).await.unwrap().unwrap();
    assert_eq!(got.version, v1);
    assert_eq!(got.data.text("access_token"), Some("at-1"));
    assert_eq!(got.data.text("tokenkeeper_expires_at"), Some("1001"));
    assert_eq!(got.data.text(FENCE_FIELD), Some("1"));
    for renews in ["refresh_token", "password"] {
        assert!(got.data.get(renews).is_none(), "{renews} in the copy");
    }
    // The secrets themselves are refused to the reader's login, and a member reads them.
    let e = reader.kv().read("ba/secrets").await.unwrap_err();
    assert_eq!(e.failure(), Failure::PermissionDenied, "{e}");
    let whole = member.read_current("ba", 0).await.unwrap().unwrap();
    assert_eq!(whole.data.text("refresh_token"), Some("rt-1"));

    // The next rotation: the copy follows, and the reader never takes an older one
    // than it saw.
    let v2 = member
        .write_secrets(&lease, &secrets("rt-2", "at-2", "2002"), v1)
        .await
        .unwrap();
    let got = reader.read_current("ba", v1).await.unwrap().unwrap();
    assert_eq!(
        (got.version, got.data.text("access_token")),
        (v2, Some("at-2"))
    );
    // A late copy of the older version (a writer that stalled between its two
    // writes) leaves the newer copy in place.
    member
        .publish_token(&lease, &secrets("rt-1", "at-1", "1001"), v1)
        .await
        .unwrap();
    let got = reader.read_current("ba", 0).await.unwrap().unwrap();
    assert_eq!(
        (got.version, got.data.text("access_token")),
        (v2, Some("at-2"))
    );
    // Nor may the reader take the lease: it cannot renew.
    member.release(&lease).await.unwrap();
    let e = reader.try_take("ba").await.unwrap_err();
    assert_eq!(e.failure(), Failure::PermissionDenied, "{e}");
}

/// A renewing login whose policy has no `token` path (written before the copy
/// existed).
const RENEWS_WITHOUT_COPY: &str = r#"
path "secret/data/tokenkeeper/ops/+/secrets" { capabilities = ["create", "read", "update"] }
path "secret/data/tokenkeeper/ops/+/lease" { capabilities = ["create", "read", "update"] }
path "secret/metadata/tokenkeeper/ops/*" { capabilities = ["read", "list"] }
"#;

#[tokio::test]
async fn a_renewal_by_a_login_that_may_not_copy_the_token_stores_it_and_readers_are_told() {
    let Some(dev) = DevServer::start("a_renewal_by_a_login_that_may_not_copy") else {
        return;
    };
    dev.policy("tokens-only", TOKENS_ONLY);
    dev.policy("renews-without-copy", RENEWS_WITHOUT_COPY);
    let server = machine(
        &dev.addr,
        &dev.token(&["renews-without-copy"], "10m"),
        "server",
        60_000,
    );
    let reader = machine(&dev.addr, &dev.token(&["tokens-only"], "10m"), "r", 60_000);
    let lease = server.try_take("ba").await.unwrap();
    // The secrets are stored and the lease records them: the renewal is not lost.
    let v = server
        .write_secrets(&lease, &secrets("rt-1", "at-1", "1001"), 0)
        .await
        .unwrap();
    assert_eq!(lease.secret_version(), v);
    let stored = server.read_current("ba", 0).await.unwrap().unwrap();
    assert_eq!(stored.data.text("refresh_token"), Some("rt-1"));
    // The reader is told its copy is behind, naming the entry and what writes it.
    let e = reader.read_current("ba", 0).await.unwrap_err();
    assert_eq!(e.failure(), Failure::CopyBehind, "{e}");
    assert!(e.message().contains("tokenkeeper/ops/ba/token"), "{e}");
    let core: tokenkeeper_core::Error = e.into();
    assert_eq!(core.kind(), tokenkeeper_core::ErrorKind::Vault);
}
