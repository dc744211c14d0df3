//! The window's add and edit forms, described by each vendor module's own field list,
//! so the UI generates every form and never hard-codes a vendor's inputs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::fields::{FieldKey, MethodSpec, NewAccount};
use crate::model::{Method, Vendor};
use crate::vendors::{self, VendorFlow};

/// One vendor's sign-in methods, as the add form offers them.
#[derive(Debug, Clone, Serialize, TS)]
pub struct VendorForm {
    pub vendor: Vendor,
    pub vendor_name: String,
    /// The first method is the one suggested.
    pub methods: Vec<MethodForm>,
    /// What the instance URL looks like, as a placeholder.
    pub url_hint: String,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct MethodForm {
    pub method: Method,
    pub label: String,
    /// The secret the admin types once ("password", "API key"); `None` for a
    /// browser sign-in.
    pub secret_label: Option<String>,
    pub fields: Vec<FormField>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct FormField {
    pub key: FieldKey,
    pub label: String,
    pub required: bool,
    pub help: String,
    pub default: Option<String>,
}

/// An account as the add form sends it (the secret travels separately).
#[derive(Debug, Clone, Deserialize, TS)]
pub struct AccountForm {
    pub name: String,
    pub vendor: Vendor,
    pub base_url: String,
    pub method: Method,
    #[ts(type = "Partial<Record<FieldKey, string>>")]
    pub fields: BTreeMap<FieldKey, String>,
    pub labels: Vec<String>,
    /// A CA certificate (PEM) this account trusts for its server (on-prem BigFix).
    pub ca_cert_pem: Option<String>,
    /// Or the SHA-256 of the one certificate the server may present.
    pub pin_sha256: Option<String>,
}

/// What the edit form may change on an existing account.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct AccountEdit {
    pub base_url: String,
    #[ts(type = "Partial<Record<FieldKey, string>>")]
    pub fields: BTreeMap<FieldKey, String>,
    pub labels: Vec<String>,
}

impl AccountForm {
    pub fn into_new_account(self) -> NewAccount {
        let mut new = NewAccount {
            name: self.name,
            vendor: Some(self.vendor),
            base_url: self.base_url,
            method: Some(self.method),
            ca_cert_pem: self.ca_cert_pem.filter(|s| !s.trim().is_empty()),
            pin_sha256: self.pin_sha256.filter(|s| !s.trim().is_empty()),
            labels: self.labels,
            ..NewAccount::default()
        };
        for (key, value) in self.fields {
            new.set_field(key, value);
        }
        new
    }
}

fn method_label(method: Method) -> &'static str {
    match method {
        Method::Password => "Username and password",
        Method::UserToken => "User token",
        Method::ApiKey => "API key",
        Method::DeviceCode => "Sign in with the browser",
    }
}

fn method_form(spec: &MethodSpec) -> MethodForm {
    MethodForm {
        method: spec.method,
        label: method_label(spec.method).to_string(),
        secret_label: spec.secret.map(|k| k.label().to_string()),
        fields: spec
            .fields
            .iter()
            .map(|f| FormField {
                key: f.key,
                label: f.label.to_string(),
                required: f.required,
                help: f.help.to_string(),
                default: f.default.map(str::to_string),
            })
            .collect(),
    }
}

/// The add form of one vendor's flow.
pub fn vendor_form(flow: &dyn VendorFlow) -> VendorForm {
    VendorForm {
        vendor: flow.vendor(),
        vendor_name: flow.vendor().display_name().to_string(),
        methods: flow.methods().iter().map(method_form).collect(),
        url_hint: flow.url_hint().to_string(),
    }
}

/// Every vendor's form, in the order the window offers them.
pub fn vendor_forms() -> Vec<VendorForm> {
    Vendor::ALL
        .iter()
        .filter_map(|&vendor| vendors::flow_for(vendor))
        .map(vendor_form)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vendor_has_a_form_with_its_declared_fields() {
        let forms = vendor_forms();
        assert_eq!(forms.len(), Vendor::ALL.len());
        let bigfix = forms.iter().find(|f| f.vendor == Vendor::Bigfix).unwrap();
        assert_eq!(bigfix.methods[0].secret_label.as_deref(), Some("password"));
        assert!(bigfix.methods[0]
            .fields
            .iter()
            .any(|f| f.key == FieldKey::Username && f.required));
        let biganimal = forms
            .iter()
            .find(|f| f.vendor == Vendor::Biganimal)
            .unwrap();
        assert_eq!(biganimal.methods[0].method, Method::DeviceCode);
        assert_eq!(biganimal.methods[0].secret_label, None);
    }

    #[test]
    fn a_form_becomes_the_account_the_cli_would_add() {
        let form: AccountForm = serde_json::from_value(serde_json::json!({
            "name": "prod", "vendor": "immuta", "base_url": "https://x.example.com",
            "method": "password", "fields": {"username": "ann", "iam_id": "bim"},
            "labels": ["eu"], "ca_cert_pem": " ", "pin_sha256": null
        }))
        .unwrap();
        let new = form.into_new_account();
        assert_eq!(new.username.as_deref(), Some("ann"));
        assert_eq!(new.iam_id.as_deref(), Some("bim"));
        assert_eq!(new.ca_cert_pem, None);
        assert_eq!(new.method, Some(Method::Password));
    }
}
