//! The store's data types, independent of WIT and of DynamoDB's wire format.

/// The kind (namespace) of feature flags, as LaunchDarkly's SDKs name it.
pub const FLAGS_KIND: &str = "features";
/// The kind (namespace) of segments.
pub const SEGMENTS_KIND: &str = "segments";

/// One stored version of a flag, segment or other item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The item's version (the `version` attribute).
    pub version: u64,
    /// A deleted item (tombstone).
    pub deleted: bool,
    /// The item's JSON; for a deleted item read back, the stored text ("" if none).
    pub json: String,
}

/// An item with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedItem {
    /// The item's key.
    pub key: String,
    /// The item.
    pub item: Item,
}

/// All items of one kind (`features`, `segments`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    /// The kind: its namespace name.
    pub kind: String,
    /// Every item of the kind.
    pub items: Vec<KeyedItem>,
}

/// Several kinds read together, with the Init marker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Whether an Init has completed (the `$inited` marker exists).
    pub initialized: bool,
    /// The items of each kind asked, in the order asked.
    pub kinds: Vec<Vec<KeyedItem>>,
}

/// Names one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRef {
    /// The item's kind.
    pub kind: String,
    /// The item's key.
    pub key: String,
}

/// What an Init did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitReport {
    /// Items written (tombstones included).
    pub written: u32,
    /// Stale items deleted because the new data no longer has them.
    pub deleted: u32,
    /// Items not written because they exceed the size guard.
    pub dropped: Vec<ItemRef>,
}

/// The result of an upsert that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// The item was written.
    Applied,
    /// Not written: the table already holds an equal or newer version.
    NotNewer,
    /// Not written: the item exceeds the size guard.
    TooLarge,
}
