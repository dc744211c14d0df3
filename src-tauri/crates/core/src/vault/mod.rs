//! The vault: the one type through which the CLI and the desktop app reach accounts,
//! their secrets (in the keyring) and their metadata (in the encrypted database).
//! It orders every write so that a failure at any point loses nothing stored.

mod add;
mod bigfix_tokens;
mod database;
mod edit;
#[cfg(test)]
pub(crate) mod fixtures;
mod lease;
mod listing;
mod preferences;
mod remove;
mod renewal;
mod schema;
mod sign_in;
mod teams;
mod trust;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

pub use add::{account_from, method_in};
pub use bigfix_tokens::TokenQuery;
pub use database::{Database, KEY_ITEM};
pub use remove::SignOut;
pub use renewal::TokenOptions;
pub use teams::TeamSummary;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::model::{Account, Method, TokenMeta, Vendor};
use crate::secret::{Secret, SecretBundle};
use crate::secret_store::{OsKeyring, SecretStore};
use crate::vendors::{self, VendorFlow};

/// A token ready to use, and the header value that carries it.
#[derive(Debug)]
pub struct FreshToken {
    pub token: Secret,
    pub authorization: Secret,
    /// The facts (issue time, expiry) of this very token as the vault knew them when
    /// it read the token: never newer than the token itself.
    pub facts: Option<TokenMeta>,
    /// Set when the token is still valid but renewing it failed: say so on stderr.
    /// Each side words its advice its own way (`cli_text`, or the window's).
    pub warning: Option<Error>,
}

#[derive(Debug)]
pub struct Vault {
    dir: PathBuf,
    db: Database,
    store: Arc<dyn SecretStore>,
    clock: Arc<dyn Clock>,
    teams: teams::TeamRoom,
}

/// The platform's data folder for the vault: `~/.local/share/tokenkeeper` on Linux.
pub fn default_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from(".local/share"))
        .join("tokenkeeper")
}

/// The keyring service name for the vault in `dir`: one per folder, so two vaults
/// never share a secret.
pub fn service_name_for(dir: &Path) -> String {
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let digest = Sha256::digest(canonical.to_string_lossy().as_bytes());
    format!("tokenkeeper/{}", &hex::encode(digest)[..16])
}

fn item_for(account_id: &str) -> String {
    format!("account/{account_id}")
}

fn flow_for(vendor: Vendor) -> Result<&'static dyn VendorFlow> {
    vendors::flow_for(vendor).ok_or_else(|| {
        Error::usage(format!(
            "{} accounts are not supported by this version of Tokenkeeper yet",
            vendor.display_name()
        ))
    })
}

