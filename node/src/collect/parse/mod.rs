//! Parsing security log events into envelope metadata.
//!
//! A collector reads one event (a log line, a JSON document, an event record) and needs
//! the metadata an envelope carries: when it happened, how severe it is, which rule fired,
//! which host it is about, which MITRE ATT&CK ids it names. The event's bytes stay
//! unchanged as the payload; this module only reads them.
//!
//! The contract, which the collector relies on:
//! - [`parse`] never fails and never panics: an event no parser understands comes back as
//!   [`SourceFormat::Raw`] with [`Parsed::parse_error`] saying why, so evidence is never
//!   dropped for being unusual.
//! - Every field fits its ledger limit. An over-long value is cut at a character boundary
//!   and [`Parsed::truncated`] names the field, so nothing is cut silently.
//! - Missing optional fields (no severity, no host) are `None`, not errors.
//!
//! ```
//! use custos_ledger::message::{EvidenceKind, SeverityLevel, SourceFormat, UnixMillis};
//! use custos_node::collect::parse::{detect, parse};
//!
//! let line = br#"{"timestamp":"2022-02-08T16:32:20.491791+0000","event_type":"alert","alert":{"signature_id":2220000,"severity":3}}"#;
//! assert_eq!(detect(line), SourceFormat::SuricataEve);
//! let parsed = parse(SourceFormat::SuricataEve, line);
//! assert_eq!(parsed.kind, EvidenceKind::Alert);
//! assert_eq!(parsed.occurred_at, Some(UnixMillis(1_644_337_940_491)));
//! let severity = parsed.severity.expect("alerts have a severity");
//! assert_eq!((severity.level, severity.original.as_str()), (SeverityLevel::Low, "3"));
//! assert_eq!(parsed.rule_id.as_ref().map(|r| r.as_str()), Some("2220000"));
//!
//! let garbage = parse(SourceFormat::SuricataEve, b"\xff\xfe not json");
//! assert_eq!(garbage.format, SourceFormat::Raw);
//! assert!(garbage.parse_error.is_some());
//! ```

mod cef;
mod evtx;
mod json;
mod severity;
mod syslog;
mod time;
mod zeek;

use custos_ledger::codec::{List, Text};
use custos_ledger::limits::{
    AttackIdCount, AttackIdLen, HostLen, Limit, MediaTypeLen, ParseErrorLen, PayloadLen, RuleIdLen,
    SeverityOriginalLen,
};
use custos_ledger::message::{
    EvidenceKind, Severity, SeverityLevel, SeverityScale, SourceFormat, UnixMillis,
};

pub use evtx::{EvtxFile, EvtxReadError, MAX_EVTX_FILE_BYTES, MAX_EVTX_RECORDS, read_evtx_file};
pub use zeek::{ZeekTsvLine, ZeekTsvReader};

/// The largest event the parsers look into: an event larger than a payload cannot be
/// notarized as one message anyway, and the bound keeps a hostile line from costing more.
pub const MAX_EVENT_BYTES: usize = PayloadLen::MAX;

/// What a parser read from one event, every field within its ledger limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The format the event was parsed as; [`SourceFormat::Raw`] when it could not be.
    pub format: SourceFormat,
    /// Alert or plain log line.
    pub kind: EvidenceKind,
    /// When the event happened, according to the event.
    pub occurred_at: Option<UnixMillis>,
    /// Normalised severity with the source's own value.
    pub severity: Option<Severity>,
    /// Rule, signature or event id.
    pub rule_id: Option<Text<RuleIdLen>>,
    /// The host the event is about.
    pub host: Option<Text<HostLen>>,
    /// MITRE ATT&CK ids named in the event, deduplicated, in order of appearance.
    pub attack_ids: List<Text<AttackIdLen>, AttackIdCount>,
    /// The payload's media type.
    pub media_type: Text<MediaTypeLen>,
    /// Why the event could not be parsed in the requested format; when set, `format` is
    /// [`SourceFormat::Raw`] and the other fields are empty.
    pub parse_error: Option<Text<ParseErrorLen>>,
    /// Fields whose values were cut to fit their limits.
    pub truncated: Vec<TruncatedField>,
}

/// A field that did not fit its ledger limit and was cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TruncatedField {
    /// The rule id was longer than [`RuleIdLen`].
    RuleId,
    /// The host name was longer than [`HostLen`].
    Host,
    /// The original severity was longer than [`SeverityOriginalLen`].
    SeverityOriginal,
    /// There were more ATT&CK ids than [`AttackIdCount`]; the first ones are kept.
    AttackIds,
    /// The parse error text was longer than [`ParseErrorLen`].
    ParseError,
}

