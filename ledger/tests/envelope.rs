//! Envelope encoding, bounds and signatures: what a node relies on when it decodes
//! messages from untrusted collectors.

use custos_ledger::codec::{DecodeError, List, Text, encode};
use custos_ledger::crypto::{SecretKey, Signed};
use custos_ledger::hash::Sha256Hash;
use custos_ledger::limits::{
    HostLen, Limit, MAX_ENVELOPE_BYTES, NetworkIdLen, ReferenceCount, RuleIdLen,
};
use custos_ledger::message::{
    Envelope, EvidenceKind, Kind, Message, PayloadDescriptor, PayloadMismatch, Severity,
    SeverityLevel, SeverityScale, SourceFormat, UnixMillis,
};

fn message(key: &SecretKey, payload: &[u8]) -> Message {
    Message {
        network: Text::new("custos-test").unwrap(),
        author: key.public().key_id(),
        client: Text::new("acme-bank").unwrap(),
        sequence: 1,
        prev: Sha256Hash::ZERO,
        kind: Kind::Evidence {
            evidence: EvidenceKind::Alert,
        },
        format: SourceFormat::SuricataEve,
        occurred_at: Some(UnixMillis(1_700_000_000_000)),
        observed_at: UnixMillis(1_700_000_000_123),
        severity: Some(Severity {
            level: SeverityLevel::High,
            original: Text::new("1").unwrap(),
            scale: SeverityScale::Suricata,
        }),
        rule_id: Some(Text::new("2019401").unwrap()),
        host: Some(Text::new("web-01").unwrap()),
        attack_ids: List::new(vec![Text::new("T1190").unwrap()]).unwrap(),
        references: List::empty(),
        parse_error: None,
        payload: PayloadDescriptor::of(Text::new("application/json").unwrap(), payload),
    }
}

/// Encodes `message` with a valid signature, bypassing the constructors' checks by
/// splicing raw bytes where a test needs an out-of-bounds field.
fn signed(key: &SecretKey, message: Message) -> Envelope {
    Signed::sign(message, key)
}

#[test]
fn envelope_round_trips_and_verifies() {
    let key = SecretKey::generate();
    let envelope = signed(&key, message(&key, b"{\"alert\":1}"));
    let bytes = envelope.leaf_bytes();
    let decoded = Envelope::decode(&bytes).unwrap();
    assert_eq!(decoded, envelope);
    decoded.verify(&key.public()).unwrap();
    assert_eq!(decoded.leaf_hash(), envelope.leaf_hash());
    // The canonical encoding is stable: encoding the decoded value gives the same bytes.
    assert_eq!(encode(&decoded), bytes);
}

#[test]
fn every_field_change_breaks_the_signature() {
    let key = SecretKey::generate();
    let envelope = signed(&key, message(&key, b"x"));
    type Mutation = Box<dyn Fn(&mut Message)>;
    let mutations: Vec<Mutation> = vec![
        Box::new(|m| m.sequence += 1),
        Box::new(|m| m.prev = Sha256Hash::digest(b"other")),
        Box::new(|m| m.client = Text::new("other-bank").unwrap()),
        Box::new(|m| m.network = Text::new("other-net").unwrap()),
        Box::new(|m| m.observed_at = UnixMillis(1)),
        Box::new(|m| m.occurred_at = None),
        Box::new(|m| m.payload.sha256 = Sha256Hash::digest(b"y")),
        Box::new(|m| m.payload.size_bytes += 1),
        Box::new(|m| m.host = None),
        Box::new(|m| m.severity.as_mut().unwrap().level = SeverityLevel::Low),
        Box::new(|m| m.format = SourceFormat::Raw),
        Box::new(|m| m.kind = Kind::Heartbeat { interval_ms: 1 }),
    ];
    for (i, mutate) in mutations.iter().enumerate() {
        let mut tampered = envelope.clone();
        mutate(&mut tampered.body);
        assert!(
            tampered.verify(&key.public()).is_err(),
            "mutation {i} still verifies"
        );
    }
}

#[test]
fn flipping_any_byte_of_the_encoding_is_detected() {
    let key = SecretKey::generate();
    let envelope = signed(&key, message(&key, b"x"));
    let bytes = envelope.leaf_bytes();
    for position in 0..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[position] ^= 0x01;
        // Either it no longer decodes, or it decodes to something whose signature fails.
        if let Ok(decoded) = Envelope::decode(&tampered) {
            assert!(
                decoded.verify(&key.public()).is_err(),
                "flipping byte {position} went unnoticed"
            );
        }
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let key = SecretKey::generate();
    let mut bytes = signed(&key, message(&key, b"x")).leaf_bytes();
    bytes.extend([0, 0, 0]);
    assert_eq!(
        Envelope::decode(&bytes),
        Err(DecodeError::TrailingBytes { count: 3 })
    );
}

