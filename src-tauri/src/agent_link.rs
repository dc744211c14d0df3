//! The window's line to its agent (`tokenkeeper agent`, one per vault): the agent
//! runs the renewal engine, the alerts, the tray and the browser sign-ins; the window
//! only shows them. Launched, the window makes sure the agent runs (starting it,
//! in a process group of its own, from the `tokenkeeper` binary installed beside it), then passes the
//! agent's events on to its web UI under the names the UI listens on. If the agent
//! goes away without saying it quits (killed, crashed), the window starts it again:
//! the vault on disk and in the keyring holds everything, neither process holds the
//! only copy of anything.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tauri::{AppHandle, Emitter};
use tokenkeeper_core::agent::client::{self, Subscription};
use tokenkeeper_core::agent::feed::QUIT;
use tokenkeeper_core::agent::protocol::Request;
use tokenkeeper_core::agent::sign_ins::InProgress;
use tokenkeeper_core::agent::socket::AgentPaths;
use tokenkeeper_core::browser;
use tokenkeeper_core::ipc_types::{DeviceSignIn, ShellEvent};
use tokenkeeper_core::vendors::DevicePrompt;
use tokenkeeper_core::Error;

/// The log of an agent the window started, in the vault's folder.
pub const AGENT_LOG: &str = "agent.log";

/// The size past which the agent's log is begun anew when an agent is started.
const LOG_LIMIT: u64 = 1024 * 1024;

/// How long a started agent has to answer its first ping.
const START_WAIT: Duration = Duration::from_secs(15);

/// How long a window request may take: a sign-in waits for the vendor's code.
const REQUEST_WAIT: Duration = Duration::from_secs(60);

/// `tokenkeeper`: `TOKENKEEPER_CLI`, else the one beside this binary (the .deb puts
/// both in /usr/bin, a build both in target/), else the one on PATH.
pub fn cli_binary() -> PathBuf {
    tokenkeeper_core::process::sibling_program("TOKENKEEPER_CLI", "tokenkeeper")
}

/// The agent's socket for the vault in `dir`.
pub fn paths(dir: &Path) -> AgentPaths {
    AgentPaths::for_vault(dir, |_| {})
}

