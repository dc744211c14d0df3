//! `tokenkeeper agent`: the resident process of a vault with no window and no tray
//! (yet): it runs the renewal engine, as `tokenkeeper watch` does, sends its alerts
//! as desktop notifications (tokenkeeper-notify: delivery checked, kept until a
//! notification server answers), and serves this user's scripts their tokens from
//! memory on the vault's socket (core `agent`). One per vault; it stops on SIGTERM or
//! Ctrl-C and takes its socket with it.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tokenkeeper_core::agent::cache::TokenCache;
use tokenkeeper_core::agent::server::{self, AgentServer, Claim, Limits};
use tokenkeeper_core::agent::{client, socket::AgentPaths};
use tokenkeeper_core::engine::{EngineEvent, EventSink};
use tokenkeeper_core::{Error, Result, Vault};
use tokenkeeper_notify::{AlertDelivery, Notifier, Outcome};

/// Says the engine's events on stderr (a service's log), retires the tokens they
/// make stale and hands each alert to the desktop's notification server. The engine
/// raises each threshold once per deadline (its alert log is in the vault), so each
/// alert is sent once.
struct AgentEvents {
    cache: Arc<TokenCache>,
    notifications: AlertDelivery,
}

impl EventSink for AgentEvents {
    fn emit(&self, event: EngineEvent) {
        self.cache.follow(&event);
        let line = match event {
            EngineEvent::Renewed { account } => format!("renewed '{account}'"),
            EngineEvent::RenewalFailed { message, .. } => format!("renewal failed: {message}"),
            EngineEvent::Alert(a) => {
                let line = format!("alert: {}", a.message);
                // Off the engine's thread: a slow server never delays a renewal.
                self.notifications.deliver(a);
                line
            }
            EngineEvent::VaultChanged => return,
        };
        say(&line);
    }
}

/// What became of a notification, for the service's log.
fn say_outcome(outcome: Outcome) {
    match outcome {
        Outcome::Shown { account, id } => {
            say(&format!("notified about '{account}' (notification {id})"));
        }
        Outcome::Kept { account, why } => say(&format!(
            "the alert about '{account}' was not shown: {why}; it is sent again once a server answers"
        )),
        Outcome::Resent(n) => say(&format!(
            "{n} alert(s) no notification server took before shown now"
        )),
    }
}

fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "tokenkeeper agent: {line}").and_then(|_| err.flush());
}

/// Runs the agent for the vault in `dir` until SIGTERM or Ctrl-C.
pub async fn run(dir: &Path, concurrency: usize) -> Result<ExitCode> {
    server::raise_open_files_limit();
    let vault = Arc::new(Vault::open(dir)?);
    let paths = AgentPaths::for_vault(vault.dir(), say);
    let listening = match server::claim(paths.clone()) {
        Ok(Claim::Listening(l)) => l,
        Ok(Claim::Taken) => {
            let pid = client::ping(&paths)
                .and_then(|p| p["pid"].as_u64())
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default();
            return Err(Error::usage(format!(
                "an agent already serves the vault in {}{pid}, on {}",
                vault.dir().display(),
                paths.socket.display()
            )));
        }
        Err(e) => {
            return Err(Error::internal(format!(
                "cannot listen on {}: {e}",
                paths.socket.display()
            )))
        }
    };
    let cache = Arc::new(TokenCache::new(vault.clone()));
    // No window to open on a click yet: the notifications offer no action.
    let notifications = AlertDelivery::start(Notifier::without_clicks(), say_outcome)
        .map_err(|e| Error::internal(format!("cannot start the notification thread: {e}")))?;
    let events = Arc::new(AgentEvents {
        cache: cache.clone(),
        notifications,
    });
    let engine = crate::engine_for(vault.clone(), events, concurrency);
    let wake = Arc::new(tokio::sync::Notify::new());
    let mut term = crate::sigterm()?;
    let agent = AgentServer::new(cache, Limits::default());
    say(&format!(
        "serving the vault in {} on {} (pid {})",
        vault.dir().display(),
        listening.paths().socket.display(),
        std::process::id()
    ));
    let served = tokio::select! {
        _ = engine.run(wake) => Ok(()),
        served = agent.serve(&listening) => served,
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = term.recv() => Ok(()),
    };
    drop(listening);
    served.map_err(|e| Error::internal(format!("the agent's socket failed: {e}")))?;
    say("stopped");
    Ok(ExitCode::SUCCESS)
}
