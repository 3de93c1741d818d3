//! Where node hashes are read from: the [`NodeStore`] trait and an in-memory store.

use super::append::{Appended, append};
use super::node::{MAX_NODE_LEVEL, NodeId};
use super::{Root, TreeError};
use crate::hash::Sha256Hash;

/// Read access to the stored perfect-subtree hashes of one log.
///
/// The whole contract:
/// - [`NodeStore::tree_size`] is a size `n` for which every perfect subtree inside
///   `[0, n)` can be read. A store may hold more nodes (a batch being written) but must
///   not report a size before all of that size's nodes are readable.
/// - [`NodeStore::get_nodes`] answers one batch: exactly one hash per id, in the order of
///   `ids`, or an error. A node the store does not have is an error, never a panic and
///   never a made-up hash. Any id may be asked for; ids in the same batch may repeat.
/// - A node's hash never changes once readable: stored nodes are perfect subtrees, which
///   later leaves do not alter.
///
/// Proof and root functions in this module make one `get_nodes` call each, so a store
/// backed by a database should serve the whole batch in one round trip (for RocksDB,
/// `multi_get` on [`NodeId::to_key`] keys).
pub trait NodeStore {
    /// Why a read failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Number of leaves whose subtrees are all readable.
    fn tree_size(&self) -> Result<u64, Self::Error>;

    /// The hashes of `ids`, in order.
    fn get_nodes(&self, ids: &[NodeId]) -> Result<Vec<Sha256Hash>, Self::Error>;
}

/// Why the in-memory store refused a read or a write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryStoreError {
    /// A node was asked for that the store does not hold.
    #[error("{id} is not stored; the store holds a tree of {tree_size} leaves")]
    MissingNode {
        /// Node asked for.
        id: NodeId,
        /// Leaves the store holds.
        tree_size: u64,
    },
    /// A written node does not continue its level: levels grow one index at a time.
    #[error(
        "{id} cannot be added: level {} holds {expected_index} nodes, so its next node \
         must have index {expected_index}", id.level()
    )]
    UnexpectedNode {
        /// Node given.
        id: NodeId,
        /// Index the next node of its level must have.
        expected_index: u64,
    },
    /// After a write, a level would not hold the nodes its tree size needs.
    #[error(
        "after this write level {level} would hold {held} nodes, but a tree of {tree_size} \
         leaves needs {needed}; write every new perfect subtree of the batch together"
    )]
    IncompleteWrite {
        /// Level that came out short or long.
        level: u8,
        /// Nodes the level would hold.
        held: u64,
        /// Leaves the tree would hold.
        tree_size: u64,
        /// Nodes a tree of that size has at this level.
        needed: u64,
    },
}

/// Every perfect-subtree hash of a log, in memory: for tests, benchmarks and verifiers
/// that rebuild a small log.
///
/// It keeps one vector per level, so a tree of `n` leaves costs about `2n` hashes
/// (64 bytes per leaf).
#[derive(Clone, Debug, Default)]
pub struct MemoryNodeStore {
    /// `levels[l][i]` is the hash of the node at level `l`, index `i`.
    levels: Vec<Vec<Sha256Hash>>,
}

impl MemoryNodeStore {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves stored.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Whether no leaf is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends leaf hashes (see [`append`](super::append())), stores the new nodes and
    /// returns the new root.
    pub fn append(
        &mut self,
        leaf_hashes: &[Sha256Hash],
    ) -> Result<Root, TreeError<MemoryStoreError>> {
        let Appended { nodes, root } = append(self, self.len(), leaf_hashes)?;
        self.write(&nodes).map_err(TreeError::Store)?;
        Ok(root)
    }

    /// Stores the nodes of one append, all or nothing: each level must continue from its
    /// last index, and afterwards every level must hold exactly the nodes its tree size
    /// needs, so [`NodeStore::tree_size`] is always complete.
    pub fn write(&mut self, nodes: &[(NodeId, Sha256Hash)]) -> Result<(), MemoryStoreError> {
        let levels = usize::from(MAX_NODE_LEVEL) + 1;
        let mut held: Vec<u64> = (0..levels)
            .map(|level| self.levels.get(level).map_or(0, |nodes| nodes.len() as u64))
            .collect();
        for (id, _) in nodes {
            let expected_index = &mut held[usize::from(id.level())];
            if id.index() != *expected_index {
                return Err(MemoryStoreError::UnexpectedNode {
                    id: *id,
                    expected_index: *expected_index,
                });
            }
            *expected_index += 1;
        }
        let tree_size = held[0];
        for (level, &held) in held.iter().enumerate() {
            let needed = tree_size >> level;
            if held != needed {
                return Err(MemoryStoreError::IncompleteWrite {
                    level: u8::try_from(level).unwrap_or(u8::MAX),
                    held,
                    tree_size,
                    needed,
                });
            }
        }
        for (id, hash) in nodes {
            let level = usize::from(id.level());
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            self.levels[level].push(*hash);
        }
        Ok(())
    }

    fn get(&self, id: NodeId) -> Option<Sha256Hash> {
        let level = self.levels.get(usize::from(id.level()))?;
        let index = usize::try_from(id.index()).ok()?;
        level.get(index).copied()
    }
}

impl NodeStore for MemoryNodeStore {
    type Error = MemoryStoreError;

    fn tree_size(&self) -> Result<u64, Self::Error> {
        Ok(self.len())
    }

    fn get_nodes(&self, ids: &[NodeId]) -> Result<Vec<Sha256Hash>, Self::Error> {
        ids.iter()
            .map(|&id| {
                self.get(id).ok_or(MemoryStoreError::MissingNode {
                    id,
                    tree_size: self.len(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::hash_leaf;
    use super::*;

    fn leaves(range: std::ops::Range<u64>) -> Vec<Sha256Hash> {
        range.map(|i| hash_leaf(&i.to_be_bytes())).collect()
    }

    #[test]
    fn missing_nodes_are_errors() {
        let mut store = MemoryNodeStore::new();
        store.append(&leaves(0..5)).unwrap();
        let ids = [NodeId::new(2, 0).unwrap(), NodeId::new(2, 1).unwrap()];
        assert_eq!(
            store.get_nodes(&ids),
            Err(MemoryStoreError::MissingNode {
                id: ids[1],
                tree_size: 5
            })
        );
        let far = NodeId::new(40, 1000).unwrap();
        assert!(store.get_nodes(&[far]).is_err());
        assert_eq!(store.get_nodes(&ids[..1]).unwrap().len(), 1);
    }

    #[test]
    fn writes_must_be_whole_appends() {
        let mut store = MemoryNodeStore::new();
        store.append(&leaves(0..3)).unwrap();
        let hash = Sha256Hash::ZERO;
        // Leaf 4 skips leaf 3.
        let skip = [(NodeId::leaf(4).unwrap(), hash)];
        assert_eq!(
            store.write(&skip),
            Err(MemoryStoreError::UnexpectedNode {
                id: skip[0].0,
                expected_index: 3
            })
        );
        // Leaf 3 completes the level-1 node 1 and the level-2 node 0, which are missing.
        let short = [(NodeId::leaf(3).unwrap(), hash)];
        assert!(matches!(
            store.write(&short),
            Err(MemoryStoreError::IncompleteWrite { level: 1, .. })
        ));
        // Refused writes change nothing.
        assert_eq!(store.len(), 3);
        store.append(&leaves(3..4)).unwrap();
        assert_eq!(store.len(), 4);
    }
}
