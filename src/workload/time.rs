//! Times as the sources write them (RFC 3339 from the API server, the ranks' logs and the XID report),
//! ordered as instants: an offset other than `Z` or a finer precision must not change which came first.

use std::cmp::Ordering;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// Where a time sorts: instants in order, then what could not be read as one, then no time at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimeOrder<'a> {
    /// An instant; the text breaks ties so that the order is total.
    At(Timestamp, &'a str),
    /// Not a time: ordered as text, after every time.
    Unreadable(&'a str),
    Unknown,
}

/// The order key of an RFC 3339 time. A date and time without an offset (no source writes one, but a log
/// line may) is read as UTC, as comparing the text did before.
pub(super) fn time_order(t: Option<&str>) -> TimeOrder<'_> {
    let Some(t) = t else {
        return TimeOrder::Unknown;
    };
    let instant = t.parse::<Timestamp>().ok().or_else(|| {
        let civil: DateTime = t.get(..19)?.parse().ok()?;
        civil.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
    });
    match instant {
        Some(at) => TimeOrder::At(at, t),
        None => TimeOrder::Unreadable(t),
    }
}

/// `a` against `b` as times (see [`time_order`]).
pub(super) fn cmp_times(a: Option<&str>, b: Option<&str>) -> Ordering {
    time_order(a).cmp(&time_order(b))
}

/// The earliest of some times, as times.
pub(super) fn earliest<'a>(times: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    times.into_iter().min_by_key(|t| time_order(Some(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_is_read_as_the_instant_it_names() {
        // 10:00 at +02:00 is 08:00 UTC: before 09:00Z, though its text sorts after.
        assert_eq!(
            cmp_times(
                Some("2026-01-01T10:00:00+02:00"),
                Some("2026-01-01T09:00:00Z")
            ),
            Ordering::Less
        );
        assert_eq!(
            earliest(["2026-01-01T09:00:00Z", "2026-01-01T10:00:00+02:00"]),
            Some("2026-01-01T10:00:00+02:00")
        );
    }

    #[test]
    fn fractional_seconds_order_within_the_second() {
        let t = |s| time_order(Some(s));
        assert!(t("2026-11-22T10:10:00Z") < t("2026-11-22T10:10:00.000000001Z"));
        assert!(t("2026-11-22T10:10:00.25Z") < t("2026-11-22T10:10:00.5Z"));
        assert!(t("2026-11-22T10:10:00.999999999Z") < t("2026-11-22T10:10:01Z"));
        // The same instant at another precision is the same time.
        let (TimeOrder::At(a, _), TimeOrder::At(b, _)) =
            (t("2026-11-22T10:10:00.5Z"), t("2026-11-22T10:10:00.500Z"))
        else {
            panic!("both are times")
        };
        assert_eq!(a, b);
    }

    #[test]
    fn an_unreadable_time_sorts_after_every_time_and_before_none() {
        let t = |s| time_order(Some(s));
        assert!(matches!(t("yesterday"), TimeOrder::Unreadable(_)));
        assert!(t("2026-11-22T10:10:00Z") < t("yesterday"));
        assert!(t("yesterday") < time_order(None));
        assert!(t("tomorrow") > t("later"));
        // Without an offset: read as UTC, as the text comparison did.
        assert!(t("2026-11-22T10:10:00") < t("2026-11-22T10:10:01Z"));
        assert!(t("2026-11-22T10:10:00") > t("2026-11-22T10:09:59Z"));
        assert_eq!(
            earliest(["yesterday", "2026-11-22T10:10:00Z"]),
            Some("2026-11-22T10:10:00Z")
        );
        assert_eq!(earliest([]), None);
    }
}
