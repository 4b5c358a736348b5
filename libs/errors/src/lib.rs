//! One error table for both protocols.
//!
//! Every expected failure is an [`Error`] with a [`Code`]; the table in
//! [`Code`] says what it becomes on gRPC and on HTTP, so the gateway and the
//! services can never disagree. Unexpected failures keep their cause for the
//! log and show only a generic message to the caller.

use std::fmt;

use serde::Serialize;

/// The gRPC metadata key carrying the exact API code across a hop, since
/// several API codes share one gRPC code.
pub const CODE_METADATA_KEY: &str = "chatterbox-error-code";

/// The gRPC metadata key carrying a refusal's `Retry-After` (whole seconds).
pub const RETRY_AFTER_METADATA_KEY: &str = "chatterbox-retry-after";

/// The public error codes of the API (`api.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// 400: the request is malformed or a value breaks a rule.
    InvalidArgument,
    /// 401: no valid credentials.
    Unauthenticated,
    /// 403: authenticated but not allowed.
    PermissionDenied,
    /// 404: absent, or not visible to the caller.
    NotFound,
    /// 409: a unique value is taken.
    AlreadyExists,
    /// 413: the body is over the cap.
    PayloadTooLarge,
    /// 415: the content type is not accepted.
    UnsupportedMediaType,
    /// 429: too many requests.
    RateLimited,
    /// 500: a bug or an unexpected failure.
    Internal,
    /// 503: a backend is unreachable.
    Unavailable,
}

/// One row of the table: the API code's name, its HTTP status and gRPC code.
struct Row {
    name: &'static str,
    http: u16,
    grpc: tonic::Code,
}

impl Code {
    /// Every code, for reverse lookups and tests.
    pub const ALL: [Code; 10] = [
        Code::InvalidArgument,
        Code::Unauthenticated,
        Code::PermissionDenied,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PayloadTooLarge,
        Code::UnsupportedMediaType,
        Code::RateLimited,
        Code::Internal,
        Code::Unavailable,
    ];

    fn row(self) -> Row {
        use tonic::Code as G;
        let (name, http, grpc) = match self {
            Code::InvalidArgument => ("invalid_argument", 400, G::InvalidArgument),
            Code::Unauthenticated => ("unauthenticated", 401, G::Unauthenticated),
            Code::PermissionDenied => ("permission_denied", 403, G::PermissionDenied),
            Code::NotFound => ("not_found", 404, G::NotFound),
            Code::AlreadyExists => ("already_exists", 409, G::AlreadyExists),
            Code::PayloadTooLarge => ("payload_too_large", 413, G::OutOfRange),
            Code::UnsupportedMediaType => ("unsupported_media_type", 415, G::InvalidArgument),
            Code::RateLimited => ("rate_limited", 429, G::ResourceExhausted),
            Code::Internal => ("internal", 500, G::Internal),
            Code::Unavailable => ("unavailable", 503, G::Unavailable),
        };
        Row { name, http, grpc }
    }

