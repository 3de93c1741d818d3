//! Durable storage of the ledger (ARCHITECTURE §8).
//!
//! [`Backend`] is the key-value contract (column families, atomic synced batches, range
//! scans); [`MemoryBackend`] and, with the `rocksdb` feature, [`RocksBackend`] implement
//! it. [`Ledger`] keeps blocks, the evidence log and its indexes on any backend.

mod backend;
mod ledger;
mod memory;
#[cfg(feature = "rocksdb")]
mod rocks;
#[cfg(feature = "rocksdb")]
mod segments;

pub use backend::{Backend, BackendError, Column, KeyValue, WriteBatch};
pub use ledger::{
    AppliedBlock, BlockLeaves, CACHED_LEVEL_MIN, ChainHead, IncidentEntry, Ledger, NodeReadError,
    StorageError, StoredNodes, UpperNodes, ValidatedBody,
};
pub use memory::MemoryBackend;
#[cfg(feature = "rocksdb")]
pub use rocks::RocksBackend;
