//! The vault: the one type through which the CLI and the desktop app reach accounts,
//! their secrets (in the keyring) and their metadata (in the encrypted database).
//! It orders every write so that a failure at any point loses nothing stored.

mod bigfix_tokens;
mod database;
mod edit;
mod preferences;
mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

pub use bigfix_tokens::TokenQuery;
pub use database::{Database, KEY_ITEM};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, ErrorKind, Result};
use crate::http;
use crate::model::{Account, AccountDetail, AccountSummary, Method, TokenMeta, TokenState, Vendor};
use crate::secret::{Secret, SecretBundle, SecretKind};
use crate::secret_store::{OsKeyring, SecretStore};
use crate::vendors::{
    self, Call, DevicePrompt, FieldKey, Issued, MethodSpec, NoAccountYet, RotationSink, VendorFlow,
};

/// How long a renewal lease holds before another process may take over.
const LEASE_TTL: Duration = Duration::seconds(90);
/// How often a process waiting on another's renewal looks again.
const LEASE_POLL: StdDuration = StdDuration::from_millis(100);
/// How often a holder extends its lease while its vendor calls run, so a slow vendor
/// (two calls of a long HTTP timeout each) never lets the lease lapse mid-renewal.
const LEASE_HEARTBEAT: StdDuration = StdDuration::from_secs(15);
/// How long `remove` waits for a vendor to end the session before removing anyway.
const SIGN_OUT_DEADLINE: StdDuration = StdDuration::from_secs(10);

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

/// How `token` treats the token in use.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenOptions {
    /// Ask the vendor whether the token still works, and renew it if not.
    pub check: bool,
    /// Renew now, whatever the token's state.
    pub force: bool,
}

/// Stores secrets a vendor rotated mid-flow into the account's keyring item, under
/// the account's lease, so no other process's renewal writes in between.
struct KeyringSink<'a> {
    vault: &'a Vault,
    account: &'a Account,
    /// The lease the writes are made under: the caller's, or taken at the first write
    /// (a browser sign-in holds none while it waits for the admin's approval).
    holder: std::sync::Mutex<Option<String>>,
    /// Whether anything was stored: if not, what the caller read is still current.
    stored: std::sync::atomic::AtomicBool,
    /// The account's secrets as last read or written under the lease: a rotated
    /// secret is written over them without reading the keyring again, so the window
    /// between the vendor's answer and the keyring write is one D-Bus call, not two.
    known: std::sync::Mutex<Option<SecretBundle>>,
}

impl<'a> KeyringSink<'a> {
    /// Writes under `holder`'s lease, or (None) under one taken at the first write.
    fn new(vault: &'a Vault, account: &'a Account, holder: Option<&str>) -> Self {
        Self {
            vault,
            account,
            holder: std::sync::Mutex::new(holder.map(str::to_string)),
            stored: std::sync::atomic::AtomicBool::new(false),
            known: std::sync::Mutex::new(None),
        }
    }

    /// The sink of a caller that read `bundle` under the lease it holds.
    fn knowing(self, bundle: &SecretBundle) -> Self {
        *self.known.lock().unwrap_or_else(|p| p.into_inner()) = Some(bundle.clone());
        self
    }

