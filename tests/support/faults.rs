//! Fault scripts for the proxy (`proxy.rs`) that rewrite requests, so only in
//! front of dynalite (moto checks signatures): batches answered with items
//! held back, and the fault mix of issue 27. Shared by the tests and the
//! benchmark.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::proxy::{Action, Request};

/// Forwards a BatchWriteItem without its last `hold` write requests and lists
/// them as UnprocessedItems in the answer, as DynamoDB does when throttling.
pub fn hold_back(request: &Request, hold: usize) -> Action {
    let mut body = request.json();
    let (table, writes) = {
        let items = body["RequestItems"].as_object_mut().unwrap();
        let (table, writes) = items.iter_mut().next().unwrap();
        (table.clone(), writes.as_array_mut().unwrap())
    };
    let keep = writes
        .len()
        .saturating_sub(hold)
        .max(if writes.len() > hold { 1 } else { 0 });
    let held: Vec<Value> = writes.split_off(keep);
    if writes.is_empty() {
        return Action::Respond(
            200,
            json!({ "UnprocessedItems": { table: held } }).to_string(),
        );
    }
    let forwarded = serde_json::to_vec(&body).unwrap();
    Action::Rewrite(
        forwarded,
        Box::new(move |answer| {
            let mut answer: Value = serde_json::from_slice(&answer).unwrap();
            answer["UnprocessedItems"] = json!({ table: held });
            serde_json::to_vec(&answer).unwrap()
        }),
    )
}

/// The fault mix of issue 27, none of it depending on the rate: every 7th
/// request a ThrottlingException, every 11th a 500, and 3 in 5 BatchWriteItem
/// requests of more than 2 items come back with half their items unprocessed.
/// Counts the write requests BatchWriteItem requests carried, and those
/// refused (each needs one more sending).
pub fn fault_mix(
    received: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
) -> impl FnMut(&Request) -> Action + Send {
    let (mut n, mut batches) = (0, 0);
    move |r: &Request| {
        n += 1;
        let writes = if r.op == "BatchWriteItem" {
            let body = r.json();
            let (_, writes) = body["RequestItems"]
                .as_object()
                .unwrap()
                .iter()
                .next()
                .unwrap();
            writes.as_array().unwrap().len()
        } else {
            0
        };
        received.fetch_add(writes, Ordering::SeqCst);
        if n % 7 == 0 || n % 11 == 0 {
            refused.fetch_add(writes, Ordering::SeqCst);
            return match n % 7 {
                0 => Action::Respond(400, r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#.into()),
                _ => Action::Respond(500, r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"boom"}"#.into()),
            };
        }
        if writes > 2 {
            batches += 1;
            if batches % 5 < 3 {
                refused.fetch_add(writes / 2, Ordering::SeqCst);
                return hold_back(r, writes / 2);
            }
        }
        Action::Forward
    }
}
