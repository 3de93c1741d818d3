//! Property tests of the Merkle log against a naive recursive RFC 9162 implementation
//! written here from the RFC's definitions (§2.1.1 MTH, §2.1.3.1 PATH, §2.1.4.1 SUBPROOF),
//! hashing with `sha2` directly so that it shares no code with the crate.
//!
//! Trees of up to 10,000 leaves are built through the append path in random batches; every
//! generated proof must equal the naive one and verify against the naive roots, and every
//! mutation of a proof, index, size or root must be rejected.

#![allow(
    clippy::cast_possible_truncation,
    reason = "test trees have at most 10,000 leaves, so sizes fit any usize"
)]
use custos_ledger::hash::Sha256Hash;
use custos_ledger::merkle::{
    self, ConsistencyProof, InclusionProof, MAX_CONSISTENCY_PATH_LEN, MAX_INCLUSION_PATH_LEN,
    MemoryNodeStore, ProofError, RequestError, Root, TreeError, consistency_plan, inclusion_plan,
    verify_consistency, verify_inclusion,
};
use proptest::prelude::*;
use proptest::sample::Index;
use sha2::{Digest as _, Sha256};

const MAX_LEAVES: usize = 10_000;

fn sha256(parts: &[&[u8]]) -> Sha256Hash {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    Sha256Hash(hasher.finalize().into())
}

fn naive_leaf(seed: u64, i: u64) -> Sha256Hash {
    let data = [seed.to_le_bytes(), i.to_le_bytes()].concat();
    sha256(&[&[0x00], &data])
}

fn naive_node(left: &Sha256Hash, right: &Sha256Hash) -> Sha256Hash {
    sha256(&[&[0x01], &left.0, &right.0])
}