    /// What the sink last wrote, if it wrote anything.
    fn written(&self) -> Option<SecretBundle> {
        if !self.stored() {
            return None;
        }
        self.known.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn stored(&self) -> bool {
        self.stored.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The lease taken so far, if any.
    fn taken(&self) -> Option<String> {
        self.holder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The lease the writes are made under, taken now if the caller held none.
    async fn lease(&self) -> Result<String> {
        if let Some(h) = self.taken() {
            return Ok(h);
        }
        let h = self.vault.take_lease(self.account).await?;
        *self.holder.lock().unwrap_or_else(|p| p.into_inner()) = Some(h.clone());
        Ok(h)
    }
}

#[async_trait]
impl RotationSink for KeyringSink<'_> {
    async fn store_rotated(&self, rotated: &[(SecretKind, Secret)]) -> Result<()> {
        let holder = self.lease().await?;
        self.vault.fence(self.account, &holder)?;
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut bundle = match known {
            Some(b) => b,
            None => self.vault.read_secrets(&self.account.id).await?,
        };
        for (kind, secret) in rotated {
            bundle.set(*kind, secret.clone());
        }
        self.vault.write_secrets(&self.account.id, &bundle).await?;
        *self.known.lock().unwrap_or_else(|p| p.into_inner()) = Some(bundle);
        self.stored.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// A token ready to use, and the header value that carries it.
#[derive(Debug)]
pub struct FreshToken {
    pub token: Secret,
    pub authorization: Secret,
    /// Set when the token is still valid but renewing it failed: say so on stderr.
    pub warning: Option<String>,
}

/// What `remove` did on the vendor's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignOut {
    Done,
    NotOffered,
    Failed(String),
}

#[derive(Debug)]
pub struct Vault {
    dir: PathBuf,
    db: Database,
    store: Arc<dyn SecretStore>,
    clock: Arc<dyn Clock>,
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

    async fn read_secrets(&self, account_id: &str) -> Result<SecretBundle> {
        let store = self.store.clone();
        let item = item_for(account_id);
        let text = run_blocking(move || store.get(&item)).await?;
        match text {
            Some(t) => SecretBundle::from_keyring_json(&t),
            None => Ok(SecretBundle::default()),
        }
    }

    async fn write_secrets(&self, account_id: &str, bundle: &SecretBundle) -> Result<()> {
        let store = self.store.clone();
        let item = item_for(account_id);
        let text = bundle.to_keyring_json();
        run_blocking(move || store.set(&item, &text)).await
    }

    /// Waits for the account's lease (another process may be renewing it) and takes it.
    async fn take_lease(&self, account: &Account) -> Result<String> {
        match self.wait_for_lease(account, None).await? {
            Leased::Held(holder) => Ok(holder),
            Leased::Settled(_) => Err(Error::internal(
                "a wait for a lease ended on a token nobody asked for",
            )),
        }
    }

    /// Takes the account's lease, waiting while another process holds it. Given a
    /// `renewal` (how to hand a token out, and the token facts the caller saw), a
    /// renewal that the other process finishes meanwhile ends the wait with its token.
    async fn wait_for_lease(
        &self,
        account: &Account,
        renewal: Option<(&dyn VendorFlow, &TokenMeta)>,
    ) -> Result<Leased> {
        let holder = database::lease_holder();
        let give_up = tokio::time::Instant::now()
            + StdDuration::from_secs(LEASE_TTL.num_seconds() as u64 + 10);
        loop {
            let now = self.now();
            if self
                .db
                .try_lease(&account.id, &holder, now + LEASE_TTL, now)?
            {
                return Ok(Leased::Held(holder));
            }
            tokio::time::sleep(LEASE_POLL).await;
            if let Some((flow, seen)) = renewal {
                if let Some(token) = self.renewed_elsewhere(account, flow, seen).await? {
                    return Ok(Leased::Settled(token));
                }
            }
            if tokio::time::Instant::now() > give_up {
                return Err(busy(account));
            }
        }
    }

    /// The token another process renewed after `seen` was read, once it has landed.
    async fn renewed_elsewhere(
        &self,
        account: &Account,
        flow: &dyn VendorFlow,
        seen: &TokenMeta,
    ) -> Result<Option<FreshToken>> {
        let Some(m) = self.db.token_meta(&account.id)? else {
            return Ok(None);
        };
        if m.needs_human {
            usable(account, Some(m))?;
        } else if renewed_since(&m, seen, self.now()) {
            let bundle = self.read_secrets(&account.id).await?;
            if let Some(t) = bundle.get(SecretKind::AccessToken) {
                return Ok(Some(fresh(flow, t.clone(), None)));
            }
        }
        Ok(None)
    }

    /// Runs `work` while holding `holder`'s lease on the account, extending it every
    /// `LEASE_HEARTBEAT`, then releases it.
    async fn holding_lease<T>(
        &self,
        account_id: &str,
        holder: &str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.holding_lease_every(LEASE_HEARTBEAT, account_id, holder, work)
            .await
    }

    async fn holding_lease_every<T>(
        &self,
        heartbeat: StdDuration,
        account_id: &str,
        holder: &str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        // Released even if this future is dropped midway (a cancelled caller).
        let mut guard = LeaseRelease {
            db: &self.db,
            account_id,
            holder,
            armed: true,
        };
        let result = {
            tokio::pin!(work);
            let mut beat = tokio::time::interval(heartbeat);
            beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            beat.tick().await;
            loop {
                tokio::select! {
                    r = &mut work => break r,
                    _ = beat.tick() => {
                        // A lapse is caught by `fence` before the next write.
                        let _ = self.db.extend_lease(account_id, holder, self.now() + LEASE_TTL);
                    }
                }
            }
        };
        guard.armed = false;
        let released = self.db.release_lease(account_id, holder);
        let value = result?;
        released?;
        Ok(value)
    }

    /// Checks, just before a write of secrets, that `holder` still holds the lease
    /// (and extends it). If it lapsed (the machine slept, a vendor hung past the
    /// lease) another process may have renewed since: its secrets are the newer ones,
    /// and this process writes nothing.
    fn fence(&self, account: &Account, holder: &str) -> Result<()> {
        if self
            .db
            .extend_lease(&account.id, holder, self.now() + LEASE_TTL)?
        {
            Ok(())
        } else {
            Err(Error::vault(format!(
                "another Tokenkeeper process took over account '{}' while this one waited \
                 for the vendor, so this one stored nothing; try again",
                account.name
            )))
        }
    }

    /// Every account with its state. Reads only the database, never the keyring.
    pub fn list(&self) -> Result<Vec<AccountSummary>> {
        let now = self.now();
        Ok(self
            .db
            .accounts()?
            .into_iter()
            .map(|(a, m)| summarize(&a, m.as_ref(), now))
            .collect())
    }

    pub fn show(&self, name: &str) -> Result<AccountDetail> {
        let (account, meta) = self.find(name)?;
        let now = self.now();
        Ok(AccountDetail {
            summary: summarize(&account, meta.as_ref(), now),
            tenant: account.tenant.clone(),
            iam_id: account.iam_id.clone(),
            client_id: account.client_id.clone(),
            trusts_custom_ca: account.ca_cert_pem.is_some(),
            settings: account.settings.clone(),
            created_at_ms: account.created_at.timestamp_millis(),
            issued_at_ms: meta.as_ref().map(|m| m.issued_at.timestamp_millis()),
            renew_at_ms: meta
                .as_ref()
                .and_then(TokenMeta::renew_at)
                .map(|t| t.timestamp_millis()),
            events: self.db.events(&account.id, 50)?,
        })
    }

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
            let call = Call {
                account: &account,
                http: &http,
                now,
                previous: None,
                sink: &NoAccountYet,
            };
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
        self.write_secrets(&account.id, &bundle).await?;
        let event = if issued.is_some() {
            ("signed-in", "ok", "added and signed in")
        } else {
            ("added", "ok", "added without signing in")
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
        let flow = flow_for(vendor)?;
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

    fn validate(&self, new: NewAccount) -> Result<(Account, &'static MethodSpec)> {
        let name = new.name.trim().to_string();
        if name.is_empty()
            || name.len() > 64
            || name.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(Error::usage(format!(
                "'{name}' is not a usable account name: use 1 to 64 characters without spaces"
            )));
        }
        let vendor = new
            .vendor
            .ok_or_else(|| Error::usage("give the vendor with --vendor"))?;
        let spec = Self::method_for(&new)?;
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
            created_at: self.now(),
            settings: BTreeMap::new(),
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
            check_setting(key, &value)?;
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

    /// How the named account signs in.
    pub fn method_of(&self, name: &str) -> Result<Method> {
        Ok(self.find(name)?.0.method)
    }

    /// Signs in again, with a new secret if given, else the stored one. Holds the
    /// account's lease, so a renewal in another process never overwrites the result.
    pub async fn login(&self, name: &str, secret: Option<Secret>) -> Result<AccountSummary> {
        let (account, _) = self.find(name)?;
        let holder = self.take_lease(&account).await?;
        self.holding_lease(
            &account.id,
            &holder,
            self.login_holding_lease(name, secret, &holder),
        )
        .await
    }

    async fn login_holding_lease(
        &self,
        name: &str,
        secret: Option<Secret>,
        holder: &str,
    ) -> Result<AccountSummary> {
        // Read under the lease: what another process renewed meanwhile is current.
        let (account, meta) = self.find(name)?;
        let flow = flow_for(account.vendor)?;
        let spec = vendors::method_spec(flow, account.method).ok_or_else(|| {
            Error::internal(format!("account '{name}' has a method its vendor lacks"))
        })?;
        let mut bundle = self.read_secrets(&account.id).await?;
        let given = secret.is_some();
        if let (Some(kind), Some(s)) = (spec.secret, secret) {
            bundle.set(kind, s);
        }
        if let Some(kind) = spec.secret {
            if bundle.get(kind).is_none() {
                return Err(Error::needs_sign_in(format!(
                    "no {} is stored for account '{name}': give it with --secret-stdin or at the prompt",
                    kind.label()
                )));
            }
        }
        let http = http::client_for(&account)?;
        let now = self.now();
        let sink = KeyringSink::new(self, &account, Some(holder));
        let call = Call {
            account: &account,
            http: &http,
            now,
            previous: meta.as_ref(),
            sink: &sink,
        };
        let issued = match flow.sign_in(&call, &bundle).await {
            Ok(i) => i,
            Err(e) => return Err(self.record_sign_in_failure(&account, e, given, now)?),
        };
        let stored = self
            .store_issued(&account, &mut bundle, &issued, ("signed-in", now), holder)
            .await?;
        // BigFix: signing in again created a new token; the old one is revoked.
        if let (Some(old), Vendor::Bigfix) =
            (vendors::bigfix::TokenRef::of(meta.as_ref()), account.vendor)
        {
            if let Err(e) = flow.sign_out(&call, &bundle).await {
                let detail = format!(
                    "the previous token '{}' (id {}) was not revoked: {}",
                    old.name,
                    old.id,
                    e.message()
                );
                self.db
                    .record_event(&account.id, ("revoke", "failed", &detail), now)?;
            }
        }
        Ok(summarize(&account, Some(&stored), now))
    }

    fn record_sign_in_failure(
        &self,
        account: &Account,
        e: Error,
        given: bool,
        now: DateTime<Utc>,
    ) -> Result<Error> {
        let e = e.for_account(&account.name);
        let refused = e.kind() == ErrorKind::Refused;
        // A refused stored secret needs a human; a refused new one changes nothing.
        if refused && !given && self.db.token_meta(&account.id)?.is_some() {
            self.db
                .record_failure(&account.id, true, e.message(), ("sign-in", "refused"), now)?;
        } else {
            self.db
                .record_event(&account.id, ("sign-in", "failed", e.message()), now)?;
        }
        Ok(e)
    }

    /// Stores what a vendor issued, under `holder`'s lease: the keyring first, then
    /// the metadata, with an absurd lifetime bounded (and the history saying so).
    /// Returns the metadata as stored.
    async fn store_issued(
        &self,
        account: &Account,
        bundle: &mut SecretBundle,
        issued: &Issued,
        (kind, now): (&str, DateTime<Utc>),
        holder: &str,
    ) -> Result<TokenMeta> {
        apply_issued(bundle, issued);
        self.fence(account, holder)?;
        self.write_secrets(&account.id, bundle).await?;
        let mut meta = issued.meta.clone();
        let clamped = meta.clamp_lifetime(crate::model::min_renewal_interval());
        let note = [issued.note.as_deref(), clamped.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; ");
        self.db
            .put_token_meta(&account.id, &meta, (kind, "ok", &note), now)?;
        Ok(meta)
    }

    /// Signs in through the browser (device-code accounts): `prompt` is called once
    /// with the code and the address to open, then this waits for the approval, or
    /// until `cancel` completes. Once approved, storing what was issued is not
    /// cancelled, so the keyring and the database never disagree.
    pub async fn login_device(
        &self,
        name: &str,
        prompt: impl FnOnce(&DevicePrompt) + Send,
        cancel: impl std::future::Future<Output = ()> + Send,
    ) -> Result<AccountSummary> {
        let (account, meta) = self.find(name)?;
        let flow = flow_for(account.vendor)?;
        let http = http::client_for(&account)?;
        let now = self.now();
        // No lease while the admin approves (minutes): renewals go on meanwhile. The
        // sink takes it at the first write, and storing the result holds it.
        let sink = KeyringSink::new(self, &account, None);
        let call = Call {
            account: &account,
            http: &http,
            now,
            previous: meta.as_ref(),
            sink: &sink,
        };
        let code = flow
            .start_device(&call)
            .await
            .map_err(|e| e.for_account(name))?;
        prompt(&DevicePrompt::from(&code));
        self.db.record_event(
            &account.id,
            ("sign-in", "started", "waiting for approval in the browser"),
            now,
        )?;
        let approved = tokio::select! {
            r = flow.finish_device(&call, &code) => r,
            () = cancel => {
                if let Some(h) = sink.taken() {
                    let _ = self.db.release_lease(&account.id, &h);
                }
                self.db.record_event(
                    &account.id,
                    ("sign-in", "cancelled", "the browser sign-in was cancelled"),
                    self.now(),
                )?;
                return Err(Error::usage(format!(
                    "the browser sign-in of '{name}' was cancelled: sign in again when ready"
                )));
            }
        };
        let issued = match approved {
            Ok(i) => i,
            Err(e) => {
                if let Some(h) = sink.taken() {
                    let _ = self.db.release_lease(&account.id, &h);
                }
                return Err(self.record_sign_in_failure(&account, e, true, self.now())?);
            }
        };
        let holder = match sink.lease().await {
            Ok(h) => h,
            Err(e) => return Err(self.record_sign_in_failure(&account, e, true, self.now())?),
        };
        let now = self.now();
        let stored = self
            .holding_lease(&account.id, &holder, async {
                let mut bundle = self.read_secrets(&account.id).await?;
                self.store_issued(&account, &mut bundle, &issued, ("signed-in", now), &holder)
                    .await
            })
            .await?;
        Ok(summarize(&account, Some(&stored), now))
    }

    /// A token valid now, renewed first when it is due. Renewal is single-flight
    /// across processes: whoever holds the account's lease renews, the rest wait
    /// for its result.
    pub async fn token(&self, name: &str) -> Result<FreshToken> {
        self.token_with(name, TokenOptions::default()).await
    }

    pub async fn token_with(&self, name: &str, options: TokenOptions) -> Result<FreshToken> {
        let (account, meta) = self.find(name)?;
        let flow = flow_for(account.vendor)?;
        let meta = usable(&account, meta)?;
        if !options.force && meta.state(self.now()) == TokenState::Valid {
            let bundle = self.read_secrets(&account.id).await?;
            if let Some(token) = bundle.get(SecretKind::AccessToken) {
                // A token without an expiry (Immuta's API-key tokens) is asked about.
                if !(options.check || meta.expires_at.is_none() || flow.checks_before_use()) {
                    return Ok(fresh(flow, token.clone(), None));
                }
                match self.check(&account, flow, &meta, token).await {
                    Ok(Some(false)) => {}
                    Ok(_) => return Ok(fresh(flow, token.clone(), None)),
                    Err(e) => {
                        return Ok(fresh(
                            flow,
                            token.clone(),
                            Some(format!(
                                "could not check the token with the vendor: {}",
                                e.message()
                            )),
                        ))
                    }
                }
                self.db.record_event(
                    &account.id,
                    (
                        "check",
                        "invalid",
                        "the vendor no longer accepts the token (revoked or expired early): \
                         renewing it with what is stored",
                    ),
                    self.now(),
                )?;
            }
        }
        self.renew_single_flight(&account, flow, &meta).await
    }

    async fn check(
        &self,
        account: &Account,
        flow: &dyn VendorFlow,
        meta: &TokenMeta,
        token: &Secret,
    ) -> Result<Option<bool>> {
        let http = http::client_for(account)?;
        let call = Call {
            account,
            http: &http,
            now: self.now(),
            previous: Some(meta),
            sink: &NoAccountYet,
        };
        flow.check(&call, token)
            .await
            .map_err(|e| e.for_account(&account.name))
    }

    /// Renews the named account's token now (rotates a BigFix token).
    pub async fn renew_now(&self, name: &str) -> Result<AccountSummary> {
        let fresh = self
            .token_with(
                name,
                TokenOptions {
                    check: false,
                    force: true,
                },
            )
            .await?;
        if let Some(w) = fresh.warning {
            return Err(Error::vendor(w));
        }
        let (account, meta) = self.find(name)?;
        Ok(summarize(&account, meta.as_ref(), self.now()))
    }

    async fn renew_single_flight(
        &self,
        account: &Account,
        flow: &dyn VendorFlow,
        seen: &TokenMeta,
    ) -> Result<FreshToken> {
        // Another process may be renewing: then its result is used as soon as it lands.
        let holder = match self.wait_for_lease(account, Some((flow, seen))).await? {
            Leased::Held(holder) => holder,
            Leased::Settled(token) => return Ok(token),
        };
        self.holding_lease(
            &account.id,
            &holder,
            self.renew_holding_lease(account, flow, seen, &holder),
        )
        .await
    }

    async fn renew_holding_lease(
        &self,
        account: &Account,
        flow: &dyn VendorFlow,
        seen: &TokenMeta,
        holder: &str,
    ) -> Result<FreshToken> {
        let mut bundle = self.read_secrets(&account.id).await?;
        // Between our look and the lease, another process may have renewed.
        let current = self.db.token_meta(&account.id)?;
        if let Some(m) = &current {
            if renewed_since(m, seen, self.now()) {
                if let Some(t) = bundle.get(SecretKind::AccessToken) {
                    return Ok(fresh(flow, t.clone(), None));
                }
            }
        }
        let http = http::client_for(account)?;
        let now = self.now();
        let sink = KeyringSink::new(self, account, Some(holder)).knowing(&bundle);
        let call = Call {
            account,
            http: &http,
            now,
            previous: current.as_ref().or(Some(seen)),
            sink: &sink,
        };
        match flow.renew(&call, &bundle).await {
            Ok(issued) => {
                // The sink may have stored rotated secrets: then start from what it
                // wrote (under this lease nobody else wrote since).
                let mut bundle = sink.written().unwrap_or(bundle);
                self.store_issued(account, &mut bundle, &issued, ("renewed", now), holder)
                    .await?;
                Ok(fresh(flow, issued.token, None))
            }
            Err(e) => {
                let e = e.for_account(&account.name);
                let human = matches!(e.kind(), ErrorKind::Refused | ErrorKind::NeedsSignIn);
                self.db.record_failure(
                    &account.id,
                    human,
                    e.message(),
                    ("renewal", "failed"),
                    now,
                )?;
                let still_valid = seen.expires_at.is_none_or(|t| t > now);
                bundle = self.read_secrets(&account.id).await.unwrap_or(bundle);
                match bundle.get(SecretKind::AccessToken) {
                    Some(old) if !human && still_valid => Ok(fresh(
                        flow,
                        old.clone(),
                        Some(format!(
                            "renewal failed, the current token is still valid: {}",
                            e.message()
                        )),
                    )),
                    _ => Err(e),
                }
            }
        }
    }

    /// Removes an account: with `sign_out`, ends its session at the vendor where
    /// offered (revokes a BigFix token) first; then deletes its secrets and records.
    /// A locked keyring stops it before anything is deleted. Holds the account's
    /// lease, so a renewal in flight elsewhere finishes first and cannot write the
    /// secrets back after they were deleted.
    pub async fn remove(&self, name: &str, sign_out: bool) -> Result<SignOut> {
        let (account, _) = self.find(name)?;
        let holder = self.take_lease(&account).await?;
        self.holding_lease(
            &account.id,
            &holder,
            self.remove_holding_lease(name, sign_out),
        )
        .await
    }

    async fn remove_holding_lease(&self, name: &str, sign_out: bool) -> Result<SignOut> {
        let (account, meta) = self.find(name)?;
        let bundle = self.read_secrets(&account.id).await?;
        let outcome = match flow_for(account.vendor) {
            Ok(flow) if sign_out && bundle.get(SecretKind::AccessToken).is_some() => {
                let http = http::client_for(&account)?;
                let call = Call {
                    account: &account,
                    http: &http,
                    now: self.now(),
                    previous: meta.as_ref(),
                    sink: &NoAccountYet,
                };
                match tokio::time::timeout(SIGN_OUT_DEADLINE, flow.sign_out(&call, &bundle)).await {
                    Ok(Ok(())) => SignOut::Done,
                    Ok(Err(e)) => SignOut::Failed(e.message().to_string()),
                    Err(_) => SignOut::Failed("the vendor did not answer in time".into()),
                }
            }
            _ => SignOut::NotOffered,
        };
        let store = self.store.clone();
        let item = item_for(&account.id);
        run_blocking(move || store.delete(&item)).await?;
        self.db.delete_account(&account.id)?;
        Ok(outcome)
    }

    /// Replaces how an account trusts its server's certificate: a CA of its own
    /// (`ca_cert_pem`) or one pinned certificate (`pin_sha256`), never both, never
    /// neither checked. The handshake must succeed with the new trust before it is
    /// saved, so a typo cannot cut an account off.
    pub async fn set_trust(
        &self,
        name: &str,
        ca_cert_pem: Option<String>,
        pin_sha256: Option<String>,
    ) -> Result<()> {
        let (mut account, _) = self.find(name)?;
        if !account.base_url.starts_with("https://") {
            return Err(Error::usage(format!(
                "account '{name}' does not use TLS ({}): there is no certificate to trust",
                account.base_url
            )));
        }
        match (ca_cert_pem, pin_sha256) {
            (Some(ca), None) => {
                account.ca_cert_pem = Some(ca.trim().to_string());
                account.settings.remove(http::PIN_SETTING);
            }
            (None, Some(pin)) => {
                account.ca_cert_pem = None;
                account
                    .settings
                    .insert(http::PIN_SETTING.to_string(), http::normalize_pin(&pin)?);
            }
            _ => {
                return Err(Error::usage(
                    "give either --ca-cert FILE or --pin-sha256 FINGERPRINT",
                ))
            }
        }
        let client = http::client_for(&account)?;
        http::handshake(&client, &account.base_url)
            .await
            .map_err(|e| e.for_account(name))?;
        self.db.set_trust(
            &account.id,
            account.ca_cert_pem.as_deref(),
            &account.settings,
        )
    }

    /// Points an account at another address (the sandbox's, which changes each start).
    pub fn set_base_url(&self, name: &str, url: &str) -> Result<()> {
        let (account, _) = self.find(name)?;
        let url = http::normalize_base_url(url)?;
        self.db.set_base_url(&account.id, &url)
    }

    pub fn contains(&self, name: &str) -> Result<bool> {
        Ok(self.db.account_by_name(name)?.is_some())
    }
}

fn busy(account: &Account) -> Error {
    Error::vault(format!(
        "another Tokenkeeper process has been renewing or signing in account '{}' for over {} s; \
         try again",
        account.name,
        LEASE_TTL.num_seconds()
    ))
}

/// What waiting for a lease ended in.
enum Leased {
    /// The lease, under this holder name.
    Held(String),
    /// Another process renewed meanwhile: its token.
    Settled(FreshToken),
}

/// Releases a lease when the work holding it is dropped before it finished.
struct LeaseRelease<'a> {
    db: &'a Database,
    account_id: &'a str,
    holder: &'a str,
    armed: bool,
}

impl Drop for LeaseRelease<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.db.release_lease(self.account_id, self.holder);
        }
    }
}

/// Checks a vendor setting's value as the admin typed it.
fn check_setting(key: FieldKey, value: &str) -> Result<()> {
    match key {
        FieldKey::TokenDuration => vendors::bigfix::parse_duration(value).map(|_| ()),
        FieldKey::UserTokenExpires => {
            vendors::bigid::parse_expiry(value)
                .map(|_| ())
                .ok_or_else(|| {
                    Error::usage(format!(
                        "'{value}' is not a date: give the user token's expiry as YYYY-MM-DD"
                    ))
                })
        }
        FieldKey::RefreshMethod
            if !matches!(value.to_ascii_uppercase().as_str(), "GET" | "POST") =>
        {
            Err(Error::usage(format!("'{value}' is not GET or POST")))
        }
        FieldKey::FreeTrial if !matches!(value, "yes" | "no" | "true" | "false" | "1" | "0") => {
            Err(Error::usage(format!("'{value}' is not yes or no")))
        }
        _ => Ok(()),
    }
}

fn usable(account: &Account, meta: Option<TokenMeta>) -> Result<TokenMeta> {
    let name = &account.name;
    let meta = meta.ok_or_else(|| {
        Error::needs_sign_in(format!(
            "account '{name}' has not signed in yet: run tokenkeeper login {name}"
        ))
    })?;
    if meta.needs_human {
        let why = meta
            .last_error
            .as_deref()
            .unwrap_or("the vendor refused the stored credentials");
        return Err(Error::needs_sign_in(format!(
            "account '{name}' needs you to sign in again ({why}). Run: tokenkeeper login {name}"
        )));
    }
    Ok(meta)
}

/// Another process renewed the token after `seen` was read, and it has not expired:
/// use it rather than renew again (however short its life).
fn renewed_since(m: &TokenMeta, seen: &TokenMeta, now: DateTime<Utc>) -> bool {
    m.issued_at != seen.issued_at && !m.needs_human && m.expires_at.is_none_or(|e| e > now)
}

fn apply_issued(bundle: &mut SecretBundle, issued: &Issued) {
    bundle.set(SecretKind::AccessToken, issued.token.clone());
    for (kind, secret) in &issued.rotated {
        bundle.set(*kind, secret.clone());
    }
}

fn fresh(flow: &dyn VendorFlow, token: Secret, warning: Option<String>) -> FreshToken {
    let authorization = Secret::new(flow.authorization(&token));
    FreshToken {
        token,
        authorization,
        warning,
    }
}

fn summarize(a: &Account, meta: Option<&TokenMeta>, now: DateTime<Utc>) -> AccountSummary {
    AccountSummary {
        id: a.id.clone(),
        name: a.name.clone(),
        vendor: a.vendor,
        vendor_name: a.vendor.display_name().to_string(),
        base_url: a.base_url.clone(),
        method: a.method,
        username: a.username.clone(),
        labels: a.labels.clone(),
        state: meta
            .map(|m| m.state(now))
            .unwrap_or(TokenState::NeedsSignIn),
        expires_at_ms: meta
            .and_then(|m| m.expires_at)
            .map(|t| t.timestamp_millis()),
        human_deadline_ms: meta
            .and_then(|m| m.human_deadline)
            .map(|t| t.timestamp_millis()),
        renews_with: meta.map(|m| m.renews_with),
        last_error: meta.and_then(|m| m.last_error.clone()),
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("a keyring call failed: {e}")))?
}

