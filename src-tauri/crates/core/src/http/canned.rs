//! The fuzzing and replay seam. [`super::send`] is the single place every
//! vendor answer enters the core; a thread that has armed this module gets its
//! answers from a queue of canned ones instead of the network, so a fuzzer (or a
//! replay test) can drive any status, content type and body into each vendor's
//! parser, thousands of times a second, without a server.
//!
//! Nothing in the product arms it: unarmed, `send` pays one thread-local check. The
//! queue is per thread, so it serves futures polled on the thread that armed it (a
//! current-thread runtime), never another thread's requests.

use std::cell::RefCell;
use std::collections::VecDeque;

use reqwest::header::HeaderValue;
use reqwest::{RequestBuilder, StatusCode};

use super::{Answer, MAX_BODY};
use crate::error::{Error, Result};

/// One answer as a vendor might send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canned {
    /// Any number; one HTTP cannot carry (outside 100..=999) arrives as 500.
    pub status: u16,
    /// The `Content-Type` header; one a header cannot carry arrives as none.
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

thread_local! {
    /// `None`: unarmed, requests go to the network.
    static QUEUE: RefCell<Option<VecDeque<Canned>>> = const { RefCell::new(None) };
}

/// Arms this thread: its next requests get `answers`, in order, then a network error.
pub fn arm(answers: impl IntoIterator<Item = Canned>) {
    QUEUE.with(|q| *q.borrow_mut() = Some(answers.into_iter().collect()));
}

/// Disarms this thread; returns how many answers were not asked for.
pub fn disarm() -> usize {
    QUEUE.with(|q| q.borrow_mut().take().map_or(0, |q| q.len()))
}

pub fn is_armed() -> bool {
    QUEUE.with(|q| q.borrow().is_some())
}

/// For `send` on an armed thread: the next canned answer as `send` would have read
/// it (the request is dropped, never sent), or a network error once they ran out.
pub(crate) fn answer(request: RequestBuilder, endpoint: &str) -> Result<Answer> {
    // A request reqwest could not have built (a vendor-given address that is not a
    // URL) fails as it would have, before any answer.
    if let Err(e) = request.build() {
        return Err(Error::network(format!(
            "the request to {endpoint} could not be made ({e})"
        )));
    }
    let Some(c) = QUEUE.with(|q| q.borrow_mut().as_mut().and_then(VecDeque::pop_front)) else {
        return Err(Error::network(format!(
            "{endpoint}: no answer (the canned answers ran out)"
        )));
    };
    if c.body.len() > MAX_BODY {
        return Err(Error::vendor(format!(
            "{endpoint} sent an answer larger than {} KiB, which no token answer is: check the URL",
            MAX_BODY / 1024
        )));
    }
    Ok(Answer {
        status: StatusCode::from_u16(c.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        content_type: c.content_type.and_then(|ct| {
            HeaderValue::from_str(&ct)
                .ok()
                .and_then(|v| v.to_str().ok().map(str::to_string))
        }),
        body: c.body,
        endpoint: endpoint.to_string(),
    })
}
