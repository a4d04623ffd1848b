//! Command-line arguments of `ld-dynamodb`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use ld_dynamodb_host::data::Kind;

/// Load, inspect and update LaunchDarkly flag data in a DynamoDB table through
/// the ld-dynamodb-store WebAssembly component. Prints JSON on stdout; errors go
/// to stderr as one line, with a non-zero exit code.
///
/// Credentials come from the AWS default chain: AWS_ACCESS_KEY_ID,
/// AWS_SECRET_ACCESS_KEY and (for temporary credentials) AWS_SESSION_TOKEN; then
/// the shared config and credentials files (~/.aws/config, ~/.aws/credentials)
/// with the profile AWS_PROFILE names; web identity, ECS/EKS container
/// credentials and EC2 instance metadata.
#[derive(Debug, Parser)]
#[command(name = "ld-dynamodb", version)]
pub struct Cli {
    /// Name of the DynamoDB table (hash key `namespace` S, range key `key` S); required.
    // No default: a missing table is the error of `environment::require_table`,
    // which names --table and LD_DYNAMODB_TABLE. Environment values are not
    // shown in the help (an unset variable would read `[env: NAME=]`).
    #[arg(long, env = "LD_DYNAMODB_TABLE", hide_env_values = true, global = true)]
    pub table: Option<String>,

    /// Prefix of the namespaces (`PREFIX:features`); none by default.
    #[arg(
        long,
        env = "LD_DYNAMODB_PREFIX",
        hide_env_values = true,
        global = true
    )]
    pub prefix: Option<String>,

    /// AWS region [env: AWS_REGION, then AWS_DEFAULT_REGION, then the profile's region].
    #[arg(long, global = true)]
    pub region: Option<String>,

    /// Endpoint URL, such as http://127.0.0.1:8000 [env: AWS_ENDPOINT_URL_DYNAMODB, then
    /// AWS_ENDPOINT_URL; default https://dynamodb.REGION.amazonaws.com].
    // The comment is the CLI's help text, where a URL reads as written.
    #[allow(rustdoc::bare_urls)]
    #[arg(long, global = true)]
    pub endpoint: Option<String>,

    /// Another build of the component to load instead of the one built into this binary.
    #[arg(
        long,
        env = "LD_DYNAMODB_COMPONENT",
        hide_env_values = true,
        global = true
    )]
    pub component: Option<PathBuf>,

    /// How long one call into the component may run, in seconds (an Init of
    /// many items at a low write capacity needs more than the default).
    #[arg(long, env = "LD_DYNAMODB_CALL_TIMEOUT", hide_env_values = true, global = true,
          default_value_t = 300.0, value_parser = seconds)]
    pub call_timeout: f64,

    #[command(subcommand)]
    pub command: Command,
}

/// A positive number of seconds.
fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(s),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}

/// Flags or segments.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Flags,
    Segments,
}

impl From<KindArg> for Kind {
    fn from(k: KindArg) -> Kind {
        match k {
            KindArg::Flags => Kind::Flags,
            KindArg::Segments => Kind::Segments,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Data(DataCommand),
    /// Read the Big Segment data that the Relay Proxy keeps in the table.
    #[command(subcommand)]
    BigSegments(BigSegmentsCommand),
    /// Keep the table current with a LaunchDarkly environment: LaunchDarkly's
    /// Rust server SDK, streaming (or polling), writes every full payload as an
    /// Init and every change as an upsert, one log line each on stderr. Runs
    /// until SIGINT or SIGTERM. The SDK key comes from LD_SDK_KEY only.
    Sync(SyncArgs),
    /// Evaluate one flag for a context with the flag evaluator component and
    /// print {"value", "variationIndex", "reason"} as LaunchDarkly's SDKs give
    /// the detail. An invalid context exits with 2.
    Evaluate(EvaluateArgs),
    /// Print every flag's state for a context, as the SDKs' allFlagsState JSON
    /// (what a client-side SDK is bootstrapped with). An invalid context exits with 2.
    FlagsState(FlagsStateArgs),
}

/// Options of `sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Base URI of LaunchDarkly's streaming service (the SDK reads `/all`):
    /// another for the EU or federal instances, or a Relay Proxy.
    #[arg(
        long,
        env = "LD_STREAM_URI",
        hide_env_values = true,
        default_value = "https://stream.launchdarkly.com"
    )]
    pub stream_uri: String,

    /// Base URI of the polling service (`/sdk/latest-all`).
    #[arg(
        long,
        env = "LD_BASE_URI",
        hide_env_values = true,
        default_value = "https://sdk.launchdarkly.com"
    )]
    pub base_uri: String,

    /// Base URI of the events service.
    #[arg(
        long,
        env = "LD_EVENTS_URI",
        hide_env_values = true,
        default_value = "https://events.launchdarkly.com"
    )]
    pub events_uri: String,

    /// Poll the base URI instead of streaming.
    #[arg(long)]
    pub polling: bool,

    /// Seconds between polls (LaunchDarkly's SDK allows no less than 30).
    #[arg(long, default_value_t = 30.0, value_parser = seconds)]
    pub poll_interval: f64,

    /// Wait for the first full payload, write it, print the Init report and
    /// exit (for cron, CI and serverless jobs).
    #[arg(long)]
    pub once: bool,

    /// With --once: how long to wait for the first payload before failing.
    #[arg(long, default_value_t = 60.0, value_parser = seconds)]
    pub timeout: f64,
}

