//! The flag evaluator component (`target/component/flag-evaluator.wasm`, the
//! evaluator with the store linked in) in wasmtime: LaunchDarkly evaluation
//! over the table, called from Rust. Every call returns the library's one
//! [`Error`]: a trap or host failure, the store's error, or the evaluator's
//! own ([`Error::Evaluation`]: an invalid context or default).
//!
//! [`Evaluator::builder`] opens one as [`crate::DataStore::builder`] opens a
//! store: the region, endpoint and credentials from the environment and the
//! AWS default chain, the credentials kept current. docs/evaluator.md's example:
//!
//! ```no_run
//! # use std::time::Duration;
//! # use ld_dynamodb_host::evaluator::{Evaluator, EvaluatorRuntime, FlagFilter, StateOptions};
//! # async fn example() -> anyhow::Result<()> {
//! let runtime = EvaluatorRuntime::load("target/component/flag-evaluator.wasm".as_ref())?;
//! // Region, endpoint and credentials (refreshed before they expire) as DataStore::builder reads them.
//! let mut flags = Evaluator::builder("flags")
//!     .region("us-east-1")
//!     .cache_ttl(Duration::from_secs(15))  // one read of the table serves 15 s of calls
//!     .build(&runtime)
//!     .await?;
//! let detail = flags.evaluate("checkout-banner", r#"{"kind":"user","key":"user-1"}"#, "false").await?;
//! println!("{} {:?} {}", detail.value_json, detail.variation_index, detail.reason_json);
//! let bootstrap = flags.all_flags_state(r#"{"key":"user-1"}"#, StateOptions {
//!     filter: FlagFilter::ClientSide, with_reasons: false, details_only_for_tracked_flags: false,
//! }).await?;
//! # let _ = bootstrap;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use wasmtime::component::{Component, ResourceAny};
use wasmtime::{Engine, Store};

use crate::cache;
use crate::credentials::{self, CredentialSource, Resolved};
use crate::embed::{
    millis, new_engine, proxy_linker, HostOptions, HostState, HostStore, RetryPolicy, StoreConfig,
    Timeouts,
};
use crate::error::Error;
use crate::store::DataStoreBuilder;

mod bindings {
    //! Generated from the WIT, whose doc comments document the types.
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "../evaluator/wit",
        world: "evaluator-exports",
        exports: { default: async },
        additional_derives: [PartialEq, Eq],
        // The store's types are the store bindings' own: one generated type
        // per WIT type, mapped once (`crate::embed`'s conversions).
        with: {
            "ld-dynamodb:store/types": crate::embed::bindings::exports::ld_dynamodb::store::types,
        },
    });
}

pub use api::{
    EvalError, Evaluation, EventSettings, FlagFilter, FlushReport, StateOptions, StoreError,
};
use bindings::exports::ld_dynamodb::evaluation::evaluator as api;
use bindings::{EvaluatorExports, EvaluatorExportsPre};

/// The evaluator's file name.
pub const EVALUATOR_FILE: &str = "flag-evaluator.wasm";

/// LaunchDarkly's events service: where events go unless
/// [`EventSettings::base_uri`] says otherwise.
pub const DEFAULT_EVENTS_URI: &str = "https://events.launchdarkly.com";

/// A compiled flag evaluator, ready to instantiate many times.
pub struct EvaluatorRuntime {
    engine: Engine,
    pre: EvaluatorExportsPre<HostState>,
}

impl EvaluatorRuntime {
    /// Compiles the flag evaluator at `path` (or loads it from the compile cache).
    pub fn load(path: &Path) -> Result<EvaluatorRuntime> {
        Self::load_with_cache(path, cache::default_dir().as_deref())
    }

    /// [`EvaluatorRuntime::load`] with another compile cache folder (`None`: none).
    pub fn load_with_cache(path: &Path, cache_dir: Option<&Path>) -> Result<EvaluatorRuntime> {
        let engine = new_engine()?;
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the evaluator at {}", path.display()))?;
        let component: Component = cache::load(&engine, &bytes, cache_dir)
            .with_context(|| format!("component {}", path.display()))?;
        let pre = EvaluatorExportsPre::new(proxy_linker(&engine)?.instantiate_pre(&component)?)?;
        Ok(EvaluatorRuntime { engine, pre })
    }