impl Vault {
    /// Opens the vault in `dir` with the OS keyring.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::vault(format!(
                "cannot create the vault folder {}: {e}",
                dir.display()
            ))
        })?;
        let store = Arc::new(OsKeyring::new(service_name_for(dir)));
        Self::open_with(dir, store, Arc::new(SystemClock))
    }

    /// Opens the vault in `dir` as this machine allows. With the OS keyring, as
    /// `open` does; on a server whose environment names a team store
    /// (`TOKENKEEPER_TEAM_ADDR` and a login) and that has no session D-Bus (or with
    /// `TOKENKEEPER_SECRETS=team`), with the vault's own items kept in that team store
    /// under `<prefix>/hosts/<vault-id>`. The environment's team is the vault's too.
    pub fn open_here(dir: &Path) -> Result<Self> {
        let env_team = crate::team::config::from_env()?;
        let choice = std::env::var("TOKENKEEPER_SECRETS").unwrap_or_default();
        let in_team = match choice.as_str() {
            "team" if env_team.is_none() => {
                return Err(Error::usage(
                    "TOKENKEEPER_SECRETS=team needs a team store: set TOKENKEEPER_TEAM_ADDR \
                     and a login (README, Teams)",
                ))
            }
            "team" => true,
            "keyring" => false,
            "" => env_team.is_some() && !has_session_bus(),
            other => {
                return Err(Error::usage(format!(
                    "TOKENKEEPER_SECRETS is '{other}': use 'keyring' or 'team'"
                )))
            }
        };
        let vault = match (&env_team, in_team) {
            (Some((config, secret)), true) => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Error::vault(format!(
                        "cannot create the vault folder {}: {e}",
                        dir.display()
                    ))
                })?;
                let store = Arc::new(crate::team::TeamStore::new(
                    config.clone(),
                    secret.clone(),
                    Arc::new(SystemClock),
                )?);
                let vault_id = service_name_for(dir).replace('/', "-");
                let kv = store.folder(&format!("hosts/{vault_id}"))?;
                let keyring = crate::team::HostKeyring::new(kv, &config.name);
                keyring.log_in().map_err(|e| store.named_error(e))?;
                let vault = Self::open_with(dir, Arc::new(keyring), Arc::new(SystemClock))?;
                // The team's accounts go through the same login as the vault's items.
                vault.keep_team_store(store);
                vault
            }
            _ => Self::open(dir).map_err(|e| match (&env_team, e.kind()) {
                (None, crate::error::ErrorKind::Keyring) => Error::new(
                    e.kind(),
                    format!(
                        "{} On a server without a desktop (no Secret Service), point \
                         Tokenkeeper at your team's OpenBao or Vault instead: set \
                         TOKENKEEPER_TEAM_ADDR and TOKENKEEPER_TEAM_ROLE_ID with \
                         TOKENKEEPER_TEAM_SECRET_ID_FILE (or TOKENKEEPER_TEAM_TOKEN_FILE); \
                         README, Teams",
                        e.message()
                    ),
                ),
                _ => e,
            })?,
        };
        if let Some((config, secret)) = env_team {
            vault.use_env_team(config, secret);
        }
        Ok(vault)
    }

    pub fn open_with(
        dir: &Path,
        store: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let db = Database::open(dir, store.as_ref())?;
        Ok(Self {
            dir: dir.to_path_buf(),
            db,
            store,
            clock,
            teams: teams::TeamRoom::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub fn keyring_description(&self) -> String {
        self.store.describe()
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn find(&self, name: &str) -> Result<(Account, Option<TokenMeta>)> {
        self.db.account_by_name(name)?.ok_or_else(|| {
            Error::usage(format!(
                "no account named '{name}' in this vault: `tokenkeeper list` shows them"
            ))
        })
    }

    /// An account's secrets: from the keyring, or its team store for a shared one.
    async fn read_secrets(&self, account_id: &str) -> Result<SecretBundle> {
        if let Some((team, _)) = self.db.shared_in(account_id)? {
            return self.read_shared(account_id, &team).await;
        }
        let store = self.store.clone();
        let item = item_for(account_id);
        let text = run_blocking(move || store.get(&item)).await?;
        match text {
            Some(t) => SecretBundle::from_keyring_json(&t),
            None => Ok(SecretBundle::default()),
        }
    }

    /// Writes an account's secrets (with, for a shared one, `meta`: the facts of the
    /// token they hold, when it is new).
    async fn write_secrets(
        &self,
        account: &Account,
        bundle: &SecretBundle,
        meta: Option<&TokenMeta>,
    ) -> Result<()> {
        if account.team.is_some() {
            return self.write_shared(account, bundle, meta).await;
        }
        let account_id = &account.id;
        let store = self.store.clone();
        let item = item_for(account_id);
        let text = bundle.to_keyring_json();
        run_blocking(move || store.set(&item, &text)).await
    }

    /// How the named account signs in.
    pub fn method_of(&self, name: &str) -> Result<Method> {
        Ok(self.find(name)?.0.method)
    }

    pub fn contains(&self, name: &str) -> Result<bool> {
        Ok(self.db.account_by_name(name)?.is_some())
    }
}

/// Whether this process has a session D-Bus, where a Secret Service would be.
fn has_session_bus() -> bool {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty()) {
        return true;
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .is_some_and(|d| Path::new(&d).join("bus").exists())
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("a keyring call failed: {e}")))?
}
