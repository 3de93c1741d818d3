//! The ledger store: blocks, the evidence log, indexes and checkpoints over a [`Backend`].

use std::sync::{Mutex, MutexGuard, RwLock};

use borsh::{BorshDeserialize, BorshSerialize};

use super::backend::{Backend, BackendError, Column, WriteBatch};
use crate::block::{
    Block, BlockBody, BlockError, BlockHeader, BlockId, CommitCertificate, CommittedBlock,
};
use crate::codec::{DecodeError, List, decode, encode};
use crate::crypto::KeyId;
use crate::hash::{Blake3Hash, Sha256Hash};
use crate::limits::{MAX_BLOCK_BYTES, MAX_CONSENSUS_MESSAGE_BYTES, MAX_ENVELOPE_BYTES, PayloadLen};
use crate::merkle::{
    self, ConsistencyProof, InclusionProof, NodeId, NodeStore, Root, TreeError, hash_leaf,
};
use crate::message::{Envelope, Kind, OrgId, PayloadMismatch, UnixMillis};

const HEAD_KEY: &[u8] = b"head";

/// Checkpoint notes are small text documents: a few lines plus one signature line per
/// validator.
const MAX_CHECKPOINT_BYTES: usize = 64 * 1024;

/// The latest applied block and the log it leads to.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ChainHead {
    /// Height of the latest block.
    pub height: u64,
    /// Its id.
    pub block_id: BlockId,
    /// Its time.
    pub time: UnixMillis,
    /// The log after it.
    pub log: Root,
}

/// A block header as stored: the body is not stored twice, it is the leaf range
/// `first_leaf .. first_leaf + leaf_count` of the log.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct StoredHeader {
    header: BlockHeader,
    first_leaf: u64,
    leaf_count: u64,
}

impl StoredHeader {
    /// The number of leaves, checked against the block limit (a larger count is corrupt).
    fn leaf_count(&self, height: u64) -> Result<usize, StorageError> {
        usize::try_from(self.leaf_count)
            .ok()
            .filter(|&n| n <= crate::limits::MAX_BLOCK_MESSAGES)
            .ok_or_else(|| {
                StorageError::Inconsistent(format!(
                    "block {height} claims {} leaves",
                    self.leaf_count
                ))
            })
    }
}

/// A block body as its validator checked it before voting for it (or built it): the
/// leaf hashes of its messages, whose payloads matched their descriptors, and the log
/// with them appended to `old_size` leaves ([`Ledger::apply_validated`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedBody {
    /// The log size the leaves were appended to.
    pub old_size: u64,
    /// Leaf hashes of the block's messages, in block order.
    pub leaf_hashes: Vec<Sha256Hash>,
    /// The new Merkle nodes and root.
    pub appended: merkle::Appended,
}

/// A committed block without its payloads ([`Ledger::block_leaves`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockLeaves {
    /// The header.
    pub header: BlockHeader,
    /// Log index of the block's first leaf.
    pub first_leaf: u64,
    /// Leaf hashes of the block's messages, in log order.
    pub leaf_hashes: Vec<Sha256Hash>,
    /// The commit certificate that finalized it.
    pub certificate: CommitCertificate,
}

/// What applying a block did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedBlock {
    /// The new head.
    pub head: ChainHead,
    /// Index of the block's first leaf.
    pub first_leaf: u64,
    /// Leaf hashes of the block's messages, in log order.
    pub leaf_hashes: Vec<Sha256Hash>,
}

/// Why the store refused an operation or could not complete it. A refused write changed
/// nothing.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The engine failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Stored bytes did not decode: the database is damaged or from another version.
    #[error("stored {what} is corrupt: {source}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// The decoding error.
        source: DecodeError,
    },
    /// The block is not the next one.
    #[error("block height {got} does not follow the head; the next height is {expected}")]
    WrongHeight {
        /// Height expected next.
        expected: u64,
        /// Height given.
        got: u64,
    },
    /// The block's parent is not the head.
    #[error("block parent {got} is not the head block {expected}")]
    WrongParent {
        /// The head's id.
        expected: BlockId,
        /// The block's parent.
        got: BlockId,
    },
    /// The block is inconsistent in itself.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// A payload does not match its envelope.
    #[error("message {position} of the block: {source}")]
    Payload {
        /// Position in the block.
        position: usize,
        /// The mismatch.
        source: PayloadMismatch,
    },
    /// The header's log size or root is not what appending the body gives.
    #[error(
        "block declares log size {declared_size} root {declared_root}, but appending its messages gives size {actual_size} root {actual_root}"
    )]
    LogMismatch {
        /// Size in the header.
        declared_size: u64,
        /// Root in the header.
        declared_root: Sha256Hash,
        /// Size computed.
        actual_size: u64,
        /// Root computed.
        actual_root: Sha256Hash,
    },
    /// A block validated against another log size or body was applied as validated.
    #[error(
        "block validated at log size {validated_size} with {validated_leaves} leaves cannot be \
         applied at log size {log_size} with {entries} messages"
    )]
    StaleValidation {
        /// The log size it was validated at.
        validated_size: u64,
        /// The log size now.
        log_size: u64,
        /// Leaf hashes validated.
        validated_leaves: usize,
        /// Messages in the block.
        entries: usize,
    },
    /// A leaf, block or size asked for is not in the log.
    #[error("{what} {value} is not in the ledger (log size {log_size}, height {height})")]
    NotFound {
        /// What was asked for.
        what: &'static str,
        /// The value asked for.
        value: u64,
        /// Current log size.
        log_size: u64,
        /// Current height.
        height: u64,
    },
    /// A Merkle computation failed.
    #[error("merkle log: {0}")]
    Tree(String),
    /// Stored data contradicts itself (a missing node or index entry).
    #[error("ledger is inconsistent: {0}")]
    Inconsistent(String),
}

