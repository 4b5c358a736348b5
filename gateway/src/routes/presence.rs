//! `/api/v1/presence`: who is online, and saying you are away. Presence is
//! also laid over the profiles the user routes return (see
//! [`with_presence`]), since the presence service knows it first.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chatterbox_errors::Error;
use chatterbox_proto::presence::v1::{GetPresenceRequest, PresenceState, SetStatusRequest};
use chatterbox_proto::user::v1::User;
use chatterbox_types::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiQuery, CurrentUser};
use crate::state::GatewayState;

/// How long a profile waits for presence before it goes out without.
const OVERLAY_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, Deserialize)]
pub(crate) struct PresenceQuery {
    #[serde(default)]
    user_ids: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct PresenceView {
    user_id: String,
    status: String,
    last_seen: Option<String>,
}

impl From<PresenceState> for PresenceView {
    fn from(p: PresenceState) -> Self {
        Self {
            user_id: p.user_id,
            status: p.status,
            last_seen: p.last_seen_ms.map(|ms| Timestamp::from_millis(ms).to_rfc3339()),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct PresenceList {
    items: Vec<PresenceView>,
}

/// `GET /api/v1/presence?user_ids=a,b,c`.
pub(crate) async fn get(
    State(s): State<GatewayState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<PresenceQuery>,
) -> ApiResult<Json<PresenceList>> {
    let user_ids: Vec<String> =
        q.user_ids.split(',').map(str::trim).filter(|id| !id.is_empty()).map(str::to_owned).collect();
    if user_ids.is_empty() {
        return Err(Error::invalid("user_ids must list at least one user id").into());
    }
    let found = s.presence.clone().get_presence(user.request(GetPresenceRequest { user_ids })?).await?;
    Ok(Json(PresenceList { items: found.into_inner().items.into_iter().map(PresenceView::from).collect() }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SetBody {
    status: String,
}

/// `PUT /api/v1/presence` `{status}` → 204.
pub(crate) async fn set(
    State(s): State<GatewayState>,
    user: CurrentUser,
    ApiJson(b): ApiJson<SetBody>,
) -> ApiResult<StatusCode> {
    s.presence.clone().set_status(user.request(SetStatusRequest { status: b.status })?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `profiles` with their status and last seen as the presence service has
/// them now; as the user service recorded them if presence does not answer
/// promptly (profiles never fail for want of presence).
pub(crate) async fn with_presence(s: &GatewayState, user: &CurrentUser, profiles: &mut [User]) {
    if profiles.is_empty() {
        return;
    }
    let user_ids = profiles.iter().map(|p| p.id.clone()).collect();
    let Ok(request) = user.request(GetPresenceRequest { user_ids }) else { return };
    let found = match tokio::time::timeout(OVERLAY_WAIT, s.presence.clone().get_presence(request)).await {
        Ok(Ok(found)) => found.into_inner().items,
        Ok(Err(status)) => {
            tracing::debug!(%status, "profiles served without live presence");
            return;
        }
        Err(_) => {
            tracing::debug!("profiles served without live presence: it did not answer in time");
            return;
        }
    };
    for (profile, presence) in profiles.iter_mut().zip(found) {
        if presence.user_id == profile.id {
            profile.status = presence.status;
            profile.last_seen_ms = presence.last_seen_ms.or(profile.last_seen_ms);
        }
    }
}
