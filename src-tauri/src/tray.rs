//! The tray icon and its menu: the worst state at a glance in the tooltip, the
//! soonest deadlines, "Renew now", "Show" (reopens the window) and "Quit".

use std::sync::Arc;

use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, WebviewWindowBuilder, Wry};
use tokenkeeper_core::ipc_types::ShellEvent;
use tokenkeeper_core::model::{AccountSummary, TokenState};

use crate::Shell;

/// Human deadlines closer than this make the tray say "due soon", when the admin set
/// no alert thresholds (else the largest one decides, as the first alert does).
const DUE_SOON_MS: i64 = 7 * 86_400_000;

pub fn install(app: &AppHandle) -> tauri::Result<()> {
    let mut tray = TrayIconBuilder::with_id("main")
        .tooltip("Tokenkeeper")
        .menu(&menu(app, "Tokenkeeper", &[])?)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "show" => show_window(app),
            "renew" => renew_all(app),
            "quit" => app.exit(0),
            other => {
                if let Some(name) = other.strip_prefix("account:") {
                    open_account(app, name);
                }
            }
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}

/// Opens an account in the window (from a notification or the tray's menu): a window
/// that is up gets the event; one that is starting takes the name once it listens.
pub fn open_account(app: &AppHandle, name: &str) {
    // Kept until the window takes it: a window still starting may not listen yet.
    app.state::<Arc<Shell>>().open_later(name);
    show_window(app);
    let _ = tauri::Emitter::emit(app, ShellEvent::OpenAccount.name(), name.to_string());
}

/// The window again: the one that is open, or a new one (closing it released the webview).
pub fn show_window(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
        return;
    }
    if let Some(config) = app.config().app.windows.first() {
        if let Ok(builder) = WebviewWindowBuilder::from_config(app, config) {
            if let Err(e) = builder.build() {
                eprintln!("tokenkeeper-desktop: cannot open the window: {e}");
            }
        }
    }
}

/// Renews every account that renews without a human, now, then updates the tray.
fn renew_all(app: &AppHandle) {
    let shell = app.state::<Arc<Shell>>().inner().clone();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let Ok(vault) = shell.vault() else {
            return;
        };
        for a in vault.list().unwrap_or_default() {
            if a.state != TokenState::NeedsSignIn && a.renews_with.is_some() {
                if let Err(e) = vault.renew_now(&a.name).await {
                    eprintln!("tokenkeeper-desktop: {}", e.message());
                }
            }
        }
        refresh(&app, &shell);
        let _ = tauri::Emitter::emit(&app, ShellEvent::AccountsChanged.name(), ());
    });
}

/// What the tray says, from the accounts' states (read from SQLite, never the keyring).
/// The worst state of all accounts, for the icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worst {
    AllFine,
    DueSoon,
    NeedsYou,
}

pub fn summary(
    accounts: &[AccountSummary],
    now_ms: i64,
    due_soon_ms: i64,
) -> (Worst, String, Vec<(String, String)>) {
    let needs_you = accounts
        .iter()
        .filter(|a| a.state == TokenState::NeedsSignIn)
        .count();
    let due_soon = accounts
        .iter()
        .filter(|a| a.state != TokenState::NeedsSignIn)
        .filter(|a| {
            a.human_deadline_ms
                .is_some_and(|d| d - now_ms < due_soon_ms)
        })
        .count();
    let (worst, headline) = match (needs_you, due_soon) {
        (0, 0) => (Worst::AllFine, "Tokenkeeper: all fine".to_string()),
        (0, n) => (Worst::DueSoon, format!("Tokenkeeper: {n} due soon")),
        (n, _) => (Worst::NeedsYou, format!("Tokenkeeper: {n} need you")),
    };
    let mut soonest: Vec<(&AccountSummary, i64)> = accounts
        .iter()
        .filter_map(|a| a.human_deadline_ms.map(|d| (a, d)))
        .collect();
    soonest.sort_by_key(|(_, d)| *d);
    let mut lines: Vec<(String, String)> = accounts
        .iter()
        .filter(|a| a.state == TokenState::NeedsSignIn)
        .map(|a| (a.name.clone(), format!("{}: sign in", a.name)))
        .collect();
    for (a, d) in soonest {
        if lines.len() >= 5 {
            break;
        }
        if a.state == TokenState::NeedsSignIn {
            continue;
        }
        let days = (d - now_ms) / 86_400_000;
        let hours = (d - now_ms) / 3_600_000;
        let left = if days >= 2 {
            format!("{days} days")
        } else {
            format!("{} h", hours.max(0))
        };
        lines.push((a.name.clone(), format!("{}: sign in within {left}", a.name)));
    }
    lines.truncate(5);
    (worst, headline, lines)
}

