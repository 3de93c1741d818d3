//! Proof values as they travel: borsh for what is signed or stored, serde (hex hashes) for
//! RPC and bundles, with the path length bounded on decode.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize};

use super::Root;
use super::verify::{ProofError, verify_consistency, verify_inclusion};
use crate::hash::Sha256Hash;

/// Most hashes an inclusion proof can have: one per level from the leaf to the root, and no
/// leaf of a tree of at most `2^64 - 1` leaves is deeper than `ceil(log2(2^64 - 1)) = 64`
/// (reached by the leaves left of `2^63` in a tree of `2^63 + 1` leaves).
pub const MAX_INCLUSION_PATH_LEN: usize = 64;

/// Most hashes a consistency proof can have: the inclusion path of the old tree's last
/// leaf in the new tree (at most [`MAX_INCLUSION_PATH_LEN`], fewer the more the old size
/// ends in zero bits) plus the old tree's last perfect subtree when the old size is not a
/// power of two. An odd old size of 3 or more loses no level and adds the subtree, so
/// `3 -> 2^63 + 1` reaches 65.
pub const MAX_CONSISTENCY_PATH_LEN: usize = MAX_INCLUSION_PATH_LEN + 1;

/// Proof that a leaf is in a tree (RFC 9162 §2.1.3): the sibling hashes on the path from
/// the leaf up to the root, bottom first.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// Index of the leaf, counted from 0.
    pub leaf_index: u64,
    /// Size of the tree the proof leads to the root of.
    pub tree_size: u64,
    /// Sibling hashes from the leaf up.
    #[borsh(deserialize_with = "borsh_inclusion_path")]
    #[serde(deserialize_with = "serde_inclusion_path")]
    pub path: Vec<Sha256Hash>,
}

/// Proof that a tree is a prefix of a larger one (RFC 9162 §2.1.4).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// Size of the earlier tree.
    pub old_size: u64,
    /// Size of the later tree.
    pub new_size: u64,
    /// The proof hashes, as RFC 9162 orders them.
    #[borsh(deserialize_with = "borsh_consistency_path")]
    #[serde(deserialize_with = "serde_consistency_path")]
    pub path: Vec<Sha256Hash>,
}

impl InclusionProof {
    /// Checks that the leaf with `leaf_hash` (RFC 9162 leaf hash) is at `leaf_index` in the
    /// tree with root `root`. The root's size must be the proof's size: a root hash alone
    /// does not say how many leaves it covers.
    pub fn verify(&self, leaf_hash: &Sha256Hash, root: &Root) -> Result<(), ProofError> {
        check_size("tree", self.tree_size, root)?;
        verify_inclusion(
            leaf_hash.as_bytes(),
            self.leaf_index,
            self.tree_size,
            &self.path,
            root.hash.as_bytes(),
        )
    }
}

impl ConsistencyProof {
    /// Checks that the tree with root `old` is a prefix of the tree with root `new`. Each
    /// root's size must be the proof's matching size.
    pub fn verify(&self, old: &Root, new: &Root) -> Result<(), ProofError> {
        check_size("old", self.old_size, old)?;
        check_size("new", self.new_size, new)?;
        verify_consistency(
            self.old_size,
            self.new_size,
            old.hash.as_bytes(),
            new.hash.as_bytes(),
            &self.path,
        )
    }
}

fn check_size(which: &'static str, proof_size: u64, root: &Root) -> Result<(), ProofError> {
    if proof_size == root.tree_size {
        Ok(())
    } else {
        Err(ProofError::SizeMismatch {
            which,
            proof_size,
            root_size: root.tree_size,
        })
    }
}

fn borsh_inclusion_path<R: borsh::io::Read>(
    reader: &mut R,
) -> Result<Vec<Sha256Hash>, borsh::io::Error> {
    borsh_bounded_path(reader, MAX_INCLUSION_PATH_LEN)
}

fn borsh_consistency_path<R: borsh::io::Read>(
    reader: &mut R,
) -> Result<Vec<Sha256Hash>, borsh::io::Error> {
    borsh_bounded_path(reader, MAX_CONSISTENCY_PATH_LEN)
}

/// Reads a borsh `Vec<Sha256Hash>` (u32 length, then the hashes), refusing a length above
/// `max` before reading or allocating anything for it.
fn borsh_bounded_path<R: borsh::io::Read>(
    reader: &mut R,
    max: usize,
) -> Result<Vec<Sha256Hash>, borsh::io::Error> {
    let len = u32::deserialize_reader(reader)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&len| len <= max)
        .ok_or_else(|| {
            borsh::io::Error::new(
                borsh::io::ErrorKind::InvalidData,
                format!("proof path has {len} hashes; no 64-bit tree size needs more than {max}"),
            )
        })?;
    let mut path = Vec::with_capacity(len);
    for _ in 0..len {
        path.push(Sha256Hash::deserialize_reader(reader)?);
    }
    Ok(path)
}

