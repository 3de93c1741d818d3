//! Access audit (ARCHITECTURE §6): every authenticated read that returns envelopes or
//! payloads is committed to the chain as an [`AccessAudit`] record signed by the validator
//! that served it.
//!
//! Reads are queued here and the runtime flushes the queue as its own messages at most
//! [`AUDIT_FLUSH_INTERVAL`] after the oldest queued read, or as soon as
//! [`AUDIT_BATCH_INDEXES`] leaf indexes are waiting, so a read never waits for a block.
//! Reads of one organisation key through one method are merged into one record (split
//! at the record's list limit); its `read_at` is the time of the earliest merged read.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use custos_ledger::codec::{List, Text};
use custos_ledger::crypto::KeyId;
use custos_ledger::limits::{AuditEntryCount, Limit};
use custos_ledger::message::{AccessAudit, OrgId, UnixMillis};

/// Longest a served read waits before its audit record is put in the mempool: short
/// enough that the record is committed within a few blocks of the read.
pub const AUDIT_FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// Queued leaf indexes that trigger a flush before the interval: one full record.
pub const AUDIT_BATCH_INDEXES: usize = AuditEntryCount::MAX;

/// Most leaf indexes waiting for audit. Beyond this reads are refused as busy: a read
/// that cannot be audited must not be served, and the queue must not grow without bound
/// while the mempool is full.
pub const MAX_PENDING_AUDIT_INDEXES: usize = 64 * AUDIT_BATCH_INDEXES;

/// One served read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRead {
    /// The reading organisation.
    pub reader: OrgId,
    /// Its key that signed the credential.
    pub reader_key: KeyId,
    /// The JSON-RPC method.
    pub method: &'static str,
    /// Leaf indexes of the messages returned.
    pub leaf_indexes: Vec<u64>,
    /// When it was served.
    pub read_at: UnixMillis,
}

/// The audit queue is full; the read must be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "{pending} message reads are waiting to be audited (at most {MAX_PENDING_AUDIT_INDEXES}); \
     retry shortly"
)]
pub struct AuditBusy {
    /// Indexes waiting.
    pub pending: usize,
}

