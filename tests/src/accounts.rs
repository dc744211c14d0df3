//! Accounts in a session's vault, made and read through the CLI: `tokenkeeper add`
//! spelled once per vendor and once per sandbox stand-in, and what the vault lists
//! and keeps in the keyring for an account.

use serde_json::Value;

use crate::process::Run;
use crate::sandbox::Sandbox;
use crate::session::Session;

/// The arguments of `tokenkeeper add NAME --vendor VENDOR --url URL FLAGS…`.
pub fn add_args<'a>(
    name: &'a str,
    vendor: &'a str,
    url: &'a str,
    flags: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["add", name, "--vendor", vendor, "--url", url];
    args.extend_from_slice(flags);
    args
}

/// The vault joined to a team store.
impl Session {
    /// Connects this vault to team `ops` at `addr` as userpass `user`, whose password
    /// the tests set to `pw-USER`.
    pub fn team_connect(&self, addr: &str, user: &str) {
        self.cli(
            &[
                "team",
                "connect",
                "ops",
                "--address",
                addr,
                "--userpass",
                user,
                "--secret-stdin",
            ],
            Some(&format!("pw-{user}")),
        )
        .ok();
    }
}

/// Accounts added with a secret on stdin (`--secret-stdin`).
impl Session {
    /// `tokenkeeper add NAME --vendor VENDOR --url URL FLAGS… --secret-stdin` with
    /// `secret` on its input.
    pub fn add_with_secret(
        &self,
        name: &str,
        vendor: &str,
        url: &str,
        secret: &str,
        flags: &[&str],
    ) -> Run {
        let mut args = add_args(name, vendor, url, flags);
        args.push("--secret-stdin");
        self.cli(&args, Some(secret))
    }

    /// A TrueSight account of `user` in the `BmcRealm` tenant, with `extra` flags.
    pub fn add_truesight(
        &self,
        name: &str,
        url: &str,
        user: &str,
        secret: &str,
        extra: &[&str],
    ) -> Run {
        let mut flags = vec!["--username", user, "--tenant", "BmcRealm"];
        flags.extend_from_slice(extra);
        self.add_with_secret(name, "truesight", url, secret, &flags)
    }

    /// A BigID account that signs in with a username and password.
    pub fn add_bigid(&self, name: &str, url: &str, user: &str, password: &str) -> Run {
        self.add_with_secret(name, "bigid", url, password, &["--username", user])
    }

    /// A BigID account that signs in with a user token.
    pub fn add_bigid_user_token(&self, name: &str, url: &str, user_token: &str) -> Run {
        self.add_with_secret(name, "bigid", url, user_token, &["--method", "user-token"])
    }

    /// A BigFix account for `user` (its password on stdin), with `extra` flags
    /// (`--ca-cert FILE`, `--pin-sha256 HEX`).
    pub fn add_bigfix(
        &self,
        name: &str,
        url: &str,
        user: &str,
        password: &str,
        extra: &[&str],
    ) -> Run {
        let mut flags = vec!["--username", user];
        flags.extend_from_slice(extra);
        self.add_with_secret(name, "bigfix", url, password, &flags)
    }
}

/// Accounts at the sandbox's stand-ins, as their demo users.
impl Session {
    /// A TrueSight account for the stand-in's `demo` user.
    pub fn add_sandbox_truesight(&self, sb: &Sandbox, name: &str) -> Run {
        self.add_truesight(name, &sb.url("truesight"), "demo", "demo-password", &[])
    }

    /// A BigID account for the stand-in's `bigid` user, with its password.
    pub fn add_sandbox_bigid(&self, sb: &Sandbox, name: &str) -> Run {
        self.add_bigid(name, &sb.url("bigid"), "bigid", "bigid-password")
    }

    /// Writes the sandbox's BigFix CA into this session; the file's path.
    pub fn sandbox_bigfix_ca(&self, sb: &Sandbox) -> std::path::PathBuf {
        self.write_file(
            "bigfix-ca.pem",
            sb.urls["bigfix_ca_pem"].as_str().expect("bigfix CA"),
        )
    }

    /// A BigFix account at the sandbox for its `admin` operator, trusting the
    /// sandbox's CA.
    pub fn add_sandbox_bigfix(&self, sb: &Sandbox, name: &str) -> Run {
        let ca = self.sandbox_bigfix_ca(sb);
        self.add_bigfix(
            name,
            &sb.url("bigfix"),
            "admin",
            "admin-password",
            &["--ca-cert", ca.to_str().expect("path")],
        )
    }