/// Where the flag evaluator component is.
#[derive(Debug, Args)]
pub struct EvaluatorArg {
    /// The composed flag evaluator (`flag-evaluator.wasm` of
    /// scripts/edge-build.sh) [default: beside this executable, or in
    /// ../component from it, as in the build's target/ folder].
    #[arg(long, env = "LD_DYNAMODB_EVALUATOR", hide_env_values = true)]
    pub evaluator: Option<PathBuf>,
}

/// Options of `evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The flag's key.
    pub flag: String,

    /// The context as LaunchDarkly's context JSON, such as
    /// {"kind":"user","key":"user-1","country":"de"} (multi-kind and the legacy user shape too).
    #[arg(long)]
    pub context: String,

    /// The default value as JSON, answered when the flag is unknown or cannot
    /// be evaluated [default: null].
    #[arg(long)]
    pub default: Option<String>,

    #[command(flatten)]
    pub evaluator: EvaluatorArg,
}

/// Options of `flags-state`.
#[derive(Debug, Args)]
pub struct FlagsStateArgs {
    /// The context as LaunchDarkly's context JSON.
    #[arg(long)]
    pub context: String,

    /// Only flags available to client-side IDs (`clientSideAvailability.usingEnvironmentId`).
    #[arg(long, conflicts_with = "mobile")]
    pub client_side: bool,

    /// Only flags available to mobile keys (`clientSideAvailability.usingMobileKey`).
    #[arg(long)]
    pub mobile: bool,

    /// Include each flag's evaluation reason.
    #[arg(long)]
    pub with_reasons: bool,

    /// Omit the version and reason of flags that neither track events nor debug.
    #[arg(long)]
    pub details_only_for_tracked_flags: bool,

    #[command(flatten)]
    pub evaluator: EvaluatorArg,
}

/// Commands of the data store.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Create the table with the layout the stores use (on-demand capacity) and wait until it is active.
    CreateTable,
    /// Replace all flags and segments with FILE (`-` for stdin) in the /sdk/latest-all shape
    /// {"flags":{KEY:ITEM},"segments":{KEY:ITEM}}; prints the init report.
    Init {
        /// Path of the JSON data, or `-` for stdin.
        file: String,
    },
    /// Print one flag or segment, or null when absent or deleted.
    Get {
        kind: KindArg,
        key: String,
        /// Show the version, deleted flag and item string as stored (tombstones included).
        #[arg(long)]
        raw: bool,
    },
    /// Print every flag or segment as {KEY: ITEM}, without deleted items.
    All { kind: KindArg },
    /// Write an item (JSON with `key` and `version`) from FILE or stdin if its version is newer.
    Upsert {
        kind: KindArg,
        /// Path of the item JSON, or `-` for stdin.
        file: String,
    },
    /// Delete an item by writing a tombstone at VERSION, if VERSION is newer than the stored one.
    Delete {
        kind: KindArg,
        key: String,
        version: u64,
    },
    /// Print {"initialized": bool, "available": bool}.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum BigSegmentsCommand {
    /// Print {"lastUpToDate": MILLIS} (null when never synchronized).
    Metadata,
    /// Print the context's memberships as {"SEGMENT_REF": included}, or null when it has none.
    Membership {
        /// The context key (hashed as base64 of its SHA-256), or with --hash the hash itself.
        context: String,
        /// CONTEXT is already the hash.
        #[arg(long)]
        hash: bool,
    },
}
