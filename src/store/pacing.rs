//! Pacing of Init's writes to what one DynamoDB partition accepts.
//!
//! All items of a kind share one partition key, and a partition takes a bounded
//! number of write units per second. A [`Pacer`] (one per partition key, for
//! one Init) starts open: up to the window of requests in flight, unpaced. The
//! first rejection (items left unprocessed, or a throttling error) starts a
//! short probe with one request in flight, which measures the rate the
//! partition accepts. From then on requests are paced by a token bucket at that
//! rate, in the spirit of the AWS SDKs' adaptive retry mode and TCP's AIMD: the
//! rate is cut when an answer is throttled (once per round trip: only answers
//! to requests sent after the last change count) and grows back while answers
//! come back clean. A cut goes at least to the rate the partition was seen to
//! accept while saturated (every answer throttled, so it had no capacity left
//! at each: what it accepted in between is what it gained).
//!
//! Rejections are a capacity signal only while slowing down lowers them, as TCP
//! BBR tells a full bottleneck from random loss. A partition at its capacity
//! accepts the same write units per second whatever is sent: sending slower
//! raises the share it accepts. Faults that do not depend on the rate (a proxy,
//! a noisy neighbour) keep the same rejected share at any rate: there, each
//! cut would lower what is accepted, and the rate would sink to the floor. So
//! every cut is a trial: the answers to the next [`TRIAL`] requests sent at the
//! lower rate are weighed against the [`RECENT`] answers before it. If the
//! accepted share rose as a partition at its ceiling makes it rise (by at
//! least the square root of the cut's factor), or the rejected share halved,
//! the cut holds. Otherwise the rejections are noise: the rate goes back to
//! where it was before the cut, and their share is learnt: from then on a
//! rejection counts as a capacity signal only when the recent rejected share
//! is well above it ([`NOISE_MARGIN`]), and answers within it grow the rate as
//! clean ones do.
//!
//! Only rejections feed the pacer: a 500, a timeout or a dropped connection is
//! a fault, retried with the retry policy's backoff, not a capacity signal.
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
/// Answers whose rejected share a cut is weighed against.
const RECENT: usize = 8;
/// Answers after a cut that weigh it.
const TRIAL: u32 = 6;
/// Once rejections were found to be noise, a rejection is a capacity signal
/// only when the recent rejected share exceeds their share by this part of it.
const NOISE_MARGIN: f64 = 0.5;

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

/// A cut being weighed: was the partition at its ceiling?
#[derive(Debug, Clone, Copy, PartialEq)]
struct Trial {
    /// The rate before the cut, and after it.
    from: f64,
    to: f64,
    /// When it was cut.
    at: SystemTime,
    /// Answers to requests sent before the cut (the recent ones when it was
    /// cut, and those that came since), and to requests sent after.
    before: Tally,
    after: Tally,
}

/// Write units accepted and rejected in some answers, and how many of those
/// answers there were, and had rejections.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Tally {
    accepted: f64,
    rejected: f64,
    answers: u32,
    rejecting: u32,
}

impl Tally {
    fn add(&mut self, accepted: f64, rejected: f64) {
        self.accepted += accepted;
        self.rejected += rejected;
        self.answers += 1;
        self.rejecting += u32::from(rejected > 0.0);
    }

    /// The rejected share of the write units.
    fn share(&self) -> f64 {
        if self.accepted + self.rejected > 0.0 {
            self.rejected / (self.accepted + self.rejected)
        } else {
            0.0
        }
    }
}

/// The pacing state of one partition key during one Init.
#[derive(Debug, Clone)]
pub struct Pacer {
    limit: usize,
    phase: Phase,
    tokens: f64,
    refilled: Option<SystemTime>,
    /// When the probe began or the rate was last changed: answers to requests
    /// sent before carry older news.
    changed: Option<SystemTime>,
    grown: Option<SystemTime>,
    /// The last throttled answer, while no clean one came after it.
    drained: Option<SystemTime>,
    /// Write units accepted, and seconds passed, between throttled answers
    /// since the last clean one.
    saturated: (f64, f64),
    /// Write units (accepted, rejected) of the latest answers while paced, a
    /// ring written at `answers % RECENT`.
    recent: [(f64, f64); RECENT],
    answers: usize,
    trial: Option<Trial>,
    /// The rejected share found not to fall when the rate was cut.
    noise: f64,
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
            recent: [(0.0, 0.0); RECENT],
            answers: 0,
            trial: None,
            noise: 0.0,
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
    /// units were written and `rejected` were refused (left unprocessed, or the
    /// whole request throttled).
    pub fn on_answer(&mut self, now: SystemTime, sent: SystemTime, accepted: f64, rejected: f64) {
        let fresh = self.changed.is_none_or(|at| sent >= at);
        let throttled = rejected > 0.0;
        if let Phase::Paced { rate } = self.phase {
            return self.on_paced_answer(now, sent, fresh, rate, accepted, rejected);
        }
        // Only the paced rate's cuts use the measure; it is followed from the start.
        self.measure(now, accepted, throttled);
        match self.phase {
            Phase::Open if throttled => {
                self.phase = Phase::Probe {
                    wait: PROBE_WAIT,
                    last: now,
                };
                self.changed = Some(now);
            }
            Phase::Open | Phase::Paced { .. } => {}
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
        }
    }

