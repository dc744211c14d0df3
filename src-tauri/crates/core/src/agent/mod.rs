//! The resident agent: one process per vault that keeps its tokens fresh (the renewal
//! engine) and hands them to this user's scripts over a Unix socket, from memory,
//! without a keyring round trip per call. No GTK and no WebKit: a tray or a window
//! can sit on top of it later and reach it through the same socket.
//!
//! - [`protocol`]: the requests and answers, one JSON object per line, and their limits;
//! - [`socket`]: where the socket lives (a private folder of ours) and who may use it;
//! - [`cache`]: the tokens held in memory and the rule for serving one;
//! - [`server`]: the listening side, bounded in time and in clients;
//! - [`client`]: the asking side, as `tokenkeeper token` uses it.

pub mod cache;
pub mod client;
pub mod protocol;
pub mod server;
pub mod socket;
