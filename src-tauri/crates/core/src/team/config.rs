//! How one team store is reached: its address, trust, KV mount and prefix, and the
//! login, as the admin gave them (`tokenkeeper team connect`, kept in the vault's
//! database with the login's secret in the OS keyring) or as a service manager gives
//! them to a headless server (`TOKENKEEPER_TEAM_*` environment variables and files).

use std::path::Path;

use super::client::{Login, Server};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// The KV version 2 mount a team store uses unless told otherwise.
pub const DEFAULT_MOUNT: &str = "secret";
/// The folder under the mount where Tokenkeeper keeps a team's accounts.
pub const DEFAULT_PREFIX: &str = "tokenkeeper";
/// The name of the team a headless server's environment describes, unless named.
pub const DEFAULT_ENV_TEAM: &str = "team";

/// Which login method, and its non-secret half (a user name, a role id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginKind {
    Token,
    Userpass {
        mount: String,
        username: String,
    },
    AppRole {
        mount: String,
        role_id: String,
    },
    /// The token of an OpenBao account of this vault (`tokenkeeper add --vendor
    /// openbao`): listed, kept alive and alerted on as every account is.
    Account {
        account: String,
    },
}

impl LoginKind {
    pub fn id(&self) -> &'static str {
        match self {
            LoginKind::Token => "token",
            LoginKind::Userpass { .. } => "userpass",
            LoginKind::AppRole { .. } => "approle",
            LoginKind::Account { .. } => "account",
        }
    }

    /// The login, given its secret half (the token, password or secret id).
    pub fn with_secret(&self, secret: Secret) -> Login {
        match self {
            LoginKind::Token | LoginKind::Account { .. } => Login::Token(secret),
            LoginKind::Userpass { mount, username } => Login::Userpass {
                mount: mount.clone(),
                username: username.clone(),
                password: secret,
            },
            LoginKind::AppRole { mount, role_id } => Login::AppRole {
                mount: mount.clone(),
                role_id: role_id.clone(),
                secret_id: secret,
            },
        }
    }

    /// What the secret half is called, for prompts and messages.
    pub fn secret_label(&self) -> &'static str {
        match self {
            LoginKind::Token => "OpenBao token",
            LoginKind::Userpass { .. } => "OpenBao password",
            LoginKind::AppRole { .. } => "AppRole secret id",
            LoginKind::Account { .. } => "OpenBao account's token",
        }
    }

    /// From the database's columns.
    pub fn parse(login: &str, mount: Option<String>, name: Option<String>) -> Result<Self> {
        let missing = || Error::vault(format!("the team's {login} login lacks its name"));
        Ok(match login {
            "token" => LoginKind::Token,
            "userpass" => LoginKind::Userpass {
                mount: mount.unwrap_or_else(|| "userpass".into()),
                username: name.ok_or_else(missing)?,
            },
            "approle" => LoginKind::AppRole {
                mount: mount.unwrap_or_else(|| "approle".into()),
                role_id: name.ok_or_else(missing)?,
            },
            "account" => LoginKind::Account {
                account: name.ok_or_else(missing)?,
            },
            other => {
                return Err(Error::vault(format!(
                    "unknown team login '{other}': this vault was written by a newer Tokenkeeper"
                )))
            }
        })
    }

    /// The login's mount and name, for the database.
    pub fn columns(&self) -> (Option<&str>, Option<&str>) {
        match self {
            LoginKind::Token => (None, None),
            LoginKind::Userpass { mount, username } => (Some(mount), Some(username)),
            LoginKind::AppRole { mount, role_id } => (Some(mount), Some(role_id)),
            LoginKind::Account { account } => (None, Some(account)),
        }
    }
}

/// One team store as this vault reaches it. No secret: the login's secret half is
/// in the OS keyring (a desktop) or a file the service manager provides (a server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamConfig {
    pub name: String,
    pub server: Server,
    pub mount: String,
    pub prefix: String,
    pub login: LoginKind,
}

impl TeamConfig {
    /// A team name fit for a keyring item and a message: letters, digits, `-`, `_`, `.`.
    pub fn check_name(name: &str) -> Result<()> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(())
        } else {
            Err(Error::usage(format!(
                "'{name}' is not a team name Tokenkeeper takes: use up to 64 letters, digits, \
                 '-', '_' or '.'"
            )))
        }
    }
}

