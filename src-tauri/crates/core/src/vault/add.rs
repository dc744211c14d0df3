//! Adding an account: what the admin described, checked against the vendor's
//! sign-in methods, and stored only once the first sign-in (if asked for) worked.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::listing::summarize;
use super::sign_in::apply_issued;
use super::{flow_for, item_for, Vault};
use crate::error::{Error, Result};
use crate::fields::{FieldKey, MethodSpec, NewAccount};
use crate::http;
use crate::model::{Account, AccountSummary, EventKind, Outcome, Vendor};
use crate::secret::{Secret, SecretBundle};
use crate::vendors::{self, Call, VendorFlow};

impl Vault {
    /// The sign-in methods and fields of a vendor, for forms and validation.
    pub fn methods(vendor: Vendor) -> Result<&'static [MethodSpec]> {
        Ok(flow_for(vendor)?.methods())
    }

    /// Adds an account. With `sign_in`, signs in first and stores nothing unless it works.
    pub async fn add(
        &self,
        new: NewAccount,
        secret: Option<Secret>,
        sign_in: bool,
    ) -> Result<AccountSummary> {
        let (account, spec) = self.validate(new)?;
        let mut bundle = SecretBundle::default();
        match (spec.secret, secret) {
            (Some(kind), Some(s)) if !s.is_empty() => bundle.set(kind, s),
            (Some(kind), _) => {
                return Err(Error::usage(format!(
                "account '{}' needs a {}: give it on stdin with --secret-stdin, or at the prompt",
                account.name,
                kind.label()
            )))
            }
            (None, _) => {}
        }
        if self.db.account_by_name(&account.name)?.is_some() {
            return Err(Error::usage(format!(
                "an account named '{}' already exists",
                account.name
            )));
        }
        let now = self.now();
        // A device-code account signs in after it exists (`login_device`).
        let issued = if sign_in && spec.secret.is_some() {
            let http = http::client_for(&account)?;
            let call = Call::new(&account, &http, now);
            let flow = flow_for(account.vendor)?;
            Some(
                flow.sign_in(&call, &bundle)
                    .await
                    .map_err(|e| e.for_account(&account.name))?,
            )
        } else {
            None
        };
        if let Some(issued) = &issued {
            apply_issued(&mut bundle, issued);
        }
        self.write_secrets(&account, &bundle, None).await?;
        let event = if issued.is_some() {
            (EventKind::SignedIn, Outcome::Ok, "added and signed in")
        } else {
            (EventKind::Added, Outcome::Ok, "added without signing in")
        };
        if let Err(e) =
            self.db
                .insert_account(&account, issued.as_ref().map(|i| &i.meta), event, now)
        {
            let _ = self.store.delete(&item_for(&account.id));
            return Err(e);
        }
        Ok(summarize(&account, issued.as_ref().map(|i| &i.meta), now))
    }

    /// The sign-in method a new account will use: the one asked for, or else the
    /// vendor's first method that takes every field given (Immuta with a username
    /// signs in with a password, without one with an API key).
    pub fn method_for(new: &NewAccount) -> Result<&'static MethodSpec> {
        let vendor = new
            .vendor
            .ok_or_else(|| Error::usage("give the vendor with --vendor"))?;
        method_in(flow_for(vendor)?, new)
    }

    pub(super) fn validate(&self, new: NewAccount) -> Result<(Account, &'static MethodSpec)> {
        let vendor = new
            .vendor
            .ok_or_else(|| Error::usage("give the vendor with --vendor"))?;
        account_from(flow_for(vendor)?, new, self.now())
    }
}

/// The sign-in method of `flow` a new account will use.
pub fn method_in(flow: &dyn VendorFlow, new: &NewAccount) -> Result<&'static MethodSpec> {
    let vendor = flow.vendor();
    if let Some(m) = new.method {
        return vendors::method_spec(flow, m).ok_or_else(|| {
            Error::usage(format!(
                "{} does not sign in with '{}': use {}",
                vendor.display_name(),
                m.id(),
                flow.methods()
                    .iter()
                    .map(|s| s.method.id())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ))
        });
    }
    let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    let mut keys: Vec<FieldKey> = [
        (FieldKey::Username, given(&new.username)),
        (FieldKey::Tenant, given(&new.tenant)),
        (FieldKey::IamId, given(&new.iam_id)),
        (FieldKey::ClientId, given(&new.client_id)),
    ]
    .into_iter()
    .filter_map(|(k, g)| g.then_some(k))
    .collect();
    keys.extend(new.settings.iter().map(|(k, _)| *k));
    let methods = flow.methods();
    Ok(methods
        .iter()
        .find(|m| keys.iter().all(|k| m.fields.iter().any(|f| f.key == *k)))
        .unwrap_or(&methods[0]))
}

/// The account `new` describes, checked against `flow`'s methods and settings: what
/// any vendor, a new one included, gets from its declared fields and hooks.
pub fn account_from(
    flow: &dyn VendorFlow,
    new: NewAccount,
    now: DateTime<Utc>,
) -> Result<(Account, &'static MethodSpec)> {
    let name = new.name.trim().to_string();
    if name.is_empty()
        || name.len() > 64
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(Error::usage(format!(
            "'{name}' is not a usable account name: use 1 to 64 characters without spaces"
        )));
    }
    let vendor = flow.vendor();
    let spec = method_in(flow, &new)?;
    let base_url = http::normalize_base_url(&new.base_url)?;
    let clean = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let mut account = Account {
        id: uuid::Uuid::new_v4().to_string(),
        name,
        vendor,
        base_url,
        method: spec.method,
        username: clean(new.username),
        tenant: clean(new.tenant),
        iam_id: clean(new.iam_id),
        client_id: clean(new.client_id),
        ca_cert_pem: clean(new.ca_cert_pem),
        labels: new
            .labels
            .into_iter()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
        created_at: now,
        settings: BTreeMap::new(),
        team: None,
    };
    for (key, value) in new.settings {
        let Some(value) = clean(Some(value)) else {
            continue;
        };
        if !spec.fields.iter().any(|f| f.key == key) {
            return Err(Error::usage(format!(
                "{} does not apply to {} accounts that sign in with '{}'",
                key.flag(),
                vendor.display_name(),
                spec.method.id()
            )));
        }
        flow.check_setting(key, &value)?;
        key.set(&mut account, value);
    }
    if let Some(pin) = clean(new.pin_sha256) {
        if account.ca_cert_pem.is_some() {
            // A pin is checked first and would leave the CA unused without a word.
            return Err(Error::usage(
                "give either --ca-cert FILE or --pin-sha256 FINGERPRINT, not both",
            ));
        }
        if !account.base_url.starts_with("https://") {
            return Err(Error::usage("--pin-sha256 needs an https:// instance URL"));
        }
        account
            .settings
            .insert(http::PIN_SETTING.to_string(), http::normalize_pin(&pin)?);
    }
    let missing: Vec<&str> = spec
        .fields
        .iter()
        .filter(|f| f.required && f.key.value(&account).is_none())
        .map(|f| f.key.flag())
        .collect();
    if !missing.is_empty() {
        return Err(Error::usage(format!(
            "{} sign-in with '{}' needs {}",
            vendor.display_name(),
            spec.method.id(),
            missing.join(", ")
        )));
    }
    // Fails early on a CA file that is not PEM.
    http::client_for(&account)?;
    Ok((account, spec))
}
