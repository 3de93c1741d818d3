//! Each source's severity scale mapped onto [`SeverityLevel`].
//!
//! The mappings are judgement calls recorded here once; the original value and its scale
//! always travel with the level, so a reader who disagrees can re-map.

use custos_ledger::message::{SeverityLevel, SeverityScale};

type Mapped = (SeverityLevel, String, SeverityScale);

/// Syslog severity 0 (emergency) to 7 (debug): emergency, alert and critical are
/// critical; error high; warning medium; notice low; informational and debug info.
pub(crate) fn syslog(code: u8) -> Option<Mapped> {
    let level = match code {
        0..=2 => SeverityLevel::Critical,
        3 => SeverityLevel::High,
        4 => SeverityLevel::Medium,
        5 => SeverityLevel::Low,
        6 | 7 => SeverityLevel::Info,
        _ => return None,
    };
    Some((level, code.to_string(), SeverityScale::Syslog))
}

/// A syslog severity keyword as some file formats write it (`ERR`, `WARNING`, `<Info>`).
pub(crate) fn syslog_keyword(word: &str) -> Option<Mapped> {
    let code = match word.to_ascii_lowercase().as_str() {
        "emerg" | "emergency" | "panic" => 0,
        "alert" => 1,
        "crit" | "critical" => 2,
        "err" | "error" => 3,
        "warn" | "warning" => 4,
        "notice" => 5,
        "info" | "informational" => 6,
        "debug" => 7,
        _ => return None,
    };
    let (level, _, scale) = syslog(code)?;
    Some((level, word.to_owned(), scale))
}

/// Suricata alert severity 1 (worst) to 4. Severity 1 also covers noisy reputation rules
/// (ET DROP, ET CINS), so it maps to high rather than critical.
pub(crate) fn suricata(value: i64) -> Option<Mapped> {
    let level = match value {
        1 => SeverityLevel::High,
        2 => SeverityLevel::Medium,
        3 => SeverityLevel::Low,
        v if v >= 4 => SeverityLevel::Info,
        _ => return None,
    };
    Some((level, value.to_string(), SeverityScale::Suricata))
}

/// CEF severity: 0 to 10 (the CEF spec's bands 0-3 low, 4-6 medium, 7-8 high, 9-10 very
/// high, with 0 as info) or the words Unknown, Low, Medium, High, Very-High.
pub(crate) fn cef(value: &str) -> Option<Mapped> {
    let trimmed = value.trim();
    let level = match trimmed.parse::<u8>() {
        Ok(0) => SeverityLevel::Info,
        Ok(1..=3) => SeverityLevel::Low,
        Ok(4..=6) => SeverityLevel::Medium,
        Ok(7 | 8) => SeverityLevel::High,
        Ok(9 | 10) => SeverityLevel::Critical,
        Ok(_) => return None,
        Err(_) => match trimmed.to_ascii_lowercase().as_str() {
            "low" => SeverityLevel::Low,
            "medium" => SeverityLevel::Medium,
            "high" => SeverityLevel::High,
            "very-high" | "very high" => SeverityLevel::Critical,
            _ => return None,
        },
    };
    Some((level, trimmed.to_owned(), SeverityScale::Cef))
}

/// Wazuh/OSSEC rule level 0 to 15, after the Wazuh rule classification: 0-3 ignored,
/// system or success events; 4-6 low-priority errors and low-relevance attacks; 7-9
/// "bad word" matches, first-time events, errors from invalid sources; 10-11 multiple
/// errors, integrity warnings; 12-15 high-importance events and severe attacks.
pub(crate) fn wazuh(value: i64) -> Option<Mapped> {
    let level = match value {
        0..=3 => SeverityLevel::Info,
        4..=6 => SeverityLevel::Low,
        7..=9 => SeverityLevel::Medium,
        10 | 11 => SeverityLevel::High,
        12..=15 => SeverityLevel::Critical,
        _ => return None,
    };
    Some((level, value.to_string(), SeverityScale::Wazuh))
}

/// Windows event level: 1 critical, 2 error, 3 warning, 4 information, 5 verbose, and 0
/// "log always" (used by the Security channel for audit events, which carry no level).
pub(crate) fn windows(value: i64) -> Option<Mapped> {
    let level = match value {
        1 => SeverityLevel::Critical,
        2 => SeverityLevel::High,
        3 => SeverityLevel::Medium,
        0 | 4 | 5 => SeverityLevel::Info,
        _ => return None,
    };
    Some((level, value.to_string(), SeverityScale::Windows))
}

/// ECS `event.severity` has no fixed meaning; Elastic's own detection rules write their
/// risk bands there (low 21, medium 47, high 73, critical 99), so the bands of that scale
/// are used: 0 info, 1-21 low, 22-47 medium, 48-73 high, above 73 critical.
pub(crate) fn ecs(value: i64) -> Option<Mapped> {
    let level = match value {
        0 => SeverityLevel::Info,
        1..=21 => SeverityLevel::Low,
        22..=47 => SeverityLevel::Medium,
        48..=73 => SeverityLevel::High,
        v if v > 73 => SeverityLevel::Critical,
        _ => return None,
    };
    Some((level, value.to_string(), SeverityScale::Ecs))
}

/// A named level such as `high` or `Very-High`, from any source.
pub(crate) fn named(word: &str) -> Option<Mapped> {
    let trimmed = word.trim();
    let level = match trimmed.to_ascii_lowercase().as_str() {
        "critical" | "very-high" | "very high" | "severe" | "emergency" | "fatal" => {
            SeverityLevel::Critical
        }
        "high" | "error" | "err" => SeverityLevel::High,
        "medium" | "moderate" | "warning" | "warn" => SeverityLevel::Medium,
        "low" | "notice" => SeverityLevel::Low,
        "info" | "informational" | "information" | "debug" | "trace" | "none" | "undefined" => {
            SeverityLevel::Info
        }
        _ => return None,
    };
    Some((level, trimmed.to_owned(), SeverityScale::Named))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_run_in_the_right_direction() {
        assert_eq!(syslog(0).map(|s| s.0), Some(SeverityLevel::Critical));
        assert_eq!(syslog(7).map(|s| s.0), Some(SeverityLevel::Info));
        assert_eq!(syslog(8), None);
        assert_eq!(suricata(1).map(|s| s.0), Some(SeverityLevel::High));
        assert_eq!(suricata(3).map(|s| s.0), Some(SeverityLevel::Low));
        assert_eq!(suricata(0), None);
        assert_eq!(cef("10").map(|s| s.0), Some(SeverityLevel::Critical));
        assert_eq!(cef("Very-High").map(|s| s.0), Some(SeverityLevel::Critical));
        assert_eq!(cef("0").map(|s| s.0), Some(SeverityLevel::Info));
        assert_eq!(cef("11"), None);
        assert_eq!(wazuh(15).map(|s| s.0), Some(SeverityLevel::Critical));
        assert_eq!(wazuh(3).map(|s| s.0), Some(SeverityLevel::Info));
        assert_eq!(wazuh(16), None);
        assert_eq!(windows(1).map(|s| s.0), Some(SeverityLevel::Critical));
        assert_eq!(windows(4).map(|s| s.0), Some(SeverityLevel::Info));
        assert_eq!(ecs(99).map(|s| s.0), Some(SeverityLevel::Critical));
        assert_eq!(ecs(-1), None);
        assert_eq!(named("HIGH").map(|s| s.1), Some("HIGH".to_owned()));
        assert_eq!(
            syslog_keyword("WARNING").map(|s| s.0),
            Some(SeverityLevel::Medium)
        );
    }
}
