//! Where a vault's agent listens and who may talk to it. The socket lives in a
//! folder only this user can enter: `$XDG_RUNTIME_DIR/tokenkeeper` when the runtime
//! folder is what the XDG spec promises (ours, mode 0700, not a symlink), else
//! `tokenkeeper-run` beside the default vault folder, made 0700 and checked the same
//! way; never a predictable name in a shared folder such as /tmp. The socket itself
//! is 0600, named after the vault's keyring service so two vaults have two agents,
//! and each side checks the other's user with `SO_PEERCRED` on every connection.
//! A lock file beside the socket, held while the agent runs, makes it one per vault.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::vault;

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
/// enter; why not, in words.
pub fn check_private(path: &Path) -> Result<(), String> {
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
/// ours and private; a folder of ours left open to others is closed again.
pub fn private_folder(path: &Path) -> std::io::Result<()> {
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
    check_private(path).map_err(|why| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("the folder for Tokenkeeper's socket is not private: {why}"),
        )
    })
}

/// The user's runtime folder (`$XDG_RUNTIME_DIR`) when it is private; why not, in
/// words, when it is set but unfit.
pub fn private_runtime_dir() -> Result<Option<PathBuf>, String> {
    let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) else {
        return Ok(None);
    };
    if !runtime.is_absolute() {
        return Err(format!(
            "XDG_RUNTIME_DIR is not an absolute path: {}",
            runtime.display()
        ));
    }
    check_private(&runtime).map(|()| Some(runtime))
}

/// The folder of our own used when the runtime folder is unfit: beside the default
/// vault folder (`~/.local/share/tokenkeeper-run`).
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

/// The agent's socket and lock file for the vault in `dir`, inside `folder`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPaths {
    pub folder: PathBuf,
    pub socket: PathBuf,
    pub lock: PathBuf,
}

impl AgentPaths {
    pub fn in_folder(folder: &Path, vault_dir: &Path) -> Self {
        let tag = vault_tag(vault_dir);
        Self {
            folder: folder.to_path_buf(),
            socket: folder.join(format!("agent-{tag}.sock")),
            lock: folder.join(format!("agent-{tag}.lock")),
        }
    }

    /// Where this user's agent for the vault in `vault_dir` listens. `warn` hears
    /// why the runtime folder was passed over, if it was.
    pub fn for_vault(vault_dir: &Path, warn: impl FnOnce(&str)) -> Self {
        let runtime = match private_runtime_dir() {
            Ok(r) => r,
            Err(why) => {
                warn(&format!(
                    "not using XDG_RUNTIME_DIR: {why}; using {}",
                    fallback_dir().display()
                ));
                None
            }
        };
        Self::in_folder(
            &agent_folder(runtime.as_deref(), &fallback_dir()),
            vault_dir,
        )
    }

    /// Whether the folder exists and is private: a client connects only then.
    pub fn folder_is_private(&self) -> bool {
        check_private(&self.folder).is_ok()
    }
}

/// Takes the vault's agent lock (created 0600 in the private folder): `Ok(None)`
/// when another agent holds it. Held until the file is dropped; the OS lets go of
/// it when the process dies, however it dies.
pub fn take_lock(path: &Path) -> std::io::Result<Option<File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
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
    fn the_lock_is_held_once() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("agent.lock");
        let first = take_lock(&path).unwrap().expect("first takes it");
        assert!(take_lock(&path).unwrap().is_none(), "second is refused");
        assert_eq!(mode(&path), 0o600);
        drop(first);
        assert!(take_lock(&path).unwrap().is_some(), "free again");
    }
}
