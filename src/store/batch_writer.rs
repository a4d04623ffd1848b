//! The batch writer: Init's writes to one partition key, in BatchWriteItem
//! requests of up to 25, with at most `init-concurrency` requests in flight
//! (first attempts and re-sends together), paced by the partition's
//! [`Pacer`]. Unprocessed items and throttled requests are sent again as soon
//! as the pacer allows, for as long as items keep being accepted: the writer
//! gives up only when none was accepted for `init-no-progress-ms`, or on an
//! error another attempt cannot fix (other retryable errors, such as 5xx, get
//! the retry policy's attempts, with its backoff, and are not shown to the
//! pacer: they are faults, not a sign of the partition's capacity).

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::Value;

use super::pacing::{Pacer, Permit};
use crate::dynamo::request::{self, BATCH_WRITE_LIMIT};
use crate::dynamo::response;
use crate::dynamo::{Answer, Client, NextBody, Operation};
use crate::error::{ServiceError, StoreError};
use crate::retry;
use crate::transport::Platform;

/// What one write of a batch of requests cost.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteStats {
    /// BatchWriteItem requests sent.
    pub requests: u32,
    /// Write requests sent, re-sends included.
    pub items_sent: u32,
    /// Requests answered with items left unprocessed, or throttled.
    pub throttled: u32,
}

/// Write units a write request costs: one per KiB of its item (its JSON and
/// about 100 bytes of keys and names), at least one.
fn units(request: &Value) -> f64 {
    let json = request["PutRequest"]["Item"]["item"]["S"]
        .as_str()
        .map_or(0, str::len);
    ((json + 100) as f64 / 1024.0).ceil()
}

/// Requests to send in one BatchWriteItem, and what became of earlier tries.
struct Batch {
    requests: Vec<Value>,
    units: f64,
    /// Attempts that failed with a retryable error other than throttling.
    failures: u32,
    /// Not to be sent before this (backoff after such a failure).
    not_before: Option<SystemTime>,
    /// When it was last sent.
    sent: Option<SystemTime>,
}

impl Batch {
    fn new(requests: Vec<Value>) -> Batch {
        Batch {
            units: requests.iter().map(units).sum(),
            requests,
            failures: 0,
            not_before: None,
            sent: None,
        }
    }
}

/// Writes every request, paced by `pacer`. Returns only when every request was
/// written, so a caller that writes in steps knows each step is in the table
/// before the next.
pub fn write_all<P: Platform>(
    client: &Client<P>,
    pacer: &mut Pacer,
    requests: Vec<Value>,
) -> Result<WriteStats, StoreError> {
    let writer = RefCell::new(Writer {
        client,
        pacer,
        queue: requests
            .chunks(BATCH_WRITE_LIMIT)
            .map(|chunk| Batch::new(chunk.to_vec()))
            .collect(),
        in_flight: Vec::new(),
        stats: WriteStats::default(),
        failure: None,
        progress: client.platform().now(),
        refusal: None,
    });
    // The window calls one closure at a time, never one inside the other.
    client.window(
        Operation::BatchWriteItem,
        client.config().init_concurrency,
        &mut |out| writer.borrow_mut().next(out),
        &mut |tag, answer| writer.borrow_mut().answered(tag, answer),
    );
    let writer = writer.into_inner();
    match writer.failure {
        Some(e) => Err(e),
        None => Ok(writer.stats),
    }
}

/// The state of one [`write_all`].
struct Writer<'a, P> {
    client: &'a Client<P>,
    pacer: &'a mut Pacer,
    /// Batches to send; re-sends go to the front.
    queue: Vec<Batch>,
    /// Batches sent, by tag; `None` once answered.
    in_flight: Vec<Option<Batch>>,
    stats: WriteStats,
    failure: Option<StoreError>,
    /// When an item was last accepted (or the write started).
    progress: SystemTime,
    /// The code of the last throttling error answered, if any.
    refusal: Option<String>,
}

