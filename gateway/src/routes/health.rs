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

/// What a service's health says.
enum Health {
    Serving,
    /// It answers, but says it cannot do its work now (its database does
    /// not answer, or it is shutting down): named, not a reason to leave
    /// rotation (no gateway can fix it, and its callers get a clear 503).
    NotServing(String),
    /// It does not answer at all.
    Unreachable(String),
}

async fn health(channel: GrpcChannel, service: &str) -> Health {
    match HealthClient::new(channel).check(HealthCheckRequest { service: service.to_owned() }).await {
        Err(e) => Health::Unreachable(format!("{service}: {}", e.code())),
        Ok(response) => match response.into_inner().status() {
            ServingStatus::Serving => Health::Serving,
            other => Health::NotServing(format!("{service}: {}", other.as_str_name())),
        },
    }
}

/// `GET /readyz`: 503 naming them when a backend chat needs cannot be
/// reached (a service, Redis); else 200, with `degraded` naming what answers
/// but cannot work now (a service whose database is gone) and presence when
/// it is unreachable (not needed to chat). A database outage so leaves the
/// gateways in rotation: their callers get the services' own 503s.
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
        health(b.auth.channel().clone(), "chatterbox.auth.v1.AuthService"),
        health(b.user.channel().clone(), "chatterbox.user.v1.UserService"),
        health(b.conversation.channel().clone(), "chatterbox.conversation.v1.ConversationService"),
        health(b.message.channel().clone(), "chatterbox.message.v1.MessageService"),
        health(b.media.clone(), "chatterbox.media.v1.MediaService"),
        health(b.presence.channel().clone(), "chatterbox.presence.v1.PresenceService"),
        redis,
    );
    let (mut failures, mut degraded) = (Vec::new(), Vec::new());
    for service in [auth, user, conversation, message, media] {
        match service {
            Health::Serving => {}
            Health::NotServing(why) => degraded.push(why),
            Health::Unreachable(why) => failures.push(why),
        }
    }
    match presence {
        Health::Serving => {}
        Health::NotServing(why) | Health::Unreachable(why) => degraded.push(why),
    }
    failures.extend(redis.err());

    if !failures.is_empty() {
        tracing::warn!(?failures, "not ready");
        return ApiError(Error::unavailable(anyhow::anyhow!(failures.join(", ")))).into_response();
    }
    if degraded.is_empty() {
        (StatusCode::OK, Json(json!({"status": "ready"}))).into_response()
    } else {
        tracing::warn!(?degraded, "ready, degraded");
        (StatusCode::OK, Json(json!({"status": "ready", "degraded": degraded}))).into_response()
    }
}
