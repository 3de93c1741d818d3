//! The parsers against real third-party log samples in `shared/testdata/logs` (see its
//! README and each folder's SOURCE.md for provenance and the counts asserted here). Some
//! samples are GPL: they are read here and never copied into the repository.

use std::collections::BTreeMap;
use std::path::PathBuf;

use custos_ledger::message::{
    EvidenceKind, SeverityLevel, SeverityScale, SourceFormat, UnixMillis,
};
use custos_node::collect::parse::{
    ParseContext, Parsed, TruncatedField, ZeekTsvLine, ZeekTsvReader, detect, parse, parse_with,
    read_evtx_file,
};

fn samples(folder: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/testdata/logs"
    ))
    .join(folder)
}

fn read(folder: &str, file: &str) -> Vec<u8> {
    let path = samples(folder).join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Splits a file into events the way a collector tailing it would: one per line, the last
/// line counting even without a trailing newline.
fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

fn at(iso: &str) -> Option<UnixMillis> {
    let parsed = parse(
        SourceFormat::EcsJson,
        format!(r#"{{"@timestamp":"{iso}"}}"#).as_bytes(),
    );
    assert!(
        parsed.occurred_at.is_some(),
        "test timestamp {iso} must parse"
    );
    parsed.occurred_at
}

/// Counts, printed per file and returned for assertions.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    events: usize,
    parsed: usize,
    parse_errors: usize,
    alerts: usize,
}

// Reporting per-file counts is this helper's job; clippy's test exemption covers only
// `#[test]` functions themselves.
#[allow(clippy::print_stderr)]
fn count(file: &str, results: &[Parsed]) -> Counts {
    let mut counts = Counts::default();
    for parsed in results {
        counts.events += 1;
        if let Some(error) = &parsed.parse_error {
            assert_eq!(
                parsed.format,
                SourceFormat::Raw,
                "errors come with format raw"
            );
            if counts.parse_errors < 5 {
                eprintln!("  {file}: kept raw: {error}");
            }
            counts.parse_errors += 1;
        } else {
            counts.parsed += 1;
        }
        if parsed.kind == EvidenceKind::Alert {
            counts.alerts += 1;
        }
    }
    eprintln!(
        "{file}: events {}, parsed {}, parse errors {}, alerts {}",
        counts.events, counts.parsed, counts.parse_errors, counts.alerts
    );
    counts
}

fn parse_lines(format: SourceFormat, bytes: &[u8], context: &ParseContext) -> Vec<Parsed> {
    lines(bytes)
        .into_iter()
        .map(|line| parse_with(format, line, context))
        .collect()
}

/// (occurred_at ms, (level, original, scale), rule id, host): the fields most assertions
/// look at, as plain values.
type Summary = (
    Option<u64>,
    Option<(SeverityLevel, String, SeverityScale)>,
    Option<String>,
    Option<String>,
);

fn summary(p: &Parsed) -> Summary {
    (
        p.occurred_at.map(|t| t.0),
        p.severity
            .as_ref()
            .map(|s| (s.level, s.original.as_str().to_owned(), s.scale)),
        p.rule_id.as_ref().map(|r| r.as_str().to_owned()),
        p.host.as_ref().map(|h| h.as_str().to_owned()),
    )
}

fn sev(
    level: SeverityLevel,
    original: &str,
    scale: SeverityScale,
) -> Option<(SeverityLevel, String, SeverityScale)> {
    Some((level, original.to_owned(), scale))
}

fn attack_ids(p: &Parsed) -> Vec<&str> {
    p.attack_ids.iter().map(|id| id.as_str()).collect()
}

#[test]
fn suricata_eve_samples() {
    let context = ParseContext::default();
    // (file, events, alerts) from SOURCE.md.
    for (file, events, alerts) in [
        ("suricatalog-eve-2.json", 2401, 118),
        ("suricatalog-eve_payload.json", 131, 131),
        ("suricatalog-eve_udp_flow.json", 32, 0),
        ("suricatalog-eve_large.excerpt.json", 1007, 343),
    ] {
        let bytes = read("suricata-eve", file);
        for line in lines(&bytes) {
            assert_eq!(detect(line), SourceFormat::SuricataEve, "{file}");
        }
        let results = parse_lines(SourceFormat::SuricataEve, &bytes, &context);
        let counts = count(file, &results);
        assert_eq!(
            counts,
            Counts {
                events,
                parsed: events,
                parse_errors: 0,
                alerts
            },
            "{file}"
        );
        assert!(
            results.iter().all(|p| p.occurred_at.is_some()),
            "{file}: every EVE event has a timestamp"
        );
        assert!(
            results
                .iter()
                .all(|p| (p.kind == EvidenceKind::Alert) == p.severity.is_some())
        );
    }

    let payload = read("suricata-eve", "suricatalog-eve_payload.json");
    let first = parse(SourceFormat::SuricataEve, lines(&payload)[0]);
    assert_eq!(first.kind, EvidenceKind::Alert);
    assert_eq!(first.media_type.as_str(), "application/json");
    assert_eq!(
        summary(&first),
        (
            at("2022-02-08T16:32:20.491Z").map(|t| t.0),
            sev(SeverityLevel::Low, "3", SeverityScale::Suricata),
            Some("2220000".to_owned()),
            Some("raspberrypi".to_owned())
        )
    );

    let flows = read("suricata-eve", "suricatalog-eve_udp_flow.json");
    let flow = parse(SourceFormat::SuricataEve, lines(&flows)[0]);
    assert_eq!(flow.kind, EvidenceKind::LogLine);
    assert_eq!(
        summary(&flow),
        (
            at("2022-04-25T00:04:12.542Z").map(|t| t.0),
            None,
            None,
            Some("raspberrypi".to_owned())
        )
    );

    // The first severity-1 alert of the excerpt, in +0300.
    let large = read("suricata-eve", "suricatalog-eve_large.excerpt.json");
    let high = lines(&large)
        .into_iter()
        .map(|l| parse(SourceFormat::SuricataEve, l))
        .find(|p| {
            p.severity
                .as_ref()
                .is_some_and(|s| s.original.as_str() == "1")
        })
        .expect("the excerpt has severity-1 alerts");
    assert_eq!(
        summary(&high),
        (
            at("2023-09-03T17:34:58.136Z").map(|t| t.0),
            sev(SeverityLevel::High, "1", SeverityScale::Suricata),
            Some("2006546".to_owned()),
            None
        )
    );
}

#[test]
fn suricata_mitre_metadata() {
    let line = br#"{"timestamp":"2024-01-01T00:00:00.000000+0000","event_type":"alert","alert":{"signature_id":2030000,"severity":1,"metadata":{"mitre_technique_id":["T1190"],"mitre_tactic_id":["TA0001"]}},"host":"sensor-1"}"#;
    let parsed = parse(SourceFormat::SuricataEve, line);
    assert_eq!(attack_ids(&parsed), ["T1190", "TA0001"]);
    assert_eq!(parsed.host.expect("host").as_str(), "sensor-1");
}

/// (file, format, events, parse errors): events are lines; SOURCE.md gives the counts.
/// The errors are the lines that are not syslog messages on their own: continuation lines
/// of multi-line messages, and plaso's deliberately invalid month `MMM`.
const SYSLOG_FILES: [(&str, SourceFormat, usize, usize); 18] = [
    ("otel-RFC3164.log", SourceFormat::Syslog3164, 1, 0),
    (
        "otel-rfc3164-skip-pri-absent.log",
        SourceFormat::Syslog3164,
        1,
        0,
    ),
    ("otel-RFC5424.log", SourceFormat::Syslog5424, 1, 0),
    (
        "otel-rfc5424-skip-pri-present.log",
        SourceFormat::Syslog5424,
        1,
        0,
    ),
    (
        "otel-rfc6587-non-transparent-framing.log",
        SourceFormat::Syslog5424,
        1,
        0,
    ),
    (
        "otel-rfc6587-octet-counting.log",
        SourceFormat::Syslog5424,
        1,
        0,
    ),
    (
        "otel-rfc6587-octet-counting-preserve-space.log",
        SourceFormat::Syslog5424,
        1,
        0,
    ),
    // Invalid month `MMM` and a tab-indented continuation line.
    ("plaso-syslog", SourceFormat::Syslog3164, 18, 2),
    // The last message spans two lines.
    ("plaso-syslog_chromeos", SourceFormat::Syslog3164, 9, 1),
    ("plaso-syslog_cron.log", SourceFormat::Syslog3164, 9, 0),
    ("plaso-syslog_osx", SourceFormat::Syslog3164, 2, 0),
    ("plaso-syslog_rsyslog", SourceFormat::Syslog3164, 5, 0),
    // One line of concatenated messages, then the rest of the multi-line one.
    (
        "plaso-syslog_rsyslog_ForwardFormat",
        SourceFormat::Syslog3164,
        2,
        1,
    ),
    (
        "plaso-syslog_rsyslog_SysklogdFileFormat",
        SourceFormat::Syslog3164,
        10,
        1,
    ),
    (
        "plaso-syslog_rsyslog_SyslogProtocol23Format",
        SourceFormat::Syslog5424,
        10,
        1,
    ),
    (
        "plaso-syslog_rsyslog_TraditionalForwardFormat",
        SourceFormat::Syslog3164,
        2,
        1,
    ),
    // Two wrapped messages and a tab-indented continuation line. SOURCE.md says 10, the
    // newline count; the last line has no newline and is an event too.
    (
        "plaso-syslog_rsyslog_traditional",
        SourceFormat::Syslog3164,
        11,
        3,
    ),
    ("plaso-syslog_ssh.log", SourceFormat::Syslog3164, 9, 0),
];

#[test]
fn syslog_samples() {
    let context = ParseContext {
        reference_time: at("2016-12-31T00:00:00Z"),
    };
    for (file, format, events, errors) in SYSLOG_FILES {
        let bytes = read("syslog", file);
        let results = parse_lines(format, &bytes, &context);
        let counts = count(file, &results);
        assert_eq!(
            (counts.events, counts.parse_errors),
            (events, errors),
            "{file}"
        );
        for (line, parsed) in lines(&bytes).into_iter().zip(&results) {
            if parsed.parse_error.is_none() {
                assert_eq!(
                    detect(line),
                    format,
                    "{file}: {}",
                    String::from_utf8_lossy(line)
                );
            }
        }
    }

    let bsd = parse_with(
        SourceFormat::Syslog3164,
        &read("syslog", "otel-RFC3164.log"),
        &ParseContext {
            reference_time: at("2015-08-06T00:00:00Z"),
        },
    );
    assert_eq!(
        summary(&bsd),
        (
            at("2015-02-04T11:14:27Z").map(|t| t.0),
            sev(SeverityLevel::Critical, "2", SeverityScale::Syslog),
            None,
            Some("1.2.3.4".to_owned())
        )
    );
    assert_eq!(bsd.media_type.as_str(), "text/plain; charset=utf-8");

    for file in [
        "otel-RFC5424.log",
        "otel-rfc6587-octet-counting.log",
        "otel-rfc6587-non-transparent-framing.log",
    ] {
        let parsed = parse(SourceFormat::Syslog5424, &read("syslog", file));
        assert_eq!(
            summary(&parsed),
            (
                at("2015-08-05T21:58:59.693Z").map(|t| t.0),
                sev(SeverityLevel::Info, "6", SeverityScale::Syslog),
                None,
                Some("192.168.2.132".to_owned())
            ),
            "{file}"
        );
    }
    let pri_123 = parse(
        SourceFormat::Syslog5424,
        &read("syslog", "otel-rfc5424-skip-pri-present.log"),
    );
    assert_eq!(
        summary(&pri_123).1,
        sev(SeverityLevel::High, "3", SeverityScale::Syslog)
    );

    // Feb 29 resolves to the leap year before the reference, as plaso's file intends.
    let plaso = read("syslog", "plaso-syslog");
    let leap = parse_with(
        SourceFormat::Syslog3164,
        lines(&plaso)[6],
        &ParseContext {
            reference_time: at("2013-01-15T00:00:00Z"),
        },
    );
    assert_eq!(
        summary(&leap),
        (at("2012-02-29T01:15:43Z").map(|t| t.0), None, None, None)
    );
    let ssh = read("syslog", "plaso-syslog_ssh.log");
    let accepted = parse_with(SourceFormat::Syslog3164, lines(&ssh)[2], &context);
    assert_eq!(
        summary(&accepted),
        (
            at("2016-03-11T22:55:30Z").map(|t| t.0),
            None,
            None,
            Some("ubuntu2015".to_owned())
        )
    );

    let chromeos = read("syslog", "plaso-syslog_chromeos");
    let warning = lines(&chromeos)
        .into_iter()
        .map(|l| parse(SourceFormat::Syslog3164, l))
        .find(|p| {
            p.severity
                .as_ref()
                .is_some_and(|s| s.original.as_str() == "WARNING")
        })
        .expect("a WARNING line");
    assert_eq!(
        warning.severity.expect("severity").level,
        SeverityLevel::Medium
    );

    let rsyslog = read("syslog", "plaso-syslog_rsyslog_SyslogProtocol23Format");
    let critical = parse(SourceFormat::Syslog5424, lines(&rsyslog)[4]);
    assert_eq!(
        summary(&critical),
        (
            at("2021-03-06T04:07:38.251Z").map(|t| t.0),
            sev(SeverityLevel::Critical, "2", SeverityScale::Syslog),
            None,
            Some("hostname".to_owned())
        )
    );
}

/// Upstream CEF fixtures list the expected header fields of each line; the parser must
/// agree on the signature id, the severity and the device host for every one.
fn check_cef_fixture(input: &str, expected: &serde_json::Value, what: &str) {
    let parsed = parse(SourceFormat::Cef, input.as_bytes());
    assert_eq!(parsed.parse_error, None, "{what}");
    let want_rule = expected["deviceEventClassId"]
        .as_str()
        .expect("fixture rule");
    assert_eq!(
        parsed.rule_id.as_ref().map(|r| r.as_str()),
        Some(want_rule),
        "{what}"
    );
    let want_severity = match &expected["severity"] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let got = parsed
        .severity
        .as_ref()
        .map(|s| s.original.as_str().to_owned());
    if let Some(got) = got {
        assert_eq!(got, want_severity, "{what}");
    }
    let extensions = &expected["extensions"];
    if let Some(host) = extensions["dvchost"]
        .as_str()
        .or_else(|| extensions["dhost"].as_str())
    {
        assert_eq!(
            parsed.host.as_ref().map(|h| h.as_str()),
            Some(host),
            "{what}"
        );
    }
}

#[test]
fn cef_samples() {
    let context = ParseContext::default();
    for (file, events) in [
        ("graylog-plugin-cef-testStrings.cef", 36),
        ("jcustenborder-cef-parser-inputs.cef", 90),
    ] {
        let bytes = read("cef", file);
        for line in lines(&bytes) {
            assert_eq!(detect(line), SourceFormat::Cef, "{file}");
        }
        let results = parse_lines(SourceFormat::Cef, &bytes, &context);
        let counts = count(file, &results);
        assert_eq!(
            counts,
            Counts {
                events,
                parsed: events,
                parse_errors: 0,
                alerts: events
            },
            "{file}"
        );
    }

    let mut fixtures = 0;
    for entry in std::fs::read_dir(samples("cef/jcustenborder-cef-parser-messages")).expect("dir") {
        let path = entry.expect("entry").path();
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("strict JSON");
        check_cef_fixture(
            doc["input"].as_str().expect("input"),
            &doc["expected"],
            &path.display().to_string(),
        );
        fixtures += 1;
    }
    for entry in std::fs::read_dir(samples("cef/graylog-plugin-cef-fixtures")).expect("dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        // Some fixtures carry whole-line `//` comments (SOURCE.md).
        let json: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let doc: serde_json::Value =
            serde_json::from_str(&json).expect("JSON once comments are stripped");
        check_cef_fixture(
            doc["testString"].as_str().expect("testString"),
            &doc,
            &path.display().to_string(),
        );
        fixtures += 1;
    }
    eprintln!("cef fixtures cross-checked: {fixtures}");
    assert_eq!(fixtures, 90 + 36);

    let jc = read("cef", "jcustenborder-cef-parser-inputs.cef");
    let jc = lines(&jc);
    assert_eq!(
        summary(&parse(SourceFormat::Cef, jc[0])),
        (
            None,
            sev(SeverityLevel::Critical, "10", SeverityScale::Cef),
            Some("100".to_owned()),
            None
        )
    );
    // Epoch-millisecond prefix and host before `CEF:`.
    assert_eq!(
        summary(&parse(SourceFormat::Cef, jc[10])),
        (
            Some(1_493_738_863_000),
            sev(SeverityLevel::Critical, "10", SeverityScale::Cef),
            Some("100".to_owned()),
            Some("hostname.example.com".to_owned())
        )
    );
    // ArcSight Logger line: `rt` in epoch milliseconds wins over the header date.
    let logger = jc
        .iter()
        .map(|l| parse(SourceFormat::Cef, l))
        .find(|p| {
            p.rule_id
                .as_ref()
                .is_some_and(|r| r.as_str() == "sensor:115")
        })
        .expect("the Logger line");
    assert_eq!(summary(&logger).0, Some(1_305_034_099_211));
    assert_eq!(
        summary(&logger).1,
        sev(SeverityLevel::Low, "1", SeverityScale::Cef)
    );

    let graylog = read("cef", "graylog-plugin-cef-testStrings.cef");
    let f5 = parse(SourceFormat::Cef, lines(&graylog)[0]);
    assert_eq!(
        summary(&f5),
        (
            at("2010-09-10T16:03:00Z").map(|t| t.0),
            sev(SeverityLevel::High, "8", SeverityScale::Cef),
            Some("Web Scraping Attack".to_owned()),
            Some("3600.lab.asm.f5net.com".to_owned())
        )
    );
}

#[test]
fn wazuh_samples() {
    let context = ParseContext::default();
    for (file, events, parsed) in [
        ("wazuh-alerts.derived.ndjson", 7, 7),
        ("wazuh-indexer-sl_integration_test.dedup.ndjson", 5, 5),
        ("wazuh-v4.14.7-integratord-test-alert-5712.json", 1, 1),
    ] {
        let bytes = read("wazuh-or-ossec", file);
        for line in lines(&bytes) {
            assert_eq!(detect(line), SourceFormat::Wazuh, "{file}");
        }
        let counts = count(file, &parse_lines(SourceFormat::Wazuh, &bytes, &context));
        assert_eq!(
            counts,
            Counts {
                events,
                parsed,
                parse_errors: 0,
                alerts: events
            },
            "{file}"
        );
    }
    // One pretty-printed document: the whole file is one event.
    let document = read("wazuh-or-ossec", "wazuh-indexer-wazuh-event.sample.json");
    assert_eq!(detect(&document), SourceFormat::Wazuh);
    let shellshock = parse(SourceFormat::Wazuh, &document);
    count(
        "wazuh-indexer-wazuh-event.sample.json",
        std::slice::from_ref(&shellshock),
    );
    assert_eq!(
        summary(&shellshock),
        (
            at("2024-02-08T14:35:14.334Z").map(|t| t.0),
            sev(SeverityLevel::Low, "6", SeverityScale::Wazuh),
            Some("31166".to_owned()),
            Some("redacted.com".to_owned())
        )
    );
    assert_eq!(attack_ids(&shellshock), ["T1068", "T1190"]);

    let brute_force = parse(
        SourceFormat::Wazuh,
        &read(
            "wazuh-or-ossec",
            "wazuh-v4.14.7-integratord-test-alert-5712.json",
        ),
    );
    assert_eq!(
        summary(&brute_force),
        (
            at("2022-05-11T12:29:19.905Z").map(|t| t.0),
            sev(SeverityLevel::High, "10", SeverityScale::Wazuh),
            Some("5712".to_owned()),
            Some("localhost.localdomain".to_owned())
        )
    );
    assert_eq!(attack_ids(&brute_force), ["T1110"]);

    let wrapped = read(
        "wazuh-or-ossec",
        "wazuh-indexer-sl_integration_test.dedup.ndjson",
    );
    let ssh_login = parse(SourceFormat::Wazuh, lines(&wrapped)[1]);
    assert_eq!(
        summary(&ssh_login),
        (
            at("2024-02-15T19:07:34.606Z").map(|t| t.0),
            sev(SeverityLevel::Info, "3", SeverityScale::Wazuh),
            Some("5715".to_owned()),
            Some("ubuntu2204".to_owned())
        )
    );
    assert_eq!(attack_ids(&ssh_login), ["T1078", "T1021"]);
}

const EVTX_JSON_FILES: [(&str, &str, Option<i64>, &str, &str); 10] = [
    (
        "evtx-rs-snapshot-event_json_sample.json",
        "4608",
        Some(0),
        "2016-07-08T18:12:51.681Z",
        "37L4247F27-25",
    ),
    (
        "evtx-rs-snapshot-event_json_missing_string_cache_entry.json",
        "4608",
        Some(0),
        "2016-07-08T18:12:51.681Z",
        "37L4247F27-25",
    ),
    (
        "evtx-rs-snapshot-event_json_sample_with_event_data.json",
        "4688",
        Some(0),
        "2018-07-28T07:24:45.754Z",
        "",
    ),
    (
        "evtx-rs-snapshot-event_json_sample_with_event_data_with_attributes_and_text.json",
        "6009",
        Some(4),
        "2017-07-12T17:16:28.214Z",
        "",
    ),
    (
        "evtx-rs-snapshot-event_json_sample_with_separate_json_attributes.json",
        "4625",
        Some(4),
        "2010-11-10T18:18:51.000Z",
        "",
    ),
    (
        "evtx-rs-snapshot-event_json_with_size_t.json",
        "4907",
        None,
        "",
        "",
    ),
    (
        "evtx-rs-snapshot-event_json_with_multiple_data_elements-2.json",
        "1",
        Some(4),
        "2021-11-19T16:52:33.833Z",
        "",
    ),
    (
        "evtx-rs-snapshot-event_json_multiple_empty_data_nodes_not_ignored.json",
        "1",
        None,
        "",
        "",
    ),
    (
        "evtx-rs-snapshot-event_json_with_multiple_nodes_same_name.json",
        "53",
        None,
        "",
        "",
    ),
    (
        "evtx-rs-snapshot-event_json_with_multiple_nodes_same_name_separate.json",
        "53",
        None,
        "",
        "",
    ),
];

#[test]
fn windows_json_and_xml_samples() {
    for (file, event_id, level, time, host) in EVTX_JSON_FILES {
        let bytes = read("windows-evtx-json", file);
        assert_eq!(detect(&bytes), SourceFormat::EvtxJson, "{file}");
        let parsed = parse(SourceFormat::EvtxJson, &bytes);
        count(file, std::slice::from_ref(&parsed));
        assert_eq!(parsed.parse_error, None, "{file}");
        assert_eq!(
            parsed.rule_id.as_ref().map(|r| r.as_str()),
            Some(event_id),
            "{file}"
        );
        assert!(parsed.occurred_at.is_some(), "{file}");
        assert!(parsed.host.is_some(), "{file}");
        if let Some(level) = level {
            assert_eq!(
                parsed
                    .severity
                    .as_ref()
                    .map(|s| s.original.as_str().to_owned()),
                Some(level.to_string()),
                "{file}"
            );
        }
        if !time.is_empty() {
            assert_eq!(parsed.occurred_at, at(time), "{file}");
        }
        if !host.is_empty() {
            assert_eq!(
                parsed.host.as_ref().map(|h| h.as_str()),
                Some(host),
                "{file}"
            );
        }
    }
    let system = parse(
        SourceFormat::EvtxJson,
        &read(
            "windows-evtx-json",
            "evtx-rs-snapshot-event_json_sample_with_event_data_with_attributes_and_text.json",
        ),
    );
    assert_eq!(
        summary(&system).1,
        sev(SeverityLevel::Info, "4", SeverityScale::Windows)
    );

    // Each XML rendering parses to the same fields as the JSON rendering of the same record.
    for (xml, json) in [
        ("event_xml_sample.xml", "event_json_sample.json"),
        (
            "event_xml_sample_with_event_data.xml",
            "event_json_sample_with_event_data.json",
        ),
        (
            "event_xml_sample_with_event_data_with_attributes_and_text.xml",
            "event_json_sample_with_event_data_with_attributes_and_text.json",
        ),
        (
            "event_json_with_multiple_data_elements.xml",
            "event_json_with_multiple_data_elements-2.json",
        ),
    ] {
        let xml_bytes = read("windows-evtx-json", &format!("evtx-rs-snapshot-{xml}"));
        assert_eq!(detect(&xml_bytes), SourceFormat::EvtxXml, "{xml}");
        let from_xml = parse(SourceFormat::EvtxXml, &xml_bytes);
        count(xml, std::slice::from_ref(&from_xml));
        assert_eq!(from_xml.media_type.as_str(), "application/xml");
        let from_json = parse(
            SourceFormat::EvtxJson,
            &read("windows-evtx-json", &format!("evtx-rs-snapshot-{json}")),
        );
        assert_eq!(summary(&from_xml), summary(&from_json), "{xml} vs {json}");
    }
    for xml in [
        "event_xml_sample_with_entity_ref.xml",
        "event_xml_sample_with_entity_ref_2.xml",
        "event_xml_sample_with_string_with_trailing_spaces.xml",
        "event_xml_sample_with_user_data.xml",
    ] {
        let parsed = parse(
            SourceFormat::EvtxXml,
            &read("windows-evtx-json", &format!("evtx-rs-snapshot-{xml}")),
        );
        count(xml, std::slice::from_ref(&parsed));
        assert_eq!(parsed.parse_error, None, "{xml}");
        assert!(
            parsed.occurred_at.is_some() && parsed.rule_id.is_some() && parsed.host.is_some(),
            "{xml}"
        );
    }
    let logon = parse(
        SourceFormat::EvtxXml,
        &read(
            "windows-evtx-json",
            "evtx-rs-snapshot-event_xml_sample_with_string_with_trailing_spaces.xml",
        ),
    );
    assert_eq!(summary(&logon).2.as_deref(), Some("4624"));
}

fn event_ids(records: &[(Vec<u8>, Parsed)]) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for (_, parsed) in records {
        let id = parsed
            .rule_id
            .as_ref()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default();
        *ids.entry(id).or_insert(0) += 1;
    }
    ids
}

