//! LaunchDarkly's DynamoDB data store as a WebAssembly component.
//!
//! The store logic is plain Rust behind [`transport::Platform`] and is unit-tested
//! natively; `sys` (WASI) and the WIT glue below are compiled for wasm only.

#![deny(missing_docs)]

pub mod big_segments;
pub mod config;
pub(crate) mod dynamo;
pub mod endpoint;
pub mod error;
pub mod model;
pub(crate) mod retry;
pub(crate) mod schema;
pub mod store;
pub mod transport;

#[cfg(test)]
mod testing;

#[cfg(all(target_arch = "wasm32", feature = "wasi"))]
pub mod sys;

/// The WIT bindings: the exports the glue implements and the WASI 0.2.0
/// imports `sys` calls (generated together, so no second bindings crate is
/// linked).
#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "ld-dynamodb-store",
        generate_all,
    });
}

/// The WASI 0.2.0 imports `sys` calls, without the store's exports (feature
/// `wasi` alone: the store linked into another guest's core module). The
/// world's imports, as `ld-dynamodb-store` names them.
#[cfg(all(target_arch = "wasm32", feature = "wasi", not(feature = "component")))]
mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        inline: "
            package ld-dynamodb:platform;
            world platform {
                import wasi:http/outgoing-handler@0.2.0;
                import wasi:clocks/monotonic-clock@0.2.0;
                import wasi:clocks/wall-clock@0.2.0;
                import wasi:random/random@0.2.0;
                import wasi:cli/stderr@0.2.0;
            }
        ",
        world: "platform",
        generate_all,
    });
}

#[cfg(all(target_arch = "wasm32", feature = "component"))]
mod component {
    //! Maps the WIT types onto the core types.

    use crate::bindings::exports;

    use exports::ld_dynamodb::store::big_segment_store as big;
    use exports::ld_dynamodb::store::data_store::{Guest, GuestStore, Store};
    use exports::ld_dynamodb::store::types as wit;

    use crate::big_segments::BigSegmentStore;
    use crate::config::{Config, Credentials};
    use crate::error::StoreError;
    use crate::model::{Collection, InitReport, Item, KeyedItem, UpsertOutcome};
    use crate::store::DataStore;
    use crate::sys::WasiPlatform;

    struct Component;

    impl Guest for Component {
        type Store = StoreResource;
    }

    impl big::Guest for Component {
        type Store = BigSegmentResource;
    }

    struct StoreResource(DataStore<WasiPlatform>);

    struct BigSegmentResource(BigSegmentStore<WasiPlatform>);

    impl big::GuestStore for BigSegmentResource {
        fn open(config: wit::Config) -> Result<big::Store, wit::StoreError> {
            let config = validated(config)?;
            Ok(big::Store::new(BigSegmentResource(BigSegmentStore::new(
                config,
                WasiPlatform,
            ))))
        }

        fn set_credentials(&self, credentials: wit::Credentials) -> Result<(), wit::StoreError> {
            self.0
                .set_credentials(core_credentials(credentials))
                .map_err(error)
        }

        fn get_metadata(&self) -> Result<Option<u64>, wit::StoreError> {
            self.0.get_metadata().map_err(error)
        }

        fn get_membership(
            &self,
            context_hash: String,
        ) -> Result<Option<Vec<big::MembershipEntry>>, wit::StoreError> {
            let entries = self.0.get_membership(&context_hash).map_err(error)?;
            Ok(entries.map(|entries| {
                entries
                    .into_iter()
                    .map(|e| big::MembershipEntry {
                        segment_ref: e.segment_ref,
                        included: e.included,
                    })
                    .collect()
            }))
        }
    }

    impl GuestStore for StoreResource {
        fn open(config: wit::Config) -> Result<Store, wit::StoreError> {
            let config = validated(config)?;
            Ok(Store::new(StoreResource(DataStore::new(
                config,
                WasiPlatform,
            ))))
        }

