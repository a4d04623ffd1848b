//! The app's configuration: settings from `wasi:config/store`, secrets from
//! the environment (`wasi:cli/environment`), so that no secret is ever on the
//! host's command line. A secret given as a setting is refused, naming the fix.

use crate::events::Upstream;
use crate::snapshot::Freshness;

/// How requests are authorized.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// The `Authorization` header must equal this SDK key.
    SdkKey(String),
    /// No key: every route is open (configured as `auth=none`).
    None,
}

/// What the app reads: non-secret settings from `wasi:config/store`, secrets
/// from the environment (`wasi:cli/environment`), so that no secret is ever
/// on the host's command line.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// The DynamoDB table (`table`).
    pub table: String,
    /// The key prefix the SDKs use (`prefix`).
    pub prefix: Option<String>,
    /// The AWS region (`region`).
    pub region: String,
    /// Another DynamoDB endpoint than AWS's (`endpoint`).
    pub endpoint: Option<String>,
    /// `AWS_ACCESS_KEY_ID`, from the environment.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`, from the environment.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN`, from the environment.
    pub session_token: Option<String>,
    /// Which keys the routes accept (`auth`).
    pub auth: Auth,
    /// The client-side ID the JS routes answer to (`client-side-id`); `None`
    /// turns them off.
    pub client_side_id: Option<String>,
    /// The mobile key the mobile routes require (`LD_MOBILE_KEY`); `None`
    /// turns them off.
    pub mobile_key: Option<String>,
    /// With `secure-mode=true`: the SDK key whose secure-mode hash the JS
    /// routes require in `?h=`.
    pub secure_mode_key: Option<String>,
    /// How often the table is read again, and how long the last snapshot
    /// serves while it cannot be (`refresh-interval-ms`, `max-stale-ms`).
    pub freshness: Freshness,
    /// One log line per request (`access-log=true`).
    pub access_log: bool,
    /// Whether the snapshot is read with strongly consistent reads
    /// (`consistent-reads=true`); eventually consistent by default.
    pub consistent_reads: bool,
    /// How long one evaluation answer may compute (`request-budget-ms`):
    /// past it, the answer is a 503 and the log says why.
    pub request_budget_ms: u32,
}

/// The default time one evaluation answer may compute: 2 s. An answer takes
/// about a millisecond per hundred flags; the bound keeps a pathological
/// flag or context from holding an instance, and stays well inside the
/// serve options' `-W timeout=10s`, past which wasmtime stops the instance
/// and answers 500.
pub const DEFAULT_REQUEST_BUDGET_MS: u64 = 2_000;
/// The default refresh interval: 15 s, the cache time of LaunchDarkly's
/// server SDKs over a persistent store. It bounds how late a change in the
/// table is served (the interval plus one read), and costs one read of the
/// table per instance per interval.
pub const DEFAULT_REFRESH_MS: u64 = 15_000;
/// The default maximum age of a snapshot served while DynamoDB cannot be
/// read: one hour. Last known flags are better than the SDKs' fallback
/// values through an outage, but a table that stays unreadable should
/// surface as 503s, not be served from memory for good.
pub const DEFAULT_MAX_STALE_MS: u64 = 3_600_000;
/// Whether refresh reads are strongly consistent by default: no. A snapshot
/// already serves data up to the refresh interval old (15 s by default);
/// DynamoDB's replication lag (usually under a second) is small beside it,
/// and eventually consistent reads cost half the read units, as the JS store
/// reads.
pub const DEFAULT_CONSISTENT_READS: bool = false;

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("table", &self.table)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("auth", &matches!(self.auth, Auth::SdkKey(_)))
            .field("client_side_id", &self.client_side_id)
            .field("mobile_key", &self.mobile_key.is_some())
            .field("secure_mode", &self.secure_mode_key.is_some())
            .field("freshness", &self.freshness)
            .field("access_log", &self.access_log)
            .field("consistent_reads", &self.consistent_reads)
            .field("request_budget_ms", &self.request_budget_ms)
            .finish_non_exhaustive()
    }
}

/// Secrets, each read from its environment variable, never from `wasi:config`.
const SECRETS: &[(&str, &str)] = &[
    ("aws-access-key-id", "AWS_ACCESS_KEY_ID"),
    ("aws-secret-access-key", "AWS_SECRET_ACCESS_KEY"),
    ("aws-session-token", "AWS_SESSION_TOKEN"),
    ("sdk-key", "LD_SDK_KEY"),
    ("mobile-key", "LD_MOBILE_KEY"),
];

