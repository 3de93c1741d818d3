//! An in-memory [`Backend`] for tests and tools; nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::RwLock;

use super::backend::{Backend, BackendError, Column, KeyValue, WriteBatch};

type Table = BTreeMap<Vec<u8>, Vec<u8>>;

/// Ordered maps per column behind one lock, so a batch is applied atomically.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    columns: RwLock<HashMap<Column, Table>>,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read<T>(&self, column: Column, f: impl FnOnce(Option<&Table>) -> T) -> T {
        let columns = self.columns.read().expect("memory backend lock poisoned");
        f(columns.get(&column))
    }
}

impl Backend for MemoryBackend {
    fn get(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.read(column, |t| t.and_then(|t| t.get(key).cloned())))
    }

    fn multi_get(
        &self,
        column: Column,
        keys: &[&[u8]],
    ) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        Ok(self.read(column, |t| {
            keys.iter()
                .map(|k| t.and_then(|t| t.get(*k).cloned()))
                .collect()
        }))
    }

    fn scan(
        &self,
        column: Column,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyValue>, BackendError> {
        if start >= end {
            return Ok(Vec::new());
        }
        Ok(self.read(column, |t| {
            t.map(|t| {
                t.range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
                    .take(limit)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
        }))
    }

    fn last_before(
        &self,
        column: Column,
        start: &[u8],
        end: &[u8],
    ) -> Result<Option<KeyValue>, BackendError> {
        if start >= end {
            return Ok(None);
        }
        Ok(self.read(column, |t| {
            t.and_then(|t| {
                t.range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
                    .next_back()
                    .map(|(k, v)| (k.clone(), v.clone()))
            })
        }))
    }

    fn write(&self, batch: &WriteBatch) -> Result<(), BackendError> {
        let mut columns = self.columns.write().expect("memory backend lock poisoned");
        for (column, key, value) in batch.iter() {
            let table = columns.entry(column).or_default();
            match value {
                Some(value) => {
                    table.insert(key.to_vec(), value.to_vec());
                }
                None => {
                    table.remove(key);
                }
            }
        }
        Ok(())
    }
}
