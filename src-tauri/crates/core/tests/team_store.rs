//! The team store's client on a real OpenBao dev server that each test starts: KV
//! version 2 with check-and-set, metadata and removal; token, userpass and AppRole
//! logins and `renew-self`; and each failure (403 under a read-only policy, an
//! expired token, sealed, unreachable) typed, with a message that says what to do
//! and never a secret; and a server's own items, which outlive its login token.

#[allow(dead_code)]
#[path = "../../../../tests/src/openbao.rs"]
mod openbao;

use std::sync::Arc;
use std::time::Duration;

use openbao::DevServer;
use tokenkeeper_core::secret_store::SecretStore;
use tokenkeeper_core::team::{Failure, Fields, HostKeyring, Kv, Login, OpenBao, Server};
use tokenkeeper_core::{ErrorKind, Secret};

fn client(dev: &DevServer, login: Login) -> Arc<OpenBao> {
    Arc::new(OpenBao::new(&Server::at(&dev.addr), login).unwrap())
}

fn root(dev: &DevServer) -> Arc<OpenBao> {
    client(dev, Login::Token(Secret::new(dev.root_token.clone())))
}

fn kv(bao: Arc<OpenBao>) -> Kv {
    Kv::new(bao, "secret", "tokenkeeper/ops").unwrap()
}

fn fields(rt: &str) -> Fields {
    Fields::default()
        .with("refresh_token", Secret::new(rt))
        .with("access_token", Secret::new(format!("at-of-{rt}")))
}

const READ_ONLY: &str = r#"
path "secret/data/tokenkeeper/ops/*" { capabilities = ["read"] }
path "secret/metadata/tokenkeeper/ops/*" { capabilities = ["read", "list"] }
"#;

const WRITER: &str = r#"
path "secret/data/tokenkeeper/ops/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/tokenkeeper/ops/*" { capabilities = ["read", "list", "delete"] }
"#;

#[tokio::test]
async fn kv_versions_check_and_set_metadata_and_removal() {
    let Some(dev) = DevServer::start("kv_versions_check_and_set_metadata_and_removal") else {
        return;
    };
    let kv = kv(root(&dev));
    assert_eq!(kv.read("ba/secrets").await.unwrap(), None);
    assert_eq!(kv.metadata("ba/secrets").await.unwrap(), None);

    let v1 = kv.write("ba/secrets", &fields("rt-1"), 0).await.unwrap();
    assert_eq!(v1, 1);
    // cas 0 means "only if absent": a second creator loses.
    let e = kv
        .write("ba/secrets", &fields("rt-other"), 0)
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::CasConflict, "{e}");
    assert!(e.message().contains("check-and-set"), "{e}");
    assert!(!e.message().contains("rt-other"), "{e}");
    let v2 = kv.write("ba/secrets", &fields("rt-2"), v1).await.unwrap();
    assert_eq!(v2, 2);
    // A writer that read version 1 is refused now.
    let stale = kv
        .write("ba/secrets", &fields("rt-stale"), v1)
        .await
        .unwrap_err();
    assert_eq!(stale.failure(), Failure::CasConflict);

    let latest = kv.read("ba/secrets").await.unwrap().unwrap();
    assert_eq!(latest.version, 2);
    assert_eq!(latest.data.text("refresh_token"), Some("rt-2"));
    assert!(latest.created_time.is_some());
    let first = kv.read_version("ba/secrets", 1).await.unwrap();
    assert_eq!(first.data.text("refresh_token"), Some("rt-1"));
    let shown = format!("{latest:?}");
    assert!(!shown.contains("rt-2"), "Debug shows a value: {shown}");

    let meta = kv.metadata("ba/secrets").await.unwrap().unwrap();
    assert_eq!(meta.current_version, 2);
    assert_eq!(meta.versions.len(), 2);
    assert_eq!(kv.list("").await.unwrap(), vec!["ba/".to_string()]);
    assert!(kv.read_at_least("ba/secrets", 2).await.unwrap().is_some());

    kv.delete_latest("ba/secrets").await.unwrap();
    assert_eq!(kv.read("ba/secrets").await.unwrap(), None, "deleted");
    kv.destroy("ba/secrets", &[1]).await.unwrap();
    let e = kv.read_version("ba/secrets", 1).await.unwrap_err();
    assert_eq!(e.failure(), Failure::NotFound);
    let meta = kv.metadata("ba/secrets").await.unwrap().unwrap();
    assert!(meta.versions[&1].destroyed);
    assert!(meta.versions[&2].deletion_time.is_some());
    // The next write must name version 2: a deleted version still counts.
    assert_eq!(kv.write("ba/secrets", &fields("rt-3"), 2).await.unwrap(), 3);

    kv.remove("ba/secrets").await.unwrap();
    assert_eq!(kv.metadata("ba/secrets").await.unwrap(), None);
    assert_eq!(kv.write("ba/secrets", &fields("rt-1"), 0).await.unwrap(), 1);
}

