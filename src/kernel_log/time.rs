//! Calendar conversions for kernel-log timestamps, in UTC, done by `jiff` (the launcher's date library):
//! a civil date and time to unix seconds, the year of a unix time, and RFC 3339 for the report. The
//! library reads no clock: "now" and the boot time come from the facts. Only syslog's month names are
//! read here (jiff reads them only through a format string, which would cost the line loop a parse).

use jiff::SignedDuration;
use jiff::civil::{self, DateTime};

/// Unix time zero as a civil time in UTC. Arithmetic is on civil times (years -9999..=9999) rather than
/// `jiff::Timestamp`, whose range stops a day short of 9999-12-31 to leave room for any offset.
const UNIX_EPOCH: DateTime = civil::datetime(1970, 1, 1, 0, 0, 0, 0);

/// Unix seconds for a UTC civil date and time. None for a date that does not exist (`Nov 31`, `Feb 29`
/// of a common year) or a year outside -9999..=9999. A leap second (`:60`) is the next minute's first
/// second, as POSIX time counts it.
pub fn unix_from_civil(year: i64, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<i64> {
    let leap = s == 60;
    let s = if leap { 59 } else { s };
    let narrow = |v: u32| i8::try_from(v).ok();
    let dt = DateTime::new(
        i16::try_from(year).ok()?,
        narrow(month)?,
        narrow(day)?,
        narrow(h)?,
        narrow(m)?,
        narrow(s)?,
        0,
    )
    .ok()?;
    Some(dt.duration_since(UNIX_EPOCH).as_secs() + i64::from(leap))
}

/// The UTC civil time of a unix time in microseconds; None outside years -9999..=9999.
fn civil_from_micros(micros: i64) -> Option<DateTime> {
    UNIX_EPOCH
        .checked_add(SignedDuration::from_micros(micros))
        .ok()
}

/// The year (UTC) of a unix time; None outside years -9999..=9999.
pub fn year_of(unix: f64) -> Option<i64> {
    if !unix.is_finite() || unix.abs() > 1e15 {
        return None;
    }
    let t = civil_from_micros((unix.floor() as i64).checked_mul(1_000_000)?)?;
    Some(i64::from(t.year()))
}

/// `Jan -> 1`, as syslog prints months.
pub fn month_from_abbrev(s: &str) -> Option<u32> {
    const M: &[&str] = &[
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    M.iter().position(|m| *m == s).map(|i| i as u32 + 1)
}

/// RFC 3339 in UTC: `2026-11-21T10:00:05Z`, with microseconds when the time has a fraction.
/// None for values outside years 0..=9999 or non-finite input.
pub fn rfc3339(unix: f64) -> Option<String> {
    if !unix.is_finite() || !(-62_167_219_200.0..=253_402_300_799.0).contains(&unix) {
        return None;
    }
    let micros = (unix * 1e6).round() as i64;
    let frac = micros.rem_euclid(1_000_000);
    let t = civil_from_micros(micros)?;
    let (y, mo, d) = (t.year(), t.month(), t.day());
    let (h, mi, s) = (t.hour(), t.minute(), t.second());
    Some(if frac == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:06}Z")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(unix_from_civil(1970, 1, 1, 0, 0, 0), Some(0));
        assert_eq!(unix_from_civil(2000, 3, 1, 0, 0, 0), Some(11_017 * 86_400));
        assert_eq!(unix_from_civil(2000, 2, 29, 0, 0, 0), Some(11_016 * 86_400));
        assert_eq!(
            unix_from_civil(2026, 11, 21, 11, 19, 17),
            Some(1_795_259_957)
        );
        assert_eq!(year_of(1_795_259_957.0), Some(2026));
        assert_eq!(year_of(-0.5), Some(1969));
        assert_eq!(year_of(f64::NAN), None);
        assert_eq!(year_of(1e300), None);
    }

    /// Where the hand-rolled civil arithmetic this replaced (Howard Hinnant's days-from-civil) answered
    /// differently: it rolled impossible dates over (`Nov 31` was Dec 1) and took any year; a timestamp
    /// that names no real time is now no timestamp. A leap second still counts as before.
    #[test]
    fn impossible_dates_are_no_time() {
        assert_eq!(unix_from_civil(2026, 11, 31, 0, 0, 0), None);
        assert_eq!(unix_from_civil(2026, 2, 29, 0, 0, 0), None);
        assert_eq!(unix_from_civil(99_999, 1, 1, 0, 0, 0), None);
        assert_eq!(unix_from_civil(2026, 13, 1, 0, 0, 0), None);
        assert_eq!(
            unix_from_civil(2026, 12, 31, 23, 59, 60),
            unix_from_civil(2027, 1, 1, 0, 0, 0)
        );
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0.0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_795_259_957.25).unwrap(),
            "2026-11-21T11:19:17.250000Z"
        );
        assert_eq!(rfc3339(-1.0).unwrap(), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(-0.5).unwrap(), "1969-12-31T23:59:59.500000Z");
        assert_eq!(rfc3339(-62_167_219_200.0).unwrap(), "0000-01-01T00:00:00Z");
        assert_eq!(rfc3339(253_402_300_799.0).unwrap(), "9999-12-31T23:59:59Z");
        // The journal's microseconds, as node-probe divides them.
        assert_eq!(
            rfc3339(1_795_259_957_123_456.0 / 1e6).unwrap(),
            "2026-11-21T11:19:17.123456Z"
        );
        assert!(rfc3339(f64::NAN).is_none());
        assert!(rfc3339(1e300).is_none());
    }

    #[test]
    fn months() {
        assert_eq!(month_from_abbrev("Jan"), Some(1));
        assert_eq!(month_from_abbrev("Dec"), Some(12));
        assert_eq!(month_from_abbrev("jan"), None);
    }
}
