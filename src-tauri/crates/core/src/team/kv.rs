//! KV version 2 at the mount and path prefix the admin chose: versioned reads, writes
//! that are always a check-and-set, metadata (the current version), and removal.
//! Values are held as `Secret`s from the moment they leave the answer.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

use super::client::{segment, wipe, OpenBao};
use super::failure::{Failure, TeamError, TeamResult};
use crate::secret::Secret;

/// The fields of one version of a KV entry, every value a `Secret` (Debug shows the
/// field names only).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields(BTreeMap<String, Secret>);

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        write!(f, "Fields{names:?}")
    }
}

impl Fields {
    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.0.get(name)
    }

    /// A field that is not secret (a holder name, a fence number), as text.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(Secret::expose)
    }

    pub fn set(&mut self, name: impl Into<String>, value: Secret) {
        self.0.insert(name.into(), value);
    }

    pub fn with(mut self, name: impl Into<String>, value: Secret) -> Self {
        self.set(name, value);
        self
    }

    pub fn remove(&mut self, name: &str) -> Option<Secret> {
        self.0.remove(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.expose().to_string())))
                .collect(),
        )
    }

    fn from_json(map: &Map<String, Value>) -> Self {
        Fields(
            map.iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), Secret::new(text))
                })
                .collect(),
        )
    }
}

/// One version of an entry as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub version: u64,
    /// When the server stored this version (the server's clock).
    pub created_time: Option<DateTime<Utc>>,
    pub data: Fields,
}

/// One version's facts in the entry's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionFacts {
    pub created_time: Option<DateTime<Utc>>,
    /// Soft-deleted (recoverable with undelete) when set.
    pub deletion_time: Option<DateTime<Utc>>,
    pub destroyed: bool,
}

/// An entry's metadata: no values, only versions and settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub current_version: u64,
    pub oldest_version: u64,
    pub versions: BTreeMap<u64, VersionFacts>,
    pub custom_metadata: BTreeMap<String, String>,
}

/// A KV version 2 engine at `mount`, every key under `prefix`.
#[derive(Debug, Clone)]
pub struct Kv {
    bao: Arc<OpenBao>,
    mount: String,
    prefix: String,
}

/// How long a reader waits for a node to catch up with a version it knows exists.
const CATCH_UP: [Duration; 6] = [
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
    Duration::from_millis(1600),
    Duration::from_millis(3200),
];

impl Kv {
    /// The engine at `mount` (as `secret`) with keys under `prefix` (as `tokenkeeper/ops`).
    pub fn new(bao: Arc<OpenBao>, mount: &str, prefix: &str) -> TeamResult<Self> {
        let mount = relative(mount)?;
        let prefix = relative(prefix)?;
        if mount.is_empty() {
            return Err(TeamError::new(
                Failure::Usage,
                "give the KV version 2 engine's mount path (as 'secret')",
            ));
        }
        Ok(Self { bao, mount, prefix })
    }

    pub fn bao(&self) -> &Arc<OpenBao> {
        &self.bao
    }

    /// "secret/tokenkeeper/ops/KEY", for messages.
    pub fn describe(&self, key: &str) -> String {
        format!("{}/{}", self.mount, self.full_key(key))
    }

    fn full_key(&self, key: &str) -> String {
        match (self.prefix.is_empty(), key.is_empty()) {
            (true, _) => key.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{key}", self.prefix),
        }
    }

    fn api(&self, part: &str, key: &str) -> TeamResult<String> {
        let key = relative(key)?;
        Ok(format!("{}/{part}/{}", self.mount, self.full_key(&key)))
    }

    /// The latest version, or `None` when there is none (never written, or its
    /// latest version deleted or destroyed).
    pub async fn read(&self, key: &str) -> TeamResult<Option<Entry>> {
        match self.read_path(key, None).await {
            Err(e) if e.failure() == Failure::NotFound => Ok(None),
            other => other.map(Some),
        }
    }

    /// One version; `NotFound` if it never existed or was deleted or destroyed.
    pub async fn read_version(&self, key: &str, version: u64) -> TeamResult<Entry> {
        self.read_path(key, Some(version)).await
    }

    /// The latest version, but never one older than `min_version` (a version this
    /// reader already saw or was told of): a standby right after a failover may
    /// answer the previous version for a moment, so the read is retried (about 6 s
    /// in all) until the node catches up, then fails as `Stale`.
    pub async fn read_at_least(&self, key: &str, min_version: u64) -> TeamResult<Option<Entry>> {
        self.read_counting(key, min_version, |e| e.version).await
    }

