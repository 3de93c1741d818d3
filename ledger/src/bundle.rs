//! Evidence bundles (ARCHITECTURE §7): one JSON file that proves a set of envelopes
//! existed, unaltered, before a public block's time, checkable with only the genesis
//! document (or its hash) and, optionally, an EVM JSON-RPC endpoint.
//!
//! The format is specified in `docs/evidence-bundle.md`; [`Bundle`] is its serde model.
//! [`build`] assembles a bundle from any [`LogSource`] (a validator's [`Ledger`]
//! implements it) and [`verify`] checks one offline, reporting every failure with the
//! item and the check that failed ([`Finding`]). Checking the anchors against the public
//! chain is split in two so the checks stay pure: [`AnchorFacts`] is what the chain says
//! about a receipt (fetched with the `evm` feature by [`fetch_anchor_facts`], or made up
//! by a test) and [`verify`] judges the facts it is handed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::anchor::{AnchorCalldata, AnchorError};
use crate::block::{BlockHeader, CommitCertificate};
use crate::c2sp::{
    Checkpoint, Note, NoteError, QuorumError, QuorumPolicy, TlogProof, TlogProofError,
};
use crate::codec::DecodeError;
use crate::crypto::KeyId;
use crate::genesis::{Genesis, GenesisError};
use crate::hash::Sha256Hash;
use crate::membership::{Author, Membership, MembershipError};
use crate::merkle::{ConsistencyProof, ProofError, verify_inclusion};
use crate::message::{AnchorReceipt, Envelope, Kind, OrgId, PayloadMismatch, UnixMillis};
use crate::storage::{Backend, Ledger, StorageError};

/// The `format` field of every bundle.
pub const BUNDLE_FORMAT: &str = "custos-evidence-bundle";

/// The bundle version this code writes and reads.
pub const BUNDLE_VERSION: u32 = 2;

/// Largest bundle file read: 1 GiB holds a thousand maximal (1 MiB) payloads with room
/// for proofs; a larger export is split by time range.
pub const BUNDLE_BYTES_MAX: usize = 1 << 30;

/// Most entries in one bundle: an incident window of a busy client, with its membership
/// and anchor receipts; beyond this an export is split by time range.
pub const BUNDLE_ENTRIES_MAX: usize = 100_000;

/// Most checkpoints, consistency proofs or anchors in one bundle: one checkpoint for the
/// proofs and one per anchor, each entry dated by the earliest anchor covering it; 1,024
/// is six weeks of hourly anchors, longer than an incident window.
pub const BUNDLE_CHECKPOINTS_MAX: usize = 1024;

/// Most membership changes an export includes: membership changes are rare
/// (enrolments, revocations, rotations), so a log with more is refused rather than
/// building an unbounded bundle.
pub const BUNDLE_MEMBERSHIP_MAX: usize = 10_000;

/// A 32-byte value written as 64 lower-case hex digits (EVM hashes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Hex32(pub [u8; 32]);

impl fmt::Display for Hex32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Serialize for Hex32 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Hex32 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&text, &mut out).map_err(|e| {
            serde::de::Error::custom(format!("expected 64 hex digits, got {text:?}: {e}"))
        })?;
        Ok(Self(out))
    }
}

/// What an export covers; it decides which completeness checks apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Scope {
    /// An incident: its records and the client's messages committed from its detection
    /// to its closure (or the export).
    Incident {
        /// The client.
        client: OrgId,
        /// The incident id.
        incident_id: String,
        /// Window start, committed time (ms since the epoch).
        from_ms: u64,
        /// Window end, committed time, inclusive.
        to_ms: u64,
    },
    /// All messages about a client committed in a time range.
    ClientRange {
        /// The client.
        client: OrgId,
        /// Start, committed time (ms since the epoch).
        from_ms: u64,
        /// End, committed time, inclusive.
        to_ms: u64,
    },
    /// Chosen messages; no completeness is claimed.
    Messages {
        /// Their leaf hashes.
        leaf_hashes: Vec<Sha256Hash>,
    },
}

impl Scope {
    /// Whether the export claims every message of the scope: then a collector's
    /// sequence numbers must have no gaps inside the bundle.
    pub fn claims_completeness(&self) -> bool {
        !matches!(self, Scope::Messages { .. })
    }
}

/// One envelope with its proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleEntry {
    /// Its position in the log.
    pub leaf_index: u64,
    /// The envelope's canonical bytes (the log leaf), standard base64.
    pub envelope: String,
    /// The payload bytes, standard base64, when exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// The C2SP tlog-proof of the leaf against a checkpoint of [`Bundle::checkpoints`].
    pub proof: String,
    /// Height of the block that appended the leaf (one of [`Bundle::blocks`]): its
    /// time is the entry's committed time.
    pub block_height: u64,
    /// RFC 9162 inclusion proof of the leaf in the tree that block's header commits to.
    pub block_proof: Vec<Sha256Hash>,
}

/// A consistency proof between two checkpoints of the bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleConsistency {
    /// The smaller tree size.
    pub old_size: u64,
    /// The larger tree size.
    pub new_size: u64,
    /// The RFC 9162 consistency proof.
    pub proof: Vec<Sha256Hash>,
}

/// An anchor receipt: where a checkpoint of the bundle was published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleAnchor {
    /// EVM chain id.
    pub chain_id: u64,
    /// Transaction hash.
    pub tx_hash: Hex32,
    /// Block number.
    pub block_number: u64,
    /// Block hash.
    pub block_hash: Hex32,
    /// Block time, seconds since the epoch.
    pub block_time_s: u64,
    /// Anchored tree size (a checkpoint of the bundle).
    pub tree_size: u64,
    /// Anchored root.
    pub root: Sha256Hash,
    /// Leaf index of the receipt's own `anchor-receipt` envelope, when the bundle
    /// carries it as an entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_leaf_index: Option<u64>,
}

impl BundleAnchor {
    /// The receipt as committed on the private chain.
    pub fn receipt(&self) -> AnchorReceipt {
        AnchorReceipt {
            chain_id: self.chain_id,
            tx_hash: self.tx_hash.0,
            block_number: self.block_number,
            block_hash: self.block_hash.0,
            block_time_s: self.block_time_s,
            tree_size: self.tree_size,
            root: self.root,
        }
    }

    /// The bundle form of a committed receipt.
    pub fn from_receipt(receipt: &AnchorReceipt, receipt_leaf_index: Option<u64>) -> Self {
        Self {
            chain_id: receipt.chain_id,
            tx_hash: Hex32(receipt.tx_hash),
            block_number: receipt.block_number,
            block_hash: Hex32(receipt.block_hash),
            block_time_s: receipt.block_time_s,
            tree_size: receipt.tree_size,
            root: receipt.root,
            receipt_leaf_index,
        }
    }
}

