//! Where a vault's agent listens and who may talk to it, and the same rules for the
//! desktop app's one-instance socket. A socket lives in a folder only this user can
//! enter: `$XDG_RUNTIME_DIR/tokenkeeper` when the runtime folder is what the XDG spec
//! promises (ours, mode 0700, not a symlink), else `tokenkeeper-run` beside the
//! default vault folder, made 0700 and checked the same way; never a predictable name
//! in a shared folder such as /tmp, and never a folder relative to wherever the
//! process was started (no HOME). The socket itself is 0600, named after the vault's
//! keyring service so two vaults have two agents, and each side checks the other's
//! user with `SO_PEERCRED` on every connection.
//!
//! One agent per vault, whatever runtime folder each was started with (a desktop
//! session's, cron's or ssh's none): the lock is `agent.lock` in the vault's own
//! folder, held while the agent runs, and it records the agent's pid and socket, so a
//! second agent, or a client started without the same runtime folder, finds the one
//! that runs.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::vault;

/// The name of the agent's lock file in the vault's folder.
pub const LOCK_FILE: &str = "agent.lock";

/// This process's effective user.
pub fn my_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Whether the process at the other end of a connected Unix socket runs as this
/// user (an error reading the credentials counts as no).
pub fn same_user(stream: &impl AsFd) -> bool {
    peer_uid(stream).is_some_and(|uid| uid == my_uid())
}

/// The user of the process at the other end of a connected Unix socket.
pub fn peer_uid(stream: &impl AsFd) -> Option<u32> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    getsockopt(stream, PeerCredentials).ok().map(|c| c.uid())
}

/// Whether `path` is a real folder (not a symlink) of ours that no one else may
/// enter, named from the root; why not, in words.
pub fn check_private(path: &Path) -> Result<(), String> {
    if !path.is_absolute() {
        return Err(format!(
            "{} is a relative path (is HOME set?): Tokenkeeper uses no folder relative \
             to where it was started",
            path.display()
        ));
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.file_type().is_symlink() {
        return Err(format!("{} is a symlink", path.display()));
    }
    if !meta.is_dir() {
        return Err(format!("{} is not a folder", path.display()));
    }
    if meta.uid() != my_uid() {
        return Err(format!(
            "{} belongs to user {}, not to this user ({})",
            path.display(),
            meta.uid(),
            my_uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is open to others (mode {mode:o}, not 700)",
            path.display()
        ));
    }
    Ok(())
}

/// Creates `path` as a 0700 folder (or takes the one there) and checks that it is
/// ours and private; a folder of ours left open to others is closed again. A
/// relative path is refused before anything is created.
pub fn private_folder(path: &Path) -> std::io::Result<()> {
    let not_private = |why: String| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("the folder for Tokenkeeper's socket is not private: {why}"),
        )
    };
    if !path.is_absolute() {
        return Err(not_private(check_private(path).unwrap_err()));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() && meta.uid() == my_uid() && meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    check_private(path).map_err(not_private)
}

/// Whether `runtime` is a runtime folder as the XDG spec promises one: named from
/// the root, ours, private, not a symlink; why not, in words.
pub fn check_runtime_dir(runtime: &Path) -> Result<(), String> {
    if !runtime.is_absolute() {
        return Err(format!(
            "XDG_RUNTIME_DIR is not an absolute path: {}",
            runtime.display()
        ));
    }
    check_private(runtime)
}

/// The user's runtime folder (`$XDG_RUNTIME_DIR`) when it is private; why not, in
/// words, when it is set but unfit.
pub fn private_runtime_dir() -> Result<Option<PathBuf>, String> {
    let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) else {
        return Ok(None);
    };
    check_runtime_dir(&runtime).map(|()| Some(runtime))
}

/// `runtime` when it is given and private; else `None`, and `warn` hears why a
/// given one was passed over for `fallback`.
pub fn usable_runtime_dir(
    runtime: Option<&Path>,
    fallback: &Path,
    warn: impl FnOnce(&str),
) -> Option<PathBuf> {
    let runtime = runtime?;
    match check_runtime_dir(runtime) {
        Ok(()) => Some(runtime.to_path_buf()),
        Err(why) => {
            warn(&format!(
                "not using XDG_RUNTIME_DIR: {why}; using {}",
                fallback.display()
            ));
            None
        }
    }
}

