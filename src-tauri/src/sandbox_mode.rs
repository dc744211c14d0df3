//! Sandbox mode: the vendor stand-ins run inside the app on loopback, and a demo vault
//! (its own folder and keyring service) holds accounts that sign in to them, so a
//! newcomer sees every flow work without a vendor account.

use std::io::Write;
use std::sync::Arc;

use tokenkeeper_core::model::Vendor;
use tokenkeeper_core::{NewAccount, Secret};
use tokenkeeper_sandbox::truesight;

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
    let demo = [(
        "truesight-demo",
        Vendor::Truesight,
        urls.truesight.clone(),
        truesight::DEMO_USER,
        truesight::DEMO_TENANT,
        truesight::DEMO_PASSWORD,
    )];
    for (name, vendor, url, user, tenant, password) in demo {
        let result = if vault.contains(name).map_err(|e| e.to_string())? {
            // The stand-ins forget their tokens when they stop: sign in afresh.
            vault.set_base_url(name, &url).map_err(|e| e.to_string())?;
            vault.login(name, None).await.map(|_| ())
        } else {
            let new = NewAccount {
                name: name.into(),
                vendor: Some(vendor),
                base_url: url,
                username: Some(user.into()),
                tenant: Some(tenant.into()),
                labels: vec!["demo".into()],
                ..NewAccount::default()
            };
            vault
                .add(new, Some(Secret::new(password)), true)
                .await
                .map(|_| ())
        };
        if let Err(e) = result {
            let _ = writeln!(
                std::io::stderr(),
                "tokenkeeper-desktop: demo account {name}: {e}"
            );
        }
    }
    // Keep the stand-ins serving for the life of the app.
    let _ = running.task.await;
    Ok(())
}