fn corrupt(what: &'static str) -> impl FnOnce(DecodeError) -> StorageError {
    move |source| StorageError::Corrupt { what, source }
}

fn tree_error<E: std::fmt::Display>(err: TreeError<E>) -> StorageError {
    StorageError::Tree(err.to_string())
}

fn be(value: u64) -> [u8; 8] {
    value.to_be_bytes()
}

fn read_be(bytes: &[u8], what: &'static str) -> Result<u64, StorageError> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| StorageError::Corrupt {
        what,
        source: DecodeError::Malformed(format!("expected 8 bytes, found {}", bytes.len())),
    })?;
    Ok(u64::from_be_bytes(array))
}

/// Key prefix of a client in the client-time index: the id's length, then the id, so one
/// client's prefix is never a prefix of another's.
fn client_prefix(client: &OrgId) -> Vec<u8> {
    let bytes = client.as_bytes();
    let mut key = Vec::with_capacity(1 + bytes.len() + 16);
    key.push(u8::try_from(bytes.len()).expect("organisation ids are at most 64 bytes"));
    key.extend_from_slice(bytes);
    key
}

/// Key prefix of one incident in the incident index: the client's prefix, then the id's
/// length and the id, so one incident's prefix is never a prefix of another's.
fn incident_prefix(client: &OrgId, incident_id: &str) -> Vec<u8> {
    let mut key = client_prefix(client);
    key.push(u8::try_from(incident_id.len()).expect("record ids are at most 128 bytes"));
    key.extend_from_slice(incident_id.as_bytes());
    key
}

/// One entry of the incident index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentEntry {
    /// The client organisation.
    pub client: OrgId,
    /// The incident id.
    pub incident_id: String,
    /// The record's leaf index.
    pub leaf_index: u64,
    /// Its block's time.
    pub committed_at: UnixMillis,
}

fn parse_incident_entry(key: &[u8], value: &[u8]) -> Result<IncidentEntry, StorageError> {
    let bad = |why: &str| StorageError::Inconsistent(format!("incident index key: {why}"));
    let client_len = usize::from(*key.first().ok_or_else(|| bad("empty"))?);
    let client_end = 1 + client_len;
    let id_len = usize::from(*key.get(client_end).ok_or_else(|| bad("truncated client"))?);
    let id_end = client_end + 1 + id_len;
    if key.len() != id_end + 8 {
        return Err(bad("wrong length"));
    }
    let client = std::str::from_utf8(&key[1..client_end])
        .ok()
        .and_then(|c| OrgId::new(c).ok())
        .ok_or_else(|| bad("client is not an organisation id"))?;
    let incident_id = std::str::from_utf8(&key[client_end + 1..id_end])
        .map_err(|_| bad("incident id is not UTF-8"))?
        .to_owned();
    Ok(IncidentEntry {
        client,
        incident_id,
        leaf_index: read_be(&key[id_end..], "incident index key")?,
        committed_at: UnixMillis(read_be(value, "incident index value")?),
    })
}

/// The lowest Merkle level kept in memory, and the lowest stored. Levels at and above it
/// hold about one node per 8 leaves in all (4 bytes of memory per leaf: 4 MB per million
/// messages). Levels 0 to 3 are not stored: a node there is the hash of at most 8
/// consecutive leaves, computed from their envelopes (a proof reads at most 15 nearby
/// envelopes in one sorted multi-get). That keeps about 1.9 hashes and their keys per
/// message off the disk.
pub const CACHED_LEVEL_MIN: u8 = 4;

/// Merkle node hashes of the upper levels, in memory. Nodes of one level complete in index
/// order, so each level is a vector that only grows.
#[derive(Debug, Default)]
pub struct UpperNodes {
    levels: RwLock<Vec<Vec<Sha256Hash>>>,
}

/// Node keys read per scan while loading the cache.
const CACHE_LOAD_CHUNK: usize = 100_000;

impl UpperNodes {
    /// Loads every stored node at level [`CACHED_LEVEL_MIN`] or above.
    pub fn load<B: Backend>(backend: &B) -> Result<Self, StorageError> {
        let cache = Self::default();
        let mut start = vec![CACHED_LEVEL_MIN];
        let end = [merkle::MAX_NODE_LEVEL + 1];
        loop {
            let chunk = backend.scan(Column::Nodes, &start, &end, CACHE_LOAD_CHUNK)?;
            let Some((last, _)) = chunk.last() else { break };
            start = last.clone();
            start.push(0);
            let nodes = chunk
                .iter()
                .map(|(key, value)| {
                    let id = NodeId::from_key(key)
                        .map_err(|e| StorageError::Inconsistent(format!("merkle node key: {e}")))?;
                    let hash = Sha256Hash::from_slice(value).map_err(|e| {
                        StorageError::Inconsistent(format!("merkle node {id}: {e}"))
                    })?;
                    Ok((id, hash))
                })
                .collect::<Result<Vec<_>, StorageError>>()?;
            cache.extend(&nodes);
        }
        Ok(cache)
    }

