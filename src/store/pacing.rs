//! Pacing of Init's writes to what one DynamoDB partition accepts.
//!
//! All items of a kind share one partition key, and a partition takes a bounded
//! number of write units per second. A [`Pacer`] (one per partition key, for
//! one Init) starts open: up to the window of requests in flight, unpaced. The
//! first throttled answer (items left unprocessed, or a throttling error) starts
//! a short probe with one request in flight, which measures the rate the
//! partition accepts. From then on requests are paced by a token bucket at that
//! rate, in the spirit of the AWS SDKs' adaptive retry mode and TCP's AIMD: the
//! rate is cut when an answer is throttled (once per round trip: only answers
//! to requests sent after the last cut count) and grows back while answers
//! come back clean. A cut goes at least to the rate the partition was seen to
//! accept while saturated (every answer throttled, so it had no capacity left
//! at each: what it accepted in between is what it gained).
//!
//! The probe sends one request at a time, each a while after the previous
//! answer: an answer that was refused whole doubles the wait, one accepted
//! whole halves it, and one accepted in part measures the rate: the partition
//! had no capacity left at the previous answer, so what it accepted now is what
//! it gained in between.

use std::time::{Duration, SystemTime};

/// The probe's first wait after an answer.
const PROBE_WAIT: Duration = Duration::from_millis(10);
/// The probe's longest wait.
const PROBE_MAX_WAIT: Duration = Duration::from_secs(2);
/// The least span of saturated answers that measures a rate.
const MEASURE: Duration = Duration::from_millis(20);
/// The factor of a rate cut.
const CUT: f64 = 0.8;
/// The rate set after the probe, as a share of the rate it measured: a little
/// under it, so that the partition's burst capacity can refill.
const MARGIN: f64 = 0.95;
/// Growth of the rate while answers come back clean, per second.
const GROWTH_PER_SECOND: f64 = 0.1;
/// The least rate, in write units per second.
const MIN_RATE: f64 = 1.0;
/// Tokens may accumulate for this long at the current rate (and at least one
/// full batch): short bursts, never a flood after an idle moment.
const BURST: Duration = Duration::from_millis(20);

/// What the pacer allows now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Permit {
    /// Send the batch now.
    Send,
    /// Wait for an answer: the window is full.
    WaitForAnswer,
    /// The rate allows the batch after this long.
    After(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// No throttling seen: the full window, unpaced.
    Open,
    /// Measuring the accepted rate: one request at a time, each `wait`
    /// after the previous answer, which came `last`.
    Probe { wait: Duration, last: SystemTime },
    /// Paced at `rate` write units per second.
    Paced { rate: f64 },
}

/// The pacing state of one partition key during one Init.
#[derive(Debug, Clone)]
pub struct Pacer {
    limit: usize,
    phase: Phase,
    tokens: f64,
    refilled: Option<SystemTime>,
    /// When the probe began or the rate was last cut: answers to requests
    /// sent before carry older news.
    changed: Option<SystemTime>,
    grown: Option<SystemTime>,
    /// The last throttled answer, while no clean one came after it.
    drained: Option<SystemTime>,
    /// Write units accepted, and seconds passed, between throttled answers
    /// since the last clean one.
    saturated: (f64, f64),
}

fn seconds(from: SystemTime, to: SystemTime) -> f64 {
    to.duration_since(from).unwrap_or_default().as_secs_f64()
}

impl Pacer {
    /// A pacer that keeps at most `limit` requests in flight.
    pub fn new(limit: usize) -> Pacer {
        Pacer {
            limit: limit.max(1),
            phase: Phase::Open,
            tokens: 0.0,
            refilled: None,
            changed: None,
            grown: None,
            drained: None,
            saturated: (0.0, 0.0),
        }
    }

    /// The paced rate in write units per second, once one was measured.
    #[cfg(test)]
    fn rate(&self) -> Option<f64> {
        match self.phase {
            Phase::Paced { rate } => Some(rate),
            _ => None,
        }
    }

    /// How many requests may be in flight now.
    pub fn window(&self) -> usize {
        match self.phase {
            Phase::Probe { .. } => 1,
            _ => self.limit,
        }
    }

