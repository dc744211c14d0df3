//! `tokenkeeper`: the command-line twin of the desktop app, on the same vault. It
//! signs in, hands fresh tokens to scripts, and never takes a secret from argv.

mod output;

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tokenkeeper_core::model::{Method, Vendor};
use tokenkeeper_core::vault::{self, NewAccount, SignOut};
use tokenkeeper_core::{Error, ErrorKind, Result, Secret, SecretKind, Vault};
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
    Add(AddArgs),
    /// Run the sign-in now, with the stored secret or a new one.
    Login {
        name: String,
        /// Read a new secret (a changed password, say) from stdin.
        #[arg(long)]
        secret_stdin: bool,
    },
    /// Print a valid token, renewing it first if needed.
    Token {
        name: String,
        /// Print the whole Authorization header value (scheme included) instead.
        #[arg(long)]
        header: bool,
    },
    /// Run a command with TOKENKEEPER_TOKEN (and TOKENKEEPER_AUTHORIZATION) set.
    Exec {
        name: String,
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
    /// Where the vault and its keyring items are.
    Info {
        #[arg(long)]
        json: bool,
    },
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
    #[arg(long, value_name = "PEM")]
    ca_cert: Option<PathBuf>,
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
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&Error::internal(format!("cannot start: {e}"))),
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

fn fail(e: &Error) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "tokenkeeper: {}", e.message());
    ExitCode::from(e.kind().exit_code() as u8)
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let dir = cli.data_dir.clone().unwrap_or_else(vault::default_dir);
    let vault = Vault::open(&dir)?;
    match cli.command {
        Command::Add(args) => add(&vault, args).await,
        Command::Login { name, secret_stdin } => login(&vault, &name, secret_stdin).await,
        Command::Token { name, header } => {
            let fresh = vault.token(&name).await?;
            warn(fresh.warning.as_deref());
            let value = if header {
                &fresh.authorization
            } else {
                &fresh.token
            };
            print_secret(value)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Exec { name, command } => exec(&vault, &name, &command).await,
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
            let outcome = vault.remove(&name).await?;
            let what = match outcome {
                SignOut::Done => "logged out at the vendor, secrets deleted".to_string(),
                SignOut::NotOffered => "secrets deleted".to_string(),
                SignOut::Failed(why) => {
                    format!("secrets deleted; logging out at the vendor failed: {why}")
                }
            };
            output::text(&format!("removed '{name}': {what}\n"))
        }
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
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            Error::usage(format!(
                "cannot read the CA certificate {}: {e}",
                path.display()
            ))
        })?),
        None => None,
    };
    let specs = Vault::methods(args.vendor)?;
    let spec = match args.method {
        Some(m) => specs.iter().find(|s| s.method == m),
        None => specs.first(),
    };
    let secret = match spec.and_then(|s| s.secret) {
        Some(kind) => Some(read_secret(kind, &args.name, args.secret_stdin)?),
        None => None,
    };
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
        labels: args.labels,
    };
    let summary = vault.add(new, secret, !args.no_login).await?;
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

async fn login(vault: &Vault, name: &str, secret_stdin: bool) -> Result<ExitCode> {
    let secret = if secret_stdin {
        Some(read_secret(SecretKind::Password, name, true)?)
    } else {
        None
    };
    let summary = match vault.login(name, secret).await {
        Err(e)
            if e.kind() == ErrorKind::NeedsSignIn
                && !secret_stdin
                && std::io::stdin().is_terminal() =>
        {
            let s = read_secret(SecretKind::Password, name, false)?;
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

async fn exec(vault: &Vault, name: &str, command: &[String]) -> Result<ExitCode> {
    let fresh = vault.token(name).await?;
    warn(fresh.warning.as_deref());
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
    let text = if from_stdin {
        let mut text = Zeroizing::new(String::new());
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            Error::usage(format!("cannot read the {} from stdin: {e}", kind.label()))
        })?;
        text.trim_end_matches(['\n', '\r']).to_string()
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{} for '{name}': ", capitalize(kind.label()))).map_err(
            |e| {
                Error::usage(format!(
                    "cannot read the {} at the prompt: {e}",
                    kind.label()
                ))
            },
        )?
    } else {
        return Err(Error::usage(format!(
            "no {} given: pass --secret-stdin and write it to stdin, or run in a terminal to be prompted",
            kind.label()
        )));
    };
    if text.is_empty() {
        return Err(Error::usage(format!("the {} is empty", kind.label())));
    }
    Ok(Secret::new(text))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn warn(message: Option<&str>) {
    if let Some(m) = message {
        let _ = writeln!(std::io::stderr(), "tokenkeeper: warning: {m}");
    }
}

/// The one place a secret goes to stdout: `tokenkeeper token`.
fn print_secret(secret: &Secret) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", secret.expose())
        .and_then(|_| out.flush())
        .map_err(|e| Error::internal(format!("cannot write to stdout: {e}")))
}
