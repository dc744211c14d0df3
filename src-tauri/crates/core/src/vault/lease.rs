//! How a renewal is fenced: one process at a time holds an account's lease (a row in
//! the database, with a heartbeat), waits while another holds it, and checks it still
//! holds it just before each write of secrets, so a late holder never writes over a
//! newer token. Rotated secrets are stored under the same lease (`KeyringSink`).

use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::Duration;

use super::database;
use super::teams::TeamTake;
use super::{FreshToken, Vault};
use crate::error::{Error, Result};
use crate::model::{Account, TokenMeta};
use crate::secret::{Secret, SecretBundle, SecretKind};
use crate::vendors::{RotationSink, VendorFlow};

/// How long a renewal lease holds before another process may take over.
const LEASE_TTL: Duration = Duration::seconds(90);

/// How often a process waiting on another's renewal looks again.
const LEASE_POLL: StdDuration = StdDuration::from_millis(100);

/// How long a renewal of a shared account waits out a team store that does not
/// answer (a leader election takes seconds) before saying so.
const TEAM_AWAY_PATIENCE: StdDuration = StdDuration::from_secs(15);

/// How often a holder extends its lease while its vendor calls run, so a slow vendor
/// (two calls of a long HTTP timeout each) never lets the lease lapse mid-renewal.
const LEASE_HEARTBEAT: StdDuration = StdDuration::from_secs(15);

/// Stores secrets a vendor rotated mid-flow into the account's keyring item, under
/// the account's lease, so no other process's renewal writes in between.
pub(super) struct KeyringSink<'a> {
    vault: &'a Vault,
    account: &'a Account,
    /// The lease the writes are made under: the caller's, or taken at the first write
    /// (a browser sign-in holds none while it waits for the admin's approval).
    holder: std::sync::Mutex<Option<String>>,
    /// Whether anything was stored: if not, what the caller read is still current.
    stored: std::sync::atomic::AtomicBool,
    /// The account's secrets as last read or written under the lease: a rotated
    /// secret is written over them without reading the keyring again, so the window
    /// between the vendor's answer and the keyring write is one D-Bus call, not two.
    known: std::sync::Mutex<Option<SecretBundle>>,
}

impl<'a> KeyringSink<'a> {
    /// Writes under `holder`'s lease, or (None) under one taken at the first write.
    pub(super) fn new(vault: &'a Vault, account: &'a Account, holder: Option<&str>) -> Self {
        Self {
            vault,
            account,
            holder: std::sync::Mutex::new(holder.map(str::to_string)),
            stored: std::sync::atomic::AtomicBool::new(false),
            known: std::sync::Mutex::new(None),
        }
    }

    /// The sink of a caller that read `bundle` under the lease it holds.
    pub(super) fn knowing(self, bundle: &SecretBundle) -> Self {
        *self.known.lock().unwrap_or_else(|p| p.into_inner()) = Some(bundle.clone());
        self
    }

