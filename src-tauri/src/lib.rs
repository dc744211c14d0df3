//! The desktop window over tokenkeeper-core, started on demand: the resident part of
//! Tokenkeeper is its agent (`tokenkeeper agent`: the renewal engine, the alerts, the
//! tray, the browser sign-ins), which this process makes sure runs and whose events
//! it shows. Closing the window ends this process, so its memory goes back to the
//! system. It owns no logic of its own: each command is one call into the core.

mod agent_link;
mod autostart;
mod clipboard;
mod commands;
#[cfg(feature = "sandbox")]
mod sandbox_mode;
mod single_instance;
mod window;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Parser;
use tokenkeeper_core::{vault, Error, Vault};

#[derive(Parser, Debug)]
#[command(
    name = "tokenkeeper-desktop",
    version,
    about = "Tokenkeeper's desktop window"
)]
struct Args {
    /// The vault's folder (default: the platform's data folder).
    #[arg(long, env = "TOKENKEEPER_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Start the built-in sandbox vendors and a demo vault of their accounts (in a
    /// build with the `sandbox` feature, as `./dev sandbox` makes; the installed app
    /// has none).
    #[arg(long)]
    sandbox: bool,
    /// Make sure the agent (the tray, renewals, alerts) runs, then exit without
    /// opening the window.
    #[arg(long)]
    tray: bool,
    /// Open the window on this account.
    #[arg(long, value_name = "NAME")]
    account: Option<String>,
    /// Started by the agent (the tray's Show, a notification): it runs already.
    #[arg(long, hide = true)]
    from_agent: bool,
    /// Turn start at login on or off (an XDG autostart entry), then exit.
    #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
    start_at_login: Option<String>,
}

/// The shell's state: the vault, opened lazily so that a locked keyring at start
/// becomes a message in the window, and unlocking it later just works.
#[derive(Debug)]
pub struct Shell {
    dir: PathBuf,
    sandbox: bool,
    vault: Mutex<Option<Arc<Vault>>>,
    clipboard: Arc<clipboard::Clipboard>,
    /// The account a notification or the tray asked to open, until the window takes it.
    pending_account: Mutex<Option<String>>,
}

impl Shell {
    pub fn vault(&self) -> Result<Arc<Vault>, Error> {
        let mut slot = self.vault.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = slot.as_ref() {
            return Ok(v.clone());
        }
        // The same secret store the agent and the CLI choose (`open_here`).
        let v = Arc::new(Vault::open_here(&self.dir)?);
        *slot = Some(v.clone());
        Ok(v)
    }

    pub fn open_later(&self, name: &str) {
        *self
            .pending_account
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(name.to_string());
    }

    fn take_pending_account(&self) -> Option<String> {
        self.pending_account
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// SIGTERM (logout, `kill`), SIGINT and SIGHUP end the window as closing it does,
/// so that what an exit tidies (the clipboard) is tidied then too; if that takes over
/// 5 s, it ends anyway.
fn quit_on_signals(app: tauri::AppHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    tauri::async_runtime::spawn(async move {
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {}
        }
        app.exit(0);
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        std::process::exit(0);
    });
}

/// After the window closed: this process stays only while it has something to hand
/// over (a copied token the clipboard serves from here, until its timeout clears it;
/// the stand-in vendors of sandbox mode) and ends once it has not.
fn exit_when_idle(app: tauri::AppHandle, shell: Arc<Shell>) {
    tauri::async_runtime::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            if tauri::Manager::get_webview_window(&app, "main").is_some() {
                return;
            }
            if !shell.sandbox && !shell.clipboard.holds_copy() {
                app.exit(0);
                return;
            }
        }
    });
}

pub(crate) fn say(line: std::fmt::Arguments<'_>) {
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr(),
        format_args!("tokenkeeper-desktop: {line}\n"),
    );
}

/// Sandbox mode's vault folder (`given`, else its own), made ready: demo accounts
/// never go into a real vault.
#[cfg(feature = "sandbox")]
fn sandbox_dir(given: Option<&Path>) -> Result<PathBuf, String> {
    let dir = given.map_or_else(sandbox_mode::default_dir, Path::to_path_buf);
    sandbox_mode::prepare_dir(&dir, given.is_some())?;
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr(),
        format_args!(
            "tokenkeeper-desktop: sandbox mode: demo vault in {}\n",
            dir.display()
        ),
    );
    Ok(dir)
}

/// A build without the `sandbox` feature (the installed app) has no stand-ins to
/// start: `--sandbox` is refused with where to find them.
#[cfg(not(feature = "sandbox"))]
fn sandbox_dir(_given: Option<&Path>) -> Result<PathBuf, String> {
    Err(NO_SANDBOX.to_string())
}