/// Why an event could not be parsed in the format asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParseFailure {
    #[error("the event is empty; a log event needs at least one non-blank byte")]
    Empty,
    #[error("the event is {len_bytes} bytes; events over {max_bytes} bytes are kept raw")]
    TooLarge { len_bytes: usize, max_bytes: usize },
    #[error("the event is not UTF-8 (invalid byte at offset {offset}); {format} is text")]
    NotUtf8 { offset: usize, format: &'static str },
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("the JSON is {found}; {format} events are JSON objects")]
    NotObject {
        found: &'static str,
        format: &'static str,
    },
    #[error("`{field}` is missing; every {format} event has it")]
    MissingField {
        field: &'static str,
        format: &'static str,
    },
    #[error("{0}")]
    Syntax(String),
    #[error("not well-formed XML: {0}")]
    Xml(String),
}

/// What a format parser found, before the fields are bounded.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    pub alert: bool,
    pub occurred_at: Option<UnixMillis>,
    pub severity: Option<(SeverityLevel, String, SeverityScale)>,
    pub rule_id: Option<String>,
    pub host: Option<String>,
    pub attack_ids: Vec<String>,
}

impl Fields {
    /// Adds `id` if it looks like an ATT&CK id and is not there yet.
    pub fn add_attack_id(&mut self, id: &str) {
        let id = id.trim();
        if is_attack_id(id) && !self.attack_ids.iter().any(|known| known == id) {
            self.attack_ids.push(id.to_owned());
        }
    }
}

/// Options that are not in the event itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseContext {
    /// Roughly when the event was written, usually when the collector read it. RFC 3164
    /// syslog and some CEF headers carry no year; it is taken from this time. Without it
    /// such timestamps are left out (`occurred_at: None`) rather than guessed.
    pub reference_time: Option<UnixMillis>,
}

/// Parses one event in `format`; see the module docs for the contract.
pub fn parse(format: SourceFormat, raw: &[u8]) -> Parsed {
    parse_with(format, raw, &ParseContext::default())
}

/// Parses one event in `format`, with `context` for what the event leaves out.
pub fn parse_with(format: SourceFormat, raw: &[u8], context: &ParseContext) -> Parsed {
    if matches!(format, SourceFormat::Raw | SourceFormat::Custos) {
        return raw_parsed(raw, None);
    }
    match parse_fields(format, raw, context) {
        Ok(fields) => finish(format, fields),
        Err(failure) => raw_parsed(raw, Some(format!("{}: {failure}", format_name(format)))),
    }
}

fn parse_fields(
    format: SourceFormat,
    raw: &[u8],
    context: &ParseContext,
) -> Result<Fields, ParseFailure> {
    if raw.len() > MAX_EVENT_BYTES {
        return Err(ParseFailure::TooLarge {
            len_bytes: raw.len(),
            max_bytes: MAX_EVENT_BYTES,
        });
    }
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseFailure::Empty);
    }
    match format {
        SourceFormat::SuricataEve => json::suricata(raw),
        SourceFormat::Wazuh => json::wazuh(raw),
        SourceFormat::EcsJson => json::ecs(raw),
        SourceFormat::ZeekJson => json::zeek(raw),
        SourceFormat::EvtxJson | SourceFormat::Evtx => json::evtx(raw),
        SourceFormat::Stix21 => json::stix(raw),
        SourceFormat::Misp => json::misp(raw),
        SourceFormat::EvtxXml => evtx::xml(raw),
        SourceFormat::Syslog5424 => syslog::rfc5424(text(raw, format)?),
        SourceFormat::Syslog3164 => syslog::rfc3164(text(raw, format)?, context),
        SourceFormat::Cef => cef::parse(text(raw, format)?, context),
        SourceFormat::ZeekTsv => zeek::tsv_without_header(text(raw, format)?),
        SourceFormat::Raw | SourceFormat::Custos => Ok(Fields::default()),
    }
}

/// The event as UTF-8 text, for the text formats.
fn text(raw: &[u8], format: SourceFormat) -> Result<&str, ParseFailure> {
    std::str::from_utf8(raw).map_err(|e| ParseFailure::NotUtf8 {
        offset: e.valid_up_to(),
        format: format_name(format),
    })
}

