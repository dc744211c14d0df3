//! The agent's listening side. Every connection is checked first (`SO_PEERCRED`:
//! this user only, else closed unanswered) and then bounded: a request line must come
//! within `request_wait` and fit in `protocol::MAX_LINE`, its answer must be taken
//! within `answer_wait`, at most `max_connections` are open (the next ones are closed
//! at once) and at most `max_working` requests reach the vault at a time (the rest
//! wait their turn). A client that misbehaves loses its own connection, never the
//! agent's time: nothing here waits on a client without a deadline.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::cache::TokenCache;
use super::feed::{Feed, FeedEvent};
use super::protocol::{self, ErrorBody, Request, MAX_LINE};
use super::sign_ins::SignIns;
use super::socket::{self, AgentPaths};
use crate::ipc_types::ShellEvent;

/// How much the agent gives its clients.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Requests at work on the vault at once; the others wait for a turn.
    pub max_working: usize,
    /// How long a connection may stay silent before its next request line.
    pub request_wait: Duration,
    /// How long an answer may take to be written (a client that never reads).
    pub answer_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_working: 16,
            request_wait: Duration::from_secs(10),
            answer_wait: Duration::from_secs(10),
        }
    }
}

/// The agent's socket, bound, with the vault's agent lock held. The socket file is
/// removed when this is dropped.
#[derive(Debug)]
pub struct Listening {
    listener: std::os::unix::net::UnixListener,
    paths: AgentPaths,
    _lock: std::fs::File,
}

impl Listening {
    pub fn paths(&self) -> &AgentPaths {
        &self.paths
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.paths.socket);
    }
}

/// What claiming the vault's socket found.
#[derive(Debug)]
pub enum Claim {
    /// This is the vault's agent now.
    Listening(Listening),
    /// Another agent holds the vault's lock.
    Taken,
}

/// Binds the agent's socket (0600, in its private folder) unless another agent for
/// the same vault runs, whatever its socket folder: the lock is in the vault's
/// folder, taken first, so a refused agent makes no folder. A socket left by an
/// agent that died is replaced.
pub fn claim(paths: AgentPaths) -> std::io::Result<Claim> {
    let Some(lock) = socket::take_lock(&paths.lock, &paths.socket)? else {
        return Ok(Claim::Taken);
    };
    socket::private_folder(&paths.folder)?;
    match std::fs::remove_file(&paths.socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = bind(&paths.socket)?;
    Ok(Claim::Listening(Listening {
        listener,
        paths,
        _lock: lock,
    }))
}

/// A listening socket at `path`, 0600.
pub fn bind(path: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Every client holds a file descriptor while it is served: the agent allows itself
/// as many as the hard limit does, so a flood of connections meets its own cap
/// (`Limits::max_connections`) first.
pub fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// Opens the window, on an account when given; Err says why it could not.
pub type ShowWindow = Arc<dyn Fn(Option<&str>) -> Result<(), String> + Send + Sync>;

/// What the agent offers windows: its events, the browser sign-ins it runs, and a
/// way to open the window.
#[derive(Clone)]
pub struct Windows {
    pub feed: Feed,
    pub sign_ins: Arc<SignIns>,
    pub show: ShowWindow,
}

impl std::fmt::Debug for Windows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Windows").finish_non_exhaustive()
    }
}

impl Windows {
    /// For an agent that opens no window (tests of the socket alone): `show` says so.
    pub fn none(vault: Arc<crate::vault::Vault>) -> Self {
        let feed = Feed::default();
        Self {
            sign_ins: SignIns::new(vault, feed.clone(), Arc::new(tokio::sync::Notify::new())),
            feed,
            show: Arc::new(|_| Err("this agent opens no window".to_string())),
        }
    }
}

/// The agent's answering side: the tokens it holds, what it offers windows and its
/// limits.
#[derive(Debug)]
pub struct AgentServer {
    cache: Arc<TokenCache>,
    windows: Windows,
    limits: Limits,
    connections: Arc<Semaphore>,
    working: Semaphore,
}

impl AgentServer {
    pub fn new(cache: Arc<TokenCache>, limits: Limits) -> Arc<Self> {
        let windows = Windows::none(cache.vault().clone());
        Self::with_windows(cache, windows, limits)
    }

