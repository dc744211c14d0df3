//! One app per vault: a second start hands over to the running one (which shows its
//! window) and exits, so two engines never run side by side and a click in the
//! launcher brings the window back. The meeting point is a Unix socket named after
//! the vault's keyring service, in a folder only this user can enter:
//! `$XDG_RUNTIME_DIR` when it is what the XDG spec promises (ours, mode 0700, not a
//! symlink), else a folder of our own, `tokenkeeper-run` beside the default vault
//! folder, that we create 0700 and check the same way. Never a predictable name in a
//! shared folder such as /tmp, where another user could take the name first, and
//! never a folder relative to where the app was started (no home folder): then there
//! is no one-instance check, and the app says why. The folder and peer checks are the
//! agent's own (core `agent::socket`).
//!
//! The socket is 0600, and each side checks the other's user with `SO_PEERCRED`: only
//! a process of this user may ask the app to show its window, and a start only hands
//! over to an app of its own user. A client that connects and never writes is given
//! up on after a second, so it cannot stop later starts from being heard.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokenkeeper_core::agent::socket;

/// How long the app waits for a connected client's request.
const REQUEST_WAIT: Duration = Duration::from_secs(1);
/// How long a second start waits for the running app to answer.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// What a start found.
pub enum Instance {
    /// This is the only one: it listens for later starts.
    First(UnixListener),
    /// Another one runs and was asked to show its window.
    Handed,
}

/// The socket's folder: `runtime` (`$XDG_RUNTIME_DIR`) when it is private, else
/// `fallback`, made private (refused when it is a relative path: no home folder).
fn socket_folder(runtime: Option<&Path>, fallback: &Path) -> std::io::Result<PathBuf> {
    let warn = |why: &str| {
        let _ = writeln!(std::io::stderr(), "tokenkeeper-desktop: {why}");
    };
    if let Some(runtime) = socket::usable_runtime_dir(runtime, fallback, warn) {
        return Ok(runtime);
    }
    socket::private_folder(fallback)?;
    Ok(fallback.to_path_buf())
}

fn socket_path(dir: &Path) -> std::io::Result<PathBuf> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    let folder = socket_folder(runtime.as_deref(), &socket::fallback_dir())?;
    Ok(folder.join(format!("tokenkeeper-{}.sock", socket::vault_tag(dir))))
}

fn bind(path: &Path) -> std::io::Result<UnixListener> {
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Claims the vault's window, or hands `account` (the one to open, if any) to the
/// window that has it.
pub fn claim(dir: &Path, account: Option<&str>) -> std::io::Result<Instance> {
    claim_at(&socket_path(dir)?, account)
}

/// The request a later start sends: `show\n`, or `open NAME\n` for an account.
fn request(account: Option<&str>) -> Vec<u8> {
    match account {
        Some(name) => format!("open {name}\n").into_bytes(),
        None => b"show\n".to_vec(),
    }
}

/// The longest request read (an account name is far shorter).
const MAX_REQUEST: u64 = 4096;

fn claim_at(path: &Path, account: Option<&str>) -> std::io::Result<Instance> {
    if account.is_some_and(|name| name.contains('\n')) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "an account name has no line break",
        ));
    }
    match bind(path) {
        Ok(l) => return Ok(Instance::First(l)),
        Err(e) if e.kind() != std::io::ErrorKind::AddrInUse => return Err(e),
        Err(_) => {}
    }
    match UnixStream::connect(path) {
        Ok(mut s) => {
            if !socket::same_user(&s) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{} is served by another user's process", path.display()),
                ));
            }
            s.set_write_timeout(Some(ANSWER_WAIT))?;
            s.set_read_timeout(Some(ANSWER_WAIT))?;
            s.write_all(&request(account))?;
            // Wait for the answer, so the caller exits only once it was heard (or the
            // running app is too busy to say so).
            let mut ok = [0u8; 3];
            let _ = s.read(&mut ok);
            Ok(Instance::Handed)
        }
        Err(_) => {
            // A socket left by an app that died: take its place.
            std::fs::remove_file(path)?;
            Ok(Instance::First(bind(path)?))
        }
    }
}

