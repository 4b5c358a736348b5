//! Request ids: each request gets an `x-request-id` (kept if a trusted edge
//! set one), echoed on the response and recorded on the request's span.

use http::Request;
use tower_http::request_id::{MakeRequestId, RequestId};

/// Makes ULID request ids: unique, and sortable by time in logs.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeUlidRequestId;

impl MakeRequestId for MakeUlidRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        ulid::Ulid::new().to_string().parse().ok().map(RequestId::new)
    }
}
