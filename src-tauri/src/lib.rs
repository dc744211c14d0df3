//! The desktop shell: a window and a tray over tokenkeeper-core. It owns no logic of
//! its own: each command is one call into the core.

mod autostart;
mod background;
mod clipboard;
mod commands;
mod notifications;
#[cfg(feature = "sandbox")]
mod sandbox_mode;
mod sign_ins;
mod single_instance;
mod tray;

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
    /// Start in the tray without opening the window (as at login).
    #[arg(long)]
    tray: bool,
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
    /// Wakes the renewal engine early (an account was added or signed in).
    pub wake: Arc<tokio::sync::Notify>,
    clipboard: Arc<clipboard::Clipboard>,
    /// Browser sign-ins waiting for approval.
    sign_ins: sign_ins::SignIns,
    /// The account a notification or the tray asked to open, until the window takes it.
    pending_account: Mutex<Option<String>>,
}

impl Shell {
    pub fn vault(&self) -> Result<Arc<Vault>, Error> {
        let mut slot = self.vault.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = slot.as_ref() {
            return Ok(v.clone());
        }
        let v = Arc::new(Vault::open(&self.dir)?);
        *slot = Some(v.clone());
        Ok(v)
    }

    /// Something changed the vault from the window: the engine looks again now.
    pub fn changed(&self) {
        self.wake.notify_one();
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

/// SIGTERM (logout, `kill`), SIGINT and SIGHUP end the app as Quit does, so that what
/// Quit tidies (the clipboard) is tidied then too; if that takes over 5 s, it ends
/// anyway.
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
    let listener = match single_instance::claim(&dir) {
        Ok(single_instance::Instance::First(l)) => Some(l),
        Ok(single_instance::Instance::Handed) => {
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("tokenkeeper-desktop: already running; its window is shown\n"),
            );
            return;
        }
        Err(e) => {
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("tokenkeeper-desktop: cannot check for another instance: {e}\n"),
            );
            None
        }
    };
    let shell = Arc::new(Shell {
        dir,
        sandbox: args.sandbox,
        vault: Mutex::new(None),
        wake: Arc::new(tokio::sync::Notify::new()),
        clipboard: Arc::new(clipboard::Clipboard::new()),
        sign_ins: sign_ins::SignIns::default(),
        pending_account: Mutex::new(None),
    });
    let shell_at_exit = shell.clone();
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
            tray::install(app.handle())?;
            if let Some(listener) = listener {
                let handle = app.handle().clone();
                single_instance::serve(listener, move || {
                    let h = handle.clone();
                    let _ = handle.run_on_main_thread(move || tray::show_window(&h));
                });
            }
            if !args.tray {
                tray::show_window(app.handle());
            }
            #[cfg(feature = "sandbox")]
            if shell.sandbox {
                sandbox_mode::start(shell.clone());
            }
            background::start(app.handle().clone(), shell.clone());
            quit_on_signals(app.handle().clone());
            Ok(())
        })
        .build(tauri::generate_context!());
    let result = result.map(|app| {
        app.run(move |_, event| match event {
            // Closing the window destroys it (and its webview processes); the app
            // stays in the tray, renewing and alerting, until Quit.
            tauri::RunEvent::ExitRequested {
                code: None, api, ..
            } => api.prevent_exit(),
            // Quit (the tray), or a signal: a token copied from the app does not
            // outlive it on the clipboard.
            tauri::RunEvent::Exit => shell_at_exit.clipboard.clear_on_quit(),
            _ => {}
        })
    });
    if let Err(e) = result {
        let _ = std::io::Write::write_fmt(
            &mut std::io::stderr(),
            format_args!("tokenkeeper-desktop: {e}\n"),
        );
        std::process::exit(1);
    }
}
