//! Store configuration: validation, endpoint derivation, defaults, and a `Debug`
//! that never shows secrets.

use std::fmt;
use std::time::Duration;

use crate::endpoint::{self, Endpoint};
use crate::error::StoreError;

/// Default attempts per request (the first one included).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// Default backoff base.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(50);
/// Default cap of one backoff sleep.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_millis(2000);
/// Default number of BatchWriteItem requests Init keeps in flight.
pub const DEFAULT_INIT_CONCURRENCY: usize = 8;
/// Most BatchWriteItem requests Init may keep in flight.
pub const MAX_INIT_CONCURRENCY: usize = 64;
/// How long an Init may go without any item accepted before it fails.
pub const DEFAULT_INIT_NO_PROGRESS: Duration = Duration::from_secs(60);
/// Default deadline of one request attempt (the component's own).
pub const DEFAULT_REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// AWS credentials. `Debug` shows only the access key id.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (shown by `Debug`).
    pub access_key_id: String,
    /// The secret access key (never shown).
    pub secret_access_key: String,
    /// The session token of temporary credentials (never shown).
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "** redacted **"),
            )
            .finish()
    }
}

impl Credentials {
    /// The credentials with an empty session token dropped, or why they are unusable.
    pub fn validated(self) -> Result<Credentials, StoreError> {
        if self.access_key_id.trim().is_empty() {
            return Err(StoreError::InvalidConfig(
                "access key id is required".into(),
            ));
        }
        if self.secret_access_key.is_empty() {
            return Err(StoreError::InvalidConfig(
                "secret access key is required".into(),
            ));
        }
        Ok(Credentials {
            session_token: self.session_token.filter(|t| !t.is_empty()),
            ..self
        })
    }
}

/// Capped exponential backoff with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first one included (at least 1).
    pub max_attempts: u32,
    /// Backoff base: attempt n waits a random time in
    /// [0, min(max_delay, base_delay * 2^(n-1))].
    pub base_delay: Duration,
    /// Upper bound of one backoff sleep.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base_delay: DEFAULT_BASE_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
        }
    }
}

/// Per-request timeouts. The first three are `wasi:http` request options
/// (`None` keeps the host's default); `request` is the component's own
/// deadline for one attempt (`None` only before validation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting (a `wasi:http` request option).
    pub connect: Option<Duration>,
    /// Until the first byte of the response (a `wasi:http` request option).
    pub first_byte: Option<Duration>,
    /// Between bytes of the response (a `wasi:http` request option).
    pub between_bytes: Option<Duration>,
    /// The component's own deadline for one attempt, whatever the host does.
    pub request: Option<Duration>,
}

impl Timeouts {
    /// Whether any `wasi:http` request option is set.
    pub fn has_request_options(&self) -> bool {
        self.connect.is_some() || self.first_byte.is_some() || self.between_bytes.is_some()
    }

    /// The deadline of one attempt.
    pub fn deadline(&self) -> Duration {
        self.request.unwrap_or(DEFAULT_REQUEST_DEADLINE)
    }
}

/// Settings as the caller gives them, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigInput {
    /// The table's name. Required.
    pub table: String,
    /// Namespaces become `prefix:features`, ...; `None` or empty: no prefix.
    pub prefix: Option<String>,
    /// The AWS region, also the signing region. Required.
    pub region: String,
    /// The endpoint URL; DynamoDB's public one for the region when `None`.
    pub endpoint: Option<String>,
    /// The credentials to sign with. Required.
    pub credentials: Option<Credentials>,
    /// How failed requests are retried; [`RetryPolicy::default`] when `None`.
    pub retry: Option<RetryPolicy>,
    /// Request timeouts; the defaults when `None`.
    pub timeouts: Option<Timeouts>,
    /// BatchWriteItem requests Init keeps in flight (1 to
    /// [`MAX_INIT_CONCURRENCY`]); [`DEFAULT_INIT_CONCURRENCY`] when `None`.
    pub init_concurrency: Option<u32>,
    /// How long an Init may go without any item accepted, in milliseconds.
    pub init_no_progress_ms: Option<u32>,
}

/// The names of the tuning settings, as the WIT's `config.settings` carries
/// them: each value a decimal `u32` (milliseconds for the `-ms` names).
pub const SETTING_NAMES: &[&str] = &[
    "max-attempts",
    "base-delay-ms",
    "max-delay-ms",
    "connect-ms",
    "first-byte-ms",
    "between-bytes-ms",
    "request-ms",
    "init-concurrency",
    "init-no-progress-ms",
];