/// An evidence bundle, version 2 (`docs/evidence-bundle.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// Always [`BUNDLE_VERSION`].
    pub version: u32,
    /// When the bundle was made, by the exporter's clock (ms since the epoch).
    pub created_at_ms: u64,
    /// What it covers.
    pub scope: Scope,
    /// SHA-256 of the tagged canonical genesis encoding: the network's identity.
    pub genesis_hash: Sha256Hash,
    /// The genesis document: validators, cosigner keys, origin, initial members.
    pub genesis: Genesis,
    /// Cosigned C2SP checkpoint notes, ascending tree size.
    pub checkpoints: Vec<String>,
    /// The blocks that appended the entries, ascending height: they prove committed
    /// times.
    pub blocks: Vec<BundleBlock>,
    /// The envelopes, ascending leaf index.
    pub entries: Vec<BundleEntry>,
    /// Consistency proofs linking the checkpoints.
    pub consistency: Vec<BundleConsistency>,
    /// Anchor receipts of checkpoints of the bundle.
    pub anchors: Vec<BundleAnchor>,
}

/// Why a bundle file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum BundleReadError {
    /// Larger than [`BUNDLE_BYTES_MAX`].
    #[error("bundle is {size} bytes; at most {max} are read (split the export by time)")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An evidence bundle of a version this code does not read.
    #[error(
        "evidence bundle version {found} is not supported; this verifier reads version 2 \
         (version 1 bundles carry no block proofs of committed times: export them again)"
    )]
    Version {
        /// The version the file says.
        found: u64,
    },
    /// Not JSON of the bundle's shape.
    #[error("not an evidence bundle: {0}")]
    Json(#[from] serde_json::Error),
}

impl Bundle {
    /// Reads a bundle file's bytes; only the shape is checked here, see [`verify`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, BundleReadError> {
        if bytes.len() > BUNDLE_BYTES_MAX {
            return Err(BundleReadError::TooLarge {
                size: bytes.len(),
                max: BUNDLE_BYTES_MAX,
            });
        }
        serde_json::from_slice(bytes).map_err(|error| {
            // A bundle of another version has another shape: say which version it is
            // rather than which member the shape lacks.
            #[derive(Deserialize)]
            struct Head {
                format: String,
                version: u64,
            }
            match serde_json::from_slice::<Head>(bytes) {
                Ok(head)
                    if head.format == BUNDLE_FORMAT
                        && head.version != u64::from(BUNDLE_VERSION) =>
                {
                    BundleReadError::Version {
                        found: head.version,
                    }
                }
                _ => BundleReadError::Json(error),
            }
        })
    }

    /// The bundle as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a bundle always serialises")
    }
}

/// What a failure is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "item", rename_all = "kebab-case")]
pub enum Item {
    /// The bundle as a whole (format, version, limits).
    Bundle,
    /// The genesis document or hash.
    Genesis,
    /// The checkpoint at position `position` of `checkpoints`.
    Checkpoint {
        /// Position in `checkpoints`.
        position: usize,
    },
    /// The block at position `position` of `blocks`.
    Block {
        /// Position in `blocks`.
        position: usize,
    },
    /// The entry for leaf `leaf_index`.
    Entry {
        /// Its leaf index.
        leaf_index: u64,
    },
    /// A consistency proof.
    Consistency {
        /// Smaller size.
        old_size: u64,
        /// Larger size.
        new_size: u64,
    },
    /// The anchor at position `position` of `anchors`.
    Anchor {
        /// Position in `anchors`.
        position: usize,
    },
    /// The messages of one author.
    Author {
        /// The author's key id.
        key_id: KeyId,
    },
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Bundle => f.write_str("bundle"),
            Item::Genesis => f.write_str("genesis"),
            Item::Checkpoint { position } => write!(f, "checkpoints[{position}]"),
            Item::Block { position } => write!(f, "blocks[{position}]"),
            Item::Entry { leaf_index } => write!(f, "entry {leaf_index}"),
            Item::Consistency { old_size, new_size } => {
                write!(f, "consistency {old_size} -> {new_size}")
            }
            Item::Anchor { position } => write!(f, "anchors[{position}]"),
            Item::Author { key_id } => write!(f, "author {key_id}"),
        }
    }
}

