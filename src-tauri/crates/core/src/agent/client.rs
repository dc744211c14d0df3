//! The asking side, as `tokenkeeper token` uses it: blocking, one connection per
//! request, and silent. When no agent of this user answers (no private folder, no
//! socket, a refused connection, another user's process at the other end, a broken
//! or missing answer), the caller hears `None` and does the work itself, so a
//! script sees the same output and exit code with or without the agent.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use zeroize::Zeroizing;

use super::protocol::{self, Request, MAX_LINE};
use super::socket::{self, AgentPaths};
use crate::error::Error;
use crate::vault::FreshToken;

/// How long a client waits for its answer: long enough for a renewal the agent
/// makes first (the vendors' own timeouts are shorter).
pub const ANSWER_WAIT: Duration = Duration::from_secs(120);

/// The longest answer line read (a list of thousands of accounts fits).
pub const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// How long a connection may take: a stopped or wedged agent (its backlog full)
/// would otherwise block `connect` for good, and the script with it.
pub const CONNECT_WAIT: Duration = Duration::from_secs(1);

/// A connection to this user's agent for the vault, if one answers within
/// `CONNECT_WAIT`. The connect runs on a thread of its own, so a socket that never
/// accepts costs the caller that second, not a hang (the thread ends with the
/// process or when the connect does).
pub fn connect(paths: &AgentPaths) -> Option<UnixStream> {
    if !paths.folder_is_private() {
        return None;
    }
    let socket = paths.socket.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("agent-connect".into())
        .spawn(move || {
            let _ = tx.send(UnixStream::connect(socket));
        })
        .ok()?;
    let stream = rx.recv_timeout(CONNECT_WAIT).ok()?.ok()?;
    socket::same_user(&stream).then_some(stream)
}

/// Reads one line (newline left off) into memory that is wiped when dropped; `None`
/// on an error, a timeout, an end before the newline, or a line over `max`.
pub fn read_line(stream: &mut UnixStream, max: usize) -> Option<Zeroizing<Vec<u8>>> {
    read_line_by(stream, max, None)
}

/// `read_line`, ending at `deadline` however the answer trickles in.
fn read_line_by(
    stream: &mut UnixStream,
    max: usize,
    deadline: Option<std::time::Instant>,
) -> Option<Zeroizing<Vec<u8>>> {
    let mut line = Zeroizing::new(Vec::with_capacity(4096));
    let mut chunk = Zeroizing::new([0u8; 4096]);
    loop {
        if let Some(deadline) = deadline {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
        }
        let n = stream.read(&mut chunk[..]).ok()?;
        if n == 0 {
            return None;
        }
        let end = chunk[..n].iter().position(|b| *b == b'\n');
        let take = end.unwrap_or(n);
        if line.len() + take > max {
            return None;
        }
        if line.len() + take > line.capacity() {
            // Grow into a new wiped buffer: the old one is wiped when dropped.
            let mut bigger = Zeroizing::new(Vec::with_capacity(2 * (line.len() + take)));
            bigger.extend_from_slice(&line);
            line = bigger;
        }
        line.extend_from_slice(&chunk[..take]);
        if end.is_some() {
            return Some(line);
        }
    }
}

/// Sends `request` and reads its answer line; `None` when that fails at all.
pub fn ask(paths: &AgentPaths, request: &Request, wait: Duration) -> Option<Zeroizing<Vec<u8>>> {
    let line = request.line();
    if line.len() > MAX_LINE {
        return None;
    }
    let deadline = std::time::Instant::now() + wait;
    let mut stream = connect(paths)?;
    stream.set_write_timeout(Some(wait)).ok()?;
    stream.write_all(&line).ok()?;
    // One deadline for the whole answer: a trickle of bytes does not extend it.
    read_line_by(&mut stream, MAX_ANSWER, Some(deadline))
}

/// A valid token for `account` from this user's agent for the vault in `vault_dir`:
/// the token, or the vault's error as the agent met it; `None` when no agent
/// answered, and the caller works alone.
pub fn token(vault_dir: &Path, account: &str) -> Option<Result<FreshToken, Error>> {
    let paths = AgentPaths::for_vault(vault_dir, |_| {});
    let request = Request::Token {
        account: account.to_string(),
    };
    let line = ask(&paths, &request, ANSWER_WAIT)?;
    protocol::read_token_answer(&line)
}

/// The agent's answer to `ping` (`version`, `pid`, `vault`), if one answers at
/// `paths`.
pub fn ping(paths: &AgentPaths) -> Option<serde_json::Value> {
    let line = ask(paths, &Request::Ping, Duration::from_secs(5))?;
    serde_json::from_slice::<serde_json::Value>(&line)
        .ok()
        .filter(|v| v["ok"] == true)
}

/// A window's request (`show`, `sign_in`, `sign_ins`, `cancel_sign_in`): the answer's
/// fields, or the vault's error as the agent met it, or why no agent answered.
pub fn request(
    paths: &AgentPaths,
    request: &Request,
    wait: Duration,
) -> Result<serde_json::Value, Error> {
    let line = ask(paths, request, wait).ok_or_else(|| {
        Error::internal(
            "Tokenkeeper's agent did not answer: quit Tokenkeeper and start it again \
             (the window starts its agent)",
        )
    })?;
    let answer: serde_json::Value = serde_json::from_slice(&line)
        .map_err(|_| Error::internal("the agent's answer could not be read"))?;
    if answer["ok"] == true {
        return Ok(answer);
    }
    let body: protocol::ErrorBody = serde_json::from_value(answer)
        .map_err(|_| Error::internal("the agent's answer could not be read"))?;
    Err(body
        .to_error()
        .unwrap_or_else(|| Error::internal(body.message.clone())))
}

/// A subscription to the agent's events (`subscribe`, answered): each
/// `next_event` is one of its lines; it ends when the agent does. `None` when no
/// agent answered.
pub fn subscribe(paths: &AgentPaths) -> Option<Subscription> {
    let mut stream = connect(paths)?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    stream.write_all(&Request::Subscribe.line()).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut sub = Subscription(std::io::BufReader::new(stream));
    let first = sub.next_event()?;
    sub.0.get_ref().set_read_timeout(None).ok()?;
    (first["ok"] == true).then_some(sub)
}

/// The agent's events as a window reads them (no secret travels on this line).
#[derive(Debug)]
pub struct Subscription(std::io::BufReader<UnixStream>);

impl Subscription {
    /// The next event line, read as JSON; `None` once the agent closed the line (or
    /// sent one over `MAX_LINE`).
    pub fn next_event(&mut self) -> Option<serde_json::Value> {
        use std::io::BufRead;
        let mut line = Vec::new();
        let n = (&mut self.0)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .ok()?;
        if n == 0 || line.last() != Some(&b'\n') {
            return None;
        }
        serde_json::from_slice(&line).ok()
    }
}
