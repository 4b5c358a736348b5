//! `/openapi.json` (the REST API's description), `/asyncapi.json` (the
//! WebSocket protocol's) and `/docs` (a page that reads both).
//! Everything is compiled in; the page needs nothing from elsewhere.

use axum::response::{Html, IntoResponse};

const OPENAPI: &str = include_str!("../../openapi.json");
const ASYNCAPI: &str = include_str!("../../asyncapi.json");
const PAGE: &str = include_str!("../../docs.html");
const SCRIPT: &str = include_str!("../../docs.js");
const STYLE: &str = include_str!("../../docs.css");

/// Only our own files may load on the docs page.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'";

/// `GET /openapi.json`.
pub(crate) async fn openapi() -> impl IntoResponse {
    ([(http::header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// `GET /asyncapi.json`: the frames of `/ws` (AsyncAPI 3).
pub(crate) async fn asyncapi() -> impl IntoResponse {
    ([(http::header::CONTENT_TYPE, "application/json")], ASYNCAPI)
}

/// `GET /docs`.
pub(crate) async fn page() -> impl IntoResponse {
    ([(http::header::CONTENT_SECURITY_POLICY, CSP)], Html(PAGE))
}

/// `GET /docs/docs.js`.
pub(crate) async fn script() -> impl IntoResponse {
    ([(http::header::CONTENT_TYPE, "text/javascript"), (http::header::CONTENT_SECURITY_POLICY, CSP)], SCRIPT)
}

/// `GET /docs/docs.css`.
pub(crate) async fn style() -> impl IntoResponse {
    ([(http::header::CONTENT_TYPE, "text/css"), (http::header::CONTENT_SECURITY_POLICY, CSP)], STYLE)
}