    /// Adds newly stored nodes. Nodes below the cached levels are ignored; a node that is
    /// not the next of its level (which appends never produce) is ignored too, and is then
    /// read from the database.
    pub fn extend(&self, nodes: &[(NodeId, Sha256Hash)]) {
        let mut levels = self.levels.write().expect("node cache lock");
        for (id, hash) in nodes {
            let Some(slot) = id.level().checked_sub(CACHED_LEVEL_MIN) else {
                continue;
            };
            let slot = usize::from(slot);
            if levels.len() <= slot {
                levels.resize_with(slot + 1, Vec::new);
            }
            if levels[slot].len() as u64 == id.index() {
                levels[slot].push(*hash);
            }
        }
    }

    fn get(&self, levels: &[Vec<Sha256Hash>], id: &NodeId) -> Option<Sha256Hash> {
        let slot = usize::from(id.level().checked_sub(CACHED_LEVEL_MIN)?);
        let index = usize::try_from(id.index()).ok()?;
        levels.get(slot)?.get(index).copied()
    }
}

/// The ledger over a storage engine.
///
/// Writes go through [`Ledger::apply_block`] (and [`Ledger::put_checkpoint`]); reads are
/// consistent with the last applied block. Only one thread may apply blocks at a time
/// (the node's commit path); reads may run concurrently.
#[derive(Debug)]
pub struct Ledger<B> {
    backend: B,
    upper: UpperNodes,
    /// The last block's write batch, emptied, to build the next one in: a block's batch
    /// is megabytes, and a fresh one costs the kernel a page fault per 4 KiB of it.
    spare_batch: Mutex<WriteBatch>,
}

impl<B: Backend> Ledger<B> {
    /// Opens the ledger on `backend` (an empty backend is a ledger at genesis), loading
    /// the upper Merkle levels into memory.
    pub fn open(backend: B) -> Result<Self, StorageError> {
        let upper = UpperNodes::load(&backend)?;
        Ok(Self {
            backend,
            upper,
            spare_batch: Mutex::new(WriteBatch::new()),
        })
    }

    /// The storage engine.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The latest block and log, or `None` before the first block.
    pub fn head(&self) -> Result<Option<ChainHead>, StorageError> {
        self.backend
            .get(Column::Meta, HEAD_KEY)?
            .map(|bytes| decode(&bytes, 1024).map_err(corrupt("chain head")))
            .transpose()
    }

    /// The current log (size and root).
    pub fn log(&self) -> Result<Root, StorageError> {
        Ok(match self.head()? {
            Some(head) => head.log,
            None => Root {
                tree_size: 0,
                hash: merkle::empty_root(),
            },
        })
    }

    /// Checks `committed` against the head and itself and writes it, with its leaves,
    /// Merkle nodes and index entries, in one synced batch.
    ///
    /// Checked here: height and parent follow the head, the header commits to the body,
    /// every payload matches its envelope, and the header's log size and root are what
    /// appending the body gives. Not checked here (the caller's job, before consensus
    /// or sync hands the block over): the commit certificate against the validator set,
    /// message signatures, membership and sequence numbers.
    pub fn apply_block(&self, committed: &CommittedBlock) -> Result<AppliedBlock, StorageError> {
        let head = self.head()?;
        let old_size = Self::check_follows(&head, committed)?;
        let entries = &committed.block.body.entries;
        let mut leaf_hashes = Vec::with_capacity(entries.len());
        for (position, entry) in entries.iter().enumerate() {
            entry
                .envelope
                .body
                .payload
                .check(&entry.payload)
                .map_err(|source| StorageError::Payload { position, source })?;
            leaf_hashes.push(entry.envelope.leaf_hash());
        }
        let validated = self.append_leaves(old_size, leaf_hashes)?;
        self.store_block(committed, validated)
    }

    /// The log of the head's `old_size` leaves with `leaf_hashes` appended, as a block
    /// body validated with them would be stored, without writing anything: what
    /// [`Ledger::apply_block`] computes, and what a validator computes when it builds or
    /// judges the next block, for [`Ledger::apply_validated`].
    pub fn append_leaves(
        &self,
        old_size: u64,
        leaf_hashes: Vec<Sha256Hash>,
    ) -> Result<ValidatedBody, StorageError> {
        let nodes = StoredNodes::with_cache(&self.backend, old_size, &self.upper);
        let appended = merkle::append(&nodes, old_size, &leaf_hashes).map_err(tree_error)?;
        Ok(ValidatedBody {
            old_size,
            leaf_hashes,
            appended,
        })
    }

    /// [`Ledger::apply_block`] for a block whose body this validator already checked
    /// before voting for it (or built itself): its payloads are not hashed again, nor its
    /// leaves, nor the log appended again. The caller vouches for `validated`, as it does
    /// for the certificate: every payload matched its descriptor and the leaf hashes are
    /// the block's. The rest is checked as in `apply_block`, and `validated` must have
    /// been computed at this head, for this block.
    pub fn apply_validated(
        &self,
        committed: &CommittedBlock,
        validated: ValidatedBody,
    ) -> Result<AppliedBlock, StorageError> {
        let head = self.head()?;
        let old_size = Self::check_follows(&head, committed)?;
        let entries = committed.block.body.entries.len();
        if validated.old_size != old_size || validated.leaf_hashes.len() != entries {
            return Err(StorageError::StaleValidation {
                validated_size: validated.old_size,
                log_size: old_size,
                validated_leaves: validated.leaf_hashes.len(),
                entries,
            });
        }
        self.store_block(committed, validated)
    }

