//! `tokenkeeper`: the command-line twin of the desktop app, on the same vault. It
//! signs in, hands fresh tokens to scripts, and never takes a secret from argv.

mod agent;
mod keep_fresh;
mod output;
mod window;

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use tokenkeeper_core::clock::SystemClock;
use tokenkeeper_core::engine::{Engine, EngineEvent, EventSink, Policy};
use tokenkeeper_core::fields::{FieldKey, NewAccount};
use tokenkeeper_core::http;
use tokenkeeper_core::model::{Method, Vendor};
use tokenkeeper_core::vault::{self, SignOut};
use tokenkeeper_core::vendors::{bigfix, DevicePrompt};
use tokenkeeper_core::{
    Error, ErrorKind, Result, Secret, SecretKind, TokenOptions, TokenQuery, Vault,
};
use zeroize::Zeroizing;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  internal error (a bug: please report it)
  2  usage error: bad arguments, unknown account
  3  a human must sign in again: tokenkeeper login NAME
  4  the vendor refused the credentials or the permission (HTTP 401/403)
  5  the vendor or the network failed: unreachable, timeout, HTML or broken answer, 5xx
  6  the vault or the OS keyring is unavailable: locked, missing, damaged";

#[derive(Parser, Debug)]
#[command(name = "tokenkeeper", version, about = "Keeps enterprise API tokens fresh, with secrets in the OS keyring.", after_help = EXIT_CODES)]
struct Cli {
    /// The vault's folder; it also names the vault's keyring service.
    #[arg(long, global = true, env = "TOKENKEEPER_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Add an account and sign in to it (the secret comes from stdin or a hidden prompt).
    Add(Box<AddArgs>),
    /// Run the sign-in now: with the stored secret or a new one, or in the browser
    /// for device-code accounts (BigAnimal, OIDC).
    Login {
        name: String,
        /// Read a new secret (a changed password, say) from stdin.
        #[arg(long)]
        secret_stdin: bool,
        /// Print the sign-in address without opening the browser.
        #[arg(long)]
        no_browser: bool,
    },
    /// Print a valid token, renewing it first if needed.
    Token {
        name: String,
        /// Print the whole Authorization header value (scheme included) instead.
        #[arg(long)]
        header: bool,
        /// Ask the vendor whether the token still works, and renew it if not
        /// (done here, never through the agent).
        #[arg(long)]
        check: bool,
        /// Do not ask the vault's agent (`tokenkeeper agent`); by default a running
        /// agent hands the token from its memory, and without one this works alone.
        #[arg(long)]
        no_agent: bool,
    },
    /// Renew the token now (for BigFix: rotate it).
    Renew { name: String },
    /// Print the SHA-256 fingerprint of the certificate a server presents, for --pin-sha256.
    Cert { url: String },
    /// Change how an account trusts its server's certificate (after the server's
    /// certificate or CA was renewed); the new trust is tried before it is saved.
    Trust {
        name: String,
        /// A PEM file with the CA that signed the server's certificate.
        #[arg(
            long,
            conflicts_with = "pin_sha256",
            required_unless_present = "pin_sha256"
        )]
        ca_cert: Option<PathBuf>,
        /// The SHA-256 fingerprint of the server's certificate (`tokenkeeper cert URL`).
        #[arg(long)]
        pin_sha256: Option<String>,
    },
    /// Manage an HCL BigFix account's tokens on the server.
    #[command(subcommand)]
    Bigfix(BigfixCommand),
    /// Run a command with TOKENKEEPER_TOKEN (and TOKENKEEPER_AUTHORIZATION) set.
    Exec {
        name: String,
        /// Also give CMD the token in a private file, TOKENKEEPER_TOKEN_FILE (and
        /// TOKENKEEPER_HEADER_FILE, `Authorization: ...` for curl -H @file), rewritten
        /// before each expiry while CMD runs and removed when it ends.
        #[arg(long)]
        keep_fresh: bool,
        #[arg(trailing_var_arg = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// List accounts, their state and deadlines (no secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one account with its history (no secrets).
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove an account: log out at the vendor where offered, delete its secrets.
    Remove { name: String },
    /// Keep every account's token fresh and raise alerts, in the foreground (what the
    /// desktop app does in its tray), printing each event; stops on Ctrl-C.
    Watch {
        /// One JSON object per event.
        #[arg(long)]
        json: bool,
        /// Renewals at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Run the vault's resident agent: it keeps every token fresh and raises alerts
    /// (as `watch` does) and hands this user's `tokenkeeper token` calls their tokens
    /// from memory over a private Unix socket. One per vault; stops on SIGTERM or
    /// Ctrl-C or the tray's Quit. It shows the tray icon unless `--no-tray`.
    Agent {
        /// Run without a tray icon: a headless service.
        #[arg(long)]
        no_tray: bool,
        /// Renewals at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Share accounts with a team through OpenBao or HashiCorp Vault (README, Teams).
    #[command(subcommand)]
    Team(TeamCommand),
    /// Where the vault and its keyring items are.
    Info {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum TeamCommand {
    /// Connect this vault to a team store: the login is tried before it is saved (its
    /// secret goes to the OS keyring, read from stdin or a hidden prompt).
    Connect {
        /// The team's name here (letters, digits, '-', '_', '.').
        name: String,
        /// The server: https://bao.example.com:8200 (with --account: that account's).
        #[arg(long, required_unless_present = "account")]
        address: Option<String>,
        /// A PEM file with the CA that signed the server's certificate.
        #[arg(long)]
        ca_cert: Option<PathBuf>,
        /// The KV version 2 engine's mount.
        #[arg(long, default_value = tokenkeeper_core::team::config::DEFAULT_MOUNT)]
        mount: String,
        /// The folder under the mount where the team's accounts are.
        #[arg(long, default_value = tokenkeeper_core::team::config::DEFAULT_PREFIX)]
        prefix: String,
        /// Log in with a token (read from stdin or the prompt).
        #[arg(long, conflicts_with_all = ["userpass", "approle", "account"])]
        token: bool,
        /// Log in with the token of this OpenBao account of the vault (`tokenkeeper
        /// add NAME --vendor openbao`), which Tokenkeeper lists, renews and alerts on.
        #[arg(long, value_name = "ACCOUNT", conflicts_with_all = ["userpass", "approle"])]
        account: Option<String>,
        /// Log in as this userpass user (the password from stdin or the prompt).
        #[arg(long, value_name = "USER", conflicts_with = "approle")]
        userpass: Option<String>,
        /// Log in with this AppRole role id (the secret id from stdin or the prompt).
        #[arg(long, value_name = "ROLE_ID")]
        approle: Option<String>,
        /// Read the token, password or secret id from stdin.
        #[arg(long)]
        secret_stdin: bool,
    },
    /// Share an account of this vault in a team: its settings and secrets move to
    /// the team store, where teammates' Tokenkeepers find them.
    Add {
        account: String,
        #[arg(long)]
        team: String,
    },
    /// List here every account shared in the team.
    Join { name: String },
    /// The team stores this vault is connected to, and the accounts shared in each.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum BigfixCommand {
    /// List the operator's tokens (or, for master operators, another operator's).
    Tokens {
        name: String,
        /// Another operator's user id (master operators only).
        #[arg(long)]
        user: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Show one token, by id or by name.
    Get {
        name: String,
        #[arg(
            long,
            conflicts_with = "token_name",
            required_unless_present = "token_name"
        )]
        id: Option<u64>,
        #[arg(long)]
        token_name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Create a token and switch the account to it (the old one stays on the server).
    Create {
        name: String,
        #[arg(long)]
        token_name: String,
        /// Lifetime in days; 0 never expires.
        #[arg(long, default_value_t = bigfix::DEFAULT_DURATION_DAYS)]
        duration: u32,
    },
    /// Rename a token.
    Rename {
        name: String,
        #[arg(long)]
        id: u64,
        #[arg(long)]
        to: String,
    },
    /// Give a token a new lifetime, counted from now (0 never expires).
    Extend {
        name: String,
        #[arg(long)]
        id: u64,
        #[arg(long)]
        duration: u32,
    },
    /// Revoke a token on the server.
    Revoke {
        name: String,
        #[arg(long)]
        id: u64,
    },
    /// Create a new token, switch the account to it, revoke the old one.
    Rotate { name: String },
}

#[derive(Args, Debug)]
struct AddArgs {
    name: String,
    #[arg(long, value_parser = parse_vendor)]
    vendor: Vendor,
    /// The instance's base URL, e.g. https://tsps.example.com:8043
    #[arg(long)]
    url: String,
    #[arg(long, value_parser = parse_method)]
    method: Option<Method>,
    #[arg(long)]
    username: Option<String>,
    #[arg(long)]
    tenant: Option<String>,
    #[arg(long)]
    iam_id: Option<String>,
    #[arg(long)]
    client_id: Option<String>,
    /// A PEM file with the CA (or self-signed certificate) this account trusts.
    #[arg(long, value_name = "PEM", conflicts_with = "pin_sha256")]
    ca_cert: Option<PathBuf>,
    /// Trust exactly the certificate with this SHA-256 fingerprint (`tokenkeeper cert URL`).
    #[arg(long, value_name = "HEX")]
    pin_sha256: Option<String>,
    /// OAuth scopes (OIDC).
    #[arg(long)]
    scope: Option<String>,
    /// The API the token is for (OIDC), where the issuer wants one.
    #[arg(long)]
    audience: Option<String>,
    /// The role of OpenBao's OIDC auth method (OpenBao's browser sign-in); the
    /// server's default role when not given.
    #[arg(long)]
    role: Option<String>,
    /// The loopback port the browser returns to after an OpenBao sign-in (8250).
    #[arg(long, value_name = "PORT")]
    callback_port: Option<String>,
    /// When a BigID user token expires (YYYY-MM-DD), if it is not a JWT.
    #[arg(long, value_name = "DATE")]
    user_token_expires: Option<String>,
    /// The HTTP method of BigID's refresh-access-token call: GET (default) or POST.
    #[arg(long)]
    refresh_method: Option<String>,
    /// BigFix: the lifetime of the tokens Tokenkeeper creates, in days (0: never expires).
    #[arg(long, value_name = "DAYS")]
    token_duration: Option<String>,
    /// BigFix: the prefix of the names of the tokens Tokenkeeper creates.
    #[arg(long)]
    token_name: Option<String>,
    /// BigAnimal: sign in with the portal's free-trial client id.
    #[arg(long)]
    free_trial: bool,
    /// Device-code sign-in: print the address without opening the browser.
    #[arg(long)]
    no_browser: bool,
    /// A label (repeatable).
    #[arg(long = "label")]
    labels: Vec<String>,
    /// Read the secret from stdin instead of prompting.
    #[arg(long)]
    secret_stdin: bool,
    /// Store the account without signing in now.
    #[arg(long)]
    no_login: bool,
}

fn parse_vendor(s: &str) -> std::result::Result<Vendor, String> {
    Vendor::parse(s).map_err(|e| e.message().to_string())
}

fn parse_method(s: &str) -> std::result::Result<Method, String> {
    Method::parse(s).map_err(|e| e.message().to_string())
}

fn main() -> ExitCode {
    // Before anything secret is in memory: no core dump, no same-user ptrace.
    if let Err(e) = tokenkeeper_core::process::forbid_core_dumps() {
        let _ = writeln!(std::io::stderr(), "tokenkeeper: {e}");
    }
    let cli = Cli::parse();
    // The agent serves many clients while it renews: two threads, so a keyring call
    // of a renewal does not hold up an answer from memory.
    let runtime = match &cli.command {
        Command::Agent { .. } => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => return fail(&Error::internal(format!("cannot start: {e}"))),
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

fn fail(e: &Error) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "tokenkeeper: {}", e.cli_text());
    ExitCode::from(e.kind().exit_code() as u8)
}

async fn run(cli: Cli) -> Result<ExitCode> {
    if let Command::Cert { url } = &cli.command {
        let fingerprint = http::certificate_sha256(url).await?;
        return output::text(&format!(
            "{fingerprint}\nCheck it with the server's administrators before pinning it with --pin-sha256.\n"
        ));
    }
    let dir = cli.data_dir.clone().unwrap_or_else(vault::default_dir);
    match &cli.command {
        Command::Agent {
            concurrency,
            no_tray,
        } => return agent::run(&dir, *concurrency, !*no_tray).await,
        // `--check` asks the vendor from here: only the plain request goes to the agent.
        Command::Token {
            name,
            header,
            check: false,
            no_agent: false,
        } => {
            if let Some(answer) = tokenkeeper_core::agent::client::token(&dir, name) {
                return print_token(answer?, *header);
            }
        }
        _ => {}
    }
    let vault = Vault::open_here(&dir)?;
    if let Command::Bigfix(command) = cli.command {
        return bigfix_command(&vault, command).await;
    }
    if let Command::Team(command) = cli.command {
        return team_command(&vault, command).await;
    }
    match cli.command {
        Command::Add(args) => add(&vault, *args).await,
        Command::Login {
            name,
            secret_stdin,
            no_browser,
        } => login(&vault, &name, secret_stdin, no_browser).await,
        Command::Token {
            name,
            header,
            check,
            ..
        } => {
            let fresh = vault
                .token_with(
                    &name,
                    TokenOptions {
                        check,
                        force: false,
                    },
                )
                .await?;
            print_token(fresh, header)
        }
        Command::Exec {
            name,
            keep_fresh: true,
            command,
        } => keep_fresh::run(&vault, &name, &command).await,
        Command::Exec { name, command, .. } => exec(&vault, &name, &command).await,
        Command::Renew { name } => {
            let summary = vault.renew_now(&name).await?;
            output::text(&format!(
                "renewed '{}'{}\n",
                summary.name,
                output::expiry_suffix(&summary, chrono::Utc::now())
            ))
        }
        Command::Cert { .. } | Command::Bigfix(_) | Command::Team(_) | Command::Agent { .. } => {
            unreachable!("handled before the vault opens")
        }
        Command::Trust {
            name,
            ca_cert,
            pin_sha256,
        } => {
            let ca = ca_cert.as_deref().map(read_ca_cert).transpose()?;
            vault.set_trust(&name, ca, pin_sha256).await?;
            output::text(&format!(
                "account '{name}' now trusts the server's certificate as given\n"
            ))
        }
        Command::List { json } => {
            let accounts = vault.list()?;
            if json {
                output::json(&accounts)
            } else {
                output::text(&output::list_table(&accounts, chrono::Utc::now()))
            }
        }
        Command::Show { name, json } => {
            let detail = vault.show(&name)?;
            if json {
                output::json(&detail)
            } else {
                output::text(&output::detail(&detail, chrono::Utc::now()))
            }
        }
        Command::Remove { name } => {
            let outcome = vault.remove(&name, true).await?;
            let what = match outcome {
                SignOut::Done => "logged out at the vendor, secrets deleted".to_string(),
                SignOut::NotOffered => "secrets deleted".to_string(),
                SignOut::Failed(why) => {
                    format!("secrets deleted; logging out at the vendor failed: {why}")
                }
            };
            output::text(&format!("removed '{name}': {what}\n"))
        }
        Command::Watch { json, concurrency } => watch(vault, json, concurrency).await,
        Command::Info { json } => {
            let info = serde_json::json!({
                "data_dir": vault.dir(),
                "database": vault.database().path(),
                "keyring": vault.keyring_description(),
                "keyring_service": vault::service_name_for(vault.dir()),
                "accounts": vault.list()?.len(),
            });
            if json {
                output::json(&info)
            } else {
                output::text(&format!(
                    "vault folder: {}\ndatabase:     {}\nsecrets in:   {}\naccounts:     {}\n",
                    vault.dir().display(),
                    vault.database().path().display(),
                    vault.keyring_description(),
                    info["accounts"]
                ))
            }
        }
    }
}

async fn add(vault: &Vault, args: AddArgs) -> Result<ExitCode> {
    let ca_cert_pem = match &args.ca_cert {
        Some(path) => Some(read_ca_cert(path)?),
        None => None,
    };
    let settings = [
        (FieldKey::Scope, args.scope),
        (FieldKey::Audience, args.audience),
        (FieldKey::Role, args.role),
        (FieldKey::CallbackPort, args.callback_port),
        (FieldKey::UserTokenExpires, args.user_token_expires),
        (FieldKey::RefreshMethod, args.refresh_method),
        (FieldKey::TokenDuration, args.token_duration),
        (FieldKey::TokenName, args.token_name),
        (
            FieldKey::FreeTrial,
            args.free_trial.then(|| "yes".to_string()),
        ),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let new = NewAccount {
        name: args.name.clone(),
        vendor: Some(args.vendor),
        base_url: args.url,
        method: args.method,
        username: args.username,
        tenant: args.tenant,
        iam_id: args.iam_id,
        client_id: args.client_id,
        ca_cert_pem,
        pin_sha256: args.pin_sha256,
        settings,
        labels: args.labels,
    };
    let spec = Vault::method_for(&new)?;
    let secret = match spec.secret {
        Some(kind) => Some(read_secret(kind, &args.name, args.secret_stdin)?),
        None => None,
    };
    let device = spec.method == Method::DeviceCode;
    let summary = vault.add(new, secret, !args.no_login).await?;
    if device && !args.no_login {
        output::text(&format!(
            "{} account '{}' added; now sign in:\n",
            summary.vendor_name, summary.name
        ))?;
        // The settings are proven (discovery and the device authorization worked), so
        // a sign-in that fails here keeps the account, waiting for `login`.
        return login_device(vault, &summary.name, args.no_browser).await;
    }
    let signed = if args.no_login {
        "added (not signed in yet)"
    } else {
        "added and signed in"
    };
    output::text(&format!(
        "{} account '{}' {signed}{}\n",
        summary.vendor_name,
        summary.name,
        output::expiry_suffix(&summary, chrono::Utc::now())
    ))
}

/// Prints the engine's events on stdout as they happen.
struct PrintedEvents {
    json: bool,
}

impl EventSink for PrintedEvents {
    fn emit(&self, event: EngineEvent) {
        // Another process's write: the engine already looked again; nothing to say.
        if matches!(event, EngineEvent::VaultChanged) {
            return;
        }
        let line = if self.json {
            serde_json::to_string(&event).unwrap_or_default()
        } else {
            match &event {
                EngineEvent::Renewed { account } => format!("renewed '{account}'"),
                EngineEvent::RenewalFailed { message, .. } => format!("renewal failed: {message}"),
                EngineEvent::Alert(a) => format!("alert: {}", a.message),
                EngineEvent::VaultChanged => return,
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}").and_then(|_| out.flush());
    }
}

/// The renewal engine over `vault`, `concurrency` renewals at once, telling `sink`:
/// what `watch` and the agent both run.
fn engine_for(vault: Arc<Vault>, sink: Arc<dyn EventSink>, concurrency: usize) -> Arc<Engine> {
    Arc::new(Engine::new(
        vault.clone(),
        vault,
        Arc::new(SystemClock),
        sink,
        Policy {
            concurrency,
            ..Policy::default()
        },
    ))
}

/// SIGTERM as a stream, for a process that runs until told to stop.
fn sigterm() -> Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::internal(format!("cannot watch for SIGTERM: {e}")))
}

async fn watch(vault: Vault, json: bool, concurrency: usize) -> Result<ExitCode> {
    for e in vault.join_all_teams().await {
        let _ = writeln!(std::io::stderr(), "tokenkeeper: warning: {}", e.cli_text());
    }
    let engine = engine_for(
        Arc::new(vault),
        Arc::new(PrintedEvents { json }),
        concurrency,
    );
    let wake = Arc::new(tokio::sync::Notify::new());
    let mut term = sigterm()?;
    tokio::select! {
        _ = engine.run(wake) => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(ExitCode::SUCCESS)
}

async fn team_command(vault: &Vault, command: TeamCommand) -> Result<ExitCode> {
    use tokenkeeper_core::team::{client::Server, LoginKind, TeamConfig};
    match command {
        TeamCommand::Connect {
            name,
            address,
            ca_cert,
            mount,
            prefix,
            token,
            account,
            userpass,
            approle,
            secret_stdin,
        } => {
            let login = match (token, userpass, approle) {
                _ if account.is_some() => LoginKind::Account {
                    account: account.unwrap_or_default(),
                },
                (_, Some(username), _) => LoginKind::Userpass {
                    mount: "userpass".into(),
                    username,
                },
                (_, _, Some(role_id)) => LoginKind::AppRole {
                    mount: "approle".into(),
                    role_id,
                },
                (true, None, None) => LoginKind::Token,
                (false, None, None) => {
                    return Err(Error::usage(
                        "say how to log in: --token, --userpass USER, --approle ROLE_ID or \
                         --account ACCOUNT",
                    ))
                }
            };
            let secret = match login {
                // The account's own token, read by the vault.
                LoginKind::Account { .. } => Secret::new(String::new()),
                _ => read_labelled(login.secret_label(), &name, secret_stdin)?,
            };
            let config = TeamConfig {
                name,
                server: Server {
                    address: address.unwrap_or_default(),
                    ca_cert_pem: ca_cert.as_deref().map(read_ca_cert).transpose()?,
                    pin_sha256: None,
                },
                mount,
                prefix,
                login,
            };
            let team = vault.connect_team(config, secret).await?;
            output::text(&format!(
                "connected to team '{}' at {} ({} login); `tokenkeeper team join {}` lists its \
                 shared accounts here\n",
                team.name, team.address, team.login, team.name
            ))
        }
        TeamCommand::Add { account, team } => {
            vault.share(&account, &team).await?;
            output::text(&format!(
                "'{account}' is shared in team '{team}': its secrets left this keyring for the \
                 team store\n"
            ))
        }
        TeamCommand::Join { name } => {
            let (added, problems) = vault.join_team(&name).await?;
            for p in &problems {
                let _ = writeln!(std::io::stderr(), "tokenkeeper: warning: {p}");
            }
            let list = if added.is_empty() {
                "no new account".to_string()
            } else {
                added.join(", ")
            };
            output::text(&format!("joined team '{name}': {list}\n"))
        }
        TeamCommand::List { json } => {
            let teams = vault.teams()?;
            if json {
                return output::json(&teams);
            }
            let mut text = String::new();
            if teams.is_empty() {
                text.push_str("no team store: `tokenkeeper team connect NAME --address URL`\n");
            }
            for t in &teams {
                text.push_str(&format!(
                    "{}\t{}\t{}/{}\t{} login{}\n",
                    t.name,
                    t.address,
                    t.mount,
                    t.prefix,
                    t.login,
                    if t.from_environment {
                        " (from the environment)"
                    } else {
                        ""
                    }
                ));
                for a in &t.accounts {
                    text.push_str(&format!("  {a}\n"));
                }
            }
            output::text(&text)
        }
    }
}

fn read_ca_cert(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::usage(format!(
            "cannot read the CA certificate {}: {e}",
            path.display()
        ))
    })
}

async fn login(
    vault: &Vault,
    name: &str,
    secret_stdin: bool,
    no_browser: bool,
) -> Result<ExitCode> {
    let method = vault.method_of(name)?;
    if method == Method::DeviceCode {
        return login_device(vault, name, no_browser).await;
    }
    let kind = secret_kind(method);
    let secret = if secret_stdin {
        Some(read_secret(kind, name, true)?)
    } else {
        None
    };
    let summary = match vault.login(name, secret).await {
        Err(e)
            if e.kind() == ErrorKind::NeedsSignIn
                && !secret_stdin
                && std::io::stdin().is_terminal() =>
        {
            let s = read_secret(kind, name, false)?;
            vault.login(name, Some(s)).await?
        }
        other => other?,
    };
    output::text(&format!(
        "signed in to '{}'{}\n",
        summary.name,
        output::expiry_suffix(&summary, chrono::Utc::now())
    ))
}

fn secret_kind(method: Method) -> SecretKind {
    match method {
        Method::ApiKey => SecretKind::ApiKey,
        Method::UserToken => SecretKind::UserToken,
        _ => SecretKind::Password,
    }
}

async fn login_device(vault: &Vault, name: &str, no_browser: bool) -> Result<ExitCode> {
    let summary = vault
        .login_device(
            name,
            |prompt| show_device_prompt(prompt, no_browser),
            std::future::pending(),
        )
        .await?;
    output::text(&format!(
        "signed in to '{}'{}\n",
        summary.name,
        output::expiry_suffix(&summary, chrono::Utc::now())
    ))
}

/// Shows the code and the address on stderr (stdout stays for results), and opens
/// the browser at the address that carries the code.
fn show_device_prompt(prompt: &DevicePrompt, no_browser: bool) {
    let minutes = (prompt.expires_at_ms - chrono::Utc::now().timestamp_millis()) / 60_000;
    let mut err = std::io::stderr().lock();
    if prompt.user_code.is_empty() {
        // A sign-in that returns to Tokenkeeper by itself (OpenBao's OIDC): no code.
        let _ = writeln!(
            err,
            "To sign in, open {}\n(the sign-in waits {} minutes for the browser to come back)",
            prompt.browser_url,
            minutes.max(1)
        );
    } else {
        let _ = writeln!(
            err,
            "To sign in, open {}\nand check that it shows the code:  {}\n(the code expires in {} minutes)",
            prompt.browser_url,
            prompt.user_code,
            minutes.max(1)
        );
    }
    if !no_browser {
        match tokenkeeper_core::browser::open(&prompt.browser_url) {
            Ok(()) => {
                let _ = writeln!(err, "Opened your browser. Waiting for the approval...");
            }
            Err(why) => {
                let _ = writeln!(
                    err,
                    "Could not open a browser ({why}): open the address above yourself. Waiting..."
                );
            }
        }
    } else {
        let _ = writeln!(err, "Waiting for the approval...");
    }
}

async fn bigfix_command(vault: &Vault, command: BigfixCommand) -> Result<ExitCode> {
    match command {
        BigfixCommand::Tokens { name, user, json } => {
            let tokens = vault.bigfix_tokens(&name, user).await?;
            if json {
                output::json(&tokens)
            } else {
                output::text(&output::bigfix_table(&tokens))
            }
        }
        BigfixCommand::Get {
            name,
            id,
            token_name,
            json,
        } => {
            let query = match (id, token_name) {
                (Some(id), _) => TokenQuery::Id(id),
                (None, Some(n)) => TokenQuery::Name(n),
                (None, None) => return Err(Error::usage("give --id or --token-name")),
            };
            let token = vault.bigfix_token(&name, query).await?;
            if json {
                output::json(&token)
            } else {
                output::text(&output::bigfix_table(std::slice::from_ref(&token)))
            }
        }
        BigfixCommand::Create {
            name,
            token_name,
            duration,
        } => {
            let summary = vault.bigfix_create(&name, &token_name, duration).await?;
            output::text(&format!(
                "created token '{token_name}'; account '{}' now uses it{}\n",
                summary.name,
                output::expiry_suffix(&summary, chrono::Utc::now())
            ))
        }
        BigfixCommand::Rename { name, id, to } => {
            let t = vault.bigfix_update(&name, id, Some(&to), None).await?;
            output::text(&format!("token {} is now named '{}'\n", t.id, t.name))
        }
        BigfixCommand::Extend { name, id, duration } => {
            let t = vault.bigfix_update(&name, id, None, Some(duration)).await?;
            output::text(&format!(
                "token '{}' now {}\n",
                t.name,
                output::bigfix_expiry(&t)
            ))
        }
        BigfixCommand::Revoke { name, id } => {
            let in_use = vault.bigfix_tracked(&name)?.filter(|t| t.id == id);
            if let Some(t) = &in_use {
                // Said before it happens: the account's scripts lose this token.
                eprintln!(
                    "token {id} ('{}') is the one account '{name}' uses: once it is revoked, Tokenkeeper \
                     makes a new one with the stored password when a token is next needed \
                     (at once while `tokenkeeper watch` or the app runs)",
                    t.name
                );
            }
            vault.bigfix_revoke(&name, id).await?;
            output::text(&format!("revoked token {id}\n"))
        }
        BigfixCommand::Rotate { name } => {
            let summary = vault.bigfix_rotate(&name).await?;
            output::text(&format!(
                "rotated the token of '{}'{}\n",
                summary.name,
                output::expiry_suffix(&summary, chrono::Utc::now())
            ))
        }
    }
}

async fn exec(vault: &Vault, name: &str, command: &[String]) -> Result<ExitCode> {
    let fresh = vault.token(name).await?;
    warn(fresh.warning.as_ref());
    let (program, args) = command
        .split_first()
        .ok_or_else(|| Error::usage("give the command to run after --"))?;
    let status = std::process::Command::new(program)
        .args(args)
        .env("TOKENKEEPER_TOKEN", fresh.token.expose())
        .env("TOKENKEEPER_AUTHORIZATION", fresh.authorization.expose())
        .status()
        .map_err(|e| Error::usage(format!("cannot run '{program}': {e}")))?;
    drop(fresh);
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return Ok(ExitCode::from((128 + signal) as u8));
        }
    }
    Ok(ExitCode::from(status.code().unwrap_or(1) as u8))
}

/// Reads a secret from stdin (`--secret-stdin`) or a hidden prompt; never from argv.
fn read_secret(kind: SecretKind, name: &str, from_stdin: bool) -> Result<Secret> {
    read_labelled(kind.label(), name, from_stdin)
}

/// A secret from stdin, or a hidden prompt on a terminal; never from argv.
fn read_labelled(label: &str, name: &str, from_stdin: bool) -> Result<Secret> {
    let text = if from_stdin {
        let mut text = Zeroizing::new(String::new());
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::usage(format!("cannot read the {} from stdin: {e}", label)))?;
        text.trim_end_matches(['\n', '\r']).to_string()
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{} for '{name}': ", capitalize(label)))
            .map_err(|e| Error::usage(format!("cannot read the {} at the prompt: {e}", label)))?
    } else {
        return Err(Error::usage(format!(
            "no {} given: pass --secret-stdin and write it to stdin, or run in a terminal to be prompted",
            label
        )));
    };
    if text.is_empty() {
        return Err(Error::usage(format!("the {} is empty", label)));
    }
    Ok(Secret::new(text))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn warn(warning: Option<&tokenkeeper_core::Error>) {
    if let Some(w) = warning {
        let _ = writeln!(std::io::stderr(), "tokenkeeper: warning: {}", w.cli_text());
    }
}

/// `tokenkeeper token`'s output, the same whether the token came from the agent or
/// from the vault: the warning on stderr, the token (or header value) on stdout.
fn print_token(fresh: tokenkeeper_core::FreshToken, header: bool) -> Result<ExitCode> {
    warn(fresh.warning.as_ref());
    let value = if header {
        &fresh.authorization
    } else {
        &fresh.token
    };
    print_secret(value)?;
    Ok(ExitCode::SUCCESS)
}

/// The one place a secret goes to stdout: `tokenkeeper token`.
fn print_secret(secret: &Secret) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", secret.expose())
        .and_then(|_| out.flush())
        .map_err(|e| Error::internal(format!("cannot write to stdout: {e}")))
}