    /// [`Pacer::on_answer`] while paced at `rate`.
    fn on_paced_answer(
        &mut self,
        now: SystemTime,
        sent: SystemTime,
        fresh: bool,
        rate: f64,
        accepted: f64,
        rejected: f64,
    ) {
        self.recent[self.answers % RECENT] = (accepted, rejected);
        self.answers += 1;
        let mut recent = Tally::default();
        for &(accepted, rejected) in &self.recent[..self.answers.min(RECENT)] {
            recent.add(accepted, rejected);
        }
        let rate = self.weigh_trial(now, sent, rate, accepted, rejected);
        // A rejection within the share found to be noise is no capacity signal.
        let capacity = rejected > 0.0 && recent.share() > self.noise * (1.0 + NOISE_MARGIN);
        let measured = self.measure(now, accepted, capacity);
        if capacity {
            if fresh && self.trial.is_none() {
                let cut = measured
                    .map_or(rate * CUT, |m| (m * MARGIN).min(rate * CUT))
                    .max(MIN_RATE);
                self.phase = Phase::Paced { rate: cut };
                self.changed = Some(now);
                self.trial = Some(Trial {
                    from: rate,
                    to: cut,
                    at: now,
                    before: recent,
                    after: Tally::default(),
                });
            }
            self.grown = Some(now);
        } else {
            let since = self.grown.map_or(0.0, |at| seconds(at, now));
            if let Phase::Paced { rate } = self.phase {
                self.phase = Phase::Paced {
                    rate: rate * (1.0 + GROWTH_PER_SECOND * since),
                };
            }
            self.grown = Some(now);
        }
    }

    /// Counts an answer for the cut on trial; once [`TRIAL`] answers to
    /// requests sent after it came, judges it. The rate after that.
    fn weigh_trial(
        &mut self,
        now: SystemTime,
        sent: SystemTime,
        rate: f64,
        accepted: f64,
        rejected: f64,
    ) -> f64 {
        let Some(mut trial) = self.trial.take() else {
            return rate;
        };
        if sent < trial.at {
            trial.before.add(accepted, rejected);
        } else {
            trial.after.add(accepted, rejected);
        }
        if trial.after.answers < TRIAL {
            self.trial = Some(trial);
            return rate;
        }
        let Trial {
            from,
            to,
            before,
            after,
            ..
        } = trial;
        // At its ceiling a partition accepts as many units as before, so a
        // larger share of fewer; the share of noise stays where it was. Noise
        // is rejections spread over answers before and after the cut.
        let ceiling = 1.0 - after.share() >= (1.0 - before.share()) * (from / to).sqrt() - 1e-9;
        let lowered = after.share() <= before.share() / 2.0;
        let spread = before.rejecting >= 2 && after.rejecting >= 2;
        if ceiling || lowered || !spread {
            return rate;
        }
        self.noise = after.share().min(before.share());
        // Back to the rate from before the cut (with what it has grown since).
        let restored = rate * (from / to).max(1.0);
        self.phase = Phase::Paced { rate: restored };
        self.changed = Some(now);
        restored
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
        pacer.on_answer(at(10), at(10), 25.0, 0.0);
        assert_eq!(pacer.window(), 8);
        pacer.on_answer(at(20), at(20), 5.0, 20.0);
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
        pacer.on_answer(at(0), at(0), 0.0, 25.0);
        // Refused whole: the wait doubles.
        pacer.on_answer(at(20), at(20), 0.0, 25.0);
        assert_eq!(
            pacer.permit(at(20), 0, 25.0),
            Permit::After(Duration::from_millis(20))
        );
        // 10 units accepted 50 ms after the partition was emptied: 200 per second.
        pacer.on_answer(at(70), at(70), 10.0, 15.0);
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
        pacer.on_answer(at(0), at(0), 0.0, 25.0);
        for i in 1..=4 {
            pacer.on_answer(at(i * 10), at(i * 10), 25.0, 0.0);
        }
        assert_eq!(pacer.window(), 8, "open again");
        assert_eq!(pacer.permit(at(50), 0, 25.0), Permit::Send);
    }