    /// Checks that `committed` is the next block after `head`, that its body is the one
    /// its header names and that its certificate is for it; returns the log size it
    /// appends to.
    fn check_follows(
        head: &Option<ChainHead>,
        committed: &CommittedBlock,
    ) -> Result<u64, StorageError> {
        let header = &committed.block.header;
        let (expected_height, expected_parent, old_size) = match head {
            Some(head) => (head.height + 1, head.block_id, head.log.tree_size),
            None => (1, Blake3Hash::ZERO, 0),
        };
        if header.height != expected_height {
            return Err(StorageError::WrongHeight {
                expected: expected_height,
                got: header.height,
            });
        }
        if header.parent != expected_parent {
            return Err(StorageError::WrongParent {
                expected: expected_parent,
                got: header.parent,
            });
        }
        committed.block.check_body()?;
        if committed.certificate.height != header.height
            || committed.certificate.block != header.id()
        {
            return Err(BlockError::CertificateForOtherBlock {
                cert_height: committed.certificate.height,
                cert_block: committed.certificate.block,
                height: header.height,
                block: header.id(),
            }
            .into());
        }
        Ok(old_size)
    }

    /// Checks the log the header declares against `validated` and writes the block, its
    /// leaves, their indexes and the new Merkle nodes in one synced batch.
    fn store_block(
        &self,
        committed: &CommittedBlock,
        validated: ValidatedBody,
    ) -> Result<AppliedBlock, StorageError> {
        let Block { header, body } = &committed.block;
        let ValidatedBody {
            old_size,
            leaf_hashes,
            appended,
        } = validated;
        if appended.root.tree_size != header.log_size || appended.root.hash != header.log_root {
            return Err(StorageError::LogMismatch {
                declared_size: header.log_size,
                declared_root: header.log_root,
                actual_size: appended.root.tree_size,
                actual_root: appended.root.hash,
            });
        }

        let mut batch = std::mem::take(&mut *self.spare_batch());
        batch.clear();
        for (position, (entry, leaf_hash)) in body.entries.iter().zip(&leaf_hashes).enumerate() {
            let index = old_size + position as u64;
            let message = &entry.envelope.body;
            batch.put(Column::Envelopes, be(index), entry.envelope.leaf_bytes());
            batch.put(Column::Payloads, be(index), entry.payload.as_slice());
            batch.put(Column::LeafHashIndex, leaf_hash.0, be(index));
            let mut author_key = message.author.0.to_vec();
            author_key.extend_from_slice(&be(message.sequence));
            batch.put(Column::AuthorSeqIndex, author_key, be(index));
            let mut client_key = client_prefix(&message.client);
            client_key.extend_from_slice(&be(header.time.0));
            client_key.extend_from_slice(&be(index));
            batch.put(Column::ClientTimeIndex, client_key, []);
            let mut kind_key = vec![message.kind.code()];
            kind_key.extend_from_slice(&be(index));
            batch.put(Column::KindIndex, kind_key, []);
            if let Kind::Incident(event) = &message.kind {
                let mut key = incident_prefix(&message.client, event.incident_id.as_str());
                key.extend_from_slice(&be(index));
                batch.put(Column::IncidentIndex, key, be(header.time.0));
            }
        }
        StoredNodes::<B>::write_appended(&mut batch, &appended);

        let stored = StoredHeader {
            header: header.clone(),
            first_leaf: old_size,
            leaf_count: leaf_hashes.len() as u64,
        };
        batch.put(Column::Blocks, be(header.height), encode(&stored));
        batch.put(
            Column::Certificates,
            be(header.height),
            encode(&committed.certificate),
        );
        if !leaf_hashes.is_empty() {
            batch.put(Column::LeafBlocks, be(old_size), be(header.height));
        }
        let new_head = ChainHead {
            height: header.height,
            block_id: header.id(),
            time: header.time,
            log: appended.root,
        };
        batch.put(Column::Meta, HEAD_KEY, encode(&new_head));
        let written = self.backend.write(&batch);
        *self.spare_batch() = batch;
        written?;
        self.upper.extend(&appended.nodes);
        Ok(AppliedBlock {
            head: new_head,
            first_leaf: old_size,
            leaf_hashes,
        })
    }

    fn spare_batch(&self) -> MutexGuard<'_, WriteBatch> {
        // Only ever a buffer, emptied before use: a panic cannot leave it inconsistent.
        self.spare_batch.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn not_found(&self, what: &'static str, value: u64) -> Result<StorageError, StorageError> {
        let head = self.head()?;
        Ok(StorageError::NotFound {
            what,
            value,
            log_size: head.as_ref().map_or(0, |h| h.log.tree_size),
            height: head.as_ref().map_or(0, |h| h.height),
        })
    }