    pub fn with_windows(cache: Arc<TokenCache>, windows: Windows, limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            cache,
            windows,
            connections: Arc::new(Semaphore::new(limits.max_connections)),
            working: Semaphore::new(limits.max_working),
            limits,
        })
    }

    /// Serves the claimed socket until the task is dropped.
    pub async fn serve(self: Arc<Self>, listening: &Listening) -> std::io::Result<()> {
        self.serve_listener(listening.listener.try_clone()?).await
    }

    /// Serves `listener` until the task is dropped.
    pub async fn serve_listener(
        self: Arc<Self>,
        listener: std::os::unix::net::UnixListener,
    ) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::UnixListener::from_std(listener)?;
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(_) => {
                    // Out of file descriptors, or a connection gone before it was
                    // taken: breathe, then go on taking the next ones.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            if !socket::same_user(&stream) {
                continue;
            }
            let Ok(permit) = self.connections.clone().try_acquire_owned() else {
                continue;
            };
            let server = self.clone();
            tokio::spawn(async move {
                server.connection(stream).await;
                drop(permit);
            });
        }
    }

    /// One connection: request lines answered in turn until the client closes, goes
    /// silent, stops reading, or sends something unreadable (answered, then closed).
    async fn connection(&self, stream: UnixStream) {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::with_capacity(4096, read);
        loop {
            let mut line = Zeroizing::new(Vec::new());
            let limited = (&mut reader).take(MAX_LINE as u64 + 1);
            let read = tokio::time::timeout(self.limits.request_wait, async move {
                let mut limited = limited;
                limited
                    .read_until(b'\n', &mut line)
                    .await
                    .map(|n| (n, line))
            })
            .await;
            let line = match read {
                Ok(Ok((n, line))) if n > 0 => line,
                _ => return,
            };
            let (answer, then_close) = match protocol::parse_request(&line) {
                Ok(Request::Subscribe) => {
                    self.stream_events(reader, write).await;
                    return;
                }
                Ok(request) => (self.answer(request).await, false),
                Err(bad) => (Zeroizing::new(bad.line()), true),
            };
            let wrote =
                tokio::time::timeout(self.limits.answer_wait, write.write_all(&answer)).await;
            if then_close || !matches!(wrote, Ok(Ok(()))) {
                return;
            }
        }
    }

    /// A subscriber's connection from its `subscribe` on: `{"ok":true}`, then each
    /// event as a line, until the client closes, stops reading (an event not taken
    /// within `answer_wait` ends it) or writes again. One that falls behind the backlog
    /// is told to reload its list (`accounts-changed`) and goes on from the newest.
    async fn stream_events(
        &self,
        mut reader: BufReader<tokio::net::unix::OwnedReadHalf>,
        mut write: tokio::net::unix::OwnedWriteHalf,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        let mut events = self.windows.feed.subscribe();
        let wait = self.limits.answer_wait;
        let ok = protocol::ok_line(&json!({}));
        if !matches!(
            tokio::time::timeout(wait, write.write_all(&ok)).await,
            Ok(Ok(()))
        ) {
            return;
        }
        let mut byte = [0u8; 1];
        loop {
            let line = tokio::select! {
                // A subscriber only listens: a close, or anything it writes, ends it.
                _ = reader.read(&mut byte) => return,
                event = events.recv() => match event {
                    Ok(e) => e.line(),
                    Err(RecvError::Lagged(_)) => {
                        FeedEvent::shell(ShellEvent::AccountsChanged, &()).line()
                    }
                    Err(RecvError::Closed) => return,
                },
            };
            if !matches!(
                tokio::time::timeout(wait, write.write_all(&line)).await,
                Ok(Ok(()))
            ) {
                return;
            }
        }
    }

    async fn answer(&self, request: Request) -> Zeroizing<Vec<u8>> {
        let vault = self.cache.vault();
        // A ping, a show and the sign-ins' list reach no vault: they are answered even
        // while every turn is taken.
        let _turn = match request {
            Request::Ping | Request::Show { .. } | Request::SignIns => None,
            _ => Some(self.working.acquire().await),
        };
        let cache = self.cache.clone();
        let line = match request {
            Request::Token { account } => {
                return off_runtime(async move {
                    match cache.token(&account).await {
                        Ok(fresh) => protocol::token_line(&fresh),
                        Err(e) => Zeroizing::new(ErrorBody::of(&e).line()),
                    }
                })
                .await
            }
            Request::List => {
                let vault = vault.clone();
                off_runtime(async move {
                    match vault.list() {
                        Ok(accounts) => protocol::ok_line(&json!({ "accounts": accounts })),
                        Err(e) => ErrorBody::of(&e).line(),
                    }
                })
                .await
            }
            Request::Renew { account } => {
                let feed = self.windows.feed.clone();
                off_runtime(async move {
                    let renewed = cache.renew_now(&account).await;
                    // The open windows are told (a failure is news too).
                    feed.publish(FeedEvent::shell(ShellEvent::AccountsChanged, &()));
                    match renewed {
                        Ok(summary) => protocol::ok_line(&json!({ "account": summary })),
                        Err(e) => ErrorBody::of(&e).line(),
                    }
                })
                .await
            }
            Request::Show { account } => match (self.windows.show)(account.as_deref()) {
                Ok(()) => protocol::ok_line(&json!({})),
                Err(why) => ErrorBody::of(&crate::error::Error::internal(why)).line(),
            },
            Request::SignIn { account } => {
                // Answered once the vendor gave a code; the approval is awaited in
                // the agent, whoever asked may close.
                let sign_ins = self.windows.sign_ins.clone();
                match sign_ins.start(&account).await {
                    Ok(prompt) => protocol::ok_line(&json!({ "prompt": prompt })),
                    Err(e) => ErrorBody::of(&e).line(),
                }
            }
            Request::CancelSignIn { account } => {
                self.windows.sign_ins.cancel(&account).await;
                protocol::ok_line(&json!({}))
            }
            Request::SignIns => {
                protocol::ok_line(&json!({ "sign_ins": self.windows.sign_ins.in_progress() }))
            }
            // Taken by the connection before it gets here.
            Request::Subscribe => ErrorBody::bad_request("subscribe starts a stream".into()).line(),
            Request::Ping => protocol::ok_line(&json!({
                "version": env!("CARGO_PKG_VERSION"),
                "pid": std::process::id(),
                "vault": vault.dir(),
            })),
        };
        Zeroizing::new(line)
    }
}

