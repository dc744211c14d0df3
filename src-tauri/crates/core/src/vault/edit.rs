//! Editing an account from the window: its address, labels and the vendor's fields.
//! Secrets change only by signing in again; trust only through `set_trust`, which
//! proves the handshake first. A new address or user is not sent the stored secrets
//! by a renewal: the account needs the admin's own sign-in first.

use super::listing::summarize;
use super::{flow_for, Vault};
use crate::error::{Error, Result};
use crate::fields::FieldKey;
use crate::forms::AccountEdit;
use crate::http;
use crate::model::{AccountSummary, EventKind, Outcome};
use crate::vendors;

impl Vault {
    /// Holds the account's lease, so that a renewal in flight finishes first and cannot
    /// store its result over the edit (or clear the sign-in a new address needs).
    pub async fn edit(&self, name: &str, edit: AccountEdit) -> Result<AccountSummary> {
        let (account, _) = self.find(name)?;
        let holder = self.take_lease(&account).await?;
        self.holding_lease(&account.id, &holder, self.edit_holding_lease(name, edit))
            .await
    }

    async fn edit_holding_lease(&self, name: &str, edit: AccountEdit) -> Result<AccountSummary> {
        let (mut account, meta) = self.find(name)?;
        let before = (account.base_url.clone(), account.username.clone());
        let flow = flow_for(account.vendor)?;
        let spec = vendors::method_spec(flow, account.method).ok_or_else(|| {
            Error::internal(format!("account '{name}' has a method its vendor lacks"))
        })?;
        account.base_url = http::normalize_base_url(&edit.base_url)?;
        account.labels = edit
            .labels
            .into_iter()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        for (key, value) in edit.fields {
            let field = spec.fields.iter().find(|f| f.key == key).ok_or_else(|| {
                Error::usage(format!(
                    "{} does not apply to {} accounts that sign in with '{}'",
                    key.flag(),
                    account.vendor.display_name(),
                    account.method.id()
                ))
            })?;
            let value = value.trim().to_string();
            if value.is_empty() {
                if field.required {
                    return Err(Error::usage(format!("{} cannot be empty", field.label)));
                }
                clear(&mut account, key);
                continue;
            }
            flow.check_setting(key, &value)?;
            key.set(&mut account, value);
        }
        if account.base_url != before.0 {
            if let Some(team) = self.team_logging_in_with(name)? {
                // The team keeps the address it was connected with: a token from
                // another server would be handed to it.
                return Err(Error::usage(format!(
                    "account '{name}' is how this machine logs in to team '{team}', whose \
                     address stays {}: to move both, connect the team again with an account \
                     on the new server (`tokenkeeper team connect {team} --account ACCOUNT`)",
                    before.0
                )));
            }
        }
        let client = http::client_for(&account)?;
        let moved = before != (account.base_url.clone(), account.username.clone());
        if moved && account.base_url.starts_with("https://") {
            // The new server must pass the account's trust before anything is saved.
            http::handshake(&client, &account.base_url)
                .await
                .map_err(|e| e.for_account(name))?;
        }
        let now = self.now();
        // The method's own fields; trust (the pin) changes only through set_trust.
        let edited: Vec<&str> = spec.fields.iter().map(|f| f.key.id()).collect();
        // A shared account's settings change in its team first (a refusal changes nothing).
        self.publish_shared(&account).await?;
        self.db.update_account(
            &account,
            &edited,
            (EventKind::Edited, Outcome::Ok, "settings changed"),
            now,
        )?;
        if moved && meta.is_some() {
            self.db.record_failure(
                &account.id,
                true,
                &format!(
                    "the address or user of '{name}' changed: sign in again, so that the stored secrets go only where you confirm"
                ),
                (EventKind::Edited, Outcome::NeedsSignIn),
                now,
            )?;
        }
        let (_, meta) = self.find(name)?;
        Ok(summarize(&account, meta.as_ref(), now))
    }
}

