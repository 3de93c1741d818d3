//! Index math: which stored nodes make up a root or a proof, worked out from the sizes
//! alone, without the tree.
//!
//! An RFC 9162 tree of `n` leaves is made of the perfect subtrees given by the binary
//! digits of `n`, largest (leftmost) first; its root folds them together from the right.
//! Every hash in a proof is either a perfect subtree, read from storage as it is, or a
//! node on the right border of the tree whose range `[begin, n)` is not a power of two
//! long. Such a partial node is folded the same way from the perfect subtrees of its range.
//! A proof has at most one partial node: the sibling where the path to the leaf leaves
//! the right border.

use super::hash_children;
use super::node::NodeId;
use crate::hash::Sha256Hash;

/// A proof or root was asked for with sizes or indices that do not describe one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The leaf index is not inside the tree.
    #[error(
        "leaf index {index} is out of range for a tree of size {tree_size}; it must be below \
         the size"
    )]
    IndexOutOfRange {
        /// Leaf index asked for.
        index: u64,
        /// Tree size asked for.
        tree_size: u64,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error(
        "old tree size {old_size} is larger than new tree size {new_size}; the old tree must \
         be the smaller"
    )]
    SizesReversed {
        /// Size of the earlier tree.
        old_size: u64,
        /// Size of the later tree.
        new_size: u64,
    },
    /// Consistency from the empty tree proves nothing, and verifiers refuse it.
    #[error("consistency from the empty tree proves nothing; old tree size must be at least 1")]
    EmptyOldTree,
}

/// A plan of node reads: the perfect subtrees to fetch, in one batch, and how to fold them
/// into the hashes of a proof or root.
///
/// Output hash `i` is the right-to-left fold of the next `spans[i]` fetched hashes: one
/// fetched node for a perfect subtree, several for a partial node on the right border.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NodePlan {
    ids: Vec<NodeId>,
    spans: Vec<u8>,
}

/// The hashes handed to [`NodePlan::assemble`] do not match its nodes one to one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a plan of {expected} nodes was given {got} hashes; it needs exactly one per node")]
pub struct HashCountMismatch {
    /// Nodes in the plan.
    pub expected: usize,
    /// Hashes given.
    pub got: usize,
}

impl NodePlan {
    /// Capacity for the largest plans (a 65-hash consistency proof whose partial node
    /// folds up to 63 subtrees), so building one never reallocates.
    const IDS_CAPACITY: usize = 128;

    fn with_capacity(outputs: usize) -> Self {
        Self {
            ids: Vec::with_capacity(Self::IDS_CAPACITY),
            spans: Vec::with_capacity(outputs),
        }
    }

    /// The nodes to fetch, in the order [`NodePlan::assemble`] expects their hashes.
    pub fn node_ids(&self) -> &[NodeId] {
        &self.ids
    }

    /// Number of hashes the plan produces.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the plan produces no hashes (an empty proof, or the empty tree's root).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Folds the fetched hashes, given in [`NodePlan::node_ids`] order, into the plan's
    /// output hashes.
    pub fn assemble(&self, fetched: &[Sha256Hash]) -> Result<Vec<Sha256Hash>, HashCountMismatch> {
        if fetched.len() != self.ids.len() {
            return Err(HashCountMismatch {
                expected: self.ids.len(),
                got: fetched.len(),
            });
        }
        let mut out = Vec::with_capacity(self.spans.len());
        let mut rest = fetched;
        for &span in &self.spans {
            let (group, tail) = rest.split_at(usize::from(span));
            rest = tail;
            out.push(fold_right(group));
        }
        Ok(out)
    }

    fn push_perfect(&mut self, level: u32, index: u64) {
        self.ids.push(NodeId::in_tree(level, index));
        self.spans.push(1);
    }

    /// Adds the RFC 9162 node over `[begin, end)`, where `begin` is a multiple of a power of
    /// two at least `end - begin` (true of every node in the tree), as its perfect subtrees.
    fn push_range(&mut self, begin: u64, end: u64) {
        let mut count = end - begin;
        let mut position = begin;
        let mut span = 0u8;
        while count != 0 {
            let level = u64::BITS - 1 - count.leading_zeros();
            self.ids.push(NodeId::in_tree(level, position >> level));
            position += 1 << level;
            count &= !(1 << level);
            span += 1;
        }
        self.spans.push(span);
    }

