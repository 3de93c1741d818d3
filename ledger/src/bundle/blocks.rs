//! Proven committed times: the private chain's blocks in a bundle (`docs/evidence-bundle.md`
//! §3.6, §4.5).
//!
//! An entry's committed time is the time in the header of the block that appended it.
//! The bundle proves it with three things a verifier checks against genesis alone: the
//! header's commit certificate (precommits of more than two thirds of the genesis
//! validators), the parent header it names by id (so the leaves before the block are
//! known: `parent.log_size`), and an inclusion proof of the entry in the tree the header
//! commits to (`log_size`, `log_root`). A leaf at least `parent.log_size` and below
//! `log_size`, included under `log_root`, was appended by that block and no other.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use borsh::BorshDeserialize;
use serde::{Deserialize, Serialize};

use super::{Bundle, Failure, Item, Report};
use crate::block::{BlockHeader, CommitCertificate};
use crate::codec::{decode, encode};
use crate::hash::{Blake3Hash, Sha256Hash};
use crate::limits::{MAX_CONSENSUS_MESSAGE_BYTES, MAX_ENVELOPE_BYTES};
use crate::merkle::verify_inclusion;
use crate::message::UnixMillis;

/// A committed block of the private chain that dates entries of the bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleBlock {
    /// The block header's canonical (borsh) bytes, standard base64.
    pub header: String,
    /// The commit certificate that finalized it, borsh, standard base64.
    pub certificate: String,
    /// The parent block's header, borsh, standard base64; absent at height 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

impl BundleBlock {
    /// The bundle form of a committed header, its certificate and its parent's header.
    pub fn new(
        header: &BlockHeader,
        certificate: &CommitCertificate,
        parent: Option<&BlockHeader>,
    ) -> Self {
        Self {
            header: STANDARD.encode(encode(header)),
            certificate: STANDARD.encode(encode(certificate)),
            parent: parent.map(|p| STANDARD.encode(encode(p))),
        }
    }
}

/// What a verified block proves about the leaves it appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DatedBlock {
    /// The block time: the committed time of its leaves.
    pub time: UnixMillis,
    /// First leaf it appended (the parent's log size).
    pub first_leaf: u64,
    /// Log size after it.
    pub log_size: u64,
    /// Log root after it.
    pub log_root: Sha256Hash,
}

/// Verified blocks by height.
pub(super) type DatedBlocks = BTreeMap<u64, DatedBlock>;

/// §4.5: each block decodes, is of this network, is certified by the genesis validators
/// and names the parent it carries; heights ascend (each above the last verified one).
pub(super) fn check_blocks(bundle: &Bundle, report: &mut Report) -> DatedBlocks {
    let mut verified = DatedBlocks::new();
    let mut previous: Option<u64> = None;
    for (position, block) in bundle.blocks.iter().enumerate() {
        let item = Item::Block { position };
        match check_block(bundle, block, previous) {
            Ok((height, dated)) => {
                previous = Some(height);
                report.checks_passed += 1;
                verified.insert(height, dated);
            }
            Err(failure) => report.fail(item, failure),
        }
    }
    verified
}

fn check_block(
    bundle: &Bundle,
    block: &BundleBlock,
    previous: Option<u64>,
) -> Result<(u64, DatedBlock), Failure> {
    // Step 11: every field decodes before anything is judged.
    let header: BlockHeader = decode_field(&block.header, "header", MAX_ENVELOPE_BYTES)?;
    let certificate: CommitCertificate = decode_field(
        &block.certificate,
        "certificate",
        MAX_CONSENSUS_MESSAGE_BYTES,
    )?;
    let parent: Option<BlockHeader> = block
        .parent
        .as_deref()
        .map(|encoded| decode_field(encoded, "parent", MAX_ENVELOPE_BYTES))
        .transpose()?;
    if let Some(previous) = previous {
        if header.height <= previous {
            return Err(Failure::BlockOrder {
                height: header.height,
                previous,
            });
        }
    }
    let network = &bundle.genesis.network;
    if header.network != *network {
        return Err(Failure::BlockNetwork {
            found: header.network.to_string(),
        });
    }
    bundle
        .genesis
        .validators
        .verify_commit(network, header.height, &header.id(), &certificate)
        .map_err(Failure::BlockCertificate)?;
    let first_leaf = match (parent, header.height) {
        (None, 1) if header.parent == Blake3Hash::ZERO => 0,
        (None, 1) => {
            return Err(Failure::BlockParent(
                "height 1 must name no parent (all zeros)".into(),
            ));
        }
        (None, _) => {
            return Err(Failure::BlockParent(format!(
                "block at height {} carries no parent header",
                header.height
            )));
        }
        (Some(_), 1) => {
            return Err(Failure::BlockParent(
                "block at height 1 has no parent, but one is carried".into(),
            ));
        }
        (Some(parent), _) => {
            if parent.id() != header.parent {
                return Err(Failure::BlockParent(format!(
                    "the carried parent's id is {}, but the header names {}",
                    parent.id(),
                    header.parent
                )));
            }
            if parent.height + 1 != header.height || parent.log_size > header.log_size {
                return Err(Failure::BlockParent(format!(
                    "the parent is at height {} with {} leaves; the block at height {} has {}",
                    parent.height, parent.log_size, header.height, header.log_size
                )));
            }
            parent.log_size
        }
    };
    Ok((
        header.height,
        DatedBlock {
            time: header.time,
            first_leaf,
            log_size: header.log_size,
            log_root: header.log_root,
        },
    ))
}

fn decode_field<T: BorshDeserialize>(
    encoded: &str,
    field: &'static str,
    max: usize,
) -> Result<T, Failure> {
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| Failure::Base64 { field })?;
    decode(&bytes, max).map_err(|e| Failure::BlockDecode {
        field,
        reason: e.to_string(),
    })
}

/// §4.6 step 22: the entry's block verified, appended `leaf_index`, and commits to the
/// entry by inclusion. Returns the committed time.
pub(super) fn check_entry_block(
    blocks: &DatedBlocks,
    leaf_index: u64,
    leaf_hash: &Sha256Hash,
    height: u64,
    proof: &[Sha256Hash],
) -> Result<UnixMillis, Failure> {
    let block = blocks
        .get(&height)
        .ok_or(Failure::EntryBlockMissing { height })?;
    if !(block.first_leaf..block.log_size).contains(&leaf_index) {
        return Err(Failure::BlockRange {
            height,
            first: block.first_leaf,
            end: block.log_size,
        });
    }
    verify_inclusion(
        leaf_hash.as_bytes(),
        leaf_index,
        block.log_size,
        proof,
        block.log_root.as_bytes(),
    )
    .map_err(Failure::BlockInclusion)?;
    Ok(block.time)
}
