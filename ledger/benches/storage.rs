//! RocksDB-backed evidence log: appending with persisted node hashes, and proofs read
//! from the database at 1,000,000 leaves. Besides Criterion's estimates it prints
//! per-operation percentiles for proof reads, measured one call at a time.
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::merkle::{self, hash_leaf, inclusion_proof};
use custos_ledger::storage::{Backend, Column, RocksBackend, StoredNodes, UpperNodes, WriteBatch};

const TREE_LEAVES: u64 = 1_000_000;
const BLOCK_LEAVES: u64 = 10_000;

fn leaf(i: u64) -> Sha256Hash {
    hash_leaf(&i.to_le_bytes())
}

/// Appends `count` leaves after `size` and writes their bytes (where the ledger keeps
/// envelopes, from which levels 0-3 are computed) and their nodes in one synced batch.
fn append_persisted(backend: &RocksBackend, size: u64, count: u64) -> u64 {
    let leaves: Vec<Sha256Hash> = (size..size + count).map(leaf).collect();
    let appended = merkle::append(&StoredNodes::new(backend, size), size, &leaves).unwrap();
    let mut batch = WriteBatch::new();
    for i in size..size + count {
        batch.put(Column::Envelopes, i.to_be_bytes(), i.to_le_bytes());
    }
    StoredNodes::<RocksBackend>::write_appended(&mut batch, &appended);
    backend.write(&batch).unwrap();
    appended.root.tree_size
}

fn filled_db() -> (tempfile::TempDir, RocksBackend) {
    let dir = tempfile::tempdir().unwrap();
    let backend = RocksBackend::open(dir.path()).unwrap();
    let mut size = 0;
    while size < TREE_LEAVES {
        size = append_persisted(&backend, size, 100_000);
    }
    (dir, backend)
}

/// The `per_mille`-th per-mille of sorted nanosecond samples, in microseconds.
fn percentile_us(sorted_ns: &[u128], per_mille: usize) -> f64 {
    sorted_ns[(sorted_ns.len() - 1) * per_mille / 1000] as f64 / 1_000.0
}

fn benches(c: &mut Criterion) {
    let (_dir, backend) = filled_db();

    let mut group = c.benchmark_group("rocksdb log");
    group.sample_size(20);
    group.throughput(Throughput::Elements(BLOCK_LEAVES));
    let mut size = TREE_LEAVES;
    group.bench_function("append 10k leaves + synced node write", |b| {
        b.iter(|| {
            size = append_persisted(&backend, size, BLOCK_LEAVES);
        })
    });
    group.finish();

    // As the ledger reads them: levels 4 and up from memory, levels 0-3 computed from the
    // leaves' bytes in RocksDB.
    let upper = UpperNodes::load(&backend).unwrap();
    let nodes = StoredNodes::with_cache(&backend, TREE_LEAVES, &upper);
    let root = merkle::root(&nodes, TREE_LEAVES).unwrap();
    let mut index = 0u64;
    let mut group = c.benchmark_group("rocksdb proofs at 1M leaves");
    group.throughput(Throughput::Elements(1));
    group.bench_function("inclusion proof", |b| {
        b.iter(|| {
            index = (index + 7_919) % TREE_LEAVES;
            black_box(inclusion_proof(&nodes, index, TREE_LEAVES).unwrap())
        })
    });
    group.bench_function("inclusion proof verification", |b| {
        b.iter_batched(
            || {
                index = (index + 7_919) % TREE_LEAVES;
                (index, inclusion_proof(&nodes, index, TREE_LEAVES).unwrap())
            },
            |(i, proof)| proof.verify(&leaf(i), &root).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // Per-call latency distribution, which Criterion's mean-of-batches does not give.
    let mut samples: Vec<u128> = (0..20_000u64)
        .map(|i| {
            let index = (i * 104_729) % TREE_LEAVES;
            let start = Instant::now();
            black_box(inclusion_proof(&nodes, index, TREE_LEAVES).unwrap());
            start.elapsed().as_nanos()
        })
        .collect();
    samples.sort_unstable();
    println!(
        "inclusion proof from RocksDB at 1M leaves, 20000 calls: p50 {:.1} µs, p99 {:.1} µs",
        percentile_us(&samples, 500),
        percentile_us(&samples, 990)
    );
}

criterion_group!(storage, benches);
criterion_main!(storage);
