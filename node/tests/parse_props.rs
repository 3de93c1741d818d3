//! Property tests: whatever bytes arrive, every parser returns a bounded result and never
//! panics, and an event it cannot read is kept as raw with a reason.

use custos_ledger::limits::{
    AttackIdCount, AttackIdLen, HostLen, Limit, MediaTypeLen, ParseErrorLen, RuleIdLen,
    SeverityOriginalLen,
};
use custos_ledger::message::{SourceFormat, UnixMillis};
use custos_node::collect::parse::{
    ParseContext, Parsed, ZeekTsvLine, ZeekTsvReader, detect, is_attack_id, parse_with,
};
use proptest::prelude::*;

const FORMATS: [SourceFormat; 15] = [
    SourceFormat::Syslog5424,
    SourceFormat::Syslog3164,
    SourceFormat::Cef,
    SourceFormat::EcsJson,
    SourceFormat::SuricataEve,
    SourceFormat::ZeekJson,
    SourceFormat::ZeekTsv,
    SourceFormat::Wazuh,
    SourceFormat::EvtxJson,
    SourceFormat::EvtxXml,
    SourceFormat::Evtx,
    SourceFormat::Stix21,
    SourceFormat::Misp,
    SourceFormat::Raw,
    SourceFormat::Custos,
];

/// The contract every result keeps, whatever the input.
fn check_contract(requested: SourceFormat, parsed: &Parsed) {
    if parsed.parse_error.is_some() {
        assert_eq!(parsed.format, SourceFormat::Raw);
    } else if !matches!(requested, SourceFormat::Raw | SourceFormat::Custos) {
        assert_eq!(parsed.format, requested);
    }
    assert!(
        parsed
            .rule_id
            .as_ref()
            .is_none_or(|r| r.len() <= RuleIdLen::MAX)
    );
    assert!(parsed.host.as_ref().is_none_or(|h| h.len() <= HostLen::MAX));
    assert!(parsed.attack_ids.len() <= AttackIdCount::MAX);
    assert!(
        parsed
            .attack_ids
            .iter()
            .all(|id| id.len() <= AttackIdLen::MAX && is_attack_id(id))
    );
    assert!(
        parsed
            .severity
            .as_ref()
            .is_none_or(|s| s.original.len() <= SeverityOriginalLen::MAX)
    );
    assert!(
        parsed
            .parse_error
            .as_ref()
            .is_none_or(|e| e.len() <= ParseErrorLen::MAX)
    );
    assert!(!parsed.media_type.is_empty() && parsed.media_type.len() <= MediaTypeLen::MAX);
}

fn sample_lines() -> Vec<(SourceFormat, Vec<u8>)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/testdata/logs");
    let mut lines = Vec::new();
    for (format, file) in [
        (
            SourceFormat::SuricataEve,
            "suricata-eve/suricatalog-eve_payload.json",
        ),
        (SourceFormat::Cef, "cef/graylog-plugin-cef-testStrings.cef"),
        (SourceFormat::Syslog3164, "syslog/plaso-syslog_ssh.log"),
        (
            SourceFormat::Syslog5424,
            "syslog/plaso-syslog_rsyslog_SyslogProtocol23Format",
        ),
        (
            SourceFormat::Wazuh,
            "wazuh-or-ossec/wazuh-alerts.derived.ndjson",
        ),
        (
            SourceFormat::EvtxJson,
            "windows-evtx-json/chainsaw-security_sample.search-4624.jsonl",
        ),
    ] {
        let bytes = std::fs::read(format!("{root}/{file}")).expect("sample file");
        for line in bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .take(40)
        {
            lines.push((format, line.to_vec()));
        }
    }
    for (format, file) in [
        (
            SourceFormat::EvtxXml,
            "windows-evtx-json/evtx-rs-snapshot-event_xml_sample_with_entity_ref.xml",
        ),
        (
            SourceFormat::Stix21,
            "stix21/indicators-for-C2-with-COA.json",
        ),
    ] {
        lines.push((
            format,
            std::fs::read(format!("{root}/{file}")).expect("sample file"),
        ));
    }
    lines
}