    /// What the sink last wrote, if it wrote anything.
    pub(super) fn written(&self) -> Option<SecretBundle> {
        if !self.stored() {
            return None;
        }
        self.known.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn stored(&self) -> bool {
        self.stored.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The lease taken so far, if any.
    pub(super) fn taken(&self) -> Option<String> {
        self.holder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The lease the writes are made under, taken now if the caller held none.
    pub(super) async fn lease(&self) -> Result<String> {
        if let Some(h) = self.taken() {
            return Ok(h);
        }
        let h = self.vault.take_lease(self.account).await?;
        *self.holder.lock().unwrap_or_else(|p| p.into_inner()) = Some(h.clone());
        Ok(h)
    }
}

#[async_trait]
impl RotationSink for KeyringSink<'_> {
    async fn store_rotated(&self, rotated: &[(SecretKind, Secret)]) -> Result<()> {
        let holder = self.lease().await?;
        self.vault.fence(self.account, &holder)?;
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut bundle = match known {
            Some(b) => b,
            None => self.vault.read_secrets(&self.account.id).await?,
        };
        for (kind, secret) in rotated {
            bundle.set(*kind, secret.clone());
        }
        self.vault
            .write_secrets(self.account, &bundle, None)
            .await?;
        *self.known.lock().unwrap_or_else(|p| p.into_inner()) = Some(bundle);
        self.stored.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

impl Vault {
    /// Waits for the account's lease (another process may be renewing it) and takes it.
    pub(super) async fn take_lease(&self, account: &Account) -> Result<String> {
        match self.wait_for_lease(account, None).await? {
            Leased::Held(holder) => Ok(holder),
            Leased::Settled(_) => Err(Error::internal(
                "a wait for a lease ended on a token nobody asked for",
            )),
        }
    }

    /// Takes the account's lease, waiting while another process holds it. Given a
    /// `renewal` (how to hand a token out, and the token facts the caller saw), a
    /// renewal that the other process finishes meanwhile ends the wait with its token.
    pub(super) async fn wait_for_lease(
        &self,
        account: &Account,
        renewal: Option<(&dyn VendorFlow, &TokenMeta)>,
    ) -> Result<Leased> {
        let holder = database::lease_holder();
        let give_up = tokio::time::Instant::now()
            + StdDuration::from_secs(LEASE_TTL.num_seconds() as u64 + 10);
        loop {
            let now = self.now();
            if self
                .db
                .try_lease(&account.id, &holder, now + LEASE_TTL, now)?
            {
                break;
            }
            tokio::time::sleep(LEASE_POLL).await;
            if let Some((flow, seen)) = renewal {
                if let Some(token) = self.renewed_elsewhere(account, flow, seen).await? {
                    return Ok(Leased::Settled(token));
                }
            }
            if tokio::time::Instant::now() > give_up {
                return Err(busy(account));
            }
        }
        if account.team.is_none() {
            return Ok(Leased::Held(holder));
        }
        // A shared account: this machine's lease is held; now the team's, which
        // another machine may hold.
        match self.wait_for_team_lease(account, renewal).await {
            Ok(Some(token)) => {
                let _ = self.db.release_lease(&account.id, &holder);
                Ok(Leased::Settled(token))
            }
            Ok(None) => Ok(Leased::Held(holder)),
            Err(e) => {
                let _ = self.db.release_lease(&account.id, &holder);
                Err(e)
            }
        }
    }

    /// Takes a shared account's team lease, waiting while another machine holds it;
    /// a renewal that machine finishes meanwhile ends the wait with its token. A team
    /// store that does not answer is waited out for `TEAM_AWAY_PATIENCE`.
    async fn wait_for_team_lease(
        &self,
        account: &Account,
        renewal: Option<(&dyn VendorFlow, &TokenMeta)>,
    ) -> Result<Option<FreshToken>> {
        let give_up = tokio::time::Instant::now()
            + StdDuration::from_secs(crate::team::LEASE_TTL.num_seconds() as u64 + 10);
        let mut away_since: Option<tokio::time::Instant> = None;
        let mut wait = LEASE_POLL;
        loop {
            match self.try_team_lease(account).await? {
                TeamTake::Taken => return Ok(None),
                TeamTake::Held => away_since = None,
                TeamTake::Away(e) => {
                    let since = *away_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() > TEAM_AWAY_PATIENCE {
                        return Err(e);
                    }
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(StdDuration::from_secs(1));
            if let Some((flow, seen)) = renewal {
                // The other machine's token, once it lands in the team store.
                if self.read_secrets(&account.id).await.is_ok() {
                    if let Some(token) = self.renewed_elsewhere(account, flow, seen).await? {
                        return Ok(Some(token));
                    }
                }
            }
            if tokio::time::Instant::now() > give_up {
                return Err(busy(account));
            }
        }
    }

    /// Gives back the account's lease: this machine's, and the team's if held.
    pub(super) async fn release_lease(&self, account_id: &str, holder: &str) {
        self.release_team_lease(account_id).await;
        let _ = self.db.release_lease(account_id, holder);
    }

    /// Runs `work` while holding `holder`'s lease on the account, extending it every
    /// `LEASE_HEARTBEAT`, then releases it.
    pub(super) async fn holding_lease<T>(
        &self,
        account_id: &str,
        holder: &str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.holding_lease_every(LEASE_HEARTBEAT, account_id, holder, work)
            .await
    }

    pub(super) async fn holding_lease_every<T>(
        &self,
        heartbeat: StdDuration,
        account_id: &str,
        holder: &str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        // Released even if this future is dropped midway (a cancelled caller).
        let mut guard = LeaseRelease {
            vault: self,
            account_id,
            holder,
            armed: true,
        };
        let result = {
            tokio::pin!(work);
            let mut beat = tokio::time::interval(heartbeat);
            beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            beat.tick().await;
            loop {
                tokio::select! {
                    r = &mut work => break r,
                    _ = beat.tick() => {
                        // A lapse is caught by `fence` before the next write.
                        let _ = self.db.extend_lease(account_id, holder, self.now() + LEASE_TTL);
                        self.extend_team_lease(account_id).await;
                    }
                }
            }
        };
        guard.armed = false;
        self.release_team_lease(account_id).await;
        let released = self.db.release_lease(account_id, holder);
        let value = result?;
        released?;
        Ok(value)
    }

    /// Checks, just before a write of secrets, that `holder` still holds the lease
    /// (and extends it). If it lapsed (the machine slept, a vendor hung past the
    /// lease) another process may have renewed since: its secrets are the newer ones,
    /// and this process writes nothing.
    pub(super) fn fence(&self, account: &Account, holder: &str) -> Result<()> {
        if self
            .db
            .extend_lease(&account.id, holder, self.now() + LEASE_TTL)?
        {
            Ok(())
        } else {
            Err(Error::vault(format!(
                "another Tokenkeeper process took over account '{}' while this one waited \
                 for the vendor, so this one stored nothing; try again",
                account.name
            )))
        }
    }
}

fn busy(account: &Account) -> Error {
    Error::vault(format!(
        "another Tokenkeeper process has been renewing or signing in account '{}' for over {} s; \
         try again",
        account.name,
        LEASE_TTL.num_seconds()
    ))
}

/// What waiting for a lease ended in.
pub(super) enum Leased {
    /// The lease, under this holder name.
    Held(String),
    /// Another process renewed meanwhile: its token.
    Settled(FreshToken),
}

/// Releases a lease when the work holding it is dropped before it finished.
struct LeaseRelease<'a> {
    vault: &'a Vault,
    account_id: &'a str,
    holder: &'a str,
    armed: bool,
}

impl Drop for LeaseRelease<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.vault.drop_team_lease(self.account_id);
            let _ = self.vault.db.release_lease(self.account_id, self.holder);
        }
    }
}

#[cfg(test)]
mod lease_tests {
    use crate::vault::fixtures;
    use std::path::Path;
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::error::ErrorKind;

    use crate::secret_store::MemoryKeyring;

    async fn vault_with_account(
        dir: &Path,
    ) -> (Vault, Arc<MemoryKeyring>, Arc<ManualClock>, Account) {
        let keyring = Arc::new(MemoryKeyring::default());
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let vault = Vault::open_with(dir, keyring.clone(), clock.clone()).unwrap();
        fixtures::add(&vault, fixtures::truesight_account("ba"), "pw-0123").await;
        let (account, _) = vault.find("ba").unwrap();
        (vault, keyring, clock, account)
    }

    fn rotated(value: &str) -> [(SecretKind, Secret); 1] {
        [(SecretKind::RefreshToken, Secret::new(value))]
    }

    #[tokio::test]
    async fn a_rotated_secret_is_written_without_reading_the_keyring_again() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, keyring, _clock, account) = vault_with_account(dir.path()).await;
        let holder = vault.take_lease(&account).await.unwrap();
        let bundle = vault.read_secrets(&account.id).await.unwrap();
        let (reads, writes) = (keyring.reads(), keyring.writes());
        let sink = KeyringSink::new(&vault, &account, Some(&holder)).knowing(&bundle);
        sink.store_rotated(&rotated("rt-rotated-0001"))
            .await
            .unwrap();
        // Between the vendor's answer and the keyring write: one write, no read.
        assert_eq!(keyring.reads(), reads, "the sink read the keyring again");
        assert_eq!(keyring.writes(), writes + 1);
        let stored = vault.read_secrets(&account.id).await.unwrap();
        assert_eq!(
            stored.get(SecretKind::RefreshToken).unwrap().expose(),
            "rt-rotated-0001"
        );
        assert_eq!(
            stored.get(SecretKind::Password).unwrap().expose(),
            "pw-0123"
        );
        assert_eq!(sink.written().unwrap(), stored);
    }

