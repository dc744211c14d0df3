//! `tokenkeeper exec NAME --keep-fresh -- CMD`: a command that runs longer than its
//! token lives reads the token from a file that is rewritten before each expiry for
//! as long as the command runs, and removed when it ends, even when `exec` is killed.
//!
//! - The folder is private: `$XDG_RUNTIME_DIR` (when it is ours and 0700) or the
//!   temporary folder, a new 0700 folder in it, the files 0600. The token file holds
//!   the token alone (no newline); the header file the one line `Authorization: ...`,
//!   for curl's `-H @file`.
//! - A file is replaced whole (written beside it, synced, renamed over it): a reader
//!   sees the old token or the new one, never half of one.
//! - The token comes from the vault's `token`, as `tokenkeeper token` gets it, so a
//!   renewal is single-flight with every other process (the app, `watch`, scripts).
//!   It is fetched again at the token's `renew_at`, and at once when another process
//!   renewed it (a rotation may have revoked the old one) or a human signed in again.
//! - A renewal that fails leaves the file with the token while it is valid, says so
//!   once on stderr and tries again, less and less often; an expired token is never
//!   left in the file: at its expiry the files are removed until a renewal succeeds.
//! - Cleanup when `exec` cannot do it (SIGKILL): a guard process (`/bin/sh`, reading
//!   a pipe from `exec`) sees the pipe close when `exec` dies, however it dies; it
//!   then sends SIGTERM to the command (whose token stopped being kept fresh) and
//!   removes the folder. The guard ignores SIGINT, SIGTERM and SIGHUP, so a Ctrl-C
//!   to the terminal's process group does not end it before `exec`.
//! - SIGTERM, SIGINT and SIGHUP sent to `exec` are passed on to the command, whose
//!   exit code (128 + signal when a signal ended it) is `exec`'s.

use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitCode, Stdio};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokenkeeper_core::agent::socket;
use tokenkeeper_core::model::{self, TokenMeta};
use tokenkeeper_core::{Error, FreshToken, Result, Vault};
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{signal, SignalKind};
use zeroize::Zeroizing;

/// The environment variable with the token file's path.
pub const TOKEN_FILE_VAR: &str = "TOKENKEEPER_TOKEN_FILE";
/// The environment variable with the header file's path (`Authorization: ...`).
pub const HEADER_FILE_VAR: &str = "TOKENKEEPER_HEADER_FILE";
const TOKEN_FILE: &str = "token";
const HEADER_FILE: &str = "authorization-header";

/// How often the vault is looked at for a renewal by another process (a database
/// read, no keyring).
const LOOK_EVERY: StdDuration = StdDuration::from_secs(5);
/// A token without an expiry (renewed when the vendor refuses it) is asked for
/// again this often: `token` checks it with the vendor.
const NO_EXPIRY_RECHECK: Duration = Duration::minutes(5);
/// The longest wait between two tries of a renewal that keeps failing.
const RETRY_MAX: Duration = Duration::minutes(5);
/// Bounds on how long before its expiry a token leaves the files (a twentieth of its
/// lifetime).
const EXPIRY_MARGIN_MIN: Duration = Duration::seconds(1);
const EXPIRY_MARGIN_MAX: Duration = Duration::seconds(30);
/// The least wait before the next fetch, against a busy loop on a clock's jitter.
const LEAST_WAIT: Duration = Duration::milliseconds(500);

/// The guard: waits for the command's pid, then for the pipe to close. Told
/// `exited` first, the command is gone (and its pid maybe reused): it is left alone.
const GUARD_SCRIPT: &str = r#"trap '' INT TERM HUP
IFS= read -r child || child=
while IFS= read -r line; do
  [ "$line" = exited ] && child=
done
[ -n "$child" ] && kill -TERM "$child" 2>/dev/null
rm -rf -- "$1"
"#;

