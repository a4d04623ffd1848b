//! A data store that threads share: a small pool of component instances over
//! one compiled component and one keep-alive connection pool, with credentials
//! kept current and instances replaced after a trap.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::background::Background;
use crate::connections::Pool;
use crate::credentials::{self, CredentialSource, Resolved};
use crate::embed::{
    Collection, Credentials, HostOptions, InitReport, Item, KeyedItem, RetryPolicy, Runtime,
    Session, StoreConfig, StoreError, Timeouts, UpsertOutcome,
};
use crate::environment;
use crate::error::{explained, Error};
use crate::outbound::WriteCounts;

/// Instances a store keeps by default: calls beyond this many wait.
pub const DEFAULT_INSTANCES: usize = 4;

/// A call on an open store inside one instance.
type Call<'s, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 's>>;

/// Settings of a [`DataStore`]; [`DataStoreBuilder::build`] opens it.
#[derive(Debug, Clone)]
pub struct DataStoreBuilder {
    table: String,
    prefix: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    retry: Option<RetryPolicy>,
    timeouts: Option<Timeouts>,
    init_concurrency: Option<u32>,
    init_no_progress: Option<Duration>,
    /// Settings by name, applied after the typed ones.
    settings: Vec<(String, String)>,
    credentials: Option<CredentialSource>,
    instances: usize,
    host: HostOptions,
    handle: Option<Handle>,
}

impl DataStoreBuilder {
    /// A store on `table`, with no prefix, the region from `AWS_REGION` (or the
    /// profile), the endpoint from `AWS_ENDPOINT_URL_DYNAMODB` or
    /// `AWS_ENDPOINT_URL` (else DynamoDB's public one) and the AWS default
    /// credential chain: see [`crate::environment`].
    pub fn new(table: impl Into<String>) -> Self {
        DataStoreBuilder {
            table: table.into(),
            prefix: None,
            region: None,
            endpoint: None,
            retry: None,
            timeouts: None,
            init_concurrency: None,
            init_no_progress: None,
            settings: Vec::new(),
            credentials: None,
            instances: DEFAULT_INSTANCES,
            host: HostOptions::default(),
            handle: None,
        }
    }

    /// Namespaces become `prefix:features`, `prefix:segments`, ...
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into()).filter(|p| !p.is_empty());
        self
    }

    /// The AWS region (also the signing region).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Another endpoint, such as `http://127.0.0.1:8000` (instead of the
    /// environment's).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Where credentials come from (default: [`CredentialSource::default_chain`]).
    pub fn credentials(mut self, source: CredentialSource) -> Self {
        self.credentials = Some(source);
        self
    }

    /// How failed requests are retried (default: 5 attempts, 50 ms base, 2 s cap).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Request timeouts (default: the component's 30 s deadline per attempt).
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = Some(timeouts);
        self
    }

    /// BatchWriteItem requests Init keeps in flight (1 to 64).
    pub fn init_concurrency(mut self, n: u32) -> Self {
        self.init_concurrency = Some(n);
        self
    }

    /// How long Init may go without any item accepted before it fails
    /// (default 60 s): Init paces its writes to what the partition accepts and
    /// re-sends throttled items for as long as items keep being accepted.
    pub fn init_no_progress(mut self, limit: Duration) -> Self {
        self.init_no_progress = Some(limit);
        self
    }

    /// A tuning setting by its WIT name (`ld_dynamodb_store::config::SETTING_NAMES`),
    /// such as one newer than the setters above; applied after them, and
    /// checked when the store is built (an unknown name or a bad value is
    /// [`Error::Store`] with `InvalidConfig`, naming it).
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// How many instances may run calls at once (at least 1).
    pub fn instances(mut self, n: usize) -> Self {
        self.instances = n.max(1);
        self
    }

    /// Memory cap, call timeout, outbound policy and stderr of each instance.
    pub fn host_options(mut self, options: HostOptions) -> Self {
        self.host = options;
        self
    }

    /// Drives the store's connections on the caller's tokio runtime instead
    /// of a private one (a thread of its own, by default). The runtime must
    /// outlive the store and keep running while calls are made; it may be a
    /// current-thread runtime only if something keeps it running.
    pub fn runtime_handle(mut self, handle: Handle) -> Self {
        self.handle = Some(handle);
        self
    }

    /// The store's configuration these settings give (the region and the
    /// endpoint from the environment when not set), with the credentials
    /// resolved now; the source they came from; and the host options.
    /// Shared with [`crate::evaluator::EvaluatorBuilder`].
    pub(crate) async fn resolve(
        self,
    ) -> Result<(StoreConfig, Resolved, CredentialSource, HostOptions), Error> {
        environment::require_table(&self.table)?;
        let region = environment::require_region(self.region).await?;
        let source = match self.credentials {
            Some(source) => source,
            None => CredentialSource::default_chain(None).await,
        };
        let resolved = source.current().await?;
        let config = StoreConfig::new(self.table, region, resolved.credentials.clone())
            .with_prefix(self.prefix)
            .with_endpoint(self.endpoint.or_else(environment::endpoint))
            .with_retry(self.retry)
            .with_timeouts(self.timeouts)
            .with_init_concurrency(self.init_concurrency)
            .with_init_no_progress(self.init_no_progress);
        let config = self
            .settings
            .iter()
            .try_fold(config, |config, (name, value)| {
                config.with_setting(name, value)
            })
            .map_err(Error::Store)?;
        Ok((config, resolved, source, self.host))
    }

    /// Resolves the credentials and opens a first instance, which validates the
    /// configuration (no request is sent).
    pub async fn build(self, runtime: Arc<Runtime>) -> Result<DataStore, Error> {
        let instances = self.instances;
        let handle = self.handle.clone();
        let (config, resolved, credentials, host) = self.resolve().await?;
        let (drivers, handle) = match handle {
            Some(handle) => (None, handle),
            None => {
                let drivers = Background::new("ld-dynamodb-connections", 1)
                    .map_err(|e| Error::Host(anyhow::Error::new(e)))?;
                let handle = drivers.handle().clone();
                (Some(drivers), handle)
            }
        };
        let connections = Arc::new(Pool::driven_by(handle));
        let shared = Arc::new(Shared {
            runtime,
            config,
            host,
            connections,
            _drivers: drivers,
            credentials,
            idle: Mutex::default(),
            permits: Semaphore::new(instances),
            instantiated: AtomicU64::new(0),
            meters: Mutex::default(),
        });
        let first = shared.instantiate(resolved.generation).await?;
        shared.idle.lock().unwrap().push(first);
        Ok(DataStore { shared })
    }
}