fn serde_inclusion_path<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Sha256Hash>, D::Error> {
    deserializer.deserialize_seq(BoundedPath {
        max: MAX_INCLUSION_PATH_LEN,
    })
}

fn serde_consistency_path<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Sha256Hash>, D::Error> {
    deserializer.deserialize_seq(BoundedPath {
        max: MAX_CONSISTENCY_PATH_LEN,
    })
}

/// Reads a sequence of hashes, refusing it as soon as it runs past `max` elements.
struct BoundedPath {
    max: usize,
}

impl<'de> serde::de::Visitor<'de> for BoundedPath {
    type Value = Vec<Sha256Hash>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of at most {} hex SHA-256 hashes", self.max)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut path = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max));
        while let Some(hash) = seq.next_element()? {
            if path.len() == self.max {
                return Err(serde::de::Error::invalid_length(self.max + 1, &self));
            }
            path.push(hash);
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inclusion(path_len: usize) -> InclusionProof {
        InclusionProof {
            leaf_index: 3,
            tree_size: 9,
            path: (0..path_len)
                .map(|i| Sha256Hash::digest(&i.to_le_bytes()))
                .collect(),
        }
    }

    #[test]
    fn borsh_round_trips_and_bounds_the_path() {
        let proof = inclusion(MAX_INCLUSION_PATH_LEN);
        let bytes = borsh::to_vec(&proof).unwrap();
        assert_eq!(borsh::from_slice::<InclusionProof>(&bytes).unwrap(), proof);

        let long = borsh::to_vec(&inclusion(MAX_INCLUSION_PATH_LEN + 1)).unwrap();
        let err = borsh::from_slice::<InclusionProof>(&long).unwrap_err();
        assert!(err.to_string().contains("65 hashes"), "{err}");

        // A huge claimed length is refused before any allocation for it.
        let mut huge = borsh::to_vec(&inclusion(0)).unwrap();
        let at = huge.len() - 4;
        huge[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(borsh::from_slice::<InclusionProof>(&huge).is_err());

        let consistency = ConsistencyProof {
            old_size: 3,
            new_size: 9,
            path: inclusion(MAX_CONSISTENCY_PATH_LEN).path,
        };
        let bytes = borsh::to_vec(&consistency).unwrap();
        assert_eq!(
            borsh::from_slice::<ConsistencyProof>(&bytes).unwrap(),
            consistency
        );
        let mut longer = consistency;
        longer.path.push(Sha256Hash::ZERO);
        let bytes = borsh::to_vec(&longer).unwrap();
        assert!(borsh::from_slice::<ConsistencyProof>(&bytes).is_err());
    }

    #[test]
    fn json_uses_hex_hashes_and_bounds_the_path() {
        let proof = inclusion(2);
        let json = serde_json::to_string(&proof).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"leaf_index":3,"tree_size":9,"path":["{}","{}"]}}"#,
                proof.path[0].to_hex(),
                proof.path[1].to_hex()
            )
        );
        assert_eq!(
            serde_json::from_str::<InclusionProof>(&json).unwrap(),
            proof
        );

        let long = serde_json::to_string(&inclusion(MAX_INCLUSION_PATH_LEN + 1)).unwrap();
        let err = serde_json::from_str::<InclusionProof>(&long).unwrap_err();
        assert!(err.to_string().contains("at most 64"), "{err}");

        let unknown = json.replace("\"path\"", "\"extra\":1,\"path\"");
        assert!(serde_json::from_str::<InclusionProof>(&unknown).is_err());
        let short_hash = json.replace(&proof.path[0].to_hex(), "abcd");
        assert!(serde_json::from_str::<InclusionProof>(&short_hash).is_err());
    }

    #[test]
    fn verify_refuses_roots_of_another_size() {
        let leaf = Sha256Hash::digest(b"leaf");
        let proof = InclusionProof {
            leaf_index: 0,
            tree_size: 1,
            path: vec![],
        };
        let root = Root {
            tree_size: 1,
            hash: leaf,
        };
        assert_eq!(proof.verify(&leaf, &root), Ok(()));
        let other = Root {
            tree_size: 2,
            hash: leaf,
        };
        assert_eq!(
            proof.verify(&leaf, &other),
            Err(ProofError::SizeMismatch {
                which: "tree",
                proof_size: 1,
                root_size: 2
            })
        );
        let consistency = ConsistencyProof {
            old_size: 1,
            new_size: 1,
            path: vec![],
        };
        assert_eq!(consistency.verify(&root, &root), Ok(()));
        assert!(matches!(
            consistency.verify(&root, &other),
            Err(ProofError::SizeMismatch { which: "new", .. })
        ));
        assert!(matches!(
            consistency.verify(&other, &root),
            Err(ProofError::SizeMismatch { which: "old", .. })
        ));
    }
}
