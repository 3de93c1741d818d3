//! The committed chain as the node sees it, block building and block validation.

use std::sync::Arc;

use custos_ledger::block::{Block, BlockBody, BlockHeader, CommittedBlock, Entry};
use custos_ledger::codec::List;
use custos_ledger::crypto::KeyId;
use custos_ledger::genesis::Genesis;
use custos_ledger::hash::{Blake3Hash, Sha256Hash};
use custos_ledger::membership::Membership;
use custos_ledger::merkle;
use custos_ledger::message::{Kind, UnixMillis};
use custos_ledger::storage::{
    AppliedBlock, ChainHead, Ledger, RocksBackend, StorageError, ValidatedBody,
};

use crate::mempool::{ChainTip, Committed, Mempool, Rejection, Sequencer, bad_signatures};

/// The ledger, the genesis it started from, and the membership after the last block.
#[derive(Debug)]
pub struct Chain {
    /// The store.
    pub ledger: Arc<Ledger<RocksBackend>>,
    /// The genesis document.
    pub genesis: Genesis,
    membership: Membership,
}

/// Why a proposed or synced block is invalid.
#[derive(Debug, thiserror::Error)]
pub enum InvalidBlock {
    /// A header field is wrong.
    #[error("header: {0}")]
    Header(String),
    /// A message in the body is invalid.
    #[error("message {position}: {reason}")]
    Message {
        /// Position in the block.
        position: usize,
        /// Why.
        reason: Rejection,
    },
    /// The block is over a size limit.
    #[error("block has {got} {what}; the limit is {max}")]
    TooLarge {
        /// Messages or bytes.
        what: &'static str,
        /// Its size.
        got: u64,
        /// The limit.
        max: u64,
    },
    /// Reading the ledger failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Committed for Chain {
    fn author_tip(&self, author: &KeyId) -> Option<ChainTip> {
        // A read error here is treated as "unknown", which refuses the message: safe,
        // and the error is logged by the storage layer's caller on the next write.
        self.ledger.author_head(author).ok().flatten()
    }

    fn is_committed(&self, leaf_hash: &Sha256Hash) -> bool {
        matches!(self.ledger.leaf_index(leaf_hash), Ok(Some(_)))
    }
}

impl Chain {
    /// Opens the chain: the membership is genesis plus every committed membership change.
    pub fn open(ledger: Arc<Ledger<RocksBackend>>, genesis: Genesis) -> Result<Self, StorageError> {
        let mut membership = Membership::from_genesis(&genesis);
        let mut from = 0;
        loop {
            let leaves = ledger.kind_leaves(Kind::MEMBERSHIP_CODE, from, 1024)?;
            let Some(&last) = leaves.last() else { break };
            for leaf in leaves {
                if let Some(envelope) = ledger.envelope(leaf)? {
                    // Committed changes were valid when committed; a failure here would
                    // mean the store and genesis disagree, which `apply` reports.
                    membership.apply(&envelope.body).map_err(|e| {
                        StorageError::Inconsistent(format!("membership change at leaf {leaf}: {e}"))
                    })?;
                }
            }
            from = last + 1;
        }
        Ok(Self {
            ledger,
            genesis,
            membership,
        })
    }

    /// The membership after the last committed block.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The head, or a genesis pseudo-head at height 0.
    pub fn head(&self) -> Result<ChainHead, StorageError> {
        Ok(self.ledger.head()?.unwrap_or(ChainHead {
            height: 0,
            block_id: Blake3Hash::ZERO,
            time: self.genesis.genesis_time,
            log: merkle::Root {
                tree_size: 0,
                hash: merkle::empty_root(),
            },
        }))
    }

    /// Builds the next block from the oldest mempool messages.
    pub fn build_block(
        &self,
        mempool: &Mempool,
        proposer: KeyId,
        round: u32,
        now: UnixMillis,
    ) -> Result<Block, InvalidBlock> {
        Ok(self.build_validated(mempool, proposer, round, now)?.0)
    }

