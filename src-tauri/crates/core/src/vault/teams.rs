//! The vault's side of team stores: connecting to one, sharing an account into it,
//! joining its accounts, and the shared account's secrets read and written through
//! its team store under the cross-machine lease instead of the OS keyring.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use serde::Serialize;

use super::{item_for, run_blocking, Vault};
use crate::error::{Error, Result};
use crate::model::{Account, EventKind, Outcome, TokenMeta, Vendor};
use crate::secret::{Secret, SecretBundle};
use crate::team::failure::Failure;
use crate::team::kv::{Entry, Fields};
use crate::team::{shared, Lease, LoginKind, Server, TeamConfig, TeamStore};

/// The keyring item of a team's login secret (a token, password or secret id).
fn login_item(team: &str) -> String {
    format!("team/{team}")
}

/// The keyring item of the OpenBao token a userpass or AppRole login last yielded.
fn session_item(team: &str) -> String {
    format!("team/{team}/session")
}

/// How long a renewal waits for another machine's lease on a shared account before
/// giving up: the lease's lifetime, and a margin.
const TEAM_LEASE_PATIENCE: StdDuration = StdDuration::from_secs(100);

/// The team stores a vault has opened, and the team leases it holds.
#[derive(Debug, Default)]
pub struct TeamRoom {
    stores: Mutex<HashMap<String, Arc<TeamStore>>>,
    /// A team a headless server's environment describes, with its login's secret.
    from_env: Mutex<Option<(TeamConfig, Secret)>>,
    held: Mutex<HashMap<String, Arc<HeldLease>>>,
}

/// A team lease this process holds on a shared account, and the fields of the
/// secrets' entry last read or written under it.
#[derive(Debug)]
pub(super) struct HeldLease {
    store: Arc<TeamStore>,
    lease: Lease,
    last: Mutex<Fields>,
}

/// What one try at a shared account's team lease found.
pub(super) enum TeamTake {
    Taken,
    /// Another machine holds it: wait for its token.
    Held,
    /// The team store did not answer (unreachable, a leader election): wait a little.
    Away(Error),
}

/// One team store, for `team list`. No secret.
#[derive(Debug, Clone, Serialize)]
pub struct TeamSummary {
    pub name: String,
    pub address: String,
    pub mount: String,
    pub prefix: String,
    pub login: String,
    /// Names of this vault's accounts shared in it.
    pub accounts: Vec<String>,
    /// Whether it comes from the environment (a headless server), not `team connect`.
    pub from_environment: bool,
}

impl Vault {
    /// Gives the vault a team described by the environment (a headless server).
    pub fn use_env_team(&self, config: TeamConfig, secret: Secret) {
        *self
            .teams
            .from_env
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((config, secret));
    }

    /// Keeps `store` as its team's, so the team's accounts use its login (a server
    /// whose vault items are in that store logs in once).
    pub(super) fn keep_team_store(&self, store: Arc<TeamStore>) {
        self.teams
            .stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(store.name().to_string(), store);
    }

