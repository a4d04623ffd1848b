//! The batch writer: BatchWriteItem in chunks of 25, several chunks in flight,
//! unprocessed items re-sent with backoff until none remain.

use serde_json::Value;

use crate::dynamo::request::{self, BATCH_WRITE_LIMIT};
use crate::dynamo::response;
use crate::dynamo::{Client, Operation};
use crate::error::{ServiceError, StoreError};
use crate::transport::Platform;

/// Writes the requests with BatchWriteItem in chunks of 25, up to
/// `init_concurrency` chunks in flight (a new one as soon as one is answered),
/// and re-sends unprocessed items with
/// backoff until none remain. Returns only when every request was written, so
/// a caller that writes in steps knows each step is in the table before the next.
pub fn write_all<P: Platform>(client: &Client<P>, requests: Vec<Value>) -> Result<(), StoreError> {
    let table = &client.config().table;
    let policy = client.config().retry;
    let concurrency = client.config().init_concurrency;
    let mut pending = requests;
    let mut attempt = 1;
    while !pending.is_empty() {
        let mut unprocessed = Vec::new();
        let chunks: Vec<&[Value]> = pending.chunks(BATCH_WRITE_LIMIT).collect();
        let answers =
            client.call_window(Operation::BatchWriteItem, chunks.len(), concurrency, |i| {
                request::batch_write(table, chunks[i])
            })?;
        for answer in answers {
            unprocessed.extend(response::unprocessed_items(&answer, table)?);
        }
        if unprocessed.is_empty() {
            return Ok(());
        }
        if attempt >= policy.max_attempts {
            return Err(StoreError::Service(ServiceError {
                code: "UnprocessedItems".into(),
                message: format!(
                    "BatchWriteItem left {} write request(s) unprocessed after {attempt} attempts",
                    unprocessed.len()
                ),
                status: 200,
                request_id: None,
                attempts: attempt,
            }));
        }
        attempt += 1;
        client.backoff(attempt);
        pending = unprocessed;
    }
    Ok(())
}
