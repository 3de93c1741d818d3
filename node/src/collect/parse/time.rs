//! Timestamp parsing for the forms security logs use, without a clock.
//!
//! Sources disagree on the details (Suricata writes `+0000`, Windows writes nine fractional
//! digits, BSD syslog has no year), so this is a lenient ISO 8601 reader plus the BSD
//! `Mmm dd hh:mm:ss` form. Everything resolves to [`UnixMillis`]; instants before 1970 have
//! no [`UnixMillis`] and come back as `None`.

use custos_ledger::message::UnixMillis;

const MS_PER_DAY: i64 = 86_400_000;

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, which is exact for every year we can meet).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// The year of a Unix-millisecond instant (UTC).
pub(crate) fn year_of(at: UnixMillis) -> i64 {
    let days = i64::try_from(at.0 / 86_400_000).unwrap_or(i64::MAX / 2);
    // Inverse of days_from_civil, year part only.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400;
    if month <= 2 { year + 1 } else { year }
}

/// A calendar time with an offset from UTC, before conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
    pub offset_minutes: i64,
}

impl Civil {
    /// Milliseconds since the epoch, or `None` for invalid dates and pre-1970 instants.
    pub fn to_unix_millis(self) -> Option<UnixMillis> {
        if !(1..=12).contains(&self.month)
            || self.day == 0
            || self.day > days_in_month(self.year, self.month)
            || self.hour > 23
            || self.minute > 59
            // 60 admits a leap second, which lands on the next second's millisecond.
            || self.second > 60
            || !(0..=9999).contains(&self.year)
        {
            return None;
        }
        let ms = days_from_civil(self.year, self.month, self.day) * MS_PER_DAY
            + i64::from(self.hour) * 3_600_000
            + i64::from(self.minute) * 60_000
            + i64::from(self.second) * 1000
            + i64::from(self.millis)
            - self.offset_minutes * 60_000;
        u64::try_from(ms).ok().map(UnixMillis)
    }
}

/// A tiny cursor over ASCII bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Exactly `n` decimal digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        let mut value = 0u32;
        for &b in slice {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(b - b'0');
        }
        self.pos = end;
        Some(value)
    }

    /// One or two decimal digits (BSD syslog pads days with a space, not a zero).
    fn one_or_two_digits(&mut self) -> Option<u32> {
        let first = self.digits(1)?;
        match self.digits(1) {
            Some(second) => Some(first * 10 + second),
            None => Some(first),
        }
    }

    /// A fraction of a second after `.` or `,`: any number of digits, kept to milliseconds.
    fn fraction_millis(&mut self) -> u32 {
        if !(self.eat(b'.') || self.eat(b',')) {
            return 0;
        }
        let mut millis = 0u32;
        let mut taken = 0;
        while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
            if taken < 3 {
                millis = millis * 10 + u32::from(b - b'0');
                taken += 1;
            }
            self.pos += 1;
        }
        while taken < 3 {
            millis *= 10;
            taken += 1;
        }
        millis
    }

    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }
}

/// `hh:mm:ss[.fff]`.
fn clock(cursor: &mut Cursor<'_>) -> Option<(u32, u32, u32, u32)> {
    let hour = cursor.digits(2)?;
    cursor.eat(b':').then_some(())?;
    let minute = cursor.digits(2)?;
    cursor.eat(b':').then_some(())?;
    let second = cursor.digits(2)?;
    let millis = cursor.fraction_millis();
    Some((hour, minute, second, millis))
}

/// `Z`, `+hh:mm`, `+hhmm` or `+hh`; absent means UTC.
fn offset(cursor: &mut Cursor<'_>) -> Option<i64> {
    if cursor.eat(b'Z') || cursor.eat(b'z') {
        return Some(0);
    }
    let sign = if cursor.eat(b'+') {
        1
    } else if cursor.eat(b'-') {
        -1
    } else {
        return Some(0);
    };
    let hours = i64::from(cursor.digits(2)?);
    cursor.eat(b':');
    let minutes = cursor.digits(2).map(i64::from).unwrap_or(0);
    Some(sign * (hours * 60 + minutes))
}