/// Why a check failed. [`Failure::check`] names the check (stable, for scripts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The `format` field is not [`BUNDLE_FORMAT`].
    #[error("format is {0:?}; an evidence bundle says \"custos-evidence-bundle\"")]
    Format(String),
    /// A version this verifier does not implement.
    #[error("bundle version {0} is not supported; this verifier reads version 2")]
    Version(u32),
    /// A list exceeds its limit.
    #[error("bundle has {count} {what}; at most {max} are accepted")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// Its length.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// `genesis_hash` is not the hash of `genesis`.
    #[error("genesis hashes to {computed}, but the bundle says {stated}")]
    GenesisHashMismatch {
        /// Stated.
        stated: Sha256Hash,
        /// Computed.
        computed: Sha256Hash,
    },
    /// The genesis is not the one the verifier trusts.
    #[error("bundle is for genesis {found}; the trusted genesis is {trusted}")]
    GenesisUntrusted {
        /// Trusted hash.
        trusted: Sha256Hash,
        /// The bundle's.
        found: Sha256Hash,
    },
    /// The genesis document is unusable.
    #[error("genesis is invalid: {0}")]
    GenesisInvalid(#[from] GenesisError),
    /// A checkpoint is not a signed note.
    #[error("checkpoint is not a signed note: {0}")]
    CheckpointNote(NoteError),
    /// A signature line of a key that is not a genesis validator.
    #[error("cosignature line by {name}+{key_id} is not from a genesis validator")]
    UnknownCosigner {
        /// Name in the line.
        name: String,
        /// Key id in the line, hex.
        key_id: String,
    },
    /// Two lines of one validator.
    #[error("validator {name} cosigned this checkpoint twice; each validator signs once")]
    DuplicateCosignature {
        /// The validator.
        name: String,
    },
    /// The checkpoint does not pass the genesis quorum policy.
    #[error("checkpoint is not a quorum checkpoint of this network: {0}")]
    Quorum(QuorumError),
    /// Two checkpoints of one size with different roots: the log forked.
    #[error("two checkpoints of tree size {tree_size} have different roots (a fork)")]
    ConflictingCheckpoints {
        /// The size.
        tree_size: u64,
    },
    /// A consistency proof names a size no checkpoint of the bundle has.
    #[error("no verified checkpoint of tree size {tree_size} in the bundle")]
    CheckpointMissing {
        /// The size.
        tree_size: u64,
    },
    /// A consistency proof does not verify.
    #[error("consistency proof is invalid: {0}")]
    ConsistencyInvalid(ProofError),
    /// A block field does not decode.
    #[error("block {field} does not decode: {reason}")]
    BlockDecode {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Blocks are not in ascending, distinct height order.
    #[error("block at height {height} follows height {previous}; blocks ascend, each once")]
    BlockOrder {
        /// This block's height.
        height: u64,
        /// The previous block's height.
        previous: u64,
    },
    /// A block of another network.
    #[error("block is of network {found:?}, not the genesis network")]
    BlockNetwork {
        /// Its network.
        found: String,
    },
    /// The commit certificate does not finalize the block under the genesis validators.
    #[error("block is not certified by the genesis validators: {0}")]
    BlockCertificate(crate::block::BlockError),
    /// The parent header is missing or not the block's parent.
    #[error("block's parent does not check: {0}")]
    BlockParent(String),
    /// Entries are not in ascending, distinct leaf order.
    #[error("entry follows leaf {previous}; entries must be in ascending leaf order, each once")]
    EntryOrder {
        /// The previous entry's leaf index.
        previous: u64,
    },
    /// Not standard base64.
    #[error("{field} is not canonical standard base64")]
    Base64 {
        /// Which field.
        field: &'static str,
    },
    /// The envelope bytes do not decode.
    #[error("envelope does not decode: {0}")]
    EnvelopeDecode(DecodeError),
    /// The tlog-proof is malformed.
    #[error("proof is malformed: {0}")]
    ProofMalformed(TlogProofError),
    /// The tlog-proof is for another leaf index.
    #[error("proof is for leaf index {proof_index}; the entry says {leaf_index}")]
    IndexMismatch {
        /// The entry's index.
        leaf_index: u64,
        /// The proof's index.
        proof_index: u64,
    },
    /// The author may not write this message at this point of the log.
    #[error("author is not permitted: {0}")]
    Membership(MembershipError),
    /// The envelope signature does not verify.
    #[error("envelope signature by {author} does not verify; the envelope was altered")]
    SignatureInvalid {
        /// The author.
        author: KeyId,
    },
    /// The tlog-proof does not prove inclusion under a quorum checkpoint.
    #[error("leaf is not proven in the log: {0}")]
    Inclusion(TlogProofError),
    /// The proof's checkpoint is not one of the bundle's checkpoints.
    #[error(
        "proof's checkpoint (tree size {tree_size}) is not among the bundle's verified \
         checkpoints"
    )]
    ProofCheckpointNotInBundle {
        /// Its size.
        tree_size: u64,
    },
    /// The entry names a block the bundle does not carry (or that did not verify).
    #[error("no verified block at height {height} in the bundle")]
    EntryBlockMissing {
        /// The named height.
        height: u64,
    },
    /// The named block did not append this leaf.
    #[error("block {height} appended leaves {first}..{end}, not this one")]
    BlockRange {
        /// The block.
        height: u64,
        /// Its first leaf.
        first: u64,
        /// One past its last leaf.
        end: u64,
    },
    /// The leaf is not in the tree the block's header commits to.
    #[error("leaf is not in the log its block commits to: {0}")]
    BlockInclusion(ProofError),
    /// The payload is not the one the envelope commits to.
    #[error("payload does not match the envelope: {0}")]
    Payload(PayloadMismatch),
    /// A collector's sequence skips numbers inside a scope that claims completeness.
    #[error("sequence jumps from {after} to {next}: messages {missing_from}..{next} are missing")]
    SequenceGap {
        /// Last sequence present.
        after: u64,
        /// Next sequence present.
        next: u64,
        /// First missing.
        missing_from: u64,
    },
    /// A message does not chain to its predecessor.
    #[error("sequence {sequence} names previous {stated}, but sequence {} hashes to {actual}", sequence - 1)]
    ChainBroken {
        /// The sequence.
        sequence: u64,
        /// Its `prev`.
        stated: Sha256Hash,
        /// The predecessor's leaf hash.
        actual: Sha256Hash,
    },
    /// The anchor does not match its checkpoint, or the chain disagrees.
    #[error("anchor does not verify: {0}")]
    Anchor(AnchorError),
    /// The receipt entry named by the anchor is absent or says something else.
    #[error("receipt entry {leaf_index} is not a verified anchor receipt equal to this anchor")]
    ReceiptEntry {
        /// The entry.
        leaf_index: u64,
    },
    /// No anchor covers the entry.
    #[error("no verified anchor covers this leaf; its existence time is not proven")]
    NotAnchored,
    /// The earliest anchor covering the entry is after the deadline.
    #[error(
        "earliest anchor covering this leaf is at {anchored_s} s, after the deadline {deadline_s} s"
    )]
    AnchoredTooLate {
        /// Earliest covering anchor's block time.
        anchored_s: u64,
        /// The deadline given.
        deadline_s: u64,
    },
}

impl Failure {
    /// The name of the check that failed, stable across releases.
    pub fn check(&self) -> &'static str {
        match self {
            Failure::Format(_) => "format",
            Failure::Version(_) => "version",
            Failure::TooMany { .. } => "limits",
            Failure::GenesisHashMismatch { .. } => "genesis-hash",
            Failure::GenesisUntrusted { .. } => "genesis-trusted",
            Failure::GenesisInvalid(_) => "genesis-valid",
            Failure::CheckpointNote(_) => "checkpoint-note",
            Failure::UnknownCosigner { .. } => "checkpoint-cosigner-known",
            Failure::DuplicateCosignature { .. } => "checkpoint-cosigner-once",
            Failure::Quorum(_) => "checkpoint-quorum",
            Failure::ConflictingCheckpoints { .. } => "checkpoint-fork",
            Failure::CheckpointMissing { .. } => "checkpoint-present",
            Failure::ConsistencyInvalid(_) => "consistency",
            Failure::BlockDecode { .. } => "block-decode",
            Failure::BlockOrder { .. } => "block-order",
            Failure::BlockNetwork { .. } => "block-network",
            Failure::BlockCertificate(_) => "block-certificate",
            Failure::BlockParent(_) => "block-parent",
            Failure::EntryOrder { .. } => "entry-order",
            Failure::Base64 { .. } => "base64",
            Failure::EnvelopeDecode(_) => "envelope-decode",
            Failure::ProofMalformed(_) => "proof-format",
            Failure::IndexMismatch { .. } => "proof-index",
            Failure::Membership(_) => "author-permitted",
            Failure::SignatureInvalid { .. } => "envelope-signature",
            Failure::Inclusion(_) => "inclusion",
            Failure::ProofCheckpointNotInBundle { .. } => "proof-checkpoint",
            Failure::EntryBlockMissing { .. } => "entry-block",
            Failure::BlockRange { .. } => "block-range",
            Failure::BlockInclusion(_) => "block-inclusion",
            Failure::Payload(_) => "payload-digest",
            Failure::SequenceGap { .. } => "sequence-complete",
            Failure::ChainBroken { .. } => "sequence-chain",
            Failure::Anchor(AnchorError::ReceiptMismatch { .. }) => "anchor-receipt",
            Failure::Anchor(AnchorError::Quorum(_)) => "anchor-checkpoint",
            Failure::Anchor(AnchorError::Endpoint { .. }) => "anchor-endpoint",
            Failure::Anchor(AnchorError::ChainId { .. }) => "anchor-chain-id",
            Failure::Anchor(
                AnchorError::TransactionMissing { .. } | AnchorError::TransactionBlock { .. },
            ) => "anchor-transaction",
            Failure::Anchor(AnchorError::TransactionFailed) => "anchor-transaction-status",
            Failure::Anchor(
                AnchorError::CalldataLength { .. }
                | AnchorError::CalldataTag
                | AnchorError::CalldataMismatch { .. },
            ) => "anchor-calldata",
            Failure::Anchor(AnchorError::BlockHash { .. } | AnchorError::BlockTime { .. }) => {
                "anchor-block"
            }
            Failure::Anchor(AnchorError::Confirmations { .. }) => "anchor-confirmations",
            Failure::ReceiptEntry { .. } => "anchor-receipt-entry",
            Failure::NotAnchored => "anchored",
            Failure::AnchoredTooLate { .. } => "anchored-before",
        }
    }
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What failed.
    pub item: Item,
    /// Why.
    pub failure: Failure,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} check failed: {}",
            self.item,
            self.failure.check(),
            self.failure
        )
    }
}

