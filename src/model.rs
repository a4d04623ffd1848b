//! The store's data types, independent of WIT and of DynamoDB's wire format.

/// The kind (namespace) of feature flags, as LaunchDarkly's SDKs name it.
pub const FLAGS_KIND: &str = "features";
/// The kind (namespace) of segments.
pub const SEGMENTS_KIND: &str = "segments";

/// One stored version of a flag, segment or other item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub version: u64,
    pub deleted: bool,
    /// The item's JSON; for a deleted item read back, the stored text ("" if none).
    pub json: String,
}

/// An item with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedItem {
    pub key: String,
    pub item: Item,
}

/// All items of one kind (`features`, `segments`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    pub kind: String,
    pub items: Vec<KeyedItem>,
}

/// Names one item.
/// Several kinds read together, with the Init marker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub initialized: bool,
    /// The items of each kind asked, in the order asked.
    pub kinds: Vec<Vec<KeyedItem>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRef {
    pub kind: String,
    pub key: String,
}

/// What an Init did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitReport {
    pub written: u32,
    pub deleted: u32,
    pub dropped: Vec<ItemRef>,
}

/// The result of an upsert that did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    Applied,
    NotNewer,
    TooLarge,
}