    /// [`Chain::build_block`], with the body as validated: what committing the block
    /// needs not compute again ([`Chain::commit_validated`]).
    pub fn build_validated(
        &self,
        mempool: &Mempool,
        proposer: KeyId,
        round: u32,
        now: UnixMillis,
    ) -> Result<(Block, ValidatedBody), InvalidBlock> {
        let head = self.head()?;
        let params = &self.genesis.params;
        // Leave room for the header in the byte budget.
        let body_budget =
            usize::try_from(params.max_block_bytes.saturating_sub(4096)).unwrap_or(usize::MAX);
        let candidates = mempool.candidates(params.max_block_messages as usize, body_budget);
        let mut sequencer = Sequencer::new(self.membership.clone(), self);
        let mut entries = Vec::with_capacity(candidates.len());
        let mut leaf_hashes = Vec::with_capacity(candidates.len());
        for entry in candidates {
            let hash = entry.envelope.leaf_hash();
            // Candidates were valid on admission (payload included) and are re-checked on
            // every commit, so this only filters what a concurrent commit just invalidated.
            if sequencer.check_order(&entry, hash).is_ok() {
                leaf_hashes.push(hash);
                entries.push(entry);
            }
        }
        let validated = self.append(head.log.tree_size, leaf_hashes)?;
        let log = validated.appended.root;
        let body = BlockBody {
            entries: List::new(entries).expect("at most max_block_messages candidates"),
        };
        // Block time never goes backwards, even if this clock does.
        let time = UnixMillis(now.0.max(head.time.0 + 1));
        let header = BlockHeader {
            network: self.genesis.network.clone(),
            height: head.height + 1,
            round,
            proposer,
            time,
            parent: head.block_id,
            body_hash: body.hash(),
            log_size: log.tree_size,
            log_root: log.hash,
        };
        Ok((Block { header, body }, validated))
    }