#[test]
fn evtx_binary_files() {
    let chainsaw =
        read_evtx_file(&samples("windows-evtx-json").join("chainsaw-security_sample.evtx"))
            .expect("a valid .evtx file");
    let parsed: Vec<Parsed> = chainsaw.records.iter().map(|(_, p)| p.clone()).collect();
    let counts = count("chainsaw-security_sample.evtx", &parsed);
    assert_eq!((counts.events, counts.parse_errors), (10, 0));
    assert!(chainsaw.record_errors.is_empty());
    let want: BTreeMap<String, usize> = [
        ("4624", 2),
        ("4672", 2),
        ("5058", 2),
        ("5059", 2),
        ("5061", 2),
    ]
    .into_iter()
    .map(|(id, n)| (id.to_owned(), n))
    .collect();
    assert_eq!(event_ids(&chainsaw.records), want);
    for (raw, parsed) in &chainsaw.records {
        assert_eq!(parsed.format, SourceFormat::EvtxJson);
        assert_eq!(detect(raw), SourceFormat::EvtxJson);
        assert_eq!(
            parsed.host.as_ref().map(|h| h.as_str()),
            Some("DESKTOP-JK4Q86I")
        );
    }
    // chainsaw's own JSON rendering of the two 4624 records parses to the same fields.
    let expected = read(
        "windows-evtx-json",
        "chainsaw-security_sample.search-4624.jsonl",
    );
    let expected: Vec<Parsed> =
        parse_lines(SourceFormat::EvtxJson, &expected, &ParseContext::default());
    count("chainsaw-security_sample.search-4624.jsonl", &expected);
    let ours: Vec<&Parsed> = chainsaw
        .records
        .iter()
        .map(|(_, p)| p)
        .filter(|p| p.rule_id.as_ref().is_some_and(|r| r.as_str() == "4624"))
        .collect();
    assert_eq!(ours.len(), expected.len());
    for (ours, theirs) in ours.iter().zip(&expected) {
        assert_eq!(summary(ours), summary(theirs));
    }
    assert_eq!(
        summary(&expected[0]),
        (
            at("2022-10-11T19:26:52.154Z").map(|t| t.0),
            sev(SeverityLevel::Info, "0", SeverityScale::Windows),
            Some("4624".to_owned()),
            Some("DESKTOP-JK4Q86I".to_owned())
        )
    );

    let short =
        read_evtx_file(&samples("windows-evtx-json").join("evtx-rs-Security_short_selected.evtx"))
            .expect("a valid .evtx file");
    let parsed: Vec<Parsed> = short.records.iter().map(|(_, p)| p.clone()).collect();
    let counts = count("evtx-rs-Security_short_selected.evtx", &parsed);
    assert_eq!((counts.events, counts.parse_errors), (7, 0));
    let want: BTreeMap<String, usize> = [
        ("4611", 1),
        ("4625", 1),
        ("4673", 1),
        ("4776", 1),
        ("5152", 2),
        ("5157", 1),
    ]
    .into_iter()
    .map(|(id, n)| (id.to_owned(), n))
    .collect();
    assert_eq!(event_ids(&short.records), want);
    let june_29 = at("2016-06-29T00:00:00Z").expect("valid").0;
    for (_, parsed) in &short.records {
        let t = parsed.occurred_at.expect("every record has TimeCreated").0;
        assert!(
            (june_29..june_29 + 86_400_000).contains(&t),
            "2016-06-29 per SOURCE.md"
        );
    }

    let not_evtx = read_evtx_file(
        &samples("windows-evtx-json").join("evtx-rs-snapshot-event_json_sample.json"),
    );
    assert!(not_evtx.is_err(), "a JSON file is not an .evtx file");
}

