//! `ld-dynamodb sync`: LaunchDarkly's Rust server SDK in its connected mode
//! (streaming, or polling) with the table as its persistent store, through the
//! library's [`PersistentStoreFactory`]: every full payload is an Init, every
//! patch and delete an upsert, each logged as one line on stderr.
//!
//! The SDK key comes from `LD_SDK_KEY` only, and never appears in a line this
//! command prints: the SDK's own log lines and every error pass through
//! [`Lines::redacted`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use launchdarkly_sdk_transport::HyperTransport;
use launchdarkly_server_sdk::{
    Client, ConfigBuilder, PersistentDataStoreBuilder, PollingDataSourceBuilder,
    ServiceEndpointsBuilder, StreamingDataSourceBuilder,
};
use serde_json::Value;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use ld_dynamodb_host::data::Kind;
use ld_dynamodb_host::embed::{InitReport, UpsertOutcome};
use ld_dynamodb_host::launchdarkly::{PersistentStoreFactory, StoreObserver};
use ld_dynamodb_host::{DataStore, Error};

use crate::cli::SyncArgs;
use crate::progress::InitProgress;

/// The variable that holds the SDK key.
pub const SDK_KEY_VAR: &str = "LD_SDK_KEY";

/// The fix for a missing or refused key.
const KEY_FIX: &str = "set LD_SDK_KEY to the server-side SDK key of the LaunchDarkly environment \
     (Account settings > Projects > the environment's SDK key, `sdk-...`; not its mobile key or \
     client-side ID); the key is never taken from the command line";

/// The SDK key from [`SDK_KEY_VAR`]; an error naming the fix when unset.
pub fn sdk_key() -> Result<String> {
    match std::env::var(SDK_KEY_VAR) {
        Ok(key) if !key.trim().is_empty() => Ok(key.trim().to_string()),
        _ => bail!("no SDK key: {KEY_FIX}"),
    }
}

/// Runs `sync` with `key` on `store`: until SIGINT or SIGTERM, or with
/// `--once` until the first full payload is written (then its Init report).
pub async fn run(store: DataStore, key: String, args: &SyncArgs) -> Result<Option<Value>> {
    let lines = Arc::new(Lines::new(key));
    let result = sync(store, lines.clone(), args).await;
    result.map_err(|e| anyhow!(lines.redacted(&format!("{e:#}"))))
}