#[tokio::test]
async fn a_read_only_policy_reads_but_is_denied_a_write_and_says_so() {
    let Some(dev) = DevServer::start("a_read_only_policy_reads_but_is_denied_a_write") else {
        return;
    };
    kv(root(&dev))
        .write("ba/secrets", &fields("rt-1"), 0)
        .await
        .unwrap();
    dev.policy("team-read", READ_ONLY);
    let token = dev.token(&["team-read"], "10m");
    let reader = kv(client(&dev, Login::Token(Secret::new(token.clone()))));
    let seen = reader.read("ba/secrets").await.unwrap().unwrap();
    assert_eq!(seen.data.text("refresh_token"), Some("rt-1"));

    let e = reader
        .write("ba/secrets", &fields("rt-canary-write"), 1)
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::PermissionDenied, "{e}");
    assert!(e.message().contains("denied permission"), "{e}");
    assert!(e.message().contains("policy"), "{e}");
    for secret in ["rt-canary-write", token.as_str()] {
        assert!(!e.message().contains(secret), "a secret in: {e}");
    }
    let core: tokenkeeper_core::Error = e.into();
    assert_eq!(core.kind(), ErrorKind::Refused);
    // Nothing was written.
    assert_eq!(
        kv(root(&dev))
            .metadata("ba/secrets")
            .await
            .unwrap()
            .unwrap()
            .current_version,
        1
    );
}

#[tokio::test]
async fn a_token_is_looked_up_renewed_and_when_expired_reported_as_such() {
    let Some(dev) = DevServer::start("a_token_is_looked_up_renewed_and_expired") else {
        return;
    };
    dev.policy("team-write", WRITER);
    let token = dev.token(&["team-write"], "30s");
    let bao = client(&dev, Login::Token(Secret::new(token.clone())));
    let facts = bao.lookup_self().await.unwrap();
    assert!(facts.renewable);
    assert!(facts.ttl <= Duration::from_secs(30) && facts.ttl > Duration::from_secs(20));
    assert!(facts.policies.contains(&"team-write".to_string()));
    assert!(facts.expire_time.is_some());

    let renewed = bao
        .renew_self(Some(Duration::from_secs(600)))
        .await
        .unwrap();
    assert!(renewed.ttl > Duration::from_secs(500), "{renewed:?}");
    let after = bao.lookup_self().await.unwrap();
    assert!(after.ttl > Duration::from_secs(500), "{after:?}");
    assert!(!after.renewal_due());
    // keep_alive does nothing while the token is young.
    assert!(bao.keep_alive().await.unwrap().ttl > Duration::from_secs(500));

    // A token that ran out is a login matter, not a permission one.
    let short = dev.token(&["team-write"], "2s");
    let expired = kv(client(&dev, Login::Token(Secret::new(short.clone()))));
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let e = expired.read("ba/secrets").await.unwrap_err();
    assert_eq!(e.failure(), Failure::TokenInvalid, "{e}");
    assert!(e.message().contains("no longer accepts"), "{e}");
    assert!(e.message().contains("new token"), "{e}");
    assert!(!e.message().contains(&short), "{e}");
    let core: tokenkeeper_core::Error = e.into();
    assert_eq!(core.kind(), ErrorKind::NeedsSignIn);
}

#[tokio::test]
async fn keep_alive_renews_a_token_in_the_last_third_of_its_ttl() {
    let Some(dev) = DevServer::start("keep_alive_renews_a_token") else {
        return;
    };
    dev.policy("team-write", WRITER);
    // 24 s (room for a loaded machine between the calls): due once 8 s or less
    // are left.
    let token = dev.token(&["team-write"], "24s");
    let bao = client(&dev, Login::Token(Secret::new(token)));
    let young = bao.keep_alive().await.unwrap();
    assert!(young.ttl > Duration::from_secs(12), "{young:?}");
    tokio::time::sleep(Duration::from_millis(17_000)).await;
    let before = bao.lookup_self().await.unwrap();
    assert!(before.renewal_due(), "{before:?}");
    let kept = bao.keep_alive().await.unwrap();
    assert!(kept.ttl >= Duration::from_secs(16), "not renewed: {kept:?}");
    // Well past the first TTL, the token still works.
    tokio::time::sleep(Duration::from_millis(8000)).await;
    assert!(bao.lookup_self().await.is_ok());
}

