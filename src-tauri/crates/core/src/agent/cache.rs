//! The tokens the agent holds in memory, so a script's `tokenkeeper token` costs one
//! SQLite read instead of a keyring round trip. A held token is served only while
//! `Vault::token` would serve the stored one without asking anybody: the account
//! and its token are the ones it was taken for (same account id, same issue time in
//! the database, so a renewal, a sign-in or a removal by any process retires it), the
//! token is valid and not yet due for renewal, it has an expiry, and the vendor is
//! not one whose tokens are checked before each use (BigFix). Anything else goes
//! through the vault, single-flight across processes as always.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::engine::EngineEvent;
use crate::error::Result;
use crate::model::{AccountSummary, TokenMeta, TokenState};
use crate::secret::Secret;
use crate::vault::{FreshToken, Vault};
use crate::vendors;

/// One held token, and what it was taken for.
struct Held {
    account_id: String,
    issued_at: DateTime<Utc>,
    token: Secret,
    authorization: Secret,
}

/// The agent's tokens, by account name.
pub struct TokenCache {
    vault: Arc<Vault>,
    held: Mutex<HashMap<String, Held>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("held", &self.len())
            .finish_non_exhaustive()
    }
}

/// Whether a token with this metadata may be served without the vault's look: the
/// same test `Vault::token` makes before it hands out the stored token unasked.
pub fn servable(meta: &TokenMeta, checks_before_use: bool, now: DateTime<Utc>) -> bool {
    !checks_before_use
        && meta.expires_at.is_some()
        && !meta.needs_human
        && meta.state(now) == TokenState::Valid
}