    #[test]
    fn the_rate_is_cut_once_per_round_trip_to_what_the_partition_accepted() {
        let mut pacer = Pacer::new(8);
        pacer.on_answer(at(0), at(0), 0.0, 25.0);
        // Probe: 100 units in the 100 ms since it was emptied: 1,000/s.
        pacer.on_answer(at(100), at(90), 100.0, 5.0);
        let measured = pacer.rate().unwrap();
        assert!((measured - 1000.0 * MARGIN).abs() < 1e-6);
        // Throttled again, by a request sent after that: the cut goes to what
        // was accepted while saturated (110 units in 400 ms), under rate * CUT.
        pacer.on_answer(at(400), at(390), 10.0, 15.0);
        let cut = pacer.rate().unwrap();
        assert!((cut - 110.0 / 0.4 * MARGIN).abs() < 1e-6, "{cut}");
        // An answer to a request sent before that cut does not cut again.
        pacer.on_answer(at(405), at(395), 0.0, 25.0);
        assert_eq!(pacer.rate().unwrap(), cut, "one cut per round trip");
        // Clean answers grow it back.
        pacer.on_answer(at(1405), at(1400), 25.0, 0.0);
        let grown = pacer.rate().unwrap();
        assert!(
            (grown - cut * (1.0 + GROWTH_PER_SECOND)).abs() < 1e-6,
            "{grown}"
        );
        // The cut's trial ends clean: the rejections fell, the cut holds.
        for i in 1..TRIAL as u64 {
            pacer.on_answer(at(1405 + i), at(1400 + i), 25.0, 0.0);
        }
        let grown = pacer.rate().unwrap();
        assert!(grown > cut && grown < cut * 1.2, "{grown}");
        // Without a saturated measure, a cut is a plain CUT.
        pacer.on_answer(at(1500), at(1450), 5.0, 20.0);
        assert!((pacer.rate().unwrap() - grown * CUT).abs() < 1e-6);
    }

    /// A pacer paced at 950 units/s after a probe.
    fn paced() -> Pacer {
        let mut pacer = Pacer::new(8);
        pacer.on_answer(at(0), at(0), 0.0, 25.0);
        pacer.on_answer(at(100), at(90), 100.0, 5.0);
        assert!((pacer.rate().unwrap() - 950.0).abs() < 1e-6);
        pacer
    }

    #[test]
    fn rejections_that_slowing_down_does_not_lower_are_noise_and_do_not_cut() {
        let mut pacer = paced();
        // Half of every answer refused, whatever the rate.
        pacer.on_answer(at(110), at(105), 12.0, 13.0);
        let cut = pacer.rate().unwrap();
        assert!(cut <= 950.0 * CUT + 1e-6, "{cut}");
        // An answer to a request sent before the cut: the share before it.
        pacer.on_answer(at(111), at(104), 12.0, 13.0);
        // On trial: further refusals do not cut again.
        for i in 0..TRIAL as u64 - 1 {
            pacer.on_answer(at(120 + i * 10), at(115 + i * 10), 12.0, 13.0);
            assert_eq!(pacer.rate().unwrap(), cut);
        }
        // The share did not fall: the rate goes back to where it was (and
        // grows, as the answer is within the noise).
        pacer.on_answer(at(200), at(195), 12.0, 13.0);
        let restored = pacer.rate().unwrap();
        assert!((950.0..960.0).contains(&restored), "{restored}");
        // Answers within that share no longer cut; they grow the rate.
        for i in 0..20 {
            pacer.on_answer(at(300 + i * 100), at(295 + i * 100), 12.0, 13.0);
        }
        let grown = pacer.rate().unwrap();
        assert!(grown > 950.0 * 1.1, "{grown}");
        // Every answer refused whole is well above the noise: a cut.
        for i in 0..8 {
            pacer.on_answer(at(2400 + i * 10), at(2395 + i * 10), 0.0, 25.0);
        }
        assert!(pacer.rate().unwrap() < grown * 0.85);
    }

    #[test]
    fn a_cut_holds_when_the_partition_accepts_as_much_at_the_lower_rate() {
        let mut pacer = paced();
        // Sending at 950 units/s to a partition that takes 475: half refused,
        // in the answer that cuts and in the five sent before the cut.
        pacer.on_answer(at(160), at(155), 12.5, 12.5);
        let cut = pacer.rate().unwrap();
        assert!(cut < 950.0 * CUT, "{cut}");
        for i in 0..5 {
            pacer.on_answer(at(161 + i), at(150 + i), 12.5, 12.5);
        }
        // At the lower rate the partition accepts the same 475 units a
        // second, a larger share of what is sent: the cut holds, and as the
        // rate is still over 475, the last answer cuts again.
        let accepted = 25.0 * 475.0 / cut;
        for i in 0..TRIAL as u64 {
            pacer.on_answer(
                at(200 + i * 10),
                at(195 + i * 10),
                accepted,
                25.0 - accepted,
            );
        }
        assert!(pacer.rate().unwrap() <= cut * CUT, "{:?}", pacer.rate());
        assert_eq!(pacer.noise, 0.0);
    }
}
