//! LaunchDarkly's Rust server SDK on the component: a
//! [`PersistentDataStoreFactory`] whose stores map the SDK's calls onto a
//! [`DataStore`].
//!
//! The SDK calls its store synchronously, from its own tasks and from the
//! threads that evaluate flags. Each store created by the factory runs the
//! component's calls on a small async runtime of its own and waits for them,
//! so it may be called from any thread, inside an async runtime or not.

use std::collections::HashMap;
use std::future::Future;
use std::sync::mpsc;

use launchdarkly_server_sdk::{
    AllData, DataKind, PersistentDataStore, PersistentDataStoreFactory, PersistentStoreError,
    SerializedItem,
};

use crate::background::Background;
use crate::data::Kind;
use crate::embed::{Collection, Item, KeyedItem, UpsertOutcome};
use crate::error::Error;
use crate::store::DataStore;

/// Creates SDK stores over a [`DataStore`]; give it to
/// `PersistentDataStoreBuilder::new(Arc::new(factory))`.
#[derive(Clone)]
pub struct PersistentStoreFactory {
    store: DataStore,
}

impl PersistentStoreFactory {
    /// A factory whose stores share `store`'s instances and connections.
    pub fn new(store: DataStore) -> Self {
        PersistentStoreFactory { store }
    }
}

impl PersistentDataStoreFactory for PersistentStoreFactory {
    fn create_persistent_data_store(&self) -> Result<Box<dyn PersistentDataStore>, std::io::Error> {
        Ok(Box::new(SdkStore {
            store: self.store.clone(),
            runtime: Background::new("ld-dynamodb-sdk-store", 2)?,
        }))
    }
}

/// The SDK's view of the store.
struct SdkStore {
    store: DataStore,
    /// Runs the calls.
    runtime: Background,
}

impl SdkStore {
    /// Runs `call` on the store's runtime and waits for it.
    fn run<T, F>(&self, call: impl FnOnce(DataStore) -> F) -> Result<T, PersistentStoreError>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = mpsc::sync_channel(1);
        let future = call(self.store.clone());
        self.runtime.handle().spawn(async move {
            let _ = done.send(future.await);
        });
        result
            .recv()
            .map_err(|_| PersistentStoreError::new("the store's call panicked or was cancelled"))?
            .map_err(|e| PersistentStoreError::new(e.to_string()))
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
        // Segments first, so they land before the flags that use them.
        let data = vec![
            collection(Kind::Segments, all_data.segments),
            collection(Kind::Flags, all_data.flags),
        ];
        self.run(|store| async move { store.init(&data).await })
            .map(drop)
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
        let key = key.to_string();
        let item = Item {
            version: serialized_item.version,
            deleted: serialized_item.deleted,
            json: serialized_item.serialized_item,
        };
        let outcome =
            self.run(|store| async move { store.upsert(kind.namespace(), &key, &item).await })?;
        Ok(outcome == UpsertOutcome::Applied)
    }

    /// False also when the table cannot be read.
    fn is_initialized(&self) -> bool {
        self.run(|store| async move { store.is_initialized().await })
            .unwrap_or(false)
    }
}