/// The environment variable of the SDK key.
pub const SDK_KEY_VAR: &str = "LD_SDK_KEY";
/// The environment variable of the mobile key.
pub const MOBILE_KEY_VAR: &str = "LD_MOBILE_KEY";

/// A key from the environment: `None` when unset or empty, an error naming
/// the variable (never the value) when malformed.
fn env_key(env: &impl Fn(&str) -> Option<String>, var: &str) -> Result<Option<String>, String> {
    match env(var) {
        Some(key) if well_formed_key(&key) => Ok(Some(key)),
        Some(key) if !key.is_empty() => Err(format!(
            "{var} is malformed: a key is visible ASCII without spaces"
        )),
        _ => Ok(None),
    }
}

/// Whether `value` can be a key in an HTTP header: visible ASCII, no spaces.
fn well_formed_key(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic())
}

impl Settings {
    /// Reads the settings: `config` gives `wasi:config` values (`table` and
    /// `region` required; `prefix`, `endpoint`, `auth`, `client-side-id`,
    /// `secure-mode`, `refresh-interval-ms`, `max-stale-ms`, `access-log`,
    /// `consistent-reads` optional), `env` the environment (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `LD_SDK_KEY`,
    /// `LD_MOBILE_KEY`).
    ///
    /// `auth` is `sdk-key` (the default: `LD_SDK_KEY` must hold a well-formed
    /// key) or `none` (serve without a key, an explicit choice). A secret
    /// given through `wasi:config`, an empty or malformed key, or another
    /// `auth` is an error: the server then answers 503, never openly. So is
    /// `secure-mode=true` without a well-formed `LD_SDK_KEY`, or a
    /// `secure-mode` other than `true` or `false`.
    pub fn read(
        mut config: impl FnMut(&str) -> Result<Option<String>, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, String> {
        for (key, var) in SECRETS {
            if config(key)?.is_some() {
                return Err(format!(
                    "{key:?} is a secret and is not read from wasi:config (it would be on the \
                     host's command line): set {var} in the host's environment and pass it \
                     with `--env {var}`"
                ));
            }
        }
        let mut optional = |key: &str| -> Result<Option<String>, String> {
            Ok(config(key)?.filter(|v| !v.is_empty()))
        };
        let table = optional("table")?;
        let region = optional("region")?;
        let (Some(table), Some(region)) = (table, region) else {
            return Err(
                "the configuration needs \"table\" and \"region\" (`-S config-var=table=...`)"
                    .into(),
            );
        };
        let sdk_key = env_key(&env, SDK_KEY_VAR)?;
        let auth = match optional("auth")?.as_deref() {
            None | Some("sdk-key") => match &sdk_key {
                Some(key) => Auth::SdkKey(key.clone()),
                None => {
                    return Err(format!(
                        "{SDK_KEY_VAR} is unset or empty: set it and pass it with \
                         `--env {SDK_KEY_VAR}`, or configure `auth=none` to serve without a key"
                    ))
                }
            },
            Some("none") => Auth::None,
            Some(other) => {
                return Err(format!(
                    "auth={other:?} is not known: use \"sdk-key\" (the default) or \"none\""
                ))
            }
        };
        let secure_mode_key = match optional("secure-mode")?.as_deref() {
            None | Some("false") => None,
            Some("true") => Some(sdk_key.clone().ok_or_else(|| {
                format!(
                    "secure-mode=true needs the SDK key, which keys the hash: set \
                     {SDK_KEY_VAR} and pass it with `--env {SDK_KEY_VAR}`"
                )
            })?),
            Some(other) => {
                return Err(format!(
                    "secure-mode={other:?} is not known: use \"true\" or \"false\""
                ))
            }
        };
        let mut millis = |key: &str, default: u64| -> Result<u64, String> {
            match optional(key)? {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| *ms <= 365 * 24 * 3_600_000)
                    .ok_or_else(|| {
                        format!("{key}={v:?} is not a number of milliseconds (at most a year)")
                    }),
            }
        };
        let freshness = Freshness {
            refresh: millis("refresh-interval-ms", DEFAULT_REFRESH_MS)? * 1_000_000,
            max_stale: millis("max-stale-ms", DEFAULT_MAX_STALE_MS)? * 1_000_000,
        };
        let request_budget_ms =
            millis("request-budget-ms", DEFAULT_REQUEST_BUDGET_MS)?.min(u64::from(u32::MAX)) as u32;
        let mut flag = |key: &str, default: bool| match optional(key)?.as_deref() {
            None => Ok(default),
            Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(format!(
                "{key}={other:?} is not known: use \"true\" or \"false\""
            )),
        };
        let access_log = flag("access-log", false)?;
        let consistent_reads = flag("consistent-reads", DEFAULT_CONSISTENT_READS)?;
        let secret = |var: &str| env(var).filter(|v| !v.is_empty());
        Ok(Settings {
            table,
            region,
            prefix: optional("prefix")?,
            endpoint: optional("endpoint")?,
            access_key_id: secret("AWS_ACCESS_KEY_ID").unwrap_or_default(),
            secret_access_key: secret("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
            session_token: secret("AWS_SESSION_TOKEN"),
            auth,
            client_side_id: optional("client-side-id")?,
            mobile_key: env_key(&env, MOBILE_KEY_VAR)?,
            secure_mode_key,
            freshness,
            access_log,
            consistent_reads,
            request_budget_ms,
        })
    }

    /// Where the data is read, for log lines: table, prefix, region and
    /// endpoint (never a secret).
    pub fn describe(&self) -> String {
        format!(
            "table {:?}, prefix {:?}, region {:?}, endpoint {}",
            self.table,
            self.prefix.as_deref().unwrap_or(""),
            self.region,
            self.endpoint
                .as_deref()
                .map_or("DynamoDB's public endpoint".to_string(), |e| format!(
                    "{e:?}"
                ))
        )
    }
}

/// How often an instance that is kept sends its events by default: 5 s, the
/// flush interval of LaunchDarkly's server SDKs. A flush holds the instance
/// until the events service answers (a new request meanwhile gets another
/// instance, which reads the table), so sending after every answer would cost
/// a busy edge an instance per request in flight to the service; what an
/// instance holds when the host drops it (idle for 5 minutes under
/// `scripts/edge-serve-flags.sh`) is lost, as with an SDK process that exits
/// without closing.
pub const DEFAULT_EVENTS_FLUSH_MS: u64 = 5_000;

/// LaunchDarkly's events service, where payloads go unless `events-uri` says.
pub const DEFAULT_EVENTS_URI: &str = "https://events.launchdarkly.com";

/// The analytics events' settings: the app's own events (`events`, on by
/// default as in LaunchDarkly's server SDKs; they need `LD_SDK_KEY`), where
/// they and the event routes' payloads go (`events-uri`), and the privacy of
/// the contexts in the app's own events (`events-all-attributes-private`,
/// `events-private-attributes`: attribute references separated by commas),
/// and how often the app's own events are sent (`events-flush-interval-ms`).
#[derive(Clone, PartialEq, Eq)]
pub struct EventSettings {
    /// Whether the app sends its own events (`events`).
    pub send: bool,
    /// The events service's base URI (`events-uri`).
    pub uri: String,
    /// [`EventSettings::uri`], parsed.
    pub upstream: Upstream,
    /// The SDK key that authorizes the app's own events (`LD_SDK_KEY`).
    pub sdk_key: Option<String>,
    /// Every attribute but `key`, `kind` and `anonymous` left out of the
    /// app's events (`events-all-attributes-private`).
    pub all_attributes_private: bool,
    /// Attribute references left out of every context's events
    /// (`events-private-attributes`).
    pub private_attributes: Vec<String>,
    /// At most one payload per instance per interval, sent after an answer
    /// ([`DEFAULT_EVENTS_FLUSH_MS`]); an instance's first answer always
    /// sends, so a host that makes an instance per request sends every
    /// answer's events. 0: every answer's events right after it, as
    /// LaunchDarkly's Fastly SDK does.
    pub flush_interval_ms: u64,
}

impl std::fmt::Debug for EventSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSettings")
            .field("send", &self.send)
            .field("uri", &self.uri)
            .field("sdk_key", &self.sdk_key.is_some())
            .field("all_attributes_private", &self.all_attributes_private)
            .field("private_attributes", &self.private_attributes)
            .field("flush_interval_ms", &self.flush_interval_ms)
            .finish()
    }
}