/// The value of the setting `name` (a decimal `u32`), or `InvalidConfig`
/// naming it: for a guest's own settings beside the store's.
pub fn setting_value(name: &str, value: &str) -> Result<u32, StoreError> {
    value.trim().parse().map_err(|_| {
        StoreError::InvalidConfig(format!(
            "setting {name} must be a whole number from 0 to {}, not {value:?}",
            u32::MAX
        ))
    })
}

/// A guest's generated WIT `config` record of `ld-dynamodb:store/types` (the
/// store component's, or another guest's that exports the same types) as the
/// store's [`ConfigInput`], its named settings read by [`ConfigInput::set`]:
/// the one mapping of the record for every guest.
#[macro_export]
macro_rules! config_from_wit {
    ($config:expr) => {{
        let c = $config;
        let mut input = $crate::config::ConfigInput {
            table: c.table,
            prefix: c.prefix,
            region: c.region,
            endpoint: c.endpoint,
            credentials: Some($crate::config::Credentials {
                access_key_id: c.credentials.access_key_id,
                secret_access_key: c.credentials.secret_access_key,
                session_token: c.credentials.session_token,
            }),
            ..$crate::config::ConfigInput::default()
        };
        c.settings
            .iter()
            .try_for_each(|s| input.set(&s.name, &s.value))
            .map(|()| input)
    }};
}

impl ConfigInput {
    /// Sets the tuning setting `name` (one of [`SETTING_NAMES`]) from its
    /// text; an unknown name or a value that is not a decimal `u32` is
    /// `InvalidConfig`, naming it. A retry or timeout setting given alone
    /// keeps the defaults of the others; a setting given twice keeps the last.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), StoreError> {
        let n = setting_value(name, value)?;
        let ms = Duration::from_millis(n.into());
        let retry = || RetryPolicy::default();
        match name {
            "max-attempts" => self.retry.get_or_insert_with(retry).max_attempts = n,
            "base-delay-ms" => self.retry.get_or_insert_with(retry).base_delay = ms,
            "max-delay-ms" => self.retry.get_or_insert_with(retry).max_delay = ms,
            "connect-ms" => self.timeouts.get_or_insert_with(Timeouts::default).connect = Some(ms),
            "first-byte-ms" => {
                self.timeouts
                    .get_or_insert_with(Timeouts::default)
                    .first_byte = Some(ms)
            }
            "between-bytes-ms" => {
                self.timeouts
                    .get_or_insert_with(Timeouts::default)
                    .between_bytes = Some(ms)
            }
            "request-ms" => self.timeouts.get_or_insert_with(Timeouts::default).request = Some(ms),
            "init-concurrency" => self.init_concurrency = Some(n),
            "init-no-progress-ms" => self.init_no_progress_ms = Some(n),
            _ => {
                return Err(StoreError::InvalidConfig(format!(
                    "unknown setting {name:?}: the settings are {}",
                    SETTING_NAMES.join(", ")
                )))
            }
        }
        Ok(())
    }

    /// The tuning settings given, by name, as the WIT carries them (what
    /// [`ConfigInput::set`] reads back); durations in whole milliseconds,
    /// at most `u32::MAX`.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX).to_string();
        let mut out = Vec::new();
        if let Some(r) = self.retry {
            out.push(("max-attempts", r.max_attempts.to_string()));
            out.push(("base-delay-ms", ms(r.base_delay)));
            out.push(("max-delay-ms", ms(r.max_delay)));
        }
        if let Some(t) = self.timeouts {
            let named = [
                ("connect-ms", t.connect),
                ("first-byte-ms", t.first_byte),
                ("between-bytes-ms", t.between_bytes),
                ("request-ms", t.request),
            ];
            for (name, d) in named {
                if let Some(d) = d {
                    out.push((name, ms(d)));
                }
            }
        }
        if let Some(n) = self.init_concurrency {
            out.push(("init-concurrency", n.to_string()));
        }
        if let Some(n) = self.init_no_progress_ms {
            out.push(("init-no-progress-ms", n.to_string()));
        }
        out
    }
}

/// A validated configuration: [`Config::new`] is the only way to make one.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) table: String,
    /// Empty when no prefix is used.
    pub(crate) prefix: String,
    pub(crate) region: String,
    pub(crate) endpoint: Endpoint,
    /// The credentials the store opens with (the client holds the current ones).
    pub(crate) credentials: Credentials,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeouts: Timeouts,
    pub(crate) init_concurrency: usize,
    /// An Init fails when no item was accepted for this long.
    pub(crate) init_no_progress: Duration,
}

