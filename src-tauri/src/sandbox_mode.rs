//! Sandbox mode: the vendor stand-ins run inside the app on loopback, and a demo vault
//! (its own folder and keyring service) holds accounts that sign in to them, so a
//! newcomer sees every flow work without a vendor account.

use std::io::Write;
use std::sync::Arc;

use tokenkeeper_core::model::Vendor;
use tokenkeeper_core::vendors::FieldKey;
use tokenkeeper_core::{NewAccount, Secret, Vault};
use tokenkeeper_sandbox::{bigfix, bigid, immuta, truesight, Urls};

use crate::Shell;

/// A fixed port when free, so that the demo accounts' URLs stay the same between runs.
const PREFERRED_PORT: u16 = 47811;

pub fn start(shell: Arc<Shell>) {
    tauri::async_runtime::spawn(async move {
        if let Err(e) = run(shell).await {
            let _ = writeln!(std::io::stderr(), "tokenkeeper-desktop: sandbox mode: {e}");
        }
    });
}

async fn run(shell: Arc<Shell>) -> Result<(), String> {
    let config = tokenkeeper_sandbox::Config::default();
    let running = match tokenkeeper_sandbox::start(config.clone(), PREFERRED_PORT).await {
        Ok(r) => r,
        Err(_) => tokenkeeper_sandbox::start(config, 0)
            .await
            .map_err(|e| e.to_string())?,
    };
    let urls = running.urls();
    let _ = writeln!(
        std::io::stderr(),
        "tokenkeeper-desktop: sandbox vendors at {}",
        urls.base
    );
    let vault = shell.vault().map_err(|e| e.to_string())?;
    for demo in demo_accounts(&urls) {
        let name = demo.new.name.clone();
        if let Err(e) = seed(&vault, demo, &urls).await {
            let _ = writeln!(
                std::io::stderr(),
                "tokenkeeper-desktop: demo account {name}: {e}"
            );
        }
    }
    shell.changed();
    // Keep the stand-ins serving for the life of the app.
    let _ = running.task.await;
    Ok(())
}

/// One demo account: what it is, and the secret it signs in with (none for the
/// browser sign-in, which the newcomer starts from the window).
struct Demo {
    new: NewAccount,
    secret: Option<&'static str>,
}

fn demo_accounts(urls: &Urls) -> Vec<Demo> {
    let labels = vec!["demo".to_string()];
    vec![
        Demo {
            new: NewAccount {
                name: "truesight-demo".into(),
                vendor: Some(Vendor::Truesight),
                base_url: urls.truesight.clone(),
                username: Some(truesight::DEMO_USER.into()),
                tenant: Some(truesight::DEMO_TENANT.into()),
                labels: labels.clone(),
                ..NewAccount::default()
            },
            secret: Some(truesight::DEMO_PASSWORD),
        },
        Demo {
            new: NewAccount {
                name: "bigid-demo".into(),
                vendor: Some(Vendor::Bigid),
                base_url: urls.bigid.clone(),
                username: Some(bigid::DEMO_USER.into()),
                labels: labels.clone(),
                ..NewAccount::default()
            },
            secret: Some(bigid::DEMO_PASSWORD),
        },
        Demo {
            new: NewAccount {
                name: "bigfix-demo".into(),
                vendor: Some(Vendor::Bigfix),
                base_url: urls.bigfix.clone(),
                username: Some(bigfix::ADMIN_USER.into()),
                ca_cert_pem: Some(urls.bigfix_ca_pem.clone()),
                settings: vec![(FieldKey::TokenDuration, "30".into())],
                labels: vec!["demo".into(), "on-prem".into()],
                ..NewAccount::default()
            },
            secret: Some(bigfix::ADMIN_PASSWORD),
        },
        Demo {
            new: NewAccount {
                name: "immuta-demo".into(),
                vendor: Some(Vendor::Immuta),
                base_url: urls.immuta.clone(),
                labels: labels.clone(),
                ..NewAccount::default()
            },
            secret: Some(immuta::DEMO_APIKEY),
        },
        Demo {
            new: NewAccount {
                name: "biganimal-demo".into(),
                vendor: Some(Vendor::Biganimal),
                base_url: urls.biganimal.clone(),
                labels,
                ..NewAccount::default()
            },
            secret: None,
        },
    ]
}

async fn seed(vault: &Vault, demo: Demo, urls: &Urls) -> Result<(), tokenkeeper_core::Error> {
    let name = demo.new.name.clone();
    if !vault.contains(&name)? {
        return vault
            .add(
                demo.new,
                demo.secret.map(Secret::new),
                demo.secret.is_some(),
            )
            .await
            .map(drop);
    }
    // The stand-ins forget their tokens (and BigFix its certificate) when they stop:
    // point the account at this run's addresses and sign in afresh.
    vault.set_base_url(&name, &demo.new.base_url)?;
    if demo.new.vendor == Some(Vendor::Bigfix) {
        vault
            .set_trust(&name, Some(urls.bigfix_ca_pem.clone()), None)
            .await?;
    }
    match demo.secret {
        Some(_) => vault.login(&name, None).await.map(drop),
        None => Ok(()),
    }
}