#[test]
fn oversized_input_is_rejected_before_decoding() {
    let bytes = vec![0u8; MAX_ENVELOPE_BYTES + 1];
    assert!(matches!(
        Envelope::decode(&bytes),
        Err(DecodeError::InputTooLarge { len, max: MAX_ENVELOPE_BYTES, .. }) if len == MAX_ENVELOPE_BYTES + 1
    ));
}

/// Replaces the first occurrence of `needle` (a borsh-encoded field) in `haystack`.
fn splice(haystack: &[u8], needle: &[u8], replacement: &[u8]) -> Vec<u8> {
    let at = haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("field present in encoding");
    let mut out = haystack[..at].to_vec();
    out.extend_from_slice(replacement);
    out.extend_from_slice(&haystack[at + needle.len()..]);
    out
}

#[test]
fn oversized_fields_are_rejected_with_the_field_named() {
    let key = SecretKey::generate();
    let bytes = signed(&key, message(&key, b"x")).leaf_bytes();

    let host = encode(&Text::<HostLen>::new("web-01").unwrap());
    let long_host = encode(&"h".repeat(HostLen::MAX + 1));
    assert_eq!(
        Envelope::decode(&splice(&bytes, &host, &long_host)),
        Err(DecodeError::FieldTooLong {
            what: "host",
            len: HostLen::MAX + 1,
            max: HostLen::MAX
        })
    );

    let network = encode(&Text::<NetworkIdLen>::new("custos-test").unwrap());
    let long_network = encode(&"n".repeat(NetworkIdLen::MAX + 1));
    assert!(matches!(
        Envelope::decode(&splice(&bytes, &network, &long_network)),
        Err(DecodeError::FieldTooLong {
            what: "network id",
            ..
        })
    ));

    let rule = encode(&Text::<RuleIdLen>::new("2019401").unwrap());
    let long_rule = encode(&"r".repeat(RuleIdLen::MAX + 1));
    assert!(matches!(
        Envelope::decode(&splice(&bytes, &rule, &long_rule)),
        Err(DecodeError::FieldTooLong {
            what: "rule id",
            ..
        })
    ));

    // A reference list claiming more entries than allowed: the count alone is refused.
    let mut m = message(&key, b"x");
    m.references = List::new(vec![Sha256Hash::digest(b"r")]).unwrap();
    let bytes = signed(&key, m).leaf_bytes();
    let one_ref = [encode(&1u32), Sha256Hash::digest(b"r").0.to_vec()].concat();
    let too_many = encode(&(u32::try_from(ReferenceCount::MAX).unwrap() + 1));
    assert!(matches!(
        Envelope::decode(&splice(&bytes, &one_ref, &too_many)),
        Err(DecodeError::FieldTooLong {
            what: "reference list",
            ..
        })
    ));
}

#[test]
fn wrong_domain_tag_is_rejected() {
    let key = SecretKey::generate();
    let bytes = signed(&key, message(&key, b"x")).leaf_bytes();
    let tag = encode(&"custos/v1/message".to_string());
    let other = encode(&"custos/v1/vote".to_string());
    assert_eq!(
        Envelope::decode(&splice(&bytes, &tag, &other)),
        Err(DecodeError::WrongDomainTag {
            expected: "custos/v1/message",
            found: "custos/v1/vote".into()
        })
    );
}

#[test]
fn invalid_enum_values_are_rejected() {
    let key = SecretKey::generate();
    let bytes = signed(&key, message(&key, b"x")).leaf_bytes();
    // The severity level byte (High = 3) followed by the original "1" on the Suricata scale.
    let severity = [vec![3u8], encode(&"1".to_string()), vec![1u8]].concat();
    let bad = [vec![9u8], encode(&"1".to_string()), vec![1u8]].concat();
    assert!(matches!(
        Envelope::decode(&splice(&bytes, &severity, &bad)),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn payload_descriptor_checks_size_and_digest() {
    let descriptor = PayloadDescriptor::of(Text::new("text/plain").unwrap(), b"hello");
    descriptor.check(b"hello").unwrap();
    assert!(matches!(
        descriptor.check(b"hell"),
        Err(PayloadMismatch::Size {
            declared: 5,
            actual: 4
        })
    ));
    assert!(matches!(
        descriptor.check(b"jello"),
        Err(PayloadMismatch::Digest { .. })
    ));
}
