//! Roots and proofs read from a [`NodeStore`]: work out the nodes, fetch them in one
//! batch, fold.

use super::plan::{HashCountMismatch, NodePlan, RequestError};
use super::plan::{consistency_plan, inclusion_plan, root_plan};
use super::proof::{ConsistencyProof, InclusionProof};
use super::store::NodeStore;
use super::{Root, empty_root};
use crate::hash::Sha256Hash;

/// Why a root, proof or append could not be computed from a store.
#[derive(Debug, thiserror::Error)]
pub enum TreeError<E> {
    /// The sizes or index asked for do not describe a proof.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A size was asked for that the store does not hold yet.
    #[error(
        "tree size {size} is beyond the log, which holds {tree_size} leaves; ask for at most \
         {tree_size}"
    )]
    SizeBeyondTree {
        /// Size asked for.
        size: u64,
        /// Leaves the store holds.
        tree_size: u64,
    },
    /// The append would take the tree past `u64::MAX` leaves.
    #[error("appending {batch_len} leaves to a tree of {tree_size} would exceed 2^64 - 1 leaves")]
    TreeFull {
        /// Size appended to.
        tree_size: u64,
        /// Leaves in the batch.
        batch_len: usize,
    },
    /// The store failed to read.
    #[error("node store read failed")]
    Store(#[source] E),
    /// The store answered a batch with the wrong number of hashes.
    #[error("node store broke its contract: {0}")]
    StoreContract(HashCountMismatch),
}

/// Root of the tree of the first `size` leaves, for any size up to the store's.
pub fn root<S: NodeStore + ?Sized>(store: &S, size: u64) -> Result<Root, TreeError<S::Error>> {
    if size == 0 {
        return Ok(Root {
            tree_size: 0,
            hash: empty_root(),
        });
    }
    check_size(store, size)?;
    let hashes = fetch(store, &root_plan(size))?;
    match hashes.as_slice() {
        [hash] => Ok(Root {
            tree_size: size,
            hash: *hash,
        }),
        _ => Err(TreeError::StoreContract(HashCountMismatch {
            expected: 1,
            got: hashes.len(),
        })),
    }
}

/// Inclusion proof of leaf `index` in the tree of `tree_size` leaves (any size up to the
/// store's, so proofs against older checkpoints can still be served).
pub fn inclusion_proof<S: NodeStore + ?Sized>(
    store: &S,
    index: u64,
    tree_size: u64,
) -> Result<InclusionProof, TreeError<S::Error>> {
    let plan = inclusion_plan(index, tree_size)?;
    check_size(store, tree_size)?;
    Ok(InclusionProof {
        leaf_index: index,
        tree_size,
        path: fetch(store, &plan)?,
    })
}

/// Consistency proof from the tree of `old_size` leaves to the tree of `new_size` leaves.
pub fn consistency_proof<S: NodeStore + ?Sized>(
    store: &S,
    old_size: u64,
    new_size: u64,
) -> Result<ConsistencyProof, TreeError<S::Error>> {
    let plan = consistency_plan(old_size, new_size)?;
    check_size(store, new_size)?;
    Ok(ConsistencyProof {
        old_size,
        new_size,
        path: fetch(store, &plan)?,
    })
}

fn check_size<S: NodeStore + ?Sized>(store: &S, size: u64) -> Result<(), TreeError<S::Error>> {
    let tree_size = store.tree_size().map_err(TreeError::Store)?;
    if size > tree_size {
        return Err(TreeError::SizeBeyondTree { size, tree_size });
    }
    Ok(())
}

/// One batched read for the whole plan, then the fold.
fn fetch<S: NodeStore + ?Sized>(
    store: &S,
    plan: &NodePlan,
) -> Result<Vec<Sha256Hash>, TreeError<S::Error>> {
    if plan.node_ids().is_empty() {
        return Ok(Vec::new());
    }
    let hashes = store.get_nodes(plan.node_ids()).map_err(TreeError::Store)?;
    plan.assemble(&hashes).map_err(TreeError::StoreContract)
}

#[cfg(test)]
mod tests {
    use super::super::{MemoryNodeStore, NodeId, append, hash_leaf};
    use super::*;

    /// A store that breaks the contract: drops the last hash of every batch, or fails.
    struct BrokenStore {
        inner: MemoryNodeStore,
        fail: bool,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("disk on fire")]
    struct DiskError;

    impl NodeStore for BrokenStore {
        type Error = DiskError;

        fn tree_size(&self) -> Result<u64, DiskError> {
            Ok(self.inner.len())
        }

        fn get_nodes(&self, ids: &[NodeId]) -> Result<Vec<Sha256Hash>, DiskError> {
            if self.fail {
                return Err(DiskError);
            }
            let mut hashes = self.inner.get_nodes(ids).map_err(|_| DiskError)?;
            hashes.pop();
            Ok(hashes)
        }
    }

    fn broken(fail: bool) -> BrokenStore {
        let mut inner = MemoryNodeStore::new();
        let leaves: Vec<_> = (0..11u64).map(|i| hash_leaf(&i.to_le_bytes())).collect();
        inner.append(&leaves).unwrap();
        BrokenStore { inner, fail }
    }

    #[test]
    fn a_store_answering_short_is_an_error_not_a_panic() {
        let store = broken(false);
        assert!(matches!(root(&store, 11), Err(TreeError::StoreContract(_))));
        assert!(matches!(
            inclusion_proof(&store, 3, 11),
            Err(TreeError::StoreContract(_))
        ));
        assert!(matches!(
            consistency_proof(&store, 3, 11),
            Err(TreeError::StoreContract(_))
        ));
        assert!(matches!(
            append(&store, 11, &[Sha256Hash::ZERO]),
            Err(TreeError::StoreContract(_))
        ));
    }

    #[test]
    fn store_failures_are_passed_on() {
        let store = broken(true);
        let err = inclusion_proof(&store, 3, 11).unwrap_err();
        assert!(matches!(err, TreeError::Store(DiskError)));
        assert_eq!(
            std::error::Error::source(&err).map(ToString::to_string),
            Some("disk on fire".to_owned())
        );
        assert!(matches!(
            append(&store, 11, &[Sha256Hash::ZERO]),
            Err(TreeError::Store(DiskError))
        ));
        // The empty tree and equal sizes need no read at all.
        assert!(root(&store, 0).is_ok());
        assert!(consistency_proof(&store, 5, 5).is_ok());
    }

    #[test]
    fn appends_past_u64_max_leaves_are_refused() {
        let store = MemoryNodeStore::new();
        assert!(matches!(
            append(&store, u64::MAX - 1, &[Sha256Hash::ZERO; 2]),
            Err(TreeError::TreeFull {
                tree_size,
                batch_len: 2
            }) if tree_size == u64::MAX - 1
        ));
    }
}
