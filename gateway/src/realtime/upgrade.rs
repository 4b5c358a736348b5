//! `GET /ws`: the Origin check, authentication (header or first frame) and
//! the socket's limits, before a session starts.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::response::Response;
use chatterbox_errors::Error;
use chatterbox_identity::bearer_token;
use http::HeaderMap;
use http::header::{AUTHORIZATION, ORIGIN};

use super::MAX_FRAME_BYTES;
use super::frames::{ClientFrame, Incoming, error, parse};
use super::session::{self, Credentials, close, close_with, send};
use crate::error::{ApiError, ApiResult};
use crate::state::GatewayState;

/// How long a client has to send its `auth` frame.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer per socket, allocated up front (tungstenite's default is
/// 128 KiB, per idle socket). Client frames are small and rate-limited; a
/// larger one (up to [`MAX_FRAME_BYTES`]) grows the buffer as it arrives.
const READ_BUFFER_BYTES: usize = 1024;
/// Bytes of queued frames a socket gathers before it writes them (a session
/// also writes whenever it has nothing more ready): many frames per write
/// syscall under load, while an idle socket keeps its buffer small.
const WRITE_BUFFER_BYTES: usize = 4 * 1024;
/// Unsent bytes a socket may hold before the peer counts as gone.
const MAX_WRITE_BUFFER_BYTES: usize = 1024 * 1024;

/// Upgrades to a WebSocket session.
pub(crate) async fn upgrade(
    State(s): State<GatewayState>,
    uri: http::Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let ws = ws.map_err(|_| ApiError(Error::invalid("this endpoint takes a WebSocket upgrade")))?;
    let host = crate::extract::request_host(&headers, &uri);
    if !origin_allowed(&s.realtime.allowed_origins, headers.get(ORIGIN), host) {
        // A page on another site must not ride on a user's credentials
        // (cross-site WebSocket hijacking).
        return Err(ApiError(Error::permission_denied("this origin may not open WebSockets here")));
    }
    let authenticated = match headers.get(AUTHORIZATION) {
        Some(value) => {
            let token = value
                .to_str()
                .ok()
                .and_then(bearer_token)
                .ok_or_else(|| Error::unauthenticated("malformed authorization header"))?;
            Some(Credentials::verify(&s, token)?)
        }
        None => None,
    };
    let ws = ws
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES);
    Ok(ws.on_upgrade(move |mut socket| async move {
        let credentials = match authenticated {
            Some(credentials) => credentials,
            // Boxed, like the session's own steps: an idle socket's task keeps
            // only what waiting needs, not the largest step it ever took.
            None => match Box::pin(first_frame(&mut socket, &s)).await {
                Some(credentials) => credentials,
                None => return,
            },
        };
        Box::pin(session::run(socket, s, credentials)).await;
    }))
}

/// Same-origin pages (the origin names `host`, the gateway as the client
/// reached it), the configured origins, and clients that send no `Origin`
/// (not browsers, which always do) may connect.
pub(crate) fn origin_allowed(allowed: &[String], origin: Option<&http::HeaderValue>, host: Option<&str>) -> bool {
    let Some(origin) = origin else { return true };
    let Ok(origin) = origin.to_str() else { return false };
    let origin = origin.trim_end_matches('/');
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    match (origin.split_once("://"), host) {
        (Some(("http" | "https", authority)), Some(host)) => authority.eq_ignore_ascii_case(host),
        _ => false,
    }
}

/// Waits for `{"type": "auth", "access_token": ...}`; anything else, or
/// nothing within the timeout, closes with 4401.
async fn first_frame(socket: &mut WebSocket, s: &GatewayState) -> Option<Credentials> {
    let deadline = tokio::time::Instant::now() + AUTH_TIMEOUT;
    loop {
        let outcome = match tokio::time::timeout_at(deadline, socket.recv()).await {
            Err(_) => Err(Error::unauthenticated("no auth frame within 10 s")),
            Ok(None) => return None,
            Ok(Some(Err(e))) => {
                if session::frame_too_big(&e) {
                    close_with(socket, close::TOO_BIG, "frame too large").await;
                }
                return None;
            }
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(Message::Text(text)))) => match parse(&text) {
                Ok(Incoming { frame: ClientFrame::Auth { access_token }, .. }) => Credentials::verify(s, &access_token),
                _ => Err(Error::unauthenticated("the first frame must be auth")),
            },
            Ok(Some(Ok(_))) => Err(Error::unauthenticated("the first frame must be auth")),
        };
        match outcome {
            Ok(credentials) => return Some(credentials),
            Err(e) => {
                let _ = send(socket, error(None, &e)).await;
                close_with(socket, close::UNAUTHENTICATED, "authentication failed").await;
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed_from(allowed: &[String], origin: Option<&str>, host: Option<&str>) -> bool {
        let origin = origin.map(|o| http::HeaderValue::from_str(o).unwrap());
        origin_allowed(allowed, origin.as_ref(), host)
    }

    #[test]
    fn same_origin_listed_origins_and_non_browsers_may_connect() {
        let allowed = vec!["https://chat.example.com".to_owned()];
        let gw = Some("gw:8080");
        assert!(allowed_from(&allowed, None, gw));
        assert!(allowed_from(&allowed, Some("http://gw:8080"), gw));
        assert!(allowed_from(&allowed, Some("https://chat.example.com"), gw));
        assert!(!allowed_from(&allowed, Some("https://evil.example"), gw));
        assert!(!allowed_from(&allowed, Some("null"), gw));
        assert!(!allowed_from(&allowed, Some("http://gw:8080.evil.example"), gw));
        assert!(!allowed_from(&allowed, Some("http://gw:8080"), None), "no host: only listed origins");
    }
}
