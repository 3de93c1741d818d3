//! Known-answer tests from transparency-dev/merkle (`shared/testdata/rfc9162`), an RFC 9162
//! implementation nobody on this project wrote: every happy path must verify, every
//! mutation must be rejected, and our own tree must produce the same roots and proofs.

#![allow(
    clippy::cast_possible_truncation,
    reason = "test vector sizes are at most 16, far below usize::MAX"
)]

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use custos_ledger::hash::Sha256Hash;
use custos_ledger::merkle::{
    self, ConsistencyProof, InclusionProof, MemoryNodeStore, Root, hash_leaf, verify_consistency,
    verify_inclusion,
};
use serde::Deserialize;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/testdata/rfc9162");

// Vector counts in the copy this test was written against; fewer means files went missing.
const INCLUSION_HAPPY_MIN: usize = 6;
const INCLUSION_MUTATIONS_MIN: usize = 92;
const CONSISTENCY_HAPPY_MIN: usize = 6;
const CONSISTENCY_MUTATIONS_MIN: usize = 92;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionCase {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsistencyCase {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
struct ReferenceRoots {
    leaf_inputs_hex: Vec<String>,
    root_hashes_hex_by_size: Vec<String>,
}

/// Every `*.json` below `dir`, sorted so failures name the same file on every run.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn decode(field: &str) -> Option<Vec<u8>> {
    BASE64.decode(field).ok()
}

/// The proof as typed hashes, or `None` when an element is not 32 bytes of base64: such a
/// proof cannot even be expressed to the verifier, which counts as a rejection.
fn decode_proof(proof: &Option<Vec<String>>) -> Option<Vec<Sha256Hash>> {
    proof
        .iter()
        .flatten()
        .map(|item| Sha256Hash::from_slice(&decode(item)?).ok())
        .collect()
}

fn reference() -> (Vec<Sha256Hash>, Vec<String>) {
    let text = fs::read_to_string(format!("{TESTDATA}/reference-roots.json")).unwrap();
    let reference: ReferenceRoots = serde_json::from_str(&text).unwrap();
    let leaves = reference
        .leaf_inputs_hex
        .iter()
        .map(|input| hash_leaf(&hex::decode(input).unwrap()))
        .collect();
    (leaves, reference.root_hashes_hex_by_size)
}

/// The tree of the reference leaves, appended one leaf per batch, with the root that
/// each append returned (index = size).
fn reference_tree() -> (MemoryNodeStore, Vec<Root>) {
    let (leaves, want) = reference();
    let mut store = MemoryNodeStore::new();
    let mut roots = vec![merkle::root(&store, 0).unwrap()];
    for leaf in &leaves {
        roots.push(store.append(std::slice::from_ref(leaf)).unwrap());
    }
    assert_eq!(roots.len(), want.len());
    for (size, want) in want.iter().enumerate() {
        assert_eq!(
            roots[size].hash.to_hex(),
            *want,
            "append root of {size} leaves"
        );
    }
    (store, roots)
}

#[derive(Default)]
struct Tally {
    happy: usize,
    rejected_by_verifier: usize,
    rejected_as_malformed: usize,
    matched_our_proofs: usize,
}

#[test]
fn reference_roots_come_out_of_the_append_path() {
    let (leaves, want) = reference();
    let mut checked = 0;
    // One leaf per batch, all in one batch, and uneven batches must all store the nodes
    // that root(n) needs for every past n.
    for batches in [&[1usize; 8][..], &[8], &[3, 5], &[0, 2, 0, 1, 5]] {
        let mut store = MemoryNodeStore::new();
        let mut appended = 0;
        for &batch in batches {
            let root = store.append(&leaves[appended..appended + batch]).unwrap();
            appended += batch;
            assert_eq!(root.tree_size, appended as u64);
            assert_eq!(
                root.hash.to_hex(),
                want[appended],
                "append root, batches {batches:?}"
            );
        }
        for (size, want) in want.iter().enumerate() {
            let root = merkle::root(&store, size as u64).unwrap();
            assert_eq!(root.tree_size, size as u64);
            assert_eq!(
                root.hash.to_hex(),
                *want,
                "root({size}), batches {batches:?}"
            );
            checked += 1;
        }
    }
    reference_tree();
    println!("rfc9162 reference roots: {checked} roots reproduced (sizes 0..=8, 4 batchings)");
    assert_eq!(checked, 4 * 9);
}

#[test]
fn inclusion_vectors() {
    let (store, roots) = reference_tree();
    let mut tally = Tally::default();
    for path in json_files(&Path::new(TESTDATA).join("testdata/inclusion")) {
        let case: InclusionCase = serde_json::from_str(&fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = format!("{} ({})", path.display(), case.desc);
        let (Some(leaf), Some(root), Some(proof)) = (
            decode(&case.leaf_hash),
            decode(&case.root),
            decode_proof(&case.proof),
        ) else {
            assert!(case.want_err, "{name}: happy path does not decode");
            tally.rejected_as_malformed += 1;
            continue;
        };
        let result = verify_inclusion(&leaf, case.leaf_idx, case.tree_size, &proof, &root);
        // The typed API must agree wherever the values fit its types.
        if let (Ok(leaf), Ok(root)) = (Sha256Hash::from_slice(&leaf), Sha256Hash::from_slice(&root))
        {
            let typed = InclusionProof {
                leaf_index: case.leaf_idx,
                tree_size: case.tree_size,
                path: proof.clone(),
            };
            let root = Root {
                tree_size: case.tree_size,
                hash: root,
            };
            assert_eq!(
                typed.verify(&leaf, &root),
                result,
                "{name}: typed API disagrees"
            );
        }
        if case.want_err {
            assert!(result.is_err(), "{name}: mutation verified");
            tally.rejected_by_verifier += 1;
            continue;
        }
        result.unwrap_or_else(|e| panic!("{name}: happy path rejected: {e}"));
        tally.happy += 1;
        // Where the vector is about our reference tree, we must generate the same proof.
        if roots
            .get(case.tree_size as usize)
            .is_some_and(|ours| ours.hash.as_bytes().as_slice() == root)
        {
            let ours = merkle::inclusion_proof(&store, case.leaf_idx, case.tree_size).unwrap();
            assert_eq!(ours.path, proof, "{name}: our proof differs");
            tally.matched_our_proofs += 1;
        }
    }
    println!(
        "rfc9162 inclusion: {} happy verified ({} equal to our generated proofs), \
         {} mutations rejected ({} by the verifier, {} as malformed hashes)",
        tally.happy,
        tally.matched_our_proofs,
        tally.rejected_by_verifier + tally.rejected_as_malformed,
        tally.rejected_by_verifier,
        tally.rejected_as_malformed
    );
    assert!(
        tally.happy >= INCLUSION_HAPPY_MIN,
        "test vectors went missing"
    );
    assert!(
        tally.rejected_by_verifier + tally.rejected_as_malformed >= INCLUSION_MUTATIONS_MIN,
        "test vectors went missing"
    );
    assert!(
        tally.matched_our_proofs >= 4,
        "our proofs were compared too rarely"
    );
}

#[test]
fn consistency_vectors() {
    let (store, roots) = reference_tree();
    let mut tally = Tally::default();
    for path in json_files(&Path::new(TESTDATA).join("testdata/consistency")) {
        let case: ConsistencyCase = serde_json::from_str(&fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = format!("{} ({})", path.display(), case.desc);
        let (Some(root1), Some(root2), Some(proof)) = (
            decode(&case.root1),
            decode(&case.root2),
            decode_proof(&case.proof),
        ) else {
            assert!(case.want_err, "{name}: happy path does not decode");
            tally.rejected_as_malformed += 1;
            continue;
        };
        let result = verify_consistency(case.size1, case.size2, &root1, &root2, &proof);
        if let (Ok(root1), Ok(root2)) = (
            Sha256Hash::from_slice(&root1),
            Sha256Hash::from_slice(&root2),
        ) {
            let typed = ConsistencyProof {
                old_size: case.size1,
                new_size: case.size2,
                path: proof.clone(),
            };
            let old = Root {
                tree_size: case.size1,
                hash: root1,
            };
            let new = Root {
                tree_size: case.size2,
                hash: root2,
            };
            assert_eq!(
                typed.verify(&old, &new),
                result,
                "{name}: typed API disagrees"
            );
        }
        if case.want_err {
            assert!(result.is_err(), "{name}: mutation verified");
            tally.rejected_by_verifier += 1;
            continue;
        }
        result.unwrap_or_else(|e| panic!("{name}: happy path rejected: {e}"));
        tally.happy += 1;
        let ours_match = |size: u64, root: &[u8]| {
            roots
                .get(size as usize)
                .is_some_and(|ours| ours.hash.as_bytes().as_slice() == root)
        };
        if ours_match(case.size1, &root1) && ours_match(case.size2, &root2) {
            let ours = merkle::consistency_proof(&store, case.size1, case.size2).unwrap();
            assert_eq!(ours.path, proof, "{name}: our proof differs");
            tally.matched_our_proofs += 1;
        }
    }
    println!(
        "rfc9162 consistency: {} happy verified ({} equal to our generated proofs), \
         {} mutations rejected ({} by the verifier, {} as malformed hashes)",
        tally.happy,
        tally.matched_our_proofs,
        tally.rejected_by_verifier + tally.rejected_as_malformed,
        tally.rejected_by_verifier,
        tally.rejected_as_malformed
    );
    assert!(
        tally.happy >= CONSISTENCY_HAPPY_MIN,
        "test vectors went missing"
    );
    assert!(
        tally.rejected_by_verifier + tally.rejected_as_malformed >= CONSISTENCY_MUTATIONS_MIN,
        "test vectors went missing"
    );
    assert!(
        tally.matched_our_proofs >= 4,
        "our proofs were compared too rarely"
    );
}