/// Largest power of two smaller than `n` (n >= 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 9162 §2.1.1 MTH.
fn mth(leaves: &[Sha256Hash]) -> Sha256Hash {
    match leaves {
        [] => sha256(&[]),
        [leaf] => *leaf,
        _ => {
            let k = split(leaves.len());
            naive_node(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// RFC 9162 §2.1.3.1 PATH(m, D[n]).
fn naive_path(m: usize, leaves: &[Sha256Hash]) -> Vec<Sha256Hash> {
    if leaves.len() == 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    let (mut path, other) = if m < k {
        (naive_path(m, &leaves[..k]), mth(&leaves[k..]))
    } else {
        (naive_path(m - k, &leaves[k..]), mth(&leaves[..k]))
    };
    path.push(other);
    path
}

/// RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b).
fn naive_subproof(m: usize, leaves: &[Sha256Hash], whole: bool) -> Vec<Sha256Hash> {
    if m == leaves.len() {
        return if whole { Vec::new() } else { vec![mth(leaves)] };
    }
    let k = split(leaves.len());
    let (mut proof, other) = if m <= k {
        (naive_subproof(m, &leaves[..k], whole), mth(&leaves[k..]))
    } else {
        (
            naive_subproof(m - k, &leaves[k..], false),
            mth(&leaves[..k]),
        )
    };
    proof.push(other);
    proof
}

fn naive_root(leaves: &[Sha256Hash], size: u64) -> Root {
    Root {
        tree_size: size,
        hash: mth(&leaves[..size as usize]),
    }
}

fn flip_bit(hash: &Sha256Hash, bit: usize) -> Sha256Hash {
    let mut flipped = *hash;
    flipped.0[(bit / 8) % 32] ^= 1 << (bit % 8);
    flipped
}

/// Every single-edit mutation of a proof path: each hash with a flipped bit, each hash
/// dropped, a hash added at each position, each adjacent pair swapped.
fn mutated_paths(path: &[Sha256Hash], bit: usize) -> Vec<Vec<Sha256Hash>> {
    let mut out = Vec::new();
    let extra = sha256(&[b"not a node"]);
    for i in 0..path.len() {
        let mut flipped = path.to_vec();
        flipped[i] = flip_bit(&path[i], bit + i);
        out.push(flipped);
        let mut dropped = path.to_vec();
        dropped.remove(i);
        out.push(dropped);
        if i + 1 < path.len() && path[i] != path[i + 1] {
            let mut swapped = path.to_vec();
            swapped.swap(i, i + 1);
            out.push(swapped);
        }
    }
    for i in 0..=path.len() {
        let mut added = path.to_vec();
        added.insert(i, extra);
        out.push(added);
        if let Some(&copy) = path.get(i) {
            let mut repeated = path.to_vec();
            repeated.insert(i, copy);
            out.push(repeated);
        }
    }
    out
}

/// A tree to test: its leaves and the batch sizes it was appended in.
#[derive(Debug, Clone)]
struct TreeSpec {
    seed: u64,
    leaf_count: usize,
    cuts: Vec<usize>,
}

fn tree_spec() -> impl Strategy<Value = TreeSpec> {
    // Half small trees, where every shape edge case is near, half up to the limit.
    let leaf_count = prop_oneof![1..=40usize, 1..=MAX_LEAVES];
    (
        any::<u64>(),
        leaf_count,
        prop::collection::vec(any::<Index>(), 0..12),
    )
        .prop_map(|(seed, leaf_count, cuts)| {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(leaf_count + 1)).collect();
            cuts.sort_unstable();
            TreeSpec {
                seed,
                leaf_count,
                cuts,
            }
        })
}

/// Builds the tree through the append path in the spec's batches (empty batches included),
/// checking each batch's root against the naive one.
fn build(spec: &TreeSpec) -> (MemoryNodeStore, Vec<Sha256Hash>) {
    let leaves: Vec<_> = (0..spec.leaf_count as u64)
        .map(|i| naive_leaf(spec.seed, i))
        .collect();
    let mut store = MemoryNodeStore::new();
    let mut start = 0;
    for &end in spec.cuts.iter().chain([&spec.leaf_count]) {
        let root = store.append(&leaves[start..end]).unwrap();
        assert_eq!(
            root,
            naive_root(&leaves, end as u64),
            "append root at {end}"
        );
        start = end;
    }
    (store, leaves)
}

fn check_inclusion(
    store: &MemoryNodeStore,
    leaves: &[Sha256Hash],
    index: u64,
    size: u64,
    bit: usize,
) {
    let proof = merkle::inclusion_proof(store, index, size).unwrap();
    assert_eq!(
        proof.path,
        naive_path(index as usize, &leaves[..size as usize])
    );
    let leaf = leaves[index as usize];
    let root = naive_root(leaves, size);
    proof.verify(&leaf, &root).unwrap();
    verify_inclusion(&leaf.0, index, size, &proof.path, &root.hash.0).unwrap();

    let verify_path =
        |path: &[Sha256Hash]| verify_inclusion(&leaf.0, index, size, path, &root.hash.0);
    for path in mutated_paths(&proof.path, bit) {
        assert!(
            verify_path(&path).is_err(),
            "mutated path {path:?} verified"
        );
    }

    // Another leaf, index or root.
    let other_leaf = flip_bit(&leaf, bit);
    assert!(proof.verify(&other_leaf, &root).is_err());
    for wrong in [
        index.wrapping_sub(1),
        index + 1,
        index ^ (1 << (bit % 14)),
        u64::MAX,
    ] {
        if wrong != index {
            let moved = InclusionProof {
                leaf_index: wrong,
                ..proof.clone()
            };
            assert!(
                moved.verify(&leaf, &root).is_err(),
                "index {wrong} verified"
            );
        }
    }
    let wrong_root = Root {
        hash: flip_bit(&root.hash, bit),
        ..root
    };
    assert!(proof.verify(&leaf, &wrong_root).is_err());

    // Another size: refused against the proof's own root for the size mismatch, and
    // against the other size's true root because the path does not lead there.
    for wrong in [
        size - 1,
        size + 1,
        size * 2,
        size / 2,
        size ^ (1 << (bit % 14)),
    ] {
        if wrong == size || wrong <= index {
            continue;
        }
        let resized = InclusionProof {
            tree_size: wrong,
            ..proof.clone()
        };
        assert!(matches!(
            resized.verify(&leaf, &root),
            Err(ProofError::SizeMismatch { .. })
        ));
        if wrong <= leaves.len() as u64 {
            let other_root = naive_root(leaves, wrong);
            assert!(
                resized.verify(&leaf, &other_root).is_err(),
                "proof for size {size} verified at size {wrong}"
            );
        }
    }

    // The proof survives both encodings unchanged.
    let bytes = borsh::to_vec(&proof).unwrap();
    assert_eq!(borsh::from_slice::<InclusionProof>(&bytes).unwrap(), proof);
    let json = serde_json::to_string(&proof).unwrap();
    assert_eq!(
        serde_json::from_str::<InclusionProof>(&json).unwrap(),
        proof
    );
}

fn check_consistency(
    store: &MemoryNodeStore,
    leaves: &[Sha256Hash],
    old_size: u64,
    new_size: u64,
    bit: usize,
) {
    let proof = merkle::consistency_proof(store, old_size, new_size).unwrap();
    assert_eq!(
        proof.path,
        naive_subproof(old_size as usize, &leaves[..new_size as usize], true)
    );
    let old = naive_root(leaves, old_size);
    let new = naive_root(leaves, new_size);
    proof.verify(&old, &new).unwrap();

    let verify_path = |path: &[Sha256Hash]| {
        verify_consistency(old_size, new_size, &old.hash.0, &new.hash.0, path)
    };
    for path in mutated_paths(&proof.path, bit) {
        assert!(
            verify_path(&path).is_err(),
            "mutated path {path:?} verified"
        );
    }

    for (wrong_old, wrong_new) in [
        (flip_bit(&old.hash, bit), new.hash),
        (old.hash, flip_bit(&new.hash, bit)),
        (new.hash, old.hash),
    ] {
        if (wrong_old, wrong_new) == (old.hash, new.hash) {
            continue; // swapping equal roots changes nothing
        }
        let wrong_old = Root {
            hash: wrong_old,
            ..old
        };
        let wrong_new = Root {
            hash: wrong_new,
            ..new
        };
        assert!(proof.verify(&wrong_old, &wrong_new).is_err());
    }

    let leaf_count = leaves.len() as u64;
    let nudges = |size: u64| {
        [
            size - 1,
            size + 1,
            size * 2,
            size / 2,
            size ^ (1 << (bit % 14)),
        ]
    };
    for wrong in nudges(old_size) {
        if wrong == old_size || wrong == 0 || wrong > new_size {
            continue;
        }
        let resized = ConsistencyProof {
            old_size: wrong,
            ..proof.clone()
        };
        assert!(matches!(
            resized.verify(&old, &new),
            Err(ProofError::SizeMismatch { .. })
        ));
        let other_old = naive_root(leaves, wrong);
        assert!(
            resized.verify(&other_old, &new).is_err(),
            "proof from {old_size} verified from {wrong}"
        );
    }
    for wrong in nudges(new_size) {
        if wrong == new_size || wrong < old_size || wrong > leaf_count {
            continue;
        }
        let resized = ConsistencyProof {
            new_size: wrong,
            ..proof.clone()
        };
        let other_new = naive_root(leaves, wrong);
        assert!(
            resized.verify(&old, &other_new).is_err(),
            "proof to {new_size} verified to {wrong}"
        );
    }

    let bytes = borsh::to_vec(&proof).unwrap();
    assert_eq!(
        borsh::from_slice::<ConsistencyProof>(&bytes).unwrap(),
        proof
    );
    let json = serde_json::to_string(&proof).unwrap();
    assert_eq!(
        serde_json::from_str::<ConsistencyProof>(&json).unwrap(),
        proof
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn proofs_match_the_rfc_and_mutations_fail(
        spec in tree_spec(),
        queries in prop::collection::vec((any::<Index>(), any::<Index>(), any::<usize>()), 6),
    ) {
        let (store, leaves) = build(&spec);
        let n = leaves.len();
        for (a, b, bit) in queries {
            // Inclusion of a leaf in any past tree size.
            let size = b.index(n) + 1;
            let index = a.index(size);
            check_inclusion(&store, &leaves, index as u64, size as u64, bit);
            // Consistency between any two past sizes, equal ones included.
            let new_size = b.index(n) + 1;
            let old_size = a.index(new_size) + 1;
            check_consistency(&store, &leaves, old_size as u64, new_size as u64, bit);
            let past = a.index(n + 1) as u64;
            prop_assert_eq!(merkle::root(&store, past).unwrap(), naive_root(&leaves, past));
        }
        // The last leaf, the whole tree and the oldest consistency are always checked.
        let size = n as u64;
        check_inclusion(&store, &leaves, size - 1, size, 0);
        check_consistency(&store, &leaves, 1, size, 0);

        // Requests outside the tree are precise errors.
        assert!(matches!(
            merkle::root(&store, size + 1),
            Err(TreeError::SizeBeyondTree { size: s, tree_size: t }) if s == size + 1 && t == size
        ));
        assert!(matches!(
            merkle::inclusion_proof(&store, size, size),
            Err(TreeError::Request(RequestError::IndexOutOfRange { .. }))
        ));
        assert!(matches!(
            merkle::inclusion_proof(&store, 0, size + 1),
            Err(TreeError::SizeBeyondTree { .. })
        ));
        assert!(matches!(
            merkle::consistency_proof(&store, 1, size + 1),
            Err(TreeError::SizeBeyondTree { .. })
        ));
        assert!(matches!(
            merkle::consistency_proof(&store, size, size - 1),
            Err(TreeError::Request(RequestError::SizesReversed { .. }))
        ));
        assert!(matches!(
            merkle::consistency_proof(&store, 0, size),
            Err(TreeError::Request(RequestError::EmptyOldTree))
        ));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    /// Over the whole u64 range, where no tree can be built: the plans have exactly the
    /// lengths the verifier expects (a wrong length would be reported as such), never more
    /// than the decode limits, and name only nodes inside the tree.
    #[test]
    fn plans_fit_the_verifier_at_any_size(
        size in 1..=u64::MAX,
        a in any::<u64>(),
        b in any::<u64>(),
    ) {
        let index = a % size;
        let plan = inclusion_plan(index, size).unwrap();
        prop_assert!(plan.len() <= MAX_INCLUSION_PATH_LEN);
        let path = vec![Sha256Hash::ZERO; plan.len()];
        prop_assert!(merkle::root_from_inclusion(&Sha256Hash::ZERO, index, size, &path).is_ok());
        for id in plan.node_ids() {
            prop_assert!(id.leaf_range().end <= size);
        }

        let old = b % size + 1;
        let plan = consistency_plan(old, size).unwrap();
        prop_assert!(plan.len() <= MAX_CONSISTENCY_PATH_LEN);
        let path = vec![Sha256Hash::ZERO; plan.len()];
        let result = verify_consistency(old, size, &[1; 32], &[2; 32], &path);
        assert!(
            matches!(result, Err(ProofError::RootMismatch { .. })),
            "plan length {} for {} -> {}: {:?}", plan.len(), old, size, result
        );
        for id in plan.node_ids() {
            prop_assert!(id.leaf_range().end <= size);
        }
    }
}