/// What a build without the `sandbox` feature says to `--sandbox`.
#[cfg(not(feature = "sandbox"))]
const NO_SANDBOX: &str = "this build has no sandbox mode: the stand-in vendors and the \
    demo vault come only with the `sandbox` feature, which the installed app leaves out. \
    To try Tokenkeeper against them, run ./dev sandbox in a source checkout.";

pub fn run() {
    let args = Args::parse();
    if let Some(choice) = &args.start_at_login {
        match autostart::set(choice == "on") {
            Ok(said) => {
                let _ = std::io::Write::write_fmt(&mut std::io::stdout(), format_args!("{said}\n"));
            }
            Err(e) => {
                let _ = std::io::Write::write_fmt(
                    &mut std::io::stderr(),
                    format_args!("tokenkeeper-desktop: {e}\n"),
                );
                std::process::exit(1);
            }
        }
        return;
    }
    let dir = if args.sandbox {
        match sandbox_dir(args.data_dir.as_deref()) {
            Ok(dir) => dir,
            Err(e) => {
                let _ = std::io::Write::write_fmt(
                    &mut std::io::stderr(),
                    format_args!("tokenkeeper-desktop: {e}\n"),
                );
                std::process::exit(2);
            }
        }
    } else {
        args.data_dir.clone().unwrap_or_else(vault::default_dir)
    };
    if args.tray {
        return match agent_link::ensure(&dir) {
            Ok(()) => say(format_args!("the agent runs; Tokenkeeper is in the tray")),
            Err(why) => {
                say(format_args!("{why}"));
                std::process::exit(1);
            }
        };
    }
    let listener = match single_instance::claim(&dir, args.account.as_deref()) {
        Ok(single_instance::Instance::First(l)) => Some(l),
        Ok(single_instance::Instance::Handed) => {
            if !args.from_agent {
                say(format_args!("already running; its window is shown"));
            }
            return;
        }
        Err(e) => {
            say(format_args!("cannot check for another window: {e}"));
            None
        }
    };
    // The agent runs the engine, the alerts and the tray; the window only shows them.
    let agent = if args.from_agent {
        Ok(())
    } else {
        agent_link::ensure(&dir)
    };
    if let Err(why) = &agent {
        say(format_args!("{why}"));
    }
    let shell = Arc::new(Shell {
        dir,
        sandbox: args.sandbox,
        vault: Mutex::new(None),
        clipboard: Arc::new(clipboard::Clipboard::new()),
        pending_account: Mutex::new(args.account.clone()),
    });
    let shell_at_exit = shell.clone();
    let idle = shell.clone();
    let result = tauri::Builder::default()
        .manage(shell.clone())
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::list_accounts,
            commands::vendor_forms,
            commands::account_detail,
            commands::add_account,
            commands::edit_account,
            commands::set_trust,
            commands::sign_in,
            commands::start_device_sign_in,
            commands::device_sign_in_in_progress,
            commands::cancel_sign_in,
            commands::renew_now,
            commands::copy_token,
            commands::reveal_token,
            commands::remove_account,
            commands::bigfix_tokens,
            commands::bigfix_rename,
            commands::bigfix_extend,
            commands::bigfix_revoke,
            commands::bigfix_rotate,
            commands::preferences,
            commands::set_preferences,
            commands::take_pending_account,
        ])
        .setup(move |app| {
            if let Some(listener) = listener {
                let handle = app.handle().clone();
                single_instance::serve(listener, move |account| {
                    let h = handle.clone();
                    let _ = handle.run_on_main_thread(move || window::show(&h, account.as_deref()));
                });
            }
            window::show(app.handle(), None);
            #[cfg(feature = "sandbox")]
            if shell.sandbox {
                sandbox_mode::start(shell.clone());
            }
            agent_link::relay(app.handle().clone(), shell.dir.clone());
            quit_on_signals(app.handle().clone());
            Ok(())
        })
        .build(tauri::generate_context!());
    let result = result.map(|app| {
        app.run(move |handle, event| match event {
            // The window closed: the process ends, unless it still serves a copied
            // token or sandbox mode's stand-ins (then it ends when it no longer does).
            tauri::RunEvent::ExitRequested {
                code: None, api, ..
            } if idle.sandbox || idle.clipboard.holds_copy() => {
                api.prevent_exit();
                exit_when_idle(handle.clone(), idle.clone());
            }
            // Closing the window, the agent's Quit, or a signal: a token copied from
            // the window does not outlive it on the clipboard.
            tauri::RunEvent::Exit => shell_at_exit.clipboard.clear_on_quit(),
            _ => {}
        })
    });
    if let Err(e) = result {
        say(format_args!("{e}"));
        std::process::exit(1);
    }
}
