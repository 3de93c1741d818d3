//! Collector throughput on one core: 500-byte syslog lines parsed, signed as the
//! collector's next messages and synced to the spool in the agent's batches, as the
//! signer thread does. Prints events per second; no timed assertions.
//! `cargo bench --profile release -p custos-node --bench collect`
#![allow(clippy::print_stdout)]

use std::time::Instant;

use custos_ledger::crypto::SecretKey;
use custos_ledger::hash::Sha256Hash;
use custos_ledger::message::{SourceFormat, UnixMillis};
use custos_node::collect::INGEST_BATCH;
use custos_node::collect::parse::{ParseContext, parse_with};
use custos_node::collect::signer::Signer;
use custos_node::collect::spool::{FilePosition, SourceMark, Spool};

const EVENTS: usize = 100_000;

fn line(n: usize) -> Vec<u8> {
    let mut line = format!(
        "<38>1 2024-05-01T10:00:00.123Z bastion-01.example.net sshd 4242 AUTHFAIL - Failed password for invalid user admin from 203.0.113.77 port 52814 ssh2 event {n:08} "
    )
    .into_bytes();
    line.resize(500, b'.');
    line
}

/// Signs and spools every line; `parse` chooses whether each is also parsed as syslog.
fn run(lines: &[Vec<u8>], parse: bool) -> f64 {
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut spool = Spool::open(dir.path()).expect("spool");
    let mut signer = Signer::new(
        SecretKey::generate(),
        "bench",
        "client",
        (0, Sha256Hash::ZERO),
    )
    .expect("ids");
    let context = ParseContext {
        reference_time: Some(UnixMillis(1_714_557_600_000)),
    };
    let raw_format = if parse {
        SourceFormat::Syslog5424
    } else {
        SourceFormat::Raw
    };
    let start = Instant::now();
    let mut offset = 0u64;
    for chunk in lines.chunks(INGEST_BATCH) {
        let records: Vec<_> = chunk
            .iter()
            .map(|raw| {
                offset += raw.len() as u64 + 1;
                let parsed = parse_with(raw_format, raw, &context);
                let mark = SourceMark {
                    key: "bench|1:2".into(),
                    position: FilePosition {
                        device: 1,
                        inode: 2,
                        offset,
                    },
                };
                signer.evidence(&parsed, raw.clone(), UnixMillis(1), Some(mark))
            })
            .collect();
        spool.append_synced(&records).expect("spool append");
    }
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(spool.pending_len(), lines.len());
    lines.len() as f64 / seconds
}

fn main() {
    let lines: Vec<Vec<u8>> = (0..EVENTS).map(line).collect();
    // Warm up the allocator and the page cache once.
    run(&lines[..10_000], true);
    let raw = run(&lines, false);
    let parsed = run(&lines, true);
    println!(
        "collector, one core, {EVENTS} events of 500 bytes, batches of {INGEST_BATCH}, synced spool:"
    );
    println!("  signed and spooled (raw):              {raw:>10.0} events/s");
    println!("  parsed (syslog), signed and spooled:   {parsed:>10.0} events/s");
    println!("  target: >= 20000 events/s");
}