/// Runs a request's vault work on tokio's blocking pool. The vault's SQLite calls are
/// synchronous (a database another process is writing waits up to its busy timeout),
/// and on the agent's two runtime threads they would stall the accept loop, pings and
/// every other client with them. At most `working` requests are there at once.
async fn off_runtime<T>(work: impl std::future::Future<Output = T> + Send + 'static) -> T
where
    T: From<ErrorLine> + Send + 'static,
{
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || runtime.block_on(work))
        .await
        .unwrap_or_else(|_| ErrorLine.into())
}

/// What a request that panicked answers.
struct ErrorLine;

impl From<ErrorLine> for Vec<u8> {
    fn from(_: ErrorLine) -> Self {
        ErrorBody::of(&crate::error::Error::internal(
            "the agent failed while answering: see its log",
        ))
        .line()
    }
}

impl From<ErrorLine> for Zeroizing<Vec<u8>> {
    fn from(e: ErrorLine) -> Self {
        Zeroizing::new(e.into())
    }
}

#[cfg(test)]
mod tests {
    use crate::vault::fixtures;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream as StdStream;
    use std::time::Instant;

    use super::*;
    use crate::agent::client;

    use crate::vault::Vault;

    const PLANTED: &str = "PLANTED-TOKEN-3f9c2a";

    /// A vault with one signed-in TrueSight account `a` whose token is `PLANTED`.
    async fn vault() -> (tempfile::TempDir, Arc<Vault>) {
        let dir = tempfile::tempdir().unwrap();
        let (vault, keyring) = fixtures::open(dir.path());
        fixtures::add(&vault, fixtures::truesight_account("a"), "pw").await;
        fixtures::plant_token(&vault, &keyring, "a", PLANTED, chrono::Duration::hours(1));
        (dir, Arc::new(vault))
    }

