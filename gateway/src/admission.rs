//! Load shedding for sends: past a number of sends in progress on this
//! gateway, a new one is refused at once (`unavailable`, with a retry hint:
//! 503 and `Retry-After` over HTTP, `retry_after_ms` on the WebSocket)
//! instead of joining a queue that only grows. Past capacity the suite then
//! keeps acknowledging at about its peak with bounded latency, and clients
//! back off, rather than every send waiting seconds.
//!
//! The bound is on sends in flight, the queue the suite builds up when it
//! is saturated (by Little's law, in flight = throughput × latency): at a
//! peak of a few thousand sends per second, the default of 256 holds a
//! send's wait under about a tenth of a second.

use std::sync::Arc;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use chatterbox_errors::{Code, Error};
use http::HeaderValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// How long a refused client is told to wait.
pub(crate) const RETRY_AFTER: Duration = Duration::from_millis(250);

/// The sends this gateway lets run at once.
#[derive(Debug, Clone)]
pub struct SendAdmission {
    /// `None`: no bound.
    permits: Option<Arc<Semaphore>>,
}

/// A send let in; it counts until dropped.
#[derive(Debug)]
pub(crate) struct Admitted {
    _permit: Option<OwnedSemaphorePermit>,
}

impl SendAdmission {
    /// At most `limit` sends at once; 0 lets every send in.
    pub fn new(limit: usize) -> Self {
        Self { permits: (limit > 0).then(|| Arc::new(Semaphore::new(limit))) }
    }

    /// Lets a send in, or refuses it because too many are in progress.
    pub(crate) fn admit(&self) -> Result<Admitted, Overloaded> {
        let Some(permits) = &self.permits else { return Ok(Admitted { _permit: None }) };
        match permits.clone().try_acquire_owned() {
            Ok(permit) => Ok(Admitted { _permit: Some(permit) }),
            Err(_) => {
                metrics::counter!("gateway_sends_shed_total").increment(1);
                Err(Overloaded)
            }
        }
    }
}

/// A send refused for load.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Overloaded;

impl Overloaded {
    /// The error clients see.
    pub(crate) fn error(self) -> Error {
        Error::new(Code::Unavailable, "the server is busy: retry the send shortly (same client_id)")
    }

    /// The retry hint in milliseconds.
    pub(crate) fn retry_after_ms(self) -> u64 {
        RETRY_AFTER.as_millis().try_into().unwrap_or(u64::MAX)
    }
}

impl IntoResponse for Overloaded {
    /// 503 with the JSON error body and `Retry-After` (whole seconds, at least 1).
    fn into_response(self) -> Response {
        let mut response = ApiError(self.error()).into_response();
        let seconds = RETRY_AFTER.as_secs_f64().ceil().max(1.0) as u64;
        response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_past_the_bound_are_refused_until_one_ends() {
        let sends = SendAdmission::new(2);
        let first = sends.admit().unwrap();
        let _second = sends.admit().unwrap();
        assert!(sends.admit().is_err());
        drop(first);
        assert!(sends.admit().is_ok());
    }

    #[test]
    fn no_bound_lets_everything_in() {
        let sends = SendAdmission::new(0);
        let held: Vec<_> = (0..10_000).map(|_| sends.admit().unwrap()).collect();
        assert_eq!(held.len(), 10_000);
    }

    #[test]
    fn a_refusal_is_503_with_a_retry_hint() {
        let response = Overloaded.into_response();
        assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "1");
        assert_eq!(Overloaded.retry_after_ms(), 250);
    }
}
