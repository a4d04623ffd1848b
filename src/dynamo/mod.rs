//! DynamoDB's JSON protocol: signed requests with retries (`Client`), request
//! bodies (`request`), response decoding (`response`) and error bodies (`error`).

pub mod error;
pub mod redact;
pub mod request;
pub mod response;
mod signing;

#[cfg(test)]
mod fuzz;

use std::cell::RefCell;
use std::time::Duration;

use bytes::Bytes;

use crate::config::{Config, Credentials};
use crate::error::{ServiceError, StoreError, TransportError};
use crate::retry;
use crate::transport::{
    HttpRequest, HttpResponse, Next, Platform, TransportFailure, BODY_TOO_LARGE, MAX_RESPONSE_BYTES,
};
use signing::sign_request;

/// The DynamoDB operations the stores use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    GetItem,
    Query,
    PutItem,
    BatchWriteItem,
    CreateTable,
    DescribeTable,
}

impl Operation {
    /// The operation's name.
    pub fn name(self) -> &'static str {
        match self {
            Operation::GetItem => "GetItem",
            Operation::Query => "Query",
            Operation::PutItem => "PutItem",
            Operation::BatchWriteItem => "BatchWriteItem",
            Operation::CreateTable => "CreateTable",
            Operation::DescribeTable => "DescribeTable",
        }
    }

    /// The `X-Amz-Target` header value.
    pub fn target(self) -> String {
        format!("DynamoDB_20120810.{}", self.name())
    }
}

/// What a window sends next: a body with its tag, nothing until an answer
/// arrives (only while a call is in flight) or the time given passes, or
/// nothing more.
pub enum NextBody {
    Send(usize, Bytes),
    Wait(Option<Duration>),
    Done,
}

/// One answer of a window.
#[derive(Debug)]
pub enum Answer {
    /// A 2xx answer's body.
    Body(Vec<u8>),
    /// Throttled: the same request may succeed once the load is lower.
    Throttled(ServiceError),
    /// Another failure worth another attempt (5xx, a retryable transport failure).
    Retryable(StoreError),
    /// A failure that another attempt will not fix.
    Failed(StoreError),
}

/// What becomes of one attempt of a call.
enum Outcome {
    Done(Result<Vec<u8>, StoreError>),
    Retry,
}

/// Sends signed DynamoDB requests through the platform, retrying what the
/// retry policy allows.
pub struct Client<P> {
    config: Config,
    /// The credentials requests are signed with; replaced by `set_credentials`.
    credentials: RefCell<Credentials>,
    platform: P,
}

impl<P: Platform> Client<P> {
    pub fn new(config: Config, platform: P) -> Self {
        let credentials = RefCell::new(config.credentials.clone());
        Client {
            config,
            credentials,
            platform,
        }
    }