impl EventSettings {
    /// Reads the settings (see [`EventSettings`]); a value that is not
    /// `true` or `false`, or an `events-uri` that is not an http(s) URI, is
    /// an error.
    pub fn read(
        mut config: impl FnMut(&str) -> Result<Option<String>, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<EventSettings, String> {
        let mut optional = |key: &str| -> Result<Option<String>, String> {
            Ok(config(key)?.filter(|v| !v.is_empty()))
        };
        let mut flag = |key: &str, default: bool| match optional(key)?.as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(format!(
                "{key}={other:?} is not known: use \"true\" or \"false\""
            )),
        };
        let send = flag("events", true)?;
        let all_attributes_private = flag("events-all-attributes-private", false)?;
        let flush_interval_ms = match optional("events-flush-interval-ms")? {
            None => DEFAULT_EVENTS_FLUSH_MS,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms <= 3_600_000)
                .ok_or_else(|| {
                    format!("events-flush-interval-ms={v:?} is not a number of milliseconds (at most an hour)")
                })?,
        };
        let uri = optional("events-uri")?.unwrap_or_else(|| DEFAULT_EVENTS_URI.to_string());
        let upstream = Upstream::parse(&uri)?;
        let private_attributes = optional("events-private-attributes")?
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        Ok(EventSettings {
            send,
            uri,
            upstream,
            sdk_key: env_key(&env, SDK_KEY_VAR)?,
            all_attributes_private,
            private_attributes,
            flush_interval_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(config: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Settings, String> {
        let config: HashMap<String, String> = config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::read(|k| Ok(config.get(k).cloned()), |k| env.get(k).cloned())
    }

    #[test]
    fn settings_take_secrets_from_the_environment_and_hide_them_in_debug() {
        let base = [("table", "t"), ("region", "us-east-1"), ("prefix", "")];
        let env = [
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("LD_SDK_KEY", "sdk-k3y"),
        ];
        let settings = read(&base, &env).unwrap();
        assert_eq!(settings.prefix, None);
        assert_eq!(settings.secret_access_key, "s3cr3t");
        assert!(settings.auth == Auth::SdkKey("sdk-k3y".into()));
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("sdk-k3y"),
            "{shown}"
        );
        let err = read(&[("table", "t")], &env).unwrap_err();
        assert!(err.contains("region"));
    }

    #[test]
    fn an_empty_or_malformed_key_or_a_secret_in_config_is_an_error() {
        let base = [("table", "t"), ("region", "us-east-1")];
        let err = read(&base, &[]).unwrap_err();
        assert!(
            err.contains("LD_SDK_KEY is unset") && err.contains("auth=none"),
            "{err}"
        );
        let err = read(&base, &[("LD_SDK_KEY", "")]).unwrap_err();
        assert!(err.contains("LD_SDK_KEY is unset or empty"), "{err}");
        let err = read(&base, &[("LD_SDK_KEY", "sdk key\n")]).unwrap_err();
        assert!(
            err.contains("malformed") && !err.contains("sdk key"),
            "{err}"
        );
        for (key, var) in SECRETS {
            let mut config = base.to_vec();
            config.push((key, "x"));
            let err = read(&config, &[("LD_SDK_KEY", "sdk-1")]).unwrap_err();
            assert!(err.contains(&format!("--env {var}")), "{err}");
        }
        let mut none = base.to_vec();
        none.push(("auth", "none"));
        assert!(read(&none, &[]).unwrap().auth == Auth::None);
        let mut odd = base.to_vec();
        odd.push(("auth", "sometimes"));
        assert!(read(&odd, &[]).unwrap_err().contains("auth=\"sometimes\""));
    }

    #[test]
    fn evaluation_routes_take_an_id_a_mobile_key_and_secure_mode() {
        let base = [("table", "t"), ("region", "us-east-1")];
        let env = [("LD_SDK_KEY", "sdk-1"), ("LD_MOBILE_KEY", "mob-1")];
        let off = read(&base, &[("LD_SDK_KEY", "sdk-1")]).unwrap();
        assert_eq!(
            (off.client_side_id, off.mobile_key, off.secure_mode_key),
            (None, None, None)
        );
        let mut config = base.to_vec();
        config.extend([("client-side-id", "env-1"), ("secure-mode", "true")]);
        let on = read(&config, &env).unwrap();
        assert_eq!(on.client_side_id.as_deref(), Some("env-1"));
        assert_eq!(on.mobile_key.as_deref(), Some("mob-1"));
        assert_eq!(on.secure_mode_key.as_deref(), Some("sdk-1"));
        assert!(!format!("{on:?}").contains("mob-1"));
        let err = read(
            &config,
            &[("LD_SDK_KEY", "sdk-1"), ("LD_MOBILE_KEY", "mob 1")],
        )
        .unwrap_err();
        assert!(
            err.contains("LD_MOBILE_KEY is malformed") && !err.contains("mob 1"),
            "{err}"
        );
        config.push(("auth", "none"));
        let err = read(&config, &[]).unwrap_err();
        assert!(err.contains("secure-mode=true needs the SDK key"), "{err}");
        let mut odd = base.to_vec();
        odd.push(("secure-mode", "yes"));
        let err = read(&odd, &[("LD_SDK_KEY", "sdk-1")]).unwrap_err();
        assert!(err.contains("secure-mode=\"yes\""), "{err}");
    }

    #[test]
    fn freshness_and_the_access_log_have_defaults_and_are_checked() {
        let base = [("table", "t"), ("region", "us-east-1"), ("auth", "none")];
        let defaults = read(&base, &[]).unwrap();
        assert_eq!(
            defaults.freshness,
            Freshness {
                refresh: 15_000_000_000,
                max_stale: 3_600_000_000_000
            }
        );
        assert!(!defaults.access_log && !defaults.consistent_reads);
        assert_eq!(defaults.request_budget_ms, 2_000);
        let mut set = base.to_vec();
        set.extend([
            ("request-budget-ms", "250"),
            ("refresh-interval-ms", "0"),
            ("max-stale-ms", "2500"),
            ("access-log", "true"),
            ("consistent-reads", "true"),
        ]);
        let set = read(&set, &[]).unwrap();
        assert_eq!(
            (set.freshness.refresh, set.freshness.max_stale),
            (0, 2_500_000_000)
        );
        assert!(set.access_log && set.consistent_reads);
        assert_eq!(set.request_budget_ms, 250);
        for (key, value) in [
            ("request-budget-ms", "2s"),
            ("refresh-interval-ms", "15s"),
            ("max-stale-ms", "-1"),
            ("max-stale-ms", "99999999999999"),
            ("access-log", "yes"),
            ("consistent-reads", "1"),
        ] {
            let mut bad = base.to_vec();
            bad.push((key, value));
            let err = read(&bad, &[]).unwrap_err();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn event_settings_default_on_to_launchdarkly_and_take_privacy_lists() {
        let none = |_: &str| Ok(None);
        let e = EventSettings::read(none, |v| (v == "LD_SDK_KEY").then(|| "sdk-1".to_string()))
            .unwrap();
        assert!(e.send && !e.all_attributes_private && e.private_attributes.is_empty());
        assert_eq!(e.flush_interval_ms, DEFAULT_EVENTS_FLUSH_MS);
        assert_eq!(e.uri, DEFAULT_EVENTS_URI);
        assert_eq!(e.sdk_key.as_deref(), Some("sdk-1"));
        assert!(!format!("{e:?}").contains("sdk-1"));
        let config = |values: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                Ok(values
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.to_string()))
            }
        };
        let e = EventSettings::read(
            config(&[
                ("events", "false"),
                ("events-uri", "http://127.0.0.1:8100/"),
                ("events-all-attributes-private", "true"),
                ("events-private-attributes", "email, /address/street,"),
                ("events-flush-interval-ms", "0"),
            ]),
            |_| None,
        )
        .unwrap();
        assert!(!e.send && e.all_attributes_private && e.sdk_key.is_none());
        assert_eq!(e.private_attributes, ["email", "/address/street"]);
        assert_eq!(e.upstream.authority, "127.0.0.1:8100");
        assert_eq!(e.flush_interval_ms, 0);
        for bad in [
            ("events", "yes"),
            ("events-uri", "ftp://x"),
            ("events-flush-interval-ms", "soon"),
        ] {
            let values: &'static [(&'static str, &'static str)] = Box::leak(Box::new([bad]));
            let error = EventSettings::read(config(values), |_| None).unwrap_err();
            assert!(error.contains(bad.0), "{error}");
        }
    }
}