impl TokenCache {
    pub fn new(vault: Arc<Vault>) -> Self {
        Self {
            vault,
            held: Mutex::new(HashMap::new()),
        }
    }

    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    fn held(&self) -> MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many tokens are held.
    pub fn len(&self) -> usize {
        self.held().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A valid token for `name`: the held one when it may be served, else the vault's
    /// (which is then held, unless it came with a warning).
    pub async fn token(&self, name: &str) -> Result<FreshToken> {
        if let Some(fresh) = self.serve_held(name)? {
            return Ok(fresh);
        }
        let fresh = self.vault.token(name).await?;
        if fresh.warning.is_some() {
            self.forget(name);
        } else {
            self.hold(name, &fresh)?;
        }
        Ok(fresh)
    }

    fn serve_held(&self, name: &str) -> Result<Option<FreshToken>> {
        let Some((account, Some(meta))) = self.vault.database().account_by_name(name)? else {
            self.forget(name);
            return Ok(None);
        };
        let checks = vendors::flow_for(account.vendor).is_some_and(|f| f.checks_before_use());
        let mut held = self.held();
        let Some(h) = held.get(name) else {
            return Ok(None);
        };
        if h.account_id != account.id
            || h.issued_at != meta.issued_at
            || !servable(&meta, checks, Utc::now())
        {
            held.remove(name);
            return Ok(None);
        }
        Ok(Some(FreshToken {
            token: h.token.clone(),
            authorization: h.authorization.clone(),
            facts: Some(meta),
            warning: None,
        }))
    }

    /// Holds what the vault just handed out, tagged with the facts the vault read
    /// before that token (never newer than it: when another process renewed in
    /// between, the database's issue time differs and the next request asks the
    /// vault again, rather than serve an old token under a new token's time).
    fn hold(&self, name: &str, fresh: &FreshToken) -> Result<()> {
        let Some(meta) = fresh.facts.clone() else {
            return Ok(());
        };
        let Some((account, _)) = self.vault.database().account_by_name(name)? else {
            return Ok(());
        };
        let checks = vendors::flow_for(account.vendor).is_some_and(|f| f.checks_before_use());
        if !servable(&meta, checks, Utc::now()) {
            self.forget(name);
            return Ok(());
        }
        self.held().insert(
            name.to_string(),
            Held {
                account_id: account.id,
                issued_at: meta.issued_at,
                token: fresh.token.clone(),
                authorization: fresh.authorization.clone(),
            },
        );
        Ok(())
    }

    /// Renews `name` now (a socket's `renew`, the tray's Renew now) and drops the
    /// token held for it, renewed or not. The renewal is written on this process's
    /// own connection, which its engine does not see change: the caller tells the
    /// windows.
    pub async fn renew_now(&self, name: &str) -> Result<AccountSummary> {
        let renewed = self.vault.renew_now(name).await;
        self.forget(name);
        renewed
    }

    /// Drops the token held for `name`.
    pub fn forget(&self, name: &str) {
        self.held().remove(name);
    }

    /// Drops every held token.
    pub fn forget_all(&self) {
        self.held().clear();
    }

    /// Follows the engine: a renewal (or a failed one) retires the account's token,
    /// another process's change retires them all.
    pub fn follow(&self, event: &EngineEvent) {
        match event {
            EngineEvent::Renewed { account } | EngineEvent::RenewalFailed { account, .. }
                if !account.is_empty() =>
            {
                self.forget(account)
            }
            EngineEvent::Alert(_) => {}
            _ => self.forget_all(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::fields::NewAccount;
    use crate::model::{RenewsWith, Vendor};
    use crate::secret_store::MemoryKeyring;
    use crate::vault::fixtures;

    /// A vault with a TrueSight account `name` whose stored token is `token`, issued
    /// now and expiring `life` from now.
    async fn vault_with_token(
        dir: &std::path::Path,
        keyring: Arc<MemoryKeyring>,
        vendor: Vendor,
        token: &str,
        life: chrono::Duration,
    ) -> Arc<Vault> {
        let vault = Vault::open_with(dir, keyring.clone(), Arc::new(SystemClock)).unwrap();
        let new = NewAccount {
            vendor: Some(vendor),
            ..fixtures::truesight_account("a")
        };
        fixtures::add(&vault, new, "pw").await;
        set_token(&vault, &keyring, token, life);
        Arc::new(vault)
    }

    fn set_token(vault: &Vault, keyring: &MemoryKeyring, token: &str, life: chrono::Duration) {
        fixtures::plant_token(vault, keyring, "a", token, life);
    }

    #[tokio::test]
    async fn a_held_token_is_served_without_the_keyring_until_its_token_changes() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Arc::new(MemoryKeyring::default());
        let vault = vault_with_token(
            dir.path(),
            keyring.clone(),
            Vendor::Truesight,
            "first",
            chrono::Duration::hours(1),
        )
        .await;
        let cache = TokenCache::new(vault.clone());
        assert_eq!(cache.token("a").await.unwrap().token.expose(), "first");
        assert_eq!(cache.len(), 1);
        let reads = keyring.reads();
        for _ in 0..5 {
            let fresh = cache.token("a").await.unwrap();
            assert_eq!(fresh.token.expose(), "first");
            assert!(fresh.authorization.expose().contains("first"));
        }
        assert_eq!(keyring.reads(), reads, "served from memory");

        // Another process renews: the database says so and the new token is served.
        std::thread::sleep(std::time::Duration::from_millis(5));
        set_token(&vault, &keyring, "second", chrono::Duration::hours(1));
        assert_eq!(cache.token("a").await.unwrap().token.expose(), "second");

        // The engine's word retires it too.
        cache.follow(&EngineEvent::Renewed {
            account: "a".into(),
        });
        assert!(cache.is_empty());
        cache.token("a").await.unwrap();
        cache.follow(&EngineEvent::VaultChanged);
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn a_token_renewed_elsewhere_while_it_was_handed_out_is_not_served_after() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Arc::new(MemoryKeyring::default());
        let vault = vault_with_token(
            dir.path(),
            keyring.clone(),
            Vendor::Truesight,
            "old",
            chrono::Duration::hours(1),
        )
        .await;
        let cache = TokenCache::new(vault.clone());
        // The vault hands out "old" with the facts it read before it...
        let handed = vault.token("a").await.unwrap();
        assert_eq!(handed.token.expose(), "old");
        // ...and another process renews before the cache holds it.
        std::thread::sleep(std::time::Duration::from_millis(5));
        set_token(&vault, &keyring, "new", chrono::Duration::hours(1));
        cache.hold("a", &handed).unwrap();
        assert_eq!(
            cache.token("a").await.unwrap().token.expose(),
            "new",
            "the old token was served under the new one's issue time"
        );
    }

    #[tokio::test]
    async fn a_token_due_for_renewal_or_checked_before_use_is_not_held() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Arc::new(MemoryKeyring::default());
        // A BigFix account's token is asked about before each use: never held.
        let vault = vault_with_token(
            dir.path(),
            keyring.clone(),
            Vendor::Bigfix,
            "bf",
            chrono::Duration::hours(1),
        )
        .await;
        let cache = TokenCache::new(vault);
        // (Its check cannot reach 127.0.0.1:9: the vault hands the token with a warning.)
        let fresh = cache.token("a").await.unwrap();
        assert_eq!(fresh.token.expose(), "bf");
        assert!(cache.is_empty());

        let now = Utc::now();
        let due = TokenMeta::issued(
            now - chrono::Duration::minutes(59),
            Some(now + chrono::Duration::minutes(1)),
            RenewsWith::StoredPassword,
        );
        assert!(!servable(&due, false, now), "due for renewal");
        let fine = TokenMeta::issued(
            now,
            Some(now + chrono::Duration::hours(1)),
            RenewsWith::StoredPassword,
        );
        assert!(servable(&fine, false, now));
        assert!(!servable(&fine, true, now), "checked before use");
        let no_expiry = TokenMeta::issued(now, None, RenewsWith::StoredPassword);
        assert!(!servable(&no_expiry, false, now), "asked about when used");
        let human = TokenMeta {
            needs_human: true,
            ..fine
        };
        assert!(!servable(&human, false, now));
    }

    #[tokio::test]
    async fn an_unknown_or_removed_account_gets_the_vaults_own_error() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Arc::new(MemoryKeyring::default());
        let vault = vault_with_token(
            dir.path(),
            keyring,
            Vendor::Truesight,
            "t",
            chrono::Duration::hours(1),
        )
        .await;
        let cache = TokenCache::new(vault.clone());
        let alone = vault.token("nope").await.unwrap_err();
        let via = cache.token("nope").await.unwrap_err();
        assert_eq!(via, alone);
        cache.token("a").await.unwrap();
        vault.remove("a", false).await.unwrap();
        let gone = cache.token("a").await.unwrap_err();
        assert_eq!(gone.kind(), crate::error::ErrorKind::Usage);
        assert!(cache.is_empty());
    }
}