#[test]
fn stix_samples() {
    // (file, newest modified, has indicators)
    for (file, newest, alert) in [
        ("apt1.json", "2015-05-15T09:12:16.432Z", true),
        (
            "indicator-for-c2-ip-address.json",
            "2014-05-08T09:00:00.000Z",
            true,
        ),
        (
            "indicator-to-campaign-relationship.json",
            "2014-09-09T19:58:39.609Z",
            true,
        ),
        (
            "indicators-for-C2-with-COA.json",
            "2017-01-27T13:49:53.997Z",
            true,
        ),
        ("infrastructure.json", "2016-11-23T10:42:39.000Z", false),
        (
            "interop-objectmarking-test.json",
            "2016-05-12T08:17:27.000Z",
            false,
        ),
        (
            "malicious-email-indicator-with-attachment.json",
            "2016-08-08T15:50:10.983Z",
            true,
        ),
        ("poisonivy.json", "2015-05-15T09:12:16.432Z", true),
    ] {
        let bytes = read("stix21", file);
        assert_eq!(detect(&bytes), SourceFormat::Stix21, "{file}");
        let parsed = parse(SourceFormat::Stix21, &bytes);
        count(file, std::slice::from_ref(&parsed));
        assert_eq!(parsed.parse_error, None, "{file}");
        assert_eq!(
            parsed.media_type.as_str(),
            "application/stix+json;version=2.1"
        );
        assert_eq!(parsed.occurred_at, at(newest), "{file}");
        assert_eq!(parsed.kind == EvidenceKind::Alert, alert, "{file}");
    }
    let bundle = br#"{"type":"bundle","id":"bundle--1","objects":[{"type":"attack-pattern","spec_version":"2.1","id":"attack-pattern--1","created":"2020-01-01T00:00:00Z","modified":"2021-01-01T00:00:00Z","name":"Spearphishing Attachment","external_references":[{"source_name":"mitre-attack","external_id":"T1566.001"},{"source_name":"capec","external_id":"CAPEC-163"}]}]}"#;
    let parsed = parse(SourceFormat::Stix21, bundle);
    assert_eq!(attack_ids(&parsed), ["T1566.001"]);
    assert_eq!(parsed.occurred_at, at("2021-01-01T00:00:00Z"));
}