/// Reads an ISO 8601 / RFC 3339 timestamp at the start of `text` and returns it with the
/// number of bytes it took. A missing offset is read as UTC, which is what Zeek, Suricata
/// and Windows write when they leave it out.
pub(crate) fn iso8601_prefix(text: &str) -> Option<(UnixMillis, usize)> {
    let mut cursor = Cursor::new(text);
    let year = cursor.digits(4)?;
    cursor.eat(b'-').then_some(())?;
    let month = cursor.digits(2)?;
    cursor.eat(b'-').then_some(())?;
    let day = cursor.digits(2)?;
    (cursor.eat(b'T') || cursor.eat(b't') || cursor.eat(b' ')).then_some(())?;
    let (hour, minute, second, millis) = clock(&mut cursor)?;
    let offset_minutes = offset(&mut cursor)?;
    let at = Civil {
        year: i64::from(year),
        month,
        day,
        hour,
        minute,
        second,
        millis,
        offset_minutes,
    }
    .to_unix_millis()?;
    Some((at, cursor.pos))
}

/// A whole string that is an ISO 8601 timestamp.
pub(crate) fn iso8601(text: &str) -> Option<UnixMillis> {
    let text = text.trim();
    iso8601_prefix(text).and_then(|(at, len)| (len == text.len()).then_some(at))
}

/// Seconds since the epoch with an optional fraction (Zeek `ts`), e.g. `1320279566.452687`.
pub(crate) fn epoch_seconds(text: &str) -> Option<UnixMillis> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || whole.len() > 12
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let seconds: u64 = whole.parse().ok()?;
    let mut millis = 0u64;
    for (i, b) in fraction.bytes().take(3).enumerate() {
        millis += u64::from(b - b'0') * 10u64.pow(2 - u32::try_from(i).unwrap_or(2));
    }
    Some(UnixMillis(seconds.checked_mul(1000)?.checked_add(millis)?))
}

/// A JSON number of seconds since the epoch.
pub(crate) fn epoch_seconds_f64(seconds: f64) -> Option<UnixMillis> {
    // 1e11 s is year 5138: anything larger is not a Zeek timestamp.
    if !seconds.is_finite() || !(0.0..1e11).contains(&seconds) {
        return None;
    }
    let millis = (seconds * 1000.0).round();
    // In range by the check above, so the cast is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(UnixMillis(millis as u64))
}

/// Milliseconds since the epoch as decimal digits (CEF `rt=1305034099211`).
pub(crate) fn epoch_millis(text: &str) -> Option<UnixMillis> {
    let text = text.trim();
    if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().map(UnixMillis)
}

fn month_number(name: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let lower: Vec<u8> = name.iter().map(u8::to_ascii_lowercase).collect();
    MONTHS
        .iter()
        .position(|m| m.as_slice() == lower.as_slice())
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// A BSD timestamp `Mmm dd [yyyy ]hh:mm:ss[.fff][ UTC]` at the start of `text`, with the
/// byte count it took. Without a year in the text the year comes from `reference`: the
/// latest year that does not put the event more than a day after the reference time
/// (a December line read in January belongs to last year), and for `Feb 29` the latest
/// leap year. Without either, the time cannot be placed and the result is `None`.
pub(crate) fn bsd_prefix(text: &str, reference: Option<UnixMillis>) -> Option<(UnixMillis, usize)> {
    let mut cursor = Cursor::new(text);
    let month = month_number(cursor.bytes.get(0..3)?)?;
    cursor.pos = 3;
    cursor.eat(b' ').then_some(())?;
    cursor.eat(b' ');
    let day = cursor.one_or_two_digits()?;
    cursor.eat(b' ').then_some(())?;
    let year = match cursor.digits(4) {
        Some(year) if cursor.eat(b' ') => Some(i64::from(year)),
        Some(_) => return None,
        None => None,
    };
    let (hour, minute, second, millis) = clock(&mut cursor)?;
    if cursor.rest().starts_with(b" UTC") {
        cursor.pos += 4;
    }
    let civil = |year| Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        millis,
        offset_minutes: 0,
    };
    let at = match year {
        Some(year) => civil(year).to_unix_millis()?,
        None => {
            let reference = reference?;
            let latest = reference.saturating_add_ms(u64::try_from(MS_PER_DAY).unwrap_or(0));
            let ref_year = year_of(reference);
            // Eight years back always reaches a leap year, even across 2100.
            (0..=8)
                .filter_map(|back| civil(ref_year - back).to_unix_millis())
                .find(|at| *at <= latest)?
        }
    };
    Some((at, cursor.pos))
}

