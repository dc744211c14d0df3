//! What the CLI and the window list and show: read from the database alone, never
//! the keyring.

use chrono::{DateTime, Utc};

use super::Vault;
use crate::error::Result;
use crate::model::{Account, AccountDetail, AccountSummary, TokenMeta, TokenState};

impl Vault {
    /// Every account with its state. Reads only the database, never the keyring.
    pub fn list(&self) -> Result<Vec<AccountSummary>> {
        let now = self.now();
        Ok(self
            .db
            .accounts()?
            .into_iter()
            .map(|(a, m)| summarize(&a, m.as_ref(), now))
            .collect())
    }

    pub fn show(&self, name: &str) -> Result<AccountDetail> {
        let (account, meta) = self.find(name)?;
        let now = self.now();
        Ok(AccountDetail {
            summary: summarize(&account, meta.as_ref(), now),
            tenant: account.tenant.clone(),
            iam_id: account.iam_id.clone(),
            client_id: account.client_id.clone(),
            trusts_custom_ca: account.ca_cert_pem.is_some(),
            settings: account.settings.clone(),
            created_at_ms: account.created_at.timestamp_millis(),
            issued_at_ms: meta.as_ref().map(|m| m.issued_at.timestamp_millis()),
            renew_at_ms: meta
                .as_ref()
                .and_then(TokenMeta::renew_at)
                .map(|t| t.timestamp_millis()),
            events: self.db.events(&account.id, 50)?,
        })
    }
}

pub(super) fn summarize(
    a: &Account,
    meta: Option<&TokenMeta>,
    now: DateTime<Utc>,
) -> AccountSummary {
    AccountSummary {
        id: a.id.clone(),
        name: a.name.clone(),
        vendor: a.vendor,
        vendor_name: a.vendor.display_name().to_string(),
        base_url: a.base_url.clone(),
        method: a.method,
        username: a.username.clone(),
        labels: a.labels.clone(),
        state: meta
            .map(|m| m.state(now))
            .unwrap_or(TokenState::NeedsSignIn),
        expires_at_ms: meta
            .and_then(|m| m.expires_at)
            .map(|t| t.timestamp_millis()),
        human_deadline_ms: meta
            .and_then(|m| m.human_deadline)
            .map(|t| t.timestamp_millis()),
        renews_with: meta.map(|m| m.renews_with),
        last_error: meta.and_then(|m| m.last_error.clone()),
        team: a.team.clone(),
    }
}