    /// Signs every later request with `credentials` (validated first).
    pub fn set_credentials(&self, credentials: Credentials) -> Result<(), StoreError> {
        *self.credentials.borrow_mut() = credentials.validated()?;
        Ok(())
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// One call; the response body of a 2xx answer.
    pub fn call(&self, op: Operation, body: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        self.call_all(op, vec![body])
            .pop()
            .expect("one result per request")
    }

    /// Several calls of one operation, sent together (the platform may run them
    /// concurrently); one result per body, in order. Each failed call is retried
    /// on its own while the policy allows.
    pub fn call_all(
        &self,
        op: Operation,
        bodies: Vec<Vec<u8>>,
    ) -> Vec<Result<Vec<u8>, StoreError>> {
        let bodies: Vec<(usize, Bytes)> = bodies.into_iter().map(Bytes::from).enumerate().collect();
        let mut results: Vec<Option<Result<Vec<u8>, StoreError>>> = vec![None; bodies.len()];
        for (index, result) in self.call_rounds(op, bodies, 1) {
            results[index] = Some(result);
        }
        results
            .into_iter()
            .map(|r| r.expect("every request has a result"))
            .collect()
    }

    /// Calls of one operation with at most `limit` in flight: `next` gives the
    /// next body (told how many calls are in flight), `done` takes each answer,
    /// classified, as it arrives. Nothing is retried here: the caller decides.
    pub fn window(
        &self,
        op: Operation,
        limit: usize,
        next: &mut dyn FnMut(usize) -> NextBody,
        done: &mut dyn FnMut(usize, Answer),
    ) {
        // A body that cannot be signed ends the window; it is answered with
        // its error once the calls in flight are.
        let mut unsigned: Vec<(usize, StoreError)> = Vec::new();
        let mut next_request = |in_flight: usize| match next(in_flight) {
            NextBody::Send(tag, body) => match self.request(op, &body) {
                Ok(request) => Next::Send(tag, request),
                Err(e) => {
                    unsigned.push((tag, e));
                    Next::Done
                }
            },
            NextBody::Wait(wake) => Next::Wait(wake),
            NextBody::Done => Next::Done,
        };
        let mut answered = |tag: usize, outcome| done(tag, self.answer(op, outcome));
        self.platform.send_window(
            limit,
            &self.config.timeouts,
            &mut next_request,
            &mut answered,
        );
        for (tag, e) in unsigned {
            done(tag, Answer::Failed(e));
        }
    }

    /// Sends the tagged bodies in rounds, from attempt `first_attempt`, retrying
    /// each failed one with backoff while the policy allows; (tag, result) pairs.
    fn call_rounds(
        &self,
        op: Operation,
        bodies: Vec<(usize, Bytes)>,
        first_attempt: u32,
    ) -> Vec<(usize, Result<Vec<u8>, StoreError>)> {
        let mut finished = Vec::with_capacity(bodies.len());
        let mut pending = bodies;
        let mut attempt = first_attempt;
        while !pending.is_empty() {
            let mut sent = Vec::with_capacity(pending.len());
            let mut requests = Vec::with_capacity(pending.len());
            for (tag, body) in pending {
                match self.request(op, &body) {
                    Ok(request) => {
                        sent.push((tag, body));
                        requests.push(request);
                    }
                    Err(e) => finished.push((tag, Err(e))),
                }
            }
            let responses = self.platform.send_all(requests, &self.config.timeouts);
            let mut again = Vec::new();
            for ((tag, body), outcome) in sent.into_iter().zip(responses) {
                match self.classify(op, outcome, attempt) {
                    Outcome::Done(result) => finished.push((tag, result)),
                    Outcome::Retry => again.push((tag, body)),
                }
            }
            if !again.is_empty() {
                attempt += 1;
                self.backoff(attempt);
            }
            pending = again;
        }
        finished
    }

    /// What to do with the outcome of attempt `attempt` of a call.
    fn classify(
        &self,
        op: Operation,
        outcome: Result<HttpResponse, TransportFailure>,
        attempt: u32,
    ) -> Outcome {
        let last = attempt >= self.config.retry.max_attempts;
        match self.answer(op, outcome) {
            Answer::Body(body) => Outcome::Done(Ok(body)),
            Answer::Throttled(_) | Answer::Retryable(_) if !last => Outcome::Retry,
            Answer::Throttled(e) => Outcome::Done(Err(StoreError::Service(e).after(attempt))),
            Answer::Retryable(e) | Answer::Failed(e) => Outcome::Done(Err(e.after(attempt))),
        }
    }

    /// How the outcome of one attempt came back. (Not inlined: the windowed
    /// and the retrying paths share one copy.)
    #[inline(never)]
    fn answer(&self, op: Operation, outcome: Result<HttpResponse, TransportFailure>) -> Answer {
        match outcome {
            Ok(response) if response.status().is_success() => Answer::Body(response.into_body()),
            Ok(response) => {
                let mut e = error::service_error(&response);
                e.message = redact::redact(&e.message, &self.credentials.borrow());
                if retry::is_throttling(e.status, &e.code) {
                    Answer::Throttled(e)
                } else if retry::is_retryable_response(e.status, &e.code) {
                    Answer::Retryable(StoreError::Service(e))
                } else {
                    Answer::Failed(StoreError::Service(e))
                }
            }
            Err(failure) if failure.code == BODY_TOO_LARGE => {
                Answer::Failed(StoreError::malformed(format!(
                    "{} response body is larger than {MAX_RESPONSE_BYTES} bytes",
                    op.name()
                )))
            }
            Err(failure) => {
                let e = StoreError::Transport(TransportError {
                    code: failure.code,
                    detail: failure.detail,
                    attempts: 0,
                });
                if failure.retryable {
                    Answer::Retryable(e)
                } else {
                    Answer::Failed(e)
                }
            }
        }
    }

    /// Sleeps before attempt `next_attempt` according to the retry policy.
    pub fn backoff(&self, next_attempt: u32) {
        let delay = retry::backoff(&self.config.retry, next_attempt, self.platform.random_u64());
        if !delay.is_zero() {
            self.platform.sleep(delay);
        }
    }

    fn request(&self, op: Operation, body: &Bytes) -> Result<HttpRequest, StoreError> {
        let endpoint = &self.config.endpoint;
        let mut request = http::Request::post(endpoint.url())
            .header("host", &endpoint.authority)
            .header("content-type", "application/x-amz-json-1.0")
            .header("content-length", body.len())
            .header("x-amz-target", op.target())
            .body(body.clone())
            .map_err(|e| StoreError::InvalidConfig(format!("cannot build a request: {e}")))?;
        sign_request(
            &mut request,
            &self.credentials.borrow(),
            &self.config.region,
            self.platform.now(),
        )?;
        Ok(request)
    }
}
