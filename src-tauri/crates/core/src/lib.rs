//! Tokenkeeper's core: everything but the window. The CLI and the desktop shell are
//! thin layers over `Vault`; nothing here depends on tauri.

pub mod agent;
pub mod browser;
pub mod clock;
pub mod engine;
pub mod error;
pub mod fields;
pub mod forms;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod ipc_types;
pub mod model;
pub mod process;
pub mod secret;
pub mod secret_store;
pub mod team;
pub mod vault;
pub mod vendors;

#[doc(hidden)]
pub use http::canned;

pub use error::{Error, ErrorKind, IpcError, Result};
pub use fields::NewAccount;
pub use secret::{Secret, SecretBundle, SecretKind};
pub use vault::{FreshToken, SignOut, TokenOptions, TokenQuery, Vault};
