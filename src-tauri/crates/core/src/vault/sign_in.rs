//! Signing in again, with a typed secret or through the browser, under the account's
//! lease; and storing what a vendor issued, keyring first, so nothing is lost midway.

use chrono::{DateTime, Utc};

use super::lease::KeyringSink;
use super::listing::summarize;
use super::{flow_for, Vault};
use crate::error::{Error, ErrorKind, Result};
use crate::http;
use crate::model::{Account, AccountSummary, EventKind, Outcome, TokenMeta};
use crate::secret::{Secret, SecretBundle, SecretKind};
use crate::vendors::{self, Call, DevicePrompt, Issued};

impl Vault {
    /// Signs in again, with a new secret if given, else the stored one. Holds the
    /// account's lease, so a renewal in another process never overwrites the result.
    pub async fn login(&self, name: &str, secret: Option<Secret>) -> Result<AccountSummary> {
        let (account, _) = self.find(name)?;
        let holder = self.take_lease(&account).await?;
        self.holding_lease(
            &account.id,
            &holder,
            self.login_holding_lease(name, secret, &holder),
        )
        .await
    }

    async fn login_holding_lease(
        &self,
        name: &str,
        secret: Option<Secret>,
        holder: &str,
    ) -> Result<AccountSummary> {
        // Read under the lease: what another process renewed meanwhile is current.
        let (account, meta) = self.find(name)?;
        let flow = flow_for(account.vendor)?;
        let spec = vendors::method_spec(flow, account.method).ok_or_else(|| {
            Error::internal(format!("account '{name}' has a method its vendor lacks"))
        })?;
        let mut bundle = self.read_secrets(&account.id).await?;
        let given = secret.is_some();
        if let (Some(kind), Some(s)) = (spec.secret, secret) {
            bundle.set(kind, s);
        }
        if let Some(kind) = spec.secret {
            if bundle.get(kind).is_none() {
                return Err(Error::needs_sign_in(format!(
                    "no {} is stored for account '{name}'",
                    kind.label()
                ))
                .with_remedy(crate::error::Remedy::sign_in(name, true)));
            }
        }
        let http = http::client_for(&account)?;
        let now = self.now();
        let sink = KeyringSink::new(self, &account, Some(holder));
        let call = Call::new(&account, &http, now)
            .after(meta.as_ref())
            .rotating_into(&sink);
        let issued = match flow.sign_in(&call, &bundle).await {
            Ok(i) => i,
            Err(e) => return Err(self.record_sign_in_failure(&account, e, given, now)?),
        };
        let stored = self
            .store_issued(
                &account,
                &mut bundle,
                &issued,
                (EventKind::SignedIn, now),
                holder,
            )
            .await?;
        // Some vendors leave the previous session alive (BigFix's old token).
        if let Some(note) = flow.after_sign_in(&call, &bundle).await {
            self.db
                .record_event(&account.id, (note.kind, note.outcome, &note.detail), now)?;
        }
        Ok(summarize(&account, Some(&stored), now))
    }

    pub(super) fn record_sign_in_failure(
        &self,
        account: &Account,
        e: Error,
        given: bool,
        now: DateTime<Utc>,
    ) -> Result<Error> {
        let e = e.for_account(&account.name);
        let refused = e.kind() == ErrorKind::Refused;
        // A refused stored secret needs a human; a refused new one changes nothing.
        if refused && !given && self.db.token_meta(&account.id)?.is_some() {
            self.db.record_failure(
                &account.id,
                true,
                e.message(),
                (EventKind::SignIn, Outcome::Refused),
                now,
            )?;
        } else {
            self.db.record_event(
                &account.id,
                (EventKind::SignIn, Outcome::Failed, e.message()),
                now,
            )?;
        }
        Ok(e)
    }

    /// Stores what a vendor issued, under `holder`'s lease: the keyring first, then
    /// the metadata, with an absurd lifetime bounded (and the history saying so).
    /// Returns the metadata as stored.
    pub(super) async fn store_issued(
        &self,
        account: &Account,
        bundle: &mut SecretBundle,
        issued: &Issued,
        (kind, now): (EventKind, DateTime<Utc>),
        holder: &str,
    ) -> Result<TokenMeta> {
        apply_issued(bundle, issued);
        self.fence(account, holder)?;
        let mut meta = issued.meta.clone();
        let clamped = meta.clamp_lifetime(crate::model::min_renewal_interval());
        self.write_secrets(account, bundle, Some(&meta)).await?;
        let note = [issued.note.as_deref(), clamped.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ");
        self.db
            .put_token_meta(&account.id, &meta, (kind, Outcome::Ok, &note), now)?;
        Ok(meta)
    }

    /// Signs in through the browser (device-code accounts): `prompt` is called once
    /// with the code and the address to open, then this waits for the approval, or
    /// until `cancel` completes. Once approved, storing what was issued is not
    /// cancelled, so the keyring and the database never disagree.
    pub async fn login_device(
        &self,
        name: &str,
        prompt: impl FnOnce(&DevicePrompt) + Send,
        cancel: impl std::future::Future<Output = ()> + Send,
    ) -> Result<AccountSummary> {
        let (account, meta) = self.find(name)?;
        let flow = flow_for(account.vendor)?;
        let http = http::client_for(&account)?;
        let now = self.now();
        // No lease while the admin approves (minutes): renewals go on meanwhile. The
        // sink takes it at the first write, and storing the result holds it.
        let sink = KeyringSink::new(self, &account, None);
        let call = Call::new(&account, &http, now)
            .after(meta.as_ref())
            .rotating_into(&sink);
        let code = flow
            .start_device(&call)
            .await
            .map_err(|e| e.for_account(name))?;
        prompt(&DevicePrompt::from(&code));
        self.db.record_event(
            &account.id,
            (
                EventKind::SignIn,
                Outcome::Started,
                "waiting for approval in the browser",
            ),
            now,
        )?;
        let approved = tokio::select! {
            r = flow.finish_device(&call, &code) => r,
            () = cancel => {
                if let Some(h) = sink.taken() {
                    self.release_lease(&account.id, &h).await;
                }
                self.db.record_event(
                    &account.id,
                    (EventKind::SignIn, Outcome::Cancelled, "the browser sign-in was cancelled"),
                    self.now(),
                )?;
                return Err(Error::usage(format!(
                    "the browser sign-in of '{name}' was cancelled: sign in again when ready"
                )));
            }
        };
        let issued = match approved {
            Ok(i) => i,
            Err(e) => {
                if let Some(h) = sink.taken() {
                    self.release_lease(&account.id, &h).await;
                }
                return Err(self.record_sign_in_failure(&account, e, true, self.now())?);
            }
        };
        let holder = match sink.lease().await {
            Ok(h) => h,
            Err(e) => return Err(self.record_sign_in_failure(&account, e, true, self.now())?),
        };
        let now = self.now();
        let stored = self
            .holding_lease(&account.id, &holder, async {
                let mut bundle = self.read_secrets(&account.id).await?;
                self.store_issued(
                    &account,
                    &mut bundle,
                    &issued,
                    (EventKind::SignedIn, now),
                    &holder,
                )
                .await
            })
            .await?;
        Ok(summarize(&account, Some(&stored), now))
    }
}

pub(super) fn apply_issued(bundle: &mut SecretBundle, issued: &Issued) {
    bundle.set(SecretKind::AccessToken, issued.token.clone());
    for (kind, secret) in &issued.rotated {
        bundle.set(*kind, secret.clone());
    }
}
