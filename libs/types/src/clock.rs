//! Where "now" comes from: the system's clock in every process, a clock
//! moved by hand in tests of expiry (so they do not sleep until it comes).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::Timestamp;

/// A source of the current instant.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The system's clock, shared.
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// A clock that stands still until moved (clones share it): tests move it
/// past an expiry instead of waiting for it.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// Stopped at the system's current instant.
    pub fn starting_now() -> Self {
        Self::at(Timestamp::now())
    }

    /// Stopped at `instant`.
    pub fn at(instant: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(instant.millis())))
    }

    /// Moves it forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::starting_now();
        let start = clock.now();
        let shared = clock.clone();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(shared.now(), start, "it stands still");
        clock.advance(Duration::from_secs(2));
        assert_eq!(shared.now().millis() - start.millis(), 2000);
        assert!(SystemClock.now() >= start);
    }
}