/// JSON objects with the keys the JSON parsers look for, holding values of any type, so
/// type confusion (`"timestamp": []`, `"rule": "x"`) is exercised.
fn confusing_json() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        "[ -~]{0,40}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from(
            "2024-02-29T23:59:60.999999999+2359"
        )),
        Just(serde_json::Value::from("T1110.001")),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "id",
                    "level",
                    "mitre",
                    "name",
                    "severity",
                    "signature_id",
                    "metadata",
                    "mitre_technique_id",
                    "#text",
                    "#attributes",
                    "SystemTime",
                    "subtechnique",
                    "System",
                    "EventID",
                    "Level",
                    "Computer",
                    "TimeCreated",
                    "external_references",
                    "source_name",
                    "external_id",
                    "modified",
                    "Tag",
                ]),
                inner,
                0..5,
            )
            .prop_map(|m| serde_json::Value::Object(
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    });
    let keys = prop::sample::select(vec![
        "timestamp",
        "@timestamp",
        "event_type",
        "alert",
        "rule",
        "agent",
        "host",
        "hostname",
        "_source",
        "Event",
        "ts",
        "note",
        "type",
        "objects",
        "spec_version",
        "event",
        "threat",
        "event.severity",
        "host.name",
        "uid",
    ]);
    prop::collection::btree_map(keys, value, 0..8).prop_map(|m| {
        let object: serde_json::Map<String, serde_json::Value> =
            m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        serde_json::to_vec(&object).expect("serialisable")
    })
}

fn context() -> impl Strategy<Value = ParseContext> {
    prop_oneof![
        Just(None),
        any::<u64>().prop_map(|t| Some(UnixMillis(t))),
        (0u64..4_102_444_800_000).prop_map(|t| Some(UnixMillis(t))),
    ]
    .prop_map(|reference_time| ParseContext { reference_time })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn random_bytes_in_every_format(raw in prop::collection::vec(any::<u8>(), 0..600), context in context()) {
        let _ = detect(&raw);
        for format in FORMATS {
            check_contract(format, &parse_with(format, &raw, &context));
        }
    }

    #[test]
    fn random_text_in_every_format(raw in "[ -~\t<>|=:\\[\\]{}\"]{0,300}", context in context()) {
        let _ = detect(raw.as_bytes());
        for format in FORMATS {
            check_contract(format, &parse_with(format, raw.as_bytes(), &context));
        }
    }

    #[test]
    fn json_with_confused_types(raw in confusing_json()) {
        let _ = detect(&raw);
        for format in FORMATS {
            check_contract(format, &parse_with(format, &raw, &ParseContext::default()));
        }
    }

    #[test]
    fn truncated_and_corrupted_samples(
        pick in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let samples = sample_lines();
        let (format, line) = &samples[pick.index(samples.len())];
        let mut raw = line[..cut.index(line.len() + 1)].to_vec();
        if !raw.is_empty() {
            for (at, byte) in flips {
                let i = at.index(raw.len());
                raw[i] = byte;
            }
        }
        let _ = detect(&raw);
        check_contract(*format, &parse_with(*format, &raw, &ParseContext::default()));
    }

    #[test]
    fn zeek_reader_takes_any_lines(lines in prop::collection::vec("(#fields|#separator|#unset_field|[0-9]{1,10}\\.[0-9]{0,6})?[\t a-z0-9\\\\x.-]{0,60}", 0..12)) {
        let mut reader = ZeekTsvReader::new();
        for line in lines {
            match reader.line(line.as_bytes()) {
                ZeekTsvLine::Header => prop_assert!(line.starts_with('#')),
                ZeekTsvLine::Event(parsed) => check_contract(SourceFormat::ZeekTsv, &parsed),
            }
        }
    }
}
