//! What an account is made of before it exists: the inputs each vendor's sign-in
//! methods ask for (declared by the vendor modules, shown by the forms, checked by
//! the vault) and the account as the admin describes it.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::model::{Account, Method, Vendor};
use crate::secret::SecretKind;

/// A non-secret input an account of this vendor and method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum FieldKey {
    Username,
    Tenant,
    IamId,
    ClientId,
    /// OAuth scopes to ask for (OIDC).
    Scope,
    /// The API the token is for, where the issuer wants one (OIDC).
    Audience,
    /// When a BigID user token expires, if it is not a JWT that says so itself.
    UserTokenExpires,
    /// A BigFix token's lifetime in days; 0 never expires.
    TokenDuration,
    /// The name BigFix tokens created for this account start with.
    TokenName,
    /// The HTTP method of BigID's refresh-access-token call (GET or POST).
    RefreshMethod,
    /// Sign in with BigAnimal's free-trial client id ("yes").
    FreeTrial,
    /// The role of OpenBao's OIDC auth method to sign in with.
    Role,
    /// The loopback port the browser returns to after an OpenBao OIDC sign-in.
    CallbackPort,
}

impl FieldKey {
    pub const ALL: [FieldKey; 13] = [
        FieldKey::Username,
        FieldKey::Tenant,
        FieldKey::IamId,
        FieldKey::ClientId,
        FieldKey::Scope,
        FieldKey::Audience,
        FieldKey::UserTokenExpires,
        FieldKey::TokenDuration,
        FieldKey::TokenName,
        FieldKey::RefreshMethod,
        FieldKey::FreeTrial,
        FieldKey::Role,
        FieldKey::CallbackPort,
    ];

    /// Its key in the account's settings, and its name in IPC.
    pub fn id(self) -> &'static str {
        match self {
            FieldKey::Username => "username",
            FieldKey::Tenant => "tenant",
            FieldKey::IamId => "iam_id",
            FieldKey::ClientId => "client_id",
            FieldKey::Scope => "scope",
            FieldKey::Audience => "audience",
            FieldKey::UserTokenExpires => "user_token_expires",
            FieldKey::TokenDuration => "token_duration",
            FieldKey::TokenName => "token_name",
            FieldKey::RefreshMethod => "refresh_method",
            FieldKey::FreeTrial => "free_trial",
            FieldKey::Role => "role",
            FieldKey::CallbackPort => "callback_port",
        }
    }

    /// The field whose `id` is `id`.
    pub fn parse(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.id() == id)
    }

    /// The CLI flag that carries it.
    pub fn flag(self) -> &'static str {
        match self {
            FieldKey::Username => "--username",
            FieldKey::Tenant => "--tenant",
            FieldKey::IamId => "--iam-id",
            FieldKey::ClientId => "--client-id",
            FieldKey::Scope => "--scope",
            FieldKey::Audience => "--audience",
            FieldKey::UserTokenExpires => "--user-token-expires",
            FieldKey::TokenDuration => "--token-duration",
            FieldKey::TokenName => "--token-name",
            FieldKey::RefreshMethod => "--refresh-method",
            FieldKey::FreeTrial => "--free-trial",
            FieldKey::Role => "--role",
            FieldKey::CallbackPort => "--callback-port",
        }
    }

    /// Whether it lives in its own column rather than in the account's settings.
    fn is_column(self) -> bool {
        matches!(
            self,
            FieldKey::Username | FieldKey::Tenant | FieldKey::IamId | FieldKey::ClientId
        )
    }

    pub fn value(self, account: &Account) -> Option<&str> {
        match self {
            FieldKey::Username => account.username.as_deref(),
            FieldKey::Tenant => account.tenant.as_deref(),
            FieldKey::IamId => account.iam_id.as_deref(),
            FieldKey::ClientId => account.client_id.as_deref(),
            other => account.setting(other.id()),
        }
    }

    /// Stores `value` where this field lives in `account`.
    pub fn set(self, account: &mut Account, value: String) {
        match self {
            FieldKey::Username => account.username = Some(value),
            FieldKey::Tenant => account.tenant = Some(value),
            FieldKey::IamId => account.iam_id = Some(value),
            FieldKey::ClientId => account.client_id = Some(value),
            other => {
                debug_assert!(!other.is_column());
                account.settings.insert(other.id().to_string(), value);
            }
        }
    }
}

/// One input of a sign-in form.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub key: FieldKey,
    pub label: &'static str,
    pub required: bool,
    /// What the form shows under the input; also the CLI's explanation.
    pub help: &'static str,
    /// The value used when the admin leaves it empty.
    pub default: Option<&'static str>,
}

/// A sign-in method a vendor offers: its fields and the secret the admin gives.
#[derive(Debug, Clone, Copy)]
pub struct MethodSpec {
    pub method: Method,
    pub fields: &'static [Field],
    /// The secret the admin types; `None` for device-code sign-in.
    pub secret: Option<SecretKind>,
}

/// An account as the admin describes it when adding it.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    pub name: String,
    pub vendor: Option<Vendor>,
    pub base_url: String,
    pub method: Option<Method>,
    pub username: Option<String>,
    pub tenant: Option<String>,
    pub iam_id: Option<String>,
    pub client_id: Option<String>,
    pub ca_cert_pem: Option<String>,
    /// The SHA-256 of the one certificate the server may present (instead of a CA).
    pub pin_sha256: Option<String>,
    /// The vendor's other fields (scope, token lifetime, …), as the admin typed them.
    pub settings: Vec<(FieldKey, String)>,
    pub labels: Vec<String>,
}

impl NewAccount {
    /// Sets a field the admin gave, in its column or among the settings.
    pub fn set_field(&mut self, key: FieldKey, value: String) {
        match key {
            FieldKey::Username => self.username = Some(value),
            FieldKey::Tenant => self.tenant = Some(value),
            FieldKey::IamId => self.iam_id = Some(value),
            FieldKey::ClientId => self.client_id = Some(value),
            other => self.settings.push((other, value)),
        }
    }
}
