//! Handing out a fresh token: the one stored while it is valid, else a single-flight
//! renewal across processes; and the engine's view of the vault.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use super::lease::{KeyringSink, Leased};
use super::listing::summarize;
use super::{flow_for, FreshToken, Vault};
use crate::error::{Error, ErrorKind, Result};
use crate::http;
use crate::model::{Account, AccountSummary, EventKind, Outcome, TokenMeta, TokenState};
use crate::secret::{Secret, SecretKind};
use crate::vendors::{Call, VendorFlow};

/// How `token` treats the token in use.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenOptions {
    /// Ask the vendor whether the token still works, and renew it if not.
    pub check: bool,
    /// Renew now, whatever the token's state.
    pub force: bool,
}

impl Vault {
    /// The token another process renewed after `seen` was read, once it has landed.
    pub(super) async fn renewed_elsewhere(
        &self,
        account: &Account,
        flow: &dyn VendorFlow,
        seen: &TokenMeta,
    ) -> Result<Option<FreshToken>> {
        let Some(m) = self.db.token_meta(&account.id)? else {
            return Ok(None);
        };
        if m.needs_human {
            usable(account, Some(m))?;
        } else if renewed_since(&m, seen, self.now()) {
            let bundle = self.read_secrets(&account.id).await?;
            if let Some(t) = bundle.get(SecretKind::AccessToken) {
                return Ok(Some(fresh(flow, t.clone(), Some(m), None)));
            }
        }
        Ok(None)
    }

    /// A token valid now, renewed first when it is due. Renewal is single-flight
    /// across processes: whoever holds the account's lease renews, the rest wait
    /// for its result.
    pub async fn token(&self, name: &str) -> Result<FreshToken> {
        self.token_with(name, TokenOptions::default()).await
    }

    pub async fn token_with(&self, name: &str, options: TokenOptions) -> Result<FreshToken> {
        let (account, mut meta) = self.find(name)?;
        let flow = flow_for(account.vendor)?;
        // A shared account: its newest secrets, and the facts of their token, first
        // (a teammate may have renewed it since this vault last looked).
        let mut shared = None;
        if account.team.is_some() {
            shared = Some(self.read_secrets(&account.id).await?);
            meta = self.db.token_meta(&account.id)?;
        }
        let meta = usable(&account, meta)?;
        if !options.force && meta.state(self.now()) == TokenState::Valid {
            let bundle = match shared {
                Some(b) => b,
                None => self.read_secrets(&account.id).await?,
            };
            if let Some(token) = bundle.get(SecretKind::AccessToken) {
                // A token without an expiry (Immuta's API-key tokens) is asked about.
                if !(options.check || meta.expires_at.is_none() || flow.checks_before_use()) {
                    return Ok(fresh(flow, token.clone(), Some(meta), None));
                }
                match self.check(&account, flow, &meta, token).await {
                    Ok(Some(false)) => {}
                    Ok(_) => return Ok(fresh(flow, token.clone(), Some(meta), None)),
                    Err(e) => {
                        return Ok(fresh(
                            flow,
                            token.clone(),
                            Some(meta),
                            Some(e.after("could not check the token with the vendor")),
                        ))
                    }
                }
                self.db.record_event(
                    &account.id,
                    (
                        EventKind::Check,
                        Outcome::Invalid,
                        "the vendor no longer accepts the token (revoked or expired early): \
                         renewing it with what is stored",
                    ),
                    self.now(),
                )?;
            }
        }
        self.renew_single_flight(&account, flow, &meta).await
    }

    async fn check(
        &self,
        account: &Account,
        flow: &dyn VendorFlow,
        meta: &TokenMeta,
        token: &Secret,
    ) -> Result<Option<bool>> {
        let http = http::client_for(account)?;
        let call = Call::new(account, &http, self.now()).after(Some(meta));
        flow.check(&call, token)
            .await
            .map_err(|e| e.for_account(&account.name))
    }