/// The app icon with a dot in its lower right corner: amber when something is due
/// soon, red when something needs you.
fn badged(icon: &Image<'_>, worst: Worst) -> Image<'static> {
    let (w, h) = (icon.width(), icon.height());
    let mut rgba = icon.rgba().to_vec();
    let color = match worst {
        Worst::AllFine => return Image::new_owned(rgba, w, h),
        Worst::DueSoon => [0xf5, 0x9e, 0x0b, 0xff],
        Worst::NeedsYou => [0xdc, 0x26, 0x26, 0xff],
    };
    let r = w.min(h) as f32 * 0.22;
    let (cx, cy) = (w as f32 - r - 1.0, h as f32 - r - 1.0);
    for y in 0..h {
        for x in 0..w {
            let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
            let i = ((y * w + x) * 4) as usize;
            if d <= r {
                rgba[i..i + 4].copy_from_slice(&color);
            } else if d <= r + 1.5 {
                rgba[i..i + 4].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
            }
        }
    }
    Image::new_owned(rgba, w, h)
}

/// The menu: the headline first (Linux trays show no tooltip), then the soonest
/// deadlines, then the actions.
fn menu(app: &AppHandle, headline: &str, lines: &[(String, String)]) -> tauri::Result<Menu<Wry>> {
    let menu = Menu::new(app)?;
    menu.append(&MenuItem::with_id(
        app,
        "headline",
        headline,
        false,
        None::<&str>,
    )?)?;
    menu.append(&PredefinedMenuItem::separator(app)?)?;
    for (name, text) in lines {
        menu.append(&MenuItem::with_id(
            app,
            format!("account:{name}"),
            text,
            true,
            None::<&str>,
        )?)?;
    }
    if !lines.is_empty() {
        menu.append(&PredefinedMenuItem::separator(app)?)?;
    }
    menu.append(&MenuItem::with_id(
        app,
        "renew",
        "Renew now",
        true,
        None::<&str>,
    )?)?;
    menu.append(&MenuItem::with_id(app, "show", "Show", true, None::<&str>)?)?;
    menu.append(&MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?)?;
    Ok(menu)
}

/// Brings the tray up to date with the vault.
pub fn refresh(app: &AppHandle, shell: &Shell) {
    let Ok(vault) = shell.vault() else {
        return;
    };
    let Ok(accounts) = vault.list() else {
        return;
    };
    let due_soon_ms = vault
        .preferences()
        .ok()
        .and_then(|p| p.alert_thresholds_s.into_iter().max())
        .map_or(DUE_SOON_MS, |s| s * 1000);
    let (worst, headline, lines) = summary(&accounts, chrono_now_ms(), due_soon_ms);
    if let Some(tray) = app.tray_by_id("main") {
        let _ = tray.set_tooltip(Some(&headline));
        if let Some(icon) = app.default_window_icon() {
            let _ = tray.set_icon(Some(badged(icon, worst)));
        }
        if let Ok(m) = menu(app, &headline, &lines) {
            let _ = tray.set_menu(Some(m));
        }
    }
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenkeeper_core::model::{Method, Vendor};

    const DAY_MS: i64 = 86_400_000;

    fn account(name: &str, state: TokenState, deadline_in_days: Option<i64>) -> AccountSummary {
        AccountSummary {
            id: name.into(),
            name: name.into(),
            vendor: Vendor::Biganimal,
            vendor_name: "EDB BigAnimal".into(),
            base_url: "https://portal.example".into(),
            method: Method::DeviceCode,
            username: None,
            labels: Vec::new(),
            state,
            expires_at_ms: None,
            human_deadline_ms: deadline_in_days.map(|d| d * DAY_MS),
            renews_with: None,
            last_error: None,
        }
    }

    #[test]
    fn the_headline_is_the_worst_state_and_due_soon_follows_the_largest_threshold() {
        let fine = [
            account("a", TokenState::Valid, Some(20)),
            account("b", TokenState::Valid, None),
        ];
        let (worst, headline, lines) = summary(&fine, 0, 7 * DAY_MS);
        assert_eq!(worst, Worst::AllFine);
        assert_eq!(headline, "Tokenkeeper: all fine");
        assert_eq!(lines.len(), 1, "the one deadline is listed: {lines:?}");

        let (worst, headline, _) = summary(&fine, 0, 30 * DAY_MS);
        assert_eq!(
            worst,
            Worst::DueSoon,
            "a 30-day threshold makes 20 days soon"
        );
        assert_eq!(headline, "Tokenkeeper: 1 due soon");

        let mixed = [
            account("a", TokenState::Valid, Some(3)),
            account("b", TokenState::NeedsSignIn, Some(3)),
        ];
        let (worst, headline, lines) = summary(&mixed, 0, 7 * DAY_MS);
        assert_eq!(worst, Worst::NeedsYou);
        assert_eq!(headline, "Tokenkeeper: 1 need you");
        assert_eq!(lines[0], ("b".to_string(), "b: sign in".to_string()));
    }
}
