//! The agent's wire format, small enough to speak from a shell: one JSON object per
//! line each way, one answer line per request line.
//!
//! Requests: `{"op":"token","account":NAME}`, `{"op":"list"}`,
//! `{"op":"renew","account":NAME}`, `{"op":"ping"}`, and for windows
//! `{"op":"show","account":NAME|null}` (open the window), `{"op":"sign_in","account":NAME}`
//! (start a browser sign-in: answers its prompt), `{"op":"cancel_sign_in","account":NAME}`,
//! `{"op":"sign_ins"}` (those in progress) and `{"op":"subscribe"}` (answered with
//! `{"ok":true}`, then the connection carries one `{"event":…,"payload":…}` line per
//! event until either side closes it). Every answer has `ok`; a failure
//! carries `kind`, `exit_code`, `message` and `cli_text` (the message with the CLI's
//! advice), so a client prints and exits exactly as `tokenkeeper` alone would. Only
//! the answer to `token` carries a secret. A request the agent cannot read (too
//! long, not JSON, an unknown op) is answered with the kind `bad_request` and the
//! connection is closed.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};
use crate::secret::Secret;
use crate::vault::FreshToken;

/// The longest request line read, newline included; a longer one is refused.
pub const MAX_LINE: usize = 64 * 1024;

/// The kind of an answer to a request the agent could not read. It is no vault
/// error: a client that gets it did something this agent does not speak.
pub const BAD_REQUEST: &str = "bad_request";

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// A valid token for the account, renewed first if needed.
    Token { account: String },
    /// Every account's summary (no secrets).
    List,
    /// Renew the account's token now.
    Renew { account: String },
    /// Who answers: the agent's version, pid and vault folder.
    Ping,
    /// Open the window, on `account` when given.
    Show {
        #[serde(default)]
        account: Option<String>,
    },
    /// Start the account's browser sign-in; the answer carries its prompt.
    SignIn { account: String },
    /// Stop waiting for the account's browser sign-in.
    CancelSignIn { account: String },
    /// The browser sign-ins waiting for approval.
    SignIns,
    /// The agent's events, one line each, from now on.
    Subscribe,
}

impl Request {
    /// The request as one line, newline included.
    pub fn line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// Reads one request line (its newline, if any, included). Never quotes the line
/// back: whatever a client wrote stays out of answers and logs.
pub fn parse_request(line: &[u8]) -> Result<Request, ErrorBody> {
    if line.len() > MAX_LINE {
        return Err(ErrorBody::bad_request(format!(
            "request longer than {MAX_LINE} bytes"
        )));
    }
    let text = line.strip_suffix(b"\n").unwrap_or(line);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    match serde_json::from_slice::<Request>(text) {
        Ok(request) => Ok(request),
        Err(e) => {
            let op = serde_json::from_slice::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("op").map(|op| op.is_string()));
            Err(ErrorBody::bad_request(match op {
                Some(true) => "unknown op, or its fields are missing or of the wrong type \
                     (ops: token, list, renew, ping, show, sign_in, cancel_sign_in, \
                     sign_ins, subscribe)"
                    .to_string(),
                Some(false) => "\"op\" must be a string".to_string(),
                None if e.is_syntax() || e.is_eof() => {
                    format!("malformed JSON at column {}", e.column())
                }
                None => "a request is a JSON object with an \"op\"".to_string(),
            }))
        }
    }
}

/// A failure as it crosses the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub kind: String,
    pub exit_code: i32,
    pub message: String,
    /// The message with the CLI's advice, as `tokenkeeper` prints it.
    pub cli_text: String,
}

impl ErrorBody {
    pub fn of(e: &Error) -> Self {
        Self {
            kind: kind_name(e.kind()).to_string(),
            exit_code: e.kind().exit_code(),
            message: e.message().to_string(),
            cli_text: e.cli_text(),
        }
    }

    pub fn bad_request(message: String) -> Self {
        Self {
            kind: BAD_REQUEST.to_string(),
            exit_code: ErrorKind::Usage.exit_code(),
            cli_text: message.clone(),
            message,
        }
    }

    /// The vault's error again, worded as the CLI prints it (its `cli_text` is this
    /// body's); `None` for `bad_request` or a kind this version does not know.
    pub fn to_error(&self) -> Option<Error> {
        kind_named(&self.kind).map(|kind| Error::new(kind, self.cli_text.clone()))
    }

    /// `{"ok":false,…}` as one line.
    pub fn line(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Failed<'a> {
            ok: bool,
            #[serde(flatten)]
            body: &'a ErrorBody,
        }
        answer_line(&Failed {
            ok: false,
            body: self,
        })
    }
}