/// LaunchDarkly's DynamoDB data store over a pool of component instances.
/// Clones share the pool; it is `Send + Sync`, for use from many threads.
#[derive(Clone)]
pub struct DataStore {
    shared: Arc<Shared>,
}

struct Shared {
    runtime: Arc<Runtime>,
    /// The store's configuration (with the credentials it was opened with).
    config: StoreConfig,
    host: HostOptions,
    connections: Arc<Pool>,
    /// Opens and drives the connections, whichever runtime the calls run on
    /// (`None`: the caller's runtime does, [`DataStoreBuilder::runtime_handle`]).
    _drivers: Option<Background>,
    credentials: CredentialSource,
    idle: Mutex<Vec<Pooled>>,
    permits: Semaphore,
    instantiated: AtomicU64,
    /// The write meters of every instance created (see [`DataStore::write_counts`]).
    meters: Mutex<Vec<Meter>>,
}

/// A live view of one instance's BatchWriteItem counts.
type Meter = Box<dyn Fn() -> WriteCounts + Send + Sync>;

/// An open store in its instance, and the credentials generation it signs with.
struct Pooled {
    session: Session,
    generation: u64,
}

impl Shared {
    async fn instantiate(&self, generation: u64) -> Result<Pooled, Error> {
        let instance = self
            .runtime
            .instance_with_connections(&self.host, self.connections.clone())
            .await
            .map_err(Error::Host)?;
        self.instantiated.fetch_add(1, Ordering::Relaxed);
        self.meters
            .lock()
            .unwrap()
            .push(Box::new(instance.write_meter()));
        let session = instance.open(&self.config).await?;
        Ok(Pooled {
            session,
            generation,
        })
    }

    /// Gives the instance the current credentials if it has older ones.
    async fn sync_credentials(&self, pooled: &mut Pooled) -> Result<(), Error> {
        let current = self.credentials.current().await?;
        self.install(pooled, current.generation, &current.credentials)
            .await
    }

    async fn install(
        &self,
        pooled: &mut Pooled,
        generation: u64,
        credentials: &Credentials,
    ) -> Result<(), Error> {
        if pooled.generation != generation {
            pooled.session.set_credentials(credentials).await?;
            pooled.generation = generation;
        }
        Ok(())
    }