    struct Served {
        _dir: tempfile::TempDir,
        socket: std::path::PathBuf,
        vault: Arc<Vault>,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    impl Drop for Served {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn served(limits: Limits) -> Served {
        let (dir, vault) = vault().await;
        let socket = dir.path().join("agent.sock");
        let listener = bind(&socket).unwrap();
        let server = AgentServer::new(Arc::new(TokenCache::new(vault.clone())), limits);
        let task = tokio::spawn(server.serve_listener(listener));
        Served {
            _dir: dir,
            socket,
            vault,
            task,
        }
    }

    fn quick() -> Limits {
        Limits {
            request_wait: Duration::from_millis(300),
            answer_wait: Duration::from_millis(300),
            ..Limits::default()
        }
    }

    /// Writes `request` and reads one answer line (blocking; run off the runtime).
    fn ask(socket: &Path, request: &[u8]) -> (serde_json::Value, StdStream) {
        let mut s = StdStream::connect(socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request).unwrap();
        let line = client::read_line(&mut s, 1 << 20).expect("an answer line");
        (serde_json::from_slice(&line).unwrap(), s)
    }

    fn closed(s: &mut StdStream) -> bool {
        let mut rest = Vec::new();
        // A close with our request unread reaches us as a reset.
        match s.read_to_end(&mut rest) {
            Ok(_) => rest.is_empty(),
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }

    async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        tokio::task::spawn_blocking(f).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn token_list_ping_and_errors_are_answered_in_turn() {
        let s = served(Limits::default()).await;
        let socket = s.socket.clone();
        let dir = s.vault.dir().to_path_buf();
        let header = s.vault.token("a").await.unwrap().authorization;
        let header = header.expose().to_string();
        blocking(move || {
            let mut c = StdStream::connect(&socket).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut next = |req: &str| {
                c.write_all(req.as_bytes()).unwrap();
                let line = client::read_line(&mut c, 1 << 20).unwrap();
                serde_json::from_slice::<serde_json::Value>(&line).unwrap()
            };
            let t = next("{\"op\":\"token\",\"account\":\"a\"}\n");
            assert_eq!(t["ok"], true);
            assert_eq!(t["token"], PLANTED);
            assert_eq!(t["authorization"], header);
            assert_eq!(t["warning"], serde_json::Value::Null);
            let list = next("{\"op\":\"list\"}\n");
            assert_eq!(list["accounts"][0]["name"], "a");
            assert!(!list.to_string().contains(PLANTED), "{list}");
            let ping = next("{\"op\":\"ping\"}\n");
            assert_eq!(ping["pid"], std::process::id());
            assert_eq!(ping["vault"], dir.display().to_string());
            // A vault error keeps the connection.
            let unknown = next("{\"op\":\"token\",\"account\":\"nobody\"}\n");
            assert_eq!(unknown["ok"], false);
            assert_eq!(unknown["kind"], "usage");
            assert_eq!(unknown["exit_code"], 2);
            assert!(unknown["cli_text"].as_str().unwrap().contains("nobody"));
            let again = next("{\"op\":\"ping\"}\n");
            assert_eq!(again["ok"], true);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn windows_show_subscribe_to_events_and_list_no_sign_in_of_an_account_that_has_none() {
        let (dir, vault) = vault().await;
        let socket = dir.path().join("agent.sock");
        let listener = bind(&socket).unwrap();
        let asked: Arc<std::sync::Mutex<Vec<Option<String>>>> = Arc::default();
        let seen = asked.clone();
        let mut windows = Windows::none(vault.clone());
        windows.show = Arc::new(move |a| {
            seen.lock().unwrap().push(a.map(str::to_string));
            Ok(())
        });
        let feed = windows.feed.clone();
        let server = AgentServer::with_windows(
            Arc::new(TokenCache::new(vault.clone())),
            windows,
            Limits::default(),
        );
        let task = tokio::spawn(server.serve_listener(listener));
        let sock = socket.clone();
        blocking(move || {
            assert_eq!(ask(&sock, b"{\"op\":\"show\"}\n").0["ok"], true);
            assert_eq!(
                ask(&sock, b"{\"op\":\"show\",\"account\":\"a\"}\n").0["ok"],
                true
            );
            let none = ask(&sock, b"{\"op\":\"sign_ins\"}\n").0;
            assert_eq!(none["sign_ins"], serde_json::json!([]));
            // A TrueSight account has no browser sign-in: the vault says so.
            let refused = ask(&sock, b"{\"op\":\"sign_in\",\"account\":\"a\"}\n").0;
            assert_eq!(refused["ok"], false, "{refused}");
        })
        .await;
        assert_eq!(*asked.lock().unwrap(), [None, Some("a".to_string())]);

        // A subscriber reads {"ok":true}, then each event on a line of its own.
        let sock = socket.clone();
        let reader = blocking(move || {
            let mut s = StdStream::connect(&sock).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"{\"op\":\"subscribe\"}\n").unwrap();
            let mut r = std::io::BufReader::new(s);
            let mut first = String::new();
            std::io::BufRead::read_line(&mut r, &mut first).unwrap();
            assert_eq!(first, "{\"ok\":true}\n");
            r
        })
        .await;
        // A renewal asked on the socket (here one the vendor refuses) is news for
        // the windows, as the engine's are.
        let sock = socket.clone();
        let renewed =
            blocking(move || ask(&sock, b"{\"op\":\"renew\",\"account\":\"a\"}\n").0).await;
        assert_eq!(renewed["ok"], false, "{renewed}");
        feed.publish(FeedEvent::shell(
            ShellEvent::NotificationFailed,
            &"no server",
        ));
        feed.publish(FeedEvent::quit());
        let lines = blocking(move || {
            let mut r = reader;
            let mut lines = Vec::new();
            for _ in 0..3 {
                let mut line = String::new();
                std::io::BufRead::read_line(&mut r, &mut line).unwrap();
                lines.push(serde_json::from_str::<serde_json::Value>(&line).unwrap());
            }
            lines
        })
        .await;
        assert_eq!(lines[0]["event"], "accounts-changed");
        assert_eq!(lines[1]["event"], "notification-failed");
        assert_eq!(lines[1]["payload"], "no server");
        assert_eq!(lines[2]["event"], "quit");
        task.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreadable_line_is_answered_then_the_connection_closed() {
        let s = served(quick()).await;
        let socket = s.socket.clone();
        blocking(move || {
            for bad in [
                b"{\"op\":\"shout\"}\n".to_vec(),
                b"not json\n".to_vec(),
                [vec![b'x'; MAX_LINE + 10], b"\n".to_vec()].concat(),
            ] {
                let (answer, mut c) = ask(&socket, &bad);
                assert_eq!(answer["ok"], false);
                assert_eq!(answer["kind"], protocol::BAD_REQUEST);
                assert!(closed(&mut c), "closed after a bad request");
            }
            // The agent still serves.
            let (answer, _) = ask(&socket, b"{\"op\":\"ping\"}\n");
            assert_eq!(answer["ok"], true);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn silent_and_deaf_clients_are_dropped_while_others_are_served() {
        let s = served(quick()).await;
        let socket = s.socket.clone();
        blocking(move || {
            // Silent: closed after request_wait.
            let mut silent = StdStream::connect(&socket).unwrap();
            silent
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let started = Instant::now();
            assert!(closed(&mut silent));
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{:?}",
                started.elapsed()
            );

            // Deaf: asks and asks, never reads; its writes fail once it is dropped.
            let mut deaf = StdStream::connect(&socket).unwrap();
            deaf.set_write_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let many = "{\"op\":\"list\"}\n".repeat(10_000);
            let started = Instant::now();
            let mut dropped = false;
            while started.elapsed() < Duration::from_secs(10) {
                if deaf.write_all(many.as_bytes()).is_err() {
                    dropped = true;
                    break;
                }
            }
            assert!(dropped, "a client that never reads is dropped");

            let (answer, _) = ask(&socket, b"{\"op\":\"token\",\"account\":\"a\"}\n");
            assert_eq!(answer["token"], PLANTED);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_connections_leaves_room_for_a_token_and_over_the_cap_is_closed() {
        let s = served(Limits {
            max_connections: 1_100,
            ..Limits::default()
        })
        .await;
        let socket = s.socket.clone();
        blocking(move || {
            let flood: Vec<StdStream> = (0..1_000)
                .map(|_| StdStream::connect(&socket).unwrap())
                .collect();
            let started = Instant::now();
            let (answer, _) = ask(&socket, b"{\"op\":\"token\",\"account\":\"a\"}\n");
            assert_eq!(answer["token"], PLANTED);
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{:?}",
                started.elapsed()
            );
            drop(flood);
        })
        .await;

        let capped = served(Limits {
            max_connections: 2,
            ..Limits::default()
        })
        .await;
        let socket = capped.socket.clone();
        blocking(move || {
            let held: Vec<StdStream> = (0..2)
                .map(|_| StdStream::connect(&socket).unwrap())
                .collect();
            std::thread::sleep(Duration::from_millis(200));
            let mut third = StdStream::connect(&socket).unwrap();
            third
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let started = Instant::now();
            let _ = third.write_all(b"{\"op\":\"ping\"}\n");
            assert!(closed(&mut third), "over the cap: closed unanswered");
            assert!(started.elapsed() < Duration::from_secs(2));
            drop(held);
        })
        .await;
    }

    /// Not a test on its own: what `another_users_connection_is_closed_unanswered`
    /// runs as another user.
    #[test]
    fn connect_as_told() {
        let Some(path) = std::env::var_os("TK_AGENT_CONNECT") else {
            return;
        };
        let mut s = StdStream::connect(path).expect("connect (the folder is open to all)");
        let _ = s.write_all(b"{\"op\":\"token\",\"account\":\"a\"}\n");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        assert!(
            answer.is_empty(),
            "answered {}",
            String::from_utf8_lossy(&answer)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_users_connection_is_closed_unanswered() {
        if socket::my_uid() != 0 {
            let _ = writeln!(
                std::io::stderr(),
                "skipped: needs root to run a client as another user"
            );
            return;
        }
        // A folder and a socket anyone may open: only the peer check stands between
        // another user and the token.
        let open = tempfile::tempdir().unwrap();
        std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let sock = open.path().join("agent.sock");
        let (_dir, vault) = vault().await;
        let listener = bind(&sock).unwrap();
        std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
        let server = AgentServer::new(Arc::new(TokenCache::new(vault)), Limits::default());
        let task = tokio::spawn(server.serve_listener(listener));
        let path = sock.clone();
        let out = blocking(move || {
            use std::os::unix::process::CommandExt;
            std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "agent::server::tests::connect_as_told",
                    "--nocapture",
                ])
                .env("TK_AGENT_CONNECT", &path)
                .uid(65534)
                .gid(65534)
                .output()
                .unwrap()
        })
        .await;
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // This user is still answered.
        let answer =
            blocking(move || ask(&sock, b"{\"op\":\"token\",\"account\":\"a\"}\n").0).await;
        assert_eq!(answer["token"], PLANTED);
        task.abort();
    }

    #[test]
    fn a_second_claim_for_the_same_vault_is_refused_and_the_socket_goes_with_the_first() {
        let t = tempfile::tempdir().unwrap();
        let vault_dir = t.path().join("vault");
        std::fs::create_dir_all(&vault_dir).unwrap();
        let paths = AgentPaths::in_folder(&t.path().join("run/tokenkeeper"), &vault_dir);
        // A socket file left by an agent that died is no obstacle.
        std::fs::create_dir_all(&paths.folder).unwrap();
        std::fs::write(&paths.socket, "").unwrap();
        let Claim::Listening(first) = claim(paths.clone()).unwrap() else {
            panic!("the first claim listens");
        };
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&paths.folder).unwrap().mode() & 0o777,
            0o700
        );
        assert_eq!(
            std::fs::symlink_metadata(&paths.socket).unwrap().mode() & 0o777,
            0o600
        );
        assert!(matches!(claim(paths.clone()).unwrap(), Claim::Taken));
        // Another socket folder (another XDG_RUNTIME_DIR) for the same vault: taken.
        let elsewhere = AgentPaths::in_folder(&t.path().join("fallback"), &vault_dir);
        assert!(matches!(claim(elsewhere).unwrap(), Claim::Taken));
        assert!(
            !t.path().join("fallback").exists(),
            "no folder for the refused"
        );
        assert_eq!(paths.lock, vault_dir.join(socket::LOCK_FILE));
        assert_eq!(
            socket::read_lock_record(&paths.lock).map(|r| (r.pid, r.socket)),
            Some((std::process::id(), paths.socket.clone()))
        );
        drop(first);
        assert!(!paths.socket.exists(), "the socket is removed");
        assert!(matches!(claim(paths).unwrap(), Claim::Listening(_)));
    }
}
