//! Pacing of Init's writes to what one DynamoDB partition accepts.
//!
//! All items of a kind share one partition key, and a partition takes a bounded
//! number of write units per second. A [`Pacer`] (one per partition key, for
//! one Init) starts open: up to the window of requests in flight, unpaced. The
//! first rejection (items left unprocessed, or a throttling error) starts a
//! short probe with one request in flight. An answer refused whole doubles the
//! probe's wait, one accepted whole halves it, and one accepted in part
//! measures the rate: the partition had no capacity left at the previous
//! answer, so what it accepted now is what it gained in between (and it took
//! at least what the probe had accepted: one refusing at random was not
//! emptied). A probe whose wait ran out without a refusal paces at what it
//! sent, doubling the rate with each round of clean answers until the
//! partition refuses again: never the open window again, whose burst it
//! refused.
//!
//! From then on requests are paced by a token bucket, and the answers to the
//! requests sent since the rate last changed are weighed in rounds of
//! [`ROUND`] answers (of [`SHORT_ROUND`] when more than half of what they
//! sent was refused). The rule, as TCP BBR tells a full bottleneck from random
//! loss and the AWS SDKs' adaptive mode moves only on throttling:
//! - Pace by what the partition is measured to accept: from the first request
//!   of a round that was refused on (when the partition had no capacity left,
//!   whatever it had stored), the write units per second sent times the share
//!   accepted. The times are those the requests were sent at, the pacer's own,
//!   steadier than those of the answers.
//! - A round whose rejected share stays within the share learnt as noise
//!   (none at first) grows the rate: by [`REGROWTH`] a round while under the
//!   accepted rate last measured (times [`MARGIN`]), else by
//!   [`GROWTH_PER_SECOND`], or, while doubling, twofold; never past twice
//!   what the round sent (when the window or backoffs sent less, the rate
//!   would mean nothing).
//! - A round with more rejections (in two answers at least) cuts the rate, from
//!   what it sent, to what the partition accepted times [`MARGIN`] (measured
//!   while saturated, or over the whole round if that is more: a few answers
//!   measure little), by a factor between [`DEEPEST_CUT`] and [`CUT`]. A round
//!   that had nothing accepted starts a probe again.
//! - The round after a cut weighs it. A partition at its capacity accepts as
//!   many units a second at any sending rate above it, so slowing down leaves
//!   its accepted rate where it was, or ends the rejections. Faults that do not
//!   depend on the rate lower the accepted rate with it. If the accepted rate
//!   fell by more than the square root of the cut's factor, the rejections
//!   were noise: the rate goes back to where it was before the cut, their share
//!   is learnt (from then on only a round whose share exceeds it by
//!   [`NOISE_MARGIN`] of it is a capacity signal), and the rate doubles from
//!   there, as the capacity is not known.
//! - The first cut after doubling from a clean probe is not weighed: the
//!   partition took everything at half that rate, and what it refuses now is
//!   the end of what it had stored.
//!
//! Only rejections feed the pacer: a 500, a timeout or a dropped connection is
//! a fault, retried with the retry policy's backoff, not a capacity signal.

use std::time::{Duration, SystemTime};

/// The probe's first wait after an answer.
const PROBE_WAIT: Duration = Duration::from_millis(10);
/// The probe's longest wait.
const PROBE_MAX_WAIT: Duration = Duration::from_secs(2);
/// The least factor of a rate cut, and the greatest.
const CUT: f64 = 0.8;
const DEEPEST_CUT: f64 = 0.5;
/// The rate set from a measure of what the partition accepts, as a share of
/// it: a little under it, so that the partition's burst capacity can refill.
const MARGIN: f64 = 0.95;
/// Growth of the rate while answers come back clean, per second.
const GROWTH_PER_SECOND: f64 = 0.1;
/// Growth per round of clean answers while under the accepted rate last
/// measured.
const REGROWTH: f64 = 1.25;
/// The least rate, in write units per second.
const MIN_RATE: f64 = 1.0;
/// Tokens may accumulate for this long at the current rate (and at least one
/// full batch): short bursts, never a flood after an idle moment.
const BURST: Duration = Duration::from_millis(20);
/// Answers in a round.
const ROUND: usize = 8;
/// A round ends early after this many answers when more than half of what
/// they sent was refused.
const SHORT_ROUND: usize = 4;
/// Once rejections were found to be noise, a round is a capacity signal only
/// when its rejected share exceeds theirs by this part of it.
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