    /// Whether a batch of `units` write units may be sent at `now` with
    /// `in_flight` requests out; `Send` takes its tokens.
    pub fn permit(&mut self, now: SystemTime, in_flight: usize, units: f64) -> Permit {
        if in_flight >= self.window() {
            return Permit::WaitForAnswer;
        }
        let rate = match self.phase {
            Phase::Open => return Permit::Send,
            Phase::Probe { wait, last } => {
                let due = last + wait;
                return match due.duration_since(now) {
                    Ok(left) if !left.is_zero() => Permit::After(left),
                    _ => Permit::Send,
                };
            }
            Phase::Paced { rate } => rate,
        };
        let cap = units.max(rate * BURST.as_secs_f64());
        if let Some(at) = self.refilled {
            self.tokens = (self.tokens + rate * seconds(at, now)).min(cap);
        }
        self.refilled = Some(now);
        if self.tokens >= units {
            self.tokens -= units;
            Permit::Send
        } else {
            Permit::After(Duration::from_micros(
                ((units - self.tokens) / rate * 1e6) as u64,
            ))
        }
    }

    /// Sends a batch of `units` now whatever the rate says (its tokens are
    /// owed): for when waiting longer would cross the no-progress limit.
    pub fn force(&mut self, units: f64) {
        self.tokens -= units;
    }

    /// Takes an answer at `now` to a request sent at `sent`: `accepted` write
    /// units were written, and `throttled` tells whether any were refused for
    /// capacity.
    pub fn on_answer(&mut self, now: SystemTime, sent: SystemTime, accepted: f64, throttled: bool) {
        let fresh = self.changed.is_none_or(|at| sent >= at);
        let measured = self.measure(now, accepted, throttled);
        match self.phase {
            Phase::Open if throttled => {
                self.phase = Phase::Probe {
                    wait: PROBE_WAIT,
                    last: now,
                };
                self.changed = Some(now);
            }
            Phase::Open => {}
            Phase::Probe { wait, .. } if !fresh => {
                // An answer to a request sent before the probe: it only tells
                // when the partition was last emptied.
                if throttled {
                    self.phase = Phase::Probe { wait, last: now };
                }
            }
            Phase::Probe { wait, .. } if !throttled => {
                // Accepted whole: the partition may take more, sooner.
                self.phase = match wait / 2 {
                    shorter if shorter < Duration::from_millis(1) => Phase::Open,
                    shorter => Phase::Probe {
                        wait: shorter,
                        last: now,
                    },
                };
            }
            Phase::Probe { wait, .. } if accepted <= 0.0 => {
                self.phase = Phase::Probe {
                    wait: (wait * 2).min(PROBE_MAX_WAIT),
                    last: now,
                };
            }
            Phase::Probe { last, .. } => {
                // Accepted in part: what the partition gained since it was
                // emptied at the previous answer.
                let elapsed = seconds(last, now).max(1e-3);
                self.phase = Phase::Paced {
                    rate: (accepted / elapsed * MARGIN).max(MIN_RATE),
                };
                self.tokens = 0.0;
                self.refilled = Some(now);
                self.changed = Some(now);
                self.grown = Some(now);
            }
            Phase::Paced { rate } if throttled => {
                if fresh {
                    let cut = measured.map_or(rate * CUT, |m| (m * MARGIN).min(rate * CUT));
                    self.phase = Phase::Paced {
                        rate: cut.max(MIN_RATE),
                    };
                    self.changed = Some(now);
                }
                self.grown = Some(now);
            }
            Phase::Paced { rate } => {
                let since = self.grown.map_or(0.0, |at| seconds(at, now));
                self.phase = Phase::Paced {
                    rate: rate * (1.0 + GROWTH_PER_SECOND * since),
                };
                self.grown = Some(now);
            }
        }
    }

