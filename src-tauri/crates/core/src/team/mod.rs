//! The team store: shared accounts kept in OpenBao (or HashiCorp Vault) KV version 2,
//! beside the OS keyring, so teammates on other machines (and headless servers) see
//! the same account, and a rotating refresh token is renewed once per rotation
//! across all of them (issue 14).
//!
//! - [`client`]: one server, its TLS trust, a login (token, userpass, AppRole) and
//!   the token kept alive with `renew-self`;
//! - [`kv`]: KV version 2 at a mount and prefix: versioned reads, check-and-set
//!   writes, metadata, removal;
//! - [`lease`]: the cross-machine single-flight lease with expiry and fencing;
//! - [`failure`]: the typed failures (sealed, unreachable, standby, 403, expired
//!   token, CAS conflict, …) with messages that say what to do;
//! - [`config`]: a team as the admin (or a server's environment) describes it;
//! - [`store`]: one team store as the vault uses it (login kept alive, accounts);
//! - [`shared`]: an account's settings and secrets as KV entries;
//! - [`host_keyring`]: a headless server's own items, kept in the team store.
//!
//! # How it plugs in
//!
//! A shared account is a row of the vault's database like any other (so listing,
//! alerts and the engine read SQLite alone) marked with its team in
//! `shared_accounts`, with the newest version of its secrets seen. Its secrets and
//! the facts of its token live in `<prefix>/accounts/<id>/secrets`, its settings in
//! `<prefix>/accounts/<id>/account`, its lease in `<prefix>/accounts/<id>/lease`.
//! The vault takes the local SQLite lease first (two processes on one machine do not
//! both poll OpenBao), then the team lease; a write of secrets is the lease's fenced
//! check-and-set on the version read under it, carrying the token's facts, so the
//! refresh token, the access token and its expiry change together. A reader asks for
//! a version at least as new as the newest it has seen. `vault/teams.rs` holds that
//! side; `SecretStore` stays the keyring's interface, since a team write must name
//! the version it replaces.

pub mod client;
pub mod config;
pub mod failure;
pub mod host_keyring;
pub mod kv;
pub mod lease;
pub mod shared;
pub mod store;

pub use client::{Login, OpenBao, Server, TokenFacts};
pub use config::{LoginKind, TeamConfig};
pub use failure::{Failure, TeamError, TeamResult};
pub use host_keyring::HostKeyring;
pub use kv::{Entry, Fields, Kv, Metadata};
pub use lease::{holder_name, retrying, Lease, TeamLeases, LEASE_TTL};
pub use store::TeamStore;