    /// Renews the named account's token now (rotates a BigFix token).
    pub async fn renew_now(&self, name: &str) -> Result<AccountSummary> {
        let fresh = self
            .token_with(
                name,
                TokenOptions {
                    check: false,
                    force: true,
                },
            )
            .await?;
        if let Some(w) = fresh.warning {
            return Err(w);
        }
        let (account, meta) = self.find(name)?;
        Ok(summarize(&account, meta.as_ref(), self.now()))
    }

    pub(super) async fn renew_single_flight(
        &self,
        account: &Account,
        flow: &dyn VendorFlow,
        seen: &TokenMeta,
    ) -> Result<FreshToken> {
        // Another process may be renewing: then its result is used as soon as it lands.
        let holder = match self.wait_for_lease(account, Some((flow, seen))).await {
            Ok(Leased::Held(holder)) => holder,
            Ok(Leased::Settled(token)) => return Ok(token),
            // A teammate whose policy does not let it renew a shared account gets the
            // token in use while it lasts, told why it was not renewed.
            Err(e) if account.team.is_some() && e.kind() == ErrorKind::Refused => {
                // What cannot be read leaves the refusal as the answer.
                let bundle = self.read_secrets(&account.id).await.unwrap_or_default();
                let now = self.now();
                return match (
                    bundle.get(SecretKind::AccessToken),
                    self.db.token_meta(&account.id)?,
                ) {
                    (Some(t), Some(m)) if m.expires_at.is_none_or(|x| x > now) => {
                        Ok(fresh(flow, t.clone(), Some(m), Some(e)))
                    }
                    _ => Err(e),
                };
            }
            Err(e) => return Err(e),
        };
        self.holding_lease(
            &account.id,
            &holder,
            self.renew_holding_lease(account, flow, seen, &holder),
        )
        .await
    }

    async fn renew_holding_lease(
        &self,
        account: &Account,
        flow: &dyn VendorFlow,
        seen: &TokenMeta,
        holder: &str,
    ) -> Result<FreshToken> {
        let mut bundle = self.read_secrets(&account.id).await?;
        // Between our look and the lease, another process may have renewed.
        let current = self.db.token_meta(&account.id)?;
        if let Some(m) = &current {
            if renewed_since(m, seen, self.now()) {
                if let Some(t) = bundle.get(SecretKind::AccessToken) {
                    return Ok(fresh(flow, t.clone(), Some(m.clone()), None));
                }
            }
        }
        let http = http::client_for(account)?;
        let now = self.now();
        let sink = KeyringSink::new(self, account, Some(holder)).knowing(&bundle);
        let call = Call::new(account, &http, now)
            .after(current.as_ref().or(Some(seen)))
            .rotating_into(&sink);
        match flow.renew(&call, &bundle).await {
            Ok(issued) => {
                // The sink may have stored rotated secrets: then start from what it
                // wrote (under this lease nobody else wrote since).
                let mut bundle = sink.written().unwrap_or(bundle);
                let stored = self
                    .store_issued(
                        account,
                        &mut bundle,
                        &issued,
                        (EventKind::Renewed, now),
                        holder,
                    )
                    .await?;
                Ok(fresh(flow, issued.token, Some(stored), None))
            }
            Err(e) => {
                let e = e.for_account(&account.name);
                let human = matches!(e.kind(), ErrorKind::Refused | ErrorKind::NeedsSignIn);
                self.db.record_failure(
                    &account.id,
                    human,
                    e.message(),
                    (EventKind::Renewal, Outcome::Failed),
                    now,
                )?;
                let still_valid = seen.expires_at.is_none_or(|t| t > now);
                bundle = self.read_secrets(&account.id).await.unwrap_or(bundle);
                match bundle.get(SecretKind::AccessToken) {
                    Some(old) if !human && still_valid => Ok(fresh(
                        flow,
                        old.clone(),
                        current.or(Some(seen.clone())),
                        Some(e.after("renewal failed, the current token is still valid")),
                    )),
                    _ => Err(e),
                }
            }
        }
    }
}

