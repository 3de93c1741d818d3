//! Addresses of stored tree nodes.

use std::fmt;
use std::ops::Range;

/// Highest level a stored node can have. A perfect subtree at level 64 would hold 2^64
/// leaves, one more than the largest tree a `u64` size can describe.
pub const MAX_NODE_LEVEL: u8 = 63;

/// Length of [`NodeId::to_key`]: one level byte and an 8-byte big-endian index.
pub const NODE_KEY_LEN: usize = 9;

/// A perfect (complete) subtree of the log: the node at `level` (0 = a leaf) with position
/// `index` among the nodes of that level, covering leaves
/// `[index * 2^level, (index + 1) * 2^level)`.
///
/// Only perfect subtrees are ever stored, so the hash behind a `NodeId` never changes once
/// written. Nodes on the right border of a tree whose size is not a power of two are not
/// `NodeId`s: they are folded from the perfect subtrees of their range when needed.
///
/// Ordering is by level, then index, the same order as [`NodeId::to_key`] bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct NodeId {
    level: u8,
    index: u64,
}

/// A [`NodeId`] could not be built from the numbers or bytes given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeIdError {
    /// The level is above [`MAX_NODE_LEVEL`].
    #[error("node level {level} is too high; levels go from 0 (leaves) to {MAX_NODE_LEVEL}")]
    LevelTooHigh {
        /// Level given.
        level: u8,
    },
    /// The node would cover leaves at or beyond index `u64::MAX`, which no tree with a `u64`
    /// size holds.
    #[error(
        "node {index} at level {level} covers leaves beyond the largest possible tree; \
         at this level the index must be below {limit}"
    )]
    IndexTooHigh {
        /// Level given.
        level: u8,
        /// Index given.
        index: u64,
        /// First index that is out of range at this level.
        limit: u64,
    },
    /// A storage key did not have [`NODE_KEY_LEN`] bytes.
    #[error("node key must be {NODE_KEY_LEN} bytes (level, big-endian index), got {len}")]
    WrongKeyLength {
        /// Bytes given.
        len: usize,
    },
}

impl NodeId {
    /// The node at `level` and `index`, if it fits in a tree of at most `u64::MAX` leaves.
    pub fn new(level: u8, index: u64) -> Result<Self, NodeIdError> {
        if level > MAX_NODE_LEVEL {
            return Err(NodeIdError::LevelTooHigh { level });
        }
        // The node's last leaf, `(index + 1) * 2^level - 1`, must be below u64::MAX, the
        // largest tree size; that is exactly `index < u64::MAX >> level`.
        let limit = u64::MAX >> level;
        if index >= limit {
            return Err(NodeIdError::IndexTooHigh {
                level,
                index,
                limit,
            });
        }
        Ok(Self { level, index })
    }

    /// The leaf at `index`.
    pub fn leaf(index: u64) -> Result<Self, NodeIdError> {
        Self::new(0, index)
    }

    /// Builds a node the tree arithmetic has already shown to be in range: `level` below 64
    /// and the node inside a tree of at most `u64::MAX` leaves.
    pub(super) fn in_tree(level: u32, index: u64) -> Self {
        debug_assert!(level <= u32::from(MAX_NODE_LEVEL));
        debug_assert!(index < u64::MAX >> level);
        #[expect(
            clippy::cast_possible_truncation,
            reason = "callers derive level from bit positions of a u64, so it is below 64"
        )]
        let level = level as u8;
        Self { level, index }
    }

    /// Height of the node above the leaves (0 for a leaf).
    pub fn level(&self) -> u8 {
        self.level
    }

    /// Position of the node among the nodes of its level.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Leaf indices the node covers. Never overflows: [`NodeId::new`] admits only nodes whose
    /// range ends at or below `u64::MAX`.
    pub fn leaf_range(&self) -> Range<u64> {
        let start = self.index << self.level;
        start..start + (1u64 << self.level)
    }

    /// Fixed-width storage key: the level byte, then the index big-endian, so that keys of
    /// one level sort by index and each level is one contiguous key range.
    pub fn to_key(&self) -> [u8; NODE_KEY_LEN] {
        let mut key = [0; NODE_KEY_LEN];
        key[0] = self.level;
        key[1..].copy_from_slice(&self.index.to_be_bytes());
        key
    }

    /// Reads a key written by [`NodeId::to_key`], rejecting wrong lengths and nodes that
    /// [`NodeId::new`] would reject.
    pub fn from_key(key: &[u8]) -> Result<Self, NodeIdError> {
        let Ok(key) = <&[u8; NODE_KEY_LEN]>::try_from(key) else {
            return Err(NodeIdError::WrongKeyLength { len: key.len() });
        };
        let mut index = [0; 8];
        index.copy_from_slice(&key[1..]);
        Self::new(key[0], u64::from_be_bytes(index))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {} at level {}", self.index, self.level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trips_and_sorts_by_level_then_index() {
        let ids = [
            NodeId::new(0, 0).unwrap(),
            NodeId::new(0, 1).unwrap(),
            NodeId::new(0, 256).unwrap(),
            NodeId::new(0, u64::MAX - 1).unwrap(),
            NodeId::new(1, 0).unwrap(),
            NodeId::new(1, 7).unwrap(),
            NodeId::new(MAX_NODE_LEVEL, 0).unwrap(),
        ];
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(pair[0].to_key() < pair[1].to_key(), "{pair:?}");
        }
        for id in ids {
            assert_eq!(NodeId::from_key(&id.to_key()), Ok(id));
        }
    }

    #[test]
    fn rejects_nodes_outside_any_u64_tree() {
        assert_eq!(
            NodeId::new(64, 0),
            Err(NodeIdError::LevelTooHigh { level: 64 })
        );
        // The leaf at u64::MAX would be the 2^64-th leaf.
        assert!(matches!(
            NodeId::leaf(u64::MAX),
            Err(NodeIdError::IndexTooHigh { .. })
        ));
        assert!(NodeId::leaf(u64::MAX - 1).is_ok());
        // Level 63 has one node, covering leaves [0, 2^63).
        assert!(NodeId::new(63, 0).is_ok());
        assert!(NodeId::new(63, 1).is_err());
        assert_eq!(NodeId::new(63, 0).unwrap().leaf_range(), 0..1 << 63);
        let last = NodeId::new(1, (u64::MAX >> 1) - 1).unwrap();
        assert_eq!(last.leaf_range().end, u64::MAX - 1);
    }

    #[test]
    fn from_key_rejects_bad_keys() {
        assert_eq!(
            NodeId::from_key(&[0; 8]),
            Err(NodeIdError::WrongKeyLength { len: 8 })
        );
        assert_eq!(
            NodeId::from_key(&[0; 10]),
            Err(NodeIdError::WrongKeyLength { len: 10 })
        );
        let mut key = [0xff; NODE_KEY_LEN];
        key[0] = 64;
        assert_eq!(
            NodeId::from_key(&key),
            Err(NodeIdError::LevelTooHigh { level: 64 })
        );
        key[0] = 2;
        assert!(matches!(
            NodeId::from_key(&key),
            Err(NodeIdError::IndexTooHigh { level: 2, .. })
        ));
    }
}