    fn stored_header(&self, height: u64) -> Result<Option<StoredHeader>, StorageError> {
        self.backend
            .get(Column::Blocks, &be(height))?
            .map(|bytes| decode(&bytes, MAX_ENVELOPE_BYTES).map_err(corrupt("block header")))
            .transpose()
    }

    /// The header of the block at `height`.
    pub fn header(&self, height: u64) -> Result<Option<BlockHeader>, StorageError> {
        Ok(self.stored_header(height)?.map(|s| s.header))
    }

    /// The commit certificate that finalized the block at `height`.
    pub fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, StorageError> {
        self.backend
            .get(Column::Certificates, &be(height))?
            .map(|bytes| {
                decode(&bytes, MAX_CONSENSUS_MESSAGE_BYTES).map_err(corrupt("commit certificate"))
            })
            .transpose()
    }

    /// The block at `height` with its commit certificate, reassembled from the log.
    pub fn block(&self, height: u64) -> Result<Option<CommittedBlock>, StorageError> {
        let Some(stored) = self.stored_header(height)? else {
            return Ok(None);
        };
        let certificate = self.stored_certificate(height)?;
        let count = stored.leaf_count(height)?;
        // One range read per column instead of two point reads per leaf: a block's leaves
        // are consecutive keys, so the reads share data blocks and read ahead, which is
        // what block sync (a whole block per request) spends its time on.
        let envelopes = self.leaf_range(Column::Envelopes, stored.first_leaf, count, height)?;
        let payloads = self.leaf_range(Column::Payloads, stored.first_leaf, count, height)?;
        let mut entries = Vec::with_capacity(count);
        for (index, (envelope, payload)) in
            (stored.first_leaf..).zip(envelopes.into_iter().zip(payloads))
        {
            let envelope = Envelope::decode(&envelope).map_err(corrupt("envelope"))?;
            let payload = crate::codec::Bytes::<PayloadLen>::new(payload)
                .map_err(|e| StorageError::Inconsistent(format!("payload of leaf {index}: {e}")))?;
            entries.push(crate::block::Entry { envelope, payload });
        }
        let body = BlockBody {
            entries: List::new(entries)
                .map_err(|e| StorageError::Inconsistent(format!("block {height}: {e}")))?,
        };
        let block = Block {
            header: stored.header,
            body,
        };
        debug_assert!(encode(&block).len() <= MAX_BLOCK_BYTES);
        Ok(Some(CommittedBlock { block, certificate }))
    }

    /// The block at `height` without its payloads: its header, where its leaves start,
    /// their leaf hashes and its commit certificate. What a block listing or a commit
    /// subscription needs, at a fraction of the reads of [`Ledger::block`]: the leaf
    /// hashes come from the stored leaves (the exact bytes hashed when the block was
    /// applied), and no payload is read.
    pub fn block_leaves(&self, height: u64) -> Result<Option<BlockLeaves>, StorageError> {
        let Some(stored) = self.stored_header(height)? else {
            return Ok(None);
        };
        let certificate = self.stored_certificate(height)?;
        let count = stored.leaf_count(height)?;
        let leaves = self.leaf_range(Column::Envelopes, stored.first_leaf, count, height)?;
        Ok(Some(BlockLeaves {
            header: stored.header,
            first_leaf: stored.first_leaf,
            leaf_hashes: leaves.iter().map(|leaf| hash_leaf(leaf)).collect(),
            certificate,
        }))
    }

    /// The certificate of a block that is stored: it is an inconsistency if it is missing.
    fn stored_certificate(&self, height: u64) -> Result<CommitCertificate, StorageError> {
        self.certificate(height)?.ok_or_else(|| {
            StorageError::Inconsistent(format!("block {height} has no commit certificate"))
        })
    }

    /// The values of `column` at leaves `first..first + count`, all of which block
    /// `height` holds: a leaf missing is an inconsistency.
    fn leaf_range(
        &self,
        column: Column,
        first: u64,
        count: usize,
        height: u64,
    ) -> Result<Vec<Vec<u8>>, StorageError> {
        let end = first + count as u64;
        let found = self.backend.scan(column, &be(first), &be(end), count)?;
        let mut values = Vec::with_capacity(count);
        for (index, (key, value)) in (first..end).zip(found) {
            if key != be(index) {
                break;
            }
            values.push(value);
        }
        if values.len() < count {
            let missing = first + values.len() as u64;
            return Err(StorageError::Inconsistent(format!(
                "block {height} lacks leaf {missing} in column {}",
                column.name()
            )));
        }
        Ok(values)
    }

    /// The envelope at leaf `index`.
    pub fn envelope(&self, index: u64) -> Result<Option<Envelope>, StorageError> {
        self.backend
            .get(Column::Envelopes, &be(index))?
            .map(|bytes| Envelope::decode(&bytes).map_err(corrupt("envelope")))
            .transpose()
    }