impl Config {
    /// Validates the settings; each problem gets its own message.
    pub fn new(input: ConfigInput) -> Result<Config, StoreError> {
        let invalid = |msg: String| Err(StoreError::InvalidConfig(msg));
        if input.table.trim().is_empty() {
            return invalid("table name is required".into());
        }
        if !valid_table_name(&input.table) {
            return invalid(format!(
                "table name {:?} is invalid: use 3 to 255 characters from a-z, A-Z, 0-9, '_', '-', '.'",
                input.table
            ));
        }
        if input.region.is_empty() {
            return invalid("region is required (for example us-east-1)".into());
        }
        if !valid_region(&input.region) {
            return invalid(format!(
                "region {:?} is invalid: expected lowercase letters, digits and '-', such as us-east-1",
                input.region
            ));
        }
        let endpoint = endpoint::resolve(&input.region, input.endpoint.as_deref())?;
        let credentials = match input.credentials {
            None => return invalid("credentials are required".into()),
            Some(c) => c.validated()?,
        };
        let retry = input.retry.unwrap_or_default();
        if retry.max_attempts == 0 {
            return invalid("retry max-attempts must be at least 1".into());
        }
        if retry.max_delay < retry.base_delay {
            return invalid("retry max-delay-ms must not be less than base-delay-ms".into());
        }
        let init_concurrency = match input.init_concurrency {
            None => DEFAULT_INIT_CONCURRENCY,
            Some(0) => return invalid("init-concurrency must be at least 1".into()),
            Some(n) if n as usize > MAX_INIT_CONCURRENCY => {
                return invalid(format!(
                    "init-concurrency must be at most {MAX_INIT_CONCURRENCY}, not {n}"
                ))
            }
            Some(n) => n as usize,
        };
        let init_no_progress = match input.init_no_progress_ms {
            None => DEFAULT_INIT_NO_PROGRESS,
            Some(0) => return invalid("init-no-progress-ms must be at least 1".into()),
            Some(ms) => Duration::from_millis(ms.into()),
        };
        let mut timeouts = input.timeouts.unwrap_or_default();
        match timeouts.request {
            Some(d) if d.is_zero() => {
                return invalid("timeouts request-ms must be at least 1".into())
            }
            Some(_) => {}
            None => timeouts.request = Some(DEFAULT_REQUEST_DEADLINE),
        }
        Ok(Config {
            table: input.table,
            prefix: input.prefix.unwrap_or_default(),
            region: input.region,
            endpoint,
            credentials,
            retry,
            timeouts,
            init_concurrency,
            init_no_progress,
        })
    }
}

