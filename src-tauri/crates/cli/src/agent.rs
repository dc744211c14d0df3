//! `tokenkeeper agent`: the resident process of a vault, with no GTK and no WebKit.
//! It runs the renewal engine, as `tokenkeeper watch` does, sends its alerts as
//! desktop notifications (tokenkeeper-notify: delivery checked, kept until a
//! notification server answers; a click opens the window on the account), serves
//! this user's scripts their tokens from memory on the vault's socket (core `agent`),
//! and, unless `--no-tray`, shows the tray icon (tokenkeeper-tray, a
//! StatusNotifierItem over D-Bus): the worst state, the soonest deadlines, Renew now,
//! Show and Quit. With no tray host on the bus it renews and alerts all the same.
//! One per vault; it stops on SIGTERM, Ctrl-C or the tray's Quit, and takes its
//! socket with it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokenkeeper_core::agent::cache::TokenCache;
use tokenkeeper_core::agent::feed::{Feed, FeedEvent};
use tokenkeeper_core::agent::server::{self, AgentServer, Claim, Limits, Windows};
use tokenkeeper_core::agent::sign_ins::SignIns;
use tokenkeeper_core::agent::{client, socket::AgentPaths};
use tokenkeeper_core::engine::{EngineEvent, EventSink};
use tokenkeeper_core::ipc_types::ShellEvent;
use tokenkeeper_core::model::TokenState;
use tokenkeeper_core::{Error, Result, Vault};
use tokenkeeper_notify::{AlertDelivery, Notifier, Outcome};
use tokenkeeper_tray::{Actions, TrayIcon};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Notify;

/// How often the tray is brought up to date with no event: deadlines move with time
/// ("2 days" becomes "47 h", an account becomes due soon).
const TRAY_TICK: Duration = Duration::from_secs(60);
/// Events that come together (a renewal round) make one update of the tray.
const TRAY_SETTLE: Duration = Duration::from_millis(200);

/// Says the engine's events on stderr (a service's log), retires the tokens they
/// make stale, hands each alert to the desktop's notification server and tells the
/// tray to look again. The engine raises each threshold once per deadline (its alert
/// log is in the vault), so each alert is sent once.
struct AgentEvents {
    cache: Arc<TokenCache>,
    /// The open windows' view of the engine.
    feed: Feed,
    notifications: AlertDelivery,
    /// Woken on every event, when the tray is shown.
    tray: Option<Arc<Notify>>,
}