    /// The payload of leaf `index`; `None` also when it was redacted.
    pub fn payload(&self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.backend.get(Column::Payloads, &be(index))?)
    }

    /// The leaf index of the envelope with this leaf hash.
    pub fn leaf_index(&self, leaf_hash: &Sha256Hash) -> Result<Option<u64>, StorageError> {
        self.backend
            .get(Column::LeafHashIndex, &leaf_hash.0)?
            .map(|bytes| read_be(&bytes, "leaf hash index"))
            .transpose()
    }

    /// The leaf index of `author`'s message number `sequence`.
    pub fn leaf_by_sequence(
        &self,
        author: &KeyId,
        sequence: u64,
    ) -> Result<Option<u64>, StorageError> {
        let mut key = author.0.to_vec();
        key.extend_from_slice(&be(sequence));
        self.backend
            .get(Column::AuthorSeqIndex, &key)?
            .map(|bytes| read_be(&bytes, "author sequence index"))
            .transpose()
    }

    /// The sequence number and leaf hash of `author`'s latest committed message: what
    /// its next message must continue from.
    pub fn author_head(&self, author: &KeyId) -> Result<Option<(u64, Sha256Hash)>, StorageError> {
        let start = author.0.to_vec();
        let mut end = start.clone();
        end.extend_from_slice(&[0xff; 9]);
        let Some((key, value)) = self
            .backend
            .last_before(Column::AuthorSeqIndex, &start, &end)?
        else {
            return Ok(None);
        };
        let sequence = read_be(&key[8..], "author sequence index key")?;
        let index = read_be(&value, "author sequence index")?;
        let bytes = self
            .backend
            .get(Column::Envelopes, &be(index))?
            .ok_or_else(|| {
                StorageError::Inconsistent(format!("author index points at missing leaf {index}"))
            })?;
        Ok(Some((sequence, hash_leaf(&bytes))))
    }

    /// Height of the block holding leaf `index`.
    pub fn leaf_height(&self, index: u64) -> Result<Option<u64>, StorageError> {
        if index >= self.log()?.tree_size {
            return Ok(None);
        }
        // The block holding `index` is the last one whose first leaf is at most `index`.
        let mut end = be(index).to_vec();
        end.push(0);
        self.backend
            .last_before(Column::LeafBlocks, &be(0), &end)?
            .map(|(_, height)| read_be(&height, "leaf block index"))
            .transpose()
    }

    /// Leaf indexes of `client`'s messages committed in `[from, to)`, after leaf `after`
    /// (exclusive; `None` to start at the beginning), at most `limit`, in commit order.
    pub fn client_leaves(
        &self,
        client: &OrgId,
        from: UnixMillis,
        to: UnixMillis,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<u64>, StorageError> {
        let prefix = client_prefix(client);
        let mut start = prefix.clone();
        start.extend_from_slice(&be(from.0));
        if let Some(after) = after {
            // Resume just past the cursor leaf: its committed time is looked up so the
            // scan does not restart at `from`.
            if let Some(height) = self.leaf_height(after)? {
                let time = self
                    .header(height)?
                    .map_or(from.0, |h| h.time.0)
                    .max(from.0);
                start = prefix.clone();
                start.extend_from_slice(&be(time));
                start.extend_from_slice(&be(after.saturating_add(1)));
            }
        }
        let mut end = prefix;
        end.extend_from_slice(&be(to.0));
        self.backend
            .scan(Column::ClientTimeIndex, &start, &end, limit)?
            .into_iter()
            .map(|(key, _)| read_be(&key[key.len() - 8..], "client time index key"))
            .collect()
    }

    /// Leaf indexes of `client`'s messages committed in `[from, to)` with their committed
    /// times, in commit order, from leaf `after` on (exclusive), at most `limit`.
    pub fn client_leaves_timed(
        &self,
        client: &OrgId,
        from: UnixMillis,
        to: UnixMillis,
        after: Option<(UnixMillis, u64)>,
        limit: usize,
    ) -> Result<Vec<(u64, UnixMillis)>, StorageError> {
        let prefix = client_prefix(client);
        let mut start = prefix.clone();
        match after {
            Some((time, leaf)) => {
                start.extend_from_slice(&be(time.0.max(from.0)));
                start.extend_from_slice(&be(leaf.saturating_add(1)));
            }
            None => start.extend_from_slice(&be(from.0)),
        }
        let mut end = prefix;
        end.extend_from_slice(&be(to.0));
        self.backend
            .scan(Column::ClientTimeIndex, &start, &end, limit)?
            .into_iter()
            .map(|(key, _)| {
                let n = key.len();
                Ok((
                    read_be(&key[n - 8..], "client time index key")?,
                    UnixMillis(read_be(&key[n - 16..n - 8], "client time index key")?),
                ))
            })
            .collect()
    }

    /// The committed time of leaf `index`.
    pub fn leaf_time(&self, index: u64) -> Result<Option<UnixMillis>, StorageError> {
        let Some(height) = self.leaf_height(index)? else {
            return Ok(None);
        };
        Ok(self.header(height)?.map(|h| h.time))
    }

    /// Leaf indexes of messages of kind `code` (see [`crate::message::Kind::code`]) from
    /// leaf `from` on, at most `limit`.
    pub fn kind_leaves(&self, code: u8, from: u64, limit: usize) -> Result<Vec<u64>, StorageError> {
        let mut start = vec![code];
        start.extend_from_slice(&be(from));
        let mut end = vec![code];
        end.extend_from_slice(&be(u64::MAX));
        self.backend
            .scan(Column::KindIndex, &start, &end, limit)?
            .into_iter()
            .map(|(key, _)| read_be(&key[1..], "kind index key"))
            .collect()
    }

    /// The records of incident `incident_id` of `client`, in log order, at most `limit`.
    pub fn incident_records(
        &self,
        client: &OrgId,
        incident_id: &str,
        limit: usize,
    ) -> Result<Vec<IncidentEntry>, StorageError> {
        let start = incident_prefix(client, incident_id);
        let mut end = start.clone();
        end.extend_from_slice(&[0xff; 9]);
        self.backend
            .scan(Column::IncidentIndex, &start, &end, limit)?
            .iter()
            .map(|(key, value)| parse_incident_entry(key, value))
            .collect()
    }

    /// Incident index entries ordered by client, incident id and leaf index: of `client`
    /// only when given, starting after the entry `after` (exclusive) when given, at most
    /// `limit`.
    pub fn incident_entries(
        &self,
        client: Option<&OrgId>,
        after: Option<&IncidentEntry>,
        limit: usize,
    ) -> Result<Vec<IncidentEntry>, StorageError> {
        let (mut start, end) = match client {
            Some(client) => {
                let prefix = client_prefix(client);
                let mut end = prefix.clone();
                end.push(0xff);
                (prefix, end)
            }
            // Client prefixes start with a length of at most 64.
            None => (Vec::new(), vec![0xff]),
        };
        if let Some(after) = after {
            let mut key = incident_prefix(&after.client, &after.incident_id);
            key.extend_from_slice(&be(after.leaf_index));
            key.push(0);
            start = start.max(key);
        }
        self.backend
            .scan(Column::IncidentIndex, &start, &end, limit)?
            .iter()
            .map(|(key, value)| parse_incident_entry(key, value))
            .collect()
    }

    /// The last leaf of kind `code` before leaf `end` (exclusive), if any: walks the kind
    /// index backwards one seek at a time.
    pub fn kind_leaf_before(&self, code: u8, end: u64) -> Result<Option<u64>, StorageError> {
        let mut start = vec![code];
        start.extend_from_slice(&be(0));
        let mut until = vec![code];
        until.extend_from_slice(&be(end));
        self.backend
            .last_before(Column::KindIndex, &start, &until)?
            .map(|(key, _)| read_be(&key[1..], "kind index key"))
            .transpose()
    }

    /// Index of the first leaf committed at or after `time` (the log size when none is):
    /// a binary search over block times, which strictly increase with height.
    pub fn first_leaf_at(&self, time: UnixMillis) -> Result<u64, StorageError> {
        let Some(head) = self.head()? else {
            return Ok(0);
        };
        // Find the lowest height whose time is at least `time`.
        let (mut low, mut high) = (1, head.height + 1);
        while low < high {
            let middle = low + (high - low) / 2;
            let header = self.header(middle)?.ok_or_else(|| {
                StorageError::Inconsistent(format!("block {middle} below the head is missing"))
            })?;
            if header.time < time {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        if low > head.height {
            return Ok(head.log.tree_size);
        }
        Ok(match low {
            1 => 0,
            _ => self.header(low - 1)?.map_or(0, |parent| parent.log_size),
        })
    }

    /// The Merkle node hashes of the current log.
    pub fn nodes(&self) -> Result<StoredNodes<'_, B>, StorageError> {
        Ok(StoredNodes::with_cache(
            &self.backend,
            self.log()?.tree_size,
            &self.upper,
        ))
    }

    /// The log root at any size up to the current one.
    pub fn root(&self, size: u64) -> Result<Root, StorageError> {
        merkle::root(&self.nodes()?, size).map_err(tree_error)
    }

    /// Inclusion proof of leaf `index` in the log of `size` leaves.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, StorageError> {
        merkle::inclusion_proof(&self.nodes()?, index, size).map_err(tree_error)
    }

    /// Consistency proof from the log of `old_size` leaves to that of `new_size`.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof, StorageError> {
        merkle::consistency_proof(&self.nodes()?, old_size, new_size).map_err(tree_error)
    }

    /// Stores a checkpoint note for `tree_size` (synced).
    pub fn put_checkpoint(&self, tree_size: u64, note: &[u8]) -> Result<(), StorageError> {
        let log = self.log()?;
        if tree_size > log.tree_size {
            return Err(self.not_found("checkpoint tree size", tree_size)?);
        }
        let mut batch = WriteBatch::new();
        batch.put(Column::Checkpoints, be(tree_size), note);
        Ok(self.backend.write(&batch)?)
    }

    /// The checkpoint note stored for `tree_size`.
    pub fn checkpoint(&self, tree_size: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.backend.get(Column::Checkpoints, &be(tree_size))?)
    }

    /// The checkpoint with the largest tree size, with that size.
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        self.backend
            .last_before(Column::Checkpoints, &be(0), &[0xff; 9])?
            .map(|(key, note)| {
                if note.len() > MAX_CHECKPOINT_BYTES {
                    return Err(StorageError::Inconsistent(
                        "checkpoint note too large".into(),
                    ));
                }
                Ok((read_be(&key, "checkpoint key")?, note))
            })
            .transpose()
    }
}

