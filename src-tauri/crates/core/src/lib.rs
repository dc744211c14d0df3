//! Tokenkeeper's core: everything but the window. The CLI and the desktop shell are
//! thin layers over `Vault`; nothing here depends on tauri.

pub mod browser;
#[doc(hidden)]
pub mod canned;
pub mod clock;
pub mod engine;
pub mod error;
pub mod forms;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod ipc_types;
pub mod model;
pub mod process;
pub mod secret;
pub mod secret_store;
pub mod vault;
pub mod vendors;

pub use error::{Error, ErrorKind, IpcError, Result};
pub use secret::{Secret, SecretBundle, SecretKind};
pub use vault::{FreshToken, NewAccount, SignOut, TokenOptions, TokenQuery, Vault};
