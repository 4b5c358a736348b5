//! Instants as milliseconds since the Unix epoch, written as RFC 3339 UTC
//! with milliseconds on the public API.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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

    /// `2026-11-27T17:05:54.123Z`.
    pub fn to_rfc3339(self) -> String {
        let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let base = dt.replace_nanosecond(0).ok().and_then(|d| d.format(&Rfc3339).ok()).unwrap_or_default();
        // `base` ends in `Z`; put the milliseconds before it.
        let stem = base.trim_end_matches('Z');
        format!("{stem}.{:03}Z", self.0.rem_euclid(1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_in_utc() {
        let t = Timestamp::from_millis(1_795_799_154_123);
        assert_eq!(t.to_rfc3339(), "2026-11-27T17:05:54.123Z");
        assert_eq!(Timestamp::from_millis(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
    }
}