impl EventSink for AgentEvents {
    fn emit(&self, event: EngineEvent) {
        self.cache.follow(&event);
        self.feed
            .publish(FeedEvent::shell(ShellEvent::EngineEvent, &event));
        if let Some(tray) = &self.tray {
            tray.notify_one();
        }
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

/// What became of a notification, for the service's log (and, when no server took
/// it, for the open windows, which say so).
fn say_outcome(outcome: Outcome, feed: &Feed) {
    if let Outcome::Kept { why, .. } = &outcome {
        feed.publish(FeedEvent::shell(ShellEvent::NotificationFailed, why));
    }
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

/// Opens the window on the vault (on `account` when given): the tray's Show and
/// account entries, and a click on a notification.
fn open_window(dir: &Path, account: Option<&str>) {
    if let Err(why) = crate::window::open(dir, account) {
        say(&why);
    }
}

/// What the tray's entries do in the agent.
struct TrayActions {
    dir: PathBuf,
    feed: Feed,
    runtime: tokio::runtime::Handle,
    cache: Arc<TokenCache>,
    refresh: Arc<Notify>,
    quit: Arc<Notify>,
}

impl Actions for TrayActions {
    fn renew_now(&self) {
        let cache = self.cache.clone();
        let (runtime, feed) = (self.runtime.clone(), self.feed.clone());
        // The vault's SQLite and keyring calls block: off the runtime's threads.
        self.runtime.spawn_blocking(move || {
            runtime.block_on(renew_all(&cache));
            // The windows and the tray are told (see `TokenCache::renew_now`).
            feed.publish(FeedEvent::shell(ShellEvent::AccountsChanged, &()));
        });
    }

    fn show(&self) {
        let dir = self.dir.clone();
        self.runtime.spawn_blocking(move || open_window(&dir, None));
    }

    fn open_account(&self, name: &str) {
        let (dir, name) = (self.dir.clone(), name.to_string());
        self.runtime
            .spawn_blocking(move || open_window(&dir, Some(&name)));
    }

    fn quit(&self) {
        self.quit.notify_one();
    }

    fn host_missing(&self, why: &str) {
        say(&format!(
            "no tray host on the session bus ({why}): renewing and alerting without the tray icon, \
             which shows once a panel starts"
        ));
    }

    fn host_found(&self) {
        say("a tray host appeared: the tray icon is shown");
    }
}

/// The tray's "Renew now": every account that renews without a human, now (as the
/// window's button does), each one's held token retired.
async fn renew_all(cache: &TokenCache) {
    let vault = cache.vault();
    let accounts = match vault.list() {
        Ok(a) => a,
        Err(e) => return say(&format!("Renew now: {}", e.message())),
    };
    for a in accounts {
        if a.state == TokenState::NeedsSignIn || a.renews_with.is_none() {
            continue;
        }
        match cache.renew_now(&a.name).await {
            Ok(_) => say(&format!("Renew now: renewed '{}'", a.name)),
            Err(e) => say(&format!("Renew now: '{}': {}", a.name, e.message())),
        }
    }
}

/// Shows the tray and keeps it up to date: on every engine event (`refresh`), on
/// the feed's news the engine does not see (a renewal a script asked on the socket,
/// Renew now, a finished sign-in) and every [`TRAY_TICK`]. Returns at once, the tray
/// off, when there is no session bus.
async fn keep_tray(actions: Arc<TrayActions>, vault: Arc<Vault>) {
    let refresh = actions.refresh.clone();
    let mut feed = actions.feed.subscribe();
    let mut feed_open = true;
    let news = [ShellEvent::AccountsChanged, ShellEvent::SignInFinished].map(ShellEvent::name);
    let tray = match TrayIcon::start(actions).await {
        Ok(t) => t,
        Err(e) => {
            return say(&format!(
                "no tray icon ({e}): renewing and alerting without it"
            ))
        }
    };
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TRAY_TICK, TRAY_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let v = vault.clone();
        let read = tokio::task::spawn_blocking(move || {
            let accounts = v.list()?;
            Ok::<_, Error>((accounts, v.preferences().unwrap_or_default()))
        })
        .await;
        if let Ok(Ok((accounts, preferences))) = read {
            tray.update(&accounts, &preferences).await;
        }
        let settle = loop {
            tokio::select! {
                _ = refresh.notified() => break true,
                event = feed.recv(), if feed_open => match event {
                    Ok(e) if !news.contains(&e.event) => {}
                    Err(RecvError::Closed) => feed_open = false,
                    // News, or so much at once that some was missed.
                    _ => break true,
                },
                _ = tick.tick() => break false,
            }
        };
        if settle {
            tokio::time::sleep(TRAY_SETTLE).await;
        }
    }
}

/// Runs the agent for the vault in `dir` until SIGTERM, Ctrl-C or the tray's Quit;
/// with its tray icon when `tray`.
pub async fn run(dir: &Path, concurrency: usize, tray: bool) -> Result<ExitCode> {
    server::raise_open_files_limit();
    let vault = Arc::new(Vault::open_here(dir)?);
    for e in vault.join_all_teams().await {
        say(&format!("warning: {}", e.cli_text()));
    }
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
    let feed = Feed::default();
    let wake = Arc::new(Notify::new());
    let window_dir = vault.dir().to_path_buf();
    // A click on a notification opens the window on its account (on the
    // notifications' D-Bus thread: starting a process there is quick).
    let notifier = Notifier::new(move |account| open_window(&window_dir, Some(&account)));
    let told = feed.clone();
    let notifications = AlertDelivery::start(notifier, move |o| say_outcome(o, &told))
        .map_err(|e| Error::internal(format!("cannot start the notification thread: {e}")))?;
    let (refresh, quit) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let events = Arc::new(AgentEvents {
        cache: cache.clone(),
        feed: feed.clone(),
        notifications,
        tray: tray.then(|| refresh.clone()),
    });
    let engine = crate::engine_for(vault.clone(), events, concurrency);
    let mut term = crate::sigterm()?;
    let tray_task = tray.then(|| {
        let actions = Arc::new(TrayActions {
            dir: vault.dir().to_path_buf(),
            feed: feed.clone(),
            runtime: tokio::runtime::Handle::current(),
            cache: cache.clone(),
            refresh,
            quit: quit.clone(),
        });
        tokio::spawn(keep_tray(actions, vault.clone()))
    });
    // What windows get: the events, browser sign-ins that outlive a closed window,
    // and Show (the window is started, or the open one shown).
    let show_dir = vault.dir().to_path_buf();
    let windows = Windows {
        feed: feed.clone(),
        sign_ins: SignIns::new(vault.clone(), feed.clone(), wake.clone()),
        show: Arc::new(move |account| crate::window::open(&show_dir, account)),
    };
    let agent = AgentServer::with_windows(cache, windows, Limits::default());
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
        _ = quit.notified() => {
            say("Quit from the tray");
            Ok(())
        }
    };
    // Open windows close with the agent; a moment for them to hear it.
    feed.publish(FeedEvent::quit());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The tray leaves the panel with the agent.
    if let Some(task) = tray_task {
        task.abort();
        let _ = task.await;
    }
    drop(listening);
    served.map_err(|e| Error::internal(format!("the agent's socket failed: {e}")))?;
    say("stopped");
    Ok(ExitCode::SUCCESS)
}
