//! Merkle log costs without storage: appending a block's worth of leaves to a large tree,
//! and generating and verifying inclusion proofs in it.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::merkle::{self, MemoryNodeStore, hash_leaf};

const TREE_LEAVES: u64 = 1_000_000;
const BATCH_LEAVES: u64 = 10_000;

fn leaf(i: u64) -> Sha256Hash {
    hash_leaf(&i.to_le_bytes())
}

fn big_tree() -> MemoryNodeStore {
    let mut store = MemoryNodeStore::new();
    let leaves: Vec<_> = (0..TREE_LEAVES).map(leaf).collect();
    for chunk in leaves.chunks(100_000) {
        store.append(chunk).expect("in-memory append");
    }
    store
}

fn benches(c: &mut Criterion) {
    let store = big_tree();
    let root = merkle::root(&store, TREE_LEAVES).expect("root");

    let batch: Vec<_> = (TREE_LEAVES..TREE_LEAVES + BATCH_LEAVES)
        .map(leaf)
        .collect();
    let mut group = c.benchmark_group("merkle_append");
    group.throughput(Throughput::Elements(BATCH_LEAVES));
    group.bench_function("10k_leaves_onto_1M", |b| {
        b.iter(|| merkle::append(&store, TREE_LEAVES, black_box(&batch)).expect("append"))
    });
    group.finish();

    // Spread the proved leaves over the tree so the reads are not all in one cache line.
    let mut index = 0u64;
    let mut next_index = move || {
        index = (index + 617_077) % TREE_LEAVES;
        index
    };
    c.bench_function("merkle_inclusion_proof_1M", |b| {
        b.iter(|| merkle::inclusion_proof(&store, next_index(), TREE_LEAVES).expect("proof"))
    });

    let proved = 123_457;
    let proof = merkle::inclusion_proof(&store, proved, TREE_LEAVES).expect("proof");
    let leaf_hash = leaf(proved);
    c.bench_function("merkle_inclusion_verify_1M", |b| {
        b.iter(|| {
            proof
                .verify(black_box(&leaf_hash), &root)
                .expect("verifies")
        })
    });
}

criterion_group!(merkle_benches, benches);
criterion_main!(merkle_benches);