    /// An Immuta account for the stand-in's `immuta-user`, with its password.
    pub fn add_sandbox_immuta(&self, sb: &Sandbox, name: &str) -> Run {
        self.add_with_secret(
            name,
            "immuta",
            &sb.url("immuta"),
            "immuta-password",
            &["--username", "immuta-user"],
        )
    }

    /// A BigAnimal account at the sandbox's portal, approving its browser sign-in;
    /// the finished `tokenkeeper add`.
    pub fn add_sandbox_biganimal(&self, sb: &Sandbox, name: &str) -> Run {
        let portal = sb.url("biganimal");
        self.device_sign_in(sb, &add_args(name, "biganimal", &portal, &[]), true)
            .0
    }

    /// An account at the sandbox's generic OIDC issuer, approving its browser
    /// sign-in; the finished `tokenkeeper add`.
    pub fn add_sandbox_oidc(&self, sb: &Sandbox, name: &str) -> Run {
        let issuer = sb.url("oidc");
        let args = add_args(
            name,
            "oidc",
            &issuer,
            &["--client-id", "tokenkeeper-sandbox"],
        );
        self.device_sign_in(sb, &args, true).0
    }

    /// Adds one signed-in account of every vendor (BigAnimal and OIDC approved in the
    /// browser); each account's name with the path prefix its renewal calls first.
    pub fn add_every_vendor(&self, sb: &Sandbox) -> Vec<(&'static str, &'static str)> {
        self.add_sandbox_bigid(sb, "bid").ok();
        self.add_sandbox_bigfix(sb, "bf").ok();
        self.add_sandbox_immuta(sb, "im").ok();
        self.add_sandbox_truesight(sb, "ts").ok();
        self.add_sandbox_biganimal(sb, "ba").ok();
        self.add_sandbox_oidc(sb, "oi").ok();
        // (account, the path prefix its renewal calls first)
        vec![
            ("bid", "/bigid/"),
            ("bf", "/api/"),
            ("im", "/immuta/"),
            ("ts", "/truesight/"),
            ("ba", "/biganimal-auth/"),
            ("oi", "/oidc/"),
        ]
    }
}

/// What the vault says of its accounts.
impl Session {
    /// Every account as `tokenkeeper list --json` lists it.
    pub fn accounts(&self) -> Vec<Value> {
        let listed = self.cli(&["list", "--json"], None).ok().json();
        listed
            .as_array()
            .unwrap_or_else(|| panic!("list --json is not a list: {listed}"))
            .clone()
    }

    /// The named account as listed; fails the test when there is none.
    pub fn account(&self, name: &str) -> Value {
        let listed = self.accounts();
        listed
            .iter()
            .find(|a| a["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no account {name} in {listed:?}"))
    }

    /// The names of the accounts, in the order listed.
    pub fn account_names(&self) -> Vec<String> {
        self.accounts()
            .iter()
            .map(|a| a["name"].as_str().expect("a name").to_string())
            .collect()
    }

    /// `tokenkeeper token NAME`, which must succeed: the token, trimmed.
    pub fn token(&self, name: &str) -> String {
        self.cli(&["token", name], None)
            .ok()
            .stdout
            .trim()
            .to_string()
    }

    /// The named account's keyring item, parsed.
    pub fn account_secrets(&self, name: &str) -> Value {
        self.account_item(name).secrets(self)
    }

    /// Where an account's secrets are in the keyring (found once, read many times).
    pub fn account_item(&self, name: &str) -> KeyringItem {
        let shown = self.cli(&["show", name, "--json"], None).ok().json();
        let id = shown["summary"]["id"].as_str().expect("account id");
        KeyringItem {
            service: self.service(),
            item: format!("account/{id}"),
        }
    }
}

/// One account's item in the session's keyring.
#[derive(Debug)]
pub struct KeyringItem {
    service: String,
    item: String,
}

impl KeyringItem {
    /// The secrets stored there now, read with `secret-tool`.
    pub fn secrets(&self, s: &Session) -> Value {
        let text = s
            .keyring_lookup(&self.service, &self.item)
            .expect("the account's keyring item");
        serde_json::from_str(&text).expect("keyring JSON")
    }
}
