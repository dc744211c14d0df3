//! One team store as the vault uses it: a login kept alive, the accounts folder
//! (`<prefix>/accounts/<id>/{account,secrets,token,lease}`) and the leases on it. Every
//! call first makes sure of the login, and a token the server no longer takes is
//! replaced by logging in again where the method allows it (userpass, AppRole).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::OpenBao;
use super::config::TeamConfig;
use super::failure::{Failure, TeamError, TeamResult};
use super::kv::{Entry, Kv};
use super::lease::{holder_name, retrying_for, TeamLeases};
use super::shared::{self, ACCOUNT_KEY};
use crate::clock::Clock;
use crate::error::Result;
use crate::model::Account;
use crate::secret::Secret;

/// How often the login is checked (`lookup-self`, renewed when a third of its TTL is
/// left): often enough for the shortest TTL an admin would give a token.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(20);

/// How long a call waits out a team store that does not answer before saying so.
const UNREACHABLE_PATIENCE: Duration = Duration::from_secs(10);
/// How long it waits out a cluster that answers but has no leader (an election, a
/// node catching up): that ends by itself, usually within seconds.
const ELECTION_PATIENCE: Duration = Duration::from_secs(45);

fn patience(e: &TeamError) -> Duration {
    if e.failure() == Failure::Unreachable {
        UNREACHABLE_PATIENCE
    } else {
        ELECTION_PATIENCE
    }
}

/// Keeps a new OpenBao token of a userpass or AppRole login (in the OS keyring), so
/// the next process of this user resumes it instead of logging in again (a userpass
/// login costs about 100 ms of the server's bcrypt).
pub type SessionSaver = Box<dyn Fn(&Secret) + Send + Sync>;

/// A team store, connected.
pub struct TeamStore {
    config: TeamConfig,
    leases: TeamLeases,
    /// When the login was last checked.
    checked: Mutex<Option<Instant>>,
    save_session: Option<SessionSaver>,
}

impl std::fmt::Debug for TeamStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TeamStore {
    /// Connects (lazily: nothing is sent before the first call) to `config`'s server
    /// with the login's secret half.
    pub fn new(config: TeamConfig, secret: Secret, clock: Arc<dyn Clock>) -> Result<Self> {
        let login = config.login.with_secret(secret);
        let bao = Arc::new(OpenBao::new(&config.server, login)?);
        let accounts = Kv::new(bao, &config.mount, &format!("{}/accounts", config.prefix))?;
        Ok(Self {
            leases: TeamLeases::new(accounts, clock, holder_name()),
            config,
            checked: Mutex::new(None),
            save_session: None,
        })
    }

    /// The same, resuming the session an earlier process kept (`session`), and
    /// keeping each new one with `save`.
    pub fn with_session(mut self, session: Option<Secret>, save: SessionSaver) -> Self {
        if let Some(token) = session {
            self.bao().resume(token);
        }
        self.save_session = Some(save);
        self
    }

    /// Runs a login step and keeps the token it leaves if it is a new one.
    async fn keeping_session<T>(
        &self,
        step: impl std::future::Future<Output = TeamResult<T>>,
    ) -> TeamResult<T> {
        let before = self.bao().session_token();
        let result = step.await;
        if let (Some(save), Some(after)) = (&self.save_session, self.bao().session_token()) {
            if before.as_ref() != Some(&after) && self.bao().can_log_in() {
                save(&after);
            }
        }
        result
    }

