//! Envelope signature verification, one at a time and in batches.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use custos_ledger::codec::{List, Text};
use custos_ledger::crypto::{BatchItem, PublicKey, SecretKey, Signed, verify_batch};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::message::{
    Envelope, EvidenceKind, Kind, Message, PayloadDescriptor, SourceFormat, UnixMillis,
};

fn envelope(key: &SecretKey, sequence: u64) -> Envelope {
    let payload = vec![b'x'; 1024];
    let message = Message {
        network: Text::new("custos-bench").unwrap(),
        author: key.public().key_id(),
        client: Text::new("acme-bank").unwrap(),
        sequence,
        prev: Sha256Hash::digest(&sequence.to_le_bytes()),
        kind: Kind::Evidence {
            evidence: EvidenceKind::LogLine,
        },
        format: SourceFormat::Syslog5424,
        occurred_at: Some(UnixMillis(1_700_000_000_000)),
        observed_at: UnixMillis(1_700_000_000_001),
        severity: None,
        rule_id: None,
        host: Some(Text::new("web-01").unwrap()),
        attack_ids: List::empty(),
        references: List::empty(),
        parse_error: None,
        payload: PayloadDescriptor::of(Text::new("text/plain").unwrap(), &payload),
    };
    Signed::sign(message, key)
}

fn benches(c: &mut Criterion) {
    let keys: Vec<SecretKey> = (0..16u8)
        .map(|i| SecretKey::from_seed(&[i + 1; 32]))
        .collect();
    let publics: Vec<PublicKey> = keys.iter().map(SecretKey::public).collect();
    let envelopes: Vec<Envelope> = (0..1024usize)
        .map(|i| envelope(&keys[i % keys.len()], i as u64 + 1))
        .collect();

    let mut group = c.benchmark_group("envelope verification");
    group.throughput(Throughput::Elements(1));
    group.bench_function("single (decode + verify_strict)", |b| {
        let bytes = envelopes[0].leaf_bytes();
        b.iter(|| {
            let envelope = Envelope::decode(black_box(&bytes)).unwrap();
            envelope.verify(&publics[0]).unwrap();
        })
    });
    for batch in [64usize, 1024] {
        group.throughput(Throughput::Elements(batch as u64));
        let signed: Vec<Vec<u8>> = envelopes[..batch]
            .iter()
            .map(Signed::signed_bytes)
            .collect();
        group.bench_function(format!("batch of {batch}"), |b| {
            b.iter(|| {
                let items: Vec<BatchItem<'_>> = envelopes[..batch]
                    .iter()
                    .zip(&signed)
                    .enumerate()
                    .map(|(i, (e, bytes))| BatchItem {
                        signed_bytes: bytes,
                        signature: &e.signature,
                        key: &publics[i % publics.len()],
                    })
                    .collect();
                assert!(verify_batch(&items).is_empty());
            })
        });
    }
    group.finish();
}

criterion_group!(signatures, benches);
criterion_main!(signatures);