    /// Adds the siblings on the path from leaf `leaf` up to the root of a tree of `size`
    /// leaves, starting at `from_level` (0 for a full inclusion proof).
    fn push_path(&mut self, leaf: u64, from_level: u32, size: u64) {
        let last = size - 1;
        // Below `inner` the leaf and the last leaf are in different subtrees: every level
        // has a sibling, perfect except the one holding the last leaf, at `inner - 1`.
        let inner = u64::BITS - (leaf ^ last).leading_zeros();
        for level in from_level..inner {
            let sibling = (leaf >> level) ^ 1;
            if level + 1 < inner {
                self.push_perfect(level, sibling);
            } else {
                self.push_range(sibling << level, size);
            }
        }
        // From `inner` up the path runs along the right border, where a node has a sibling
        // only if it is a right child, and that left sibling is perfect.
        for level in inner..u64::BITS {
            let node = leaf >> level;
            if node & 1 == 1 {
                self.push_perfect(level, node - 1);
            }
        }
    }
}

/// Folds subtree hashes, left to right in the tree, into the hash of the node they make up.
fn fold_right(group: &[Sha256Hash]) -> Sha256Hash {
    match group.split_last() {
        Some((last, rest)) => rest
            .iter()
            .rev()
            .fold(*last, |right, left| hash_children(left, &right)),
        // Spans are never empty; the empty tree is handled before a plan is made.
        None => Sha256Hash::ZERO,
    }
}

/// The perfect subtrees of a tree of `tree_size` leaves, largest first, folded into its
/// root. These are also the right border that appending continues from. For size 0 the
/// plan is empty: the empty tree's root is [`super::empty_root`], which is not a fold.
pub fn root_plan(tree_size: u64) -> NodePlan {
    let mut plan = NodePlan::with_capacity(1);
    if tree_size != 0 {
        plan.push_range(0, tree_size);
    }
    plan
}

/// The nodes of the inclusion proof (RFC 9162 §2.1.3.1) for leaf `index` in a tree of
/// `tree_size` leaves, ordered from the leaf up.
pub fn inclusion_plan(index: u64, tree_size: u64) -> Result<NodePlan, RequestError> {
    if index >= tree_size {
        return Err(RequestError::IndexOutOfRange { index, tree_size });
    }
    let mut plan = NodePlan::with_capacity(super::MAX_INCLUSION_PATH_LEN);
    plan.push_path(index, 0, tree_size);
    Ok(plan)
}

