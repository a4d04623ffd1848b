//! DynamoDB's JSON protocol: signed requests with retries (`Client`), request
//! bodies (`request`), response decoding (`response`) and error bodies (`error`).

pub mod error;
pub mod redact;
pub mod request;
pub mod response;

#[cfg(test)]
mod fuzz;

use std::cell::RefCell;

use bytes::Bytes;

use crate::config::{Config, Credentials};
use crate::error::{StoreError, TransportError};
use crate::retry;
use crate::transport::signing::sign_request;
use crate::transport::{
    HttpRequest, HttpResponse, Platform, TransportFailure, BODY_TOO_LARGE, MAX_RESPONSE_BYTES,
};

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

    /// `count` calls of one operation with at most `limit` in flight, the next
    /// one sent as soon as one is answered; `body(i)` makes the i-th body when it
    /// is sent. Calls to retry are sent again after the window, in rounds with
    /// backoff, while the policy allows. The answers in order, or the first
    /// failure: after it, no new call is started.
    pub fn call_window(
        &self,
        op: Operation,
        count: usize,
        limit: usize,
        body: impl Fn(usize) -> Vec<u8>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let answers: RefCell<Vec<Option<Vec<u8>>>> = RefCell::new(vec![None; count]);
        let failure: RefCell<Option<StoreError>> = RefCell::new(None);
        let mut retry = Vec::new();
        let mut started = 0;
        let mut next = || {
            if started == count || failure.borrow().is_some() {
                return None;
            }
            let index = started;
            started += 1;
            match self.request(op, &Bytes::from(body(index))) {
                Ok(request) => Some((index, request)),
                Err(e) => {
                    failure.borrow_mut().get_or_insert(e);
                    None
                }
            }
        };
        let mut done = |index: usize, outcome| match self.classify(op, outcome, 1) {
            Outcome::Done(Ok(answer)) => answers.borrow_mut()[index] = Some(answer),
            Outcome::Done(Err(e)) => {
                failure.borrow_mut().get_or_insert(e);
            }
            Outcome::Retry => retry.push(index),
        };
        self.platform
            .send_window(limit, &self.config.timeouts, &mut next, &mut done);
        if let Some(e) = failure.into_inner() {
            return Err(e);
        }
        let mut answers = answers.into_inner();
        if !retry.is_empty() {
            self.backoff(2);
            let again = retry
                .into_iter()
                .map(|index| (index, Bytes::from(body(index))))
                .collect();
            for (index, result) in self.call_rounds(op, again, 2) {
                answers[index] = Some(result?);
            }
        }
        Ok(answers
            .into_iter()
            .map(|a| a.expect("every call was answered"))
            .collect())
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
        match outcome {
            Ok(response) if response.status().is_success() => {
                Outcome::Done(Ok(response.into_body()))
            }
            Ok(response) => {
                let mut e = error::service_error(&response);
                e.message = redact::redact(&e.message, &self.credentials.borrow());
                if !last && retry::is_retryable_response(e.status, &e.code) {
                    Outcome::Retry
                } else {
                    e.attempts = attempt;
                    Outcome::Done(Err(StoreError::Service(e)))
                }
            }
            Err(failure) if failure.code == BODY_TOO_LARGE => {
                Outcome::Done(Err(StoreError::malformed(format!(
                    "{} response body is larger than {MAX_RESPONSE_BYTES} bytes",
                    op.name()
                ))))
            }
            Err(failure) if !last && failure.retryable => Outcome::Retry,
            Err(failure) => Outcome::Done(Err(StoreError::Transport(TransportError {
                code: failure.code,
                detail: failure.detail,
                attempts: attempt,
            }))),
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
