//! ArcSight Common Event Format:
//! `[header]CEF:Version|Vendor|Product|DeviceVersion|SignatureID|Name|Severity|Extension`,
//! where the optional header is a syslog PRI, timestamp and host, and the extension is
//! `key=value` pairs separated by spaces, values escaping `\=` and `\\`.

use super::{Fields, ParseContext, ParseFailure, severity, time};
use custos_ledger::message::UnixMillis;

/// The seven `|`-separated header fields after `CEF:`.
const HEADER_FIELDS: usize = 7;

/// Where `CEF:<digits>|` starts in `text`, if it does.
pub(crate) fn find_cef(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = text.get(from..)?.find("CEF:") {
        let start = from + found;
        let after = &text[start + 4..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with('|') {
            return Some(start);
        }
        from = start + 4;
    }
    None
}

/// Splits the header at unescaped pipes: the seven fields and the extension.
fn split_header(text: &str) -> (Vec<String>, &str) {
    let mut fields = Vec::with_capacity(HEADER_FIELDS);
    let mut current = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, escaped @ ('|' | '\\'))) => current.push(escaped),
                Some((_, other)) => {
                    current.push('\\');
                    current.push(other);
                }
                None => current.push('\\'),
            },
            '|' => {
                fields.push(std::mem::take(&mut current));
                if fields.len() == HEADER_FIELDS {
                    return (fields, &text[i + 1..]);
                }
            }
            _ => current.push(c),
        }
    }
    // The extension may be missing altogether, with no pipe after the severity.
    fields.push(current);
    (fields, "")
}

/// The extension's `key=value` pairs, values unescaped. A key is the word just before an
/// unescaped `=`; a value runs to the space before the next key.
fn extension(text: &str) -> Vec<(&str, String)> {
    let bytes = text.as_bytes();
    let mut equals = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' => {
                equals.push(i);
                i += 1;
            }
            _ => i += 1,
        }
    }
    // (key start, equals) for every `=` preceded by a valid key.
    let mut keys: Vec<(usize, usize)> = Vec::new();
    let mut previous_end = 0;
    for eq in equals {
        let start = text[..eq].rfind(' ').map_or(0, |space| space + 1);
        let key = &text[start..eq];
        let valid = !key.is_empty()
            && start >= previous_end
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'[' | b']'));
        if valid {
            keys.push((start, eq));
            previous_end = eq + 1;
        }
    }
    keys.iter()
        .enumerate()
        .map(|(n, &(start, eq))| {
            let value_end = keys.get(n + 1).map_or(text.len(), |&(next, _)| next);
            let value = text[eq + 1..value_end].trim_end_matches(' ');
            (&text[start..eq], unescape(value))
        })
        .collect()
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A CEF time value: epoch milliseconds, `MMM dd yyyy HH:mm:ss[.SSS][ zone]`,
/// `MMM dd HH:mm:ss` (year from context) or ISO 8601.
fn cef_time(value: &str, context: &ParseContext) -> Option<UnixMillis> {
    time::epoch_millis(value)
        .or_else(|| time::iso8601(value))
        .or_else(|| time::bsd_prefix(value, context.reference_time).map(|(at, _)| at))
}

/// What precedes `CEF:`: `[<PRI>][timestamp ][host ][tag:]`. Returns the time and host.
fn header(
    prefix: &str,
    context: &ParseContext,
) -> (Option<UnixMillis>, Option<u8>, Option<String>) {
    let mut rest = prefix.trim();
    let mut code = None;
    if let Some(after) = rest.strip_prefix('<') {
        if let Some((digits, after)) = after.split_once('>') {
            code = digits
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= 191)
                .map(|p| p % 8);
            rest = after;
        }
    }
    let mut at = None;
    if let Some((stamp, after)) = rest.split_once(' ') {
        if let Some(millis) = time::epoch_millis(stamp) {
            at = Some(millis);
            rest = after;
        }
    }
    if at.is_none() {
        if let Some((stamp, taken)) = time::iso8601_prefix(rest) {
            at = Some(stamp);
            rest = &rest[taken..];
        } else if let Some(taken) = time::bsd_len(rest) {
            at = time::bsd_prefix(rest, context.reference_time).map(|(stamp, _)| stamp);
            rest = &rest[taken..];
        }
    }
    // The host is the first remaining word unless it is a tag such as `ASM:`.
    let host = rest
        .split_whitespace()
        .next()
        .filter(|word| !word.ends_with(':'))
        .map(str::to_owned);
    (at, code, host)
}

/// Parses one CEF event.
pub(crate) fn parse(text: &str, context: &ParseContext) -> Result<Fields, ParseFailure> {
    let text = text.trim_end_matches(['\n', '\r', '\0']);
    let start = find_cef(text).ok_or_else(|| {
        ParseFailure::Syntax(
            "no `CEF:<version>|` marker; a CEF event reads \
             `CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|Extension`"
                .to_owned(),
        )
    })?;
    let (fields, rest) = split_header(&text[start + 4..]);
    if fields.len() < HEADER_FIELDS {
        return Err(ParseFailure::Syntax(format!(
            "a CEF header has {HEADER_FIELDS} `|`-separated fields \
             (Version|Vendor|Product|DeviceVersion|SignatureID|Name|Severity), found {}",
            fields.len()
        )));
    }
    let (header_at, _, header_host) = header(&text[..start], context);
    let extension = extension(rest);
    let value = |key: &str| {
        extension
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let occurred_at = value("rt")
        .or_else(|| value("end"))
        .and_then(|v| cef_time(v, context))
        .or(header_at);
    let host = value("dvchost")
        .or_else(|| value("dhost"))
        .map(str::to_owned)
        .or(header_host);
    Ok(Fields {
        alert: true,
        occurred_at,
        severity: severity::cef(&fields[6]),
        rule_id: Some(fields[4].clone()),
        host,
        ..Fields::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_keys_and_escapes() {
        let pairs = extension(r"src=10.0.0.1 act=blocked a \= dst=1.1.1.1 msg=a\\b\nc");
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["src", "act", "dst", "msg"]);
        assert_eq!(pairs[1].1, "blocked a =");
        assert_eq!(pairs[3].1, "a\\b\nc");
        assert!(extension("").is_empty());
    }

    #[test]
    fn escaped_pipes_stay_in_header_fields() {
        let (fields, rest) =
            split_header(r"0|security|threatmanager|1.0|100|detected a \| in message|10|src=1");
        assert_eq!(fields[5], "detected a | in message");
        assert_eq!(rest, "src=1");
        let (fields, rest) = split_header("0|a|b|1|100|name|10");
        assert_eq!((fields.len(), rest), (7, ""));
    }
}
