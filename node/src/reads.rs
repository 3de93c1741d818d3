//! The public reads of the JSON-RPC API (ARCHITECTURE §6): blocks, checkpoints and proofs.
//!
//! They run against the ledger alone, at one tree size chosen at the start of each call,
//! so a block committed meanwhile never mixes two log sizes into one answer.

use custos_ledger::c2sp::{Checkpoint, CosignatureSigner, KeyName, Note, TlogProof};
use custos_ledger::crypto::SecretKey;
use custos_ledger::hash::Sha256Hash;
use custos_ledger::merkle::Root;
use custos_ledger::storage::{Backend, Ledger, StorageError};
use custos_rpc::{
    BlockInfo, CheckpointInfo, CheckpointSource, ConsistencyProofInfo, InclusionProofInfo, codes,
};

/// Why a public read could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The height is 0 or above the chain's head.
    #[error("no block at height {height}: blocks are numbered from 1 and the head is at {head}")]
    NoBlock {
        /// Height asked for.
        height: u64,
        /// Current head height.
        head: u64,
    },
    /// A tree size beyond the current log.
    #[error("tree size {tree_size} is beyond the log, which has {log_size} leaves")]
    BeyondLog {
        /// Size asked for.
        tree_size: u64,
        /// Current log size.
        log_size: u64,
    },
    /// No checkpoint is stored for a past tree size.
    #[error(
        "no checkpoint is stored for tree size {tree_size}; checkpoints exist for the stored \
         sizes and for the current log size {log_size} (omit tree_size to get it)"
    )]
    NoCheckpoint {
        /// Size asked for.
        tree_size: u64,
        /// Current log size.
        log_size: u64,
    },
    /// The leaf hash is not in the log.
    #[error("no message with leaf hash {0} is in the log")]
    UnknownLeaf(Sha256Hash),
    /// The leaf is in the log but after the requested tree size.
    #[error("leaf {leaf_hash} is at index {index}, outside a tree of size {tree_size}")]
    LeafAfterSize {
        /// Leaf hash asked about.
        leaf_hash: Sha256Hash,
        /// Its index.
        index: u64,
        /// Size asked for.
        tree_size: u64,
    },
    /// The old size of a consistency proof is larger than the new one.
    #[error("old_size {old_size} is larger than new_size {new_size}")]
    SizesReversed {
        /// Earlier size asked for.
        old_size: u64,
        /// Later size asked for.
        new_size: u64,
    },
    /// A consistency proof from the empty tree was asked for.
    #[error(
        "old_size 0: every tree is consistent with the empty tree; old_size must be at least 1"
    )]
    EmptyOldTree,
    /// The store failed or holds something unreadable.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A checkpoint or proof could not be put together (a bug or corrupt store).
    #[error("cannot build {what}: {reason}")]
    Build {
        /// What was being built.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
}

impl ReadError {
    /// The JSON-RPC error code: not found for things the node does not have, invalid input
    /// for contradictory requests, internal for failures of the node.
    pub fn code(&self) -> i32 {
        match self {
            Self::SizesReversed { .. } | Self::EmptyOldTree => codes::INVALID_INPUT,
            Self::Storage(_) | Self::Build { .. } => codes::INTERNAL,
            Self::NoBlock { .. }
            | Self::BeyondLog { .. }
            | Self::NoCheckpoint { .. }
            | Self::UnknownLeaf(_)
            | Self::LeafAfterSize { .. } => codes::NOT_FOUND,
        }
    }
}

fn build(what: &'static str) -> impl Fn(String) -> ReadError {
    move |reason| ReadError::Build { what, reason }
}

/// What a node needs besides its ledger to answer public reads.
#[derive(Debug)]
pub struct Reader<'a, B> {
    /// The ledger.
    pub ledger: &'a Ledger<B>,
    /// The log's C2SP origin (genesis `log_origin`).
    pub origin: &'a str,
    /// This validator's name, the key name of its cosignature lines.
    pub validator_name: &'a str,
    /// This validator's key.
    pub key: &'a SecretKey,
    /// Current time in seconds since the epoch, the timestamp of its cosignatures.
    pub now_s: u64,
}

