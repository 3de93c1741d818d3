//! Appending leaves: the new perfect subtrees of a batch, computed from the right border.

use super::node::NodeId;
use super::plan::root_plan;
use super::store::NodeStore;
use super::{Root, TreeError, empty_root, hash_children};
use crate::hash::Sha256Hash;

/// What an append produced: the nodes the storage layer writes in one batch, and the root
/// they lead to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Every perfect subtree completed by the batch, leaves included, each level in
    /// increasing index order.
    pub nodes: Vec<(NodeId, Sha256Hash)>,
    /// Root of the tree with the batch appended.
    pub root: Root,
}

/// Appends `leaf_hashes` (RFC 9162 leaf hashes, see [`super::hash_leaf`]) to the tree of
/// `tree_size` leaves held by `store`, without writing anything.
///
/// Reads the old tree's right border (its perfect subtrees, one per 1 bit of `tree_size`)
/// in one [`NodeStore::get_nodes`] call, then hashes each new node once: about one
/// interior node per leaf. `tree_size` is the size the caller appends to; the store need
/// only hold that tree's border, so a caller may append several batches before writing.
pub fn append<S: NodeStore + ?Sized>(
    store: &S,
    tree_size: u64,
    leaf_hashes: &[Sha256Hash],
) -> Result<Appended, TreeError<S::Error>> {
    let batch_len = leaf_hashes.len();
    let new_size = u64::try_from(batch_len)
        .ok()
        .and_then(|len| tree_size.checked_add(len))
        .ok_or(TreeError::TreeFull {
            tree_size,
            batch_len,
        })?;

    let border = root_plan(tree_size);
    let border_hashes = if border.node_ids().is_empty() {
        Vec::new()
    } else {
        store
            .get_nodes(border.node_ids())
            .map_err(TreeError::Store)?
    };
    if border_hashes.len() != border.node_ids().len() {
        return Err(TreeError::StoreContract(super::HashCountMismatch {
            expected: border.node_ids().len(),
            got: border_hashes.len(),
        }));
    }

    // The stack holds the perfect subtrees of the tree so far, largest first: one per 1 bit
    // of its size, like a binary counter, each as (level, hash).
    let mut stack: Vec<(u32, Sha256Hash)> = Vec::with_capacity(64);
    stack.extend(
        border
            .node_ids()
            .iter()
            .map(|id| u32::from(id.level()))
            .zip(border_hashes),
    );
    // Each leaf completes one node per trailing 1 bit of its index: about 2 nodes per leaf.
    let mut nodes = Vec::with_capacity(batch_len.saturating_mul(2).saturating_add(64));
    for (index, leaf) in (tree_size..new_size).zip(leaf_hashes) {
        nodes.push((NodeId::in_tree(0, index), *leaf));
        let mut right = (0, *leaf);
        // Adding 1 to the size carries through its trailing 1 bits; each carry merges two
        // equal subtrees. The merged node ends at leaf `index`, so its index at level
        // `l` is `(index + 1) / 2^l - 1`.
        while let Some(&(level, left)) = stack.last() {
            if level != right.0 {
                break;
            }
            stack.pop();
            let parent_level = level + 1;
            let parent = hash_children(&left, &right.1);
            nodes.push((
                NodeId::in_tree(parent_level, ((index + 1) >> parent_level) - 1),
                parent,
            ));
            right = (parent_level, parent);
        }
        stack.push(right);
    }

    let hash = match stack.split_last() {
        Some((&(_, last), rest)) => rest
            .iter()
            .rev()
            .fold(last, |right, (_, left)| hash_children(left, &right)),
        None => empty_root(),
    };
    Ok(Appended {
        nodes,
        root: Root {
            tree_size: new_size,
            hash,
        },
    })
}
