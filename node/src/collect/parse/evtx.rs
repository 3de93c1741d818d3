//! Windows event logs: records rendered as XML, and `.evtx` files read with the `evtx`
//! crate into the JSON rendering that [`super::parse`] reads as
//! [`SourceFormat::EvtxJson`].

use std::path::{Path, PathBuf};

use custos_ledger::message::SourceFormat;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::{Fields, ParseFailure, Parsed, format_name, parse, severity, time};

/// Event XML nests a handful of levels (Event/EventData/Data, UserData/...); deeper
/// documents are not event records and are not walked further.
const MAX_XML_DEPTH: usize = 64;

/// `.evtx` files rotate at 20 MB by default and rarely exceed a few hundred MB; a larger
/// file is refused rather than held in memory as rendered records.
pub const MAX_EVTX_FILE_BYTES: u64 = 1 << 30;

/// A 1 GiB file of the smallest records holds under four million; this bounds the vector
/// [`read_evtx_file`] returns.
pub const MAX_EVTX_RECORDS: usize = 4_000_000;

/// Where in `Event/System` a value of interest sits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SystemField {
    EventId,
    Level,
    Computer,
}

fn system_field(path: &[Vec<u8>]) -> Option<SystemField> {
    match path {
        [event, system, field] if event == b"Event" && system == b"System" => {
            match field.as_slice() {
                b"EventID" => Some(SystemField::EventId),
                b"Level" => Some(SystemField::Level),
                b"Computer" => Some(SystemField::Computer),
                _ => None,
            }
        }
        _ => None,
    }
}

fn is_time_created(path: &[Vec<u8>], element: &BytesStart<'_>) -> bool {
    matches!(path, [event, system] if event == b"Event" && system == b"System")
        && element.local_name().as_ref() == b"TimeCreated"
}