/// Calls `show` for each later start of this user (with the account it asks to
/// open, if any), from a thread of its own.
pub fn serve(listener: UnixListener, show: impl Fn(Option<String>) + Send + 'static) {
    let _ = std::thread::Builder::new()
        .name("single-instance".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                answer(stream, &show);
            }
        });
}

/// One connection: `show\n` or `open NAME\n` from a process of this user, read
/// within `REQUEST_WAIT`; anything else is closed unanswered.
fn answer(mut stream: UnixStream, show: &impl Fn(Option<String>)) {
    if !socket::same_user(&stream) {
        return;
    }
    if stream.set_read_timeout(Some(REQUEST_WAIT)).is_err()
        || stream.set_write_timeout(Some(REQUEST_WAIT)).is_err()
    {
        return;
    }
    let mut line = Vec::new();
    let read = std::io::BufRead::read_until(
        &mut std::io::BufReader::new((&stream).take(MAX_REQUEST)),
        b'\n',
        &mut line,
    );
    if read.is_err() || line.pop() != Some(b'\n') {
        return;
    }
    let asked = match line.as_slice() {
        b"show" => None,
        open => match open.strip_prefix(b"open ").map(std::str::from_utf8) {
            Some(Ok(name)) if !name.is_empty() => Some(name.to_string()),
            _ => return,
        },
    };
    show(asked);
    let _ = stream.write_all(b"ok\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket::my_uid;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o777
    }

    fn counting_server(path: &Path) -> Arc<AtomicUsize> {
        let shown = Arc::new(AtomicUsize::new(0));
        let Instance::First(l) = claim_at(path, None).unwrap() else {
            panic!("the first claim listens")
        };
        let counter = shown.clone();
        serve(l, move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        shown
    }

    #[test]
    fn a_later_start_hands_over_the_account_it_was_asked_to_open() {
        let t = tempfile::tempdir().unwrap();
        let sock = t.path().join("w.sock");
        let Instance::First(l) = claim_at(&sock, None).unwrap() else {
            panic!("the first claim listens")
        };
        let asked: Arc<std::sync::Mutex<Vec<Option<String>>>> = Arc::default();
        let seen = asked.clone();
        serve(l, move |account| seen.lock().unwrap().push(account));
        assert!(matches!(
            claim_at(&sock, Some("prod eu")).unwrap(),
            Instance::Handed
        ));
        assert!(matches!(claim_at(&sock, None).unwrap(), Instance::Handed));
        assert!(claim_at(&sock, Some("two\nlines")).is_err());
        wait_for("both requests", || asked.lock().unwrap().len() == 2);
        assert_eq!(*asked.lock().unwrap(), [Some("prod eu".to_string()), None]);
        // Anything else is closed unanswered and shows nothing.
        for junk in [&b"open \n"[..], b"shout\n", b"show"] {
            let mut c = UnixStream::connect(&sock).unwrap();
            c.write_all(junk).unwrap();
            let _ = c.shutdown(std::net::Shutdown::Write);
            let mut rest = Vec::new();
            let _ = c.read_to_end(&mut rest);
            assert!(rest.is_empty(), "{junk:?}");
        }
        assert_eq!(asked.lock().unwrap().len(), 2);
    }

    fn wait_for(what: &str, ok: impl Fn() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !ok() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_private_runtime_dir_holds_the_socket_and_the_socket_is_0600() {
        let t = tempfile::tempdir().unwrap();
        let run = t.path().join("run");
        std::fs::DirBuilder::new().mode(0o700).create(&run).unwrap();
        let fallback = t.path().join("data/tokenkeeper-run");
        assert_eq!(socket_folder(Some(&run), &fallback).unwrap(), run);
        assert!(!fallback.exists(), "no fallback folder when not needed");
        let sock = run.join("x.sock");
        let _first = claim_at(&sock, None).unwrap();
        assert_eq!(mode(&sock), 0o600);
    }

    #[test]
    fn without_a_private_runtime_dir_a_private_folder_of_ours_is_made() {
        let t = tempfile::tempdir().unwrap();
        let fallback = t.path().join("data/tokenkeeper-run");
        assert_eq!(socket_folder(None, &fallback).unwrap(), fallback);
        assert_eq!(mode(&fallback), 0o700);
        // A runtime dir open to others is not used.
        let open = t.path().join("open");
        std::fs::DirBuilder::new()
            .mode(0o777)
            .create(&open)
            .unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(socket_folder(Some(&open), &fallback).unwrap(), fallback);
        // Ours but left open: closed again.
        std::fs::set_permissions(&fallback, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(socket_folder(None, &fallback).unwrap(), fallback);
        assert_eq!(mode(&fallback), 0o700);
    }

    #[test]
    fn a_relative_fallback_folder_is_refused_not_made() {
        // What the fallback is with no home folder: `.local/share/tokenkeeper-run`.
        let relative = Path::new(".local/share/tokenkeeper-run");
        let e = socket_folder(None, relative).unwrap_err();
        assert!(e.to_string().contains("relative path"), "{e}");
        assert!(
            !Path::new(".local").exists(),
            "nothing made in the working folder"
        );
        // A private runtime folder needs no fallback at all.
        let t = tempfile::tempdir().unwrap();
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(socket_folder(Some(t.path()), relative).unwrap(), t.path());
    }

    #[test]
    fn a_symlinked_or_foreign_folder_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let elsewhere = t.path().join("elsewhere");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&elsewhere)
            .unwrap();
        let link = t.path().join("tokenkeeper-run");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let e = socket_folder(None, &link).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        // A symlinked runtime dir is not used either.
        let fallback = t.path().join("fallback");
        assert_eq!(socket_folder(Some(&link), &fallback).unwrap(), fallback);

        if my_uid() == 0 {
            let foreign = t.path().join("foreign");
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&foreign)
                .unwrap();
            std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
            let e = socket_folder(None, &foreign).unwrap_err();
            assert!(e.to_string().contains("belongs to user 65534"), "{e}");
        }
    }

    #[test]
    fn a_client_that_never_writes_does_not_stop_the_next_start_from_being_heard() {
        let t = tempfile::tempdir().unwrap();
        let sock = t.path().join("x.sock");
        let shown = counting_server(&sock);
        let _silent = UnixStream::connect(&sock).unwrap();
        let started = Instant::now();
        assert!(matches!(claim_at(&sock, None).unwrap(), Instance::Handed));
        wait_for("the second start to be heard", || {
            shown.load(Ordering::SeqCst) == 1
        });
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    }

    /// Not a test on its own: what `a_process_of_another_user_is_not_heard` runs as
    /// another user, to connect and ask for the window.
    #[test]
    fn connect_as_told() {
        let Some(path) = std::env::var_os("TK_SINGLE_INSTANCE_CONNECT") else {
            return;
        };
        let mut s = UnixStream::connect(path).expect("connect");
        // The app may already have closed it.
        let _ = s.write_all(b"show\n");
        let mut answer = Vec::new();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.read_to_end(&mut answer);
        assert!(answer.is_empty(), "answered {answer:?}");
    }

    #[test]
    fn a_process_of_another_user_is_not_heard() {
        if my_uid() != 0 {
            let _ = writeln!(
                std::io::stderr(),
                "skipped: needs root to run a client as another user"
            );
            return;
        }
        let t = tempfile::tempdir().unwrap();
        // A folder anyone may enter and a socket anyone may open, so that only the
        // peer check stands between another user and the window.
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let sock = t.path().join("x.sock");
        let shown = counting_server(&sock);
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();

        use std::os::unix::process::CommandExt;
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "single_instance::tests::connect_as_told",
                "--nocapture",
            ])
            .env("TK_SINGLE_INSTANCE_CONNECT", &sock)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            shown.load(Ordering::SeqCst),
            0,
            "another user's start was heard"
        );

        // This user's start still is.
        assert!(matches!(claim_at(&sock, None).unwrap(), Instance::Handed));
        wait_for("this user's start to be heard", || {
            shown.load(Ordering::SeqCst) == 1
        });
    }
}