/// The engine drives the vault: it lists accounts from SQLite alone (no keyring read)
/// and renews through the same single-flight path as `tokenkeeper token`.
#[async_trait]
impl crate::engine::Renewer for Vault {
    fn watched(&self) -> Result<Vec<crate::engine::Watched>> {
        Ok(self
            .db
            .accounts()?
            .into_iter()
            .map(|(account, meta)| crate::engine::Watched {
                label: format!(
                    "{} account '{}'",
                    account.vendor.display_name(),
                    account.name
                ),
                id: account.id,
                name: account.name,
                meta,
            })
            .collect())
    }

    async fn renew(&self, name: &str) -> Result<()> {
        self.renew_now(name).await.map(drop)
    }

    fn changes(&self) -> Option<i64> {
        self.db.data_version().ok()
    }

    fn alert_thresholds(&self) -> Option<Vec<Duration>> {
        Vault::alert_thresholds(self).ok()
    }
}

impl crate::engine::AlertLog for Vault {
    fn fired(&self, account_id: &str, deadline: DateTime<Utc>) -> Result<Vec<i64>> {
        self.db.alerts_fired(account_id, deadline)
    }

    fn record(
        &self,
        account_id: &str,
        deadline: DateTime<Utc>,
        thresholds: &[i64],
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.db.record_alerts(account_id, deadline, thresholds, now)
    }
}

