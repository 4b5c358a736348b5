//! The route table. API routes sit behind the rate limit; health and the
//! documentation do not. Metrics are not served here, on the public port,
//! but on `CHATTERBOX_METRICS_ADDR` (`chatterbox_runtime::serve_metrics`).

pub(crate) mod auth;
mod blocks;
mod conversations;
mod docs;
mod health;
mod media;
mod messages;
mod presence;
mod rooms;
mod users;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse as _;
use axum::routing::{delete, get, patch, post, put};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::error::{ApiError, method_not_allowed, not_found};
use crate::request_id::MakeUlidRequestId;
use crate::state::GatewayState;
use crate::{http_metrics, rate_limit};

fn request_span(request: &http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    let span = tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id, user_id = tracing::field::Empty);
    // Continue a trace the client (or an edge proxy) started.
    let _ = span.set_parent(chatterbox_telemetry::extract_context(request.headers()));
    span
}

/// `limit` and `cursor` of a list request.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct PageQuery {
    limit: Option<u32>,
    #[serde(default)]
    pub(crate) cursor: String,
}

impl PageQuery {
    /// The limit to send on (0 = the service's default).
    pub(crate) fn limit(&self) -> Result<u32, ApiError> {
        checked_limit(self.limit)
    }
}

/// An explicit `limit=0` is refused here; absent means the default (0 on the wire).
pub(crate) fn checked_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        Some(0) => Err(chatterbox_errors::Error::invalid(format!(
            "limit must be between 1 and {}",
            chatterbox_types::MAX_PAGE_LIMIT
        ))
        .into()),
        other => Ok(other.unwrap_or(0)),
    }
}

/// The whole HTTP application.
pub fn router(state: GatewayState, body_limit: usize) -> Router {
    chatterbox_telemetry::install_metrics();
    let api = Router::new()
        .route("/api/v1/auth/register", post(auth::register))
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/refresh", post(auth::refresh))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/auth/sessions", get(auth::sessions))
        .route("/api/v1/auth/sessions/{id}", delete(auth::end_session))
        .route("/api/v1/users", get(users::search))
        .route("/api/v1/users/me", get(users::me).patch(users::update_me))
        .route("/api/v1/users/me/blocks", get(blocks::list))
        .route("/api/v1/users/{id}", get(users::get))
        .route("/api/v1/users/{id}/block", post(blocks::block).delete(blocks::unblock))
        .route("/api/v1/conversations", post(conversations::create).get(conversations::list))
        .route("/api/v1/conversations/{id}", get(conversations::get).patch(conversations::update))
        .route("/api/v1/conversations/{id}/participants", post(conversations::add_participant))
        .route("/api/v1/conversations/{id}/participants/{user_id}", delete(conversations::remove_participant))
        .route("/api/v1/conversations/{id}/admins", post(conversations::add_admin))
        .route("/api/v1/conversations/{id}/messages", post(messages::send).get(messages::history))
        .route("/api/v1/conversations/{id}/read", post(messages::read))
        .route("/api/v1/messages/{id}", patch(messages::edit).delete(messages::delete))
        .route("/api/v1/messages/{id}/reactions/{emoji}", put(messages::react).delete(messages::unreact))
        .route("/api/v1/messages/{id}/replies", get(messages::replies))
        .route("/api/v1/messages/{id}/pin", post(messages::pin).delete(messages::unpin))
        .route("/api/v1/conversations/{id}/pins", get(messages::pins))
        .route("/api/v1/mentions", get(messages::mentions))
        .route("/api/v1/search/messages", get(messages::search))
        .route("/api/v1/presence", get(presence::get).put(presence::set))
        .route(
            "/api/v1/media",
            post(media::upload).layer(DefaultBodyLimit::max(
                usize::try_from(state.media_max_bytes).unwrap_or(usize::MAX).saturating_add(media::MULTIPART_OVERHEAD),
            )),
        )
        .route("/api/v1/media/{id}", get(media::download))
        .route("/api/v1/media/{id}/thumbnail", get(media::thumbnail))
        .route("/api/v1/rooms", post(rooms::create).get(rooms::list))
        .route("/api/v1/rooms/{id}/join", post(rooms::join))
        .route("/api/v1/rooms/{id}/leave", post(rooms::leave))
        .route("/ws", get(crate::realtime::upgrade))
        .merge(crate::web::sessions())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), rate_limit::limit));

    Router::new()
        .merge(api)
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/openapi.json", get(docs::openapi))
        .route("/asyncapi.json", get(docs::asyncapi))
        .route("/docs", get(docs::page))
        .route("/docs/docs.js", get(docs::script))
        .route("/docs/docs.css", get(docs::style))
        .merge(crate::web::pages())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(http_metrics::record))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError(chatterbox_errors::Error::internal(anyhow::anyhow!("handler panicked"))).into_response()
        }))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeUlidRequestId))
        .with_state(state)
}
