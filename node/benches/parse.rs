//! Parser throughput on ~500-byte events, reported by criterion as elements (events) per
//! second: `cargo bench --profile release -p custos-node --bench parse`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use custos_ledger::message::{SourceFormat, UnixMillis};
use custos_node::collect::parse::{ParseContext, parse_with};
use std::hint::black_box;

/// The Suricata alert line from the shared samples closest to 500 bytes, so the figure is
/// for real EVE output rather than a made-up line.
fn suricata_line() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/testdata/logs/suricata-eve/suricatalog-eve_large.excerpt.json"
    );
    let bytes = std::fs::read(path).expect("the Suricata sample is in shared/testdata");
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| l.windows(19).any(|w| w == b"\"event_type\":\"alert"))
        .min_by_key(|l| l.len().abs_diff(500))
        .expect("the sample has alerts")
        .to_vec()
}

/// Syslog lines padded to ~500 bytes with a realistic sshd message.
fn syslog_lines() -> (Vec<u8>, Vec<u8>) {
    let message = "Failed password for invalid user admin from 203.0.113.77 port 52814 ssh2; ";
    let body = message.repeat(6);
    let rfc5424 = format!(
        "<38>1 2024-05-01T10:00:00.123456+02:00 bastion-01.example.net sshd 4242 AUTHFAIL \
         [origin ip=\"192.0.2.10\" software=\"OpenSSH\" swVersion=\"9.6\"] {body}"
    );
    let rfc3164 = format!("<38>May  1 10:00:00 bastion-01.example.net sshd[4242]: {body}{message}");
    (rfc5424.into_bytes(), rfc3164.into_bytes())
}

fn bench(c: &mut Criterion) {
    let context = ParseContext {
        reference_time: Some(UnixMillis(1_714_557_600_000)),
    };
    let (rfc5424, rfc3164) = syslog_lines();
    let cases = [
        ("suricata-eve", SourceFormat::SuricataEve, suricata_line()),
        ("syslog-5424", SourceFormat::Syslog5424, rfc5424),
        ("syslog-3164", SourceFormat::Syslog3164, rfc3164),
    ];
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));
    for (name, format, line) in &cases {
        let parsed = parse_with(*format, line, &context);
        assert_eq!(parsed.parse_error, None, "{name} bench line must parse");
        group.bench_function(format!("{name} ({} bytes)", line.len()), |b| {
            b.iter(|| parse_with(*format, black_box(line), &context));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
