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
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let config = tokenkeeper_sandbox::Config {
        truesight_token_ttl: Duration::from_secs(args.truesight_token_ttl.max(1)),
    };
    let running = tokenkeeper_sandbox::start(config, args.port).await?;
    let line = serde_json::to_string(&running.urls()).map_err(std::io::Error::other)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    drop(out);
    tokio::select! {
        _ = running.task => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
