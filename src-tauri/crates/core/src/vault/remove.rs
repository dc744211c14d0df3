//! Removing an account: its session ended at the vendor where offered, then its
//! secrets and records deleted, under the lease so no renewal writes them back.

use std::time::Duration as StdDuration;

use super::{flow_for, item_for, run_blocking, Vault};
use crate::error::{Error, Result};
use crate::http;
use crate::secret::SecretKind;
use crate::vendors::Call;

/// How long `remove` waits for a vendor to end the session before removing anyway.
const SIGN_OUT_DEADLINE: StdDuration = StdDuration::from_secs(10);

/// What `remove` did on the vendor's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignOut {
    Done,
    NotOffered,
    Failed(String),
}

impl Vault {
    /// Removes an account: with `sign_out`, ends its session at the vendor where
    /// offered (revokes a BigFix token) first; then deletes its secrets and records.
    /// A locked keyring stops it before anything is deleted. Holds the account's
    /// lease, so a renewal in flight elsewhere finishes first and cannot write the
    /// secrets back after they were deleted.
    pub async fn remove(&self, name: &str, sign_out: bool) -> Result<SignOut> {
        let (account, _) = self.find(name)?;
        if let Some(team) = self.team_logging_in_with(name)? {
            return Err(Error::usage(format!(
                "account '{name}' is how this machine logs in to team '{team}': connect the \
                 team another way first (`tokenkeeper team connect {team} --userpass USER`, \
                 or --account with another account), then remove it"
            )));
        }
        if account.team.is_some() {
            // A shared account is forgotten here only: its secrets and settings stay
            // in the team store for the teammates (and `team join` lists it again).
            self.db.delete_account(&account.id)?;
            return Ok(SignOut::NotOffered);
        }
        let holder = self.take_lease(&account).await?;
        self.holding_lease(
            &account.id,
            &holder,
            self.remove_holding_lease(name, sign_out),
        )
        .await
    }

    async fn remove_holding_lease(&self, name: &str, sign_out: bool) -> Result<SignOut> {
        let (account, meta) = self.find(name)?;
        let bundle = self.read_secrets(&account.id).await?;
        let outcome = match flow_for(account.vendor) {
            Ok(flow) if sign_out && bundle.get(SecretKind::AccessToken).is_some() => {
                let http = http::client_for(&account)?;
                let call = Call::new(&account, &http, self.now()).after(meta.as_ref());
                match tokio::time::timeout(SIGN_OUT_DEADLINE, flow.sign_out(&call, &bundle)).await {
                    Ok(Ok(())) => SignOut::Done,
                    Ok(Err(e)) => SignOut::Failed(e.message().to_string()),
                    Err(_) => SignOut::Failed("the vendor did not answer in time".into()),
                }
            }
            _ => SignOut::NotOffered,
        };
        let store = self.store.clone();
        let item = item_for(&account.id);
        run_blocking(move || store.delete(&item)).await?;
        self.db.delete_account(&account.id)?;
        Ok(outcome)
    }
}