impl Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            item: &'a Item,
            check: &'static str,
            reason: String,
        }
        View {
            item: &self.item,
            check: self.failure.check(),
            reason: self.failure.to_string(),
        }
        .serialize(s)
    }
}

/// What the public chain says about one anchor's transaction and block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorFacts {
    /// The endpoint's chain id.
    pub chain_id: u64,
    /// The transaction with the receipt's hash, if the chain has it.
    pub transaction: Option<TransactionFacts>,
    /// The block at the receipt's number, if the chain is that long.
    pub block: Option<BlockFacts>,
    /// The latest block number.
    pub latest_block: u64,
}

/// A transaction as the chain has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionFacts {
    /// Its block number (None while pending).
    pub block_number: Option<u64>,
    /// Its block hash (None while pending).
    pub block_hash: Option<[u8; 32]>,
    /// Its input bytes.
    pub input: Vec<u8>,
    /// Whether it succeeded (receipt status); None when no receipt exists.
    pub succeeded: Option<bool>,
}

/// A block as the chain has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockFacts {
    /// Its hash.
    pub hash: [u8; 32],
    /// Its time, seconds since the epoch.
    pub time_s: u64,
}

/// Judges what the chain says about `receipt`, which anchors `checkpoint` (also for
/// [`crate::anchor::verify_on_chain`]). Returns the confirmations.
pub fn check_anchor_facts(
    receipt: &AnchorReceipt,
    checkpoint: &Checkpoint,
    facts: &AnchorFacts,
    min_confirmations: u64,
) -> Result<u64, AnchorError> {
    if facts.chain_id != receipt.chain_id {
        return Err(AnchorError::ChainId {
            expected: receipt.chain_id,
            actual: facts.chain_id,
        });
    }
    let tx = facts
        .transaction
        .as_ref()
        .ok_or_else(|| AnchorError::TransactionMissing {
            tx_hash: hex::encode(receipt.tx_hash),
        })?;
    if (tx.block_number, tx.block_hash) != (Some(receipt.block_number), Some(receipt.block_hash)) {
        return Err(AnchorError::TransactionBlock {
            receipt_number: receipt.block_number,
            receipt_hash: hex::encode(receipt.block_hash),
            actual_number: tx.block_number.unwrap_or(0),
            actual_hash: tx.block_hash.map(hex::encode).unwrap_or_default(),
        });
    }
    let carried = AnchorCalldata::decode(&tx.input)?;
    if carried != AnchorCalldata::for_checkpoint(checkpoint) {
        return Err(AnchorError::CalldataMismatch {
            tree_size: carried.tree_size,
            root: carried.root,
            origin_hash: carried.origin_hash,
        });
    }
    match tx.succeeded {
        Some(true) => {}
        Some(false) => return Err(AnchorError::TransactionFailed),
        // Mined, but the endpoint has no receipt for it (yet): not proven included.
        None => {
            return Err(AnchorError::TransactionMissing {
                tx_hash: hex::encode(receipt.tx_hash),
            });
        }
    }
    let receipt_hash = hex::encode(receipt.block_hash);
    let block = facts.block.as_ref().ok_or_else(|| AnchorError::BlockHash {
        number: receipt.block_number,
        receipt: receipt_hash.clone(),
        actual: String::new(),
    })?;
    if block.hash != receipt.block_hash {
        return Err(AnchorError::BlockHash {
            number: receipt.block_number,
            receipt: receipt_hash,
            actual: hex::encode(block.hash),
        });
    }
    if block.time_s != receipt.block_time_s {
        return Err(AnchorError::BlockTime {
            number: receipt.block_number,
            receipt: receipt.block_time_s,
            actual: block.time_s,
        });
    }
    let confirmations = facts.latest_block.saturating_sub(receipt.block_number) + 1;
    if confirmations < min_confirmations {
        return Err(AnchorError::Confirmations {
            confirmations,
            required: min_confirmations,
        });
    }
    Ok(confirmations)
}

mod blocks;
#[cfg(feature = "evm")]
mod evm;

pub use blocks::BundleBlock;
use blocks::{DatedBlocks, check_blocks, check_entry_block};
#[cfg(feature = "evm")]
pub use evm::fetch_anchor_facts;

/// What [`verify`] is told beyond the bundle.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// The genesis hash the verifier trusts; without it the bundle's own genesis is
    /// taken on trust (and reported).
    pub trusted_genesis: Option<Sha256Hash>,
    /// Every entry must be covered by an anchor whose block time is at or before this
    /// (seconds since the epoch), e.g. a claim's time.
    pub anchored_by_s: Option<u64>,
    /// Every entry must be covered by a verified anchor.
    pub require_anchor: bool,
    /// What the public chain says about each anchor, in `anchors` order (`None`:
    /// offline; a missing fact for an anchor is a failure).
    pub chain: Option<Vec<Result<AnchorFacts, AnchorError>>>,
    /// Confirmations required on the public chain (with `chain`).
    pub min_confirmations: u64,
}

/// What one verified entry is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntrySummary {
    /// Leaf index.
    pub leaf_index: u64,
    /// Leaf hash.
    pub leaf_hash: Sha256Hash,
    /// Author key id.
    pub author: KeyId,
    /// Author's sequence number.
    pub sequence: u64,
    /// Kind name.
    pub kind: &'static str,
    /// Client.
    pub client: OrgId,
    /// Whether its payload was present and matched.
    pub payload_checked: bool,
    /// Height of the block that appended it.
    pub block_height: u64,
    /// Its committed time, proven by its block (ms since the epoch).
    pub committed_at_ms: u64,
    /// Earliest verified anchor block time covering it (seconds since the epoch).
    pub anchored_before_s: Option<u64>,
}

/// The outcome of [`verify`].
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The genesis hash the bundle is for.
    pub genesis_hash: Sha256Hash,
    /// Whether the genesis matched a trusted hash given by the verifier.
    pub genesis_trusted: bool,
    /// Checks that passed.
    pub checks_passed: usize,
    /// Checks that failed.
    pub failures: Vec<Finding>,
    /// The entries that passed every check of their own.
    pub entries: Vec<EntrySummary>,
    /// Anchors that verified (offline, and on chain when asked), by position.
    pub anchors_verified: Vec<usize>,
    /// Whether the anchors were checked against a public chain.
    pub checked_on_chain: bool,
}

impl Report {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    fn fail(&mut self, item: Item, failure: Failure) {
        self.failures.push(Finding { item, failure });
    }
}

/// A verified entry, kept for the cross-entry checks.
struct Verified {
    envelope: Envelope,
    leaf_hash: Sha256Hash,
    proof_size: u64,
    committed_at: UnixMillis,
}

