//! Syslog: RFC 5424 and RFC 3164 (BSD), including the file formats rsyslog and
//! syslogd write (no PRI, BSD or RFC 3339 timestamps) and RFC 6587 framing leftovers.

use custos_ledger::message::SourceFormat;

use super::{Fields, ParseContext, ParseFailure, severity, time};

/// The highest PRI: facility 23 (local7) × 8 + severity 7 (debug).
const PRI_MAX: u16 = 191;

/// `<PRI>` at the start of `text`: its severity (PRI mod 8; the facility is not kept) and
/// the rest.
fn pri(text: &str) -> Result<Option<(u8, &str)>, ParseFailure> {
    let Some(rest) = text.strip_prefix('<') else {
        return Ok(None);
    };
    let end = rest.find('>').filter(|&end| (1..=3).contains(&end));
    let digits = end.map(|end| &rest[..end]);
    let value = digits
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u16>().ok())
        .filter(|&v| v <= PRI_MAX);
    match (value, end) {
        (Some(value), Some(end)) => {
            let severity = u8::try_from(value % 8).unwrap_or(u8::MAX);
            Ok(Some((severity, &rest[end + 1..])))
        }
        _ => Err(ParseFailure::Syntax(format!(
            "syslog PRI must be `<0>` to `<{PRI_MAX}>`, found `{}`",
            prefix(text, 8)
        ))),
    }
}

/// The first `n` characters of `text`, for error messages.
fn prefix(text: &str, n: usize) -> &str {
    let end = text.char_indices().nth(n).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

/// Removes RFC 6587 framing: an octet count before the message, a NUL or newline
/// trailer after it.
fn unframe(text: &str) -> &str {
    let text = text.trim_end_matches(['\0', '\n', '\r']);
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && text[digits..].starts_with(" <") {
        return &text[digits + 1..];
    }
    text
}

/// The next space-separated token and what follows its space.
fn token(text: &str) -> (&str, &str) {
    match text.split_once(' ') {
        Some((token, rest)) => (token, rest),
        None => (text, ""),
    }
}

/// RFC 5424: `<PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID ...`.
pub(crate) fn rfc5424(text: &str) -> Result<Fields, ParseFailure> {
    let text = unframe(text);
    let Some((code, rest)) = pri(text)? else {
        return Err(ParseFailure::Syntax(format!(
            "an RFC 5424 message starts with `<PRI>VERSION`, e.g. `<34>1 `, found `{}`",
            prefix(text, 8)
        )));
    };
    let (version, rest) = token(rest);
    if version.is_empty() || version.len() > 2 || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseFailure::Syntax(format!(
            "RFC 5424 VERSION after PRI must be 1 or 2 digits, found `{}`",
            prefix(version, 8)
        )));
    }
    let (stamp, rest) = token(rest);
    let occurred_at = if stamp == "-" {
        None
    } else {
        Some(time::iso8601(stamp).ok_or_else(|| {
            ParseFailure::Syntax(format!(
                "RFC 5424 TIMESTAMP must be RFC 3339 or `-`, found `{}`",
                prefix(stamp, 40)
            ))
        })?)
    };
    let (host, _) = token(rest);
    Ok(Fields {
        occurred_at,
        severity: severity::syslog(code),
        host: Some(host.to_owned()),
        ..Fields::default()
    })
}

/// RFC 3164 and the BSD file formats: `[<PRI>]TIMESTAMP [HOSTNAME] TAG: MSG`, where the
/// timestamp is `Mmm dd hh:mm:ss` (year from `context`) or RFC 3339 (rsyslog).
pub(crate) fn rfc3164(text: &str, context: &ParseContext) -> Result<Fields, ParseFailure> {
    let text = unframe(text);
    let (code, rest) = match pri(text)? {
        Some((code, rest)) => (Some(code), rest),
        None => (None, text),
    };
    let (occurred_at, taken) = if let Some((at, taken)) = time::iso8601_prefix(rest) {
        (Some(at), taken)
    } else if let Some(taken) = time::bsd_len(rest) {
        let at = time::bsd_prefix(rest, context.reference_time).map(|(at, _)| at);
        (at, taken)
    } else {
        return Err(ParseFailure::Syntax(format!(
            "an RFC 3164 line starts with `<PRI>` and a timestamp such as `Feb  4 11:14:27` or \
             `2021-03-06T04:07:38Z`, found `{}`",
            prefix(text, 24)
        )));
    };
    let after = &rest[taken..];
    let mut fields = Fields {
        occurred_at,
        severity: code.and_then(severity::syslog),
        ..Fields::default()
    };
    // `Feb 29 01:15:43: message` has neither host nor tag.
    if let Some(after) = after.strip_prefix(' ') {
        let (first, _) = token(after.trim_start());
        if let Some(keyword) = severity::syslog_keyword(first) {
            // ChromeOS writes a severity word where the host would be.
            if fields.severity.is_none() {
                fields.severity = Some(keyword);
            }
        } else if !is_tag(first) {
            fields.host = Some(first.to_owned());
        }
    }
    Ok(fields)
}

/// Whether `word` is a TAG (`sshd[42]:`, `kernel:`) rather than a host name.
fn is_tag(word: &str) -> bool {
    word.ends_with(':') || word.contains('[') || word.is_empty()
}

/// Which syslog flavour a line looks like, if any.
pub(crate) fn detect(text: &str) -> Option<SourceFormat> {
    let text = unframe(text);
    match pri(text) {
        Ok(Some((_, rest))) => {
            let (version, _) = token(rest);
            if !version.is_empty()
                && version.len() <= 2
                && version.bytes().all(|b| b.is_ascii_digit())
            {
                Some(SourceFormat::Syslog5424)
            } else {
                Some(SourceFormat::Syslog3164)
            }
        }
        Ok(None) => {
            let timestamped = time::iso8601_prefix(text).is_some() || time::bsd_len(text).is_some();
            timestamped.then_some(SourceFormat::Syslog3164)
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_ledger::message::SeverityLevel;

    #[test]
    fn pri_bounds() {
        assert_eq!(pri("<0>x").expect("ok").map(|p| p.0), Some(0));
        assert_eq!(pri("<191>x").expect("ok").map(|p| p.0), Some(7));
        assert_eq!(pri("<34>x").expect("ok").map(|p| p.0), Some(2));
        assert!(pri("<192>x").is_err());
        assert!(pri("<>x").is_err());
        assert!(pri("<1234>x").is_err());
        assert!(pri("no pri").expect("ok").is_none());
    }

    #[test]
    fn rfc3164_year_and_host() {
        let context = ParseContext {
            reference_time: time::iso8601("2024-03-01T00:00:00Z"),
        };
        let fields = rfc3164(
            "<34>Feb  4 11:14:27 1.2.3.4 apache_server: test message",
            &context,
        )
        .expect("parses");
        assert_eq!(fields.occurred_at, time::iso8601("2024-02-04T11:14:27Z"));
        assert_eq!(fields.host.as_deref(), Some("1.2.3.4"));
        let (level, original, _) = fields.severity.expect("PRI 34 is severity 2");
        assert_eq!((level, original.as_str()), (SeverityLevel::Critical, "2"));
        let fields = rfc3164("Nov 18 08:30:20 kernel: [997.390602] sda2", &context).expect("ok");
        assert_eq!(fields.host, None);
        assert!(rfc3164("\tmany syslog parsers.", &context).is_err());
        let no_reference = rfc3164("Feb  4 11:14:27 host x", &ParseContext::default()).expect("ok");
        assert_eq!(no_reference.occurred_at, None);
        assert_eq!(no_reference.host.as_deref(), Some("host"));
    }
}