/// The name a format goes by in the ledger (its serde name).
pub fn format_name(format: SourceFormat) -> &'static str {
    match format {
        SourceFormat::Syslog5424 => "syslog-5424",
        SourceFormat::Syslog3164 => "syslog-3164",
        SourceFormat::Cef => "cef",
        SourceFormat::EcsJson => "ecs-json",
        SourceFormat::SuricataEve => "suricata-eve",
        SourceFormat::ZeekJson => "zeek-json",
        SourceFormat::ZeekTsv => "zeek-tsv",
        SourceFormat::Wazuh => "wazuh",
        SourceFormat::EvtxJson => "evtx-json",
        SourceFormat::EvtxXml => "evtx-xml",
        SourceFormat::Evtx => "evtx",
        SourceFormat::Stix21 => "stix-2.1",
        SourceFormat::Misp => "misp",
        SourceFormat::Raw => "raw",
        SourceFormat::Custos => "custos",
    }
}

/// The media type of a payload in `format`.
pub fn media_type(format: SourceFormat) -> &'static str {
    match format {
        SourceFormat::EcsJson
        | SourceFormat::SuricataEve
        | SourceFormat::ZeekJson
        | SourceFormat::Wazuh
        | SourceFormat::EvtxJson
        | SourceFormat::Misp
        | SourceFormat::Custos => "application/json",
        // .evtx records are carried in their JSON rendering (see read_evtx_file).
        SourceFormat::Evtx => "application/json",
        SourceFormat::EvtxXml => "application/xml",
        SourceFormat::Stix21 => "application/stix+json;version=2.1",
        SourceFormat::Syslog5424
        | SourceFormat::Syslog3164
        | SourceFormat::Cef
        | SourceFormat::ZeekTsv
        | SourceFormat::Raw => "text/plain; charset=utf-8",
    }
}

fn raw_parsed(raw: &[u8], error: Option<String>) -> Parsed {
    let media = if std::str::from_utf8(raw).is_ok() {
        media_type(SourceFormat::Raw)
    } else {
        "application/octet-stream"
    };
    let mut truncated = Vec::new();
    let parse_error =
        error.map(|e| bounded::<ParseErrorLen>(&e, TruncatedField::ParseError, &mut truncated));
    Parsed {
        format: SourceFormat::Raw,
        kind: EvidenceKind::LogLine,
        occurred_at: None,
        severity: None,
        rule_id: None,
        host: None,
        attack_ids: List::empty(),
        media_type: media_text(media),
        parse_error,
        truncated,
    }
}

fn finish(format: SourceFormat, fields: Fields) -> Parsed {
    let mut truncated = Vec::new();
    let severity = fields.severity.map(|(level, original, scale)| Severity {
        level,
        original: bounded::<SeverityOriginalLen>(
            &original,
            TruncatedField::SeverityOriginal,
            &mut truncated,
        ),
        scale,
    });
    let rule_id = non_blank(fields.rule_id)
        .map(|r| bounded::<RuleIdLen>(&r, TruncatedField::RuleId, &mut truncated));
    let host = non_blank(fields.host)
        .map(|h| bounded::<HostLen>(&h, TruncatedField::Host, &mut truncated));
    let mut ids = fields.attack_ids;
    if ids.len() > AttackIdCount::MAX {
        ids.truncate(AttackIdCount::MAX);
        truncated.push(TruncatedField::AttackIds);
    }
    let attack_ids = ids
        .into_iter()
        // is_attack_id admits only short ids, so nothing is cut here.
        .filter_map(|id| Text::<AttackIdLen>::new(id).ok())
        .collect::<Vec<_>>();
    Parsed {
        format,
        kind: if fields.alert {
            EvidenceKind::Alert
        } else {
            EvidenceKind::LogLine
        },
        occurred_at: fields.occurred_at,
        severity,
        rule_id,
        host,
        attack_ids: List::new(attack_ids).unwrap_or_default(),
        media_type: media_text(media_type(format)),
        parse_error: None,
        truncated,
    }
}

/// Media types here are short constants, well within [`MediaTypeLen`].
fn media_text(media: &str) -> Text<MediaTypeLen> {
    Text::new(media).unwrap_or_default()
}

fn non_blank(value: Option<String>) -> Option<String> {
    value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v != "-")
}

/// `value` cut to at most `L::MAX` bytes at a character boundary.
fn bounded<L: Limit + Default>(
    value: &str,
    field: TruncatedField,
    truncated: &mut Vec<TruncatedField>,
) -> Text<L> {
    let mut end = value.len().min(L::MAX);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    if end < value.len() {
        truncated.push(field);
    }
    Text::new(&value[..end]).unwrap_or_default()
}

