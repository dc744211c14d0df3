//! Vaults for the core's unit tests: an in-memory keyring, a TrueSight account that
//! never reaches a vendor, and a token planted as a renewal would store it, so each
//! module's tests start from the same place instead of writing it again.

use std::sync::Arc;

use chrono::{Duration, Utc};

use super::Vault;
use crate::fields::NewAccount;
use crate::model::{EventKind, Outcome, RenewsWith, TokenMeta, Vendor};
use crate::secret::Secret;
use crate::secret_store::{MemoryKeyring, SecretStore};

/// A TrueSight account `name` at an address nothing listens on.
pub fn truesight_account(name: &str) -> NewAccount {
    NewAccount {
        name: name.into(),
        vendor: Some(Vendor::Truesight),
        base_url: "http://127.0.0.1:9/truesight".into(),
        username: Some("ops".into()),
        tenant: Some("BmcRealm".into()),
        ..NewAccount::default()
    }
}

/// Adds `new` with `password`, without signing in.
pub async fn add(vault: &Vault, new: NewAccount, password: &str) {
    vault
        .add(new, Some(Secret::new(password)), false)
        .await
        .unwrap();
}

/// Stores `token` for account `name` as a renewal would: in its keyring item, and
/// its facts (issued now, living `life`) in the database.
pub fn plant_token(
    vault: &Vault,
    keyring: &MemoryKeyring,
    name: &str,
    token: &str,
    life: Duration,
) {
    let (account, _) = vault.database().account_by_name(name).unwrap().unwrap();
    let item = format!("account/{}", account.id);
    let mut bundle: serde_json::Value =
        serde_json::from_str(&keyring.get(&item).unwrap().unwrap()).unwrap();
    bundle["access_token"] = serde_json::Value::String(token.into());
    keyring.set(&item, &bundle.to_string()).unwrap();
    record_token_facts(vault, name, life);
}

/// Records in the database alone that account `name` holds a token issued now and
/// living `life` (the keyring is left as it is).
pub fn record_token_facts(vault: &Vault, name: &str, life: Duration) {
    let (account, _) = vault.database().account_by_name(name).unwrap().unwrap();
    let now = Utc::now();
    let meta = TokenMeta::issued(now, Some(now + life), RenewsWith::StoredPassword);
    vault
        .database()
        .put_token_meta(
            &account.id,
            &meta,
            (EventKind::Renewed, Outcome::Ok, ""),
            now,
        )
        .unwrap();
}

/// A vault in `dir` on an in-memory keyring and the system clock.
pub fn open(dir: &std::path::Path) -> (Vault, Arc<MemoryKeyring>) {
    let keyring = Arc::new(MemoryKeyring::default());
    let vault =
        Vault::open_with(dir, keyring.clone(), Arc::new(crate::clock::SystemClock)).unwrap();
    (vault, keyring)
}