    /// Checks a block proposed in `round`: the paper's `valid(v)`. Messages found in
    /// `mempool` had their signatures checked on admission and are not verified again.
    ///
    /// A block is built by the proposer of the round it names in its header, and
    /// `proposer_of` says who that is. A fresh proposal names its own round; a
    /// re-proposal (`pol_round` set, Algorithm 1 line 16) carries the valid value
    /// unchanged, built in that round or earlier, so it names an earlier round and its
    /// builder.
    pub fn validate_block(
        &self,
        block: &Block,
        proposer_of: impl Fn(u32) -> KeyId,
        round: u32,
        pol_round: Option<u32>,
        now: UnixMillis,
        mempool: &Mempool,
    ) -> Result<ValidatedBody, InvalidBlock> {
        let head = self.head()?;
        let params = &self.genesis.params;
        let header = &block.header;
        let fail = |what: String| Err(InvalidBlock::Header(what));
        if header.network != self.genesis.network {
            return fail(format!(
                "network {} is not {}",
                header.network, self.genesis.network
            ));
        }
        if header.height != head.height + 1 {
            return fail(format!(
                "height {} does not follow {}",
                header.height, head.height
            ));
        }
        if header.parent != head.block_id {
            return fail(format!(
                "parent {} is not the head {}",
                header.parent, head.block_id
            ));
        }
        let built_in_time = match pol_round {
            None => header.round == round,
            Some(pol_round) => header.round <= pol_round && pol_round < round,
        };
        if !built_in_time {
            return fail(match pol_round {
                None => format!("round {} proposed in round {round}", header.round),
                Some(pol_round) => format!(
                    "block of round {} re-proposed in round {round} with a polka of round \
                     {pol_round}; it must be built in the polka's round or before",
                    header.round
                ),
            });
        }
        let expected_proposer = proposer_of(header.round);
        if header.proposer != expected_proposer {
            return fail(format!(
                "proposer {} is not the round's proposer {expected_proposer}",
                header.proposer
            ));
        }
        if header.time <= head.time {
            return fail(format!(
                "time {} is not after the previous block's {}",
                header.time.0, head.time.0
            ));
        }
        if header.time.0 > now.0.saturating_add(params.max_clock_drift_ms) {
            return fail(format!(
                "time {} is more than {} ms ahead of this validator's clock ({})",
                header.time.0, params.max_clock_drift_ms, now.0
            ));
        }
        let count = block.body.entries.len() as u64;
        if count > u64::from(params.max_block_messages) {
            return Err(InvalidBlock::TooLarge {
                what: "messages",
                got: count,
                max: params.max_block_messages.into(),
            });
        }
        let bytes = borsh::object_length(block).expect("a block's length can be counted") as u64;
        if bytes > params.max_block_bytes {
            return Err(InvalidBlock::TooLarge {
                what: "bytes",
                got: bytes,
                max: params.max_block_bytes,
            });
        }
        block
            .check_body()
            .map_err(|e| InvalidBlock::Header(e.to_string()))?;

        let entries: Vec<&Entry> = block.body.entries.iter().collect();
        let leaf_hashes: Vec<Sha256Hash> = entries.iter().map(|e| e.envelope.leaf_hash()).collect();
        // Messages waiting here had their signature (and payload) checked on admission.
        let waiting: Vec<Option<&Entry>> = leaf_hashes.iter().map(|h| mempool.get(h)).collect();
        let unverified: Vec<usize> = (0..entries.len())
            .filter(|&i| waiting[i].is_none())
            .collect();
        let mut sequencer = Sequencer::new(self.membership.clone(), self);
        for (position, entry) in entries.iter().enumerate() {
            // The leaf hash covers the payload's digest but not the bytes a proposer put
            // beside it, so a payload is hashed again unless it is byte for byte the one
            // this validator checked when it admitted the message (comparing is far
            // cheaper than hashing).
            let leaf_hash = leaf_hashes[position];
            let admitted = waiting[position]
                .is_some_and(|waiting| waiting.payload.as_slice() == entry.payload.as_slice());
            let checked = if admitted {
                sequencer.check_order(entry, leaf_hash)
            } else {
                sequencer.check(entry, leaf_hash)
            };
            checked.map_err(|reason| InvalidBlock::Message { position, reason })?;
        }
        // Authors are checked above (in order, so a collector enrolled earlier in the block
        // is known); signatures of messages not seen before are checked in one batch.
        let to_verify: Vec<&Entry> = unverified.iter().map(|&i| entries[i]).collect();
        if let Some(&k) = bad_signatures(&to_verify, sequencer.membership()).first() {
            let position = unverified[k];
            return Err(InvalidBlock::Message {
                position,
                reason: Rejection::BadSignature(entries[position].envelope.body.author),
            });
        }
        let validated = self.append(head.log.tree_size, leaf_hashes)?;
        let log = validated.appended.root;
        if log.tree_size != header.log_size || log.hash != header.log_root {
            return fail(format!(
                "log size {} root {} does not match the body (size {} root {})",
                header.log_size, header.log_root, log.tree_size, log.hash
            ));
        }
        Ok(validated)
    }

    /// The head's log with `leaf_hashes` appended ([`Ledger::append_leaves`]).
    fn append(
        &self,
        old_size: u64,
        leaf_hashes: Vec<Sha256Hash>,
    ) -> Result<ValidatedBody, InvalidBlock> {
        self.ledger
            .append_leaves(old_size, leaf_hashes)
            .map_err(|e| InvalidBlock::Header(format!("appending to the log: {e}")))
    }

    /// Stores a decided or synced block and advances the membership. The certificate must
    /// have been verified by the caller.
    pub fn commit(&mut self, committed: &CommittedBlock) -> Result<AppliedBlock, StorageError> {
        let applied = self.ledger.apply_block(committed)?;
        self.advance_membership(committed);
        Ok(applied)
    }

    /// [`Chain::commit`] for a block this validator built or validated at this head: its
    /// payloads, leaf hashes and log append are taken from `validated`
    /// ([`Ledger::apply_validated`]).
    pub fn commit_validated(
        &mut self,
        committed: &CommittedBlock,
        validated: ValidatedBody,
    ) -> Result<AppliedBlock, StorageError> {
        let applied = self.ledger.apply_validated(committed, validated)?;
        self.advance_membership(committed);
        Ok(applied)
    }

    fn advance_membership(&mut self, committed: &CommittedBlock) {
        for entry in committed.block.body.entries.iter() {
            // Validated before commit; a failure means a bug, and the store stays correct.
            if let Err(e) = self.membership.apply(&entry.envelope.body) {
                tracing::error!(error = %e, "committed membership change did not apply");
            }
        }
    }
}