async fn sync(store: DataStore, lines: Arc<Lines>, args: &SyncArgs) -> Result<Option<Value>> {
    // The SDK's warnings and errors, on stderr; the last one kept for the
    // error if the SDK gives up.
    let _ = log::set_boxed_logger(Box::new(SdkLog(lines.clone())));
    log::set_max_level(log::LevelFilter::Warn);

    let (first, mut first_init) = unbounded_channel();
    let observer = Arc::new(ChangeLog {
        lines: lines.clone(),
        store: store.clone(),
        first: Mutex::new(Some(first)),
    });
    let factory = PersistentStoreFactory::observed(store, observer);
    let mut data_store = PersistentDataStoreBuilder::new(Arc::new(factory));
    // The SDK evaluates nothing here: no cache of what it wrote.
    data_store.no_caching();

    // The SDK takes all three or none.
    let mut endpoints = ServiceEndpointsBuilder::new();
    endpoints
        .streaming_base_url(&args.stream_uri)
        .polling_base_url(&args.base_uri)
        .events_base_url(&args.events_uri);
    let transport = HyperTransport::new_https().context("cannot set up HTTPS")?;
    let config = ConfigBuilder::new(lines.key()).service_endpoints(&endpoints);
    let config = if args.polling {
        let mut polling = PollingDataSourceBuilder::new();
        polling
            .poll_interval(Duration::from_secs_f64(args.poll_interval))
            .transport(transport);
        config.data_source(&polling)
    } else {
        let mut streaming = StreamingDataSourceBuilder::new();
        streaming.transport(transport);
        config.data_source(&streaming)
    };
    let config = config
        .data_store(&data_store)
        .build()
        .map_err(|e| anyhow!("invalid LaunchDarkly settings: {e}"))?;
    let client = Client::build(config).map_err(|e| anyhow!("cannot start the SDK: {e}"))?;
    client
        .start_with_runtime()
        .map_err(|e| anyhow!("cannot start the SDK: {e}"))?;
    let client = Closing::new(client);

    let stop = stop_signal()?;
    tokio::pin!(stop);
    // Only --once gives up waiting for the first payload.
    let timeout = args.once.then(|| Duration::from_secs_f64(args.timeout));
    let deadline = async move {
        match timeout {
            Some(timeout) => tokio::time::sleep(timeout).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    // The SDK gives up only on an answer it cannot recover from (401, 403,
    // 404, ...); it retries anything else. (Once it is initialized, this
    // waits for ever.)
    let gave_up = async {
        loop {
            match client
                .get()
                .wait_for_initialization(Duration::from_secs(60))
                .await
            {
                Some(false) => return,
                Some(true) => std::future::pending::<()>().await,
                None => {}
            }
        }
    };
    tokio::pin!(gave_up);
    let report = tokio::select! {
        init = first_init.recv() => init.expect("the observer holds the sender until the first Init"),
        () = &mut gave_up => {
            // Closing the client ends the SDK's runtime, so the line it logs
            // after giving up has been logged when this reads it.
            lines.quiet();
            client.close();
            return Err(stopped(&lines, "before any flag data was written"));
        }
        () = &mut deadline => bail!(
            "no flag data from LaunchDarkly within {} s ({}); check the network, the URI \
             ({}) and LD_SDK_KEY, or allow more time with --timeout",
            args.timeout,
            lines.last_sdk_lines().unwrap_or_else(|| "the SDK reported nothing".into()),
            if args.polling { "--base-uri" } else { "--stream-uri" },
        ),
        signal = &mut stop => {
            if args.once {
                bail!("stopped by {signal} before the first payload");
            }
            lines.say(&format!("sync: stopped by {signal} before the first payload"));
            lines.quiet();
            return Ok(None);
        }
    };
    let report = report.map_err(|e| anyhow!("the first payload was not written: {e}"))?;
    if args.once {
        lines.quiet();
        return Ok(Some(crate::init_report_json(&report)));
    }
    // The SDK may give up later too (a key revoked, then refused when the
    // stream reconnects): it then says so in its log, and sync stops with
    // an error instead of running on without a connection.
    tokio::select! {
        signal = stop => {
            lines.say(&format!("sync: stopped by {signal}"));
            lines.quiet();
            Ok(None)
        }
        () = lines.gave_up.notified() => {
            lines.quiet();
            client.close();
            Err(stopped(&lines, "and no longer keeps the table current"))
        }
    }
}

/// The error of an SDK that gave up (`when`), with its last lines.
fn stopped(lines: &Lines, when: &str) -> anyhow::Error {
    anyhow!(
        "the LaunchDarkly SDK stopped {when} ({}): if it was refused (401 or 403), \
         {KEY_FIX}; a 404 means a wrong --stream-uri or --base-uri",
        lines
            .last_sdk_lines()
            .unwrap_or_else(|| "it said nothing".into())
    )
}

/// Whether a log target is one of the SDK's crates.
fn from_the_sdk(target: &str) -> bool {
    ["launchdarkly_", "eventsource_client"]
        .iter()
        .any(|sdk| target.starts_with(sdk))
}

/// Whether a line the SDK logs says that its data source gave up for good:
/// an HTTP status it does not retry on the stream, or a permanent failure of
/// polling (the words of LaunchDarkly's Rust server SDK 3.2).
fn gives_up(module: &str, text: &str) -> bool {
    module.ends_with("::data_source")
        && (text.starts_with("Returned unrecoverable failure")
            || text.contains("returned a permanent failure"))
}

/// Waits for SIGINT or SIGTERM; its name.
fn stop_signal() -> Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        }
    })
}

/// The SDK's client, closed once, at the latest when dropped: on a thread of
/// its own, as closing drops the SDK's runtime (a tokio runtime may not be
/// dropped inside another).
struct Closing {
    client: Arc<Client>,
    closed: std::sync::Once,
}

impl Closing {
    fn new(client: Client) -> Closing {
        Closing {
            client: Arc::new(client),
            closed: std::sync::Once::new(),
        }
    }