        fn init(&self, data: Vec<wit::Collection>) -> Result<wit::InitReport, wit::StoreError> {
            let data: Vec<Collection> = data
                .into_iter()
                .map(|c| Collection {
                    kind: c.kind,
                    items: c.items.into_iter().map(keyed_item).collect(),
                })
                .collect();
            self.0.init(&data).map(init_report).map_err(error)
        }

        fn get(&self, kind: String, key: String) -> Result<Option<wit::Item>, wit::StoreError> {
            self.0
                .get(&kind, &key)
                .map(|item| item.map(wit_item))
                .map_err(error)
        }

        fn get_all(&self, kind: String) -> Result<Vec<wit::KeyedItem>, wit::StoreError> {
            self.0
                .get_all(&kind)
                .map(|items| items.into_iter().map(wit_keyed_item).collect())
                .map_err(error)
        }

        fn snapshot(&self, kinds: Vec<String>) -> Result<wit::Snapshot, wit::StoreError> {
            self.snapshot_with(kinds, true)
        }

        fn snapshot_with(
            &self,
            kinds: Vec<String>,
            consistent_read: bool,
        ) -> Result<wit::Snapshot, wit::StoreError> {
            let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
            self.0
                .snapshot_with(&kinds, consistent_read)
                .map(|snapshot| wit::Snapshot {
                    initialized: snapshot.initialized,
                    kinds: snapshot
                        .kinds
                        .into_iter()
                        .map(|items| items.into_iter().map(wit_keyed_item).collect())
                        .collect(),
                })
                .map_err(error)
        }

        fn upsert(
            &self,
            kind: String,
            key: String,
            item: wit::Item,
        ) -> Result<wit::UpsertOutcome, wit::StoreError> {
            match self.0.upsert(&kind, &key, &core_item(item)) {
                Ok(UpsertOutcome::Applied) => Ok(wit::UpsertOutcome::Applied),
                Ok(UpsertOutcome::NotNewer) => Ok(wit::UpsertOutcome::NotNewer),
                Ok(UpsertOutcome::TooLarge) => Ok(wit::UpsertOutcome::TooLarge),
                Err(e) => Err(error(e)),
            }
        }

        fn set_credentials(&self, credentials: wit::Credentials) -> Result<(), wit::StoreError> {
            self.0
                .set_credentials(core_credentials(credentials))
                .map_err(error)
        }

        fn is_initialized(&self) -> Result<bool, wit::StoreError> {
            self.0.is_initialized().map_err(error)
        }

        fn is_available(&self) -> bool {
            self.0.is_available()
        }

        fn create_table(&self) -> Result<bool, wit::StoreError> {
            self.0.create_table().map_err(error)
        }
    }

    /// A validated configuration from the WIT config.
    fn validated(c: wit::Config) -> Result<Config, wit::StoreError> {
        crate::config_from_wit!(c)
            .and_then(Config::new)
            .map_err(error)
    }

    fn core_credentials(c: wit::Credentials) -> Credentials {
        Credentials {
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            session_token: c.session_token,
        }
    }

    fn core_item(i: wit::Item) -> Item {
        Item {
            version: i.version,
            deleted: i.deleted,
            json: i.json,
        }
    }

    fn keyed_item(k: wit::KeyedItem) -> KeyedItem {
        KeyedItem {
            key: k.key,
            item: core_item(k.item),
        }
    }

    fn wit_keyed_item(k: KeyedItem) -> wit::KeyedItem {
        wit::KeyedItem {
            key: k.key,
            item: wit_item(k.item),
        }
    }

    fn wit_item(i: Item) -> wit::Item {
        wit::Item {
            version: i.version,
            deleted: i.deleted,
            json: i.json,
        }
    }

    fn init_report(r: InitReport) -> wit::InitReport {
        wit::InitReport {
            written: r.written,
            deleted: r.deleted,
            dropped: r
                .dropped
                .into_iter()
                .map(|d| wit::ItemRef {
                    kind: d.kind,
                    key: d.key,
                })
                .collect(),
        }
    }

    fn error(e: StoreError) -> wit::StoreError {
        crate::store_error_to_wit!(wit, e)
    }

    crate::bindings::export!(Component with_types_in crate::bindings);
}
