//! Proof verification (RFC 9162 §2.1.3.2 and §2.1.4.2).
//!
//! The proof is split the way the tree is: the *inner* part climbs from the leaf to the
//! root of the largest perfect subtree that contains both the leaf and the last leaf of
//! the tree, and the *border* part climbs the right border of the tree from there. Working
//! the expected proof length out first lets a wrong-length proof be rejected with an
//! error that says so, rather than as an anonymous root mismatch.
//!
//! Roots and leaf hashes supplied by the caller are taken as bytes, as the RFC defines
//! them: a value of the wrong length simply never matches.

use super::hash_children;
use crate::hash::Sha256Hash;

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is out of range for a tree of size {tree_size}")]
    IndexOutOfRange {
        /// Claimed leaf index.
        index: u64,
        /// Claimed tree size.
        tree_size: u64,
    },
    /// The proof has a different number of hashes than the sizes require.
    #[error("proof has {got} hashes, but these sizes require exactly {expected}")]
    WrongProofLength {
        /// Hashes the sizes require.
        expected: usize,
        /// Hashes given.
        got: usize,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizesReversed {
        /// Size of the earlier tree.
        old_size: u64,
        /// Size of the later tree.
        new_size: u64,
    },
    /// Consistency with the empty tree proves nothing and is refused.
    #[error("consistency from the empty tree proves nothing; old tree size must be at least 1")]
    EmptyOldTree,
    /// The proof is for a different tree size than the root it is checked against; a root
    /// hash does not say how many leaves it covers, so the sizes must agree.
    #[error(
        "the proof's {which} size is {proof_size}, but the {which} root given is for size \
         {root_size}; check a proof against the root of the size it was made for"
    )]
    SizeMismatch {
        /// Which root: "tree", "old" or "new".
        which: &'static str,
        /// Size the proof is for.
        proof_size: u64,
        /// Size of the root given.
        root_size: u64,
    },
    /// The proof hashes to a different root than the one claimed.
    #[error("proof does not lead to the {which} root")]
    RootMismatch {
        /// Which root did not match: "tree", "old" or "new".
        which: &'static str,
    },
}

/// Number of inner and border hashes in an inclusion proof for `index` in `tree_size`.
fn decompose_inclusion(index: u64, tree_size: u64) -> (usize, usize) {
    // Bits in which the leaf's path and the last leaf's path differ: below the highest
    // of them the two paths are in separate subtrees, so each level costs a sibling hash.
    let inner = u64::BITS - (index ^ (tree_size - 1)).leading_zeros();
    // Above that, the leaf is on the right border; every 1 bit left is a left sibling.
    // `inner` is 64 when the paths split at the top level (trees over 2^63 leaves): no bits
    // are left, and a plain shift by 64 would overflow.
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner as usize, border as usize)
}

/// Climbs `seed` through `proof` as the subtree of `index`, choosing sides by its bits.
fn chain_inner(mut seed: Sha256Hash, proof: &[Sha256Hash], index: u64) -> Sha256Hash {
    for (level, sibling) in proof.iter().enumerate() {
        seed = if (index >> level) & 1 == 0 {
            hash_children(&seed, sibling)
        } else {
            hash_children(sibling, &seed)
        };
    }
    seed
}

/// Like [`chain_inner`], but only folds in left siblings: it computes the root of the
/// smaller tree in a consistency proof, which has no nodes right of its last leaf.
fn chain_inner_right(mut seed: Sha256Hash, proof: &[Sha256Hash], index: u64) -> Sha256Hash {
    for (level, sibling) in proof.iter().enumerate() {
        if (index >> level) & 1 == 1 {
            seed = hash_children(sibling, &seed);
        }
    }
    seed
}

/// Climbs the right border of the tree: every remaining sibling is on the left.
fn chain_border_right(mut seed: Sha256Hash, proof: &[Sha256Hash]) -> Sha256Hash {
    for sibling in proof {
        seed = hash_children(sibling, &seed);
    }
    seed
}