#[test]
fn misp_event() {
    // Hand-written in the shape of a MISP event export: no sample in testdata.
    let event = br#"{"Event":{"uuid":"5e9f3a2c-0000-4000-8000-000000000001","info":"SSH brute force campaign","threat_level_id":"1","timestamp":"1588000000","Orgc":{"name":"CIRCL"},"Tag":[{"name":"tlp:amber"},{"name":"misp-galaxy:mitre-attack-pattern=\"Brute Force - T1110\""}]}}"#;
    assert_eq!(detect(event), SourceFormat::Misp);
    let parsed = parse(SourceFormat::Misp, event);
    assert_eq!(parsed.kind, EvidenceKind::Alert);
    assert_eq!(
        summary(&parsed),
        (
            Some(1_588_000_000_000),
            sev(SeverityLevel::High, "1", SeverityScale::Named),
            Some("5e9f3a2c-0000-4000-8000-000000000001".to_owned()),
            None
        )
    );
    assert_eq!(attack_ids(&parsed), ["T1110"]);
}

/// Over-long values are cut to their ledger limits at character boundaries, and the result
/// says which fields were cut.
#[test]
fn over_long_fields_are_cut_and_reported() {
    let host = "ü".repeat(200); // 400 bytes
    let ids: Vec<String> = (0..40).map(|n| format!("\"T{}\"", 1000 + n)).collect();
    let alert = format!(
        r#"{{"timestamp":"2024-01-01T00:00:00.000+0000","rule":{{"level":12,"id":"{}","mitre":{{"id":[{}]}}}},"agent":{{"name":"{host}"}}}}"#,
        "r".repeat(300),
        ids.join(",")
    );
    let parsed = parse(SourceFormat::Wazuh, alert.as_bytes());
    assert_eq!(parsed.parse_error, None);
    let cut_host = parsed.host.as_ref().expect("host").as_str();
    assert_eq!(cut_host.len(), 254, "255 would split a two-byte character");
    assert!(host.starts_with(cut_host));
    assert_eq!(parsed.rule_id.as_ref().expect("rule").len(), 256);
    assert_eq!(parsed.attack_ids.len(), 32);
    assert_eq!(
        parsed.truncated,
        [
            TruncatedField::RuleId,
            TruncatedField::Host,
            TruncatedField::AttackIds
        ]
    );
}