/// The length of a BSD timestamp at the start of `text`, checked for shape only, so a line
/// with a valid timestamp but no year and no reference time is still recognised.
pub(crate) fn bsd_len(text: &str) -> Option<usize> {
    // 2000-02-29: every month and day (Feb 29 included) is valid in 2000 or 1999, and the
    // shape is all that is measured here; bsd_prefix picks the real year.
    const SHAPE_REFERENCE: UnixMillis = UnixMillis(951_782_400_000);
    bsd_prefix(text, Some(SHAPE_REFERENCE)).map(|(_, taken)| taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_forms_from_real_sources() {
        // Suricata: offset without colon.
        assert_eq!(
            iso8601("2022-02-08T16:32:20.491791+0000"),
            Some(UnixMillis(1_644_337_940_491))
        );
        assert_eq!(
            iso8601("2023-09-03T12:00:00.000000+0300"),
            Some(UnixMillis(1_693_731_600_000))
        );
        // Windows: nine fractional digits.
        assert_eq!(
            iso8601("2021-11-19T16:52:33.833733500Z"),
            Some(UnixMillis(1_637_340_753_833))
        );
        assert_eq!(
            iso8601("2016-10-25T12:37:23.297265-07:00"),
            Some(UnixMillis(1_477_424_243_297))
        );
        assert_eq!(iso8601("1969-12-31T23:59:59Z"), None);
        assert_eq!(iso8601("2021-02-29T00:00:00Z"), None);
        assert_eq!(iso8601("2021-02-28T00:00:00Zjunk"), None);
    }

    #[test]
    fn bsd_year_comes_from_reference() {
        let jan_2024 = iso8601("2024-01-02T00:00:00Z");
        // A December line read in early January belongs to the year before.
        let (at, len) = bsd_prefix("Dec 31 23:00:00 host", jan_2024).expect("parses");
        assert_eq!(Some(at), iso8601("2023-12-31T23:00:00Z"));
        assert_eq!(len, 15);
        let (at, _) = bsd_prefix("Jan  1 10:00:00 host", jan_2024).expect("parses");
        assert_eq!(Some(at), iso8601("2024-01-01T10:00:00Z"));
        // Feb 29 goes to the latest leap year.
        let (at, _) = bsd_prefix("Feb 29 10:00:00", iso8601("2023-06-01T00:00:00Z")).expect("leap");
        assert_eq!(Some(at), iso8601("2020-02-29T10:00:00Z"));
        assert_eq!(bsd_prefix("Jan  1 10:00:00", None), None);
        let (at, _) = bsd_prefix("May 02 2017 15:27:43.000 UTC host", None).expect("year given");
        assert_eq!(Some(at), iso8601("2017-05-02T15:27:43Z"));
        assert_eq!(bsd_prefix("MMM  1 10:00:00", jan_2024), None);
        assert_eq!(year_of(UnixMillis(0)), 1970);
        assert_eq!(
            year_of(iso8601("2024-12-31T23:59:59Z").expect("valid")),
            2024
        );
    }

    #[test]
    fn epoch_forms() {
        assert_eq!(
            epoch_seconds("1320279566.452687"),
            Some(UnixMillis(1_320_279_566_452))
        );
        assert_eq!(
            epoch_seconds("1320279566"),
            Some(UnixMillis(1_320_279_566_000))
        );
        assert_eq!(epoch_seconds("-1"), None);
        assert_eq!(
            epoch_seconds_f64(1320279566.452687),
            Some(UnixMillis(1_320_279_566_453))
        );
        assert_eq!(
            epoch_millis("1305034099211"),
            Some(UnixMillis(1_305_034_099_211))
        );
    }
}