/// The team a headless server's environment describes, with its login's secret, or
/// `None` when `TOKENKEEPER_TEAM_ADDR` is not set.
pub fn from_env() -> Result<Option<(TeamConfig, Secret)>> {
    from_vars(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
}

/// `from_env` over any source of variables (tests).
pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<(TeamConfig, Secret)>> {
    let Some(address) = var("TOKENKEEPER_TEAM_ADDR") else {
        return Ok(None);
    };
    let name = var("TOKENKEEPER_TEAM_NAME").unwrap_or_else(|| DEFAULT_ENV_TEAM.into());
    TeamConfig::check_name(&name)?;
    let ca_cert_pem = match var("TOKENKEEPER_TEAM_CA_FILE") {
        Some(path) => Some(
            read_file(&path, "TOKENKEEPER_TEAM_CA_FILE")?
                .expose()
                .to_string(),
        ),
        None => None,
    };
    let secret_from = |value: &str, file: &str| -> Result<Option<Secret>> {
        if let Some(path) = var(file) {
            return read_file(&path, file).map(Some);
        }
        Ok(var(value).map(|v| Secret::new(v.trim().to_string())))
    };
    let (login, secret) = if let Some(role_id) = var("TOKENKEEPER_TEAM_ROLE_ID") {
        let secret = secret_from(
            "TOKENKEEPER_TEAM_SECRET_ID",
            "TOKENKEEPER_TEAM_SECRET_ID_FILE",
        )?
        .ok_or_else(|| {
            Error::usage(
                "TOKENKEEPER_TEAM_ROLE_ID is set but no secret id is: set \
                     TOKENKEEPER_TEAM_SECRET_ID_FILE to the file your service manager \
                     provides (systemd's LoadCredential=)",
            )
        })?;
        let mount = var("TOKENKEEPER_TEAM_APPROLE_MOUNT").unwrap_or_else(|| "approle".into());
        (LoginKind::AppRole { mount, role_id }, secret)
    } else if let Some(token) =
        secret_from("TOKENKEEPER_TEAM_TOKEN", "TOKENKEEPER_TEAM_TOKEN_FILE")?
    {
        (LoginKind::Token, token)
    } else {
        return Err(Error::usage(
            "TOKENKEEPER_TEAM_ADDR is set but no login is: set TOKENKEEPER_TEAM_ROLE_ID and \
             TOKENKEEPER_TEAM_SECRET_ID_FILE (AppRole), or TOKENKEEPER_TEAM_TOKEN_FILE (a token)",
        ));
    };
    if secret.is_empty() {
        return Err(Error::usage(format!(
            "the team's {} given in the environment is empty",
            login.secret_label()
        )));
    }
    Ok(Some((
        TeamConfig {
            name,
            server: Server {
                address,
                ca_cert_pem,
                pin_sha256: None,
            },
            mount: var("TOKENKEEPER_TEAM_MOUNT").unwrap_or_else(|| DEFAULT_MOUNT.into()),
            prefix: var("TOKENKEEPER_TEAM_PREFIX").unwrap_or_else(|| DEFAULT_PREFIX.into()),
            login,
        },
        secret,
    )))
}

fn read_file(path: &str, var: &str) -> Result<Secret> {
    let text = std::fs::read_to_string(Path::new(path)).map_err(|e| {
        Error::usage(format!(
            "cannot read {var} ({path}): {e}; check the path and that this user may read it"
        ))
    })?;
    Ok(Secret::new(text.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn no_address_is_no_team_and_an_address_without_login_says_what_to_set() {
        assert!(from_vars(vars(&[])).unwrap().is_none());
        let e = from_vars(vars(&[("TOKENKEEPER_TEAM_ADDR", "http://127.0.0.1:1")])).unwrap_err();
        assert!(
            e.message().contains("TOKENKEEPER_TEAM_SECRET_ID_FILE"),
            "{e}"
        );
        let e = from_vars(vars(&[
            ("TOKENKEEPER_TEAM_ADDR", "http://127.0.0.1:1"),
            ("TOKENKEEPER_TEAM_ROLE_ID", "r"),
        ]))
        .unwrap_err();
        assert!(e.message().contains("LoadCredential"), "{e}");
    }

    #[test]
    fn an_approle_secret_id_comes_from_its_file_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret-id");
        std::fs::write(&file, "sid-0123\n").unwrap();
        let (config, secret) = from_vars(vars(&[
            ("TOKENKEEPER_TEAM_ADDR", "http://127.0.0.1:1"),
            ("TOKENKEEPER_TEAM_NAME", "ops"),
            ("TOKENKEEPER_TEAM_ROLE_ID", "role-1"),
            ("TOKENKEEPER_TEAM_SECRET_ID_FILE", file.to_str().unwrap()),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(config.name, "ops");
        assert_eq!(config.mount, "secret");
        assert_eq!(
            config.login,
            LoginKind::AppRole {
                mount: "approle".into(),
                role_id: "role-1".into()
            }
        );
        assert_eq!(secret.expose(), "sid-0123");
        assert!(!format!("{config:?}").contains("sid-0123"));
    }

    #[test]
    fn team_names_are_checked() {
        assert!(TeamConfig::check_name("ops-eu.1").is_ok());
        assert!(TeamConfig::check_name("a/b").is_err());
        assert!(TeamConfig::check_name("").is_err());
    }
}