/// Verifies `bundle` as `docs/evidence-bundle.md` §4 prescribes, reporting every failed
/// check (not only the first). Failures that make the rest meaningless (format,
/// version, limits, genesis) stop it early.
pub fn verify(bundle: &Bundle, options: &VerifyOptions) -> Report {
    let mut report = Report {
        genesis_hash: bundle.genesis_hash,
        genesis_trusted: false,
        checks_passed: 0,
        failures: Vec::new(),
        entries: Vec::new(),
        anchors_verified: Vec::new(),
        checked_on_chain: options.chain.is_some(),
    };
    let Some(policy) = check_header(bundle, options, &mut report) else {
        return report;
    };
    let checkpoints = check_checkpoints(bundle, &policy, &mut report);
    let lineage = check_consistency(bundle, &checkpoints, &mut report);
    let blocks = check_blocks(bundle, &mut report);
    let verified = check_entries(bundle, &policy, &checkpoints, &blocks, &mut report);
    check_sequences(bundle, &verified, &mut report);
    let anchors = check_anchors(bundle, options, &checkpoints, &verified, &mut report);
    check_coverage(bundle, options, &verified, &lineage, &anchors, &mut report);
    report
}

fn check_header(
    bundle: &Bundle,
    options: &VerifyOptions,
    report: &mut Report,
) -> Option<QuorumPolicy> {
    if bundle.format != BUNDLE_FORMAT {
        report.fail(Item::Bundle, Failure::Format(bundle.format.clone()));
        return None;
    }
    if bundle.version != BUNDLE_VERSION {
        report.fail(Item::Bundle, Failure::Version(bundle.version));
        return None;
    }
    for (what, count, max) in [
        ("entries", bundle.entries.len(), BUNDLE_ENTRIES_MAX),
        ("blocks", bundle.blocks.len(), BUNDLE_ENTRIES_MAX),
        (
            "checkpoints",
            bundle.checkpoints.len(),
            BUNDLE_CHECKPOINTS_MAX,
        ),
        (
            "consistency proofs",
            bundle.consistency.len(),
            BUNDLE_CHECKPOINTS_MAX,
        ),
        ("anchors", bundle.anchors.len(), BUNDLE_CHECKPOINTS_MAX),
    ] {
        if count > max {
            report.fail(Item::Bundle, Failure::TooMany { what, count, max });
            return None;
        }
    }
    report.checks_passed += 3;
    let computed = bundle.genesis.hash();
    if computed != bundle.genesis_hash {
        report.fail(
            Item::Genesis,
            Failure::GenesisHashMismatch {
                stated: bundle.genesis_hash,
                computed,
            },
        );
        return None;
    }
    if let Some(trusted) = options.trusted_genesis {
        if trusted != computed {
            report.fail(
                Item::Genesis,
                Failure::GenesisUntrusted {
                    trusted,
                    found: computed,
                },
            );
            return None;
        }
        report.genesis_trusted = true;
    }
    let policy = bundle
        .genesis
        .validate()
        .and_then(|()| bundle.genesis.checkpoint_policy());
    match policy {
        Ok(policy) => {
            report.checks_passed += 2;
            Some(policy)
        }
        Err(e) => {
            report.fail(Item::Genesis, Failure::GenesisInvalid(e));
            None
        }
    }
}

/// Verified checkpoints by tree size, and their note texts: a tlog-proof carrying one of
/// these notes verbatim needs only its inclusion proof checked, not the cosignatures
/// again (a bundle of 100,000 entries would otherwise verify 300,000 signatures).
#[derive(Default)]
struct Checkpoints {
    by_size: BTreeMap<u64, Checkpoint>,
    notes: HashSet<String>,
}

impl Checkpoints {
    fn get(&self, tree_size: &u64) -> Option<&Checkpoint> {
        self.by_size.get(tree_size)
    }
}

fn check_checkpoints(bundle: &Bundle, policy: &QuorumPolicy, report: &mut Report) -> Checkpoints {
    let mut verified = Checkpoints::default();
    for (position, text) in bundle.checkpoints.iter().enumerate() {
        let item = Item::Checkpoint { position };
        match check_checkpoint(text.as_bytes(), policy) {
            Ok(checkpoint) => {
                let root = checkpoint.root();
                if let Some(other) = verified.get(&root.tree_size) {
                    if other.root() != root {
                        report.fail(
                            item,
                            Failure::ConflictingCheckpoints {
                                tree_size: root.tree_size,
                            },
                        );
                        continue;
                    }
                }
                report.checks_passed += 1;
                verified.by_size.insert(root.tree_size, checkpoint);
                verified.notes.insert(text.clone());
            }
            Err(failure) => report.fail(item, failure),
        }
    }
    verified
}

/// Checks a checkpoint note strictly: every line from a distinct genesis validator, then
/// the quorum policy. C2SP verifiers ignore unknown keys and count duplicates once; a
/// bundle is made by a validator from what validators cosigned, so anything else in it
/// was added afterwards and is reported.
pub fn check_checkpoint(note: &[u8], policy: &QuorumPolicy) -> Result<Checkpoint, Failure> {
    let parsed = Note::parse(note).map_err(Failure::CheckpointNote)?;
    let mut seen = Vec::new();
    for line in parsed.signatures() {
        let Some(cosigner) = policy.cosigners().iter().find(|c| c.matches(line)) else {
            return Err(Failure::UnknownCosigner {
                name: line.name().to_string(),
                key_id: line.key_id().to_hex(),
            });
        };
        if seen.contains(&cosigner.key_id()) {
            return Err(Failure::DuplicateCosignature {
                name: cosigner.name().to_string(),
            });
        }
        seen.push(cosigner.key_id());
    }
    let verified = policy.verify(&parsed).map_err(Failure::Quorum)?;
    Ok(verified.checkpoint().clone())
}

/// Which tree sizes are proven to be one log: a union-find over sizes.
#[derive(Default)]
struct Lineage {
    parent: HashMap<u64, u64>,
}

impl Lineage {
    fn find(&self, mut size: u64) -> u64 {
        while let Some(&up) = self.parent.get(&size) {
            if up == size {
                break;
            }
            size = up;
        }
        size
    }

    fn join(&mut self, a: u64, b: u64) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent.insert(ra, rb);
        }
    }

    fn linked(&self, a: u64, b: u64) -> bool {
        a == b || self.find(a) == self.find(b)
    }
}

fn check_consistency(bundle: &Bundle, checkpoints: &Checkpoints, report: &mut Report) -> Lineage {
    let mut lineage = Lineage::default();
    for c in &bundle.consistency {
        let item = Item::Consistency {
            old_size: c.old_size,
            new_size: c.new_size,
        };
        let root = |size: u64| checkpoints.get(&size).map(Checkpoint::root);
        let (Some(old), Some(new)) = (root(c.old_size), root(c.new_size)) else {
            let tree_size = if root(c.old_size).is_none() {
                c.old_size
            } else {
                c.new_size
            };
            report.fail(item, Failure::CheckpointMissing { tree_size });
            continue;
        };
        let proof = ConsistencyProof {
            old_size: c.old_size,
            new_size: c.new_size,
            path: c.proof.clone(),
        };
        match proof.verify(&old, &new) {
            Ok(()) => {
                report.checks_passed += 1;
                lineage.join(c.old_size, c.new_size);
            }
            Err(e) => report.fail(item, Failure::ConsistencyInvalid(e)),
        }
    }
    lineage
}

