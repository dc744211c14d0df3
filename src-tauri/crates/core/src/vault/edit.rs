//! Editing an account from the window: its address, labels and the vendor's fields.
//! Secrets change only by signing in again; trust only through `set_trust`, which
//! proves the handshake first.

use super::{check_setting, flow_for, summarize, Vault};
use crate::error::{Error, Result};
use crate::forms::AccountEdit;
use crate::http;
use crate::model::AccountSummary;
use crate::vendors::{self, FieldKey};

impl Vault {
    pub fn edit(&self, name: &str, edit: AccountEdit) -> Result<AccountSummary> {
        let (mut account, meta) = self.find(name)?;
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
            check_setting(key, &value)?;
            key.set(&mut account, value);
        }
        // Fails early on an address the account's trust cannot serve.
        http::client_for(&account)?;
        let now = self.now();
        self.db
            .update_account(&account, ("edited", "ok", "settings changed"), now)?;
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