fn clear(account: &mut crate::model::Account, key: FieldKey) {
    match key {
        FieldKey::Username => account.username = None,
        FieldKey::Tenant => account.tenant = None,
        FieldKey::IamId => account.iam_id = None,
        FieldKey::ClientId => account.client_id = None,
        other => {
            account.settings.remove(other.id());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::vault::fixtures;
    use std::collections::BTreeMap;

    use chrono::Utc;

    use super::*;

    use crate::fields::NewAccount;
    use crate::model::TokenState;

    async fn vault_with_signed_in_account(dir: &std::path::Path) -> Vault {
        let (vault, _keyring) = fixtures::open(dir);
        let new = NewAccount {
            labels: vec!["prod".into()],
            ..fixtures::truesight_account("ts")
        };
        fixtures::add(&vault, new, "pw").await;
        fixtures::record_token_facts(&vault, "ts", chrono::Duration::hours(1));
        vault
    }

    fn edit(url: &str, user: &str, labels: &[&str]) -> AccountEdit {
        AccountEdit {
            base_url: url.into(),
            fields: BTreeMap::from([(FieldKey::Username, user.to_string())]),
            labels: labels.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn labels_change_in_place_but_a_new_address_or_user_needs_a_sign_in() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault_with_signed_in_account(dir.path()).await;
        let url = "http://127.0.0.1:9/truesight";
        let same = vault
            .edit("ts", edit(url, "ops", &["prod", " eu "]))
            .await
            .unwrap();
        assert_eq!(same.labels, vec!["prod", "eu"]);
        assert_eq!(same.state, TokenState::Valid);

        let moved = vault
            .edit(
                "ts",
                edit("http://127.0.0.1:10/truesight", "ops", &["prod"]),
            )
            .await
            .unwrap();
        assert_eq!(moved.state, TokenState::NeedsSignIn);
        assert!(moved.last_error.unwrap().contains("sign in again"));
        // The stored password is still there for the admin's own sign-in.
        let (account, _) = vault.find("ts").unwrap();
        let bundle = vault.read_secrets(&account.id).await.unwrap();
        assert!(bundle.get(crate::secret::SecretKind::Password).is_some());
    }

    #[tokio::test]
    async fn an_edit_waits_for_a_renewal_in_flight_so_it_cannot_be_undone() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault_with_signed_in_account(dir.path()).await;
        let (account, _) = vault.find("ts").unwrap();
        // A renewal (here, or in another process) holds the account's lease…
        let renewal = vault.take_lease(&account).await.unwrap();
        let moved = edit("http://127.0.0.1:10/truesight", "ops", &["prod"]);
        let waited = tokio::time::timeout(
            std::time::Duration::from_millis(400),
            vault.edit("ts", moved.clone()),
        )
        .await;
        assert!(
            waited.is_err(),
            "the edit went ahead under a renewal's lease"
        );
        let (unchanged, _) = vault.find("ts").unwrap();
        assert_eq!(unchanged.base_url, "http://127.0.0.1:9/truesight");
        // …and once it stored its result, the edit runs and its sign-in marker holds.
        vault
            .database()
            .release_lease(&account.id, &renewal)
            .unwrap();
        let after = vault.edit("ts", moved).await.unwrap();
        assert_eq!(after.state, TokenState::NeedsSignIn);
    }

    #[tokio::test]
    async fn an_edit_keeps_a_pin_set_while_it_ran() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault_with_signed_in_account(dir.path()).await;
        // The edit read the account before set_trust pinned a certificate...
        let (stale, _) = vault.find("ts").unwrap();
        let mut pinned = stale.settings.clone();
        pinned.insert(crate::http::PIN_SETTING.to_string(), "ab".repeat(32));
        vault
            .database()
            .set_trust(&stale.id, None, &pinned)
            .unwrap();
        // ...and writes what it read: only its own fields replace what is stored.
        let mut edited = stale.clone();
        edited.labels = vec!["x".into()];
        vault
            .database()
            .update_account(
                &edited,
                &["token_duration"],
                (EventKind::Edited, Outcome::Ok, ""),
                Utc::now(),
            )
            .unwrap();
        let (after, _) = vault.find("ts").unwrap();
        assert_eq!(
            after.settings.get(crate::http::PIN_SETTING),
            Some(&"ab".repeat(32))
        );
        assert_eq!(after.labels, vec!["x"]);
    }

    #[tokio::test]
    async fn an_edit_that_breaks_a_rule_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault_with_signed_in_account(dir.path()).await;
        let url = "http://127.0.0.1:9/truesight";
        let cleared = vault.edit("ts", edit(url, " ", &[])).await.unwrap_err();
        assert!(cleared.message().contains("cannot be empty"), "{cleared}");
        let mut foreign = edit(url, "ops", &[]);
        foreign.fields.insert(FieldKey::ClientId, "x".into());
        assert!(vault.edit("ts", foreign).await.is_err());
        assert!(vault.edit("ts", edit("ftp://x", "ops", &[])).await.is_err());
        let (account, meta) = vault.find("ts").unwrap();
        assert_eq!(account.labels, vec!["prod"]);
        assert_eq!(account.username.as_deref(), Some("ops"));
        assert!(!meta.unwrap().needs_human);
    }
}
