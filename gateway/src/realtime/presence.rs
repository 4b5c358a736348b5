//! A session's reports to the presence service: opened (with the
//! conversations that hear about the user; repeated when they change), alive
//! every heartbeat (with whether the user did anything), closed. One task per
//! session sends them in order, off the session's path: a slow or absent
//! presence service never holds up chat. Reports waiting to be sent merge
//! (the latest audience wins, activity accumulates), so none is dropped and
//! the close always goes out last.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatterbox_identity::with_bearer;
use chatterbox_proto::presence::v1::{ConnectionAliveRequest, ConnectionClosedRequest, ConnectionOpenedRequest};
use tokio::sync::{Notify, oneshot};

use crate::state::GatewayState;

/// How long `ready` waits for presence to have the connection (so that a
/// client's later close cannot overtake its open); chat goes on after that.
const REGISTER_WAIT: Duration = Duration::from_millis(500);

/// What is still to be reported.
#[derive(Debug, Default)]
struct Pending {
    /// The latest audience, if it changed since the last report.
    audience: Option<Vec<String>>,
    /// A heartbeat to report, and whether the user did anything since the last one.
    alive: Option<bool>,
    /// The connection is gone: report it and stop.
    closed: bool,
    /// The session's current token.
    token: String,
}

#[derive(Debug, Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Notify,
}

impl Shared {
    fn update(&self, token: &str, change: impl FnOnce(&mut Pending)) {
        {
            let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            change(&mut pending);
            token.clone_into(&mut pending.token);
        }
        self.wake.notify_one();
    }

    fn take(&self) -> Pending {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// The session's handle on its reporting task.
#[derive(Debug)]
pub(crate) struct Reporter {
    shared: Arc<Shared>,
}

impl Reporter {
    /// Starts reporting `connection_id`, opened with `audience`; returns
    /// once presence has answered that first report, or after a short wait.
    pub(crate) async fn start(state: GatewayState, connection_id: String, audience: Vec<String>, token: &str) -> Self {
        let shared = Arc::new(Shared::default());
        shared.update(token, |p| p.audience = Some(audience));
        let (registered, answered) = oneshot::channel();
        tokio::spawn(report(state, connection_id, shared.clone(), registered));
        let _ = tokio::time::timeout(REGISTER_WAIT, answered).await;
        Self { shared }
    }

    /// The conversations that hear about the user changed.
    pub(crate) fn audience(&self, audience: Vec<String>, token: &str) {
        self.shared.update(token, |p| p.audience = Some(audience));
    }

    /// The connection is alive.
    pub(crate) fn alive(&self, active: bool, token: &str) {
        self.shared.update(token, |p| p.alive = Some(p.alive.unwrap_or(false) || active));
    }

    /// The connection closed; the task ends after reporting it.
    pub(crate) fn closed(self, token: &str) {
        self.shared.update(token, |p| p.closed = true);
    }
}

/// Sends the reports. What an idle connection keeps is small: the client is
/// cloned per call rather than held, and each call's (large) future is
/// boxed for its duration instead of sizing the task for it.
async fn report(state: GatewayState, connection_id: String, shared: Arc<Shared>, registered: oneshot::Sender<()>) {
    let mut registered = Some(registered);
    loop {
        shared.wake.notified().await;
        let Pending { audience, alive, closed, token } = shared.take();
        let presence = || state.presence.clone();
        if let Some(audience) = audience {
            let request = ConnectionOpenedRequest { connection_id: connection_id.clone(), audience };
            if let Some(request) = signed(request, &token) {
                logged(Box::pin(presence().connection_opened(request)).await);
            }
            if let Some(registered) = registered.take() {
                let _ = registered.send(());
            }
        }
        if let Some(active) = alive.filter(|_| !closed)
            && let Some(request) =
                signed(ConnectionAliveRequest { connection_id: connection_id.clone(), active }, &token)
        {
            logged(Box::pin(presence().connection_alive(request)).await);
        }
        if closed {
            if let Some(request) = signed(ConnectionClosedRequest { connection_id }, &token) {
                logged(Box::pin(presence().connection_closed(request)).await);
            }
            return;
        }
    }
}

/// A request carrying the session's token (a verified one, so this holds).
fn signed<T>(message: T, token: &str) -> Option<tonic::Request<T>> {
    with_bearer(message, token).inspect_err(|e| tracing::debug!(error = %e, "presence report not sent")).ok()
}

fn logged<T>(sent: Result<T, tonic::Status>) {
    if let Err(status) = sent {
        // Presence recovers from the next report, or from the connection's expiry.
        tracing::debug!(%status, "presence report failed");
    }
}