/// The nodes of the consistency proof (RFC 9162 §2.1.4.1) from the tree of `old_size`
/// leaves to the tree of `new_size` leaves; empty when the sizes are equal.
pub fn consistency_plan(old_size: u64, new_size: u64) -> Result<NodePlan, RequestError> {
    if old_size > new_size {
        return Err(RequestError::SizesReversed { old_size, new_size });
    }
    if old_size == 0 {
        return Err(RequestError::EmptyOldTree);
    }
    let mut plan = NodePlan::with_capacity(super::MAX_CONSISTENCY_PATH_LEN);
    if old_size == new_size {
        return Ok(plan);
    }
    // The proof is the inclusion path of the old tree's last leaf in the new tree, starting
    // above the old tree's smallest perfect subtree, which ends at that leaf. That subtree
    // comes first, unless it is the whole old tree: the verifier holds the old root anyway.
    let shift = old_size.trailing_zeros();
    let last = old_size - 1;
    if !old_size.is_power_of_two() {
        plan.push_perfect(shift, last >> shift);
    }
    plan.push_path(last, shift, new_size);
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::super::{MAX_CONSISTENCY_PATH_LEN, MAX_INCLUSION_PATH_LEN};
    use super::*;

    fn ids(plan: &NodePlan) -> Vec<(u8, u64)> {
        plan.node_ids()
            .iter()
            .map(|id| (id.level(), id.index()))
            .collect()
    }

    #[test]
    fn root_plan_is_the_binary_decomposition() {
        assert!(root_plan(0).is_empty());
        let plan = root_plan(13); // 8 + 4 + 1
        assert_eq!(ids(&plan), [(3, 0), (2, 2), (0, 12)]);
        assert_eq!(plan.len(), 1);
        assert_eq!(ids(&root_plan(16)), [(4, 0)]);
    }

    #[test]
    fn inclusion_plan_matches_rfc_example() {
        // RFC 9162 §2.1.5: in the 7-leaf tree the path of d0 is [b, h, l], that of d3 is
        // [c, g, l], that of d4 is [f, j, k], that of d6 is [i, k].
        let plan = inclusion_plan(0, 7).unwrap();
        assert_eq!(ids(&plan), [(0, 1), (1, 1), (1, 2), (0, 6)]);
        assert_eq!(plan.len(), 3, "l is the partial node over leaves 4..7");
        assert_eq!(
            ids(&inclusion_plan(3, 7).unwrap()),
            [(0, 2), (1, 0), (1, 2), (0, 6)]
        );
        assert_eq!(
            ids(&inclusion_plan(4, 7).unwrap()),
            [(0, 5), (0, 6), (2, 0)]
        );
        assert_eq!(ids(&inclusion_plan(6, 7).unwrap()), [(1, 2), (2, 0)]);
    }

    #[test]
    fn consistency_plan_matches_rfc_example() {
        // RFC 9162 §2.1.5: 3 -> 7 is [c, d, g, l], 4 -> 7 is [l], 6 -> 7 is [i, j, k].
        let plan = consistency_plan(3, 7).unwrap();
        assert_eq!(ids(&plan), [(0, 2), (0, 3), (1, 0), (1, 2), (0, 6)]);
        assert_eq!(plan.len(), 4);
        let plan = consistency_plan(4, 7).unwrap();
        assert_eq!(ids(&plan), [(1, 2), (0, 6)]);
        assert_eq!(plan.len(), 1);
        assert_eq!(
            ids(&consistency_plan(6, 7).unwrap()),
            [(1, 2), (0, 6), (2, 0)]
        );
        assert!(consistency_plan(5, 5).unwrap().is_empty());
    }

    #[test]
    fn bad_requests_are_refused() {
        assert_eq!(
            inclusion_plan(5, 5),
            Err(RequestError::IndexOutOfRange {
                index: 5,
                tree_size: 5
            })
        );
        assert_eq!(
            inclusion_plan(0, 0),
            Err(RequestError::IndexOutOfRange {
                index: 0,
                tree_size: 0
            })
        );
        assert_eq!(
            consistency_plan(6, 5),
            Err(RequestError::SizesReversed {
                old_size: 6,
                new_size: 5
            })
        );
        assert_eq!(consistency_plan(0, 5), Err(RequestError::EmptyOldTree));
        assert_eq!(consistency_plan(0, 0), Err(RequestError::EmptyOldTree));
    }

    #[test]
    fn path_length_maxima_are_reached_and_not_exceeded() {
        // A leaf in the left 2^63 half of a tree of 2^63 + 1 leaves sits 64 levels deep.
        let deepest = inclusion_plan(0, (1 << 63) + 1).unwrap();
        assert_eq!(deepest.len(), MAX_INCLUSION_PATH_LEN);
        // With an odd old size that is not a power of two, the seed comes on top of the
        // 64-level path of the old tree's last leaf.
        let longest = consistency_plan(3, (1 << 63) + 1).unwrap();
        assert_eq!(longest.len(), MAX_CONSISTENCY_PATH_LEN);
        // The partial node of the largest tree folds 63 perfect subtrees.
        let widest = inclusion_plan(0, u64::MAX).unwrap();
        assert!(widest.len() <= MAX_INCLUSION_PATH_LEN);
        assert_eq!(widest.node_ids().len(), 63 + 63);
        for size in [1, 2, 3, u64::MAX / 3, u64::MAX - 1, u64::MAX] {
            for index in [0, 1, size / 2, size.saturating_sub(2), size - 1] {
                if index < size {
                    let plan = inclusion_plan(index, size).unwrap();
                    assert!(plan.len() <= MAX_INCLUSION_PATH_LEN);
                    assert!(plan.node_ids().len() <= NodePlan::IDS_CAPACITY);
                    for id in plan.node_ids() {
                        assert!(id.leaf_range().end <= size, "{id} beyond {size}");
                    }
                }
                let old = index.max(1);
                let plan = consistency_plan(old, size).unwrap();
                assert!(plan.len() <= MAX_CONSISTENCY_PATH_LEN);
                assert!(plan.node_ids().len() <= NodePlan::IDS_CAPACITY);
            }
        }
    }

    #[test]
    fn assemble_needs_one_hash_per_node() {
        let plan = inclusion_plan(0, 7).unwrap();
        assert_eq!(
            plan.assemble(&[Sha256Hash::ZERO; 3]),
            Err(HashCountMismatch {
                expected: 4,
                got: 3
            })
        );
        let path = plan.assemble(&[Sha256Hash::ZERO; 4]).unwrap();
        assert_eq!(path.len(), 3);
        assert_eq!(
            path[2],
            hash_children(&Sha256Hash::ZERO, &Sha256Hash::ZERO),
            "the partial node over leaves 4..7 folds (1, 2) and (0, 6)"
        );
    }
}