#[cfg(test)]
mod lease_tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::secret_store::MemoryKeyring;

    async fn vault_with_account(
        dir: &Path,
    ) -> (Vault, Arc<MemoryKeyring>, Arc<ManualClock>, Account) {
        let keyring = Arc::new(MemoryKeyring::default());
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let vault = Vault::open_with(dir, keyring.clone(), clock.clone()).unwrap();
        let new = NewAccount {
            name: "ba".into(),
            vendor: Some(Vendor::Truesight),
            base_url: "http://127.0.0.1:9/truesight".into(),
            username: Some("ops".into()),
            tenant: Some("BmcRealm".into()),
            ..NewAccount::default()
        };
        vault
            .add(new, Some(Secret::new("pw-0123")), false)
            .await
            .unwrap();
        let (account, _) = vault.find("ba").unwrap();
        (vault, keyring, clock, account)
    }

    fn rotated(value: &str) -> [(SecretKind, Secret); 1] {
        [(SecretKind::RefreshToken, Secret::new(value))]
    }

    #[tokio::test]
    async fn a_rotated_secret_is_written_without_reading_the_keyring_again() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, keyring, _clock, account) = vault_with_account(dir.path()).await;
        let holder = vault.take_lease(&account).await.unwrap();
        let bundle = vault.read_secrets(&account.id).await.unwrap();
        let (reads, writes) = (keyring.reads(), keyring.writes());
        let sink = KeyringSink::new(&vault, &account, Some(&holder)).knowing(&bundle);
        sink.store_rotated(&rotated("rt-rotated-0001"))
            .await
            .unwrap();
        // Between the vendor's answer and the keyring write: one write, no read.
        assert_eq!(keyring.reads(), reads, "the sink read the keyring again");
        assert_eq!(keyring.writes(), writes + 1);
        let stored = vault.read_secrets(&account.id).await.unwrap();
        assert_eq!(
            stored.get(SecretKind::RefreshToken).unwrap().expose(),
            "rt-rotated-0001"
        );
        assert_eq!(
            stored.get(SecretKind::Password).unwrap().expose(),
            "pw-0123"
        );
        assert_eq!(sink.written().unwrap(), stored);
    }

    #[tokio::test]
    async fn a_holder_whose_lease_lapsed_and_was_taken_over_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, keyring, clock, account) = vault_with_account(dir.path()).await;
        let slow = vault.take_lease(&account).await.unwrap();
        // The machine slept past the lease; another process took it and rotated.
        clock.advance(LEASE_TTL + Duration::seconds(1));
        let other = vault.take_lease(&account).await.unwrap();
        KeyringSink::new(&vault, &account, Some(&other))
            .store_rotated(&rotated("rt-newer-0001"))
            .await
            .unwrap();
        let writes = keyring.writes();

        let late = KeyringSink::new(&vault, &account, Some(&slow))
            .store_rotated(&rotated("rt-stale-0000"))
            .await
            .unwrap_err();
        assert_eq!(late.kind(), ErrorKind::Vault);
        assert!(late.message().contains("took over account 'ba'"), "{late}");
        assert_eq!(keyring.writes(), writes, "the late holder wrote nothing");
        let stored = vault.read_secrets(&account.id).await.unwrap();
        assert_eq!(
            stored.get(SecretKind::RefreshToken).unwrap().expose(),
            "rt-newer-0001"
        );
        assert_eq!(
            stored.get(SecretKind::Password).unwrap().expose(),
            "pw-0123",
            "the rest of the bundle is kept"
        );
    }

    #[tokio::test]
    async fn the_heartbeat_keeps_a_slow_holders_lease_past_its_first_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let (vault, _keyring, clock, account) = vault_with_account(dir.path()).await;
        let holder = vault.take_lease(&account).await.unwrap();
        // The vault's clock runs 30 s per 60 ms here; the heartbeat beats every 20 ms.
        let beat = StdDuration::from_millis(20);
        let stored = vault
            .holding_lease_every(beat, &account.id, &holder, async {
                // A vendor that takes five minutes, in steps the heartbeat sees.
                for _ in 0..10 {
                    clock.advance(Duration::seconds(30));
                    tokio::time::sleep(StdDuration::from_millis(60)).await;
                    let now = clock.now();
                    let intruder =
                        vault
                            .db
                            .try_lease(&account.id, "other/holder/ns", now + LEASE_TTL, now)?;
                    assert!(!intruder, "the lease lapsed while its holder worked");
                }
                KeyringSink::new(&vault, &account, Some(&holder))
                    .store_rotated(&rotated("rt-after-five-minutes"))
                    .await
            })
            .await;
        stored.unwrap();
        let now = clock.now();
        assert!(
            vault
                .db
                .try_lease(&account.id, "next", now + LEASE_TTL, now)
                .unwrap(),
            "released once the work is done"
        );
    }
}
