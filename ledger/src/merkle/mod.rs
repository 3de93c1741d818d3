//! The evidence log: an append-only RFC 9162 (RFC 6962) SHA-256 Merkle tree.
//!
//! Hashing (RFC 9162 §2.1.1): a leaf hash is `SHA-256(0x00 || leaf)`, an interior node is
//! `SHA-256(0x01 || left || right)`, and the empty tree's root is `SHA-256("")`.
//!
//! # Storage model
//!
//! Only *perfect* subtrees are stored, each under a [`NodeId`] `(level, index)` covering
//! leaves `[index * 2^level, (index + 1) * 2^level)`. Appending a leaf never changes a
//! stored node, so the store is append-only too, and every root and proof of every past
//! size can be served from it: the tree of `n` leaves is the perfect subtrees given by
//! the 1 bits of `n`, and a node of its right border that is not perfect is folded from
//! the perfect subtrees of its range.
//!
//! Which nodes a root or proof needs is pure index math ([`root_plan`],
//! [`inclusion_plan`], [`consistency_plan`]); [`root`], [`inclusion_proof`] and
//! [`consistency_proof`] run that plan against a [`NodeStore`] in one batched read.
//! [`append()`] reads the right border once per batch and returns every new node for the
//! storage layer to write in one batch. Verification ([`verify_inclusion`],
//! [`verify_consistency`], [`InclusionProof::verify`], [`ConsistencyProof::verify`])
//! needs no store.
//!
//! # Example
//!
//! ```
//! use custos_ledger::merkle::{self, MemoryNodeStore, NodeStore, hash_leaf};
//!
//! let mut store = MemoryNodeStore::new();
//! let leaves: Vec<_> = ["ids alert", "av detection", "incident report"]
//!     .iter()
//!     .map(|entry| hash_leaf(entry.as_bytes()))
//!     .collect();
//!
//! // What the storage layer does: compute the new nodes, then write them in one batch.
//! let appended = merkle::append(&store, store.tree_size()?, &leaves[..2])?;
//! store.write(&appended.nodes)?;
//! let root_2 = appended.root;
//! // Or both steps at once.
//! let root_3 = store.append(&leaves[2..])?;
//! assert_eq!(root_3.tree_size, 3);
//!
//! // Roots of past sizes stay available.
//! assert_eq!(merkle::root(&store, 2)?, root_2);
//!
//! // Prove that the second entry is in the tree of 3, and check it with the root alone.
//! let proof = merkle::inclusion_proof(&store, 1, 3)?;
//! proof.verify(&leaves[1], &root_3)?;
//! assert!(proof.verify(&leaves[0], &root_3).is_err());
//!
//! // Prove that the tree of 2 is a prefix of the tree of 3.
//! let consistency = merkle::consistency_proof(&store, 2, 3)?;
//! consistency.verify(&root_2, &root_3)?;
//!
//! // Bad requests are errors, not panics.
//! assert!(merkle::inclusion_proof(&store, 3, 3).is_err());
//! assert!(merkle::root(&store, 4).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod append;
mod node;
mod plan;
mod proof;
mod store;
mod tree;
mod verify;

pub use append::{Appended, append};
pub use node::{MAX_NODE_LEVEL, NODE_KEY_LEN, NodeId, NodeIdError};
pub use plan::{
    HashCountMismatch, NodePlan, RequestError, consistency_plan, inclusion_plan, root_plan,
};
pub use proof::{
    ConsistencyProof, InclusionProof, MAX_CONSISTENCY_PATH_LEN, MAX_INCLUSION_PATH_LEN,
};
pub use store::{MemoryNodeStore, MemoryStoreError, NodeStore};
pub use tree::{TreeError, consistency_proof, inclusion_proof, root};
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