    /// The team store named `name`, connected on first use.
    pub async fn team_store(&self, name: &str) -> Result<Arc<TeamStore>> {
        let cached = self
            .teams
            .stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned();
        if let Some(s) = cached {
            // A team whose login is an account: that account's newest token.
            if let LoginKind::Account { account } = &s.config().login {
                s.bao().use_token(self.login_token_of(account).await?);
            }
            return Ok(s);
        }
        let env = self
            .teams
            .from_env
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .filter(|(c, _)| c.name == name);
        let (config, secret, session) = match env {
            // A server's environment: its login is at hand, and its keyring is the
            // team store itself; it logs in once per process.
            Some((config, secret)) => (config, secret, None),
            None => {
                let config = self
                    .db
                    .teams()?
                    .into_iter()
                    .find(|t| t.name == name)
                    .ok_or_else(|| {
                        Error::usage(format!(
                            "this vault is not connected to a team named '{name}': \
                             `tokenkeeper team connect {name} --address …` first"
                        ))
                    })?;
                if let LoginKind::Account { account } = &config.login {
                    // No keyring item of its own: the account's token, kept fresh.
                    let token = self.login_token_of(account).await?;
                    (config, token, None)
                } else {
                    let store = self.store.clone();
                    let item = login_item(name);
                    let text = run_blocking(move || store.get(&item))
                        .await?
                        .ok_or_else(|| {
                            Error::needs_sign_in(format!(
                                "the login of team '{name}' is missing from the keyring: \
                         `tokenkeeper team connect {name}` again"
                            ))
                        })?;
                    let keyring = self.store.clone();
                    let item = session_item(name);
                    // A session that cannot be read is only a login more.
                    let session = run_blocking(move || keyring.get(&item))
                        .await
                        .ok()
                        .flatten()
                        .map(|t| Secret::new(t.as_str()));
                    (config, Secret::new(text.as_str()), Some(session))
                }
            }
        };
        let mut store = TeamStore::new(config, secret, self.clock.clone())?;
        if let Some(session) = session {
            let keyring = self.store.clone();
            let item = session_item(name);
            store = store.with_session(
                session,
                Box::new(move |token: &Secret| {
                    // A lost write is only a login more next time.
                    let _ = keyring.set(&item, token.expose());
                }),
            );
        }
        let store = Arc::new(store);
        Ok(self
            .teams
            .stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_insert(store)
            .clone())
    }

