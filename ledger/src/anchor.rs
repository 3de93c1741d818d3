//! Public anchors (ARCHITECTURE §5): what an anchoring transaction carries, and how a
//! checkpoint and its [`AnchorReceipt`] are checked.
//!
//! An anchor is an EVM transaction whose calldata is exactly [`AnchorCalldata`]:
//!
//! ```text
//! offset  0  16 bytes  "custos/anchor/v1"      fixed tag
//! offset 16  32 bytes  SHA-256(origin line)    which log
//! offset 48   8 bytes  tree size, big-endian
//! offset 56  32 bytes  root hash
//! ```
//!
//! so anyone reading the public chain with any client can recover the checkpoint's size
//! and root. Offline, [`verify_anchored_checkpoint`] checks that a checkpoint note passes
//! the network's quorum policy and is the one a receipt names; with the `evm` feature,
//! [`verify_on_chain`] also asks an EVM JSON-RPC endpoint whether the receipt's
//! transaction is in the receipt's block, carries that calldata, and has enough
//! confirmations.
//!
//! ```
//! use custos_ledger::anchor::{ANCHOR_CALLDATA_LEN, AnchorCalldata};
//! use custos_ledger::c2sp::Checkpoint;
//! use custos_ledger::hash::Sha256Hash;
//! use custos_ledger::merkle::Root;
//!
//! let root = Root { tree_size: 42, hash: Sha256Hash([7; 32]) };
//! let checkpoint = Checkpoint::new("custos.example/log", root).unwrap();
//! let calldata = AnchorCalldata::for_checkpoint(&checkpoint);
//! let bytes = calldata.encode();
//! assert_eq!(bytes.len(), ANCHOR_CALLDATA_LEN);
//! assert_eq!(&bytes[..16], b"custos/anchor/v1");
//! assert_eq!(AnchorCalldata::decode(&bytes).unwrap(), calldata);
//! ```

use crate::c2sp::{Checkpoint, QuorumError, QuorumPolicy, VerifiedCheckpoint};
use crate::hash::Sha256Hash;
use crate::message::AnchorReceipt;

/// The first 16 bytes of every anchor's calldata.
pub const ANCHOR_CALLDATA_TAG: [u8; 16] = *b"custos/anchor/v1";

/// Length of an anchor's calldata: tag, origin hash, tree size, root.
pub const ANCHOR_CALLDATA_LEN: usize = 16 + 32 + 8 + 32;

/// What an anchoring transaction says about a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnchorCalldata {
    /// SHA-256 of the checkpoint's origin line.
    pub origin_hash: Sha256Hash,
    /// Tree size.
    pub tree_size: u64,
    /// Root hash.
    pub root: Sha256Hash,
}

impl AnchorCalldata {
    /// The calldata anchoring `checkpoint`.
    pub fn for_checkpoint(checkpoint: &Checkpoint) -> Self {
        let root = checkpoint.root();
        Self {
            origin_hash: Sha256Hash::digest(checkpoint.origin().as_bytes()),
            tree_size: root.tree_size,
            root: root.hash,
        }
    }

    /// The transaction input bytes.
    pub fn encode(&self) -> [u8; ANCHOR_CALLDATA_LEN] {
        let mut out = [0u8; ANCHOR_CALLDATA_LEN];
        out[..16].copy_from_slice(&ANCHOR_CALLDATA_TAG);
        out[16..48].copy_from_slice(&self.origin_hash.0);
        out[48..56].copy_from_slice(&self.tree_size.to_be_bytes());
        out[56..].copy_from_slice(&self.root.0);
        out
    }

    /// Reads transaction input bytes; anything but exactly one anchor is refused.
    pub fn decode(bytes: &[u8]) -> Result<Self, AnchorError> {
        if bytes.len() != ANCHOR_CALLDATA_LEN {
            return Err(AnchorError::CalldataLength { len: bytes.len() });
        }
        if bytes[..16] != ANCHOR_CALLDATA_TAG {
            return Err(AnchorError::CalldataTag);
        }
        let hash = |range: std::ops::Range<usize>| {
            Sha256Hash::from_slice(&bytes[range]).expect("32-byte range")
        };
        let mut size = [0u8; 8];
        size.copy_from_slice(&bytes[48..56]);
        Ok(Self {
            origin_hash: hash(16..48),
            tree_size: u64::from_be_bytes(size),
            root: hash(56..88),
        })
    }
}