/// An error kind's name on the wire.
pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Usage => "usage",
        ErrorKind::NeedsSignIn => "needs_sign_in",
        ErrorKind::Refused => "refused",
        ErrorKind::Vendor => "vendor",
        ErrorKind::Network => "network",
        ErrorKind::Keyring => "keyring",
        ErrorKind::Vault => "vault",
        ErrorKind::Internal => "internal",
    }
}

/// The error kind a wire name stands for.
pub fn kind_named(name: &str) -> Option<ErrorKind> {
    [
        ErrorKind::Usage,
        ErrorKind::NeedsSignIn,
        ErrorKind::Refused,
        ErrorKind::Vendor,
        ErrorKind::Network,
        ErrorKind::Keyring,
        ErrorKind::Vault,
        ErrorKind::Internal,
    ]
    .into_iter()
    .find(|k| kind_name(*k) == name)
}

/// `{"ok":true,…fields}` as one line.
pub fn ok_line(fields: &impl Serialize) -> Vec<u8> {
    #[derive(Serialize)]
    struct Done<'a, T: Serialize> {
        ok: bool,
        #[serde(flatten)]
        fields: &'a T,
    }
    answer_line(&Done { ok: true, fields })
}

fn answer_line(answer: &impl Serialize) -> Vec<u8> {
    let mut line = serde_json::to_vec(answer).unwrap_or_else(|e| {
        ErrorBody::bad_request(format!("the answer could not be written: {e}")).line()
    });
    if line.last() != Some(&b'\n') {
        line.push(b'\n');
    }
    line
}

/// The answer to `token`, the one line that carries a secret: written into memory
/// that is wiped when dropped, sized beforehand so no copy is left behind a growth.
pub fn token_line(fresh: &FreshToken) -> Zeroizing<Vec<u8>> {
    #[derive(Serialize)]
    struct TokenAnswer<'a> {
        ok: bool,
        token: &'a str,
        authorization: &'a str,
        warning: Option<ErrorBody>,
    }
    let answer = TokenAnswer {
        ok: true,
        token: fresh.token.expose(),
        authorization: fresh.authorization.expose(),
        warning: fresh.warning.as_ref().map(ErrorBody::of),
    };
    // JSON escapes at most sextuple a character (\u00XX).
    let room = 6 * (answer.token.len() + answer.authorization.len()) + 4096;
    let mut line = Zeroizing::new(Vec::with_capacity(room));
    if serde_json::to_writer(&mut *line, &answer).is_err() {
        line.clear();
        line.extend_from_slice(
            &ErrorBody::of(&Error::internal("the token could not be written")).line(),
        );
        return line;
    }
    line.push(b'\n');
    line
}

/// An answer line as a client reads it: every field any answer may carry. Its
/// Debug names the fields, never the token's text.
#[derive(Default, Deserialize)]
struct AnswerIn {
    ok: bool,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    authorization: Option<String>,
    #[serde(default)]
    warning: Option<ErrorBody>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    exit_code: Option<i32>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    cli_text: Option<String>,
}

impl std::fmt::Debug for AnswerIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "[redacted]");
        f.debug_struct("AnswerIn")
            .field("ok", &self.ok)
            .field("token", &redacted(&self.token))
            .field("authorization", &redacted(&self.authorization))
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl AnswerIn {
    fn error(self) -> Option<ErrorBody> {
        Some(ErrorBody {
            kind: self.kind?,
            exit_code: self.exit_code?,
            message: self.message?,
            cli_text: self.cli_text?,
        })
    }
}