/// Makes sure the vault's agent runs: one that answers is kept, else one is started
/// in a process group of its own (it outlives the window) and awaited.
pub fn ensure(dir: &Path) -> Result<(), String> {
    let paths = paths(dir);
    if client::ping(&paths).is_some() {
        return Ok(());
    }
    let program = cli_binary();
    // Its log goes to the vault's folder (it never holds a secret): not to this
    // window's stderr, which ends with the window (and a pipe
    // held open by the agent would never reach its end for whoever reads it).
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir);
    let log = open_log(&dir.join(AGENT_LOG))
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    let mut cmd = Command::new(&program);
    cmd.arg("--data-dir")
        .arg(dir)
        .arg("agent")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // A process group of its own: a Ctrl-C in the terminal the window was started
    // from, or that terminal closing, does not reach the agent.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "cannot start Tokenkeeper's agent ({}): {e}; renewals and alerts need it",
            program.display()
        )
    })?;
    let end = Instant::now() + START_WAIT;
    loop {
        if client::ping(&paths).is_some() {
            // Reaped when it ends, so it leaves no zombie while the window lives.
            std::thread::spawn(move || {
                let _ = child.wait();
            });
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Another start won the race: that agent serves.
            if client::ping(&paths).is_some() {
                return Ok(());
            }
            return Err(format!(
                "Tokenkeeper's agent stopped as it started ({status}): see {}",
                dir.join(AGENT_LOG).display()
            ));
        }
        if Instant::now() > end {
            // Reaped whenever it ends: no zombie for the window's life.
            std::thread::spawn(move || {
                let _ = child.wait();
            });
            return Err("Tokenkeeper's agent did not answer in time".to_string());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The agent's log, opened to append (an agent that runs on, and the one that may
/// lose the start to it, both write at its end, never over each other), this user's
/// alone, and begun anew once it passes `LOG_LIMIT`.
fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.permissions().mode() & 0o777 != 0o600 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    if meta.len() > LOG_LIMIT {
        file.set_len(0)?;
    }
    Ok(file)
}

/// Asks the agent `request` (a window's: show, sign-ins) and returns its answer.
pub fn ask(dir: &Path, request: &Request) -> Result<serde_json::Value, Error> {
    client::request(&paths(dir), request, REQUEST_WAIT)
}

/// Passes the agent's events on to the window's UI, from a thread of its own, for
/// as long as the app runs: on the agent's `quit` the app quits too; if the line
/// breaks otherwise, the agent is started again and the UI told to reload.
pub fn relay(app: AppHandle, dir: PathBuf) {
    let _ = std::thread::Builder::new()
        .name("agent-events".into())
        .spawn(move || loop {
            if let Some(sub) = client::subscribe(&paths(&dir)) {
                // Whatever happened while the line was down: the list is read again.
                let _ = app.emit(ShellEvent::AccountsChanged.name(), ());
                if pass_on(&app, sub) {
                    app.exit(0);
                    return;
                }
            }
            std::thread::sleep(Duration::from_secs(1));
            if let Err(why) = ensure(&dir) {
                crate::say(format_args!("{why}"));
                std::thread::sleep(Duration::from_secs(10));
            }
        });
}

/// Emits each event of `sub` under its shell name; true when the agent said it quits.
fn pass_on(app: &AppHandle, mut sub: Subscription) -> bool {
    while let Some(event) = sub.next_event() {
        let name = event["event"].as_str().unwrap_or_default();
        if name == QUIT {
            return true;
        }
        // Only the names the UI listens on are passed on.
        if let Some(kind) = ShellEvent::ALL.into_iter().find(|k| k.name() == name) {
            let _ = app.emit(kind.name(), &event["payload"]);
        }
    }
    false
}

/// `ask` off the async runtime (the socket is blocking).
async fn ask_off(dir: PathBuf, request: Request) -> Result<serde_json::Value, Error> {
    tokio::task::spawn_blocking(move || ask(&dir, &request))
        .await
        .map_err(|e| Error::internal(format!("the request to the agent failed: {e}")))?
}

fn field<T: serde::de::DeserializeOwned>(
    answer: &serde_json::Value,
    name: &str,
) -> Result<T, Error> {
    serde_json::from_value(answer[name].clone())
        .map_err(|_| Error::internal(format!("the agent's answer has no readable '{name}'")))
}

/// Starts `name`'s browser sign-in in the agent and opens the browser at its address.
pub async fn start_sign_in(dir: PathBuf, name: String) -> Result<DeviceSignIn, Error> {
    let answer = ask_off(dir, Request::SignIn { account: name }).await?;
    let prompt: DevicePrompt = field(&answer, "prompt")?;
    let (browser_opened, browser_error) = match browser::open(&prompt.browser_url) {
        Ok(()) => (true, None),
        Err(why) => (false, Some(why)),
    };
    Ok(DeviceSignIn {
        prompt,
        browser_opened,
        browser_error,
    })
}

/// The browser sign-in the agent awaits for `name`, if any: shown with its address
/// (the browser is not opened again: its tab may still be there).
pub async fn sign_in_in_progress(
    dir: PathBuf,
    name: String,
) -> Result<Option<DeviceSignIn>, Error> {
    let answer = ask_off(dir, Request::SignIns).await?;
    let all: Vec<InProgress> = field(&answer, "sign_ins")?;
    Ok(all
        .into_iter()
        .find(|s| s.account == name)
        .map(|s| DeviceSignIn {
            prompt: s.prompt,
            browser_opened: false,
            browser_error: None,
        }))
}

/// Stops the agent's wait for `name`'s approval.
pub async fn cancel_sign_in(dir: PathBuf, name: String) -> Result<(), Error> {
    ask_off(dir, Request::CancelSignIn { account: name }).await?;
    Ok(())
}
