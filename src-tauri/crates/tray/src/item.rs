//! The item on the session bus: a StatusNotifierItem whose menu is the headline (a
//! disabled first entry: Linux panels show no tooltip), the soonest deadlines (each
//! opens its account), then "Renew now", "Show" and "Quit". The agent starts it with
//! its [`Actions`] and calls [`TrayIcon::update`] when the accounts change.
//!
//! With no tray host on the bus (no `org.kde.StatusNotifierWatcher`) the item still
//! starts and says so through [`Actions::host_missing`]; it registers as soon as a
//! watcher appears (ksni follows the watcher's name), so a panel started after the
//! agent shows it.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ksni::menu::StandardItem;
use ksni::{MenuItem, OfflineReason, ToolTip, TrayMethods};
use tokenkeeper_core::model::{AccountSummary, Preferences};

use crate::icon;
use crate::model::{due_soon_ms, summary, Worst};

/// What the tray's entries do, and what it says about the panel. Each call runs on
/// the item's D-Bus task with its state held: hand the work off and return at once.
pub trait Actions: Send + Sync + 'static {
    /// "Renew now": renew every account that renews without a human.
    fn renew_now(&self);
    /// "Show": open the window.
    fn show(&self);
    /// An account's entry: open the window on that account.
    fn open_account(&self, name: &str);
    /// "Quit": stop the process that shows the tray.
    fn quit(&self);
    /// No tray host takes the item (none on the bus yet, or it went away); `why` is
    /// what the bus said. The item is shown once one appears.
    fn host_missing(&self, why: &str) {
        let _ = why;
    }
    /// A tray host appeared after one was missing, and the item registers with it.
    fn host_found(&self) {}
}

/// The item's state, as ksni reads it to answer the panel.
struct Item {
    actions: Arc<dyn Actions>,
    worst: Worst,
    headline: String,
    lines: Vec<(String, String)>,
    icons: Vec<ksni::Icon>,
}

/// A label shown as it is: in dbusmenu a lone `_` marks an access key and is hidden.
fn literal(text: &str) -> String {
    text.replace('_', "__")
}

impl ksni::Tray for Item {
    /// A click on the icon opens the menu, as the tray always did.
    const MENU_ON_ACTIVATE: bool = true;

    fn id(&self) -> String {
        "tokenkeeper".into()
    }

    fn title(&self) -> String {
        "Tokenkeeper".into()
    }

    fn icon_pixmap(&self) -> Vec<ksni::Icon> {
        self.icons.clone()
    }

    fn tool_tip(&self) -> ToolTip {
        ToolTip {
            title: self.headline.clone(),
            ..ToolTip::default()
        }
    }

    fn menu(&self) -> Vec<MenuItem<Self>> {
        let mut menu: Vec<MenuItem<Self>> = vec![
            StandardItem {
                label: literal(&self.headline),
                enabled: false,
                ..StandardItem::default()
            }
            .into(),
            MenuItem::Separator,
        ];
        for (name, text) in &self.lines {
            let name = name.clone();
            menu.push(
                StandardItem {
                    label: literal(text),
                    activate: Box::new(move |item: &mut Item| item.actions.open_account(&name)),
                    ..StandardItem::default()
                }
                .into(),
            );
        }
        if !self.lines.is_empty() {
            menu.push(MenuItem::Separator);
        }
        let action = |label: &str, run: fn(&dyn Actions)| -> MenuItem<Self> {
            StandardItem {
                label: label.into(),
                activate: Box::new(move |item: &mut Item| run(&*item.actions)),
                ..StandardItem::default()
            }
            .into()
        };
        menu.push(action("Renew now", |a| a.renew_now()));
        menu.push(action("Show", |a| a.show()));
        menu.push(action("Quit", |a| a.quit()));
        menu
    }

    fn watcher_online(&self) {
        self.actions.host_found();
    }

    fn watcher_offline(&self, reason: OfflineReason) -> bool {
        let why = match reason {
            OfflineReason::Error(e) => e.to_string(),
            _ => "the tray host left the session bus".to_string(),
        };
        self.actions.host_missing(&why);
        // Keep serving: the item registers again when a watcher appears.
        true
    }
}

/// The running tray item. Dropping it takes the item off the bus.
pub struct TrayIcon {
    handle: ksni::Handle<Item>,
}

impl std::fmt::Debug for TrayIcon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrayIcon").finish_non_exhaustive()
    }
}

impl TrayIcon {
    /// Puts the item on the session bus, saying "Tokenkeeper" until the first
    /// [`update`](Self::update), and registers it with the tray host if there is one
    /// (else [`Actions::host_missing`] is told). Must run on a tokio runtime. Err
    /// when there is no session bus to be on.
    pub async fn start(actions: Arc<dyn Actions>) -> Result<Self, String> {
        let item = Item {
            actions,
            worst: Worst::AllFine,
            headline: "Tokenkeeper".into(),
            lines: Vec::new(),
            icons: icon::pixmaps(Worst::AllFine),
        };
        let handle = item
            .assume_sni_available(true)
            .spawn()
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self { handle })
    }

    /// Brings the item up to date with the accounts, as of now: the panel is told
    /// what changed (icon, tooltip, menu).
    pub async fn update(&self, accounts: &[AccountSummary], preferences: &Preferences) {
        let (worst, headline, lines) = summary(accounts, now_ms(), due_soon_ms(preferences));
        self.handle
            .update(move |item| {
                if item.worst != worst {
                    item.icons = icon::pixmaps(worst);
                    item.worst = worst;
                }
                item.headline = headline;
                item.lines = lines;
            })
            .await;
    }
}

impl Drop for TrayIcon {
    fn drop(&mut self) {
        // The request is queued for the item's task; nothing to wait for here.
        drop(self.handle.shutdown());
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
