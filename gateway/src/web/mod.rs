//! The web client: its files, compiled into the binary and served at `/`
//! under a strict Content-Security-Policy, and the cookie-held sessions it
//! signs in with (`/web/session/*`).

mod assets;
mod session;

use axum::Router;
use axum::routing::{get, post};

use crate::state::GatewayState;

pub use assets::{WebSettings, media_origin};

/// The client's pages and files (not rate limited, like `/docs`).
pub(crate) fn pages() -> Router<GatewayState> {
    Router::new().route("/", get(assets::index)).route("/app/{file}", get(assets::file))
}

/// The session routes (rate limited with the API: they take passwords).
pub(crate) fn sessions() -> Router<GatewayState> {
    Router::new()
        .route("/web/session/register", post(session::register))
        .route("/web/session/login", post(session::login))
        .route("/web/session/refresh", post(session::refresh))
        .route("/web/session/logout", post(session::logout))
}
