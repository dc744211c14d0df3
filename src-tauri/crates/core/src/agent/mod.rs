//! The resident agent: one process per vault that keeps its tokens fresh (the renewal
//! engine) and hands them to this user's scripts over a Unix socket, from memory,
//! without a keyring round trip per call. No GTK and no WebKit: the tray is drawn over
//! D-Bus, and the window is a process of its own started on demand, which reaches the
//! agent through the same socket (its events, its browser sign-ins).
//!
//! - [`protocol`]: the requests and answers, one JSON object per line, and their limits;
//! - [`socket`]: where the socket lives (a private folder of ours) and who may use it;
//! - [`cache`]: the tokens held in memory and the rule for serving one;
//! - [`server`]: the listening side, bounded in time and in clients;
//! - [`feed`]: the events the agent sends the windows that subscribe;
//! - [`sign_ins`]: browser sign-ins, run here so that closing the window ends none;
//! - [`client`]: the asking side, as `tokenkeeper token` uses it.

pub mod cache;
pub mod client;
pub mod feed;
pub mod protocol;
pub mod server;
pub mod sign_ins;
pub mod socket;
