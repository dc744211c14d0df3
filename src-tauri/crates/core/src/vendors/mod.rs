//! One module per vendor behind one trait: the fields its sign-in form needs, how it
//! signs in, renews and signs out, and how its token goes into a request header.
//! A vendor's quirks stay inside its module.

use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::{Error, Result};
use crate::fields::{FieldKey, MethodSpec};
use crate::model::{Account, Method, Note, TokenMeta, Vendor};
use crate::secret::{Secret, SecretBundle, SecretKind};

pub mod biganimal;
pub mod bigfix;
pub mod bigid;
pub mod immuta;
pub mod jwt;
pub mod oauth;
pub mod oidc;
pub mod openbao;
pub mod truesight;

/// Stores secrets a vendor rotated while a flow is still running, so that a rotated
/// refresh token is in the keyring before the token it bought is used.
#[async_trait]
pub trait RotationSink: Send + Sync {
    async fn store_rotated(&self, rotated: &[(SecretKind, Secret)]) -> Result<()>;
}

/// The sink of a call that must not rotate anything (an account being added, a token
/// check, a sign-out): a vendor that rotates a secret there is answered with an
/// error rather than have the secret dropped.
#[derive(Debug)]
pub struct RotationRefused;

#[async_trait]
impl RotationSink for RotationRefused {
    async fn store_rotated(&self, _rotated: &[(SecretKind, Secret)]) -> Result<()> {
        Err(Error::internal(
            "a vendor rotated a secret in a call that stores none (adding, checking or \
             signing out)",
        ))
    }
}

/// What a call to a vendor needs, besides secrets.
pub struct Call<'a> {
    pub account: &'a Account,
    pub http: &'a reqwest::Client,
    pub now: DateTime<Utc>,
    /// The token facts before this call, if any (to carry deadlines across renewals).
    pub previous: Option<&'a TokenMeta>,
    pub sink: &'a dyn RotationSink,
}

impl std::fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("account", &self.account.name)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl<'a> Call<'a> {
    /// A call for `account` at `now`, with no token before it and no rotation stored.
    pub fn new(account: &'a Account, http: &'a reqwest::Client, now: DateTime<Utc>) -> Self {
        Self {
            account,
            http,
            now,
            previous: None,
            sink: &RotationRefused,
        }
    }

    /// The token facts before this call (to carry deadlines across renewals).
    pub fn after(self, previous: Option<&'a TokenMeta>) -> Self {
        Self { previous, ..self }
    }

    /// Where secrets the vendor rotates mid-flow are stored at once.
    pub fn rotating_into(self, sink: &'a dyn RotationSink) -> Self {
        Self { sink, ..self }
    }

    pub fn name(&self) -> &str {
        &self.account.name
    }

    /// The account's setting for `key`, or the field's default.
    pub fn setting(&self, key: FieldKey, default: &'static str) -> String {
        key.value(self.account).unwrap_or(default).to_string()
    }
}

/// A token the vendor issued, its facts, and any secret the vendor rotated.
#[derive(Debug)]
pub struct Issued {
    pub token: Secret,
    pub meta: TokenMeta,
    /// Secrets that replace the stored ones (a rotated refresh token).
    pub rotated: Vec<(SecretKind, Secret)>,
    /// Something the admin should know, recorded in the history (an old token the
    /// vendor would not revoke).
    pub note: Option<String>,
}

/// A device-code sign-in under way: what the admin must see, and what polling needs.
#[derive(Debug, Clone)]
pub struct DeviceCode {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub interval: StdDuration,
    pub token_endpoint: String,
    pub client_id: String,
    /// Where a vendor exchanges the issuer's token for its own (BigAnimal).
    pub exchange_endpoint: Option<String>,
}

impl DeviceCode {
    /// The address to open in the browser: the complete one when the issuer gives it.
    pub fn browser_url(&self) -> &str {
        self.verification_uri_complete
            .as_deref()
            .unwrap_or(&self.verification_uri)
    }
}

/// What a device-code prompt shows: nothing here is a secret.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct DevicePrompt {
    pub user_code: String,
    pub verification_uri: String,
    pub browser_url: String,
    #[ts(type = "number")]
    pub expires_at_ms: i64,
}