pub(super) fn usable(account: &Account, meta: Option<TokenMeta>) -> Result<TokenMeta> {
    let name = &account.name;
    let meta = meta.ok_or_else(|| {
        Error::needs_sign_in(format!("account '{name}' has not signed in yet"))
            .with_remedy(crate::error::Remedy::sign_in(name, false))
    })?;
    if meta.needs_human {
        let why = meta
            .last_error
            .as_deref()
            .unwrap_or("the vendor refused the stored credentials");
        return Err(Error::needs_sign_in(format!(
            "account '{name}' needs you to sign in again ({why})"
        ))
        .with_remedy(crate::error::Remedy::sign_in(name, false)));
    }
    Ok(meta)
}

/// Another process renewed the token after `seen` was read, and it has not expired:
/// use it rather than renew again (however short its life).
pub(super) fn renewed_since(m: &TokenMeta, seen: &TokenMeta, now: DateTime<Utc>) -> bool {
    m.issued_at != seen.issued_at && !m.needs_human && m.expires_at.is_none_or(|e| e > now)
}

/// A token to hand out, with the facts of that very token: read before the token was
/// (so never newer than it: another process's renewal in between makes them older,
/// and a cache keyed on them asks again), or those stored with it.
pub(super) fn fresh(
    flow: &dyn VendorFlow,
    token: Secret,
    facts: Option<TokenMeta>,
    warning: Option<Error>,
) -> FreshToken {
    let authorization = Secret::new(flow.authorization(&token));
    FreshToken {
        token,
        authorization,
        facts,
        warning,
    }
}

/// The engine drives the vault: it lists accounts from SQLite alone (no keyring read)
/// and renews through the same single-flight path as `tokenkeeper token`.
#[async_trait]
impl crate::engine::Renewer for Vault {
    fn watched(&self) -> Result<Vec<crate::engine::Watched>> {
        Ok(self
            .db
            .accounts()?
            .into_iter()
            .map(|(account, meta)| crate::engine::Watched {
                label: format!(
                    "{} account '{}'",
                    account.vendor.display_name(),
                    account.name
                ),
                id: account.id,
                name: account.name,
                meta,
            })
            .collect())
    }

    async fn renew(&self, name: &str) -> Result<()> {
        // A shared account: a teammate may have renewed it since this vault last
        // looked (the engine's schedule comes from what this vault saw): then its
        // token is the one to use, and renewing again would waste a rotation.
        let (account, before) = self.find(name)?;
        if account.team.is_some() {
            self.read_secrets(&account.id).await?;
            if let (Some(before), Some(after)) = (&before, self.db.token_meta(&account.id)?) {
                if renewed_since(&after, before, self.now()) {
                    return Ok(());
                }
            }
            // Renewed against the facts the engine acted on, not ones read since: a
            // teammate's renewal that lands meanwhile is then seen under the lease
            // and used (a forced renewal would make a second one).
            let flow = flow_for(account.vendor)?;
            let seen = usable(&account, before)?;
            let fresh = self.renew_single_flight(&account, flow, &seen).await?;
            return fresh.warning.map_or(Ok(()), Err);
        }
        self.renew_now(name).await.map(drop)
    }

    fn changes(&self) -> Option<i64> {
        self.db.data_version().ok()
    }

    fn alert_thresholds(&self) -> Option<Vec<Duration>> {
        Vault::alert_thresholds(self).ok()
    }
}

impl crate::engine::AlertLog for Vault {
    fn fired(&self, account_id: &str, deadline: DateTime<Utc>) -> Result<Vec<i64>> {
        self.db.alerts_fired(account_id, deadline)
    }

    fn record(
        &self,
        account_id: &str,
        deadline: DateTime<Utc>,
        thresholds: &[i64],
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.db.record_alerts(account_id, deadline, thresholds, now)
    }
}