/// Why an anchor does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    /// The calldata has the wrong length.
    #[error("anchor calldata is {len} bytes; an anchor is exactly {ANCHOR_CALLDATA_LEN}")]
    CalldataLength {
        /// Its length.
        len: usize,
    },
    /// The calldata does not start with the anchor tag.
    #[error("calldata does not start with the tag \"custos/anchor/v1\"; it is not a Custos anchor")]
    CalldataTag,
    /// The checkpoint does not pass the network's quorum policy.
    #[error("checkpoint is not a quorum checkpoint of this network: {0}")]
    Quorum(#[from] QuorumError),
    /// The receipt names another checkpoint.
    #[error(
        "receipt anchors tree size {receipt_size} root {receipt_root}, but the checkpoint is \
         tree size {checkpoint_size} root {checkpoint_root}"
    )]
    ReceiptMismatch {
        /// Size in the receipt.
        receipt_size: u64,
        /// Root in the receipt.
        receipt_root: Sha256Hash,
        /// Size in the checkpoint.
        checkpoint_size: u64,
        /// Root in the checkpoint.
        checkpoint_root: Sha256Hash,
    },
    /// The EVM endpoint could not be asked.
    #[error("EVM endpoint {url}: {reason}")]
    Endpoint {
        /// The endpoint.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The endpoint serves another chain.
    #[error("the endpoint serves chain id {actual}; the receipt is for chain id {expected}")]
    ChainId {
        /// In the receipt.
        expected: u64,
        /// Served.
        actual: u64,
    },
    /// The transaction is not known to the endpoint.
    #[error(
        "transaction 0x{tx_hash} is not on the chain (dropped, or removed by a reorganisation)"
    )]
    TransactionMissing {
        /// Its hash, hex.
        tx_hash: String,
    },
    /// The transaction is not in the receipt's block.
    #[error(
        "transaction is in block {actual_number} (0x{actual_hash}); the receipt says block \
         {receipt_number} (0x{receipt_hash})"
    )]
    TransactionBlock {
        /// Block number in the receipt.
        receipt_number: u64,
        /// Block hash in the receipt, hex.
        receipt_hash: String,
        /// Block number on chain (0 when pending).
        actual_number: u64,
        /// Block hash on chain, hex (empty when pending).
        actual_hash: String,
    },
    /// The transaction failed on chain.
    #[error("transaction reverted on chain")]
    TransactionFailed,
    /// The transaction's calldata anchors something else.
    #[error(
        "transaction calldata anchors tree size {tree_size} root {root} of origin hash \
         {origin_hash}; expected the checkpoint's"
    )]
    CalldataMismatch {
        /// Size in the calldata.
        tree_size: u64,
        /// Root in the calldata.
        root: Sha256Hash,
        /// Origin hash in the calldata.
        origin_hash: Sha256Hash,
    },
    /// The receipt's block is no longer on the chain.
    #[error("block {number} is 0x{actual} on chain; the receipt says 0x{receipt} (reorganised)")]
    BlockHash {
        /// Block number.
        number: u64,
        /// In the receipt, hex.
        receipt: String,
        /// On chain, hex (empty when the chain is shorter).
        actual: String,
    },
    /// The block time differs from the receipt's.
    #[error("block {number} has time {actual}; the receipt says {receipt}")]
    BlockTime {
        /// Block number.
        number: u64,
        /// In the receipt.
        receipt: u64,
        /// On chain.
        actual: u64,
    },
    /// Not enough blocks on top of the anchor yet.
    #[error("anchor has {confirmations} confirmations; {required} are required")]
    Confirmations {
        /// Blocks from the anchor's to the latest, inclusive.
        confirmations: u64,
        /// Required.
        required: u64,
    },
}

/// Checks offline that `note` is a quorum checkpoint of the network whose policy is
/// `policy` and that `receipt` names exactly its tree size and root. It does not contact
/// the public chain: see [`verify_on_chain`] (feature `evm`).
pub fn verify_anchored_checkpoint(
    note: &[u8],
    receipt: &AnchorReceipt,
    policy: &QuorumPolicy,
) -> Result<VerifiedCheckpoint, AnchorError> {
    let verified = policy.verify_bytes(note)?;
    let root = verified.checkpoint().root();
    if root.tree_size != receipt.tree_size || root.hash != receipt.root {
        return Err(AnchorError::ReceiptMismatch {
            receipt_size: receipt.tree_size,
            receipt_root: receipt.root,
            checkpoint_size: root.tree_size,
            checkpoint_root: root.hash,
        });
    }
    Ok(verified)
}