impl<P: Platform> Writer<'_, P> {
    /// The next batch to send, given `out` requests in flight; sleeps when the
    /// pacer or a backoff asks for it and nothing is in flight.
    fn next(&mut self, out: usize) -> NextBody {
        let config = self.client.config();
        let platform = self.client.platform();
        loop {
            if self.failure.is_some() || self.queue.is_empty() {
                return if out > 0 {
                    NextBody::Wait(None)
                } else {
                    NextBody::Done
                };
            }
            let now = platform.now();
            let idle = now.duration_since(self.progress).unwrap_or_default();
            if idle >= config.init_no_progress {
                self.failure = Some(no_progress(
                    config.init_no_progress,
                    &self.queue,
                    self.refusal.as_deref(),
                ));
                continue;
            }
            let patience = config.init_no_progress - idle;
            // The first batch whose backoff is over (re-sends come first).
            let ready = self
                .queue
                .iter()
                .position(|b| b.not_before.is_none_or(|at| at <= now));
            let Some(index) = ready else {
                let wake = self.queue.iter().filter_map(|b| b.not_before).min();
                let wait = wake.map_or(Duration::ZERO, |at| {
                    at.duration_since(now).unwrap_or_default()
                });
                if out > 0 {
                    return NextBody::Wait(Some(wait));
                }
                platform.sleep(wait.min(patience));
                continue;
            };
            let units = self.queue[index].units;
            let permit = match self.pacer.permit(now, out, units) {
                // Waiting would cross the no-progress limit: send after half
                // the patience left, so an Init fails only when the partition
                // accepts nothing (a few requests, halving the wait each time).
                Permit::After(wait) if out == 0 && wait * 2 >= patience => {
                    platform.sleep(patience / 2);
                    self.pacer.force(units);
                    Permit::Send
                }
                permit => permit,
            };
            match permit {
                Permit::Send => {
                    let mut batch = self.queue.remove(index);
                    batch.sent = Some(now);
                    let body = request::batch_write(&config.table, &batch.requests);
                    self.stats.requests += 1;
                    self.stats.items_sent += batch.requests.len() as u32;
                    let tag = self.in_flight.len();
                    self.in_flight.push(Some(batch));
                    return NextBody::Send(tag, Bytes::from(body));
                }
                Permit::WaitForAnswer => return NextBody::Wait(None),
                // The rate allows another request before the next answer may
                // come: wake for it (with long round trips, waiting for an
                // answer would send less than the rate).
                Permit::After(wait) if out > 0 => return NextBody::Wait(Some(wait)),
                Permit::After(wait) => {
                    // A little jitter, so that writers sharing a partition do
                    // not move in step.
                    let jitter = wait / 10_000 * (platform.random_u64() % 1000) as u32;
                    platform.sleep((wait + jitter).min(patience));
                }
            }
        }
    }

    /// Takes the answer to the batch sent with `tag`.
    fn answered(&mut self, tag: usize, answer: Answer) {
        let Some(mut batch) = self.in_flight.get_mut(tag).and_then(Option::take) else {
            return;
        };
        let config = self.client.config();
        let platform = self.client.platform();
        let now = platform.now();
        let sent = batch.sent.unwrap_or(now);
        match answer {
            Answer::Body(body) => match response::unprocessed_items(&body, &config.table) {
                Ok(left) => {
                    let left_units: f64 = left.iter().map(units).sum();
                    let accepted = batch.units - left_units;
                    if batch.requests.len() > left.len() {
                        self.progress = now;
                    }
                    self.pacer
                        .on_answer(now, sent, accepted.max(0.0), left_units);
                    if !left.is_empty() {
                        self.stats.throttled += 1;
                        self.queue.insert(0, Batch::new(left));
                    }
                }
                Err(e) => {
                    self.failure.get_or_insert(e);
                }
            },
            Answer::Throttled(e) => {
                self.refusal = Some(e.code);
                self.stats.throttled += 1;
                self.pacer.on_answer(now, sent, 0.0, batch.units);
                self.queue.insert(0, batch);
            }
            Answer::Retryable(e) => {
                batch.failures += 1;
                let attempts = batch.failures;
                if attempts >= config.retry.max_attempts {
                    self.failure.get_or_insert(e.after(attempts));
                } else {
                    let delay = retry::backoff(&config.retry, attempts + 1, platform.random_u64());
                    batch.not_before = Some(now + delay);
                    self.queue.insert(0, batch);
                }
            }
            Answer::Failed(e) => {
                self.failure.get_or_insert(e.after(batch.failures + 1));
            }
        }
    }
}

