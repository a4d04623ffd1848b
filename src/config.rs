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
    pub access_key_id: String,
    pub secret_access_key: String,
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
    pub max_attempts: u32,
    pub base_delay: Duration,
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
    pub connect: Option<Duration>,
    pub first_byte: Option<Duration>,
    pub between_bytes: Option<Duration>,
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
#[derive(Debug, Clone, Default)]
pub struct ConfigInput {
    pub table: String,
    pub prefix: Option<String>,
    pub region: String,
    pub endpoint: Option<String>,
    pub credentials: Option<Credentials>,
    pub retry: Option<RetryPolicy>,
    pub timeouts: Option<Timeouts>,
    pub init_concurrency: Option<u32>,
    /// How long an Init may go without any item accepted, in milliseconds.
    pub init_no_progress_ms: Option<u32>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    /// Empty when no prefix is used.
    pub prefix: String,
    pub region: String,
    pub endpoint: Endpoint,
    /// The credentials the store opens with (the client holds the current ones).
    pub credentials: Credentials,
    pub retry: RetryPolicy,
    pub timeouts: Timeouts,
    pub init_concurrency: usize,
    /// An Init fails when no item was accepted for this long.
    pub init_no_progress: Duration,
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
    fn debug_output_hides_secrets() {
        let config = Config::new(input()).unwrap();
        let shown = format!("{config:?} {:?}", input());
        assert!(shown.contains("AKIDEXAMPLE"));
        assert!(!shown.contains("very-secret-value"));
        assert!(!shown.contains("session-secret"));
    }
}
