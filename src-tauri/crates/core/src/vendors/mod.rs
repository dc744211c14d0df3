//! One module per vendor behind one trait: the fields its sign-in form needs, how it
//! signs in, renews and signs out, and how its token goes into a request header.
//! A vendor's quirks stay inside its module.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use ts_rs::TS;

use crate::error::Result;
use crate::model::{Account, Method, TokenMeta, Vendor};
use crate::secret::{Secret, SecretBundle, SecretKind};

pub mod truesight;

/// A non-secret input an account of this vendor and method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum FieldKey {
    Username,
    Tenant,
    IamId,
    ClientId,
}

impl FieldKey {
    /// The CLI flag that carries it.
    pub fn flag(self) -> &'static str {
        match self {
            FieldKey::Username => "--username",
            FieldKey::Tenant => "--tenant",
            FieldKey::IamId => "--iam-id",
            FieldKey::ClientId => "--client-id",
        }
    }

    pub fn value(self, account: &Account) -> Option<&str> {
        match self {
            FieldKey::Username => account.username.as_deref(),
            FieldKey::Tenant => account.tenant.as_deref(),
            FieldKey::IamId => account.iam_id.as_deref(),
            FieldKey::ClientId => account.client_id.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub key: FieldKey,
    pub label: &'static str,
    pub required: bool,
}

/// A sign-in method a vendor offers: its fields and the secret the admin gives.
#[derive(Debug, Clone, Copy)]
pub struct MethodSpec {
    pub method: Method,
    pub fields: &'static [Field],
    /// The secret the admin types; `None` for device-code sign-in.
    pub secret: Option<SecretKind>,
}

/// What a call to a vendor needs, besides secrets.
#[derive(Debug)]
pub struct Call<'a> {
    pub account: &'a Account,
    pub http: &'a reqwest::Client,
    pub now: DateTime<Utc>,
}

/// A token the vendor issued, its facts, and any secret the vendor rotated.
#[derive(Debug)]
pub struct Issued {
    pub token: Secret,
    pub meta: TokenMeta,
    /// Secrets that replace the stored ones (a rotated refresh token).
    pub rotated: Vec<(SecretKind, Secret)>,
}

#[async_trait]
pub trait VendorFlow: Send + Sync {
    fn vendor(&self) -> Vendor;

    fn methods(&self) -> &'static [MethodSpec];

    /// Signs in with what the admin gave (in `secrets`).
    async fn sign_in(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<Issued>;

    /// Renews the token with what is stored, without a human.
    async fn renew(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<Issued> {
        self.sign_in(call, secrets).await
    }

    /// Ends the session on the vendor's side, where the vendor offers it.
    async fn sign_out(&self, _call: &Call<'_>, _secrets: &SecretBundle) -> Result<()> {
        Ok(())
    }

    /// The `Authorization` header value that carries `token`.
    fn authorization(&self, token: &Secret) -> String {
        format!("Bearer {}", token.expose())
    }
}

/// The flow for a vendor, or `None` where Tokenkeeper does not sign in to it yet.
pub fn flow_for(vendor: Vendor) -> Option<&'static dyn VendorFlow> {
    match vendor {
        Vendor::Truesight => Some(&truesight::TrueSight),
        _ => None,
    }
}

pub fn method_spec(flow: &dyn VendorFlow, method: Method) -> Option<&'static MethodSpec> {
    flow.methods().iter().find(|m| m.method == method)
}
