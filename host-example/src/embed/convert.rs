//! The one mapping between the store component's generated WIT types
//! ([`super::wit`], private to this crate) and the types of the library's
//! API, which are the store crate's own ([`ld_dynamodb_store::model`],
//! [`ld_dynamodb_store::error`], [`ld_dynamodb_store::config`]). Durations
//! become milliseconds here and nowhere else.

use std::time::Duration;

use ld_dynamodb_store::big_segments::MembershipEntry;
use ld_dynamodb_store::config::{ConfigInput, Credentials};
use ld_dynamodb_store::error::{ServiceError, StoreError, TransportError};
use ld_dynamodb_store::model::{
    Collection, InitReport, Item, ItemRef, KeyedItem, Snapshot, UpsertOutcome,
};

use super::wit;

/// Milliseconds for the WIT, saturating at `u32::MAX` (about 49 days).
pub(crate) fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

/// The store's settings as the WIT `config` record: the tuning settings by
/// name, as the store crate writes them ([`ConfigInput::settings`]), so a new
/// setting needs no change here.
pub(crate) fn config(c: &ConfigInput) -> wit::Config {
    wit::Config {
        table: c.table.clone(),
        prefix: c.prefix.clone(),
        region: c.region.clone(),
        endpoint: c.endpoint.clone(),
        credentials: credentials(c.credentials.as_ref().expect("set by StoreConfig::new")),
        settings: c
            .settings()
            .into_iter()
            .map(|(name, value)| wit::Setting {
                name: name.to_string(),
                value,
            })
            .collect(),
    }
}

pub(crate) fn credentials(c: &Credentials) -> wit::Credentials {
    wit::Credentials {
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.clone(),
        session_token: c.session_token.clone(),
    }
}

pub(crate) fn wit_item(i: &Item) -> wit::Item {
    wit::Item {
        version: i.version,
        deleted: i.deleted,
        json: i.json.clone(),
    }
}

pub(crate) fn collections(data: &[Collection]) -> Vec<wit::Collection> {
    data.iter()
        .map(|c| wit::Collection {
            kind: c.kind.clone(),
            items: c
                .items
                .iter()
                .map(|k| wit::KeyedItem {
                    key: k.key.clone(),
                    item: wit_item(&k.item),
                })
                .collect(),
        })
        .collect()
}

pub(crate) fn item(i: wit::Item) -> Item {
    Item {
        version: i.version,
        deleted: i.deleted,
        json: i.json,
    }
}

pub(crate) fn keyed_items(items: Vec<wit::KeyedItem>) -> Vec<KeyedItem> {
    items
        .into_iter()
        .map(|k| KeyedItem {
            key: k.key,
            item: item(k.item),
        })
        .collect()
}

pub(crate) fn snapshot(s: wit::Snapshot) -> Snapshot {
    Snapshot {
        initialized: s.initialized,
        kinds: s.kinds.into_iter().map(keyed_items).collect(),
    }
}

pub(crate) fn init_report(r: wit::InitReport) -> InitReport {
    InitReport {
        written: r.written,
        deleted: r.deleted,
        dropped: r
            .dropped
            .into_iter()
            .map(|d| ItemRef {
                kind: d.kind,
                key: d.key,
            })
            .collect(),
    }
}

pub(crate) fn upsert_outcome(o: wit::UpsertOutcome) -> UpsertOutcome {
    match o {
        wit::UpsertOutcome::Applied => UpsertOutcome::Applied,
        wit::UpsertOutcome::NotNewer => UpsertOutcome::NotNewer,
        wit::UpsertOutcome::TooLarge => UpsertOutcome::TooLarge,
    }
}

pub(crate) fn memberships(
    entries: Option<
        Vec<super::bindings::exports::ld_dynamodb::store::big_segment_store::MembershipEntry>,
    >,
) -> Option<Vec<MembershipEntry>> {
    entries.map(|entries| {
        entries
            .into_iter()
            .map(|e| MembershipEntry {
                segment_ref: e.segment_ref,
                included: e.included,
            })
            .collect()
    })
}

/// The component's error as the store crate's, whose `Display` is the one
/// text of a store error for the component, the host and the CLI.
pub(crate) fn store_error(e: wit::StoreError) -> StoreError {
    match e {
        wit::StoreError::InvalidConfig(m) => StoreError::InvalidConfig(m),
        wit::StoreError::InvalidInput(m) => StoreError::InvalidInput(m),
        wit::StoreError::Transport(t) => StoreError::Transport(TransportError {
            code: t.code,
            detail: t.detail,
            attempts: t.attempts,
        }),
        wit::StoreError::Service(s) => StoreError::Service(ServiceError {
            code: s.code,
            message: s.message,
            status: s.status,
            request_id: s.request_id,
            attempts: s.attempts,
        }),
        wit::StoreError::MalformedResponse(m) => StoreError::MalformedResponse(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_become_milliseconds_saturating() {
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::from_secs(u64::MAX)), u32::MAX);
    }

    #[test]
    fn typed_settings_become_named_ones_in_milliseconds() {
        use ld_dynamodb_store::config::{RetryPolicy, Timeouts};
        let credentials = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        };
        let config = super::super::StoreConfig::new("flags", "us-east-1", credentials)
            .with_retry(Some(RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(20),
                max_delay: Duration::from_secs(1),
            }))
            .with_timeouts(Some(Timeouts {
                connect: Some(Duration::from_millis(100)),
                request: Some(Duration::from_secs(2)),
                ..Timeouts::default()
            }))
            .with_init_no_progress(Some(Duration::from_secs(90)))
            .to_wit();
        let named: Vec<(&str, &str)> = config
            .settings
            .iter()
            .map(|s| (s.name.as_str(), s.value.as_str()))
            .collect();
        assert_eq!(
            named,
            [
                ("max-attempts", "3"),
                ("base-delay-ms", "20"),
                ("max-delay-ms", "1000"),
                ("connect-ms", "100"),
                ("request-ms", "2000"),
                ("init-no-progress-ms", "90000"),
            ]
        );
        let defaults = super::super::StoreConfig::new(
            "flags",
            "us-east-1",
            Credentials {
                access_key_id: "AKID".into(),
                secret_access_key: "secret".into(),
                session_token: None,
            },
        );
        assert!(defaults.to_wit().settings.is_empty());
        let refused = defaults.with_setting("init-concurency", "4").unwrap_err();
        assert!(refused.to_string().contains("unknown setting"), "{refused}");
    }

    #[test]
    fn a_store_error_reads_as_the_core_crate_writes_it() {
        let error = store_error(wit::StoreError::Transport(wit::TransportError {
            code: "connection-refused".into(),
            detail: Some("127.0.0.1:9".into()),
            attempts: 1,
        }));
        assert_eq!(
            error.to_string(),
            "transport error: connection-refused (1 attempt): 127.0.0.1:9"
        );
    }
}