fn check_entries(
    bundle: &Bundle,
    policy: &QuorumPolicy,
    checkpoints: &Checkpoints,
    blocks: &DatedBlocks,
    report: &mut Report,
) -> BTreeMap<u64, Verified> {
    let mut membership = Membership::from_genesis(&bundle.genesis);
    let mut verified = BTreeMap::new();
    let mut previous: Option<u64> = None;
    for entry in &bundle.entries {
        let item = Item::Entry {
            leaf_index: entry.leaf_index,
        };
        if let Some(previous) = previous {
            if entry.leaf_index <= previous {
                report.fail(item, Failure::EntryOrder { previous });
                continue;
            }
        }
        previous = Some(entry.leaf_index);
        match check_entry(entry, policy, checkpoints, blocks, &mut membership) {
            Ok((one, payload_checked)) => {
                report.checks_passed += 6 + usize::from(payload_checked);
                let message = &one.envelope.body;
                report.entries.push(EntrySummary {
                    leaf_index: entry.leaf_index,
                    leaf_hash: one.leaf_hash,
                    author: message.author,
                    sequence: message.sequence,
                    kind: message.kind.name(),
                    client: message.client.clone(),
                    payload_checked,
                    block_height: entry.block_height,
                    committed_at_ms: one.committed_at.0,
                    anchored_before_s: None,
                });
                verified.insert(entry.leaf_index, one);
            }
            Err(failure) => report.fail(item, failure),
        }
    }
    verified
}

/// One entry's own checks, in the order of the specification: decode, proof format and
/// index, author permitted, signature, inclusion, block, payload.
fn check_entry(
    entry: &BundleEntry,
    policy: &QuorumPolicy,
    checkpoints: &Checkpoints,
    blocks: &DatedBlocks,
    membership: &mut Membership,
) -> Result<(Verified, bool), Failure> {
    let bytes = STANDARD
        .decode(&entry.envelope)
        .map_err(|_| Failure::Base64 { field: "envelope" })?;
    let envelope = Envelope::decode(&bytes).map_err(Failure::EnvelopeDecode)?;
    let proof = TlogProof::parse(entry.proof.as_bytes()).map_err(Failure::ProofMalformed)?;
    if proof.index() != entry.leaf_index {
        return Err(Failure::IndexMismatch {
            leaf_index: entry.leaf_index,
            proof_index: proof.index(),
        });
    }
    let member = membership
        .authorize(&envelope.body)
        .map_err(Failure::Membership)?;
    envelope
        .verify(&member.key)
        .map_err(|_| Failure::SignatureInvalid {
            author: envelope.body.author,
        })?;
    let leaf_hash = envelope.leaf_hash();
    let root = if checkpoints
        .notes
        .contains(&proof.checkpoint_note().encode())
    {
        let root = proof.checkpoint().root();
        verify_inclusion(
            leaf_hash.as_bytes(),
            proof.index(),
            root.tree_size,
            proof.inclusion_proof(),
            root.hash.as_bytes(),
        )
        .map_err(|e| Failure::Inclusion(TlogProofError::Inclusion(e)))?;
        root
    } else {
        proof
            .verify(&leaf_hash, policy)
            .map_err(Failure::Inclusion)?
            .checkpoint()
            .root()
    };
    if checkpoints.get(&root.tree_size).map(Checkpoint::root) != Some(root) {
        return Err(Failure::ProofCheckpointNotInBundle {
            tree_size: root.tree_size,
        });
    }
    let committed_at = check_entry_block(
        blocks,
        entry.leaf_index,
        &leaf_hash,
        entry.block_height,
        &entry.block_proof,
    )?;
    let payload_checked = match &entry.payload {
        Some(encoded) => {
            let payload = STANDARD
                .decode(encoded)
                .map_err(|_| Failure::Base64 { field: "payload" })?;
            envelope
                .body
                .payload
                .check(&payload)
                .map_err(Failure::Payload)?;
            true
        }
        None => false,
    };
    // Applied only once the entry verified, so a forged membership change changes
    // nothing.
    membership
        .apply(&envelope.body)
        .map_err(Failure::Membership)?;
    Ok((
        Verified {
            envelope,
            leaf_hash,
            proof_size: root.tree_size,
            committed_at,
        },
        payload_checked,
    ))
}

/// Per collector: each present pair of consecutive sequence numbers chains by `prev`, and
/// when the scope claims completeness no number is missing between the first and last.
fn check_sequences(bundle: &Bundle, verified: &BTreeMap<u64, Verified>, report: &mut Report) {
    let mut by_author: BTreeMap<KeyId, Vec<&Verified>> = BTreeMap::new();
    for one in verified.values() {
        by_author
            .entry(one.envelope.body.author)
            .or_default()
            .push(one);
    }
    let membership = Membership::from_genesis(&bundle.genesis);
    for (author, mut messages) in by_author {
        messages.sort_by_key(|m| m.envelope.body.sequence);
        let item = Item::Author { key_id: author };
        // Organisation and validator keys write sparsely into any scope; only collector
        // streams are complete by construction.
        let is_collector = messages
            .iter()
            .all(|m| m.envelope.body.kind.is_collector_kind())
            && !matches!(
                membership.get(&author).map(|m| &m.author),
                Some(Author::Organisation { .. } | Author::Validator { .. })
            );
        let mut ok = true;
        for pair in messages.windows(2) {
            let (a, b) = (&pair[0].envelope.body, &pair[1].envelope.body);
            if b.sequence == a.sequence + 1 {
                if b.prev != pair[0].leaf_hash {
                    ok = false;
                    report.fail(
                        item.clone(),
                        Failure::ChainBroken {
                            sequence: b.sequence,
                            stated: b.prev,
                            actual: pair[0].leaf_hash,
                        },
                    );
                }
            } else if is_collector && bundle.scope.claims_completeness() {
                ok = false;
                report.fail(
                    item.clone(),
                    Failure::SequenceGap {
                        after: a.sequence,
                        next: b.sequence,
                        missing_from: a.sequence + 1,
                    },
                );
            }
        }
        if ok {
            report.checks_passed += 1;
        }
    }
}

