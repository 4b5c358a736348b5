//! A session's reports to the presence service: opened (with the
//! conversations that hear about the user), alive every heartbeat (with
//! whether the user did anything), closed. One task per session sends them
//! in order, off the session's path: a slow or absent presence service never
//! holds up chat, and what it misses it recovers from the next report (or,
//! for a lost close, from the connection's expiry).

use chatterbox_identity::with_bearer;
use chatterbox_proto::presence::v1::presence_service_client::PresenceServiceClient;
use chatterbox_proto::presence::v1::{ConnectionAliveRequest, ConnectionClosedRequest, ConnectionOpenedRequest};
use chatterbox_runtime::GrpcChannel;
use tokio::sync::mpsc;

/// Reports a session may queue before newer ones are dropped.
const QUEUE: usize = 8;

/// What happened to the connection.
#[derive(Debug)]
enum Report {
    /// Opened, or its audience changed (the call is an idempotent upsert).
    Opened { audience: Vec<String> },
    /// Still there; `active` if the user did something since the last one.
    Alive { active: bool },
    /// Gone.
    Closed,
}

/// The sending half, owned by the session.
#[derive(Debug)]
pub(crate) struct Reporter {
    queue: mpsc::Sender<(Report, String)>,
}

impl Reporter {
    /// Starts the task reporting `connection_id` to `client`.
    pub(crate) fn start(client: PresenceServiceClient<GrpcChannel>, connection_id: String) -> Self {
        let (queue, reports) = mpsc::channel(QUEUE);
        tokio::spawn(report(client, connection_id, reports));
        Self { queue }
    }

    /// The connection is open and `audience` (conversation ids) hears about its user.
    pub(crate) fn opened(&self, audience: Vec<String>, token: &str) {
        self.queue(Report::Opened { audience }, token);
    }

    /// The connection is alive.
    pub(crate) fn alive(&self, active: bool, token: &str) {
        self.queue(Report::Alive { active }, token);
    }

    /// The connection closed; the task ends after sending it.
    pub(crate) fn closed(self, token: &str) {
        self.queue(Report::Closed, token);
    }

    fn queue(&self, report: Report, token: &str) {
        if let Err(e) = self.queue.try_send((report, token.to_owned())) {
            tracing::debug!(error = %e, "presence report dropped: the presence service is behind");
        }
    }
}

async fn report(
    mut client: PresenceServiceClient<GrpcChannel>,
    connection_id: String,
    mut reports: mpsc::Receiver<(Report, String)>,
) {
    while let Some((report, token)) = reports.recv().await {
        let connection_id = connection_id.clone();
        let sent = match report {
            Report::Opened { audience } => {
                match with_bearer(ConnectionOpenedRequest { connection_id, audience }, &token) {
                    Ok(request) => client.connection_opened(request).await.map(drop),
                    Err(e) => Err(e.into()),
                }
            }
            Report::Alive { active } => match with_bearer(ConnectionAliveRequest { connection_id, active }, &token) {
                Ok(request) => client.connection_alive(request).await.map(drop),
                Err(e) => Err(e.into()),
            },
            Report::Closed => match with_bearer(ConnectionClosedRequest { connection_id }, &token) {
                Ok(request) => client.connection_closed(request).await.map(drop),
                Err(e) => Err(e.into()),
            },
        };
        if let Err(status) = sent {
            tracing::debug!(%status, "presence report failed");
        }
    }
}