/// What a client makes of an answer to `token`: the token, or the vault's error;
/// `None` when the answer is no answer to that (unreadable, `bad_request`, a kind
/// this version does not know), so the client does the work itself.
pub fn read_token_answer(line: &[u8]) -> Option<Result<FreshToken, Error>> {
    let answer: AnswerIn = serde_json::from_slice(line).ok()?;
    if !answer.ok {
        return answer.error()?.to_error().map(Err);
    }
    let token = Secret::new(answer.token?);
    let authorization = Secret::new(answer.authorization?);
    let warning = match answer.warning {
        Some(w) => Some(w.to_error()?),
        None => None,
    };
    Some(Ok(FreshToken {
        token,
        authorization,
        // The agent's cache knows them; a script asking for a token does not need them.
        facts: None,
        warning,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(line: &[u8]) -> ErrorBody {
        parse_request(line).expect_err("refused")
    }

    #[test]
    fn each_op_reads_from_its_line() {
        assert_eq!(
            parse_request(b"{\"op\":\"token\",\"account\":\"prod\"}\n").unwrap(),
            Request::Token {
                account: "prod".into()
            }
        );
        assert_eq!(
            parse_request(b"{\"op\":\"list\"}\r\n").unwrap(),
            Request::List
        );
        assert_eq!(
            parse_request(b"{\"account\":\"a\",\"op\":\"renew\"}").unwrap(),
            Request::Renew {
                account: "a".into()
            }
        );
        assert_eq!(
            parse_request(b"{\"op\":\"ping\"}\n").unwrap(),
            Request::Ping
        );
        // What a client writes is what the agent reads.
        let r = Request::Token {
            account: "a \"quoted\"\nname".into(),
        };
        assert_eq!(parse_request(&r.line()).unwrap(), r);
    }

    #[test]
    fn unreadable_requests_are_bad_requests_that_do_not_quote_them() {
        let planted = "PLANTED-SECRET-4711";
        let cases: Vec<Vec<u8>> = vec![
            b"not json".to_vec(),
            b"{\"op\":".to_vec(),
            b"[1,2]".to_vec(),
            b"{}".to_vec(),
            format!("{{\"op\":\"{planted}\"}}").into_bytes(),
            b"{\"op\":7}".to_vec(),
            b"{\"op\":\"token\"}".to_vec(),
            b"{\"op\":\"token\",\"account\":5}".to_vec(),
            format!("{planted}{{").into_bytes(),
            vec![0xff, 0xfe, b'\n'],
            vec![],
        ];
        for line in cases {
            let e = bad(&line);
            assert_eq!(e.kind, BAD_REQUEST, "{line:?}");
            assert_eq!(e.exit_code, 2);
            assert!(!e.message.contains(planted), "{}", e.message);
            assert!(e.to_error().is_none(), "not a vault error");
        }
        assert!(bad(b"{\"op\":\"shout\"}").message.contains("unknown op"));
    }

    #[test]
    fn a_line_over_the_limit_is_refused_one_under_is_read() {
        let pad = |n: usize| {
            let head = b"{\"op\":\"token\",\"account\":\"".to_vec();
            let tail = b"\"}\n".to_vec();
            let name = vec![b'a'; n - head.len() - tail.len()];
            [head, name, tail].concat()
        };
        assert!(parse_request(&pad(MAX_LINE)).is_ok());
        let e = bad(&pad(MAX_LINE + 1));
        assert!(e.message.contains("longer than"), "{}", e.message);
    }

    #[test]
    fn a_vault_error_crosses_with_its_kind_code_and_cli_words() {
        let e = Error::needs_sign_in("account 'a' has not signed in yet")
            .with_remedy(crate::error::Remedy::sign_in("a", false));
        let body = ErrorBody::of(&e);
        assert_eq!(body.kind, "needs_sign_in");
        assert_eq!(body.exit_code, 3);
        let line = body.line();
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["cli_text"], e.cli_text());
        let back = read_token_answer(&line).unwrap().unwrap_err();
        assert_eq!(back.kind(), e.kind());
        assert_eq!(back.cli_text(), e.cli_text());
        for kind in [
            ErrorKind::Usage,
            ErrorKind::NeedsSignIn,
            ErrorKind::Refused,
            ErrorKind::Vendor,
            ErrorKind::Network,
            ErrorKind::Keyring,
            ErrorKind::Vault,
            ErrorKind::Internal,
        ] {
            assert_eq!(kind_named(kind_name(kind)), Some(kind));
        }
        // A bad request is no answer to act on: the client works alone.
        assert!(read_token_answer(&ErrorBody::bad_request("x".into()).line()).is_none());
        assert!(read_token_answer(b"{\"ok\":false,\"kind\":\"from_the_future\",\"exit_code\":9,\"message\":\"m\",\"cli_text\":\"m\"}").is_none());
        assert!(read_token_answer(b"garbage").is_none());
        assert!(read_token_answer(b"{\"ok\":true}").is_none());
    }

    #[test]
    fn a_token_and_its_warning_cross_and_come_back() {
        let warning = Error::network("renewal failed, the current token is still valid: down");
        let fresh = FreshToken {
            token: Secret::new("tok\"en\u{1}"),
            authorization: Secret::new("Bearer tok\"en\u{1}"),
            facts: None,
            warning: Some(warning.clone()),
        };
        let line = token_line(&fresh);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        let back = read_token_answer(&line).unwrap().unwrap();
        assert_eq!(back.token, fresh.token);
        assert_eq!(back.authorization, fresh.authorization);
        let w = back.warning.unwrap();
        assert_eq!(w.kind(), warning.kind());
        assert_eq!(w.cli_text(), warning.cli_text());
        let plain = FreshToken {
            warning: None,
            ..fresh
        };
        let v: serde_json::Value = serde_json::from_slice(&token_line(&plain)).unwrap();
        assert_eq!(v["warning"], serde_json::Value::Null);
    }

    #[test]
    fn ok_answers_flatten_their_fields() {
        let line = ok_line(&serde_json::json!({"accounts": []}));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v, serde_json::json!({"ok": true, "accounts": []}));
    }
}
