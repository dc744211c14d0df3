//! The BigFix token inventory of an account: the server's tokens listed with the one
//! this account uses marked, and the documented create, rename, extend and revoke
//! calls, keeping the vault's record in step when the tracked token changes.

use chrono::{TimeZone, Utc};

use super::lease::KeyringSink;
use super::listing::summarize;
use super::{flow_for, Vault};
use crate::error::{Error, Result};
use crate::http;
use crate::model::{Account, AccountSummary, EventKind, Outcome, TokenMeta, Vendor};
use crate::secret::SecretBundle;
use crate::vendors::bigfix::{BigFix, BigFixToken, Inventory, TokenRef};
use crate::vendors::Call;

/// Which token a call is about.
#[derive(Debug, Clone)]
pub enum TokenQuery {
    Id(u64),
    Name(String),
}

impl Vault {
    fn bigfix_account(&self, name: &str) -> Result<(Account, Option<TokenMeta>)> {
        let (account, meta) = self.find(name)?;
        if account.vendor != Vendor::Bigfix {
            return Err(Error::usage(format!(
                "account '{name}' is a {} account, not a BigFix one",
                account.vendor.display_name()
            )));
        }
        Ok((account, meta))
    }

    /// Runs `f` with the account's inventory calls.
    async fn with_inventory<T>(
        &self,
        name: &str,
        f: impl AsyncFnOnce(&Inventory<'_>, Option<TokenRef>) -> Result<T>,
    ) -> Result<T> {
        let (account, meta) = self.bigfix_account(name)?;
        let bundle: SecretBundle = self.read_secrets(&account.id).await?;
        let client = http::client_for(&account)?;
        let call = Call::new(&account, &client, self.now()).after(meta.as_ref());
        let inventory = Inventory::new(&call, &bundle).map_err(|e| e.for_account(name))?;
        f(&inventory, TokenRef::of(meta.as_ref()))
            .await
            .map_err(|e| e.for_account(name))
    }

    /// The operator's tokens on the server, or (master operators) another operator's.
    pub async fn bigfix_tokens(&self, name: &str, user: Option<u64>) -> Result<Vec<BigFixToken>> {
        self.with_inventory(name, async |inv, tracked| {
            let mut tokens = inv.list(user).await?;
            for t in &mut tokens {
                t.tracked = tracked.as_ref().is_some_and(|r| r.id == t.id);
            }
            Ok(tokens)
        })
        .await
    }

    pub async fn bigfix_token(&self, name: &str, query: TokenQuery) -> Result<BigFixToken> {
        self.with_inventory(name, async |inv, tracked| {
            let mut t = match &query {
                TokenQuery::Id(id) => inv.by_id(*id).await?,
                TokenQuery::Name(n) => inv.by_name(n).await?,
            };
            t.tracked = tracked.is_some_and(|r| r.id == t.id);
            Ok(t)
        })
        .await
    }

    /// Creates a token with the given name and lifetime and switches the account to
    /// it; the previous token stays on the server (the inventory shows it untracked).
    pub async fn bigfix_create(
        &self,
        name: &str,
        token_name: &str,
        days: u32,
    ) -> Result<AccountSummary> {
        let (account, _) = self.bigfix_account(name)?;
        let holder = self.take_lease(&account).await?;
        self.holding_lease(
            &account.id,
            &holder,
            self.bigfix_create_holding_lease(name, token_name, days, &holder),
        )
        .await
    }

    async fn bigfix_create_holding_lease(
        &self,
        name: &str,
        token_name: &str,
        days: u32,
        holder: &str,
    ) -> Result<AccountSummary> {
        let (account, meta) = self.bigfix_account(name)?;
        let mut bundle = self.read_secrets(&account.id).await?;
        let client = http::client_for(&account)?;
        let now = self.now();
        let sink = KeyringSink::new(self, &account, Some(holder));
        let call = Call::new(&account, &client, now)
            .after(meta.as_ref())
            .rotating_into(&sink);
        let issued = BigFix::issue_new(&call, &bundle, Some(token_name), Some(days))
            .await
            .map_err(|e| e.for_account(name))?;
        let stored = self
            .store_issued(
                &account,
                &mut bundle,
                &issued,
                (EventKind::Created, now),
                holder,
            )
            .await?;
        Ok(summarize(&account, Some(&stored), now))
    }

    /// Renames a token and/or restarts its lifetime; the vault follows when it is
    /// the account's own token.
    pub async fn bigfix_update(
        &self,
        name: &str,
        id: u64,
        new_name: Option<&str>,
        days: Option<u32>,
    ) -> Result<BigFixToken> {
        let (updated, tracked) = self
            .with_inventory(name, async |inv, tracked| {
                inv.update(id, new_name, days).await?;
                Ok((inv.by_id(id).await?, tracked))
            })
            .await?;
        let is_tracked = tracked.is_some_and(|r| r.id == id);
        if is_tracked {
            let (account, meta) = self.bigfix_account(name)?;
            if let Some(mut meta) = meta {
                meta.expires_at = updated
                    .expires_at_ms
                    .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
                meta.vendor_ref = serde_json::to_string(&TokenRef {
                    id,
                    name: updated.name.clone(),
                })
                .ok();
                self.db.put_token_meta(
                    &account.id,
                    &meta,
                    (
                        EventKind::Updated,
                        Outcome::Ok,
                        &format!("token '{}' updated", updated.name),
                    ),
                    self.now(),
                )?;
            }
        }
        Ok(BigFixToken {
            tracked: is_tracked,
            ..updated
        })
    }

    /// The token the account uses, as the vault last stored it (no server call).
    pub fn bigfix_tracked(&self, name: &str) -> Result<Option<TokenRef>> {
        let (_, meta) = self.bigfix_account(name)?;
        Ok(TokenRef::of(meta.as_ref()))
    }

    /// Revokes a token. Revoking the account's own token marks it expired, so the next
    /// `token` (or the engine, at once) makes a new one with the stored password: the
    /// password still works, so no human is needed.
    pub async fn bigfix_revoke(&self, name: &str, id: u64) -> Result<()> {
        self.with_inventory(name, async |inv, _| inv.revoke(id).await)
            .await?;
        // Marked under the lease, from the token in use as stored now: a renewal that
        // rotated meanwhile tracks another token, which stays as it is.
        let (account, _) = self.bigfix_account(name)?;
        let holder = self.take_lease(&account).await?;
        self.holding_lease(&account.id, &holder, async {
            let (account, meta) = self.bigfix_account(name)?;
            let now = self.now();
            let in_use = TokenRef::of(meta.as_ref()).filter(|r| r.id == id);
            match (in_use, meta) {
                (Some(r), Some(mut meta)) => {
                    meta.expires_at = Some(now);
                    self.db.put_token_meta(
                        &account.id,
                        &meta,
                        (
                            EventKind::Revoke,
                            Outcome::Ok,
                            &format!(
                                "revoked token '{}' (id {id}), the one in use: a new one is made \
                                 with the stored password when a token is next needed",
                                r.name
                            ),
                        ),
                        now,
                    )
                }
                _ => self.db.record_event(
                    &account.id,
                    (EventKind::Revoke, Outcome::Ok, &format!("token id {id}")),
                    now,
                ),
            }
        })
        .await
    }

    /// Rotates the account's token: a new one, stored, then the old one revoked.
    pub async fn bigfix_rotate(&self, name: &str) -> Result<AccountSummary> {
        self.bigfix_account(name)?;
        let _ = flow_for(Vendor::Bigfix)?;
        self.renew_now(name).await
    }
}