    /// Follows the answers while the partition is saturated; the rate it
    /// accepted then, once measured over at least [`MEASURE`].
    fn measure(&mut self, now: SystemTime, accepted: f64, throttled: bool) -> Option<f64> {
        if !throttled {
            self.drained = None;
            self.saturated = (0.0, 0.0);
            return None;
        }
        if let Some(at) = self.drained {
            self.saturated.0 += accepted;
            self.saturated.1 += seconds(at, now);
        }
        self.drained = Some(now);
        let (units, span) = self.saturated;
        (span >= MEASURE.as_secs_f64()).then(|| units / span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(millis)
    }

    #[test]
    fn open_until_throttled_then_probes_with_one_request() {
        let mut pacer = Pacer::new(8);
        assert_eq!(pacer.permit(at(0), 7, 25.0), Permit::Send);
        assert_eq!(pacer.permit(at(0), 8, 25.0), Permit::WaitForAnswer);
        pacer.on_answer(at(10), at(10), 25.0, false);
        assert_eq!(pacer.window(), 8);
        pacer.on_answer(at(20), at(20), 5.0, true);
        assert_eq!(pacer.window(), 1);
        assert_eq!(pacer.permit(at(20), 1, 25.0), Permit::WaitForAnswer);
        assert_eq!(
            pacer.permit(at(20), 0, 25.0),
            Permit::After(Duration::from_millis(10))
        );
        assert_eq!(pacer.permit(at(30), 0, 25.0), Permit::Send);
    }

    #[test]
    fn the_probe_backs_off_while_refused_and_measures_a_partial_answer() {
        let mut pacer = Pacer::new(8);
        pacer.on_answer(at(0), at(0), 0.0, true);
        // Refused whole: the wait doubles.
        pacer.on_answer(at(20), at(20), 0.0, true);
        assert_eq!(
            pacer.permit(at(20), 0, 25.0),
            Permit::After(Duration::from_millis(20))
        );
        // 10 units accepted 50 ms after the partition was emptied: 200 per second.
        pacer.on_answer(at(70), at(70), 10.0, true);
        let rate = pacer.rate().expect("paced after a partial answer");
        assert!((rate - 200.0 * MARGIN).abs() < 1e-6, "{rate}");
        assert_eq!(pacer.window(), 8);
        // No tokens yet: 25 units wait 25/rate s; then they are there.
        match pacer.permit(at(70), 0, 25.0) {
            Permit::After(wait) => assert!((wait.as_secs_f64() - 25.0 / rate).abs() < 1e-6),
            other => panic!("{other:?}"),
        }
        assert_eq!(pacer.permit(at(202), 0, 25.0), Permit::Send);
        assert!(matches!(pacer.permit(at(203), 0, 25.0), Permit::After(_)));
    }

    #[test]
    fn clean_probe_answers_shorten_the_wait_until_open_again() {
        let mut pacer = Pacer::new(8);
        pacer.on_answer(at(0), at(0), 0.0, true);
        for i in 1..=4 {
            pacer.on_answer(at(i * 10), at(i * 10), 25.0, false);
        }
        assert_eq!(pacer.window(), 8, "open again");
        assert_eq!(pacer.permit(at(50), 0, 25.0), Permit::Send);
    }

    #[test]
    fn the_rate_is_cut_once_per_round_trip_to_what_the_partition_accepted() {
        let mut pacer = Pacer::new(8);
        pacer.on_answer(at(0), at(0), 0.0, true);
        // Probe: 100 units in the 100 ms since it was emptied: 1,000/s.
        pacer.on_answer(at(100), at(90), 100.0, true);
        let measured = pacer.rate().unwrap();
        assert!((measured - 1000.0 * MARGIN).abs() < 1e-6);
        // Throttled again, by a request sent after that: the cut goes to what
        // was accepted while saturated (110 units in 400 ms), under rate * CUT.
        pacer.on_answer(at(400), at(390), 10.0, true);
        let cut = pacer.rate().unwrap();
        assert!((cut - 110.0 / 0.4 * MARGIN).abs() < 1e-6, "{cut}");
        // An answer to a request sent before that cut does not cut again.
        pacer.on_answer(at(405), at(395), 0.0, true);
        assert_eq!(pacer.rate().unwrap(), cut, "one cut per round trip");
        // Clean answers grow it back.
        pacer.on_answer(at(1405), at(1400), 25.0, false);
        let grown = pacer.rate().unwrap();
        assert!(
            (grown - cut * (1.0 + GROWTH_PER_SECOND)).abs() < 1e-6,
            "{grown}"
        );
        // Without a saturated measure, a cut is a plain CUT.
        pacer.on_answer(at(1500), at(1450), 5.0, true);
        assert!((pacer.rate().unwrap() - grown * CUT).abs() < 1e-6);
    }
}