    /// The code's name in the JSON error body.
    pub fn as_str(self) -> &'static str {
        self.row().name
    }

    /// The HTTP status it answers with.
    pub fn http_status(self) -> http::StatusCode {
        http::StatusCode::from_u16(self.row().http).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The gRPC code it travels as.
    pub fn grpc_code(self) -> tonic::Code {
        self.row().grpc
    }

    /// Looks a code up by its API name.
    pub fn from_name(name: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The API code for a gRPC code that came without our metadata (for
    /// example from the transport itself).
    pub fn from_grpc(code: tonic::Code) -> Code {
        use tonic::Code as G;
        match code {
            G::InvalidArgument | G::FailedPrecondition => Code::InvalidArgument,
            G::Unauthenticated => Code::Unauthenticated,
            G::PermissionDenied => Code::PermissionDenied,
            G::NotFound => Code::NotFound,
            G::AlreadyExists | G::Aborted => Code::AlreadyExists,
            G::OutOfRange => Code::PayloadTooLarge,
            G::ResourceExhausted => Code::RateLimited,
            G::Unavailable | G::DeadlineExceeded | G::Cancelled => Code::Unavailable,
            _ => Code::Internal,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure with a public code and message, and (for unexpected failures)
/// the private cause that goes to the log only.
#[derive(Debug)]
pub struct Error {
    code: Code,
    message: String,
    cause: Option<anyhow::Error>,
    /// For a refusal that passes with time: seconds until trying again
    /// (four bytes: errors travel by value through every call).
    retry_after: Option<std::num::NonZeroU32>,
}

/// The result type used across services.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An expected failure with a caller-facing message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), cause: None, retry_after: None }
    }

    /// 429 with a message and when to try again (`Retry-After`).
    pub fn rate_limited(message: impl Into<String>, retry_after: std::time::Duration) -> Self {
        let secs = retry_after.as_secs_f64().ceil().clamp(1.0, f64::from(u32::MAX)) as u32;
        Self { retry_after: std::num::NonZeroU32::new(secs), ..Self::new(Code::RateLimited, message) }
    }

    /// When a refusal that passes with time may be retried, in whole seconds
    /// (at least one).
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after.map(|s| u64::from(s.get()))
    }

    /// 400 with a message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// 401 with a message.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, message)
    }

    /// 404 with a message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    /// 409 with a message.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(Code::AlreadyExists, message)
    }

    /// 403 with a message.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(Code::PermissionDenied, message)
    }

    /// An unexpected failure: the caller sees a generic message, the log the cause.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self { cause: Some(cause.into()), ..Self::new(Code::Internal, "internal error") }
    }

    /// Something that cannot happen did: a broken invariant, reported as an
    /// internal error with `what` in the log only.
    pub fn invariant(what: &'static str) -> Self {
        Self::internal(anyhow::anyhow!("broken invariant: {what}"))
    }

    /// A backend that cannot be reached.
    pub fn unavailable(cause: impl Into<anyhow::Error>) -> Self {
        Self { cause: Some(cause.into()), ..Self::new(Code::Unavailable, "a backend is unavailable, try again") }
    }

    /// The public code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The caller-facing message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body of the HTTP answer.
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody { error: ErrorDetail { code: self.code.as_str(), message: &self.message } }
    }

    /// Logs an unexpected failure's cause once, where it is turned into a response.
    pub fn log_cause(&self) {
        if let Some(cause) = &self.cause {
            tracing::error!(code = %self.code, error = ?cause, "request failed");
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<chatterbox_types::InvalidValue> for Error {
    fn from(e: chatterbox_types::InvalidValue) -> Self {
        Error::invalid(e.0)
    }
}

/// `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        e.log_cause();
        let retry_after = e.retry_after_secs();
        let mut status = tonic::Status::new(e.code.grpc_code(), e.message);
        if let Ok(v) = e.code.as_str().parse() {
            status.metadata_mut().insert(CODE_METADATA_KEY, v);
        }
        if let Some(secs) = retry_after {
            status.metadata_mut().insert(RETRY_AFTER_METADATA_KEY, secs.into());
        }
        status
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let exact = status.metadata().get(CODE_METADATA_KEY).and_then(|v| v.to_str().ok()).and_then(Code::from_name);
        match exact {
            // Our own services: the message was written for the caller.
            Some(code) => {
                let retry_after = status
                    .metadata()
                    .get(RETRY_AFTER_METADATA_KEY)
                    .and_then(|v| v.to_str().ok()?.parse::<std::num::NonZeroU32>().ok());
                Error { retry_after, ..Error::new(code, status.message()) }
            }
            // The transport or a foreign peer: keep its words out of responses.
            None => match Code::from_grpc(status.code()) {
                Code::Unavailable => Error::unavailable(anyhow::anyhow!("{status:?}")),
                // A call the network broke (a connection cut mid-call): tonic
                // reports UNKNOWN with the transport's error as its source,
                // where a peer's own UNKNOWN has none. Worth a retry, as any
                // outage (sends carry a client_id, so a retry makes no copy).
                _ if status.code() == tonic::Code::Unknown && std::error::Error::source(&status).is_some() => {
                    Error::unavailable(anyhow::anyhow!("{status:?}"))
                }
                _ => Error::internal(anyhow::anyhow!("{status:?}")),
            },
        }
    }
}

/// Turns the error into its HTTP status and body, logging a hidden cause once.
pub fn http_parts(e: &Error) -> (http::StatusCode, String) {
    e.log_cause();
    let body = serde_json::to_string(&e.body())
        .unwrap_or_else(|_| r#"{"error":{"code":"internal","message":"internal error"}}"#.to_owned());
    (e.code.http_status(), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_the_network_broke_is_unavailable_and_a_peers_unknown_is_internal() {
        let cut = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stream closed because of a broken pipe");
        let broken = tonic::Status::from_error(Box::new(cut));
        assert_eq!(broken.code(), tonic::Code::Unknown, "what tonic makes of a cut connection");
        assert_eq!(Error::from(broken).code(), Code::Unavailable);
        let foreign = tonic::Status::unknown("something odd");
        assert_eq!(Error::from(foreign).code(), Code::Internal);
    }

    #[test]
    fn every_code_survives_a_grpc_hop() {
        for code in Code::ALL {
            let status: tonic::Status = Error::new(code, "m").into();
            let back = Error::from(status);
            assert_eq!(back.code(), code);
            assert_eq!(back.message(), "m");
        }
    }

    #[test]
    fn retry_after_survives_a_grpc_hop() {
        let status: tonic::Status = Error::rate_limited("slow down", std::time::Duration::from_millis(1_500)).into();
        let back = Error::from(status);
        assert_eq!((back.code(), back.retry_after_secs()), (Code::RateLimited, Some(2)));
        assert_eq!(Error::from(tonic::Status::from(Error::invalid("x"))).retry_after_secs(), None);
    }

    #[test]
    fn foreign_statuses_never_leak_their_message() {
        let back = Error::from(tonic::Status::internal("db password is hunter2"));
        assert_eq!(back.code(), Code::Internal);
        assert!(!back.message().contains("hunter2"));
    }

    #[test]
    fn body_has_the_contract_shape() {
        let (status, body) = http_parts(&Error::already_exists("taken"));
        assert_eq!(status, 409);
        assert_eq!(body, r#"{"error":{"code":"already_exists","message":"taken"}}"#);
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let e = Error::internal(anyhow::anyhow!("secret detail"));
        assert_eq!(e.message(), "internal error");
    }
}
