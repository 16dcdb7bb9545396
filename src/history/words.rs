//! How times, durations and shares read in a history answer.

/// `2 h 24 m`, `45 m`, `30 s`.
pub fn duration(secs: u64) -> String {
    let (h, m) = (secs / 3600, (secs % 3600) / 60);
    match (h, m) {
        (0, 0) => format!("{secs} s"),
        (0, m) => format!("{m} m"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} m"),
    }
}

/// A unix second as RFC 3339 UTC.
pub fn rfc3339(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// A unix second as a person reads it within a window: `14:02` in a window of a day or less,
/// `03-14 14:02` in a longer one (UTC).
pub fn clock(t: i64, long_window: bool) -> String {
    let fmt = if long_window { "%m-%d %H:%M" } else { "%H:%M" };
    jiff::Timestamp::from_second(t)
        .map(|ts| ts.strftime(fmt).to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// A share as a whole percent, `<1%` where it is above zero but rounds to none.
pub fn pct(fraction: f64) -> String {
    let p = (fraction * 100.0).round();
    if p == 0.0 && fraction > 0.0 {
        "<1%".into()
    } else {
        format!("{p:.0}%")
    }
}

/// The window's length: `6 h`, `90 m`, `7 d`.
pub fn window(secs: i64) -> String {
    let secs = secs.max(0) as u64;
    if secs >= 2 * 86_400 && secs.is_multiple_of(86_400) {
        format!("{} d", secs / 86_400)
    } else {
        duration(secs)
    }
}

/// A count without a trailing `.0`.
pub fn count(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_shares_read_short() {
        assert_eq!(duration(30), "30 s");
        assert_eq!(duration(45 * 60), "45 m");
        assert_eq!(duration(2 * 3600 + 24 * 60), "2 h 24 m");
        assert_eq!(duration(6 * 3600), "6 h");
        assert_eq!(window(7 * 86_400), "7 d");
        assert_eq!(pct(0.004), "<1%");
        assert_eq!(pct(0.4), "40%");
        assert_eq!(pct(0.0), "0%");
        assert_eq!(clock(1_800_000_000, false), "08:00");
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
    }
}
