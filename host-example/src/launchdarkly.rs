//! LaunchDarkly's Rust server SDK on the component: a
//! [`PersistentDataStoreFactory`] whose stores map the SDK's calls onto a
//! [`DataStore`].
//!
//! The SDK calls its store synchronously, from its own tasks and from the
//! threads that evaluate flags. Each store created by the factory runs the
//! component's calls on a small async runtime of its own and waits for them,
//! so it may be called from any thread, inside an async runtime or not.
//!
//! A [`StoreObserver`] given to [`PersistentStoreFactory::observed`] is told
//! of every Init and upsert the SDK writes, with the component's outcome
//! (`ld-dynamodb sync` logs them and reports the first Init).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{mpsc, Arc};

use launchdarkly_server_sdk::{
    AllData, DataKind, PersistentDataStore, PersistentDataStoreFactory, PersistentStoreError,
    SerializedItem,
};

use crate::background::Background;
use crate::data::Kind;
use crate::embed::{Collection, InitReport, Item, KeyedItem, UpsertOutcome};
use crate::error::Error;
use crate::store::DataStore;

/// Creates SDK stores over a [`DataStore`]; give it to
/// `PersistentDataStoreBuilder::new(Arc::new(factory))`.
#[derive(Clone)]
pub struct PersistentStoreFactory {
    store: DataStore,
    observer: Option<Arc<dyn StoreObserver>>,
}

impl PersistentStoreFactory {
    /// A factory whose stores share `store`'s instances and connections.
    pub fn new(store: DataStore) -> Self {
        PersistentStoreFactory {
            store,
            observer: None,
        }
    }

    /// A factory whose stores also tell `observer` what they write.
    pub fn observed(store: DataStore, observer: Arc<dyn StoreObserver>) -> Self {
        PersistentStoreFactory {
            store,
            observer: Some(observer),
        }
    }
}

/// Told of the writes of the SDK's stores, from the SDK's threads.
pub trait StoreObserver: Send + Sync {
    /// An Init of this many flags and segments is about to be written.
    fn init_started(&self, flags: usize, segments: usize);
    /// The Init ended: the component's report, or why it failed.
    fn init_done(&self, result: &Result<InitReport, Error>);
    /// An upsert of `kind`'s `key` at `version` (a tombstone when `deleted`)
    /// ended: the component's outcome, or why it failed.
    fn upserted(
        &self,
        kind: Kind,
        key: &str,
        version: u64,
        deleted: bool,
        result: &Result<UpsertOutcome, Error>,
    );
}

impl PersistentDataStoreFactory for PersistentStoreFactory {
    fn create_persistent_data_store(&self) -> Result<Box<dyn PersistentDataStore>, std::io::Error> {
        Ok(Box::new(SdkStore {
            store: self.store.clone(),
            runtime: Background::new("ld-dynamodb-sdk-store", 2)?,
            observer: self.observer.clone(),
        }))
    }
}

/// The SDK's view of the store.
struct SdkStore {
    store: DataStore,
    /// Runs the calls.
    runtime: Background,
    observer: Option<Arc<dyn StoreObserver>>,
}

impl SdkStore {
    /// Runs `call` on the store's runtime and waits for it.
    fn run<T, F>(&self, call: impl FnOnce(DataStore) -> F) -> Result<T, PersistentStoreError>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        self.call(call)
            .map_err(|e| PersistentStoreError::new(e.to_string()))
    }

    /// Runs `call` on the store's runtime and waits for it; the library's error.
    fn call<T, F>(&self, call: impl FnOnce(DataStore) -> F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = mpsc::sync_channel(1);
        let future = call(self.store.clone());
        self.runtime.handle().spawn(async move {
            let _ = done.send(future.await);
        });
        result.recv().unwrap_or_else(|_| {
            Err(Error::Host(anyhow::anyhow!(
                "the store's call panicked or was cancelled"
            )))
        })
    }

    fn item(&self, kind: Kind, key: &str) -> Result<Option<SerializedItem>, PersistentStoreError> {
        let key = key.to_string();
        let item = self.run(|store| async move { store.get(kind.namespace(), &key).await })?;
        Ok(item.map(serialized))
    }
}

fn serialized(item: Item) -> SerializedItem {
    SerializedItem {
        version: item.version,
        deleted: item.deleted,
        serialized_item: item.json,
    }
}

fn collection(kind: Kind, items: HashMap<String, SerializedItem>) -> Collection {
    Collection {
        kind: kind.namespace().to_string(),
        items: items
            .into_iter()
            .map(|(key, item)| KeyedItem {
                key,
                item: Item {
                    version: item.version,
                    deleted: item.deleted,
                    json: item.serialized_item,
                },
            })
            .collect(),
    }
}

impl PersistentDataStore for SdkStore {
    fn init(
        &mut self,
        all_data: AllData<SerializedItem, SerializedItem>,
    ) -> Result<(), PersistentStoreError> {
        if let Some(observer) = &self.observer {
            observer.init_started(all_data.flags.len(), all_data.segments.len());
        }
        // Segments first, so they land before the flags that use them.
        let data = vec![
            collection(Kind::Segments, all_data.segments),
            collection(Kind::Flags, all_data.flags),
        ];
        let result = self.call(|store| async move { store.init(&data).await });
        if let Some(observer) = &self.observer {
            observer.init_done(&result);
        }
        result
            .map(drop)
            .map_err(|e| PersistentStoreError::new(e.to_string()))
    }

    fn flag(&self, key: &str) -> Result<Option<SerializedItem>, PersistentStoreError> {
        self.item(Kind::Flags, key)
    }

    fn segment(&self, key: &str) -> Result<Option<SerializedItem>, PersistentStoreError> {
        self.item(Kind::Segments, key)
    }

    fn all_flags(&self) -> Result<HashMap<String, SerializedItem>, PersistentStoreError> {
        let items =
            self.run(|store| async move { store.get_all(Kind::Flags.namespace()).await })?;
        Ok(items
            .into_iter()
            .map(|keyed| (keyed.key, serialized(keyed.item)))
            .collect())
    }

    /// True when the item was written; false when the table holds an equal or
    /// newer version, or the item exceeds the size guard (logged by the component).
    fn upsert(
        &mut self,
        kind: DataKind,
        key: &str,
        serialized_item: SerializedItem,
    ) -> Result<bool, PersistentStoreError> {
        let kind = match kind {
            DataKind::Flag => Kind::Flags,
            DataKind::Segment => Kind::Segments,
        };
        let (version, deleted) = (serialized_item.version, serialized_item.deleted);
        let item = Item {
            version,
            deleted,
            json: serialized_item.serialized_item,
        };
        let owned = key.to_string();
        let result =
            self.call(|store| async move { store.upsert(kind.namespace(), &owned, &item).await });
        if let Some(observer) = &self.observer {
            observer.upserted(kind, key, version, deleted, &result);
        }
        let outcome = result.map_err(|e| PersistentStoreError::new(e.to_string()))?;
        Ok(outcome == UpsertOutcome::Applied)
    }

    /// False also when the table cannot be read.
    fn is_initialized(&self) -> bool {
        self.run(|store| async move { store.is_initialized().await })
            .unwrap_or(false)
    }
}