    /// A fresh instance with an evaluator open on `config`, reading the table
    /// on every call.
    pub async fn open(
        &self,
        options: &HostOptions,
        config: &StoreConfig,
    ) -> Result<Evaluator, Error> {
        self.open_with_cache(options, config, None).await
    }

    /// [`EvaluatorRuntime::open`], with each snapshot of the table serving the
    /// calls of the next `ttl` (never longer; `None`: no cache).
    pub async fn open_with_cache(
        &self,
        options: &HostOptions,
        config: &StoreConfig,
        ttl: Option<std::time::Duration>,
    ) -> Result<Evaluator, Error> {
        let HostStore { mut store, .. } = HostStore::new(&self.engine, options, Arc::default());
        store.data_mut().allow_endpoint_of(config);
        let bindings = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(host_failure)?;
        let handle = bindings
            .ld_dynamodb_evaluation_evaluator()
            .evaluator()
            .call_open(&mut store, &evaluator_config(config, ttl))
            .await
            .map_err(host_failure)?
            .map_err(|e| Error::Store(e.into()))?;
        Ok(Evaluator {
            store,
            bindings,
            handle,
            credentials: None,
        })
    }
}

/// Settings of an [`Evaluator`] on a table, as [`DataStoreBuilder`]'s:
/// [`EvaluatorBuilder::build`] opens it.
#[derive(Debug, Clone)]
pub struct EvaluatorBuilder {
    store: DataStoreBuilder,
    cache_ttl: Option<Duration>,
}

impl EvaluatorBuilder {
    /// An evaluator on `table`, with no prefix, the region from `AWS_REGION`
    /// (or the profile), the endpoint from `AWS_ENDPOINT_URL_DYNAMODB` or
    /// `AWS_ENDPOINT_URL` (else DynamoDB's public one), the AWS default
    /// credential chain, and no cache: see [`crate::environment`].
    pub fn new(table: impl Into<String>) -> Self {
        EvaluatorBuilder {
            store: DataStoreBuilder::new(table),
            cache_ttl: None,
        }
    }

    /// Namespaces become `prefix:features`, `prefix:segments`, ...
    pub fn prefix(self, prefix: impl Into<String>) -> Self {
        self.with_store(|s| s.prefix(prefix))
    }

    /// The AWS region (also the signing region).
    pub fn region(self, region: impl Into<String>) -> Self {
        self.with_store(|s| s.region(region))
    }

    /// Another endpoint, such as `http://127.0.0.1:8000` (instead of the
    /// environment's).
    pub fn endpoint(self, endpoint: impl Into<String>) -> Self {
        self.with_store(|s| s.endpoint(endpoint))
    }

    /// Where credentials come from (default: [`CredentialSource::default_chain`]).
    /// They are fetched again before they expire, and when DynamoDB rejects
    /// them; the evaluator then opens again with the new ones (its cache
    /// starts empty).
    pub fn credentials(self, source: CredentialSource) -> Self {
        self.with_store(|s| s.credentials(source))
    }

    /// How failed requests are retried (default: 5 attempts, 50 ms base, 2 s cap).
    pub fn retry(self, retry: RetryPolicy) -> Self {
        self.with_store(|s| s.retry(retry))
    }

    /// Request timeouts (default: the component's 30 s deadline per attempt).
    pub fn timeouts(self, timeouts: Timeouts) -> Self {
        self.with_store(|s| s.timeouts(timeouts))
    }

    /// A tuning setting of the store by its WIT name (see
    /// [`DataStoreBuilder::setting`]).
    pub fn setting(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.with_store(|s| s.setting(name, value))
    }

    /// How long one snapshot of the table (flags, segments, the `$inited`
    /// marker, read in one round trip) serves later calls; never longer.
    /// Default: none, every call reads the table.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = Some(ttl).filter(|ttl| !ttl.is_zero());
        self
    }

    /// Memory cap, call timeout, outbound policy and stderr of the instance.
    pub fn host_options(self, options: HostOptions) -> Self {
        self.with_store(|s| s.host_options(options))
    }

    fn with_store(mut self, set: impl FnOnce(DataStoreBuilder) -> DataStoreBuilder) -> Self {
        self.store = set(self.store);
        self
    }

    /// Resolves the credentials and opens the evaluator in a fresh instance of
    /// `runtime`, which validates the configuration (no request is sent).
    pub async fn build(self, runtime: &EvaluatorRuntime) -> Result<Evaluator, Error> {
        let (config, resolved, source, host) = self.store.resolve().await?;
        let mut evaluator = runtime
            .open_with_cache(&host, &config, self.cache_ttl)
            .await?;
        evaluator.credentials = Some(Refresh {
            source,
            generation: resolved.generation,
            config: evaluator_config(&config, self.cache_ttl),
        });
        Ok(evaluator)
    }
}

