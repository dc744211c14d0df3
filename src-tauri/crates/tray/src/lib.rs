//! Tokenkeeper's tray icon, for the resident agent (`tokenkeeper agent`): a
//! StatusNotifierItem with its `com.canonical.dbusmenu` menu, spoken over D-Bus in
//! pure Rust (ksni on zbus), so the process that shows it links no GTK and no WebKit.
//! The panel (KDE, GNOME's AppIndicator extension, waybar, ...) reads the item from
//! the session bus once it is registered with `org.kde.StatusNotifierWatcher`.
//!
//! - [`model`]: what the tray says, from the accounts' states: the worst state, the
//!   headline and the soonest deadlines;
//! - [`icon`]: the app icon with a dot for the worst state, as the item sends it;
//! - [`item`]: the item on the bus, its menu, and the calls the agent makes and gets.

pub mod icon;
pub mod item;
pub mod model;

pub use item::{Actions, TrayIcon};
pub use model::{due_soon_ms, summary, Worst};