    /// `read_at_least` with the version counted by `version_of` (an entry that
    /// records the version of another one it was made from).
    pub(crate) async fn read_counting(
        &self,
        key: &str,
        min_version: u64,
        version_of: impl Fn(&Entry) -> u64,
    ) -> TeamResult<Option<Entry>> {
        let mut waits = CATCH_UP.iter();
        loop {
            let seen = self.read(key).await?;
            let version = seen.as_ref().map_or(0, &version_of);
            if version >= min_version {
                return Ok(seen);
            }
            match waits.next() {
                Some(wait) => tokio::time::sleep(*wait).await,
                None => {
                    return Err(TeamError::new(
                        Failure::Stale,
                        format!(
                            "{} kept answering version {version} of {} where version \
                             {min_version} exists: the node is behind (a standby after a \
                             failover?). Tokenkeeper acted on nothing; try again",
                            self.bao.describe(),
                            self.describe(key)
                        ),
                    ))
                }
            }
        }
    }

    async fn read_path(&self, key: &str, version: Option<u64>) -> TeamResult<Entry> {
        let mut path = self.api("data", key)?;
        if let Some(v) = version {
            path.push_str(&format!("?version={v}"));
        }
        let what = format!("read {}", self.describe(key));
        let mut answer = self.bao.send(Method::GET, &path, None, &what, true).await?;
        let parsed = serde_json::from_slice::<Value>(&answer.body);
        answer.body.zeroize();
        let mut value = parsed.map_err(|_| unreadable(&self.bao, &what))?;
        let entry = entry_of(&value);
        wipe(&mut value);
        let entry = entry.ok_or_else(|| unreadable(&self.bao, &what))?;
        // A deleted version answers 200 on some servers with data null.
        entry.ok_or_else(|| {
            TeamError::new(
                Failure::NotFound,
                format!(
                    "{} holds no value at {}: it was deleted or destroyed",
                    self.bao.describe(),
                    self.describe(key)
                ),
            )
        })
    }

    /// Writes a new version if `cas` is the current version (0: only if there is
    /// none yet) and returns the new version. A lost race is `CasConflict`, and
    /// nothing was written.
    pub async fn write(&self, key: &str, data: &Fields, cas: u64) -> TeamResult<u64> {
        self.put(key, data, Some(cas)).await
    }

    /// Writes a new version whatever the current one is: for entries only one
    /// writer changes (a server's own items, an account's settings).
    pub async fn write_unchecked(&self, key: &str, data: &Fields) -> TeamResult<u64> {
        self.put(key, data, None).await
    }

    async fn put(&self, key: &str, data: &Fields, cas: Option<u64>) -> TeamResult<u64> {
        let path = self.api("data", key)?;
        let mut doc = match cas {
            Some(cas) => serde_json::json!({ "data": data.to_json(), "options": { "cas": cas } }),
            None => serde_json::json!({ "data": data.to_json() }),
        };
        let body = Zeroizing::new(doc.to_string());
        wipe(&mut doc);
        let what = format!("write {}", self.describe(key));
        let answer = self
            .bao
            .send(Method::POST, &path, Some(body), &what, true)
            .await?;
        let value: Value =
            serde_json::from_slice(&answer.body).map_err(|_| unreadable(&self.bao, &what))?;
        value["data"]["version"]
            .as_u64()
            .ok_or_else(|| unreadable(&self.bao, &what))
    }