/// The answers of one round, as (when its request was sent, write units
/// accepted, write units rejected).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Round {
    answers: [(SystemTime, f64, f64); ROUND],
    len: usize,
}

impl Round {
    const EMPTY: Round = Round {
        answers: [(SystemTime::UNIX_EPOCH, 0.0, 0.0); ROUND],
        len: 0,
    };

    fn add(&mut self, sent: SystemTime, accepted: f64, rejected: f64) {
        if let Some(slot) = self.answers.get_mut(self.len) {
            *slot = (sent, accepted, rejected);
            self.len += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = (SystemTime, f64, f64)> + '_ {
        self.answers[..self.len].iter().copied()
    }

    /// Write units (accepted, rejected) in the answers.
    fn units(&self) -> (f64, f64) {
        self.iter()
            .fold((0.0, 0.0), |(a, r), (_, accepted, rejected)| {
                (a + accepted, r + rejected)
            })
    }

    /// The rejected share of the write units.
    fn share(&self) -> f64 {
        let (accepted, rejected) = self.units();
        if accepted + rejected > 0.0 {
            rejected / (accepted + rejected)
        } else {
            0.0
        }
    }

    fn rejecting(&self) -> usize {
        self.iter()
            .filter(|&(_, _, rejected)| rejected > 0.0)
            .count()
    }

    /// Write units per second sent in the requests sent from `from` on
    /// (the pacer's own times, steadier than those of the answers), and the
    /// share of them accepted.
    fn sent_rate(&self, from: SystemTime) -> Option<(f64, f64)> {
        let (mut first, mut last) = ((from, 0.0), from);
        let (mut accepted, mut units) = (0.0, 0.0);
        for (sent, a, r) in self.iter().filter(|&(sent, ..)| sent >= from) {
            accepted += a;
            units += a + r;
            if sent <= first.0 {
                first = (sent, a + r);
            }
            last = last.max(sent);
        }
        let span = seconds(first.0, last);
        (span >= 1e-3 && units > 0.0).then(|| ((units - first.1) / span, accepted / units))
    }

    /// Write units per second sent in the round.
    fn send_rate(&self) -> Option<f64> {
        let from = self.iter().map(|(sent, ..)| sent).min()?;
        Some(self.sent_rate(from)?.0)
    }

    /// Write units accepted per second once the partition had no capacity
    /// left (whatever it had stored before): from the first request refused
    /// on, the rate they were sent at times the share accepted.
    fn accepted_rate(&self) -> Option<f64> {
        let from = self
            .iter()
            .filter(|&(_, _, rejected)| rejected > 0.0)
            .map(|(sent, ..)| sent)
            .min()?;
        let saturated = self.iter().filter(|&(sent, ..)| sent >= from).count();
        let (rate, accepted) = self.sent_rate(from)?;
        (saturated >= SHORT_ROUND - 1).then_some(rate * accepted)
    }

    fn done(&self) -> bool {
        self.len >= ROUND || (self.len >= SHORT_ROUND && self.share() > 0.5)
    }
}

/// Why the rate is doubling.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Doubling {
    /// A probe was never refused: the partition took what it sent.
    AfterProbe,
    /// A cut was found to lower only what the partition accepted: the
    /// rejections were noise, and the capacity is not known.
    AfterNoise,
}