/// The folder of our own used when the runtime folder is unfit: beside the default
/// vault folder (`~/.local/share/tokenkeeper-run`). With no home folder to find it
/// by, this is a relative path, which `private_folder` and `check_private` refuse.
pub fn fallback_dir() -> PathBuf {
    vault::default_dir().with_file_name("tokenkeeper-run")
}

/// The agent's folder: `runtime/tokenkeeper` when a private runtime folder is
/// given, else `fallback`.
pub fn agent_folder(runtime: Option<&Path>, fallback: &Path) -> PathBuf {
    match runtime {
        Some(r) => r.join("tokenkeeper"),
        None => fallback.to_path_buf(),
    }
}

/// The short tag of the vault in `dir`: the hash part of its keyring service.
pub fn vault_tag(dir: &Path) -> String {
    let service = vault::service_name_for(dir);
    service.rsplit('/').next().unwrap_or("default").to_string()
}

/// The agent's socket (and the private folder it is in) and its lock file, in the
/// vault's own folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPaths {
    pub folder: PathBuf,
    pub socket: PathBuf,
    pub lock: PathBuf,
}

impl AgentPaths {
    /// The socket for the vault in `vault_dir` inside `folder`, the lock in
    /// `vault_dir`.
    pub fn in_folder(folder: &Path, vault_dir: &Path) -> Self {
        let tag = vault_tag(vault_dir);
        Self {
            folder: folder.to_path_buf(),
            socket: folder.join(format!("agent-{tag}.sock")),
            // The vault's own name for its folder (as for its keyring service), from
            // the root: a vault given as a relative path locks the same file whatever
            // the agent's working folder later becomes.
            lock: vault_dir
                .canonicalize()
                .or_else(|_| std::path::absolute(vault_dir))
                .unwrap_or_else(|_| vault_dir.to_path_buf())
                .join(LOCK_FILE),
        }
    }

    /// Where this user's agent for the vault in `vault_dir` listens: where the
    /// running agent said it does (its lock record), if it answers there, else
    /// where one started by this process would. `warn` hears why the runtime folder
    /// was passed over, if it was.
    pub fn for_vault(vault_dir: &Path, warn: impl FnOnce(&str)) -> Self {
        let fallback = fallback_dir();
        let runtime = match private_runtime_dir() {
            Ok(runtime) => runtime,
            Err(why) => {
                warn(&format!(
                    "not using XDG_RUNTIME_DIR: {why}; using {}",
                    fallback.display()
                ));
                None
            }
        };
        Self::in_folder(&agent_folder(runtime.as_deref(), &fallback), vault_dir).or_running()
    }

    /// These paths, or the running agent's socket when its lock record names
    /// another one and an agent of this user answers there: an agent started with
    /// another runtime folder is still the vault's one agent.
    pub fn or_running(self) -> Self {
        match read_lock_record(&self.lock) {
            Some(held) if held.socket != self.socket && listens(&held.socket) => {
                let folder = held.socket.parent().map(Path::to_path_buf);
                Self {
                    folder: folder.unwrap_or_default(),
                    socket: held.socket,
                    lock: self.lock,
                }
            }
            _ => self,
        }
    }

    /// Whether the folder exists and is private: a client connects only then.
    pub fn folder_is_private(&self) -> bool {
        check_private(&self.folder).is_ok()
    }
}

/// Whether a process of this user listens at `path`, in a private folder. The
/// connection is made without waiting (an agent whose backlog is full counts as
/// not answering) and closed at once.
fn listens(path: &Path) -> bool {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    if path.parent().is_none_or(|f| check_private(f).is_err()) {
        return false;
    }
    let Ok(address) = UnixAddr::new(path) else {
        return false;
    };
    let Ok(fd) = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    ) else {
        return false;
    };
    connect(fd.as_raw_fd(), &address).is_ok() && same_user(&fd)
}

/// What the running agent wrote in its lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRecord {
    pub pid: u32,
    pub socket: PathBuf,
}

