//! Every failure leaves the gateway as the contract's JSON error body.

use axum::response::{IntoResponse, Response};
use chatterbox_errors::{Error, http_parts};

/// An [`Error`] as an HTTP response.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        Self(Error::from(status))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = http_parts(&self.0);
        let mut response = (status, [(http::header::CONTENT_TYPE, "application/json")], body).into_response();
        if let Some(secs) = self.0.retry_after_secs() {
            response.headers_mut().insert(http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// What handlers return.
pub type ApiResult<T> = Result<T, ApiError>;

/// Unknown paths.
pub async fn not_found() -> ApiError {
    ApiError(Error::not_found("no such endpoint"))
}

/// Known paths with the wrong method. The contract has no code for 405,
/// so the body says `invalid_argument` while the status stays 405.
pub async fn method_not_allowed() -> Response {
    let mut response = ApiError(Error::invalid("method not allowed on this endpoint")).into_response();
    *response.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
    response
}