    /// Runs `call`, once more with refreshed credentials if the service
    /// rejected the ones it was signed with and a refresh gives others.
    async fn run<A, T, F>(&self, pooled: &mut Pooled, args: &A, call: &F) -> Result<T, Error>
    where
        F: for<'s> Fn(&'s mut Session, &'s A) -> Call<'s, T>,
    {
        self.sync_credentials(pooled).await?;
        match call(&mut pooled.session, args).await {
            Err(Error::Store(StoreError::Service(e))) if credentials::rejected(&e.code) => {
                // A failed refresh leaves the service's answer as the error.
                let refreshed = self.credentials.refresh_rejected(pooled.generation).await;
                match refreshed.ok().flatten() {
                    Some(fresh) => {
                        self.install(pooled, fresh.generation, &fresh.credentials)
                            .await?;
                        call(&mut pooled.session, args).await
                    }
                    None => Err(Error::Store(StoreError::Service(e))),
                }
            }
            Err(Error::Store(e)) => Err(Error::Store(explained(e, &self.config))),
            result => result,
        }
    }
}

impl DataStore {
    /// Settings for a store on `table`.
    pub fn builder(table: impl Into<String>) -> DataStoreBuilder {
        DataStoreBuilder::new(table)
    }

    /// Runs `call` with `args` on an idle instance (a new one when none is
    /// idle). An instance that trapped is dropped, so the next call gets a
    /// fresh one. (The arguments are passed, not captured, so that the call's
    /// future may borrow them for as long as it borrows the session.)
    async fn with_session<A, T, F>(&self, args: A, call: F) -> Result<T, Error>
    where
        F: for<'s> Fn(&'s mut Session, &'s A) -> Call<'s, T>,
    {
        let shared = &self.shared;
        let _permit = shared.permits.acquire().await.expect("never closed");
        let idle = shared.idle.lock().unwrap().pop();
        let mut pooled = match idle {
            Some(pooled) => pooled,
            // Generation 0: opened with the build-time credentials, so the
            // current ones are installed before the first call.
            None => shared.instantiate(0).await?,
        };
        let result = shared.run(&mut pooled, &args, &call).await;
        if !matches!(result, Err(Error::Host(_))) {
            shared.idle.lock().unwrap().push(pooled);
        }
        result
    }

    /// Replaces all data of the given kinds; the `$inited` marker is written last.
    pub async fn init(&self, data: &[Collection]) -> Result<InitReport, Error> {
        self.with_session(data, |s, data| Box::pin(s.init(data)))
            .await
    }

    /// One item (tombstones included), or `None`.
    pub async fn get(&self, kind: &str, key: &str) -> Result<Option<Item>, Error> {
        self.with_session((kind, key), |s, &(kind, key)| Box::pin(s.get(kind, key)))
            .await
    }

    /// Every item of a kind (tombstones included).
    pub async fn get_all(&self, kind: &str) -> Result<Vec<KeyedItem>, Error> {
        self.with_session(kind, |s, kind| Box::pin(s.get_all(kind)))
            .await
    }

    /// Writes the item if the table has no version of it or an older one.
    pub async fn upsert(&self, kind: &str, key: &str, item: &Item) -> Result<UpsertOutcome, Error> {
        self.with_session((kind, key, item), |s, &(kind, key, item)| {
            Box::pin(s.upsert(kind, key, item))
        })
        .await
    }

    /// Whether an Init has completed (the `$inited` marker exists).
    pub async fn is_initialized(&self) -> Result<bool, Error> {
        self.with_session((), |s, ()| Box::pin(s.is_initialized()))
            .await
    }

    /// Creates the table (on-demand capacity) and waits until it is active;
    /// false when it already existed.
    pub async fn create_table(&self) -> Result<bool, Error> {
        self.with_session((), |s, ()| Box::pin(s.create_table()))
            .await
    }

    /// Fetches credentials now and hands them to every instance at its next
    /// call if they changed (the store also does so shortly before they expire).
    pub async fn refresh_credentials(&self) -> Result<(), Error> {
        self.shared.credentials.refresh().await.map(drop)
    }

    /// Items the BatchWriteItem requests of all its instances have written so
    /// far, and the answers that throttled them: an Init's progress.
    pub fn write_counts(&self) -> WriteCounts {
        self.shared.meters.lock().unwrap().iter().map(|m| m()).sum()
    }

    /// Instances created so far (the first, later ones under load, and each
    /// replacement after a trap).
    pub fn instances_created(&self) -> u64 {
        self.shared.instantiated.load(Ordering::Relaxed)
    }
}
