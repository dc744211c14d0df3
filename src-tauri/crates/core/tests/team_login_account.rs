//! A team that logs in with an OpenBao account of the vault (`team connect NAME
//! --account ACCOUNT`), on a real OpenBao dev server: the team store follows the
//! account's token when the vault replaces it, and the login account is neither
//! shared, removed nor moved to another server while it is the team's login.

#[allow(dead_code)]
#[path = "../../../../tests/src/openbao.rs"]
mod openbao;

use std::sync::Arc;

use tokenkeeper_core::clock::SystemClock;
use tokenkeeper_core::forms::AccountEdit;
use tokenkeeper_core::model::{Method, Vendor};
use tokenkeeper_core::secret_store::MemoryKeyring;
use tokenkeeper_core::team::config::{DEFAULT_MOUNT, DEFAULT_PREFIX};
use tokenkeeper_core::team::{LoginKind, Server, TeamConfig};
use tokenkeeper_core::{NewAccount, Secret, Vault};

#[tokio::test(flavor = "multi_thread")]
async fn a_team_follows_its_login_account_when_its_token_is_replaced() {
    let Some(bao) = openbao::DevServer::start("team follows its login account") else {
        return;
    };
    bao.policy("tokenkeeper-member", openbao::MEMBER_POLICY);
    bao.userpass_user("olga", "pw-olga", &["tokenkeeper-member"]);
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open_with(
        dir.path(),
        Arc::new(MemoryKeyring::default()),
        Arc::new(SystemClock),
    )
    .unwrap();
    let login = NewAccount {
        name: "login".into(),
        vendor: Some(Vendor::Openbao),
        base_url: bao.addr.clone(),
        method: Some(Method::Password),
        username: Some("olga".into()),
        ..NewAccount::default()
    };
    vault
        .add(login, Some(Secret::new("pw-olga")), true)
        .await
        .unwrap();
    let config = TeamConfig {
        name: "ops".into(),
        server: Server::at(""),
        mount: DEFAULT_MOUNT.into(),
        prefix: DEFAULT_PREFIX.into(),
        login: LoginKind::Account {
            account: "login".into(),
        },
    };
    let summary = vault
        .connect_team(config, Secret::new(String::new()))
        .await
        .unwrap();
    assert!(summary.address.starts_with(&bao.addr), "{summary:?}");
    let first = vault.token("login").await.unwrap().token;
    let store = vault.team_store("ops").await.unwrap();
    store.accounts().await.unwrap();

    // A userpass renewal is a new login; the old token is then revoked.
    vault.renew_now("login").await.unwrap();
    let second = vault.token("login").await.unwrap().token;
    assert_ne!(first, second);
    bao.bao_ok(&["token", "revoke", first.expose()]);

    let again = vault.team_store("ops").await.unwrap();
    assert!(Arc::ptr_eq(&store, &again), "the same store, kept open");
    again
        .accounts()
        .await
        .expect("the store answers with the account's new token");

    // The login account is neither shared nor removed while it is the login.
    let shared = vault.share("login", "ops").await.unwrap_err();
    assert!(
        shared.message().contains("logs in to team 'ops'"),
        "{shared:?}"
    );
    let removed = vault.remove("login", false).await.unwrap_err();
    assert!(
        removed.message().contains("logs in to team 'ops'"),
        "{removed:?}"
    );
    // Nor moved to another server: the team keeps its address, and would be handed
    // that server's token. Its labels may still change.
    let edit = |base_url: &str| AccountEdit {
        base_url: base_url.into(),
        fields: Default::default(),
        labels: vec!["ops".into()],
    };
    let moved = vault
        .edit("login", edit("http://127.0.0.1:9"))
        .await
        .unwrap_err();
    assert!(
        moved.message().contains("logs in to team 'ops'") && moved.message().contains("--account"),
        "{moved:?}"
    );
    let kept = vault.edit("login", edit(&bao.addr)).await.unwrap();
    assert!(kept.base_url.starts_with(&bao.addr), "{kept:?}");
    assert_eq!(kept.labels, ["ops"]);
    vault
        .team_store("ops")
        .await
        .unwrap()
        .accounts()
        .await
        .unwrap();
}
