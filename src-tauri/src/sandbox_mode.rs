//! Sandbox mode: the vendor stand-ins run inside the app on loopback, and a demo vault
//! (its own folder and keyring service) holds accounts that sign in to them, so a
//! newcomer sees every flow work without a vendor account. Built only with the
//! `sandbox` feature (`./dev sandbox`, the tests): the installed app has none of it.
//!
//! Sandbox mode writes demo accounts into its vault and, on each start, points them at
//! this run's stand-ins on loopback. So it must never run on a real vault: its folder
//! is marked (`sandbox-vault.json`, which also lists the accounts it made), a folder
//! given with `--data-dir` or `TOKENKEEPER_DATA_DIR` is taken only when it is new,
//! empty or already marked, and only the accounts sandbox mode made are ever pointed
//! elsewhere.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokenkeeper_core::fields::FieldKey;
use tokenkeeper_core::model::Vendor;
use tokenkeeper_core::{NewAccount, Secret, Vault};
use tokenkeeper_sandbox::Urls;

use crate::Shell;

/// A fixed port when free, so that the demo accounts' URLs stay the same between runs.
const PREFERRED_PORT: u16 = 47811;

/// The file that marks a folder as sandbox mode's demo vault.
const MARKER: &str = "sandbox-vault.json";

/// What the marker holds: the accounts sandbox mode made (name to account id).
#[derive(serde::Serialize, serde::Deserialize, Default, Debug)]
struct Marker {
    about: String,
    accounts: BTreeMap<String, String>,
}

fn marker_path(dir: &Path) -> PathBuf {
    dir.join(MARKER)
}