fn system_time(element: &BytesStart<'_>) -> Option<String> {
    element
        .attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == b"SystemTime")
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// The character a predefined or numeric XML entity stands for.
fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// A Windows event record rendered as XML (`<Event><System>...`).
pub(crate) fn xml(raw: &[u8]) -> Result<Fields, ParseFailure> {
    let text = std::str::from_utf8(raw).map_err(|e| ParseFailure::NotUtf8 {
        offset: e.valid_up_to(),
        format: format_name(SourceFormat::EvtxXml),
    })?;
    let mut reader = Reader::from_str(text);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut saw_system = false;
    let mut event_id = String::new();
    let mut level = String::new();
    let mut computer = String::new();
    let mut time_created = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| ParseFailure::Xml(format!("{e} at byte {}", reader.error_position())))?;
        match event {
            Event::Start(element) => {
                if path.is_empty() && element.local_name().as_ref() != b"Event" {
                    return Err(ParseFailure::MissingField {
                        field: "Event",
                        format: format_name(SourceFormat::EvtxXml),
                    });
                }
                if is_time_created(&path, &element) {
                    time_created = system_time(&element);
                }
                if path.len() >= MAX_XML_DEPTH {
                    return Err(ParseFailure::Xml(format!(
                        "elements nest deeper than {MAX_XML_DEPTH} levels"
                    )));
                }
                path.push(element.local_name().as_ref().to_vec());
                if matches!(path.as_slice(), [e, s] if e == b"Event" && s == b"System") {
                    saw_system = true;
                }
            }
            Event::Empty(element) if is_time_created(&path, &element) => {
                time_created = system_time(&element);
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(content) => {
                let target = match system_field(&path) {
                    Some(SystemField::EventId) => &mut event_id,
                    Some(SystemField::Level) => &mut level,
                    Some(SystemField::Computer) => &mut computer,
                    None => continue,
                };
                let decoded = content
                    .decode()
                    .map_err(|e| ParseFailure::Xml(e.to_string()))?;
                target.push_str(&decoded);
            }
            Event::GeneralRef(reference) if system_field(&path) == Some(SystemField::Computer) => {
                let name = reference
                    .decode()
                    .map_err(|e| ParseFailure::Xml(e.to_string()))?;
                match entity(&name) {
                    Some(c) => computer.push(c),
                    // An entity the document would have to define: kept as written.
                    None => {
                        computer.push('&');
                        computer.push_str(&name);
                        computer.push(';');
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_system {
        return Err(ParseFailure::MissingField {
            field: "Event/System",
            format: format_name(SourceFormat::EvtxXml),
        });
    }
    Ok(Fields {
        occurred_at: time_created.as_deref().and_then(time::iso8601),
        severity: level.trim().parse::<i64>().ok().and_then(severity::windows),
        rule_id: Some(event_id),
        host: Some(computer),
        ..Fields::default()
    })
}

/// Why an `.evtx` file could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvtxReadError {
    /// The file could not be opened or measured.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is over [`MAX_EVTX_FILE_BYTES`].
    #[error(
        "{path} is {size_bytes} bytes; .evtx files over {max_bytes} bytes are refused (notarize its digest instead)"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size_bytes: u64,
        /// The limit.
        max_bytes: u64,
    },
    /// The file header is not an EVTX header.
    #[error("{path} is not an .evtx file (it should start with the `ElfFile` header): {reason}")]
    NotEvtx {
        /// The file.
        path: PathBuf,
        /// What the evtx crate said.
        reason: String,
    },
    /// The file has more records than [`MAX_EVTX_RECORDS`].
    #[error("{path} has more than {max} records; split it before collecting")]
    TooManyRecords {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: usize,
    },
}

/// The records of one `.evtx` file.
#[derive(Debug)]
pub struct EvtxFile {
    /// Each record's JSON rendering (the payload to notarize) with what it parsed to.
    pub records: Vec<(Vec<u8>, Parsed)>,
    /// Records the evtx crate could not render, with its reason. Their bytes cannot be
    /// carried as a record, so the collector should notarize the file's digest as well.
    pub record_errors: Vec<String>,
}

/// Reads every record of an `.evtx` file, renders it as JSON (evtx_dump's default
/// `#attributes` style) and parses it as [`SourceFormat::EvtxJson`].
pub fn read_evtx_file(path: &Path) -> Result<EvtxFile, EvtxReadError> {
    let io = |source| EvtxReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size_bytes = std::fs::metadata(path).map_err(io)?.len();
    if size_bytes > MAX_EVTX_FILE_BYTES {
        return Err(EvtxReadError::TooLarge {
            path: path.to_path_buf(),
            size_bytes,
            max_bytes: MAX_EVTX_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let mut parser = evtx::EvtxParser::from_buffer(bytes).map_err(|e| EvtxReadError::NotEvtx {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut file = EvtxFile {
        records: Vec::new(),
        record_errors: Vec::new(),
    };
    for record in parser.records_json() {
        if file.records.len() + file.record_errors.len() >= MAX_EVTX_RECORDS {
            return Err(EvtxReadError::TooManyRecords {
                path: path.to_path_buf(),
                max: MAX_EVTX_RECORDS,
            });
        }
        match record {
            Ok(record) => {
                let raw = record.data.into_bytes();
                let parsed = parse(SourceFormat::EvtxJson, &raw);
                file.records.push((raw, parsed));
            }
            Err(e) => file.record_errors.push(e.to_string()),
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computer_entities_are_resolved() {
        let xml_text = b"<Event><System><EventID>7</EventID><Level>2</Level>\
            <TimeCreated SystemTime=\"2020-01-01T00:00:00Z\"/><Computer>a&amp;b&#x41;</Computer>\
            </System></Event>";
        let fields = xml(xml_text).expect("well-formed");
        assert_eq!(fields.host.as_deref(), Some("a&bA"));
        assert_eq!(fields.rule_id.as_deref(), Some("7"));
        assert_eq!(fields.occurred_at, time::iso8601("2020-01-01T00:00:00Z"));
        let (level, original, _) = fields.severity.expect("level 2");
        assert_eq!(
            (level, original.as_str()),
            (custos_ledger::message::SeverityLevel::High, "2")
        );
    }
}