    fn get(&self) -> &Client {
        &self.client
    }

    /// Closes the client and waits until its runtime has stopped.
    fn close(&self) {
        self.closed.call_once(|| {
            let client = self.client.clone();
            let _ = std::thread::spawn(move || client.close()).join();
        });
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        self.close();
    }
}

/// Where the lines go: stderr (above the progress bar while one is shown),
/// with the SDK key replaced.
pub struct Lines {
    key: String,
    progress: Mutex<Option<InitProgress>>,
    /// The SDK's last lines about its connection, for an error.
    recent_sdk_lines: Mutex<VecDeque<String>>,
    quiet: AtomicBool,
    /// Told when the SDK says it gave up for good (see [`gives_up`]).
    gave_up: tokio::sync::Notify,
}

/// How many of the SDK's lines an error quotes.
const RECENT_SDK_LINES: usize = 3;

impl Lines {
    fn new(key: String) -> Lines {
        Lines {
            key,
            progress: Mutex::default(),
            recent_sdk_lines: Mutex::default(),
            quiet: AtomicBool::new(false),
            gave_up: tokio::sync::Notify::new(),
        }
    }

    fn key(&self) -> &str {
        &self.key
    }

    /// `text` without the SDK key.
    fn redacted(&self, text: &str) -> String {
        redact(text, &self.key)
    }

    /// Prints one line on stderr.
    fn say(&self, line: &str) {
        let line = format!("ld-dynamodb: {}", self.redacted(line));
        match self.progress.lock().unwrap().as_ref() {
            Some(progress) => progress.println(&line),
            None => eprintln!("{line}"),
        }
    }

    /// Prints no more of the SDK's lines (its complaints while it is closed
    /// down); they are still kept.
    fn quiet(&self) {
        self.quiet.store(true, Ordering::Relaxed);
    }

    /// The SDK's last lines about its connection, oldest first.
    fn last_sdk_lines(&self) -> Option<String> {
        let recent = self.recent_sdk_lines.lock().unwrap();
        (!recent.is_empty()).then(|| Vec::from(recent.clone()).join("; "))
    }
}

/// `text` with every occurrence of `key` replaced.
fn redact(text: &str, key: &str) -> String {
    if key.is_empty() {
        return text.to_string();
    }
    text.replace(key, "[LD_SDK_KEY]")
}

/// The SDK's log: warnings and errors on stderr, the last few kept.
struct SdkLog(Arc<Lines>);

impl log::Log for SdkLog {
    /// The SDK's crates only: other crates' records (`tracing` forwards
    /// them to `log` too) are not the SDK's to report.
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn && from_the_sdk(metadata.target())
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = self.0.redacted(&record.args().to_string());
        if !self.0.quiet.load(Ordering::Relaxed) {
            self.0.say(&format!(
                "sync: LaunchDarkly SDK {}: {text}",
                record.level()
            ));
        }
        let module = record.module_path().unwrap_or_default();
        if gives_up(module, &text) {
            self.0.gave_up.notify_one();
        }
        // Not the client's complaints while it is closed down.
        if !module.ends_with("::client") {
            let mut recent = self.0.recent_sdk_lines.lock().unwrap();
            if recent.len() == RECENT_SDK_LINES {
                recent.pop_front();
            }
            recent.push_back(text);
        }
    }

    fn flush(&self) {}
}

/// Logs every write of the SDK's store; hands the first Init's outcome over.
struct ChangeLog {
    lines: Arc<Lines>,
    store: DataStore,
    first: Mutex<Option<UnboundedSender<Result<InitReport, String>>>>,
}

impl StoreObserver for ChangeLog {
    fn init_started(&self, flags: usize, segments: usize) {
        self.lines.say(&format!(
            "sync: init {flags} flags, {segments} segments: writing"
        ));
        // Progress for the first payload only: later ones replace a table
        // that is already current, and a bar would hide the change lines.
        if self.first.lock().unwrap().is_some() {
            let store = self.store.clone();
            *self.lines.progress.lock().unwrap() =
                InitProgress::start("sync: init", (flags + segments) as u64, move || {
                    store.write_counts()
                });
        }
    }

