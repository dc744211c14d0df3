//! The window's desktop notifications: the sender shared with the headless agent
//! (tokenkeeper-notify: straight to `org.freedesktop.Notifications`, delivery
//! checked, escaped for servers that read markup, alerts no server took kept until
//! one answers). What the shell adds is the click: `Notifier::new(on_click)` offers
//! "Open", and `background` opens the account's window when it is clicked.

pub use tokenkeeper_notify::Notifier;