/// The Merkle node hashes of a log of `tree_size` leaves: levels [`CACHED_LEVEL_MIN`] and
/// up from the `Nodes` column (or the in-memory cache), lower ones computed from the
/// envelopes. The [`NodeStore`] the ledger's roots and proofs are computed from.
#[derive(Debug)]
pub struct StoredNodes<'a, B> {
    backend: &'a B,
    tree_size: u64,
    upper: Option<&'a UpperNodes>,
}

impl<'a, B: Backend> StoredNodes<'a, B> {
    /// Nodes of the log of `tree_size` leaves held in `backend`, all read from it.
    pub fn new(backend: &'a B, tree_size: u64) -> Self {
        Self {
            backend,
            tree_size,
            upper: None,
        }
    }

    /// Like [`StoredNodes::new`], serving the upper levels from `upper`.
    pub fn with_cache(backend: &'a B, tree_size: u64, upper: &'a UpperNodes) -> Self {
        Self {
            backend,
            tree_size,
            upper: Some(upper),
        }
    }

    /// Adds the stored nodes of an append (levels [`CACHED_LEVEL_MIN`] and up) to
    /// `batch`.
    pub fn write_appended(batch: &mut WriteBatch, appended: &merkle::Appended) {
        for (id, hash) in &appended.nodes {
            if id.level() >= CACHED_LEVEL_MIN {
                batch.put(Column::Nodes, id.to_key(), hash.0);
            }
        }
    }

