//! `/healthz` (the process is up) and `/readyz` (its backends answer).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chatterbox_errors::Error;
use chatterbox_runtime::GrpcChannel;
use serde_json::json;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::error::ApiError;
use crate::state::GatewayState;

/// `GET /healthz`.
pub(crate) async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn serving(channel: GrpcChannel, service: &str) -> Result<(), String> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest { service: service.to_owned() })
        .await
        .map_err(|e| format!("{service}: {}", e.code()))?;
    match response.into_inner().status() {
        ServingStatus::Serving => Ok(()),
        other => Err(format!("{service}: {}", other.as_str_name())),
    }
}

/// `GET /readyz`: 200 when every backend chat needs answers, else 503
/// naming them. Presence is not needed to chat: its loss is reported as
/// `degraded`, and the gateway stays in rotation.
pub(crate) async fn ready(State(s): State<GatewayState>) -> Response {
    let b = &s.backends;
    let redis = async {
        match b.redis.clone() {
            Some(mut conn) => {
                redis::cmd("PING").query_async::<String>(&mut conn).await.map(drop).map_err(|e| format!("redis: {e}"))
            }
            None => Ok(()),
        }
    };
    let (auth, user, conversation, message, media, presence, redis) = tokio::join!(
        serving(b.auth.clone(), "chatterbox.auth.v1.AuthService"),
        serving(b.user.clone(), "chatterbox.user.v1.UserService"),
        serving(b.conversation.clone(), "chatterbox.conversation.v1.ConversationService"),
        serving(b.message.clone(), "chatterbox.message.v1.MessageService"),
        serving(b.media.clone(), "chatterbox.media.v1.MediaService"),
        serving(b.presence.clone(), "chatterbox.presence.v1.PresenceService"),
        redis,
    );
    let failures: Vec<String> =
        [auth, user, conversation, message, media, redis].into_iter().filter_map(Result::err).collect();

    if failures.is_empty() {
        match presence {
            Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))).into_response(),
            Err(degraded) => {
                tracing::warn!(%degraded, "ready without presence");
                (StatusCode::OK, Json(json!({"status": "ready", "degraded": [degraded]}))).into_response()
            }
        }
    } else {
        tracing::warn!(?failures, "not ready");
        ApiError(Error::unavailable(anyhow::anyhow!(failures.join(", ")))).into_response()
    }
}