/// Reads merge into one record per reader, key and method.
type GroupKey = (String, KeyId, &'static str);

/// Reads served but not yet recorded.
#[derive(Debug, Default)]
pub struct AuditQueue {
    pending: Vec<AuditRead>,
    pending_indexes: usize,
    oldest: Option<Instant>,
}

impl AuditQueue {
    /// Queues a served read, or refuses it when the queue is full.
    pub fn push(&mut self, read: AuditRead, now: Instant) -> Result<(), AuditBusy> {
        if self.pending_indexes + read.leaf_indexes.len() > MAX_PENDING_AUDIT_INDEXES {
            return Err(AuditBusy {
                pending: self.pending_indexes,
            });
        }
        self.pending_indexes += read.leaf_indexes.len();
        self.oldest.get_or_insert(now);
        self.pending.push(read);
        Ok(())
    }

    /// Whether the queue should be flushed now.
    pub fn due(&self, now: Instant) -> bool {
        self.pending_indexes >= AUDIT_BATCH_INDEXES
            || self
                .oldest
                .is_some_and(|t| now.duration_since(t) >= AUDIT_FLUSH_INTERVAL)
    }

    /// Leaf indexes waiting.
    pub fn pending_indexes(&self) -> usize {
        self.pending_indexes
    }

    /// Empties the queue into records: one per reader key and method, split at the
    /// record's list limit, in a deterministic order.
    pub fn drain(&mut self) -> Vec<AccessAudit> {
        let mut grouped: BTreeMap<GroupKey, (OrgId, UnixMillis, Vec<u64>)> = BTreeMap::new();
        for read in self.pending.drain(..) {
            let entry = grouped
                .entry((read.reader.to_string(), read.reader_key, read.method))
                .or_insert_with(|| (read.reader.clone(), read.read_at, Vec::new()));
            entry.1 = entry.1.min(read.read_at);
            entry.2.extend(read.leaf_indexes);
        }
        self.pending_indexes = 0;
        self.oldest = None;
        let mut records = Vec::new();
        for ((_, reader_key, method), (reader, read_at, indexes)) in grouped {
            for chunk in indexes.chunks(AUDIT_BATCH_INDEXES) {
                records.push(AccessAudit {
                    reader: reader.clone(),
                    reader_key,
                    method: Text::new(method).expect("method names are short"),
                    leaf_indexes: List::new(chunk.to_vec()).expect("chunked to the limit"),
                    read_at,
                });
            }
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(org: &str, key: u8, method: &'static str, indexes: Vec<u64>, at: u64) -> AuditRead {
        AuditRead {
            reader: Text::new(org).unwrap(),
            reader_key: KeyId([key; 8]),
            method,
            leaf_indexes: indexes,
            read_at: UnixMillis(at),
        }
    }

    #[test]
    fn reads_merge_per_key_and_method_with_the_earliest_time() {
        let mut queue = AuditQueue::default();
        let start = Instant::now();
        queue
            .push(read("a", 1, "custos_getPayload", vec![1, 2], 20), start)
            .unwrap();
        queue
            .push(read("a", 1, "custos_getPayload", vec![3], 10), start)
            .unwrap();
        queue
            .push(read("a", 1, "custos_getMessage", vec![3], 15), start)
            .unwrap();
        queue
            .push(read("b", 2, "custos_getPayload", vec![4], 30), start)
            .unwrap();
        assert!(!queue.due(start));
        assert!(queue.due(start + AUDIT_FLUSH_INTERVAL));
        let records = queue.drain();
        let summary: Vec<(&str, &str, Vec<u64>, u64)> = records
            .iter()
            .map(|r| {
                (
                    r.reader.as_str(),
                    r.method.as_str(),
                    r.leaf_indexes.iter().copied().collect(),
                    r.read_at.0,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a", "custos_getMessage", vec![3], 15),
                ("a", "custos_getPayload", vec![1, 2, 3], 10),
                ("b", "custos_getPayload", vec![4], 30),
            ]
        );
        assert_eq!(queue.pending_indexes(), 0);
        assert!(!queue.due(start + AUDIT_FLUSH_INTERVAL * 2));
        assert!(queue.drain().is_empty());
    }

    #[test]
    fn a_full_record_flushes_at_once_and_large_reads_split() {
        let mut queue = AuditQueue::default();
        let now = Instant::now();
        let many: Vec<u64> = (0..AUDIT_BATCH_INDEXES as u64 + 5).collect();
        queue
            .push(read("a", 1, "custos_query", many, 1), now)
            .unwrap();
        assert!(queue.due(now));
        let records = queue.drain();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].leaf_indexes.len(), AUDIT_BATCH_INDEXES);
        assert_eq!(records[1].leaf_indexes.len(), 5);
        assert_eq!(
            records[1].leaf_indexes.iter().next(),
            Some(&(AUDIT_BATCH_INDEXES as u64))
        );
    }

    #[test]
    fn a_full_queue_refuses_reads() {
        let mut queue = AuditQueue::default();
        let now = Instant::now();
        let full: Vec<u64> = (0..MAX_PENDING_AUDIT_INDEXES as u64).collect();
        queue
            .push(read("a", 1, "custos_query", full, 1), now)
            .unwrap();
        let err = queue
            .push(read("a", 1, "custos_getPayload", vec![1], 2), now)
            .unwrap_err();
        assert_eq!(err.pending, MAX_PENDING_AUDIT_INDEXES);
        assert!(err.to_string().contains("retry shortly"));
        queue.drain();
        queue
            .push(read("a", 1, "custos_getPayload", vec![1], 2), now)
            .unwrap();
    }
}
