//! The key-value contract storage engines implement.

use std::fmt;

/// A column family: one keyspace with one kind of record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    /// Chain head and other single values.
    Meta,
    /// Block headers with their leaf range, by height.
    Blocks,
    /// Commit certificates, by height.
    Certificates,
    /// Encoded envelopes (log leaves), by leaf index.
    Envelopes,
    /// Raw payloads, by leaf index; kept apart so they can be redacted.
    Payloads,
    /// Merkle node hashes of perfect subtrees, by (level, index).
    Nodes,
    /// Leaf hash to leaf index.
    LeafHashIndex,
    /// (author key id, sequence) to leaf index.
    AuthorSeqIndex,
    /// (client, committed time, leaf index), no value.
    ClientTimeIndex,
    /// (kind code, leaf index), no value.
    KindIndex,
    /// First leaf index of each block to its height, for leaf-to-block lookups.
    LeafBlocks,
    /// Cosigned checkpoints, by tree size.
    Checkpoints,
    /// (client, incident id, leaf index) to the record's committed time.
    IncidentIndex,
}

impl Column {
    /// Every column, in a fixed order.
    pub const ALL: [Column; 13] = [
        Column::Meta,
        Column::Blocks,
        Column::Certificates,
        Column::Envelopes,
        Column::Payloads,
        Column::Nodes,
        Column::LeafHashIndex,
        Column::AuthorSeqIndex,
        Column::ClientTimeIndex,
        Column::KindIndex,
        Column::LeafBlocks,
        Column::Checkpoints,
        Column::IncidentIndex,
    ];

    /// The column family's name on disk. Never rename one: it is the on-disk format.
    pub fn name(self) -> &'static str {
        match self {
            Column::Meta => "meta",
            Column::Blocks => "blocks",
            Column::Certificates => "certificates",
            Column::Envelopes => "envelopes",
            Column::Payloads => "payloads",
            Column::Nodes => "merkle_nodes",
            Column::LeafHashIndex => "idx_leaf_hash",
            Column::AuthorSeqIndex => "idx_author_seq",
            Column::ClientTimeIndex => "idx_client_time",
            Column::KindIndex => "idx_kind",
            Column::LeafBlocks => "leaf_blocks",
            Column::Checkpoints => "checkpoints",
            Column::IncidentIndex => "idx_incident",
        }
    }
}

/// A key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// A storage engine failed. The operation had no effect unless it says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The engine reported an error.
    #[error("storage engine error: {0}")]
    Engine(String),
}

/// Writes applied together or not at all.
///
/// Keys and values are copied into one growing buffer, not allocated one by one: a block's
/// batch holds tens of thousands of them (every message's envelope, payload and index
/// keys), and per-operation allocations were a visible share of the commit path.
#[derive(Default)]
pub struct WriteBatch {
    bytes: Vec<u8>,
    ops: Vec<Op>,
}

/// One operation: byte ranges of its key and value in the batch's buffer.
struct Op {
    column: Column,
    key: std::ops::Range<usize>,
    /// `None` for a delete.
    value: Option<std::ops::Range<usize>>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    fn append(&mut self, bytes: &[u8]) -> std::ops::Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    /// Sets `key` to `value` in `column`.
    pub fn put(&mut self, column: Column, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let key = self.append(key.as_ref());
        let value = Some(self.append(value.as_ref()));
        self.ops.push(Op { column, key, value });
    }

    /// Removes `key` from `column`.
    pub fn delete(&mut self, column: Column, key: impl AsRef<[u8]>) {
        let key = self.append(key.as_ref());
        self.ops.push(Op {
            column,
            key,
            value: None,
        });
    }

    /// The operations in order: column, key, and the value (`None` for a delete).
    pub fn iter(&self) -> impl Iterator<Item = (Column, &[u8], Option<&[u8]>)> {
        self.ops.iter().map(|op| {
            (
                op.column,
                &self.bytes[op.key.clone()],
                op.value.clone().map(|value| &self.bytes[value]),
            )
        })
    }

    /// Bytes of all keys and values.
    pub fn data_len(&self) -> usize {
        self.bytes.len()
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Removes every operation, keeping the memory for the next batch.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ops.clear();
    }
}

impl fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WriteBatch({} ops)", self.ops.len())
    }
}

/// An ordered key-value store with column families, atomic durable batches and range
/// scans. Keys within a column sort bytewise.
///
/// Contract:
/// - [`Backend::write`] applies the whole batch or none of it, and when it returns `Ok`
///   the batch survives a crash of the process or the machine (it is synced).
/// - Reads see every batch whose `write` returned, and never part of a batch.
pub trait Backend: Send + Sync {
    /// The value of `key`.
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError>;

    /// The values of many keys, in order.
    fn multi_get(
        &self,
        column: Column,
        keys: &[&[u8]],
    ) -> Result<Vec<Option<Vec<u8>>>, BackendError>;

    /// Up to `limit` entries with `start <= key < end`, in key order.
    fn scan(
        &self,
        column: Column,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyValue>, BackendError>;

    /// The last entry with `key < end` and `key >= start`, if any.
    fn last_before(
        &self,
        column: Column,
        start: &[u8],
        end: &[u8],
    ) -> Result<Option<KeyValue>, BackendError>;

    /// Applies `batch` atomically and durably.
    fn write(&self, batch: &WriteBatch) -> Result<(), BackendError>;
}