impl LockRecord {
    /// `PID\nSOCKET\n`: the first two lines are read, anything after is ignored.
    fn bytes(&self) -> Vec<u8> {
        let mut out = format!("{}\n", self.pid).into_bytes();
        out.extend_from_slice(self.socket.as_os_str().as_bytes());
        out.push(b'\n');
        out
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        let mut lines = bytes.split(|b| *b == b'\n');
        let pid = std::str::from_utf8(lines.next()?).ok()?.parse().ok()?;
        let socket = lines.next().filter(|s| !s.is_empty())?;
        // Only a complete line counts: the writer may be halfway through.
        lines.next()?;
        let socket = PathBuf::from(std::ffi::OsString::from_vec(socket.to_vec()));
        socket.is_absolute().then_some(Self { pid, socket })
    }
}

/// The record in the lock file at `path`, if there is a readable one. It may be
/// left by an agent that died: check that one answers before believing it.
pub fn read_lock_record(path: &Path) -> Option<LockRecord> {
    let mut bytes = Vec::new();
    File::open(path)
        .ok()?
        .take(64 * 1024)
        .read_to_end(&mut bytes)
        .ok()?;
    LockRecord::parse(&bytes)
}

/// Takes the vault's agent lock (the file 0600) and records this process
/// and its `socket` in it: `Ok(None)` when another agent holds it. Held until the
/// file is dropped; the OS lets go of it when the process dies, however it dies.
pub fn take_lock(path: &Path, socket: &Path) -> std::io::Result<Option<File>> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    // One made by someone else's umask, or by hand, is this user's alone again.
    if file.metadata()?.mode() & 0o777 != 0o600 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    // Written over the old record, then cut to length: a reader sees the old
    // record or the new one, never an empty file.
    let record = LockRecord {
        pid: std::process::id(),
        socket: socket.to_path_buf(),
    }
    .bytes();
    file.rewind()?;
    file.write_all(&record)?;
    file.set_len(record.len() as u64)?;
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o777
    }

    #[test]
    fn a_private_folder_is_made_0700_and_one_left_open_is_closed() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("a/b/tokenkeeper");
        private_folder(&f).unwrap();
        assert_eq!(mode(&f), 0o700);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(check_private(&f).unwrap_err().contains("open to others"));
        private_folder(&f).unwrap();
        assert_eq!(mode(&f), 0o700);
    }

    #[test]
    fn a_symlink_or_a_file_is_no_private_folder() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&real)
            .unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(check_private(&link).unwrap_err().contains("symlink"));
        assert!(private_folder(&link).is_err());
        let file = t.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(check_private(&file).unwrap_err().contains("not a folder"));
        if my_uid() == 0 {
            let foreign = t.path().join("foreign");
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&foreign)
                .unwrap();
            std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
            let e = private_folder(&foreign).unwrap_err();
            assert!(e.to_string().contains("belongs to user 65534"), "{e}");
        }
    }

    #[test]
    fn two_vaults_have_two_sockets_and_one_vault_one() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let run = t.path().join("run");
        let folder = agent_folder(Some(&run), &t.path().join("fallback"));
        assert_eq!(folder, run.join("tokenkeeper"));
        let pa = AgentPaths::in_folder(&folder, &a);
        let pb = AgentPaths::in_folder(&folder, &b);
        assert_ne!(pa.socket, pb.socket);
        // The same vault named another way is the same agent.
        assert_eq!(pa, AgentPaths::in_folder(&folder, &t.path().join("b/../a")));
        let name = pa.socket.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.starts_with("agent-") && name.ends_with(".sock"),
            "{name}"
        );
        assert_eq!(
            agent_folder(None, &t.path().join("fallback")),
            t.path().join("fallback")
        );
    }

    #[test]
    fn the_lock_is_held_once_and_names_its_holder() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("agent.lock");
        let socket = t.path().join("run/tokenkeeper/agent-x.sock");
        // A longer record left by an agent that died is replaced whole.
        std::fs::write(
            &path,
            "4194303
/a/much/longer/path/than/the/new/one.sock
",
        )
        .unwrap();
        let first = take_lock(&path, &socket).unwrap().expect("first takes it");
        assert!(
            take_lock(&path, Path::new("/elsewhere.sock"))
                .unwrap()
                .is_none(),
            "second is refused"
        );
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            read_lock_record(&path),
            Some(LockRecord {
                pid: std::process::id(),
                socket: socket.clone()
            })
        );
        drop(first);
        assert!(take_lock(&path, &socket).unwrap().is_some(), "free again");
    }

    #[test]
    fn a_half_written_or_relative_record_is_no_record() {
        assert_eq!(
            LockRecord::parse(b"12\n/run/a.sock\nold tail\n"),
            Some(LockRecord {
                pid: 12,
                socket: "/run/a.sock".into()
            })
        );
        for bad in [
            &b""[..],
            b"12\n/run/a.so",
            b"12\n\n",
            b"x\n/run/a.sock\n",
            b"12\nrun/a.sock\n",
        ] {
            assert_eq!(LockRecord::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_relative_folder_is_refused_and_nothing_is_made() {
        // What `fallback_dir()` gives with no home folder to find.
        let relative = Path::new(".local/share/tokenkeeper-run");
        let why = check_private(relative).unwrap_err();
        assert!(
            why.contains("relative path") && why.contains("HOME"),
            "{why}"
        );
        let e = private_folder(relative).unwrap_err();
        assert!(e.to_string().contains("relative path"), "{e}");
        assert!(
            !Path::new(".local").exists(),
            "nothing made in the working folder"
        );
        let paths = AgentPaths::in_folder(relative, Path::new("/nonexistent/vault"));
        assert!(!paths.folder_is_private());
        let e = check_runtime_dir(Path::new("run/user/1000")).unwrap_err();
        assert!(e.contains("not an absolute path"), "{e}");
    }

    #[test]
    fn a_given_runtime_dir_is_used_only_when_private() {
        let t = tempfile::tempdir().unwrap();
        let fallback = t.path().join("fallback");
        let run = t.path().join("run");
        std::fs::DirBuilder::new().mode(0o700).create(&run).unwrap();
        let mut warned = Vec::new();
        assert_eq!(
            usable_runtime_dir(Some(&run), &fallback, |w| warned.push(w.to_string())),
            Some(run.clone())
        );
        assert_eq!(
            usable_runtime_dir(None, &fallback, |w| warned.push(w.to_string())),
            None
        );
        assert!(warned.is_empty(), "{warned:?}");
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            usable_runtime_dir(Some(&run), &fallback, |w| warned.push(w.to_string())),
            None
        );
        assert!(
            warned.len() == 1
                && warned[0].contains("open to others")
                && warned[0].contains(&fallback.display().to_string()),
            "{warned:?}"
        );
    }

    #[test]
    fn paths_follow_the_lock_record_only_to_an_agent_that_answers() {
        let t = tempfile::tempdir().unwrap();
        let vault_dir = t.path().join("vault");
        std::fs::create_dir_all(&vault_dir).unwrap();
        // The running agent was started with another runtime folder.
        let theirs = AgentPaths::in_folder(&t.path().join("run-a/tokenkeeper"), &vault_dir);
        let ours = AgentPaths::in_folder(&t.path().join("fallback"), &vault_dir);
        assert_eq!(theirs.lock, ours.lock, "one lock per vault");
        private_folder(&theirs.folder).unwrap();
        let _lock = take_lock(&theirs.lock, &theirs.socket).unwrap().unwrap();
        let listener = std::os::unix::net::UnixListener::bind(&theirs.socket).unwrap();
        assert_eq!(ours.clone().or_running(), theirs);
        // Gone (its socket refuses connections): our own paths again.
        drop(listener);
        assert_eq!(ours.clone().or_running(), ours);
        std::fs::remove_file(&theirs.socket).unwrap();
        assert_eq!(ours.clone().or_running(), ours);
        // A record naming a socket in a folder open to others is not followed.
        let _listener = std::os::unix::net::UnixListener::bind(&theirs.socket).unwrap();
        std::fs::set_permissions(&theirs.folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(ours.clone().or_running(), ours);
    }

    #[test]
    fn a_vault_named_by_a_relative_path_has_its_lock_named_from_the_root() {
        let paths = AgentPaths::in_folder(Path::new("/run/x"), Path::new("some/vault"));
        assert!(paths.lock.is_absolute(), "{}", paths.lock.display());
        assert!(paths.lock.ends_with("some/vault/agent.lock"));
    }
}