#[tokio::test]
async fn userpass_and_approle_logins_give_working_tokens() {
    let Some(dev) = DevServer::start("userpass_and_approle_logins") else {
        return;
    };
    dev.policy("team-write", WRITER);
    dev.userpass_user("alice", "pw-alice-canary", &["team-write"]);
    let alice = client(
        &dev,
        Login::userpass("alice", Secret::new("pw-alice-canary")),
    );
    let facts = alice.login().await.unwrap();
    assert!(facts.policies.contains(&"team-write".to_string()));
    assert!(facts.ttl > Duration::ZERO);
    kv(alice.clone())
        .write("ba/secrets", &fields("rt-1"), 0)
        .await
        .unwrap();

    let wrong = client(
        &dev,
        Login::userpass("alice", Secret::new("pw-wrong-canary")),
    );
    let e = wrong.login().await.unwrap_err();
    assert_eq!(e.failure(), Failure::TokenInvalid, "{e}");
    assert!(e.message().contains("userpass login"), "{e}");
    assert!(e.message().contains("user name and password"), "{e}");
    assert!(!e.message().contains("pw-wrong-canary"), "{e}");

    let (role_id, secret_id) = dev.approle("watcher", &["team-write"], "20m");
    let server = client(
        &dev,
        Login::approle(role_id, Secret::new(secret_id.clone())),
    );
    // A machine that never logged in does so on its first keep_alive.
    let facts = server.keep_alive().await.unwrap();
    assert!(facts.policies.contains(&"team-write".to_string()));
    assert!(facts.renewable);
    let seen = kv(server.clone())
        .read("ba/secrets")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.data.text("refresh_token"), Some("rt-1"));
    assert!(!format!("{server:?}").contains(&secret_id));

    // Its token revoked (an operator, or max TTL): keep_alive logs in again.
    dev.bao_ok(&["token", "revoke", "-mode=path", "auth/approle/login"]);
    let e = kv(server.clone()).read("ba/secrets").await.unwrap_err();
    assert_eq!(e.failure(), Failure::TokenInvalid, "{e}");
    server.keep_alive().await.unwrap();
    assert!(kv(server).read("ba/secrets").await.unwrap().is_some());
}

/// A server's own items (its vault's key, its own accounts) in the team store: a
/// login whose token was revoked or ran out while the server slept logs in again
/// for them, as the team's accounts do.
#[test]
fn a_servers_items_outlive_its_login_token() {
    let Some(dev) = DevServer::start("a_servers_items_outlive_its_login_token") else {
        return;
    };
    dev.policy("team-write", WRITER);
    let (role_id, secret_id) = dev.approle("host", &["team-write"], "20m");
    let server = client(&dev, Login::approle(role_id, Secret::new(secret_id)));
    let hosts = |bao| Kv::new(bao, "secret", "tokenkeeper/ops/hosts/h1").unwrap();
    let items = HostKeyring::new(hosts(server), "ops");
    items.log_in().unwrap();
    items.set("vault-key", "key-canary").unwrap();

    dev.bao_ok(&["token", "revoke", "-mode=path", "auth/approle/login"]);
    assert_eq!(
        items
            .get("vault-key")
            .unwrap()
            .as_deref()
            .map(String::as_str),
        Some("key-canary")
    );
    dev.bao_ok(&["token", "revoke", "-mode=path", "auth/approle/login"]);
    items.set("vault-key", "key-canary-2").unwrap();
    dev.bao_ok(&["token", "revoke", "-mode=path", "auth/approle/login"]);
    items.delete("vault-key").unwrap();
    assert_eq!(items.get("vault-key").unwrap(), None);

    // A given token cannot log in again: its refusal is said, not retried.
    let token = client(&dev, Login::Token(Secret::new("s.not-a-token")));
    let denied = HostKeyring::new(hosts(token), "ops");
    let e = denied.get("vault-key").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NeedsSignIn, "{e:?}");
    assert!(!e.message().contains("s.not-a-token"), "{e:?}");
}

#[tokio::test]
async fn a_sealed_server_and_an_unreachable_one_say_what_to_do() {
    let Some(mut dev) = DevServer::start("a_sealed_server_and_an_unreachable_one") else {
        return;
    };
    let kv = kv(root(&dev));
    kv.write("ba/secrets", &fields("rt-1"), 0).await.unwrap();
    dev.seal();
    let e = kv.read("ba/secrets").await.unwrap_err();
    assert_eq!(e.failure(), Failure::Sealed, "{e}");
    assert!(e.message().contains("unseal"), "{e}");
    assert!(
        e.message().contains("local accounts are not affected"),
        "{e}"
    );
    let e = kv
        .write("ba/secrets", &fields("rt-2"), 1)
        .await
        .unwrap_err();
    assert_eq!(e.failure(), Failure::Sealed, "{e}");

    dev.stop();
    let e = kv.read("ba/secrets").await.unwrap_err();
    assert_eq!(e.failure(), Failure::Unreachable, "{e}");
    assert!(e.failure().is_transient());
    assert!(e.message().contains("did not answer"), "{e}");
    assert!(e.message().contains(&dev.addr), "{e}");
    assert!(!e.message().contains(&dev.root_token), "{e}");
    let core: tokenkeeper_core::Error = e.into();
    assert_eq!(core.kind(), ErrorKind::Network);
}

#[tokio::test]
async fn a_mount_that_is_not_there_is_a_usage_error() {
    let Some(dev) = DevServer::start("a_mount_that_is_not_there") else {
        return;
    };
    let kv = Kv::new(root(&dev), "nowhere", "tokenkeeper").unwrap();
    let e = kv
        .write("ba/secrets", &fields("rt-1"), 0)
        .await
        .unwrap_err();
    assert!(
        matches!(e.failure(), Failure::Usage | Failure::NotFound),
        "{e}"
    );
    assert!(
        e.message().contains("nowhere/tokenkeeper/ba/secrets"),
        "{e}"
    );
}