    pub fn config(&self) -> &TeamConfig {
        &self.config
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn bao(&self) -> &Arc<OpenBao> {
        self.leases.kv().bao()
    }

    pub fn leases(&self) -> &TeamLeases {
        &self.leases
    }

    /// The KV engine of this team with keys under `<prefix>/<folder>`.
    pub fn folder(&self, folder: &str) -> Result<Kv> {
        Ok(Kv::new(
            self.bao().clone(),
            &self.config.mount,
            &format!("{}/{folder}", self.config.prefix),
        )?)
    }

    /// "team 'ops' (the team store (OpenBao) at …)", for messages.
    pub fn describe(&self) -> String {
        format!("team '{}' ({})", self.config.name, self.bao().describe())
    }

    /// Logs in now (or checks the given token): what `team connect` tries first.
    pub async fn log_in(&self) -> Result<()> {
        self.bao().login().await.map_err(|e| self.named(e))?;
        *self.checked.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        Ok(())
    }

    /// Makes sure of the login: logs in at first use, and every `KEEP_ALIVE_EVERY`
    /// renews the token when due (or logs in again).
    pub async fn ready(&self) -> TeamResult<()> {
        let due = self
            .checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none_or(|t| t.elapsed() >= KEEP_ALIVE_EVERY);
        if due {
            self.keeping_session(self.bao().keep_alive()).await?;
            *self.checked.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        }
        Ok(())
    }

    /// Runs `op` logged in; a token refused midway is replaced once by a new login.
    pub async fn call<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = TeamResult<T>>,
    {
        self.call_raw(op).await.map_err(|e| self.named(e))
    }

    /// `call`, keeping the typed failure for a caller that acts on it.
    pub async fn call_raw<T, F, Fut>(&self, op: F) -> TeamResult<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = TeamResult<T>>,
    {
        // A leader election or a node restarting passes by itself: wait it out.
        retrying_for(patience, || async {
            self.ready().await?;
            self.bao()
                .logged_in(&op, || self.keeping_session(self.bao().login()))
                .await
        })
        .await
    }

    /// A core error from a team call (the host keyring's), naming the team.
    pub fn named_error(&self, e: crate::error::Error) -> crate::error::Error {
        crate::error::Error::new(
            e.kind(),
            format!("team '{}': {}", self.config.name, e.message()),
        )
    }

    /// A team failure as the core's error, naming the team and saying what to do.
    pub fn named(&self, e: TeamError) -> crate::error::Error {
        // The client's messages already say what to do (unseal, ask for a policy,
        // wait for the election); only a given token that ran out needs more.
        let advice = match e.failure() {
            Failure::TokenInvalid if !self.bao().can_log_in() => {
                " Give a new token with `tokenkeeper team connect` (or the service's token file)."
            }
            _ => "",
        };
        let said = e.message().trim_end();
        let stop = if said.ends_with('.') || advice.is_empty() {
            ""
        } else {
            "."
        };
        let message = format!("team '{}': {said}{stop}{advice}", self.config.name);
        TeamError::new(e.failure(), message).into()
    }

    /// Every account shared in this team (entries Tokenkeeper cannot read are skipped
    /// and named in the second list).
    pub async fn accounts(&self) -> Result<(Vec<Account>, Vec<String>)> {
        let kv = self.leases.kv();
        let ids = self.call(|| kv.list("")).await?;
        let (mut found, mut unreadable) = (Vec::new(), Vec::new());
        for id in ids {
            let Some(id) = id.strip_suffix('/') else {
                continue;
            };
            let key = format!("{id}/{ACCOUNT_KEY}");
            match self.call(|| kv.read(&key)).await? {
                Some(entry) => match shared::account_from(id, &self.config.name, &entry.data) {
                    Ok(a) => found.push(a),
                    Err(e) => unreadable.push(e.message().to_string()),
                },
                None => unreadable.push(format!("{id}: no settings entry")),
            }
        }
        Ok((found, unreadable))
    }

    /// Writes the account's settings entry (sharing it, or after an edit).
    pub async fn publish(&self, account: &Account) -> Result<()> {
        let kv = self.leases.kv();
        let key = format!("{}/{ACCOUNT_KEY}", account.id);
        let fields = shared::account_fields(account);
        self.call(|| kv.write_unchecked(&key, &fields))
            .await
            .map(drop)
    }

    /// The newest secrets of a shared account for a reader (not a renewal), never
    /// older than `seen`.
    pub async fn read_current(&self, account_id: &str, seen: u64) -> Result<Option<Entry>> {
        self.call(|| self.leases.read_current(account_id, seen))
            .await
    }
}