/// Anchors that verified: (tree size, block time).
fn check_anchors(
    bundle: &Bundle,
    options: &VerifyOptions,
    checkpoints: &Checkpoints,
    verified: &BTreeMap<u64, Verified>,
    report: &mut Report,
) -> Vec<(u64, u64)> {
    let mut good = Vec::new();
    for (position, anchor) in bundle.anchors.iter().enumerate() {
        let item = Item::Anchor { position };
        let receipt = anchor.receipt();
        let Some(checkpoint) = checkpoints.get(&anchor.tree_size) else {
            report.fail(
                item,
                Failure::CheckpointMissing {
                    tree_size: anchor.tree_size,
                },
            );
            continue;
        };
        let root = checkpoint.root();
        if root.hash != anchor.root {
            report.fail(
                item,
                Failure::Anchor(AnchorError::ReceiptMismatch {
                    receipt_size: anchor.tree_size,
                    receipt_root: anchor.root,
                    checkpoint_size: root.tree_size,
                    checkpoint_root: root.hash,
                }),
            );
            continue;
        }
        if let Some(leaf_index) = anchor.receipt_leaf_index {
            let committed = verified
                .get(&leaf_index)
                .and_then(|v| match &v.envelope.body.kind {
                    Kind::AnchorReceipt(r) => Some(r),
                    _ => None,
                });
            if committed != Some(&receipt) {
                report.fail(item, Failure::ReceiptEntry { leaf_index });
                continue;
            }
        }
        if let Some(chain) = &options.chain {
            let judged = match chain.get(position) {
                Some(Ok(facts)) => {
                    check_anchor_facts(&receipt, checkpoint, facts, options.min_confirmations)
                        .map(drop)
                }
                Some(Err(e)) => Err(e.clone()),
                None => Err(AnchorError::Endpoint {
                    url: String::new(),
                    reason: "no answer was gathered for this anchor".into(),
                }),
            };
            if let Err(e) = judged {
                report.fail(item, Failure::Anchor(e));
                continue;
            }
        }
        report.checks_passed += 1;
        report.anchors_verified.push(position);
        good.push((anchor.tree_size, anchor.block_time_s));
    }
    good
}

fn check_coverage(
    bundle: &Bundle,
    options: &VerifyOptions,
    verified: &BTreeMap<u64, Verified>,
    lineage: &Lineage,
    anchors: &[(u64, u64)],
    report: &mut Report,
) {
    for summary in &mut report.entries {
        let Some(one) = verified.get(&summary.leaf_index) else {
            continue;
        };
        summary.anchored_before_s = anchors
            .iter()
            .filter(|(size, _)| summary.leaf_index < *size && lineage.linked(one.proof_size, *size))
            .map(|(_, time_s)| *time_s)
            .min();
    }
    // A receipt is committed after the checkpoint it anchors, so its own anchor never
    // covers it; it is supporting material, not evidence.
    let receipts: Vec<u64> = bundle
        .anchors
        .iter()
        .filter_map(|a| a.receipt_leaf_index)
        .collect();
    let mut findings = Vec::new();
    for summary in report
        .entries
        .iter()
        .filter(|s| !receipts.contains(&s.leaf_index))
    {
        let item = Item::Entry {
            leaf_index: summary.leaf_index,
        };
        match (summary.anchored_before_s, options.anchored_by_s) {
            (None, deadline) if options.require_anchor || deadline.is_some() => {
                findings.push((item, Failure::NotAnchored));
            }
            (Some(anchored_s), Some(deadline_s)) if anchored_s > deadline_s => {
                findings.push((
                    item,
                    Failure::AnchoredTooLate {
                        anchored_s,
                        deadline_s,
                    },
                ));
            }
            _ => report.checks_passed += 1,
        }
    }
    for (item, failure) in findings {
        report.fail(item, failure);
    }
}

/// Where [`build`] reads the log.
pub trait LogSource {
    /// The envelope at `index`.
    fn envelope(&self, index: u64) -> Result<Option<Envelope>, StorageError>;
    /// The payload of leaf `index`, if stored.
    fn payload(&self, index: u64) -> Result<Option<Vec<u8>>, StorageError>;
    /// Height of the block that appended leaf `index`.
    fn leaf_height(&self, index: u64) -> Result<Option<u64>, StorageError>;
    /// The header of the block at `height`.
    fn header(&self, height: u64) -> Result<Option<BlockHeader>, StorageError>;
    /// The commit certificate of the block at `height`.
    fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, StorageError>;
    /// The inclusion proof of `index` in the tree of `size`.
    fn inclusion_path(&self, index: u64, size: u64) -> Result<Vec<Sha256Hash>, StorageError>;
    /// The consistency proof from `old` to `new`.
    fn consistency_path(&self, old: u64, new: u64) -> Result<Vec<Sha256Hash>, StorageError>;
    /// The quorum checkpoint note of `size`, if stored.
    fn checkpoint(&self, size: u64) -> Result<Option<Vec<u8>>, StorageError>;
    /// The quorum checkpoint with the largest size.
    fn latest_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, StorageError>;
    /// Leaf indexes of messages of kind `code` below `end`, at most `limit`.
    fn kind_leaves(&self, code: u8, end: u64, limit: usize) -> Result<Vec<u64>, StorageError>;
}

impl<B: Backend> LogSource for Ledger<B> {
    fn envelope(&self, index: u64) -> Result<Option<Envelope>, StorageError> {
        Ledger::envelope(self, index)
    }
    fn payload(&self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ledger::payload(self, index)
    }
    fn leaf_height(&self, index: u64) -> Result<Option<u64>, StorageError> {
        Ledger::leaf_height(self, index)
    }
    fn header(&self, height: u64) -> Result<Option<BlockHeader>, StorageError> {
        Ledger::header(self, height)
    }
    fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, StorageError> {
        Ledger::certificate(self, height)
    }
    fn inclusion_path(&self, index: u64, size: u64) -> Result<Vec<Sha256Hash>, StorageError> {
        Ok(self.inclusion_proof(index, size)?.path)
    }
    fn consistency_path(&self, old: u64, new: u64) -> Result<Vec<Sha256Hash>, StorageError> {
        Ok(self.consistency_proof(old, new)?.path)
    }
    fn checkpoint(&self, size: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ledger::checkpoint(self, size)
    }
    fn latest_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        Ledger::latest_checkpoint(self)
    }
    fn kind_leaves(&self, code: u8, end: u64, limit: usize) -> Result<Vec<u64>, StorageError> {
        let mut leaves = Ledger::kind_leaves(self, code, 0, limit)?;
        leaves.retain(|&i| i < end);
        Ok(leaves)
    }
}

/// What to export.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    /// What the export covers (recorded in the bundle).
    pub scope: Scope,
    /// The leaves to export.
    pub leaf_indexes: Vec<u64>,
    /// Whether to include payload bytes.
    pub include_payloads: bool,
    /// The exporter's time (ms since the epoch).
    pub created_at_ms: u64,
}