/// The credentials an evaluator from [`EvaluatorBuilder`] keeps current.
struct Refresh {
    source: CredentialSource,
    /// The generation of the credentials it was opened with.
    generation: u64,
    /// Its configuration, to open it again with other credentials.
    config: api::Config,
}

/// The evaluator's store error (the store's WIT type) as the store crate's,
/// for [`Error::Store`] and its one text.
impl From<StoreError> for ld_dynamodb_store::error::StoreError {
    fn from(error: StoreError) -> Self {
        crate::embed::store_error(error)
    }
}

/// The store's configuration as the evaluator opens it: the store's WIT
/// record, with the cache's time to live as the evaluator's own setting.
fn evaluator_config(config: &StoreConfig, ttl: Option<std::time::Duration>) -> api::Config {
    let mut wit = config.to_wit();
    if let Some(ttl) = ttl {
        wit.settings.push(crate::embed::wit::Setting {
            name: "cache-ttl-ms".into(),
            value: millis(ttl).to_string(),
        });
    }
    wit
}

/// A call on an open evaluator: the outer `Result` is a trap.
type Call<'s, T> =
    Pin<Box<dyn Future<Output = wasmtime::Result<Result<T, EvalError>>> + Send + 's>>;

/// A call's outcome as the library's one error: a trap or host failure is
/// [`Error::Host`], the store's error [`Error::Store`] (the store crate's
/// type, as a [`crate::DataStore`] gives it), an invalid context or default
/// [`Error::Evaluation`].
fn answer<T>(result: wasmtime::Result<Result<T, EvalError>>) -> Result<T, Error> {
    match result {
        Err(e) => Err(host_failure(e)),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(EvalError::Store(e))) => Err(Error::Store(e.into())),
        Ok(Err(e)) => Err(Error::Evaluation(e)),
    }
}

/// A trap or host failure as the library's error.
fn host_failure(error: wasmtime::Error) -> Error {
    Error::Host(error.into())
}

/// An open evaluator in its instance. Each call returns the library's
/// [`Error`]: a trap or host failure, credentials that could not be fetched
/// (for one from [`Evaluator::builder`]), the store's error or the
/// evaluator's own.
pub struct Evaluator {
    store: Store<HostState>,
    bindings: EvaluatorExports,
    handle: ResourceAny,
    /// Set by [`EvaluatorBuilder`]: the credentials it keeps current.
    credentials: Option<Refresh>,
}

impl Evaluator {
    /// Settings for an evaluator on `table`.
    pub fn builder(table: impl Into<String>) -> EvaluatorBuilder {
        EvaluatorBuilder::new(table)
    }

    /// One flag for a context (JSON); `default_json` when it cannot be evaluated.
    pub async fn evaluate(
        &mut self,
        flag_key: &str,
        context_json: &str,
        default_json: &str,
    ) -> Result<Evaluation, Error> {
        let args = (flag_key, context_json, default_json);
        self.signed(&args, |e, &(flag, context, default)| {
            Box::pin(async move {
                e.bindings
                    .ld_dynamodb_evaluation_evaluator()
                    .evaluator()
                    .call_evaluate(&mut e.store, e.handle, flag, context, default)
                    .await
            })
        })
        .await
    }

    /// Every flag's state for a context, as `allFlagsState(...).toJSON()`.
    pub async fn all_flags_state(
        &mut self,
        context_json: &str,
        options: StateOptions,
    ) -> Result<String, Error> {
        self.signed(&(context_json, options), |e, &(context, options)| {
            Box::pin(async move {
                e.bindings
                    .ld_dynamodb_evaluation_evaluator()
                    .evaluator()
                    .call_all_flags_state(&mut e.store, e.handle, context, options)
                    .await
            })
        })
        .await
    }

    /// The secure-mode hash of a context.
    pub async fn secure_mode_hash(
        &mut self,
        context_json: &str,
        sdk_key: &str,
    ) -> Result<String, Error> {
        self.signed(&(context_json, sdk_key), |e, &(context, key)| {
            Box::pin(async move {
                e.bindings
                    .ld_dynamodb_evaluation_evaluator()
                    .evaluator()
                    .call_secure_mode_hash(&mut e.store, e.handle, context, key)
                    .await
            })
        })
        .await
    }

