//! The evidence log: an append-only RFC 9162 (RFC 6962) SHA-256 Merkle tree.
//!
//! Hashing (RFC 9162 §2.1.1): a leaf hash is `SHA-256(0x00 || leaf)`, an interior node is
//! `SHA-256(0x01 || left || right)`, and the empty tree's root is `SHA-256("")`.

mod verify;

pub use verify::{ProofError, root_from_inclusion, verify_consistency, verify_inclusion};

use crate::hash::Sha256Hash;
use sha2::{Digest as _, Sha256};

/// Domain prefix of a leaf hash (RFC 9162 §2.1.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// Domain prefix of an interior node hash (RFC 9162 §2.1.1).
pub const NODE_PREFIX: u8 = 0x01;

/// Hash of a log leaf: `SHA-256(0x00 || data)`.
pub fn hash_leaf(data: &[u8]) -> Sha256Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    Sha256Hash(h.finalize().into())
}

/// Hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn hash_children(left: &Sha256Hash, right: &Sha256Hash) -> Sha256Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left.0);
    h.update(right.0);
    Sha256Hash(h.finalize().into())
}

/// Root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Sha256Hash {
    Sha256Hash::digest(&[])
}

/// A tree root together with the size it was computed at: a root means nothing
/// without its size, so the two travel together.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Debug, borsh::BorshSerialize, borsh::BorshDeserialize,
)]
pub struct Root {
    /// Number of leaves in the tree.
    pub tree_size: u64,
    /// RFC 9162 root hash of those leaves.
    pub hash: Sha256Hash,
}