/// Runs `command` with the account's token in its environment and in a file kept
/// fresh while it runs; the command's exit code is returned.
pub async fn run(vault: &Vault, name: &str, command: &[String]) -> Result<ExitCode> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| Error::usage("give the command to run after --"))?;
    let first = fetch(vault, name).await?;
    warn_once(name, first.token.warning.as_ref(), first.meta.as_ref());
    let folder = TokenFolder::create()?;
    let mut guard = Guard::start(&folder.path).await?;
    folder.write(&first.token)?;
    // Listening before the command starts: from then on a signal is passed on.
    let mut term = listen(SignalKind::terminate())?;
    let mut int = listen(SignalKind::interrupt())?;
    let mut hup = listen(SignalKind::hangup())?;

    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env("TOKENKEEPER_TOKEN", first.token.token.expose())
        .env(
            "TOKENKEEPER_AUTHORIZATION",
            first.token.authorization.expose(),
        )
        .env(TOKEN_FILE_VAR, folder.path.join(TOKEN_FILE))
        .env(HEADER_FILE_VAR, folder.path.join(HEADER_FILE))
        .spawn()
        .map_err(|e| Error::usage(format!("cannot run '{program}': {e}")))?;
    let pid = child.id().map(|p| Pid::from_raw(p as i32));
    if let Some(pid) = pid {
        guard.tell(&format!("{pid}\n")).await;
    }

    let mut keeper = Keeper::new(name, first);
    let mut renewal: Option<Pin<Box<dyn std::future::Future<Output = Result<Fetched>> + '_>>> =
        None;
    let status = loop {
        let wake = keeper.wake_at(Utc::now());
        // While a renewal is under way (a slow vendor, another process's lease), the
        // token in the files still leaves them at its time.
        let expiry = keeper.expiry_wait(Utc::now());
        tokio::select! {
            status = child.wait() => break status,
            _ = term.recv() => forward(pid, Signal::SIGTERM),
            _ = int.recv() => forward(pid, Signal::SIGINT),
            _ = hup.recv() => forward(pid, Signal::SIGHUP),
            outcome = async { renewal.as_mut().expect("a renewal in flight").await },
                if renewal.is_some() => {
                renewal = None;
                keeper.fetched(outcome, &folder, Utc::now());
            }
            _ = tokio::time::sleep(expiry.unwrap_or_default()),
                if renewal.is_some() && expiry.is_some() => {
                keeper.expire_if_due(&folder, Utc::now());
            }
            _ = tokio::time::sleep(wake), if renewal.is_none() => {
                let now = Utc::now();
                keeper.expire_if_due(&folder, now);
                if keeper.should_fetch(vault, now) {
                    renewal = Some(Box::pin(fetch(vault, name)));
                }
            }
        }
    };
    // The command is gone: no one reads the files any more.
    guard.tell("exited\n").await;
    drop(folder);
    guard.finish().await;
    if let Some(in_flight) = renewal {
        // Let a renewal under way land in the vault rather than cut it short.
        let _ = in_flight.await;
    }
    let status =
        status.map_err(|e| Error::internal(format!("cannot wait for '{program}': {e}")))?;
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return Ok(ExitCode::from((128 + signal) as u8));
        }
    }
    Ok(ExitCode::from(status.code().unwrap_or(1) as u8))
}

fn listen(kind: SignalKind) -> Result<tokio::signal::unix::Signal> {
    signal(kind).map_err(|e| Error::internal(format!("cannot listen for signals: {e}")))
}

/// Passes a signal `exec` received on to the command.
fn forward(pid: Option<Pid>, sig: Signal) {
    if let Some(pid) = pid {
        let _ = kill(pid, sig);
    }
}

/// A token and the facts that say how long it lives.
struct Fetched {
    token: FreshToken,
    /// What the vault knows of the token handed out; `None` for an account never
    /// signed in (then `token` would have failed).
    meta: Option<TokenMeta>,
}

/// The vault's `token`, with the facts of the very token it handed out (the vault
/// reads them before the token, so they are never newer than it).
async fn fetch(vault: &Vault, name: &str) -> Result<Fetched> {
    let token = vault.token(name).await?;
    let meta = token.facts.clone();
    Ok(Fetched { token, meta })
}

fn meta_of(vault: &Vault, name: &str) -> Result<Option<TokenMeta>> {
    Ok(vault
        .database()
        .account_by_name(name)?
        .and_then(|(_, meta)| meta))
}

/// When to fetch again, what the files hold, and what stderr was told.
struct Keeper {
    name: String,
    /// The facts of the token in the files.
    held: Option<TokenMeta>,
    /// The files hold a token (they are removed when it expires unrenewed).
    written: bool,
    next_fetch: DateTime<Utc>,
    /// Renewals have been failing since this was said on stderr.
    failing: bool,
    retry_after: Duration,
}

impl Keeper {
    fn new(name: &str, first: Fetched) -> Self {
        let now = Utc::now();
        let mut keeper = Keeper {
            name: name.to_string(),
            held: None,
            written: true,
            next_fetch: now,
            failing: first.token.warning.is_some(),
            retry_after: model::min_renewal_interval(),
        };
        if keeper.failing {
            keeper.retry_later(now);
        } else {
            keeper.next_fetch = next_fetch_for(first.meta.as_ref(), now);
        }
        keeper.held = first.meta;
        keeper
    }