impl From<&DeviceCode> for DevicePrompt {
    fn from(c: &DeviceCode) -> Self {
        Self {
            user_code: c.user_code.clone(),
            verification_uri: c.verification_uri.clone(),
            browser_url: c.browser_url().to_string(),
            expires_at_ms: c.expires_at.timestamp_millis(),
        }
    }
}

#[async_trait]
pub trait VendorFlow: Send + Sync {
    fn vendor(&self) -> Vendor;

    fn methods(&self) -> &'static [MethodSpec];

    /// What an instance URL of this vendor looks like (the add form's placeholder).
    fn url_hint(&self) -> &'static str;

    /// Checks a setting of this vendor's as the admin typed it (a date, a number of
    /// days), before it is stored.
    fn check_setting(&self, _key: FieldKey, _value: &str) -> Result<()> {
        Ok(())
    }

    /// Runs after a sign-in (not a renewal) was stored, with `call.previous` the
    /// token before it: a vendor that leaves the previous session alive ends it here.
    /// Answers what the history should say when that did not work; the sign-in stands.
    async fn after_sign_in(&self, _call: &Call<'_>, _secrets: &SecretBundle) -> Option<Note> {
        None
    }

    /// Signs in with what the admin gave (in `secrets`).
    async fn sign_in(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<Issued>;

    /// Renews the token with what is stored, without a human.
    async fn renew(&self, call: &Call<'_>, secrets: &SecretBundle) -> Result<Issued> {
        self.sign_in(call, secrets).await
    }

    /// Starts a device-code sign-in (RFC 8628) for vendors that sign in that way.
    async fn start_device(&self, call: &Call<'_>) -> Result<DeviceCode> {
        Err(not_device(call))
    }

    /// Polls until the admin approved the device code, then returns the token.
    async fn finish_device(&self, call: &Call<'_>, _code: &DeviceCode) -> Result<Issued> {
        Err(not_device(call))
    }

    /// Asks the vendor whether `token` still works: `Some(false)` when it answers
    /// that the token is invalid or expired, `None` where the vendor has no check.
    async fn check(&self, _call: &Call<'_>, _token: &Secret) -> Result<Option<bool>> {
        Ok(None)
    }

    /// Whether a token that has not expired is still asked about before it is handed
    /// out: a vendor whose long-lived tokens an operator can revoke at any moment
    /// (BigFix's console) is asked, so a revoked token is replaced, not handed out.
    fn checks_before_use(&self) -> bool {
        false
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

fn not_device(call: &Call<'_>) -> Error {
    Error::usage(format!(
        "{} accounts do not sign in with a device code",
        call.account.vendor.display_name()
    ))
}

/// The flow for a vendor.
pub fn flow_for(vendor: Vendor) -> Option<&'static dyn VendorFlow> {
    Some(match vendor {
        Vendor::Truesight => &truesight::TrueSight,
        Vendor::Bigid => &bigid::BigId,
        Vendor::Bigfix => &bigfix::BigFix,
        Vendor::Biganimal => &biganimal::BigAnimal,
        Vendor::Immuta => &immuta::Immuta,
        Vendor::Oidc => &oidc::Oidc,
        Vendor::Openbao => &openbao::OpenBao,
    })
}

pub fn method_spec(flow: &dyn VendorFlow, method: Method) -> Option<&'static MethodSpec> {
    flow.methods().iter().find(|m| m.method == method)
}

/// The message for a secret the vendor needs that is not stored. A shared account's
/// secrets come from its team store, where a login with the reader policy reads only
/// the token in use: no sign-in here would give it the rest.
pub fn missing_secret(call: &Call<'_>, kind: SecretKind) -> Error {
    let name = call.name();
    if let Some(team) = &call.account.team {
        return Error::refused(format!(
            "account '{name}' is shared in team '{team}', and this machine's team login reads \
             no {} for it (a reader policy reads only the token in use): a teammate with the \
             member policy can do this",
            kind.label()
        ));
    }
    Error::needs_sign_in(format!(
        "no {} is stored for account '{name}'",
        kind.label()
    ))
    .with_remedy(crate::error::Remedy::sign_in(name, true))
}

/// The stored secret of `kind`, or an error that says how to give it.
pub fn required<'a>(
    call: &Call<'_>,
    secrets: &'a SecretBundle,
    kind: SecretKind,
) -> Result<&'a Secret> {
    secrets.get(kind).ok_or_else(|| missing_secret(call, kind))
}