/// A collector splitting a file with garbage in it gets one result per line: the real
/// events parsed, the garbage kept raw with a reason, nothing dropped.
#[test]
fn garbage_between_real_events_is_kept() {
    let bytes = read("suricata-eve", "suricatalog-eve_udp_flow.json");
    let garbage: [&[u8]; 4] = [b"\xff\xfe\x00binary", b"{\"timestamp\":", b"", b"\t"];
    let mut mixed = Vec::new();
    for (i, line) in lines(&bytes).into_iter().enumerate() {
        mixed.extend_from_slice(line);
        mixed.push(b'\n');
        mixed.extend_from_slice(garbage[i % garbage.len()]);
        mixed.push(b'\n');
    }
    let results = parse_lines(SourceFormat::SuricataEve, &mixed, &ParseContext::default());
    let counts = count("udp_flow with garbage", &results);
    assert_eq!(
        (counts.events, counts.parsed, counts.parse_errors),
        (64, 32, 32)
    );
}

#[test]
fn ecs_and_zeek_json() {
    // Hand-written in the shape of Elastic Agent and Zeek output: no sample in testdata.
    let alert = br#"{"@timestamp":"2024-05-01T10:00:00.123Z","ecs":{"version":"8.11.0"},"event":{"kind":"alert","severity":73},"rule":{"id":"a1b2"},"host":{"name":"web-01"},"threat":{"technique":[{"id":"T1059","subtechnique":[{"id":"T1059.001"}]}],"tactic":{"id":["TA0002"]}}}"#;
    assert_eq!(detect(alert), SourceFormat::EcsJson);
    let parsed = parse(SourceFormat::EcsJson, alert);
    assert_eq!(parsed.kind, EvidenceKind::Alert);
    assert_eq!(
        summary(&parsed),
        (
            at("2024-05-01T10:00:00.123Z").map(|t| t.0),
            sev(SeverityLevel::High, "73", SeverityScale::Ecs),
            Some("a1b2".to_owned()),
            Some("web-01".to_owned())
        )
    );
    assert_eq!(attack_ids(&parsed), ["T1059", "T1059.001", "TA0002"]);
    let flat = br#"{"@timestamp":"2024-05-01T10:00:00Z","event.kind":"event","event.severity":0,"host.name":"db-01","log.level":"info"}"#;
    let parsed = parse(SourceFormat::EcsJson, flat);
    assert_eq!(parsed.kind, EvidenceKind::LogLine);
    assert_eq!(summary(&parsed).3.as_deref(), Some("db-01"));
    assert_eq!(
        summary(&parsed).1,
        sev(SeverityLevel::Info, "0", SeverityScale::Ecs)
    );

    let conn = br#"{"ts":1320279566.452687,"uid":"CwFs1P2UcUdlSxD2La","id.orig_h":"10.0.2.15","id.orig_p":54612,"id.resp_h":"192.150.187.43","id.resp_p":80,"proto":"tcp"}"#;
    assert_eq!(detect(conn), SourceFormat::ZeekJson);
    let parsed = parse(SourceFormat::ZeekJson, conn);
    assert_eq!(
        (parsed.kind, parsed.occurred_at),
        (EvidenceKind::LogLine, Some(UnixMillis(1_320_279_566_453)))
    );
    let notice = br#"{"ts":"2011-11-03T00:20:00.000000Z","uid":"-","note":"SSH::Password_Guessing","msg":"10.0.0.1 appears to be guessing SSH passwords"}"#;
    let parsed = parse(SourceFormat::ZeekJson, notice);
    assert_eq!(parsed.kind, EvidenceKind::Alert);
    assert_eq!(summary(&parsed).0, at("2011-11-03T00:20:00Z").map(|t| t.0));
    assert_eq!(
        summary(&parsed).2.as_deref(),
        Some("SSH::Password_Guessing")
    );

    let mut reader = ZeekTsvReader::new();
    assert_eq!(reader.line(b"#separator \\x09"), ZeekTsvLine::Header);
    assert_eq!(reader.line(b"#fields\tts\tuid\tquery"), ZeekTsvLine::Header);
    let line = b"1320279566.452687\tCwFs1P2UcUdlSxD2La\texample.com";
    assert_eq!(detect(line), SourceFormat::ZeekTsv);
    let ZeekTsvLine::Event(parsed) = reader.line(line) else {
        panic!("data lines are events");
    };
    assert_eq!(parsed.occurred_at, Some(UnixMillis(1_320_279_566_452)));
}

