//! The flag evaluator component (`target/component/flag-evaluator.wasm`, the
//! evaluator composed with the store) in wasmtime: LaunchDarkly evaluation
//! over the table, called from Rust.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use wasmtime::component::{Component, ResourceAny};
use wasmtime::{Engine, Store};

use crate::cache;
use crate::embed::{new_engine, proxy_linker, HostOptions, HostState, HostStore, StoreConfig};

mod bindings {
    //! Generated from the WIT, whose doc comments document the types.
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "../evaluator/wit",
        world: "evaluator-exports",
        exports: { default: async },
        additional_derives: [PartialEq, Eq],
    });
}

pub use api::{EvalError, Evaluation, FlagFilter, StateOptions, StoreError};
use bindings::exports::ld_dynamodb::evaluation::evaluator as api;
use bindings::{EvaluatorExports, EvaluatorExportsPre};

/// The evaluator's file name.
pub const EVALUATOR_FILE: &str = "flag-evaluator.wasm";

/// A compiled flag evaluator, ready to instantiate many times.
pub struct EvaluatorRuntime {
    engine: Engine,
    pre: EvaluatorExportsPre<HostState>,
}

impl EvaluatorRuntime {
    /// Compiles the composed evaluator at `path` (or loads it from the compile cache).
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
    /// on every call. The outer `Result` is a trap or host failure; the inner
    /// one the store's own error.
    pub async fn open(
        &self,
        options: &HostOptions,
        config: &StoreConfig,
    ) -> Result<Result<Evaluator, api::StoreError>> {
        self.open_with_cache(options, config, None).await
    }

    /// [`EvaluatorRuntime::open`], with each snapshot of the table serving the
    /// calls of the next `ttl` (never longer; `None`: no cache).
    pub async fn open_with_cache(
        &self,
        options: &HostOptions,
        config: &StoreConfig,
        ttl: Option<std::time::Duration>,
    ) -> Result<Result<Evaluator, api::StoreError>> {
        let HostStore { mut store, .. } = HostStore::new(&self.engine, options, Arc::default());
        store.data_mut().allow_endpoint_of(config);
        let bindings = self.pre.instantiate_async(&mut store).await?;
        let opened = bindings
            .ld_dynamodb_evaluation_evaluator()
            .evaluator()
            .call_open(&mut store, &evaluator_config(config, ttl))
            .await?;
        Ok(opened.map(|handle| Evaluator {
            store,
            bindings,
            handle,
        }))
    }
}

/// The store's configuration as the evaluator's record (the same fields),
/// with the cache's time to live.
fn evaluator_config(config: &StoreConfig, ttl: Option<std::time::Duration>) -> api::Config {
    api::Config {
        table: config.table.clone(),
        prefix: config.prefix.clone(),
        region: config.region.clone(),
        endpoint: config.endpoint.clone(),
        credentials: api::Credentials {
            access_key_id: config.credentials.access_key_id.clone(),
            secret_access_key: config.credentials.secret_access_key.clone(),
            session_token: config.credentials.session_token.clone(),
        },
        retry: config.retry.map(|r| api::RetryPolicy {
            max_attempts: r.max_attempts,
            base_delay_ms: r.base_delay_ms,
            max_delay_ms: r.max_delay_ms,
        }),
        timeouts: config.timeouts.map(|t| api::Timeouts {
            connect_ms: t.connect_ms,
            first_byte_ms: t.first_byte_ms,
            between_bytes_ms: t.between_bytes_ms,
            request_ms: t.request_ms,
        }),
        init_concurrency: config.init_concurrency,
        init_no_progress_ms: config.init_no_progress_ms,
        cache_ttl_ms: ttl.map(|t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX)),
    }
}

/// An open evaluator in its instance.
pub struct Evaluator {
    store: Store<HostState>,
    bindings: EvaluatorExports,
    handle: ResourceAny,
}

impl Evaluator {
    /// One flag for a context (JSON); `default_json` when it cannot be evaluated.
    pub async fn evaluate(
        &mut self,
        flag_key: &str,
        context_json: &str,
        default_json: &str,
    ) -> Result<Result<Evaluation, EvalError>> {
        self.bindings
            .ld_dynamodb_evaluation_evaluator()
            .evaluator()
            .call_evaluate(
                &mut self.store,
                self.handle,
                flag_key,
                context_json,
                default_json,
            )
            .await
            .map_err(anyhow::Error::from)
    }

    /// Every flag's state for a context, as `allFlagsState(...).toJSON()`.
    pub async fn all_flags_state(
        &mut self,
        context_json: &str,
        options: StateOptions,
    ) -> Result<Result<String, EvalError>> {
        self.bindings
            .ld_dynamodb_evaluation_evaluator()
            .evaluator()
            .call_all_flags_state(&mut self.store, self.handle, context_json, options)
            .await
            .map_err(anyhow::Error::from)
    }

    /// The secure-mode hash of a context.
    pub async fn secure_mode_hash(
        &mut self,
        context_json: &str,
        sdk_key: &str,
    ) -> Result<Result<String, EvalError>> {
        self.bindings
            .ld_dynamodb_evaluation_evaluator()
            .evaluator()
            .call_secure_mode_hash(&mut self.store, self.handle, context_json, sdk_key)
            .await
            .map_err(anyhow::Error::from)
    }
}