    #[tokio::test]
    async fn a_holder_whose_lease_lapsed_and_was_taken_over_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, keyring, clock, account) = vault_with_account(dir.path()).await;
        let slow = vault.take_lease(&account).await.unwrap();
        // The machine slept past the lease; another process took it and rotated.
        clock.advance(LEASE_TTL + Duration::seconds(1));
        let other = vault.take_lease(&account).await.unwrap();
        KeyringSink::new(&vault, &account, Some(&other))
            .store_rotated(&rotated("rt-newer-0001"))
            .await
            .unwrap();
        let writes = keyring.writes();

        let late = KeyringSink::new(&vault, &account, Some(&slow))
            .store_rotated(&rotated("rt-stale-0000"))
            .await
            .unwrap_err();
        assert_eq!(late.kind(), ErrorKind::Vault);
        assert!(late.message().contains("took over account 'ba'"), "{late}");
        assert_eq!(keyring.writes(), writes, "the late holder wrote nothing");
        let stored = vault.read_secrets(&account.id).await.unwrap();
        assert_eq!(
            stored.get(SecretKind::RefreshToken).unwrap().expose(),
            "rt-newer-0001"
        );
        assert_eq!(
            stored.get(SecretKind::Password).unwrap().expose(),
            "pw-0123",
            "the rest of the bundle is kept"
        );
    }

    #[tokio::test]
    async fn the_heartbeat_keeps_a_slow_holders_lease_past_its_first_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, _keyring, clock, account) = vault_with_account(dir.path()).await;
        let holder = vault.take_lease(&account).await.unwrap();
        // The vault's clock runs 30 s per 60 ms here; the heartbeat beats every 20 ms.
        let beat = StdDuration::from_millis(20);
        let stored = vault
            .holding_lease_every(beat, &account.id, &holder, async {
                // A vendor that takes five minutes, in steps the heartbeat sees.
                for _ in 0..10 {
                    clock.advance(Duration::seconds(30));
                    tokio::time::sleep(StdDuration::from_millis(60)).await;
                    let now = clock.now();
                    let intruder =
                        vault
                            .db
                            .try_lease(&account.id, "other/holder/ns", now + LEASE_TTL, now)?;
                    assert!(!intruder, "the lease lapsed while its holder worked");
                }
                KeyringSink::new(&vault, &account, Some(&holder))
                    .store_rotated(&rotated("rt-after-five-minutes"))
                    .await
            })
            .await;
        stored.unwrap();
        let now = clock.now();
        assert!(
            vault
                .db
                .try_lease(&account.id, "next", now + LEASE_TTL, now)
                .unwrap(),
            "released once the work is done"
        );
    }
}
