//! `/openapi.json` (the API description) and `/docs` (a page that reads it).
//! Everything is compiled in; the page needs nothing from elsewhere.

use axum::response::{Html, IntoResponse};

const OPENAPI: &str = include_str!("../../openapi.json");
const PAGE: &str = include_str!("../../docs.html");
const SCRIPT: &str = include_str!("../../docs.js");
const STYLE: &str = include_str!("../../docs.css");

/// Only our own files may load on the docs page.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'";

/// `GET /openapi.json`.
pub(crate) async fn openapi() -> impl IntoResponse {
    ([(http::header::CONTENT_TYPE, "application/json")], OPENAPI)
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