    /// Turns analytics events on with `settings` (or off with `None`): from
    /// then on evaluations, [`Evaluator::track`] and [`Evaluator::identify`]
    /// queue LaunchDarkly's events, and [`Evaluator::flush`] sends them (the
    /// instance may reach the events service's origin). An invalid base URI
    /// or SDK key is [`Error::Events`].
    pub async fn configure_events(&mut self, settings: Option<EventSettings>) -> Result<(), Error> {
        if let Some(s) = &settings {
            let base = s.base_uri.as_deref().unwrap_or(DEFAULT_EVENTS_URI);
            self.store.data_mut().allow_origin(base);
        }
        self.bindings
            .ld_dynamodb_evaluation_evaluator()
            .call_configure_events(&mut self.store, settings.as_ref())
            .await
            .map_err(host_failure)?
            .map_err(Error::Events)
    }

    /// Queues a custom event (LaunchDarkly's `track`): `data_json` any JSON,
    /// `metric_value` for numeric metrics.
    pub async fn track(
        &mut self,
        key: &str,
        context_json: &str,
        data_json: Option<&str>,
        metric_value: Option<f64>,
    ) -> Result<(), Error> {
        answer(
            self.bindings
                .ld_dynamodb_evaluation_evaluator()
                .call_track(&mut self.store, key, context_json, data_json, metric_value)
                .await,
        )
    }

    /// Queues an identify event for a context.
    pub async fn identify(&mut self, context_json: &str) -> Result<(), Error> {
        answer(
            self.bindings
                .ld_dynamodb_evaluation_evaluator()
                .call_identify(&mut self.store, context_json)
                .await,
        )
    }

    /// Sends the queued events and the summary of the evaluations as one
    /// payload (retried once, with the same payload ID, after a failure that
    /// may pass), and says what happened. Sending stops for good after the
    /// service refuses the SDK key.
    pub async fn flush(&mut self) -> Result<FlushReport, Error> {
        self.bindings
            .ld_dynamodb_evaluation_evaluator()
            .call_flush(&mut self.store)
            .await
            .map_err(host_failure)
    }

    /// Runs `call` with the current credentials, and once more with fresh
    /// ones if DynamoDB rejected them and a refresh gives others, as a
    /// [`crate::DataStore`] does (an evaluator opened with a fixed
    /// configuration just runs it).
    /// (The arguments are passed, not captured, so that the call's future may
    /// borrow them for as long as it borrows the evaluator.)
    async fn signed<A: Sync, T>(
        &mut self,
        args: &A,
        call: impl for<'s> Fn(&'s mut Evaluator, &'s A) -> Call<'s, T>,
    ) -> Result<T, Error> {
        let Some(held) = &self.credentials else {
            return answer(call(self, args).await);
        };
        let current = held.source.current().await?;
        self.reopen(current).await?;
        match call(self, args).await {
            Ok(Err(EvalError::Store(StoreError::Service(e)))) if credentials::rejected(&e.code) => {
                let held = self.credentials.as_ref().expect("checked above");
                // A failed refresh leaves the service's answer as the error.
                let refreshed = held.source.refresh_rejected(held.generation).await;
                let Some(fresh) = refreshed.ok().flatten() else {
                    return Err(Error::Store(StoreError::Service(e).into()));
                };
                self.reopen(fresh).await?;
                answer(call(self, args).await)
            }
            result => answer(result),
        }
    }

    /// Opens the evaluator again with `resolved` when they are not the
    /// credentials it holds, and drops the old one.
    async fn reopen(&mut self, resolved: Resolved) -> Result<(), Error> {
        let Some(held) = self.credentials.as_mut() else {
            return Ok(());
        };
        if held.generation == resolved.generation {
            return Ok(());
        }
        held.config.credentials = crate::embed::wit_credentials(&resolved.credentials);
        let opened = self
            .bindings
            .ld_dynamodb_evaluation_evaluator()
            .evaluator()
            .call_open(&mut self.store, &held.config)
            .await
            .map_err(host_failure)?;
        let handle = opened.map_err(|e| Error::Store(e.into()))?;
        let old = std::mem::replace(&mut self.handle, handle);
        old.resource_drop_async(&mut self.store)
            .await
            .map_err(host_failure)?;
        held.generation = resolved.generation;
        Ok(())
    }
}