/// A cut being weighed: the rate before it and after, and what the partition
/// accepted in the round that made it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cut {
    from: f64,
    to: f64,
    accepted_rate: Option<f64>,
    share: f64,
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
    /// Units the probe's requests had accepted whole.
    probed: f64,
    /// The rate doubles with each round of clean answers (or answers within
    /// the noise) until the partition refuses more, and why.
    doubling: Option<Doubling>,
    /// The answers to requests sent since the rate last changed.
    round: Round,
    /// The last cut, until the round after it weighed it.
    cut: Option<Cut>,
    /// The rejected share found not to fall when the rate was cut.
    noise: f64,
    /// The accepted rate last measured while the partition refused.
    ceiling: f64,
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
            probed: 0.0,
            doubling: None,
            round: Round::EMPTY,
            cut: None,
            noise: 0.0,
            ceiling: 0.0,
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
        match self.phase {
            Phase::Open if throttled => self.probe(now),
            Phase::Open => {}
            Phase::Paced { .. } if !fresh => {}
            Phase::Paced { rate } => {
                self.round.add(sent, accepted, rejected);
                if self.round.done() {
                    self.end_round(now, rate);
                }
            }
            Phase::Probe { wait, .. } if !fresh => {
                // An answer to a request sent before the probe: it only tells
                // when the partition was last emptied.
                if throttled {
                    self.phase = Phase::Probe { wait, last: now };
                }
            }
            Phase::Probe { wait, .. } if !throttled => {
                // Accepted whole: the partition may take more, sooner.
                self.probed += accepted;
                let shorter = wait / 2;
                if shorter >= Duration::from_millis(1) {
                    self.phase = Phase::Probe {
                        wait: shorter,
                        last: now,
                    };
                } else {
                    let began = self.changed.unwrap_or(now);
                    self.pace(now, self.probed / seconds(began, now).max(1e-3));
                    self.doubling = Some(Doubling::AfterProbe);
                }
            }
            Phase::Probe { wait, .. } if accepted <= 0.0 => {
                self.phase = Phase::Probe {
                    wait: (wait * 2).min(PROBE_MAX_WAIT),
                    last: now,
                };
            }
            Phase::Probe { last, .. } => {
                // Accepted in part: what the partition gained since it was
                // emptied at the previous answer; and at least what the
                // probe had accepted (a partition refusing at random was not
                // emptied).
                self.probed += accepted;
                let gained = accepted / seconds(last, now).max(1e-3);
                let began = self.changed.unwrap_or(last);
                let probed = self.probed / seconds(began, now).max(1e-3);
                self.pace(now, gained.max(probed) * MARGIN);
            }
        }
    }

    /// Starts a probe at `now`.
    fn probe(&mut self, now: SystemTime) {
        self.phase = Phase::Probe {
            wait: PROBE_WAIT,
            last: now,
        };
        self.changed = Some(now);
        self.probed = 0.0;
    }

    /// Paces at `rate` from `now`, with no tokens.
    fn pace(&mut self, now: SystemTime, rate: f64) {
        self.tokens = 0.0;
        self.refilled = Some(now);
        self.grown = Some(now);
        self.set_rate(now, rate);
    }

    /// Sets the rate; a new round begins with the requests sent from `now`.
    fn set_rate(&mut self, now: SystemTime, rate: f64) {
        self.phase = Phase::Paced {
            rate: rate.max(MIN_RATE),
        };
        self.changed = Some(now);
        self.round.len = 0;
    }

    /// Ends a round of answers at `rate`: cuts, weighs the last cut, or grows.
    fn end_round(&mut self, now: SystemTime, rate: f64) {
        let round = self.round;
        // The rate is what was sent when fewer requests went out than it
        // allowed (the window was full, or re-sends waited for a backoff).
        let sent = round.send_rate().unwrap_or(rate);
        let since = self.grown.map_or(0.0, |at| seconds(at, now));
        self.grown = Some(now);
        let accepted = round.accepted_rate();
        let capacity = round.rejecting() >= 2 && round.share() > self.noise * (1.0 + NOISE_MARGIN);
        if !capacity {
            // Clean, or within the noise: a cut on trial held.
            self.cut = None;
            let ceiling = self.ceiling * MARGIN;
            let grown = if self.doubling.is_some() {
                rate * 2.0
            } else if rate < ceiling {
                // Back to under the accepted rate last measured, quickly.
                (rate * REGROWTH).min(ceiling)
            } else {
                rate * (1.0 + GROWTH_PER_SECOND * since)
            };
            return self.set_rate(now, grown.min(2.0 * sent));
        }
        // The first refusal after doubling from a clean probe is the end of
        // what the partition had stored: a capacity signal, not on trial.
        let trial = self.doubling.take() != Some(Doubling::AfterProbe);
        if let Some(cut) = self.cut.take() {
            // At its ceiling a partition accepts as many units a second after
            // the cut as before; noise lowers them with the rate.
            let kept = match (cut.accepted_rate, accepted) {
                (Some(before), Some(after)) => after >= before * (cut.to / cut.from).sqrt(),
                _ => true,
            };
            if !kept {
                // Noise: back to the rate before the cut, and doubling from
                // there until the rejections rise above it.
                self.noise = round.share().min(cut.share);
                self.doubling = Some(Doubling::AfterNoise);
                return self.set_rate(now, cut.from);
            }
        }
        if round.units().0 <= 0.0 {
            // Nothing accepted: measure again.
            return self.probe(now);
        }
        let from = rate.min(sent);
        self.ceiling = accepted.unwrap_or(self.ceiling);
        // What was accepted while saturated, or over the whole round if more
        // (a few answers measure little).
        let measured = accepted.unwrap_or(0.0).max(from * (1.0 - round.share())) * MARGIN;
        // (`f64::clamp` would bring float formatting into the component.)
        let to = measured
            .min(from * CUT)
            .max(from * DEEPEST_CUT)
            .max(MIN_RATE);
        self.cut = trial.then(|| Cut {
            from,
            to,
            accepted_rate: accepted,
            share: round.share(),
        });
        self.set_rate(now, to);
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
    fn a_probe_never_refused_paces_at_what_it_sent_and_doubles() {
        let mut pacer = Pacer::new(8);
        pacer.on_answer(at(0), at(0), 0.0, 25.0);
        // Accepted whole four times: the wait halves from 10 ms to under 1 ms.
        for i in 1..=4 {
            pacer.on_answer(at(i * 10), at(i * 10 - 5), 25.0, 0.0);
        }
        // 100 units in the 40 ms of the probe.
        let rate = pacer.rate().expect("paced, not open");
        assert!((rate - 2500.0).abs() < 1e-6, "{rate}");
        assert_eq!(pacer.window(), 8);
        // A round of clean answers to requests sent at that rate doubles it.
        round(&mut pacer, 50, 10, [(25.0, 0.0); ROUND]);
        assert!((pacer.rate().unwrap() - 5000.0).abs() < 1e-6);
    }

    /// Answers a round of requests sent `every` ms from `start` ms, each
    /// answered 5 ms later, with the (accepted, rejected) units given.
    fn round<const N: usize>(pacer: &mut Pacer, start: u64, every: u64, answers: [(f64, f64); N]) {
        for (i, (accepted, rejected)) in answers.into_iter().enumerate() {
            let sent = start + i as u64 * every;
            pacer.on_answer(at(sent + 5), at(sent), accepted, rejected);
        }
    }

    /// A pacer paced at 1,000 units a second after a probe.
    fn paced() -> Pacer {
        let mut pacer = Pacer::new(8);
        pacer.on_answer(at(0), at(0), 0.0, 25.0);
        // 95 units 95 ms after the partition was emptied.
        pacer.on_answer(at(95), at(90), 95.0, 5.0);
        assert!((pacer.rate().unwrap() - 1000.0 * MARGIN).abs() < 1e-6);
        pacer.set_rate(at(95), 1000.0);
        pacer
    }

    #[test]
    fn a_round_of_rejections_cuts_to_what_the_partition_accepted() {
        let mut pacer = paced();
        // Sent at 1,000 units a second (25 every 25 ms); 15 of each 25
        // accepted from the fifth on: 600 a second while saturated, 800 over
        // the round; the cut goes to the larger.
        let mut answers = [(15.0, 10.0); ROUND];
        answers[..4].fill((25.0, 0.0));
        round(&mut pacer, 100, 25, answers);
        let cut = pacer.rate().unwrap();
        assert!((cut - 800.0 * MARGIN).abs() < 1e-6, "{cut}");
        let mut pacer = paced();
        // Refused whole from the fifth on: 0 while saturated, 500 over the
        // round; but no deeper than the deepest cut.
        let mut answers = [(0.0, 25.0); ROUND];
        answers[..4].fill((25.0, 0.0));
        round(&mut pacer, 100, 25, answers);
        assert!((pacer.rate().unwrap() - 1000.0 * DEEPEST_CUT).abs() < 1e-6);
        let mut pacer = paced();
        let mut answers = [(15.0, 10.0); ROUND];
        answers[..4].fill((25.0, 0.0));
        round(&mut pacer, 100, 25, answers);
        // Answers to requests sent before the cut (at 280 ms) do not count.
        for i in 0..ROUND as u64 {
            pacer.on_answer(at(290 + i), at(200 + i), 0.0, 25.0);
        }
        assert_eq!(pacer.rate().unwrap(), cut);
        // At the lower rate the partition still accepts 800 a second, all
        // that is sent: the cut holds, and clean rounds grow the rate.
        let start = 400;
        let every = (25_000.0 / cut) as u64;
        round(&mut pacer, start, every, [(25.0, 0.0); ROUND]);
        let grown = pacer.rate().unwrap();
        assert!(grown > cut && grown < cut * 1.1, "{grown}");
        assert_eq!(pacer.noise, 0.0);
    }

    #[test]
    fn a_cut_holds_while_the_partition_accepts_as_much_at_the_lower_rate() {
        let mut pacer = paced();
        // 1,000 a second sent, 500 accepted: cut to the deepest cut.
        round(&mut pacer, 100, 25, [(12.5, 12.5); ROUND]);
        let cut = pacer.rate().unwrap();
        assert!((cut - 1000.0 * DEEPEST_CUT).abs() < 1e-6, "{cut}");
        // At 500 a second sent (every 50 ms), the partition that takes 400
        // still accepts 400: it is at its ceiling, and the rate is cut again
        // to what it accepts.
        round(&mut pacer, 400, 50, [(20.0, 5.0); ROUND]);
        let again = pacer.rate().unwrap();
        assert!((again - 400.0 * MARGIN).abs() < 1e-6, "{again}");
        assert_eq!(pacer.noise, 0.0);
    }

    #[test]
    fn rejections_that_slowing_down_does_not_lower_are_noise_and_do_not_cut() {
        let mut pacer = paced();
        // Half of every request refused, whatever the rate: a cut to 500.
        round(&mut pacer, 100, 25, [(12.5, 12.5); ROUND]);
        let cut = pacer.rate().unwrap();
        assert!((cut - 500.0).abs() < 1e-6, "{cut}");
        // At 500 a second half is still refused: 250 accepted, half of the
        // 500 before the cut. Noise: back to 1,000, the share learnt.
        round(&mut pacer, 400, 50, [(12.5, 12.5); ROUND]);
        assert!((pacer.rate().unwrap() - 1000.0).abs() < 1e-6);
        assert_eq!(pacer.noise, 0.5);
        // Rounds within that share double the rate (up to twice what they sent).
        round(&mut pacer, 900, 25, [(12.5, 12.5); ROUND]);
        assert!((pacer.rate().unwrap() - 2000.0).abs() < 1e-6);
        round(&mut pacer, 1200, 25, [(12.5, 12.5); ROUND]);
        assert!((pacer.rate().unwrap() - 2000.0).abs() < 1e-6, "capped");
        // Every request refused but a trickle is well above the noise: a cut.
        round(&mut pacer, 1500, 10, [(1.0, 24.0); ROUND]);
        assert!(pacer.rate().unwrap() <= 2000.0 * CUT);
    }

    #[test]
    fn a_round_with_nothing_accepted_probes_again() {
        let mut pacer = paced();
        round(&mut pacer, 100, 25, [(0.0, 25.0); SHORT_ROUND]);
        assert_eq!(pacer.rate(), None);
        assert_eq!(pacer.window(), 1);
    }
}