/// MITRE ATT&CK ids: techniques `T1234`, sub-techniques `T1234.001`, tactics `TA0001`,
/// and the software, group, mitigation and data-source ids `S`, `G`, `M`, `DS` + digits.
pub fn is_attack_id(id: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = id.strip_prefix("TA").or_else(|| id.strip_prefix("DS")) {
        return digits(rest, 4);
    }
    if let Some(rest) = id.strip_prefix('T') {
        return match rest.split_once('.') {
            Some((technique, sub)) => digits(technique, 4) && digits(sub, 3),
            None => digits(rest, 4),
        };
    }
    ['S', 'G', 'M', 'C']
        .iter()
        .any(|p| id.strip_prefix(*p).is_some_and(|rest| digits(rest, 4)))
}

/// Best-effort guess of the format of one event of unknown origin. Returns
/// [`SourceFormat::Raw`] when nothing fits; the guess is only a guess, and a collector
/// configured with a format should use that instead.
pub fn detect(raw: &[u8]) -> SourceFormat {
    let trimmed = raw.trim_ascii_start();
    let trimmed = trimmed.strip_prefix(b"\xef\xbb\xbf").unwrap_or(trimmed);
    if trimmed.len() > MAX_EVENT_BYTES {
        return SourceFormat::Raw;
    }
    match trimmed.first() {
        Some(b'{') => return json::detect(trimmed),
        Some(b'<') if trimmed.starts_with(b"<?xml") || trimmed.starts_with(b"<Event") => {
            return SourceFormat::EvtxXml;
        }
        _ => {}
    }
    let Ok(text) = std::str::from_utf8(trimmed) else {
        return SourceFormat::Raw;
    };
    if text.starts_with("#separator") || text.starts_with("#fields") {
        return SourceFormat::ZeekTsv;
    }
    if cef::find_cef(text).is_some() {
        return SourceFormat::Cef;
    }
    if let Some(format) = syslog::detect(text) {
        return format;
    }
    if zeek::looks_like_tsv(text) {
        return SourceFormat::ZeekTsv;
    }
    SourceFormat::Raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_ids() {
        for id in [
            "T1110",
            "T1110.001",
            "TA0006",
            "S0154",
            "G0016",
            "M1036",
            "DS0015",
        ] {
            assert!(is_attack_id(id), "{id}");
        }
        for id in [
            "T111",
            "T1110.1",
            "TA06",
            "X1234",
            "",
            "T1110 ",
            "Credential Access",
        ] {
            assert!(!is_attack_id(id), "{id}");
        }
    }

    #[test]
    fn long_values_are_cut_at_char_boundaries_and_reported() {
        let mut truncated = Vec::new();
        // 'é' is two bytes: 256 bytes of them, and byte 255 is inside the 128th.
        let host = "é".repeat(128);
        let text = bounded::<HostLen>(&host, TruncatedField::Host, &mut truncated);
        assert_eq!(text.as_str().len(), 254);
        assert!(host.starts_with(text.as_str()));
        assert_eq!(truncated, vec![TruncatedField::Host]);
        let text = bounded::<HostLen>("short", TruncatedField::Host, &mut truncated);
        assert_eq!(text.as_str(), "short");
        assert_eq!(truncated.len(), 1);
    }

    #[test]
    fn too_many_attack_ids_keep_the_first_and_say_so() {
        let mut fields = Fields::default();
        for n in 0..40 {
            fields.add_attack_id(&format!("T{:04}", 1000 + n));
        }
        fields.add_attack_id("T1000");
        let parsed = finish(SourceFormat::Wazuh, fields);
        assert_eq!(parsed.attack_ids.len(), AttackIdCount::MAX);
        assert_eq!(parsed.attack_ids[0].as_str(), "T1000");
        assert_eq!(parsed.truncated, vec![TruncatedField::AttackIds]);
    }

    #[test]
    fn oversized_and_empty_events_stay_raw() {
        let big = vec![b'{'; MAX_EVENT_BYTES + 1];
        let parsed = parse(SourceFormat::SuricataEve, &big);
        assert_eq!(parsed.format, SourceFormat::Raw);
        assert!(
            parsed
                .parse_error
                .expect("error")
                .as_str()
                .contains("over 1048576 bytes")
        );
        let parsed = parse(SourceFormat::Cef, b"  \n");
        assert!(
            parsed
                .parse_error
                .expect("error")
                .as_str()
                .contains("empty")
        );
    }
}
