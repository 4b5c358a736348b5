//! Instants as milliseconds since the Unix epoch, written as RFC 3339 UTC
//! with milliseconds on the public API.

use time::OffsetDateTime;

/// A UTC instant with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current instant.
    pub fn now() -> Self {
        Self((OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64)
    }

    /// From milliseconds since the epoch.
    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Seconds since the epoch, rounded down.
    pub fn seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This instant moved by a number of seconds.
    pub fn plus_seconds(self, secs: i64) -> Self {
        Self(self.0 + secs * 1000)
    }

    /// `2026-11-27T17:05:54.123Z`. An instant outside the years RFC 3339
    /// can write (0000 to 9999) is written as the nearest end of them.
    pub fn to_rfc3339(self) -> String {
        // Written by hand into one buffer: pages of history write thousands.
        let ms = self.0.clamp(FIRST_WRITABLE_MS, LAST_WRITABLE_MS);
        let dt = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut value: u32| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, dt.year().unsigned_abs());
        put(5, 2, u32::from(u8::from(dt.month())));
        put(8, 2, u32::from(dt.day()));
        put(11, 2, u32::from(dt.hour()));
        put(14, 2, u32::from(dt.minute()));
        put(17, 2, u32::from(dt.second()));
        put(20, 3, ms.rem_euclid(1000) as u32);
        out.iter().map(|&b| char::from(b)).collect()
    }
}

/// `0000-01-01T00:00:00.000Z`, the first instant RFC 3339 can write.
const FIRST_WRITABLE_MS: i64 = -62_167_219_200_000;
/// `9999-12-31T23:59:59.999Z`, the last.
const LAST_WRITABLE_MS: i64 = 253_402_300_799_999;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_in_utc() {
        let t = Timestamp::from_millis(1_795_799_154_123);
        assert_eq!(t.to_rfc3339(), "2026-11-27T17:05:54.123Z");
        assert_eq!(Timestamp::from_millis(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::from_millis(-1).to_rfc3339(), "1969-12-31T23:59:59.999Z");
        assert_eq!(Timestamp::from_millis(951_782_400_000).to_rfc3339(), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn instants_past_the_writable_years_are_written_as_their_ends() {
        assert_eq!(Timestamp::from_millis(i64::MAX).to_rfc3339(), "9999-12-31T23:59:59.999Z");
        assert_eq!(Timestamp::from_millis(i64::MIN).to_rfc3339(), "0000-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::from_millis(LAST_WRITABLE_MS).to_rfc3339(), "9999-12-31T23:59:59.999Z");
        assert_eq!(Timestamp::from_millis(FIRST_WRITABLE_MS).to_rfc3339(), "0000-01-01T00:00:00.000Z");
    }

    #[test]
    fn agrees_with_the_time_crates_rfc3339_across_the_years() {
        use time::format_description::well_known::Rfc3339;
        // A spread of instants from year 0 to 9999, with every millisecond digit.
        let span = LAST_WRITABLE_MS - FIRST_WRITABLE_MS;
        for i in 0..20_000_i64 {
            let ms = FIRST_WRITABLE_MS + (span / 20_000) * i + i % 1000;
            let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
            let written = Timestamp::from_millis(ms).to_rfc3339();
            assert_eq!(OffsetDateTime::parse(&written, &Rfc3339).unwrap(), dt, "{written}");
            assert_eq!(written.len(), 24, "{written}");
        }
    }
}