    fn init_done(&self, result: &Result<InitReport, Error>) {
        let progress = self.lines.progress.lock().unwrap().take();
        match result {
            Ok(report) => {
                if let Some(progress) = progress {
                    progress.finish(u64::from(report.written));
                }
                self.lines.say(&init_line(report));
            }
            Err(e) => {
                drop(progress);
                self.lines.say(&format!("sync: init failed: {e}"));
            }
        }
        if let Some(first) = self.first.lock().unwrap().take() {
            let _ = first.send(result.as_ref().cloned().map_err(|e| e.to_string()));
        }
    }

    fn upserted(
        &self,
        kind: Kind,
        key: &str,
        version: u64,
        deleted: bool,
        result: &Result<UpsertOutcome, Error>,
    ) {
        self.lines
            .say(&change_line(kind, key, version, deleted, result));
    }
}

/// The line of a finished Init.
fn init_line(report: &InitReport) -> String {
    format!(
        "sync: init done: {} written, {} deleted, {} dropped (over the size limit)",
        report.written,
        report.deleted,
        report.dropped.len()
    )
}

/// The line of one change: kind, key, version and what the table did.
fn change_line(
    kind: Kind,
    key: &str,
    version: u64,
    deleted: bool,
    result: &Result<UpsertOutcome, Error>,
) -> String {
    let what = if deleted { "delete" } else { "patch" };
    let outcome = match result {
        Ok(UpsertOutcome::Applied) => "applied".to_string(),
        Ok(UpsertOutcome::NotNewer) => "ignored, the table holds this or a newer version".into(),
        Ok(UpsertOutcome::TooLarge) => "not written, over the size limit".into(),
        Err(e) => format!("failed: {e}"),
    };
    format!(
        "sync: {what} {} {key:?} version {version}: {outcome}",
        kind.field()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_one_line_with_kind_key_version_and_outcome() {
        assert_eq!(
            change_line(Kind::Flags, "banner", 7, false, &Ok(UpsertOutcome::Applied)),
            "sync: patch flags \"banner\" version 7: applied"
        );
        assert_eq!(
            change_line(Kind::Segments, "beta", 3, true, &Ok(UpsertOutcome::NotNewer)),
            "sync: delete segments \"beta\" version 3: ignored, the table holds this or a newer version"
        );
        let failed = change_line(
            Kind::Flags,
            "x\ny",
            1,
            false,
            &Err(Error::Config("no table".into())),
        );
        assert_eq!(failed.lines().count(), 1, "{failed}");
        assert!(failed.ends_with("failed: invalid configuration: no table"));
    }

    #[test]
    fn the_sdk_s_words_for_giving_up_are_recognized_and_no_others() {
        let stream = "launchdarkly_server_sdk::data_source";
        assert!(gives_up(
            stream,
            "Returned unrecoverable failure. Unexpected response 401"
        ));
        assert!(gives_up(
            stream,
            "feature requester has returned a permanent failure"
        ));
        assert!(!gives_up(stream, "error on event stream, continuing: Eof"));
        assert!(!gives_up(
            "launchdarkly_server_sdk::client",
            "Returned unrecoverable failure"
        ));
    }

    #[test]
    fn only_the_sdk_s_crates_are_reported() {
        assert!(from_the_sdk("launchdarkly_server_sdk::data_source"));
        assert!(from_the_sdk("launchdarkly_sdk_transport"));
        assert!(from_the_sdk("eventsource_client::client"));
        assert!(!from_the_sdk("aws_config::imds"));
        assert!(!from_the_sdk("hyper_util::client"));
    }

    #[test]
    fn the_key_never_survives_redaction() {
        let key = "sdk-0123-secret";
        assert_eq!(
            redact(&format!("Authorization: {key} refused ({key})"), key),
            "Authorization: [LD_SDK_KEY] refused ([LD_SDK_KEY])"
        );
        assert_eq!(redact("nothing", ""), "nothing");
    }

    #[test]
    fn an_init_line_counts_what_the_component_did() {
        let report = InitReport {
            written: 31,
            deleted: 2,
            dropped: vec![],
        };
        assert_eq!(
            init_line(&report),
            "sync: init done: 31 written, 2 deleted, 0 dropped (over the size limit)"
        );
    }
}
