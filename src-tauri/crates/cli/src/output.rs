//! What the CLI prints: tables and JSON for people and scripts, never a secret.

use std::io::Write;
use std::process::ExitCode;

use chrono::{DateTime, Local, TimeZone, Utc};
use serde::Serialize;
use tokenkeeper_core::model::{AccountDetail, AccountSummary, TokenState};
use tokenkeeper_core::vendors::bigfix::BigFixToken;
use tokenkeeper_core::{Error, Result};

pub fn text(s: &str) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| Error::internal(format!("cannot write to stdout: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

pub fn json<T: Serialize>(value: &T) -> Result<ExitCode> {
    let s = serde_json::to_string_pretty(value)
        .map_err(|e| Error::internal(format!("cannot encode JSON: {e}")))?;
    text(&format!("{s}\n"))
}

fn state_label(s: TokenState) -> &'static str {
    match s {
        TokenState::Valid => "valid",
        TokenState::RenewSoon => "renew soon",
        TokenState::Expired => "expired (renews on use)",
        TokenState::NeedsSignIn => "needs sign-in",
    }
}

/// "in 59m 12s" or "3m ago".
pub fn relative(ms: i64, now: DateTime<Utc>) -> String {
    let secs = (ms - now.timestamp_millis()) / 1000;
    let (past, s) = (secs < 0, secs.unsigned_abs());
    let span = if s >= 86400 {
        format!("{}d {}h", s / 86400, (s % 86400) / 3600)
    } else if s >= 3600 {
        format!("{}h {}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    };
    if past {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

fn local(ms: i64) -> String {
    Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

pub fn expiry_suffix(s: &AccountSummary, now: DateTime<Utc>) -> String {
    match s.expires_at_ms {
        Some(ms) => format!("; token expires {} ({})", relative(ms, now), local(ms)),
        None => String::new(),
    }
}

pub fn list_table(accounts: &[AccountSummary], now: DateTime<Utc>) -> String {
    if accounts.is_empty() {
        return "no accounts yet: add one with `tokenkeeper add NAME --vendor VENDOR --url URL`\n"
            .into();
    }
    let rows: Vec<[String; 5]> = accounts
        .iter()
        .map(|a| {
            [
                a.name.clone(),
                a.vendor_name.clone(),
                state_label(a.state).to_string(),
                a.expires_at_ms
                    .map(|ms| relative(ms, now))
                    .unwrap_or_else(|| "-".into()),
                a.base_url.clone(),
            ]
        })
        .collect();
    let header = ["NAME", "VENDOR", "STATE", "TOKEN EXPIRES", "URL"];
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
                .max(header[i].len())
        })
        .collect();
    let line = |cells: [&str; 5]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 4 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header);
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    out
}

pub fn detail(d: &AccountDetail, now: DateTime<Utc>) -> String {
    let s = &d.summary;
    let mut out = String::new();
    let mut kv = |k: &str, v: String| out.push_str(&format!("{k:<16}{v}\n"));
    kv("name", s.name.clone());
    kv("vendor", s.vendor_name.clone());
    kv("url", s.base_url.clone());
    kv("method", format!("{:?}", s.method).to_lowercase());
    if let Some(u) = &s.username {
        kv("username", u.clone());
    }
    if let Some(t) = &d.tenant {
        kv("tenant", t.clone());
    }
    if !s.labels.is_empty() {
        kv("labels", s.labels.join(", "));
    }
    kv("state", state_label(s.state).to_string());
    if let Some(ms) = d.issued_at_ms {
        kv("issued", format!("{} ({})", local(ms), relative(ms, now)));
    }
    if let Some(ms) = s.expires_at_ms {
        kv("expires", format!("{} ({})", local(ms), relative(ms, now)));
    }
    if let Some(ms) = d.renew_at_ms {
        kv(
            "renews from",
            format!("{} ({})", local(ms), relative(ms, now)),
        );
    }
    if let Some(ms) = s.human_deadline_ms {
        kv(
            "you must act by",
            format!("{} ({})", local(ms), relative(ms, now)),
        );
    }
    if let Some(r) = s.renews_with {
        kv("renews with", r.id().to_string());
    }
    if let Some(e) = &s.last_error {
        kv("last error", e.clone());
    }
    if d.trusts_custom_ca {
        kv("trusts", "its own CA certificate".into());
    }
    for (k, v) in &d.settings {
        kv(&k.replace('_', " "), v.clone());
    }
    out.push_str("\nhistory (newest first):\n");
    for e in &d.events {
        let detail = if e.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", e.detail)
        };
        out.push_str(&format!(
            "  {}  {} {}{detail}\n",
            local(e.at_ms),
            e.kind.id(),
            e.outcome.id()
        ));
    }
    out
}

pub fn bigfix_expiry(t: &BigFixToken) -> String {
    match t.expires_at_ms {
        Some(ms) => format!("expires {}", local(ms)),
        None => "never expires".into(),
    }
}

/// The server's tokens; the one the account uses is marked, the others flagged as
/// not tracked by Tokenkeeper.
pub fn bigfix_table(tokens: &[BigFixToken]) -> String {
    if tokens.is_empty() {
        return "no tokens on the server for this operator\n".into();
    }
    let width = tokens
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:>6}  {:<width$}  {:>5}  {:<26}  TRACKED\n",
        "ID", "NAME", "USER", "EXPIRES"
    );
    for t in tokens {
        let expires = t.expires_at_ms.map(local).unwrap_or_else(|| "never".into());
        let tracked = if t.tracked {
            "yes (this account)"
        } else {
            "no"
        };
        out.push_str(&format!(
            "{:>6}  {:<width$}  {:>5}  {:<26}  {tracked}\n",
            t.id, t.name, t.user, expires
        ));
    }
    out
}