/// Why a bundle could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The log could not be read.
    #[error("reading the log: {0}")]
    Storage(#[from] StorageError),
    /// No quorum checkpoint exists yet.
    #[error("no quorum checkpoint exists yet; export after the first cosigning period")]
    NoCheckpoint,
    /// A leaf is newer than the latest quorum checkpoint.
    #[error(
        "leaf {leaf_index} is not yet covered by a quorum checkpoint (latest covers {tree_size} \
         leaves); export again after the next cosigning period"
    )]
    NotCheckpointed {
        /// The leaf.
        leaf_index: u64,
        /// Latest checkpoint's size.
        tree_size: u64,
    },
    /// A leaf does not exist.
    #[error("leaf {0} is not in the log")]
    MissingLeaf(u64),
    /// A block (header or certificate) is not stored.
    #[error("block {0} is not stored (header or commit certificate missing)")]
    MissingBlock(u64),
    /// The leaves need more anchors than a bundle carries.
    #[error("export needs {count} anchors; at most {max} fit a bundle (narrow the time range)")]
    TooManyAnchors {
        /// Anchors needed.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// Too many leaves.
    #[error("export has {count} entries; at most {max} fit a bundle (narrow the time range)")]
    TooManyEntries {
        /// Entries.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// A stored checkpoint note is not text or not a checkpoint.
    #[error("stored checkpoint of size {tree_size} is unreadable: {reason}")]
    BadCheckpoint {
        /// Its size.
        tree_size: u64,
        /// Why.
        reason: String,
    },
}

/// Builds a bundle of the requested leaves, with every membership change before the
/// last of them (so the verifier knows each author's key and revocations), and for each
/// leaf the earliest anchor covering it: its checkpoint, its receipt as an entry and a
/// consistency proof from its checkpoint to the proofs' checkpoint (the latest quorum
/// checkpoint).
pub fn build<S: LogSource>(
    source: &S,
    genesis: &Genesis,
    request: &BuildRequest,
) -> Result<Bundle, BuildError> {
    let (size, note) = source
        .latest_checkpoint()?
        .ok_or(BuildError::NoCheckpoint)?;
    let note_text = checkpoint_text(size, note)?;
    let note = Note::parse(note_text.as_bytes()).map_err(|e| BuildError::BadCheckpoint {
        tree_size: size,
        reason: e.to_string(),
    })?;
    let mut leaves: Vec<u64> = request.leaf_indexes.clone();
    if let Some(&leaf_index) = leaves.iter().find(|&&i| i >= size) {
        return Err(BuildError::NotCheckpointed {
            leaf_index,
            tree_size: size,
        });
    }
    // Membership changes up to the last exported leaf decide who could write it; later
    // ones are not needed and might not be anchored yet.
    let needed = request.leaf_indexes.iter().max().map_or(0, |i| i + 1);
    leaves.extend(source.kind_leaves(Kind::MEMBERSHIP_CODE, needed, BUNDLE_MEMBERSHIP_MAX)?);
    // Every leaf gets the earliest anchor covering it, so each entry's existence time is
    // as early as the log can prove (an incident's evidence is not dated by the later
    // anchor that also covers the claim about it).
    let mut receipts: Vec<(u64, AnchorReceipt)> = Vec::new();
    for index in source.kind_leaves(Kind::ANCHOR_RECEIPT_CODE, size, BUNDLE_ENTRIES_MAX)? {
        let envelope = source
            .envelope(index)?
            .ok_or(BuildError::MissingLeaf(index))?;
        if let Kind::AnchorReceipt(receipt) = envelope.body.kind {
            if receipt.tree_size <= size {
                receipts.push((index, receipt));
            }
        }
    }
    receipts.sort_by_key(|(index, r)| (r.tree_size, *index));
    let mut chosen: Vec<usize> = leaves
        .iter()
        .map(|&leaf| receipts.partition_point(|(_, r)| r.tree_size <= leaf))
        .filter(|&position| position < receipts.len())
        .collect();
    chosen.sort_unstable();
    chosen.dedup();
    if chosen.len() > BUNDLE_CHECKPOINTS_MAX - 1 {
        return Err(BuildError::TooManyAnchors {
            count: chosen.len(),
            max: BUNDLE_CHECKPOINTS_MAX - 1,
        });
    }
    let mut checkpoints = Vec::with_capacity(chosen.len() + 1);
    let mut consistency = Vec::new();
    let mut anchors = Vec::with_capacity(chosen.len());
    for position in chosen {
        let (index, receipt) = &receipts[position];
        if receipt.tree_size != size {
            if let Some(anchored) = source.checkpoint(receipt.tree_size)? {
                checkpoints.push(checkpoint_text(receipt.tree_size, anchored)?);
                consistency.push(BundleConsistency {
                    old_size: receipt.tree_size,
                    new_size: size,
                    proof: source.consistency_path(receipt.tree_size, size)?,
                });
            }
        }
        leaves.push(*index);
        anchors.push(BundleAnchor::from_receipt(receipt, Some(*index)));
    }
    checkpoints.push(note_text);
    leaves.sort_unstable();
    leaves.dedup();
    if leaves.len() > BUNDLE_ENTRIES_MAX {
        return Err(BuildError::TooManyEntries {
            count: leaves.len(),
            max: BUNDLE_ENTRIES_MAX,
        });
    }
    let mut entries = Vec::with_capacity(leaves.len());
    let mut blocks: BTreeMap<u64, (BlockHeader, BundleBlock)> = BTreeMap::new();
    for index in leaves {
        let height = source
            .leaf_height(index)?
            .ok_or(BuildError::MissingLeaf(index))?;
        let log_size = match blocks.entry(height) {
            std::collections::btree_map::Entry::Occupied(known) => known.get().0.log_size,
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(committed_block(source, height)?).0.log_size
            }
        };
        let envelope = source
            .envelope(index)?
            .ok_or(BuildError::MissingLeaf(index))?;
        let proof = TlogProof::new(index, source.inclusion_path(index, size)?, note.clone())
            .map_err(|e| BuildError::BadCheckpoint {
                tree_size: size,
                reason: e.to_string(),
            })?;
        let payload = if request.include_payloads {
            source.payload(index)?.map(|p| STANDARD.encode(p))
        } else {
            None
        };
        entries.push(BundleEntry {
            leaf_index: index,
            envelope: STANDARD.encode(envelope.leaf_bytes()),
            payload,
            proof: proof.encode(),
            block_height: height,
            block_proof: source.inclusion_path(index, log_size)?,
        });
    }
    Ok(Bundle {
        format: BUNDLE_FORMAT.into(),
        version: BUNDLE_VERSION,
        created_at_ms: request.created_at_ms,
        scope: request.scope.clone(),
        genesis_hash: genesis.hash(),
        genesis: genesis.clone(),
        checkpoints,
        blocks: blocks.into_values().map(|(_, block)| block).collect(),
        entries,
        consistency,
        anchors,
    })
}

/// The block at `height` in bundle form, with its header for the caller.
fn committed_block<S: LogSource>(
    source: &S,
    height: u64,
) -> Result<(BlockHeader, BundleBlock), BuildError> {
    let missing = || BuildError::MissingBlock(height);
    let header = source.header(height)?.ok_or_else(missing)?;
    let certificate = source.certificate(height)?.ok_or_else(missing)?;
    let parent = match height {
        1 => None,
        _ => Some(
            source
                .header(height - 1)?
                .ok_or(BuildError::MissingBlock(height - 1))?,
        ),
    };
    let block = BundleBlock::new(&header, &certificate, parent.as_ref());
    Ok((header, block))
}

fn checkpoint_text(tree_size: u64, note: Vec<u8>) -> Result<String, BuildError> {
    String::from_utf8(note).map_err(|_| BuildError::BadCheckpoint {
        tree_size,
        reason: "not UTF-8".into(),
    })
}