fn read_marker(dir: &Path) -> Option<Marker> {
    let text = std::fs::read_to_string(marker_path(dir)).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_marker(dir: &Path, marker: &Marker) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(marker).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!("{MARKER}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, marker_path(dir))
}

/// Makes `dir` sandbox mode's vault, or says why it may not be: a folder given
/// explicitly (`explicit`) that holds anything but a sandbox vault is refused, so
/// that demo accounts never go into a real vault. The default sandbox folder is
/// sandbox mode's own: a vault there from before the marker existed is adopted, with
/// its demo accounts.
pub fn prepare_dir(dir: &Path, explicit: bool) -> Result<(), String> {
    if read_marker(dir).is_some() {
        return Ok(());
    }
    let occupied = std::fs::read_dir(dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if explicit && occupied {
        return Err(format!(
            "refusing to start sandbox mode in {}: that folder holds something other than \
             a sandbox vault (a real vault?), and sandbox mode would add demo accounts to it \
             and point them at loopback. Start sandbox mode without --data-dir and \
             TOKENKEEPER_DATA_DIR (it uses {}), or give it a new, empty folder.",
            dir.display(),
            default_dir().display()
        ));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the sandbox vault {}: {e}", dir.display()))?;
    let mut marker = Marker {
        about: "Tokenkeeper's sandbox mode made this vault: its demo accounts sign in to \
                stand-in vendors on loopback."
            .into(),
        accounts: BTreeMap::new(),
    };
    if occupied {
        // The default sandbox folder from before the marker: its demo accounts are
        // sandbox mode's (found by name when the vault opens).
        marker.accounts.insert(LEGACY.into(), String::new());
    }
    write_marker(dir, &marker)
        .map_err(|e| format!("cannot mark {} as the sandbox vault: {e}", dir.display()))
}

/// In the marker of a default sandbox vault from before the marker: its demo
/// accounts, whatever their ids, are sandbox mode's.
const LEGACY: &str = "*legacy-demo-accounts*";

/// sandbox mode's folder when none is given.
pub fn default_dir() -> PathBuf {
    tokenkeeper_core::vault::default_dir().with_file_name("tokenkeeper-sandbox")
}

/// Whether the account `name` (id `id`) is one sandbox mode made in `dir`.
fn made_here(dir: &Path, name: &str, id: &str) -> bool {
    read_marker(dir).is_some_and(|m| {
        m.accounts.get(name).is_some_and(|made| made == id) || m.accounts.contains_key(LEGACY)
    })
}

/// Notes that sandbox mode made the account `name` (id `id`) in `dir`.
fn record(dir: &Path, name: &str, id: &str) -> std::io::Result<()> {
    let mut marker = read_marker(dir).unwrap_or_default();
    marker.accounts.insert(name.to_string(), id.to_string());
    write_marker(dir, &marker)
}

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
    for demo in demo_accounts(&urls)? {
        let name = demo.new.name.clone();
        if let Err(e) = seed(&vault, &shell.dir, demo).await {
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

/// One demo account: what it is, and the secret it signs in with (none for the
/// browser sign-in, which the newcomer starts from the window).
struct Demo {
    new: NewAccount,
    secret: Option<&'static str>,
}

/// The stand-ins' demo accounts as the vault adds them: each stand-in describes its
/// own by ids, so nothing here knows a vendor.
fn demo_accounts(urls: &Urls) -> Result<Vec<Demo>, String> {
    urls.demo_accounts()
        .into_iter()
        .map(|d| {
            let mut new = NewAccount {
                name: d.name.into(),
                vendor: Some(Vendor::parse(d.vendor).map_err(|e| e.to_string())?),
                base_url: d.base_url,
                ca_cert_pem: d.ca_cert_pem,
                labels: d.labels.into_iter().map(str::to_string).collect(),
                ..NewAccount::default()
            };
            for (id, value) in d.fields {
                let key = FieldKey::parse(id)
                    .ok_or_else(|| format!("demo account {}: no field '{id}'", d.name))?;
                new.set_field(key, value);
            }
            Ok(Demo {
                new,
                secret: d.secret,
            })
        })
        .collect()
}

async fn seed(vault: &Vault, dir: &Path, demo: Demo) -> Result<(), tokenkeeper_core::Error> {
    let name = demo.new.name.clone();
    if !vault.contains(&name)? {
        let added = vault
            .add(
                demo.new,
                demo.secret.map(Secret::new),
                demo.secret.is_some(),
            )
            .await?;
        return record(dir, &name, &added.id).map_err(|e| {
            tokenkeeper_core::Error::vault(format!("cannot note the demo account: {e}"))
        });
    }
    let id = vault
        .list()?
        .into_iter()
        .find(|a| a.name == name)
        .map(|a| a.id)
        .unwrap_or_default();
    if !made_here(dir, &name, &id) {
        let _ = writeln!(
            std::io::stderr(),
            "tokenkeeper-desktop: sandbox mode leaves account {name} alone: it did not make it"
        );
        return Ok(());
    }
    // The stand-ins forget their tokens (and BigFix its certificate) when they stop:
    // point the account at this run's addresses and sign in afresh.
    vault.set_base_url(&name, &demo.new.base_url)?;
    if let Some(ca) = &demo.new.ca_cert_pem {
        vault.set_trust(&name, Some(ca.clone()), None).await?;
    }
    match demo.secret {
        Some(_) => vault.login(&name, None).await.map(drop),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use tokenkeeper_core::clock::{Clock, SystemClock};

    use super::*;

    #[test]
    fn every_stand_ins_demo_account_is_one_its_vendor_accepts() {
        let urls = Urls {
            base: "http://127.0.0.1:9".into(),
            admin: "http://127.0.0.1:9/_sandbox".into(),
            truesight: "http://127.0.0.1:9/truesight".into(),
            bigid: "http://127.0.0.1:9/bigid".into(),
            biganimal: "http://127.0.0.1:9/biganimal".into(),
            oidc: "http://127.0.0.1:9/oidc".into(),
            immuta: "http://127.0.0.1:9/immuta".into(),
            bigfix: "https://127.0.0.1:10".into(),
            bigfix_ca_pem: String::new(),
            bigfix_cert_sha256: String::new(),
        };
        let demos = demo_accounts(&urls).unwrap();
        let vendors: Vec<_> = demos.iter().filter_map(|d| d.new.vendor).collect();
        assert_eq!(
            vendors,
            [
                Vendor::Truesight,
                Vendor::Bigid,
                Vendor::Bigfix,
                Vendor::Immuta,
                Vendor::Biganimal
            ]
        );
        for demo in demos {
            let flow = tokenkeeper_core::vendors::flow_for(demo.new.vendor.unwrap()).unwrap();
            let name = demo.new.name.clone();
            let mut new = demo.new;
            // The stand-in's CA changes each start; checked by the e2e tests.
            new.ca_cert_pem = None;
            let (account, spec) =
                tokenkeeper_core::vault::account_from(flow, new, SystemClock.now()).unwrap_or_else(
                    |e| panic!("demo account {name} is not one its vendor takes: {e}"),
                );
            assert_eq!(spec.secret.is_some(), demo.secret.is_some(), "{name}");
            assert!(account.labels.contains(&"demo".to_string()), "{name}");
        }
    }

    #[test]
    fn a_given_folder_that_holds_a_vault_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::write(real.join("vault.db"), "a real vault").unwrap();
        let e = prepare_dir(&real, true).unwrap_err();
        assert!(e.contains("refusing to start sandbox mode"), "{e}");
        assert!(e.contains(&real.display().to_string()), "{e}");
        assert!(!marker_path(&real).exists(), "the real vault is not marked");
    }

    #[test]
    fn a_new_or_empty_given_folder_becomes_a_sandbox_vault_and_stays_one() {
        let t = tempfile::tempdir().unwrap();
        let new = t.path().join("new");
        prepare_dir(&new, true).unwrap();
        assert!(marker_path(&new).exists());
        // Once the vault is in it, it is still sandbox mode's.
        std::fs::write(new.join("vault.db"), "the demo vault").unwrap();
        prepare_dir(&new, true).unwrap();
        let empty = t.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        prepare_dir(&empty, true).unwrap();
    }

    #[test]
    fn only_accounts_sandbox_mode_made_are_pointed_elsewhere() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("sandbox");
        prepare_dir(&dir, true).unwrap();
        assert!(!made_here(&dir, "bigid-demo", "id-1"), "not made yet");
        record(&dir, "bigid-demo", "id-1").unwrap();
        assert!(made_here(&dir, "bigid-demo", "id-1"));
        // Removed and added again by hand under the same name: not ours.
        assert!(!made_here(&dir, "bigid-demo", "id-2"));
        assert!(!made_here(&dir, "truesight-demo", "id-3"));
        // No marker (a real vault): nothing is ours.
        assert!(!made_here(t.path(), "bigid-demo", "id-1"));
    }

    #[test]
    fn the_default_sandbox_folder_from_before_the_marker_is_adopted() {
        let t = tempfile::tempdir().unwrap();
        let old = t.path().join("tokenkeeper-sandbox");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("vault.db"), "an old demo vault").unwrap();
        prepare_dir(&old, false).unwrap();
        assert!(made_here(&old, "bigfix-demo", "any"));
    }
}
