//! DynamoDB's JSON protocol: signed requests with retries (`Client`), request
//! bodies (`request`), response decoding (`response`) and error bodies (`error`).

pub mod error;
pub mod redact;
pub mod request;
pub mod response;

#[cfg(test)]
mod fuzz;

use bytes::Bytes;

use crate::config::Config;
use crate::error::{StoreError, TransportError};
use crate::retry;
use crate::transport::signing::sign_request;
use crate::transport::{HttpRequest, Platform, BODY_TOO_LARGE, MAX_RESPONSE_BYTES};

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

/// Sends signed DynamoDB requests through the platform, retrying what the
/// retry policy allows.
pub struct Client<P> {
    config: Config,
    platform: P,
}

impl<P: Platform> Client<P> {
    pub fn new(config: Config, platform: P) -> Self {
        Client { config, platform }
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
        let policy = self.config.retry;
        let bodies: Vec<Bytes> = bodies.into_iter().map(Bytes::from).collect();
        let mut results: Vec<Option<Result<Vec<u8>, StoreError>>> = vec![None; bodies.len()];
        let mut pending: Vec<usize> = (0..bodies.len()).collect();
        let mut attempt = 1;
        while !pending.is_empty() {
            let mut sendable = Vec::with_capacity(pending.len());
            let mut requests = Vec::with_capacity(pending.len());
            for &index in &pending {
                match self.request(op, &bodies[index]) {
                    Ok(request) => {
                        sendable.push(index);
                        requests.push(request);
                    }
                    Err(e) => results[index] = Some(Err(e)),
                }
            }
            let responses = self.platform.send_all(requests, &self.config.timeouts);
            let mut again = Vec::new();
            for (index, outcome) in sendable.into_iter().zip(responses) {
                let last = attempt >= policy.max_attempts;
                match outcome {
                    Ok(response) if response.status().is_success() => {
                        results[index] = Some(Ok(response.into_body()));
                    }
                    Ok(response) => {
                        let mut e = error::service_error(&response);
                        e.message = redact::redact(&e.message, &self.config.credentials);
                        if !last && retry::is_retryable_response(e.status, &e.code) {
                            again.push(index);
                        } else {
                            e.attempts = attempt;
                            results[index] = Some(Err(StoreError::Service(e)));
                        }
                    }
                    Err(failure) if failure.code == BODY_TOO_LARGE => {
                        results[index] = Some(Err(StoreError::malformed(format!(
                            "{} response body is larger than {MAX_RESPONSE_BYTES} bytes",
                            op.name()
                        ))));
                    }
                    Err(failure) => {
                        if !last && failure.retryable {
                            again.push(index);
                        } else {
                            results[index] = Some(Err(StoreError::Transport(TransportError {
                                code: failure.code,
                                detail: failure.detail,
                                attempts: attempt,
                            })));
                        }
                    }
                }
            }
            if !again.is_empty() {
                attempt += 1;
                self.backoff(attempt);
            }
            pending = again;
        }
        results
            .into_iter()
            .map(|r| r.expect("every request has a result"))
            .collect()
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
            &self.config.credentials,
            &self.config.region,
            self.platform.now(),
        )?;
        Ok(request)
    }
}
