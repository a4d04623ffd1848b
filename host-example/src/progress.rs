//! Progress of an Init on stderr, only when stderr is a terminal: items
//! written out of the total, and the pacer's waits after throttled answers.
//! Nothing is shown in a pipe or a CI log.

use std::io::IsTerminal;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use ld_dynamodb_host::outbound::WriteCounts;

/// How often the counts are read.
const TICK: Duration = Duration::from_millis(100);

/// A progress bar over an Init, drawn until [`InitProgress::finish`].
pub struct InitProgress {
    bar: ProgressBar,
    stop: Option<Sender<()>>,
    ticker: Option<JoinHandle<()>>,
}

impl InitProgress {
    /// Shows an Init of `total` items whose writes `meter` counts (from its
    /// counts now on), or nothing (`None`) when stderr is not a terminal.
    pub fn start(
        label: &str,
        total: u64,
        meter: impl Fn() -> WriteCounts + Send + 'static,
    ) -> Option<InitProgress> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} items written{msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        // Drawn at once, so even an Init quicker than a tick shows.
        bar.tick();
        let (stop, stopped) = mpsc::channel();
        let shown = bar.clone();
        let ticker = std::thread::spawn(move || {
            let mut watch = Watch::new(meter());
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                let (written, waiting) = watch.update(meter());
                shown.set_position(written.min(total));
                shown.set_message(waiting.map(throttled).unwrap_or_default());
            }
        });
        Some(InitProgress {
            bar,
            stop: Some(stop),
            ticker: Some(ticker),
        })
    }

    /// Prints `line` above the bar.
    pub fn println(&self, line: &str) {
        self.bar.println(line);
    }

    /// Stops the updates and replaces the bar with a line saying `written`
    /// items of the total were written.
    pub fn finish(mut self, written: u64) {
        self.stop_ticker();
        self.bar.finish_and_clear();
        eprintln!(
            "{} {written}/{} items written",
            self.bar.prefix(),
            self.bar.length().unwrap_or(written)
        );
    }

    fn stop_ticker(&mut self) {
        drop(self.stop.take());
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

impl Drop for InitProgress {
    /// A bar dropped unfinished (the Init failed) is cleared.
    fn drop(&mut self) {
        if self.ticker.is_some() {
            self.stop_ticker();
            self.bar.finish_and_clear();
        }
    }
}

/// The message while the pacer waits after `answers` throttled answers.
fn throttled(answers: u64) -> String {
    format!(", throttled: waiting to resend ({answers} answers held items back)")
}

/// The counts of one Init, from a meter that counted before it began.
#[derive(Debug, Clone, Copy)]
struct Watch {
    base: WriteCounts,
    last: WriteCounts,
    /// Whether the last change seen was a throttled answer, not a write.
    waiting: bool,
}

impl Watch {
    fn new(base: WriteCounts) -> Watch {
        Watch {
            base,
            last: base,
            waiting: false,
        }
    }

    /// Items written since the start, and the throttled answers since the
    /// start while the writes wait on them (`None` once items flow again).
    fn update(&mut self, now: WriteCounts) -> (u64, Option<u64>) {
        if now.items_written > self.last.items_written {
            self.waiting = false;
        }
        if now.throttled_answers > self.last.throttled_answers {
            self.waiting = true;
        }
        self.last = now;
        let throttled = now.throttled_answers - self.base.throttled_answers;
        (
            now.items_written - self.base.items_written,
            self.waiting.then_some(throttled),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(items_written: u64, throttled_answers: u64) -> WriteCounts {
        WriteCounts {
            items_written,
            throttled_answers,
        }
    }

    #[test]
    fn counts_start_from_the_meter_s_value_and_a_throttled_answer_shows_until_items_flow() {
        let mut watch = Watch::new(counts(40, 3));
        assert_eq!(watch.update(counts(40, 3)), (0, None));
        assert_eq!(watch.update(counts(65, 3)), (25, None));
        assert_eq!(watch.update(counts(65, 4)), (25, Some(1)));
        // Still waiting: nothing written since.
        assert_eq!(watch.update(counts(65, 4)), (25, Some(1)));
        assert_eq!(watch.update(counts(90, 4)), (50, None));
        // Written and throttled within one tick: the pacer waits again.
        assert_eq!(watch.update(counts(100, 6)), (60, Some(3)));
    }

    #[test]
    fn the_wait_is_said_in_words() {
        assert_eq!(
            throttled(2),
            ", throttled: waiting to resend (2 answers held items back)"
        );
    }
}
