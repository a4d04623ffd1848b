//! Command-line arguments of `ld-dynamodb`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

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
