//! Process hardening that every Tokenkeeper process holding secrets applies first.
//!
//! Tokens, passwords and the vault's key live in this process's memory. A core dump
//! would write them to disk (often to a world-readable crash folder, or to a crash
//! reporter), and a dumpable process lets any other process of the same user read its
//! memory through `/proc/PID/mem` or `ptrace`. So the process makes itself
//! non-dumpable (`PR_SET_DUMPABLE` 0: no core file, no same-user ptrace or `/proc`
//! access to its memory) and sets its core-file limit to 0 as well.
//!
//! Also where one Tokenkeeper program finds another (the window starts the agent, the
//! agent the window): `sibling_program`.

/// Forbids core dumps of this process and memory access by other processes of the
/// same user. Call it first thing in `main`. What could not be set is returned as
/// words (the caller says so and carries on: it is a defence in depth, not a
/// reason to refuse to start).
pub fn forbid_core_dumps() -> Result<(), String> {
    let mut failed = Vec::new();
    #[cfg(unix)]
    {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        // The soft limit only: the hard one stays, so that a command run by
        // `tokenkeeper exec` (which inherits the limit) may raise its own again.
        let set = getrlimit(Resource::RLIMIT_CORE)
            .and_then(|(_, hard)| setrlimit(Resource::RLIMIT_CORE, 0, hard));
        if let Err(e) = set {
            failed.push(format!("cannot set the core-file limit to 0: {e}"));
        }
    }
    #[cfg(target_os = "linux")]
    {
        if let Err(e) = nix::sys::prctl::set_dumpable(false) {
            failed.push(format!("cannot make the process non-dumpable: {e}"));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_process_is_no_longer_dumpable_and_its_core_limit_is_zero() {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        // Start from a dumpable process with core files allowed, so that the checks
        // prove the call, not the environment (containers often start with 0).
        let (was, hard) = getrlimit(Resource::RLIMIT_CORE).expect("getrlimit");
        if hard > 0 {
            setrlimit(Resource::RLIMIT_CORE, hard, hard).expect("setrlimit");
        }
        nix::sys::prctl::set_dumpable(true).expect("set_dumpable(true)");
        assert!(nix::sys::prctl::get_dumpable().expect("get_dumpable"));

        forbid_core_dumps().expect("forbid_core_dumps");
        assert!(!nix::sys::prctl::get_dumpable().expect("get_dumpable"));
        let (soft, still_hard) = getrlimit(Resource::RLIMIT_CORE).expect("getrlimit");
        assert_eq!(soft, 0);
        assert_eq!(
            still_hard, hard,
            "the hard limit is left for exec'd commands"
        );

        // Leave the test process as the other tests found it.
        nix::sys::prctl::set_dumpable(true).expect("set_dumpable(true)");
        setrlimit(Resource::RLIMIT_CORE, was, hard).expect("setrlimit");
    }
}

/// Another Tokenkeeper program: the path in the environment variable `env` when set,
/// else `name` beside this binary (the .deb installs them all in /usr/bin, a build in
/// target/), else `name` on PATH.
pub fn sibling_program(env: &str, name: &str) -> std::path::PathBuf {
    if let Some(given) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        return std::path::PathBuf::from(given);
    }
    std::env::current_exe()
        .ok()
        .and_then(|me| Some(me.parent()?.join(name)))
        .filter(|beside| beside.is_file())
        .or_else(|| on_path(name))
        // Not found anywhere: the bare name, for the error of whoever runs it.
        .unwrap_or_else(|| std::path::PathBuf::from(name))
}

/// `name` in the first folder of PATH that holds it, as a shell would find it (so a
/// caller that writes the path down, like the start-at-login entry, has a real one).
fn on_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