/// DynamoDB's table name rule.
fn valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Region names such as `us-east-1`, `eu-central-2`, `us-gov-west-1`, `local`.
fn valid_region(region: &str) -> bool {
    region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
        && !region.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ConfigInput {
        ConfigInput {
            table: "flags".into(),
            region: "us-east-1".into(),
            credentials: Some(Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "very-secret-value".into(),
                session_token: Some("session-secret".into()),
            }),
            ..ConfigInput::default()
        }
    }

    fn error_of(input: ConfigInput) -> String {
        match Config::new(input) {
            Err(StoreError::InvalidConfig(msg)) => msg,
            other => panic!("expected invalid config, got {other:?}"),
        }
    }

    #[test]
    fn default_endpoint_is_derived_from_region() {
        let config = Config::new(ConfigInput {
            region: "eu-west-2".into(),
            ..input()
        })
        .unwrap();
        assert_eq!(
            config.endpoint.url(),
            "https://dynamodb.eu-west-2.amazonaws.com/"
        );
        assert_eq!(config.prefix, "");
        assert_eq!(config.init_concurrency, DEFAULT_INIT_CONCURRENCY);
        assert_eq!(config.timeouts.request, Some(DEFAULT_REQUEST_DEADLINE));
        let china = Config::new(ConfigInput {
            region: "cn-north-1".into(),
            ..input()
        })
        .unwrap();
        assert_eq!(
            china.endpoint.url(),
            "https://dynamodb.cn-north-1.amazonaws.com.cn/"
        );
    }

    #[test]
    fn explicit_endpoint_keeps_scheme_and_port() {
        let config = Config::new(ConfigInput {
            endpoint: Some("HTTP://127.0.0.1:8000/".into()),
            ..input()
        })
        .unwrap();
        assert_eq!(config.endpoint.scheme, "http");
        assert_eq!(config.endpoint.authority, "127.0.0.1:8000");
    }

    #[test]
    fn each_invalid_setting_has_its_own_message() {
        assert!(error_of(ConfigInput {
            table: "".into(),
            ..input()
        })
        .contains("table name is required"));
        assert!(error_of(ConfigInput {
            table: "a b".into(),
            ..input()
        })
        .contains("is invalid"));
        assert!(error_of(ConfigInput {
            region: "".into(),
            ..input()
        })
        .contains("region is required"));
        assert!(error_of(ConfigInput {
            region: "US East".into(),
            ..input()
        })
        .contains("region \"US East\" is invalid"));
        for (url, why) in [
            ("ftp://host", "only http and https"),
            ("localhost:8000", "expected http://"),
            ("http://", "host is missing"),
            ("http://h/path", "no path"),
            ("http://h:99999", "port"),
        ] {
            let msg = error_of(ConfigInput {
                endpoint: Some(url.into()),
                ..input()
            });
            assert!(msg.contains(why), "{url}: {msg}");
        }
        assert!(error_of(ConfigInput {
            credentials: None,
            ..input()
        })
        .contains("credentials are required"));
        let mut no_key = input();
        no_key.credentials.as_mut().unwrap().access_key_id = "".into();
        assert!(error_of(no_key).contains("access key id is required"));
        let mut no_secret = input();
        no_secret.credentials.as_mut().unwrap().secret_access_key = "".into();
        assert!(error_of(no_secret).contains("secret access key is required"));
        let zero = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(error_of(ConfigInput {
            retry: Some(zero),
            ..input()
        })
        .contains("max-attempts"));
        assert!(error_of(ConfigInput {
            init_concurrency: Some(0),
            ..input()
        })
        .contains("init-concurrency must be at least 1"));
        assert!(error_of(ConfigInput {
            init_concurrency: Some(65),
            ..input()
        })
        .contains("init-concurrency must be at most 64"));
        assert!(Config::new(ConfigInput {
            init_concurrency: Some(64),
            ..input()
        })
        .is_ok());
        assert!(error_of(ConfigInput {
            timeouts: Some(Timeouts {
                request: Some(Duration::ZERO),
                ..Timeouts::default()
            }),
            ..input()
        })
        .contains("request-ms"));
    }

    #[test]
    fn every_setting_reads_back_by_its_name() {
        let mut given = input();
        for (i, name) in SETTING_NAMES.iter().enumerate() {
            given.set(name, &(i + 1).to_string()).unwrap();
        }
        let back: Vec<(&str, String)> = given.settings();
        let expected: Vec<(&str, String)> = SETTING_NAMES
            .iter()
            .enumerate()
            .map(|(i, name)| (*name, (i + 1).to_string()))
            .collect();
        assert_eq!(back, expected);
        let config = Config::new(given.clone());
        // max-delay-ms (3) is not below base-delay-ms (2): valid.
        assert!(config.is_ok(), "{config:?}");
        let mut again = input();
        for (name, value) in given.settings() {
            again.set(name, &value).unwrap();
        }
        assert_eq!(again.settings(), given.settings());
    }

    #[test]
    fn a_setting_alone_keeps_the_others_defaults() {
        let mut given = input();
        given.set("max-attempts", "2").unwrap();
        given.set("request-ms", " 250 ").unwrap();
        assert_eq!(
            given.retry,
            Some(RetryPolicy {
                max_attempts: 2,
                ..RetryPolicy::default()
            })
        );
        assert_eq!(
            given.timeouts,
            Some(Timeouts {
                request: Some(Duration::from_millis(250)),
                ..Timeouts::default()
            })
        );
        assert_eq!(given.init_concurrency, None);
    }

    #[test]
    fn unknown_settings_and_bad_values_are_named() {
        let mut given = input();
        let unknown = given.set("max-attempt", "2").unwrap_err().to_string();
        assert!(
            unknown.contains("unknown setting \"max-attempt\"") && unknown.contains("max-attempts"),
            "{unknown}"
        );
        for bad in ["", "-1", "1.5", "4294967296", "ten"] {
            let error = given.set("init-concurrency", bad).unwrap_err().to_string();
            assert!(
                error.contains("setting init-concurrency must be a whole number"),
                "{bad}: {error}"
            );
        }
        assert_eq!(given.init_concurrency, None, "nothing was set");
        assert!(input().settings().is_empty());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = Config::new(input()).unwrap();
        let shown = format!("{config:?} {:?}", input());
        assert!(shown.contains("AKIDEXAMPLE"));
        assert!(!shown.contains("very-secret-value"));
        assert!(!shown.contains("session-secret"));
    }
}