    /// Hashes of the low nodes `ids` (levels below [`CACHED_LEVEL_MIN`]), each computed
    /// from its leaves' envelopes; the leaves are read in one sorted multi-get.
    fn computed_nodes(&self, ids: &[NodeId]) -> Result<Vec<Sha256Hash>, NodeReadError> {
        let span = |id: &NodeId| {
            let width = 1u64 << id.level();
            id.index() * width..(id.index() + 1) * width
        };
        let mut leaves: Vec<u64> = ids.iter().flat_map(span).collect();
        leaves.sort_unstable();
        leaves.dedup();
        if let Some(&last) = leaves.last() {
            if last >= self.tree_size {
                return Err(NodeReadError(format!(
                    "leaf {last} is beyond the tree of {} leaves",
                    self.tree_size
                )));
            }
        }
        let keys: Vec<[u8; 8]> = leaves.iter().map(|&i| be(i)).collect();
        let key_refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
        let envelopes = self
            .backend
            .multi_get(Column::Envelopes, &key_refs)
            .map_err(|e| NodeReadError(e.to_string()))?;
        let mut hashes = std::collections::HashMap::with_capacity(leaves.len());
        for (index, envelope) in leaves.iter().zip(envelopes) {
            let envelope =
                envelope.ok_or_else(|| NodeReadError(format!("leaf {index} is missing")))?;
            hashes.insert(*index, hash_leaf(&envelope));
        }
        Ok(ids
            .iter()
            .map(|id| {
                let mut level: Vec<Sha256Hash> = span(id).map(|i| hashes[&i]).collect();
                while level.len() > 1 {
                    level = level
                        .chunks(2)
                        .map(|pair| merkle::hash_children(&pair[0], &pair[1]))
                        .collect();
                }
                level[0]
            })
            .collect())
    }
}

impl<B: Backend> NodeStore for StoredNodes<'_, B> {
    type Error = NodeReadError;

    fn tree_size(&self) -> Result<u64, NodeReadError> {
        Ok(self.tree_size)
    }

    fn get_nodes(&self, ids: &[NodeId]) -> Result<Vec<Sha256Hash>, NodeReadError> {
        let mut hashes: Vec<Option<Sha256Hash>> = match self.upper {
            Some(upper) => {
                let levels = upper.levels.read().expect("node cache lock");
                ids.iter().map(|id| upper.get(&levels, id)).collect()
            }
            None => vec![None; ids.len()],
        };
        // Low nodes are computed from their leaves.
        let low: Vec<usize> = (0..ids.len())
            .filter(|&i| hashes[i].is_none() && ids[i].level() < CACHED_LEVEL_MIN)
            .collect();
        if !low.is_empty() {
            let low_ids: Vec<NodeId> = low.iter().map(|&i| ids[i]).collect();
            for (i, hash) in low.into_iter().zip(self.computed_nodes(&low_ids)?) {
                hashes[i] = Some(hash);
            }
        }
        // The rest in one sorted multi-get: sorted keys let RocksDB walk its blocks once.
        let mut missing: Vec<(usize, [u8; merkle::NODE_KEY_LEN])> = hashes
            .iter()
            .enumerate()
            .filter(|(_, h)| h.is_none())
            .map(|(i, _)| (i, ids[i].to_key()))
            .collect();
        if !missing.is_empty() {
            missing.sort_unstable_by_key(|(_, key)| *key);
            let keys: Vec<&[u8]> = missing.iter().map(|(_, k)| k.as_slice()).collect();
            let values = self
                .backend
                .multi_get(Column::Nodes, &keys)
                .map_err(|e| NodeReadError(e.to_string()))?;
            for ((i, _), value) in missing.iter().zip(values) {
                let id = &ids[*i];
                let value = value.ok_or_else(|| NodeReadError(format!("node {id} is missing")))?;
                hashes[*i] = Some(
                    Sha256Hash::from_slice(&value)
                        .map_err(|e| NodeReadError(format!("node {id} is corrupt: {e}")))?,
                );
            }
        }
        Ok(hashes
            .into_iter()
            .map(|h| h.expect("every node found"))
            .collect())
    }
}

/// A Merkle node could not be read from the ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reading merkle nodes: {0}")]
pub struct NodeReadError(String);