/// Lines a collector will meet that no parser understands: each stays as raw evidence
/// with a reason, in every format.
#[test]
fn malformed_truncated_and_binary_lines_stay_raw_with_a_reason() {
    let suricata = read("suricata-eve", "suricatalog-eve_payload.json");
    let first = lines(&suricata)[0];
    let cef = read("cef", "graylog-plugin-cef-testStrings.cef");
    let cef_first = lines(&cef)[0];
    let cases: Vec<(SourceFormat, Vec<u8>, &str)> = vec![
        (
            SourceFormat::SuricataEve,
            first[..first.len() / 2].to_vec(),
            "not valid JSON",
        ),
        (
            SourceFormat::SuricataEve,
            b"[1,2,3]".to_vec(),
            "is an array",
        ),
        (
            SourceFormat::SuricataEve,
            br#"{"timestamp":"x"}"#.to_vec(),
            "`event_type` is missing",
        ),
        (
            SourceFormat::Wazuh,
            b"{\"agent\":{}}".to_vec(),
            "`rule` is missing",
        ),
        (
            SourceFormat::EvtxJson,
            b"{\"Event\":1}".to_vec(),
            "`Event.System` is missing",
        ),
        (
            SourceFormat::EvtxXml,
            b"<Event><System><EventID>1</EventID></Sys".to_vec(),
            "XML",
        ),
        (SourceFormat::EvtxXml, b"<Other/>".to_vec(), "Event/System"),
        (
            SourceFormat::Stix21,
            b"{\"objects\":[]}".to_vec(),
            "`type` is missing",
        ),
        (
            SourceFormat::EcsJson,
            b"{\"event\":{}}".to_vec(),
            "`@timestamp` is missing",
        ),
        (SourceFormat::ZeekJson, b"{}".to_vec(), "`ts` is missing"),
        (SourceFormat::ZeekTsv, b"conn\tfoo".to_vec(), "epoch"),
        (SourceFormat::Cef, cef_first[..40].to_vec(), "CEF"),
        (SourceFormat::Cef, b"CEF:0|a|b|c".to_vec(), "found 4"),
        (
            SourceFormat::Syslog5424,
            b"<999>1 - - - - - -".to_vec(),
            "PRI",
        ),
        (
            SourceFormat::Syslog5424,
            b"<13>1 yesterday host".to_vec(),
            "TIMESTAMP",
        ),
        (
            SourceFormat::Syslog3164,
            b"--- last message repeated 5 times ---".to_vec(),
            "RFC 3164",
        ),
        (
            SourceFormat::Syslog3164,
            b"\x00\x01\x02\xff\xfe binary".to_vec(),
            "not UTF-8",
        ),
        (SourceFormat::Misp, b"{}".to_vec(), "`Event` is missing"),
    ];
    for (format, raw, reason) in &cases {
        let parsed = parse(*format, raw);
        assert_eq!(parsed.format, SourceFormat::Raw, "{format:?}");
        let error = parsed.parse_error.as_ref().expect("a reason");
        assert!(error.as_str().contains(reason), "{format:?}: {error}");
        assert_eq!(parsed.kind, EvidenceKind::LogLine);
    }
    let binary = parse(SourceFormat::SuricataEve, &[0xff, 0x00, 0x9c, 0x10]);
    assert_eq!(binary.media_type.as_str(), "application/octet-stream");
    assert_eq!(detect(&[0xff, 0x00, 0x9c, 0x10]), SourceFormat::Raw);
    eprintln!("malformed cases: {}", cases.len());
}
