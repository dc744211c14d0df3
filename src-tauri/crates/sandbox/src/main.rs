//! `tokenkeeper-sandbox`: serves the vendor stand-ins on 127.0.0.1 and prints their
//! base URLs as JSON on the first line of output.

use std::io::Write;
use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Local stand-ins for the vendor APIs Tokenkeeper signs in to (loopback only)"
)]
struct Args {
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Lifetime of TrueSight tokens, in seconds (the vendor's is 3600).
    #[arg(long, default_value_t = 3600)]
    truesight_token_ttl: u64,
    /// Device-code polling interval the issuers ask for, in seconds (RFC 8628's 5).
    #[arg(long, default_value_t = 5)]
    device_interval: u64,
    /// Lifetime of OAuth access tokens, in seconds (BigAnimal's 86400).
    #[arg(long, default_value_t = 86_400)]
    oauth_access_ttl: u64,
    /// Lifetime of a refresh-token family, in seconds (BigAnimal's 30 days).
    #[arg(long, default_value_t = 30 * 86_400)]
    oauth_refresh_ttl: u64,
    /// Auth0's refresh-token "reuse interval", in seconds (0: strict, the default).
    #[arg(long, default_value_t = 0)]
    oauth_reuse_interval: u64,
    /// Lifetime of a device code, in seconds (BigAnimal's 900).
    #[arg(long, default_value_t = 900)]
    device_code_ttl: u64,
    /// Lifetime of BigID session tokens, in seconds (the vendor's is 24 h).
    #[arg(long, default_value_t = 86_400)]
    bigid_session_ttl: u64,
    /// Lifetime of Immuta tokens, in seconds (not announced by the vendor).
    #[arg(long, default_value_t = 3600)]
    immuta_token_ttl: u64,
    /// Port of BigFix's HTTPS listener on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    bigfix_port: u16,
    /// BigFix's certificate (PEM) instead of one made at start; needs --bigfix-key.
    #[arg(long, requires = "bigfix_key")]
    bigfix_cert: Option<std::path::PathBuf>,
    /// The PKCS#8 key (PEM) of --bigfix-cert.
    #[arg(long, requires = "bigfix_cert")]
    bigfix_key: Option<std::path::PathBuf>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let secs = |s: u64| Duration::from_secs(s.max(1));
    let config = tokenkeeper_sandbox::Config {
        truesight_token_ttl: secs(args.truesight_token_ttl),
        device_interval: secs(args.device_interval),
        oauth_access_ttl: secs(args.oauth_access_ttl),
        oauth_refresh_ttl: secs(args.oauth_refresh_ttl),
        oauth_reuse_interval: Duration::from_secs(args.oauth_reuse_interval),
        device_code_ttl: secs(args.device_code_ttl),
        bigid_session_ttl: secs(args.bigid_session_ttl),
        immuta_token_ttl: secs(args.immuta_token_ttl),
        bigfix_port: args.bigfix_port,
        bigfix_tls_files: args.bigfix_cert.zip(args.bigfix_key),
    };
    let running = tokenkeeper_sandbox::start(config, args.port).await?;
    let line = serde_json::to_string(&running.urls()).map_err(std::io::Error::other)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    drop(out);
    tokio::select! {
        _ = running.task => {}
        _ = running.bigfix_task => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