    /// How long to sleep before looking again.
    fn wake_at(&self, now: DateTime<Utc>) -> StdDuration {
        let mut until = self.next_fetch;
        if let Some(expires) = self.leaves_files_at().filter(|_| self.written) {
            until = until.min(expires);
        }
        (until - now)
            .to_std()
            .unwrap_or_default()
            // A little after the moment, so that the vault finds it reached.
            .saturating_add(StdDuration::from_millis(50))
            .min(LOOK_EVERY)
    }

    /// How long until the token in the files must leave them, if they hold one.
    fn expiry_wait(&self, now: DateTime<Utc>) -> Option<StdDuration> {
        let at = self.leaves_files_at().filter(|_| self.written)?;
        Some(
            (at - now)
                .to_std()
                .unwrap_or_default()
                .saturating_add(StdDuration::from_millis(50)),
        )
    }

    fn leaves_files_at(&self) -> Option<DateTime<Utc>> {
        self.held.as_ref().and_then(usable_until)
    }

    /// Whether to ask the vault now: the time came, or the token in the vault is not
    /// the one in the files any more.
    fn should_fetch(&self, vault: &Vault, now: DateTime<Utc>) -> bool {
        if now >= self.next_fetch {
            return true;
        }
        let stored = meta_of(vault, &self.name).ok().flatten();
        let issued = |m: Option<&TokenMeta>| m.map(|m| m.issued_at);
        issued(stored.as_ref()) != issued(self.held.as_ref())
    }

    /// Removes the files when the token in them expired and none replaced it.
    fn expire_if_due(&mut self, folder: &TokenFolder, now: DateTime<Utc>) {
        if !self.written || self.leaves_files_at().is_none_or(|e| e > now) {
            return;
        }
        folder.clear();
        self.written = false;
        say(&format!(
            "the token of '{}' expired and could not be renewed: the token file is removed \
             until a renewal succeeds (Tokenkeeper keeps trying); `tokenkeeper login {}` signs \
             in again",
            self.name, self.name
        ));
    }

    fn fetched(&mut self, outcome: Result<Fetched>, folder: &TokenFolder, now: DateTime<Utc>) {
        match outcome {
            Ok(f) => {
                let valid = f
                    .meta
                    .as_ref()
                    .and_then(usable_until)
                    .is_none_or(|e| e > now);
                if valid {
                    match folder.write(&f.token) {
                        Ok(()) => self.written = true,
                        Err(e) => say(&format!(
                            "cannot write the token file of '{}': {}",
                            self.name,
                            e.message()
                        )),
                    }
                    self.held = f.meta.clone();
                }
                match f.token.warning {
                    Some(w) => self.failed(&w, now),
                    None => {
                        if self.failing {
                            say(&format!(
                                "renewed '{}' again: the token file is fresh",
                                self.name
                            ));
                        }
                        self.failing = false;
                        self.retry_after = model::min_renewal_interval();
                        self.next_fetch = next_fetch_for(f.meta.as_ref(), now);
                    }
                }
            }
            Err(e) => self.failed(&e, now),
        }
    }

    fn failed(&mut self, e: &Error, now: DateTime<Utc>) {
        if !self.failing {
            self.failing = true;
            warn_once(
                &self.name,
                Some(e),
                self.held.as_ref().filter(|_| self.written),
            );
        }
        self.retry_later(now);
    }

    fn retry_later(&mut self, now: DateTime<Utc>) {
        self.next_fetch = now + self.retry_after;
        self.retry_after = (self.retry_after * 2).min(RETRY_MAX);
    }
}

/// Until when the token described by `meta` stays in the files: a little before its
/// expiry, since the vendor counted its lifetime from a moment before Tokenkeeper
/// heard of it, and a script uses a token a moment after it read it.
fn usable_until(meta: &TokenMeta) -> Option<DateTime<Utc>> {
    let expires = meta.expires_at?;
    let margin = ((expires - meta.issued_at) / 20).clamp(EXPIRY_MARGIN_MIN, EXPIRY_MARGIN_MAX);
    Some(expires - margin)
}

/// When the token described by `meta` should be fetched again.
fn next_fetch_for(meta: Option<&TokenMeta>, now: DateTime<Utc>) -> DateTime<Utc> {
    let at = match meta.and_then(TokenMeta::renew_at) {
        Some(renew_at) => renew_at,
        None => now + NO_EXPIRY_RECHECK,
    };
    at.max(now + LEAST_WAIT)
}