    /// Connects this vault to a team store: logs in first (so a wrong address or
    /// login is said before anything is saved), then keeps the login's secret in the
    /// keyring and the rest in the database.
    pub async fn connect_team(
        &self,
        mut config: TeamConfig,
        mut secret: Secret,
    ) -> Result<TeamSummary> {
        TeamConfig::check_name(&config.name)?;
        let name = config.name.clone();
        if let LoginKind::Account { account } = &config.login {
            secret = self.login_token_of(account).await?;
            if config.server.address.is_empty() {
                let (a, _) = self.find(account)?;
                // The account's trust, unless a CA was given for the team.
                config.server = Server {
                    address: a.base_url.clone(),
                    pin_sha256: a.setting(crate::http::PIN_SETTING).map(str::to_string),
                    ca_cert_pem: config.server.ca_cert_pem.take().or(a.ca_cert_pem),
                };
            }
        }
        let store = TeamStore::new(config.clone(), secret.clone(), self.clock.clone())?;
        store.log_in().await?;
        // The folder must be readable with this login, or sharing would fail later.
        store.accounts().await?;
        let keyring = self.store.clone();
        let item = login_item(&name);
        if matches!(config.login, LoginKind::Account { .. }) {
            // The token stays the account's alone; an earlier login's secret goes.
            run_blocking(move || keyring.delete(&item)).await?;
        } else {
            run_blocking(move || keyring.set(&item, secret.expose())).await?;
        }
        // A session of an earlier login (another user, another server) is not resumed.
        let keyring = self.store.clone();
        let item = session_item(&name);
        run_blocking(move || keyring.delete(&item)).await?;
        self.db.put_team(&config, self.now())?;
        self.teams
            .stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), Arc::new(store));
        self.team_summary(&config, false)
    }

    /// The team that logs in with account `name`, if one does.
    pub(super) fn team_logging_in_with(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .db
            .teams()?
            .into_iter()
            .find(|t| matches!(&t.login, LoginKind::Account { account } if account == name))
            .map(|t| t.name))
    }

    /// The fresh token of `account`, a team's login: an OpenBao account of this
    /// vault's own (a shared one would need the team store to reach itself).
    async fn login_token_of(&self, account: &str) -> Result<Secret> {
        let (a, _) = self.find(account)?;
        if a.vendor != Vendor::Openbao {
            return Err(Error::usage(format!(
                "account '{account}' is a {} account: a team's login account holds an \
                 OpenBao or Vault token (`tokenkeeper add NAME --vendor openbao`)",
                a.vendor.display_name()
            )));
        }
        if let Some(t) = &a.team {
            return Err(Error::usage(format!(
                "account '{account}' is shared in team '{t}': a team's login account must \
                 stay in this machine's keyring"
            )));
        }
        // Boxed: a token may reach a team store, whose login reaches this (never for
        // the same account: a login account is refused as a shared one).
        Ok(Box::pin(self.token(account)).await?.token)
    }

    fn team_summary(&self, config: &TeamConfig, from_environment: bool) -> Result<TeamSummary> {
        let accounts = self
            .db
            .accounts()?
            .into_iter()
            .filter(|(a, _)| a.team.as_deref() == Some(config.name.as_str()))
            .map(|(a, _)| a.name)
            .collect();
        Ok(TeamSummary {
            name: config.name.clone(),
            address: config.server.address.clone(),
            mount: config.mount.clone(),
            prefix: config.prefix.clone(),
            login: match &config.login {
                LoginKind::Account { account } => format!("account '{account}'"),
                other => other.id().to_string(),
            },
            accounts,
            from_environment,
        })
    }

    /// The team stores this vault knows (connected, and any from the environment).
    pub fn teams(&self) -> Result<Vec<TeamSummary>> {
        let mut out = Vec::new();
        for config in self.db.teams()? {
            out.push(self.team_summary(&config, false)?);
        }
        let env = self
            .teams
            .from_env
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some((config, _)) = env {
            if !out.iter().any(|t| t.name == config.name) {
                out.push(self.team_summary(&config, true)?);
            }
        }
        Ok(out)
    }

    /// Shares an account of this vault in `team`: its settings and secrets (with the
    /// facts of its token) are written there, then the account is marked shared here
    /// and its keyring item removed. Holds the account's lease throughout, so no
    /// renewal here writes the keyring meanwhile.
    pub async fn share(&self, name: &str, team: &str) -> Result<Account> {
        let (account, _) = self.find(name)?;
        if let Some(t) = self.team_logging_in_with(name)? {
            return Err(Error::usage(format!(
                "account '{name}' is how this machine logs in to team '{t}': its token stays \
                 in this keyring, not in a team store"
            )));
        }
        if let Some(t) = &account.team {
            return Err(Error::usage(format!(
                "account '{name}' is already shared in team '{t}'"
            )));
        }
        let store = self.team_store(team).await?;
        let holder = self.take_lease(&account).await?;
        self.holding_lease(&account.id, &holder, async {
            let (account, meta) = self.find(name)?;
            let bundle = self.read_secrets(&account.id).await?;
            let leases = store.leases();
            let lease = store
                .call(|| leases.take(&account.id, TEAM_LEASE_PATIENCE))
                .await?;
            let result = async {
                if let Some(existing) = store.call(|| leases.read_secrets(&lease)).await? {
                    if existing.version > 0 {
                        return Err(Error::usage(format!(
                            "{} already holds an account with this id: it was shared before; \
                             `tokenkeeper team join {team}` lists it here",
                            store.describe()
                        )));
                    }
                }
                store.publish(&account).await?;
                let fields = shared::secrets_fields(&bundle, meta.as_ref());
                let version = store
                    .call(|| leases.write_secrets(&lease, &fields, 0))
                    .await?;
                self.db.mark_shared(&account.id, team, version)?;
                self.db.record_event(
                    &account.id,
                    (
                        EventKind::Edited,
                        Outcome::Ok,
                        &format!("shared in team '{team}'"),
                    ),
                    self.now(),
                )?;
                Ok(())
            }
            .await;
            let _ = leases.release(&lease).await;
            result?;
            // The team store has it now; the keyring's copy would only go stale.
            let keyring = self.store.clone();
            let item = item_for(&account.id);
            if let Err(e) = run_blocking(move || keyring.delete(&item)).await {
                // Never read again (the account reads its team store now): say so.
                self.db.record_event(
                    &account.id,
                    (
                        EventKind::Edited,
                        Outcome::Failed,
                        &format!("its old keyring item could not be removed: {}", e.message()),
                    ),
                    self.now(),
                )?;
            }
            Ok(())
        })
        .await?;
        Ok(self.find(name)?.0)
    }

    /// Lists here every account shared in `team` that this vault does not have yet;
    /// returns the names added. A name already used here by another account is
    /// skipped and said in the error list.
    pub async fn join_team(&self, team: &str) -> Result<(Vec<String>, Vec<String>)> {
        let store = self.team_store(team).await?;
        let (accounts, mut problems) = store.accounts().await?;
        let mut added = Vec::new();
        for account in accounts {
            match self.db.account_by_name(&account.name)? {
                Some((mine, _)) if mine.id == account.id => continue,
                Some(_) => {
                    problems.push(format!(
                        "'{}' is the name of an account of this vault already: the shared one \
                         was not listed (rename yours, then join again)",
                        account.name
                    ));
                    continue;
                }
                None => {}
            }
            // An account whose token cannot be read yet is listed all the same (its
            // `token` says why), and said; it does not keep the others out.
            let leases = store.leases();
            let entry = match store.call_raw(|| leases.read_current(&account.id, 0)).await {
                Ok(entry) => entry,
                Err(e) if e.failure() == Failure::CopyBehind => {
                    problems.push(format!("'{}': {}", account.name, e.message()));
                    None
                }
                Err(e) => return Err(store.named(e)),
            };
            let meta = entry.as_ref().and_then(|e| shared::meta_from(&e.data));
            self.db.insert_account(
                &account,
                meta.as_ref(),
                (
                    EventKind::Added,
                    Outcome::Ok,
                    &format!("joined from team '{team}'"),
                ),
                self.now(),
            )?;
            if let Some(e) = &entry {
                self.db
                    .cache_shared(&account.id, e.version, None, self.now())?;
            }
            added.push(account.name);
        }
        Ok((added, problems))
    }

    /// Joins every team this vault knows (a watch or agent starting up).
    pub async fn join_all_teams(&self) -> Vec<Error> {
        let mut errors = Vec::new();
        let names: Vec<String> = match self.teams() {
            Ok(t) => t.into_iter().map(|t| t.name).collect(),
            Err(e) => return vec![e],
        };
        for name in names {
            if let Err(e) = self.join_team(&name).await {
                errors.push(e);
            }
        }
        errors
    }

    /// The team lease held on `account_id`, if this process holds one.
    fn held(&self, account_id: &str) -> Option<Arc<HeldLease>> {
        self.teams
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(account_id)
            .cloned()
    }

    /// Tries once to take a shared account's team lease (an account of this vault
    /// alone has none to take).
    pub(super) async fn try_team_lease(&self, account: &Account) -> Result<TeamTake> {
        let Some(team) = &account.team else {
            return Ok(TeamTake::Taken);
        };
        let store = self.team_store(team).await?;
        let leases = store.leases();
        let seen = self.db.shared_in(&account.id)?.map_or(0, |(_, v)| v);
        match store.call_raw(|| leases.try_take(&account.id)).await {
            Ok(lease) => {
                // The newest version seen here: no read under the lease believes older.
                lease.note_secret_version(seen);
                let held = Arc::new(HeldLease {
                    store: store.clone(),
                    lease,
                    last: Mutex::new(Fields::default()),
                });
                self.teams
                    .held
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(account.id.clone(), held);
                Ok(TeamTake::Taken)
            }
            Err(e) if e.failure() == Failure::LeaseHeld => Ok(TeamTake::Held),
            Err(e) if e.failure().is_transient() => Ok(TeamTake::Away(store.named(e))),
            Err(e) => Err(store.named(e)),
        }
    }

    /// The team lease held on `account_id`, no longer counted as held.
    fn take_held(&self, account_id: &str) -> Option<Arc<HeldLease>> {
        self.teams
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(account_id)
    }

    /// Gives back the team lease held on `account_id`, if any.
    pub(super) async fn release_team_lease(&self, account_id: &str) {
        if let Some(h) = self.take_held(account_id) {
            let _ = h.store.leases().release(&h.lease).await;
        }
    }

    /// The same from a destructor (a cancelled renewal): released in the background,
    /// or left to expire.
    pub(super) fn drop_team_lease(&self, account_id: &str) {
        let held = self.take_held(account_id);
        if let (Some(h), Ok(rt)) = (held, tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                let _ = h.store.leases().release(&h.lease).await;
            });
        }
    }

    /// Extends the team lease held on `account_id` (the heartbeat).
    pub(super) async fn extend_team_lease(&self, account_id: &str) {
        if let Some(h) = self.held(account_id) {
            let _ = h.store.leases().extend(&h.lease).await;
        }
    }

    /// A shared account's secrets: under the lease if this process holds it, else
    /// the newest version (never older than one seen). A newer version's token facts
    /// are recorded in the database, so listing and the engine see the renewal.
    pub(super) async fn read_shared(&self, account_id: &str, team: &str) -> Result<SecretBundle> {
        let entry = match self.held(account_id) {
            Some(h) => {
                let leases = h.store.leases();
                let entry = h.store.call(|| leases.read_secrets(&h.lease)).await?;
                if let Some(e) = &entry {
                    *h.last.lock().unwrap_or_else(|p| p.into_inner()) = e.data.clone();
                }
                entry
            }
            None => {
                let store = self.team_store(team).await?;
                let seen = self.db.shared_in(account_id)?.map_or(0, |(_, v)| v);
                store.read_current(account_id, seen).await?
            }
        };
        let Some(entry) = entry else {
            return Ok(SecretBundle::default());
        };
        self.note_version(account_id, &entry)?;
        Ok(shared::bundle_from(&entry.data))
    }

    fn note_version(&self, account_id: &str, entry: &Entry) -> Result<()> {
        let meta = shared::meta_from(&entry.data);
        self.db
            .cache_shared(account_id, entry.version, meta.as_ref(), self.now())?;
        Ok(())
    }

    /// Writes a shared account's secrets under the team lease this process holds: a
    /// fenced check-and-set over the version read under it, carrying `meta` (the new
    /// token's facts) or, for secrets rotated midway, the facts already there.
    pub(super) async fn write_shared(
        &self,
        account: &Account,
        bundle: &SecretBundle,
        meta: Option<&TokenMeta>,
    ) -> Result<()> {
        let h = self.held(&account.id).ok_or_else(|| {
            Error::internal(format!(
                "a write of shared account '{}' without its team lease",
                account.name
            ))
        })?;
        let mut fields = shared::secrets_fields(bundle, meta);
        if meta.is_none() {
            shared::carry_meta(
                &h.last.lock().unwrap_or_else(|p| p.into_inner()),
                &mut fields,
            );
        }
        let leases = h.store.leases();
        let read = h.lease.secret_version();
        let version = h
            .store
            .call(|| leases.write_secrets(&h.lease, &fields, read))
            .await?;
        *h.last.lock().unwrap_or_else(|p| p.into_inner()) = fields;
        self.db
            .cache_shared(&account.id, version, None, self.now())?;
        Ok(())
    }

    /// Publishes a shared account's edited settings to its team (before they are
    /// saved here: a refusal changes nothing).
    pub(super) async fn publish_shared(&self, account: &Account) -> Result<()> {
        if let Some(team) = &account.team {
            self.team_store(team).await?.publish(account).await?;
        }
        Ok(())
    }
}
