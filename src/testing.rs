//! A scripted platform for unit tests: records every request and answers
//! from a closure, so tests can check request bodies and inject faults.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::config::{Config, ConfigInput, Credentials, RetryPolicy, Timeouts};
use crate::transport::{
    Answered, HttpRequest, HttpResponse, Next, NextRequest, Platform, Transport, TransportFailure,
};

/// What the fake server answers: a status and body, or a transport failure.
pub type Answer = Result<(u16, String), TransportFailure>;

/// One recorded request: the operation name (after `DynamoDB_20120810.`) and its body.
#[derive(Debug, Clone)]
pub struct Sent {
    pub op: String,
    pub body: Value,
    /// The `authorization` header (names the access key id that signed it).
    pub authorization: String,
}

pub struct FakePlatform<F> {
    answer: RefCell<F>,
    pub sent: RefCell<Vec<Sent>>,
    /// Sizes of each `send_all` call, and the requests in flight at each
    /// answer of a window.
    pub rounds: RefCell<Vec<usize>>,
    pub sleeps: RefCell<Vec<Duration>>,
    pub logs: RefCell<Vec<String>>,
    /// Fake time since the start: each request takes a millisecond, each
    /// sleep its length (shared with the answering closure by `with_clock`).
    pub clock: Rc<Cell<Duration>>,
}

impl<F: FnMut(&Sent) -> Answer> FakePlatform<F> {
    pub fn new(answer: F) -> Self {
        Self::with_clock(Rc::default(), answer)
    }

    /// A platform whose fake clock is `clock`.
    pub fn with_clock(clock: Rc<Cell<Duration>>, answer: F) -> Self {
        FakePlatform {
            answer: RefCell::new(answer),
            sent: RefCell::default(),
            rounds: RefCell::default(),
            sleeps: RefCell::default(),
            logs: RefCell::default(),
            clock,
        }
    }

    /// The operations sent, in order.
    pub fn ops(&self) -> Vec<String> {
        self.sent.borrow().iter().map(|s| s.op.clone()).collect()
    }
}

impl<F: FnMut(&Sent) -> Answer> FakePlatform<F> {
    /// Records one request and answers it; the fake clock moves 1 ms.
    fn exchange(&self, request: HttpRequest) -> Result<HttpResponse, TransportFailure> {
        let authorization = request
            .headers()
            .get("authorization")
            .expect("every request is signed")
            .to_str()
            .unwrap()
            .to_string();
        let target = request.headers()["x-amz-target"].to_str().unwrap();
        let sent = Sent {
            op: target.trim_start_matches("DynamoDB_20120810.").to_string(),
            body: serde_json::from_slice(request.body()).expect("request bodies are JSON"),
            authorization,
        };
        self.sent.borrow_mut().push(sent.clone());
        self.clock.set(self.clock.get() + Duration::from_millis(1));
        let answer = (self.answer.borrow_mut())(&sent);
        answer.map(|(status, body)| {
            http::Response::builder()
                .status(status)
                .body(body.into_bytes())
                .unwrap()
        })
    }
}

impl<F: FnMut(&Sent) -> Answer> Transport for FakePlatform<F> {
    fn send_all(
        &self,
        requests: Vec<HttpRequest>,
        _: &Timeouts,
    ) -> Vec<Result<HttpResponse, TransportFailure>> {
        self.rounds.borrow_mut().push(requests.len());
        requests
            .into_iter()
            .map(|request| self.exchange(request))
            .collect()
    }

    /// A window as a real transport runs it: requests are taken while fewer
    /// than `limit` are out and `next` has one, then the oldest is answered.
    /// `rounds` records how many were in flight at each answer.
    fn send_window(
        &self,
        limit: usize,
        _: &Timeouts,
        next: &mut NextRequest<'_>,
        done: &mut Answered<'_>,
    ) {
        let mut pending: VecDeque<(usize, HttpRequest)> = VecDeque::new();
        let mut more = true;
        loop {
            while more && pending.len() < limit.max(1) {
                match next(pending.len()) {
                    Next::Send(tag, request) => pending.push_back((tag, request)),
                    Next::Wait(_) if pending.is_empty() => {}
                    Next::Wait(_) => break,
                    Next::Done => more = false,
                }
            }
            let Some((tag, request)) = pending.pop_front() else {
                return;
            };
            self.rounds.borrow_mut().push(pending.len() + 1);
            done(tag, self.exchange(request));
        }
    }
}

impl<F: FnMut(&Sent) -> Answer> Platform for FakePlatform<F> {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + self.clock.get()
    }

    fn sleep(&self, duration: Duration) {
        self.sleeps.borrow_mut().push(duration);
        self.clock.set(self.clock.get() + duration);
    }

    fn random_u64(&self) -> u64 {
        u64::MAX
    }

    fn log_error(&self, message: &str) {
        self.logs.borrow_mut().push(message.to_string());
    }
}

/// A valid config for table `tbl`, with the given prefix and retry attempts.
pub fn config(prefix: &str, max_attempts: u32, init_concurrency: u32) -> Config {
    Config::new(ConfigInput {
        table: "tbl".into(),
        prefix: Some(prefix.into()),
        region: "us-east-1".into(),
        endpoint: Some("http://127.0.0.1:8000".into()),
        credentials: Some(Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "unit-test-secret".into(),
            session_token: None,
        }),
        retry: Some(RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        }),
        init_concurrency: Some(init_concurrency),
        init_no_progress_ms: Some(10_000),
        ..ConfigInput::default()
    })
    .unwrap()
}

/// A DynamoDB-style error answer.
pub fn error(status: u16, code: &str) -> Answer {
    Ok((
        status,
        format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{code} happened"}}"#
        ),
    ))
}

/// A 200 answer with the given body.
pub fn ok(body: &str) -> Answer {
    Ok((200, body.to_string()))
}
