//! `/openapi.json` (the API description) and `/docs` (a page that reads it).

use axum::response::{Html, IntoResponse};

const OPENAPI: &str = include_str!("../../openapi.json");
const DOCS_PAGE: &str = include_str!("../../docs.html");

/// `GET /openapi.json`.
pub(crate) async fn openapi() -> impl IntoResponse {
    ([(http::header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// `GET /docs`.
pub(crate) async fn page() -> impl IntoResponse {
    (
        [(
            http::header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'",
        )],
        Html(DOCS_PAGE),
    )
}