impl<B: Backend> Reader<'_, B> {
    fn log(&self) -> Result<Root, ReadError> {
        Ok(self.ledger.log()?)
    }

    /// The committed block at `height`.
    pub fn block(&self, height: u64) -> Result<BlockInfo, ReadError> {
        let head = self.ledger.head()?.map_or(0, |h| h.height);
        let block = (height != 0)
            .then(|| self.ledger.block(height))
            .transpose()?
            .flatten()
            .ok_or(ReadError::NoBlock { height, head })?;
        let header = block.block.header;
        let leaf_hashes: Vec<Sha256Hash> = block
            .block
            .body
            .entries
            .iter()
            .map(|e| e.envelope.leaf_hash())
            .collect();
        Ok(BlockInfo {
            id: header.id(),
            first_leaf: header.log_size - leaf_hashes.len() as u64,
            header,
            leaf_hashes,
            commit_signatures: block.certificate.signatures.len(),
        })
    }

    /// The checkpoint for `tree_size` (the latest without it), within a log of `log`.
    fn checkpoint_at(
        &self,
        tree_size: Option<u64>,
        log: Root,
    ) -> Result<CheckpointInfo, ReadError> {
        let stored = match tree_size {
            Some(size) if size > log.tree_size => {
                return Err(ReadError::BeyondLog {
                    tree_size: size,
                    log_size: log.tree_size,
                });
            }
            Some(size) => self.ledger.checkpoint(size)?.map(|note| (size, note)),
            None => self.ledger.latest_checkpoint()?,
        };
        if let Some((size, note)) = stored {
            let note = Note::parse(&note).map_err(|e| build("stored checkpoint")(e.to_string()))?;
            let checkpoint = Checkpoint::from_note(&note)
                .map_err(|e| build("stored checkpoint")(e.to_string()))?;
            debug_assert_eq!(checkpoint.root().tree_size, size);
            return Ok(info(&note, &checkpoint, CheckpointSource::Stored));
        }
        if let Some(size) = tree_size.filter(|&s| s != log.tree_size) {
            return Err(ReadError::NoCheckpoint {
                tree_size: size,
                log_size: log.tree_size,
            });
        }
        // Cosigning asserts "the largest tree I have seen", which holds only for the head.
        let checkpoint =
            Checkpoint::new(self.origin, log).map_err(|e| build("checkpoint")(e.to_string()))?;
        let name = KeyName::new(self.validator_name)
            .map_err(|e| build("cosignature key name")(e.to_string()))?;
        let signer = CosignatureSigner::from_seed(name, &self.key.seed())
            .map_err(|e| build("cosigner")(e.to_string()))?;
        let line = signer
            .cosign(&checkpoint, self.now_s)
            .map_err(|e| build("cosignature")(e.to_string()))?;
        let note = Note::new(checkpoint.to_text(), vec![line])
            .map_err(|e| build("checkpoint note")(e.to_string()))?;
        Ok(info(&note, &checkpoint, CheckpointSource::SingleValidator))
    }

    /// The checkpoint for `tree_size`, or the latest.
    pub fn checkpoint(&self, tree_size: Option<u64>) -> Result<CheckpointInfo, ReadError> {
        self.checkpoint_at(tree_size, self.log()?)
    }

    /// The inclusion proof of `leaf_hash` against the checkpoint for `tree_size`.
    pub fn inclusion_proof(
        &self,
        leaf_hash: Sha256Hash,
        tree_size: Option<u64>,
    ) -> Result<InclusionProofInfo, ReadError> {
        let log = self.log()?;
        let index = self
            .ledger
            .leaf_index(&leaf_hash)?
            .filter(|&i| i < log.tree_size)
            .ok_or(ReadError::UnknownLeaf(leaf_hash))?;
        let checkpoint = self.checkpoint_at(tree_size, log)?;
        if index >= checkpoint.tree_size {
            return Err(ReadError::LeafAfterSize {
                leaf_hash,
                index,
                tree_size: checkpoint.tree_size,
            });
        }
        let proof = self.ledger.inclusion_proof(index, checkpoint.tree_size)?;
        let note = Note::parse(checkpoint.note.as_bytes())
            .map_err(|e| build("tlog-proof")(e.to_string()))?;
        let tlog_proof = TlogProof::new(index, proof.path.clone(), note)
            .map_err(|e| build("tlog-proof")(e.to_string()))?
            .encode();
        Ok(InclusionProofInfo {
            leaf_hash,
            leaf_index: index,
            tree_size: checkpoint.tree_size,
            root: checkpoint.root,
            path: proof.path,
            checkpoint,
            tlog_proof,
        })
    }

    /// The consistency proof from `old_size` to `new_size` (the current log without it).
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: Option<u64>,
    ) -> Result<ConsistencyProofInfo, ReadError> {
        let log = self.log()?;
        let new_size = new_size.unwrap_or(log.tree_size);
        if new_size > log.tree_size {
            return Err(ReadError::BeyondLog {
                tree_size: new_size,
                log_size: log.tree_size,
            });
        }
        if old_size > new_size {
            return Err(ReadError::SizesReversed { old_size, new_size });
        }
        if old_size == 0 {
            return Err(ReadError::EmptyOldTree);
        }
        let proof = self.ledger.consistency_proof(old_size, new_size)?;
        Ok(ConsistencyProofInfo {
            old_size,
            old_root: self.ledger.root(old_size)?.hash,
            new_size,
            new_root: self.ledger.root(new_size)?.hash,
            path: proof.path,
        })
    }
}

fn info(note: &Note, checkpoint: &Checkpoint, source: CheckpointSource) -> CheckpointInfo {
    let root = checkpoint.root();
    CheckpointInfo {
        tree_size: root.tree_size,
        root: root.hash,
        note: note.encode(),
        source,
        signers: note
            .signatures()
            .iter()
            .map(|s| s.name().as_str().to_owned())
            .collect(),
    }
}
