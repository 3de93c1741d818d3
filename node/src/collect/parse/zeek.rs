//! Zeek tab-separated logs. The columns are named by a `#fields` header line at the top of
//! each file, so a reader must remember it: [`ZeekTsvReader`] does, line by line.

use custos_ledger::message::SourceFormat;

use super::{Fields, ParseFailure, Parsed, finish, format_name, raw_parsed, time};

/// Zeek's largest logs (conn.log with all packages) have under a hundred columns; the bound
/// keeps a hostile `#fields` line from growing the reader without end.
pub const MAX_ZEEK_FIELDS: usize = 512;

/// A line of a Zeek TSV log, as [`ZeekTsvReader::line`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZeekTsvLine {
    /// A `#` header line (`#separator`, `#fields`, `#types`, `#open`, ...); the reader has
    /// taken what it needs from it. The collector keeps it as raw evidence if it wants.
    Header,
    /// A log entry.
    Event(Parsed),
}

/// Reads a Zeek TSV log line by line, remembering the header.
#[derive(Clone, Debug)]
pub struct ZeekTsvReader {
    separator: String,
    unset_field: String,
    fields: Vec<String>,
}

impl Default for ZeekTsvReader {
    fn default() -> Self {
        Self {
            separator: "\t".to_owned(),
            unset_field: "-".to_owned(),
            fields: Vec::new(),
        }
    }
}

/// `\x09` escapes in the `#separator` line.
fn unescape_hex(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("\\x") {
        out.push_str(&rest[..at]);
        let hex = rest.get(at + 2..at + 4);
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) if byte.is_ascii() => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            _ => {
                out.push_str("\\x");
                rest = &rest[at + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl ZeekTsvReader {
    /// A reader that has seen no header yet (tab separator, `-` for unset fields).
    pub fn new() -> Self {
        Self::default()
    }

    /// The column names from the last `#fields` line.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Takes one line (without its newline). Header lines update the reader; other lines
    /// are parsed with the columns the header named. Never fails: a line that cannot be
    /// read is an event with format raw and a parse error.
    pub fn line(&mut self, raw: &[u8]) -> ZeekTsvLine {
        let Ok(text) = std::str::from_utf8(raw) else {
            return ZeekTsvLine::Event(super::parse(SourceFormat::ZeekTsv, raw));
        };
        let text = text.trim_end_matches(['\n', '\r']);
        if let Some(header) = text.strip_prefix('#') {
            self.header(header);
            return ZeekTsvLine::Header;
        }
        ZeekTsvLine::Event(match self.event(text) {
            Ok(fields) => finish(SourceFormat::ZeekTsv, fields),
            Err(failure) => raw_parsed(
                raw,
                Some(format!("{}: {failure}", format_name(SourceFormat::ZeekTsv))),
            ),
        })
    }

    fn header(&mut self, header: &str) {
        if let Some(separator) = header.strip_prefix("separator ") {
            let separator = unescape_hex(separator.trim());
            if !separator.is_empty() {
                self.separator = separator;
            }
            return;
        }
        let mut parts = header.split(self.separator.as_str());
        match parts.next() {
            Some("fields") => {
                self.fields = parts.take(MAX_ZEEK_FIELDS).map(str::to_owned).collect();
            }
            Some("unset_field") => {
                if let Some(unset) = parts.next() {
                    self.unset_field = unset.to_owned();
                }
            }
            _ => {}
        }
    }

    fn event(&self, text: &str) -> Result<Fields, ParseFailure> {
        if self.fields.is_empty() {
            return tsv_without_header(text);
        }
        let values: Vec<&str> = text.split(self.separator.as_str()).collect();
        let column = |name: &str| {
            self.fields
                .iter()
                .position(|f| f == name)
                .and_then(|i| values.get(i).copied())
                .filter(|v| *v != self.unset_field && !v.is_empty())
        };
        if values.len() != self.fields.len() {
            return Err(ParseFailure::Syntax(format!(
                "the `#fields` header names {} columns but the line has {}",
                self.fields.len(),
                values.len()
            )));
        }
        let occurred_at = match column("ts") {
            Some(ts) => Some(
                time::epoch_seconds(ts)
                    .or_else(|| time::iso8601(ts))
                    .ok_or_else(|| {
                        ParseFailure::Syntax(format!("`ts` must be epoch seconds, found `{ts}`"))
                    })?,
            ),
            None => None,
        };
        let note = column("note").map(str::to_owned);
        Ok(Fields {
            alert: note.is_some(),
            occurred_at,
            rule_id: note,
            ..Fields::default()
        })
    }
}

/// A Zeek TSV line read without its header: Zeek always writes `ts` first.
pub(crate) fn tsv_without_header(text: &str) -> Result<Fields, ParseFailure> {
    let first = text.split('\t').next().unwrap_or_default();
    let at = time::epoch_seconds(first).ok_or_else(|| {
        ParseFailure::Syntax(format!(
            "a Zeek TSV line read without its `#fields` header must start with `ts` in epoch \
             seconds (e.g. `1320279566.452687`), found `{}`",
            first.chars().take(24).collect::<String>()
        ))
    })?;
    Ok(Fields {
        occurred_at: Some(at),
        ..Fields::default()
    })
}

/// Whether a line looks like a Zeek TSV entry: tab-separated and starting with `ts`.
pub(crate) fn looks_like_tsv(text: &str) -> bool {
    text.split_once('\t')
        .is_some_and(|(first, _)| first.contains('.') && time::epoch_seconds(first).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_ledger::message::{EvidenceKind, UnixMillis};

    const CONN_HEADER: [&str; 8] = [
        "#separator \\x09",
        "#set_separator\t,",
        "#empty_field\t(empty)",
        "#unset_field\t-",
        "#path\tconn",
        "#open\t2011-11-03-00-19-26",
        "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice",
        "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring",
    ];

    #[test]
    fn header_names_the_columns() {
        let mut reader = ZeekTsvReader::new();
        for line in CONN_HEADER {
            assert_eq!(reader.line(line.as_bytes()), ZeekTsvLine::Header);
        }
        assert_eq!(reader.fields()[0], "ts");
        let ZeekTsvLine::Event(parsed) = reader.line(
            b"1320279566.452687\tCwFs1P2UcUdlSxD2La\t10.0.2.15\t54612\t192.150.187.43\t80\ttcp\thttp",
        ) else {
            panic!("a data line is an event");
        };
        assert_eq!(parsed.format, SourceFormat::ZeekTsv);
        assert_eq!(parsed.occurred_at, Some(UnixMillis(1_320_279_566_452)));
        assert_eq!(parsed.kind, EvidenceKind::LogLine);
        let ZeekTsvLine::Event(short) = reader.line(b"1320279566.452687\tCwFs1P2UcUdlSxD2La")
        else {
            panic!("a data line is an event");
        };
        assert_eq!(short.format, SourceFormat::Raw);
        assert!(
            short
                .parse_error
                .expect("column count mismatch")
                .as_str()
                .contains("names 8 columns but the line has 2")
        );
    }

    #[test]
    fn notices_are_alerts() {
        let mut reader = ZeekTsvReader::new();
        reader.line(b"#fields\tts\tuid\tnote\tmsg");
        let ZeekTsvLine::Event(parsed) =
            reader.line(b"1320279600.000000\t-\tScan::Port_Scan\t10.0.0.1 scanned 20 ports")
        else {
            panic!("event");
        };
        assert_eq!(parsed.kind, EvidenceKind::Alert);
        assert_eq!(parsed.rule_id.expect("note").as_str(), "Scan::Port_Scan");
    }
}