/// Says once that renewing failed, with what to do, and how long the file's token
/// still works.
fn warn_once(name: &str, e: Option<&Error>, held: Option<&TokenMeta>) {
    let Some(e) = e else { return };
    let left = match held.and_then(usable_until) {
        Some(expires) => format!(
            "; the token file keeps the current token for another {} s",
            (expires - Utc::now()).num_seconds().max(0)
        ),
        None => String::new(),
    };
    say(&format!(
        "warning: cannot renew '{name}' for the running command: {}{left}; Tokenkeeper keeps trying",
        e.cli_text()
    ));
}

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "tokenkeeper: {line}");
}

/// The private folder with the token file and the header file; removed on drop.
struct TokenFolder {
    path: PathBuf,
}

impl TokenFolder {
    fn create() -> Result<Self> {
        // The runtime folder when it is ours and private (the agent's own check).
        let base = socket::private_runtime_dir()
            .ok()
            .flatten()
            .unwrap_or_else(std::env::temp_dir);
        let uid = nix::unistd::getuid().as_raw();
        let random = std::collections::hash_map::RandomState::new();
        for _ in 0..16 {
            let mut h = random.build_hasher();
            h.write_u128(
                std::time::UNIX_EPOCH
                    .elapsed()
                    .unwrap_or_default()
                    .as_nanos(),
            );
            let path = base.join(format!(
                "tokenkeeper-exec-{}-{:016x}",
                std::process::id(),
                h.finish()
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(folder_error(&path, &e)),
            }
            let folder = TokenFolder { path };
            // The umask may have taken bits away, never added any; and the folder
            // must be the one just made, a folder of ours.
            std::fs::set_permissions(&folder.path, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| folder_error(&folder.path, &e))?;
            let meta = std::fs::symlink_metadata(&folder.path)
                .map_err(|e| folder_error(&folder.path, &e))?;
            if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o777 != 0o700 {
                return Err(Error::internal(format!(
                    "the folder {} is not a private folder of this user",
                    folder.path.display()
                )));
            }
            return Ok(folder);
        }
        Err(Error::internal(format!(
            "cannot make a private folder in {}",
            base.display()
        )))
    }

    /// Writes the token file and the header file, each replaced whole.
    fn write(&self, fresh: &FreshToken) -> Result<()> {
        let header = Zeroizing::new(format!("Authorization: {}", fresh.authorization.expose()));
        if fresh.token.expose().is_empty() {
            return Err(Error::internal("the vault handed out an empty token"));
        }
        replace_file(&self.path, TOKEN_FILE, fresh.token.expose().as_bytes())
            .and_then(|()| replace_file(&self.path, HEADER_FILE, header.as_bytes()))
            .and_then(|()| std::fs::File::open(&self.path)?.sync_all())
            .map_err(|e| folder_error(&self.path, &e))
    }

    /// Removes the files (an expired token is never left in them).
    fn clear(&self) {
        for file in [TOKEN_FILE, HEADER_FILE] {
            let _ = std::fs::remove_file(self.path.join(file));
        }
    }
}

impl Drop for TokenFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn folder_error(path: &Path, e: &std::io::Error) -> Error {
    Error::internal(format!("the token folder {}: {e}", path.display()))
}

/// Writes `content` to `dir/name` through a file beside it, synced, then renamed
/// over it: a reader opens the old file or the new one.
fn replace_file(dir: &Path, name: &str, content: &[u8]) -> std::io::Result<()> {
    let next = dir.join(format!(".{name}.next"));
    let _ = std::fs::remove_file(&next);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&next)?;
    file.write_all(content)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&next, dir.join(name))
}

/// The process that removes the folder (and stops the command) if `exec` dies
/// without doing it: it waits on a pipe that only `exec` holds open.
struct Guard {
    child: tokio::process::Child,
    pipe: Option<tokio::process::ChildStdin>,
}

impl Guard {
    async fn start(folder: &Path) -> Result<Self> {
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(GUARD_SCRIPT)
            .arg("tokenkeeper-exec-guard")
            .arg(folder)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                Error::internal(format!(
                    "cannot start /bin/sh to clean up the token folder: {e}"
                ))
            })?;
        let pipe = child.stdin.take();
        Ok(Guard { child, pipe })
    }

    async fn tell(&mut self, line: &str) {
        if let Some(pipe) = self.pipe.as_mut() {
            let _ = pipe.write_all(line.as_bytes()).await;
            let _ = pipe.flush().await;
        }
    }

    /// Closes the pipe and waits for the guard to end.
    async fn finish(mut self) {
        drop(self.pipe.take());
        let _ = self.child.wait().await;
    }
}