/// A checkpoint whose anchor was found on the public chain.
#[derive(Debug, Clone)]
pub struct OnChainAnchor {
    /// The checkpoint, with its verified cosignatures.
    pub checkpoint: VerifiedCheckpoint,
    /// Blocks from the anchor's block to the latest, inclusive.
    pub confirmations: u64,
    /// The public block's time, seconds since the epoch: the entries of the checkpoint
    /// existed before it.
    pub block_time_s: u64,
}

#[cfg(feature = "evm")]
mod evm;
#[cfg(feature = "evm")]
pub use evm::{EVM_REQUEST_TIMEOUT, verify_on_chain};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::c2sp::{CosignatureSigner, KeyName, Note};
    use crate::merkle::Root;

    fn signers() -> Vec<CosignatureSigner> {
        (0..4u8)
            .map(|i| {
                CosignatureSigner::from_seed(KeyName::new(format!("v{i}")).unwrap(), &[i; 32])
                    .unwrap()
            })
            .collect()
    }

    fn policy(signers: &[CosignatureSigner]) -> QuorumPolicy {
        QuorumPolicy::new("o", signers.iter().map(|s| s.verifier()).collect(), 3).unwrap()
    }

    fn note(signers: &[CosignatureSigner], root: Root) -> Vec<u8> {
        let checkpoint = Checkpoint::new("o", root).unwrap();
        let lines = signers
            .iter()
            .map(|s| s.cosign(&checkpoint, 1).unwrap())
            .collect();
        Note::new(checkpoint.to_text(), lines)
            .unwrap()
            .encode()
            .into_bytes()
    }

    fn receipt(root: Root) -> AnchorReceipt {
        AnchorReceipt {
            chain_id: 31337,
            tx_hash: [1; 32],
            block_number: 5,
            block_hash: [2; 32],
            block_time_s: 100,
            tree_size: root.tree_size,
            root: root.hash,
        }
    }

    #[test]
    fn calldata_refuses_other_lengths_and_tags() {
        let data = AnchorCalldata {
            origin_hash: Sha256Hash([1; 32]),
            tree_size: 0x0102_0304_0506_0708,
            root: Sha256Hash([9; 32]),
        };
        let bytes = data.encode();
        assert_eq!(&bytes[48..56], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            AnchorCalldata::decode(&bytes[..87]),
            Err(AnchorError::CalldataLength { len: 87 })
        );
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert_eq!(
            AnchorCalldata::decode(&longer),
            Err(AnchorError::CalldataLength { len: 89 })
        );
        let mut tagged = bytes;
        tagged[0] ^= 1;
        assert_eq!(
            AnchorCalldata::decode(&tagged),
            Err(AnchorError::CalldataTag)
        );
    }

    #[test]
    fn a_quorum_checkpoint_verifies_against_its_receipt_only() {
        let signers = signers();
        let policy = policy(&signers);
        let root = Root {
            tree_size: 10,
            hash: Sha256Hash([3; 32]),
        };
        let good = note(&signers[..3], root);
        let verified = verify_anchored_checkpoint(&good, &receipt(root), &policy).unwrap();
        assert_eq!(verified.cosignatures().len(), 3);

        // Two of four is not 2f+1.
        let short = note(&signers[..2], root);
        assert!(matches!(
            verify_anchored_checkpoint(&short, &receipt(root), &policy),
            Err(AnchorError::Quorum(QuorumError::QuorumNotMet {
                valid: 2,
                threshold: 3,
                ..
            }))
        ));

        // A receipt of another root or size.
        let other = Root {
            tree_size: 10,
            hash: Sha256Hash([4; 32]),
        };
        assert!(matches!(
            verify_anchored_checkpoint(&good, &receipt(other), &policy),
            Err(AnchorError::ReceiptMismatch { .. })
        ));
        let other = Root {
            tree_size: 11,
            hash: root.hash,
        };
        assert!(matches!(
            verify_anchored_checkpoint(&good, &receipt(other), &policy),
            Err(AnchorError::ReceiptMismatch { .. })
        ));

        // A cosignature line moved onto another root does not verify.
        let forged = String::from_utf8(good).unwrap().replace(
            &root_b64(root),
            &root_b64(Root {
                tree_size: 10,
                hash: Sha256Hash([4; 32]),
            }),
        );
        assert!(matches!(
            verify_anchored_checkpoint(forged.as_bytes(), &receipt(other), &policy),
            Err(AnchorError::Quorum(QuorumError::CosignatureInvalid { .. }))
        ));
    }

    fn root_b64(root: Root) -> String {
        let text = Checkpoint::new("o", root).unwrap().to_text();
        text.lines().nth(2).unwrap().to_string()
    }
}
