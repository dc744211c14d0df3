//! The keyring of a server without a desktop: no Secret Service runs there, so the
//! vault's own items (its database key, any account of its own) are kept in the team
//! store under `<prefix>/hosts/<vault-id>/`, readable only with the server's login.
//! The vault's store interface is synchronous; the team store's client is not, so the
//! calls run on one small runtime of their own that lives as long as the process.

use std::sync::OnceLock;

use zeroize::Zeroizing;

use super::failure::{Failure, TeamResult};
use super::kv::{Fields, Kv};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::secret_store::SecretStore;

/// The field of a host item's entry that holds its value.
const VALUE: &str = "value";

/// Items of one vault, kept in a team store.
#[derive(Debug, Clone)]
pub struct HostKeyring {
    kv: Kv,
    team: String,
}

fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("team-keyring")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::internal(format!("could not start the team keyring's runtime: {e}")))
}

impl HostKeyring {
    /// The items under `kv`'s prefix (`<prefix>/hosts/<vault-id>`) of team `team`.
    pub fn new(kv: Kv, team: impl Into<String>) -> Self {
        Self {
            kv,
            team: team.into(),
        }
    }

    /// Runs `op` on the keyring's runtime and waits for it (from any thread).
    fn block<T: Send + 'static>(
        &self,
        op: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        runtime()?.spawn(async move {
            let _ = tx.send(op.await);
        });
        rx.recv()
            .map_err(|_| Error::internal("a team keyring call ended without an answer"))?
    }

    /// Logs in (userpass, AppRole) or checks the token, so a wrong login is said at once.
    pub fn log_in(&self) -> Result<()> {
        let kv = self.kv.clone();
        self.block(async move { kv.bao().keep_alive().await.map(drop).map_err(Error::from) })
    }
}

/// Runs `op` on `kv` logged in: a first login when there is no token yet, and a
/// token the server refuses replaced once by a new one.
async fn logged_in<T, F, Fut>(kv: &Kv, op: F) -> TeamResult<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = TeamResult<T>>,
{
    kv.bao().ready().await?;
    kv.bao().logged_in(op, || kv.bao().login()).await
}

impl SecretStore for HostKeyring {
    fn get(&self, item: &str) -> Result<Option<Zeroizing<String>>> {
        let kv = self.kv.clone();
        let item = item.to_string();
        self.block(async move {
            let entry = logged_in(&kv, || kv.read(&item)).await?;
            Ok(entry.and_then(|e| {
                e.data
                    .get(VALUE)
                    .map(|v| Zeroizing::new(v.expose().to_string()))
            }))
        })
    }

    fn set(&self, item: &str, value: &str) -> Result<()> {
        let kv = self.kv.clone();
        let item = item.to_string();
        let fields = Fields::default().with(VALUE, Secret::new(value.to_string()));
        self.block(async move {
            logged_in(&kv, || kv.write_unchecked(&item, &fields)).await?;
            Ok(())
        })
    }

    fn delete(&self, item: &str) -> Result<()> {
        let kv = self.kv.clone();
        let item = item.to_string();
        self.block(async move {
            match logged_in(&kv, || kv.remove(&item)).await {
                Err(e) if e.failure() == Failure::NotFound => Ok(()),
                other => other.map_err(Error::from),
            }
        })
    }

    fn describe(&self) -> String {
        format!(
            "team '{}' ({}), as this server has no OS keyring",
            self.team,
            self.kv.describe("")
        )
    }
}
