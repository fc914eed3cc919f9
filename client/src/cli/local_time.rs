//! Times as people read them: in their own time zone, not UTC.
//!
//! The zone is the system's, as jiff finds it: the `TZ` variable (a zone name such as
//! `Asia/Urumqi`, a path, or a POSIX rule such as `CST-8`), else `/etc/localtime`, with the
//! system's time zone database; UTC if none can be read. Only the zone's rules are used: the
//! time stamped on a message is always UTC milliseconds, so a traveller's history is shown in
//! the zone they are in now.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// How a time is written: date and minutes.
const FORMAT: &str = "%Y-%m-%d %H:%M";

/// `YYYY-MM-DD HH:MM` of `ms` (milliseconds since the epoch) in the system's time zone.
pub fn format_local(ms: u64) -> String {
    format_in(ms, &TimeZone::system())
}

/// `YYYY-MM-DD HH:MM` of `ms` in `tz`. A time past what jiff represents (the end of year
/// 9999, as a clock ahead of UTC shows it) is written as that latest time.
pub fn format_in(ms: u64, tz: &TimeZone) -> String {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    let at = Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX);
    at.to_zoned(tz.clone()).strftime(FORMAT).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// 2026-11-23 09:15 UTC.
    const T0: u64 = 1_795_425_300_000;

    #[test]
    fn times_follow_the_zone_given() {
        assert_eq!(format_in(T0, &TimeZone::UTC), "2026-11-23 09:15");
        // China (UTC+8, no summer time), as a POSIX rule and as a fixed offset.
        assert_eq!(format_in(T0, &TimeZone::posix("CST-8").unwrap()), "2026-11-23 17:15");
        assert_eq!(format_in(T0, &TimeZone::fixed(jiff::tz::offset(8))), "2026-11-23 17:15");
        // West of UTC the date goes back: 09:15 UTC is 20:15 the day before in Niue (UTC-11).
        assert_eq!(format_in(T0 - 9 * 3_600_000, &TimeZone::posix("NUT11").unwrap()), "2026-11-22 13:15");
        // Half-hour offsets (India).
        assert_eq!(format_in(T0, &TimeZone::posix("IST-5:30").unwrap()), "2026-11-23 14:45");
        // Summer time: New York is UTC-5 in November and UTC-4 in July.
        let ny = TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap();
        assert_eq!(format_in(T0, &ny), "2026-11-23 04:15");
        let july = T0 - 140 * 86_400_000;
        assert_eq!(format_in(july, &ny), "2026-07-06 05:15");
        // Out of range: no panic.
        assert_eq!(format_in(u64::MAX, &TimeZone::UTC), "9999-12-30 22:00");
        assert_eq!(format_in(u64::MAX, &TimeZone::posix("CST-8").unwrap()), "9999-12-31 06:00");
        assert_eq!(format_in(0, &TimeZone::UTC), "1970-01-01 00:00");
    }

    #[test]
    fn a_named_zone_comes_from_the_system_database() {
        // The database is the system's (Debian: tzdata, installed by scripts/setup).
        let tz = TimeZone::get("Asia/Urumqi").unwrap();
        assert_eq!(format_in(T0, &tz), "2026-11-23 15:15");
    }
}