    /// The entry's versions and settings, or `None` if there is no entry.
    pub async fn metadata(&self, key: &str) -> TeamResult<Option<Metadata>> {
        let path = self.api("metadata", key)?;
        let what = format!("read the metadata of {}", self.describe(key));
        let answer = match self.bao.send(Method::GET, &path, None, &what, true).await {
            Err(e) if e.failure() == Failure::NotFound => return Ok(None),
            other => other?,
        };
        let value: Value =
            serde_json::from_slice(&answer.body).map_err(|_| unreadable(&self.bao, &what))?;
        let data = &value["data"];
        let current_version = data["current_version"]
            .as_u64()
            .ok_or_else(|| unreadable(&self.bao, &what))?;
        let versions = data["versions"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| {
                        Some((
                            k.parse::<u64>().ok()?,
                            VersionFacts {
                                created_time: time(&v["created_time"]),
                                deletion_time: time(&v["deletion_time"]),
                                destroyed: v["destroyed"].as_bool().unwrap_or(false),
                            },
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let custom_metadata = data["custom_metadata"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(Metadata {
            current_version,
            oldest_version: data["oldest_version"].as_u64().unwrap_or(0),
            versions,
            custom_metadata,
        }))
    }

    /// Soft-deletes the latest version (it can be undeleted; its number stays used).
    pub async fn delete_latest(&self, key: &str) -> TeamResult<()> {
        let path = self.api("data", key)?;
        let what = format!("delete {}", self.describe(key));
        self.bao
            .send(Method::DELETE, &path, None, &what, true)
            .await
            .map(drop)
    }

    /// Destroys the given versions for good (their values are gone from storage).
    pub async fn destroy(&self, key: &str, versions: &[u64]) -> TeamResult<()> {
        let path = self.api("destroy", key)?;
        let body = Zeroizing::new(serde_json::json!({ "versions": versions }).to_string());
        let what = format!("destroy versions of {}", self.describe(key));
        self.bao
            .send(Method::POST, &path, Some(body), &what, true)
            .await
            .map(drop)
    }

    /// Removes the entry: every version and its metadata (`bao kv metadata delete`).
    pub async fn remove(&self, key: &str) -> TeamResult<()> {
        let path = self.api("metadata", key)?;
        let what = format!("remove {}", self.describe(key));
        self.bao
            .send(Method::DELETE, &path, None, &what, true)
            .await
            .map(drop)
    }

    /// The keys directly under `key` (folders end with '/'); empty if none.
    pub async fn list(&self, key: &str) -> TeamResult<Vec<String>> {
        let path = self.api("metadata", key)?;
        let what = format!("list {}", self.describe(key));
        let list = Method::from_bytes(b"LIST").map_err(|_| unreadable(&self.bao, &what))?;
        let answer = match self.bao.send(list, &path, None, &what, true).await {
            Err(e) if e.failure() == Failure::NotFound => return Ok(Vec::new()),
            other => other?,
        };
        let value: Value =
            serde_json::from_slice(&answer.body).map_err(|_| unreadable(&self.bao, &what))?;
        Ok(value["data"]["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// The entry in a read's answer: `Some(None)` for a deleted version.
fn entry_of(value: &Value) -> Option<Option<Entry>> {
    let data = &value["data"];
    let meta = &data["metadata"];
    let version = meta["version"].as_u64()?;
    Some(data["data"].as_object().map(|fields| Entry {
        version,
        created_time: time(&meta["created_time"]),
        data: Fields::from_json(fields),
    }))
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .filter(|s| !s.is_empty())
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn unreadable(bao: &OpenBao, what: &str) -> TeamError {
    TeamError::new(
        Failure::Protocol,
        format!(
            "{} answered in a form Tokenkeeper cannot read when asked to {what}: check that \
             the mount is a KV version 2 engine",
            bao.describe()
        ),
    )
}

/// A path relative to the mount: segments checked, no leading or trailing '/'.
fn relative(path: &str) -> TeamResult<String> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for part in trimmed.split('/') {
        segment(part)?;
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_never_show_their_values() {
        let f = Fields::default().with("refresh_token", Secret::new("rt-canary-1"));
        let shown = format!("{f:?}");
        assert!(shown.contains("refresh_token"));
        assert!(!shown.contains("rt-canary-1"), "{shown}");
    }

    #[test]
    fn a_read_answer_gives_its_version_and_a_deleted_one_none() {
        let live = serde_json::json!({"data": {"data": {"a": "x", "n": 3},
            "metadata": {"version": 4, "created_time": "2026-12-02T13:13:32.26Z"}}});
        let e = entry_of(&live).unwrap().unwrap();
        assert_eq!(e.version, 4);
        assert_eq!(e.data.text("a"), Some("x"));
        assert_eq!(e.data.text("n"), Some("3"));
        assert!(e.created_time.is_some());
        let deleted = serde_json::json!({"data": {"data": null,
            "metadata": {"version": 5, "deletion_time": "2026-12-02T13:13:32Z"}}});
        assert_eq!(entry_of(&deleted), Some(None));
    }

    #[test]
    fn paths_stay_under_the_mount() {
        assert_eq!(relative("/team/ops/").unwrap(), "team/ops");
        assert!(relative("team/../sys").is_err());
        assert!(relative("a//b").is_err());
    }
}