/// The error of a write that saw no item accepted for `limit`; `refusal` is
/// the last throttling error code answered.
fn no_progress(limit: Duration, queue: &[Batch], refusal: Option<&str>) -> StoreError {
    let left: usize = queue.iter().map(|b| b.requests.len()).sum();
    StoreError::Service(ServiceError {
        code: "UnprocessedItems".into(),
        message: format!(
            "BatchWriteItem accepted no item for {} ms (init-no-progress-ms); {left} write \
             request(s) were not written (last refusal: {})",
            limit.as_millis(),
            refusal.unwrap_or("items left unprocessed")
        ),
        status: 200,
        request_id: None,
        attempts: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{config, ok, FakePlatform, Sent};
    use serde_json::json;
    use std::cell::Cell;
    use std::rc::Rc;

    /// `n` put requests of about 900 bytes (one write unit each).
    fn puts(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| {
                let key = format!("flag-{i:05}");
                let item = json!({"key": key, "version": 1, "pad": "x".repeat(820)}).to_string();
                request::put_request(request::item("features", &key, 1, &item))
            })
            .collect()
    }

    /// A partition as AWS runs one: a token bucket of `rate` write units per
    /// second holding at most `burst` seconds of them, full at the start. What
    /// does not fit comes back unprocessed; a request with nothing accepted
    /// gets ProvisionedThroughputExceededException.
    fn partition(
        clock: Rc<Cell<Duration>>,
        rate: f64,
        burst: f64,
    ) -> impl FnMut(&Sent) -> crate::testing::Answer {
        let mut tokens = rate * burst;
        let mut last = Duration::ZERO;
        move |sent: &Sent| {
            let now = clock.get();
            tokens = (tokens + rate * (now - last).as_secs_f64()).min(rate * burst);
            last = now;
            let requests = sent.body["RequestItems"]["tbl"].as_array().unwrap().clone();
            let fits = (tokens.floor() as usize).min(requests.len());
            tokens -= fits as f64;
            if fits == 0 {
                return crate::testing::error(400, "ProvisionedThroughputExceededException");
            }
            ok(&json!({ "UnprocessedItems": { "tbl": &requests[fits..] } }).to_string())
        }
    }

    /// Writes `items` puts through a server answering with `answer`, on a
    /// fake clock: the stats, the items the server saw, and the seconds taken.
    fn run(
        items: usize,
        clock: Rc<Cell<Duration>>,
        answer: impl FnMut(&Sent) -> crate::testing::Answer,
    ) -> (WriteStats, usize, f64) {
        let platform = FakePlatform::with_clock(clock.clone(), answer);
        let client = Client::new(config("", 5, 8), platform);
        let mut pacer = Pacer::new(8);
        let stats = write_all(&client, &mut pacer, puts(items)).unwrap();
        let written: usize = client
            .platform()
            .sent
            .borrow()
            .iter()
            .filter(|s| s.op == "BatchWriteItem")
            .map(|s| s.body["RequestItems"]["tbl"].as_array().unwrap().len())
            .sum();
        (stats, written, clock.get().as_secs_f64())
    }

    #[test]
    fn a_throttling_partition_gets_every_item_near_its_rate_with_little_resending() {
        for rate in [200.0, 1_000.0, 5_000.0] {
            let items = 6_000;
            let clock = Rc::new(Cell::new(Duration::ZERO));
            let (stats, written, wall) = run(items, clock.clone(), partition(clock, rate, 1.0));
            assert_eq!(written as u32, stats.items_sent);
            // The physical bound: the items beyond the burst at the rate.
            let bound = items as f64 / rate - 1.0;
            let amplification = f64::from(stats.items_sent) / items as f64;
            let throttled = f64::from(stats.throttled) / f64::from(stats.requests);
            eprintln!(
                "{rate} units/s, {items} items: {wall:.2} s (bound {bound:.2}), \
                 {amplification:.3}x sent, {:.1}% of {} requests throttled",
                throttled * 100.0,
                stats.requests
            );
            assert!(wall <= bound * 1.25, "{wall} s against {bound} s");
            assert!(amplification <= 1.1, "{amplification}");
            // Paced at the partition's capacity, a share of the requests
            // comes back with a few items left (each a small re-send).
            assert!(throttled < 0.25, "{throttled}");
        }
    }

    /// Faults that do not depend on the rate: every 7th request a
    /// ThrottlingException, every 11th a 500, and 3 in 5 batches of more than
    /// 2 items back with their second half unprocessed. Counts the write
    /// requests refused (each needs one more sending) and every key accepted.
    fn fault_mix(
        refused: Rc<Cell<usize>>,
        stored: Rc<RefCell<std::collections::BTreeSet<String>>>,
    ) -> impl FnMut(&Sent) -> crate::testing::Answer {
        let (mut n, mut batches) = (0, 0);
        move |sent: &Sent| {
            n += 1;
            let requests = sent.body["RequestItems"]["tbl"].as_array().unwrap();
            if n % 7 == 0 || n % 11 == 0 {
                refused.set(refused.get() + requests.len());
                return match n % 7 {
                    0 => crate::testing::error(400, "ThrottlingException"),
                    _ => crate::testing::error(500, "InternalServerError"),
                };
            }
            let mut keep = requests.len();
            if requests.len() > 2 {
                batches += 1;
                if batches % 5 < 3 {
                    keep -= requests.len() / 2;
                }
            }
            for r in &requests[..keep] {
                let key = r["PutRequest"]["Item"]["key"]["S"].as_str().unwrap();
                stored.borrow_mut().insert(key.to_string());
            }
            refused.set(refused.get() + requests.len() - keep);
            ok(&json!({ "UnprocessedItems": { "tbl": &requests[keep..] } }).to_string())
        }
    }

    #[test]
    fn faults_that_do_not_depend_on_the_rate_do_not_slow_the_writes_down() {
        let items = 420;
        let (clean_stats, _, clean) = run(items, Rc::default(), |s: &Sent| {
            let n = s.body["RequestItems"]["tbl"].as_array().unwrap().len();
            assert!(n <= BATCH_WRITE_LIMIT);
            ok("{}")
        });
        let refused = Rc::new(Cell::new(0));
        let stored = Rc::new(RefCell::new(std::collections::BTreeSet::new()));
        let (stats, written, wall) = run(
            items,
            Rc::default(),
            fault_mix(refused.clone(), stored.clone()),
        );
        eprintln!(
            "fault mix, {items} items: {wall:.3} s ({clean:.3} s clean), {} requests \
             ({} clean), {written} write requests sent, {} refused",
            stats.requests,
            clean_stats.requests,
            refused.get()
        );
        assert_eq!(stored.borrow().len(), items, "every item stored");
        // Each refused write request was sent once more, and no other.
        assert_eq!(written, items + refused.get());
        // Paced near the probe's measure (about 25 units per 10 ms wait), not
        // cut towards one unit a second.
        assert!(wall < 2.0, "{wall} s");
    }
}