/// Computes the root that an inclusion proof implies for `leaf_hash` at `index`.
pub fn root_from_inclusion(
    leaf_hash: &Sha256Hash,
    index: u64,
    tree_size: u64,
    proof: &[Sha256Hash],
) -> Result<Sha256Hash, ProofError> {
    if index >= tree_size {
        return Err(ProofError::IndexOutOfRange { index, tree_size });
    }
    let (inner, border) = decompose_inclusion(index, tree_size);
    if proof.len() != inner + border {
        return Err(ProofError::WrongProofLength {
            expected: inner + border,
            got: proof.len(),
        });
    }
    let subtree = chain_inner(*leaf_hash, &proof[..inner], index);
    Ok(chain_border_right(subtree, &proof[inner..]))
}

/// Verifies that the leaf with hash `leaf_hash` is at `index` in the tree of `tree_size`
/// leaves whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &[u8],
    index: u64,
    tree_size: u64,
    proof: &[Sha256Hash],
    root: &[u8],
) -> Result<(), ProofError> {
    let Ok(leaf_hash) = Sha256Hash::from_slice(leaf_hash) else {
        // A leaf hash of the wrong length cannot be part of any SHA-256 tree; still report
        // range and length errors first, since they say more about the input.
        root_from_inclusion(&Sha256Hash::ZERO, index, tree_size, proof)?;
        return Err(ProofError::RootMismatch { which: "tree" });
    };
    let computed = root_from_inclusion(&leaf_hash, index, tree_size, proof)?;
    if computed.0.as_slice() != root {
        return Err(ProofError::RootMismatch { which: "tree" });
    }
    Ok(())
}

/// Verifies that the tree of `old_size` leaves with root `old_root` is a prefix of the tree
/// of `new_size` leaves with root `new_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &[u8],
    new_root: &[u8],
    proof: &[Sha256Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesReversed { old_size, new_size });
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength {
                expected: 0,
                got: proof.len(),
            });
        }
        if old_root != new_root {
            return Err(ProofError::RootMismatch { which: "new" });
        }
        return Ok(());
    }
    // The proof is an inclusion proof of the old tree's last leaf in the new tree, cut
    // short at the largest perfect subtree the old tree ends with (`shift` levels high):
    // that subtree's hash is the seed. When the whole old tree is that perfect subtree,
    // the seed is the old root itself and the proof omits it.
    let (inner, border) = decompose_inclusion(old_size - 1, new_size);
    let shift = old_size.trailing_zeros() as usize;
    let inner = inner - shift;
    let old_is_perfect = old_size == 1 << shift;
    let (seed, rest) = if old_is_perfect {
        match Sha256Hash::from_slice(old_root) {
            Ok(root) => (root, proof),
            Err(_) => return Err(ProofError::RootMismatch { which: "old" }),
        }
    } else {
        match proof.split_first() {
            Some((first, rest)) => (*first, rest),
            None => {
                return Err(ProofError::WrongProofLength {
                    expected: 1 + inner + border,
                    got: 0,
                });
            }
        }
    };
    if rest.len() != inner + border {
        let start = usize::from(!old_is_perfect);
        return Err(ProofError::WrongProofLength {
            expected: start + inner + border,
            got: proof.len(),
        });
    }
    let mask = (old_size - 1) >> shift;
    let old_computed = chain_border_right(
        chain_inner_right(seed, &rest[..inner], mask),
        &rest[inner..],
    );
    if old_computed.0.as_slice() != old_root {
        return Err(ProofError::RootMismatch { which: "old" });
    }
    let new_computed = chain_border_right(chain_inner(seed, &rest[..inner], mask), &rest[inner..]);
    if new_computed.0.as_slice() != new_root {
        return Err(ProofError::RootMismatch { which: "new" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_over_2_pow_63_leaves_do_not_overflow() {
        // Leaf 0 and the last leaf split at the root, 64 levels up.
        let tree_size = (1 << 63) + 1;
        assert_eq!(decompose_inclusion(0, tree_size), (64, 0));
        let proof = [Sha256Hash::ZERO; 64];
        assert!(root_from_inclusion(&Sha256Hash::ZERO, 0, tree_size, &proof).is_ok());
        assert_eq!(
            verify_inclusion(&[0; 32], 0, tree_size, &proof[..3], &[0; 32]),
            Err(ProofError::WrongProofLength {
                expected: 64,
                got: 3
            })
        );
        assert!(matches!(
            verify_consistency(3, u64::MAX, &[0; 32], &[0; 32], &[Sha256Hash::ZERO; 65]),
            Err(ProofError::RootMismatch { .. })
        ));
    }
}
