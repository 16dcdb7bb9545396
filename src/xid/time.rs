//! Civil-date arithmetic for kernel-log timestamps (proleptic Gregorian, UTC). The library reads no
//! clock: "now" and the boot time come from the facts.

/// Days since 1970-01-01 for a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Unix seconds for a UTC civil date and time.
pub fn unix_from_civil(year: i64, month: u32, day: u32, h: u32, m: u32, s: u32) -> i64 {
    days_from_civil(year, month, day) * 86_400
        + i64::from(h) * 3600
        + i64::from(m) * 60
        + i64::from(s)
}

/// The year (UTC) of a unix time.
pub fn year_of(unix: f64) -> i64 {
    civil_from_days((unix.floor() as i64).div_euclid(86_400)).0
}

/// `1 -> Jan`, as syslog prints months.
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
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, (sod % 3600) / 60, sod % 60);
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
    fn round_trips_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        for d in (-800_000..800_000).step_by(997) {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(unix_from_civil(2026, 11, 21, 11, 19, 17), 1_795_259_957);
        assert_eq!(year_of(1_795_259_957.0), 2026);
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0.0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_795_259_957.25).unwrap(),
            "2026-11-21T11:19:17.250000Z"
        );
        assert_eq!(rfc3339(-1.0).unwrap(), "1969-12-31T23:59:59Z");
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
