//! Login sessions that ended before their access tokens expire.
//!
//! An access token names its login session (`sid`). When a session ends
//! (logout, `DELETE /auth/sessions/{id}`, a replayed refresh token), the auth
//! service records the end here; every verifier consults its process's
//! [`Revocations`] on every use of a token, remembered verifications
//! included, so the session's tokens stop working at once in this process.
//!
//! Across processes the ends travel through a Redis stream that every
//! process reads every [`POLL`] (well inside the contract's one second);
//! unlike pub/sub, a stream keeps what a process missed while its connection
//! was down, and a process that starts reads the whole retained window
//! before it serves. An end is needed only as long as a token issued before
//! it can live (the access-token lifetime), so the stream keeps that much.
//!
//! Gateways also take [`Revocations::notices`] to close the WebSockets of an
//! ended session.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chatterbox_redis::Connection;
use chatterbox_types::SessionId;
use tokio::sync::broadcast;

/// How often a process reads the shared stream.
pub const POLL: Duration = Duration::from_millis(200);

/// Entries read from the stream per round trip.
const PAGE: usize = 1_000;

/// Notices a gateway may fall behind on before it re-checks every socket.
const NOTICES: usize = 1_024;

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// This process's view of the ended sessions; clones share it.
#[derive(Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
}

struct Inner {
    /// Ended sessions, each with the time (Unix seconds) after which every
    /// token it issued has expired anyway.
    ended: RwLock<HashMap<SessionId, u64>>,
    notices: broadcast::Sender<SessionId>,
    shared: Option<Shared>,
}

/// The Redis stream every process reads.
struct Shared {
    connection: Connection,
    key: String,
    /// How long an end is kept in the stream.
    retention: Duration,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("ended", &self.inner.read().len())
            .field("shared", &self.inner.shared.as_ref().map(|s| &s.key))
            .finish()
    }
}

impl Revocations {
    /// Ends known to this process only (the embedded mode, tests).
    pub fn local() -> Self {
        Self { inner: Arc::new(Inner::new(None)) }
    }

    /// Ends shared through the Redis stream `<prefix>:sessions:ended`,
    /// keeping each for `retention` (at least the access-token lifetime).
    /// Reads the retained ends before returning, then follows the stream in
    /// a task for as long as a clone of this value lives.
    pub async fn shared(connection: Connection, prefix: &str, retention: Duration) -> anyhow::Result<Self> {
        let shared = Shared { connection, key: format!("{prefix}:sessions:ended"), retention };
        let inner = Arc::new(Inner::new(Some(shared)));
        let mut cursor = "0-0".to_owned();
        inner.catch_up(&mut cursor).await?;
        tokio::spawn(follow(Arc::downgrade(&inner), cursor));
        Ok(Self { inner })
    }

    /// Whether `session` has ended.
    pub fn is_ended(&self, session: SessionId) -> bool {
        self.inner.read().contains_key(&session)
    }

    /// Ends `session` everywhere. `until` is when its last access token
    /// expires (Unix seconds). Fails only if the shared stream cannot take
    /// it; ending the same session again is harmless.
    pub async fn end(&self, session: SessionId, until: u64) -> anyhow::Result<()> {
        if let Some(shared) = &self.inner.shared {
            shared.append(session, until).await?;
        }
        self.inner.record(session, until);
        Ok(())
    }

    /// Each session as it ends (in this process or, within [`POLL`], in
    /// another). A receiver that lags must re-check what it holds with
    /// [`Revocations::is_ended`].
    pub fn notices(&self) -> broadcast::Receiver<SessionId> {
        self.inner.notices.subscribe()
    }
}

impl Inner {
    fn new(shared: Option<Shared>) -> Self {
        Self { ended: RwLock::new(HashMap::new()), notices: broadcast::channel(NOTICES).0, shared }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<SessionId, u64>> {
        self.ended.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an end; tells the notice receivers if it is news. Ends whose
    /// tokens have all expired are dropped whenever the map reaches a power
    /// of two (from 1,024): amortised, and bounded by the ends of one
    /// access-token lifetime.
    fn record(&self, session: SessionId, until: u64) {
        let now = unix_now();
        if until <= now {
            return;
        }
        let news = {
            let mut ended = self.ended.write().unwrap_or_else(PoisonError::into_inner);
            if ended.len() >= 1_024 && ended.len().is_power_of_two() {
                ended.retain(|_, until| *until > now);
            }
            ended.insert(session, until).is_none()
        };
        if news {
            // No receiver is fine: nothing here holds sockets.
            let _ = self.notices.send(session);
        }
    }

    /// Reads the stream past `cursor` until it is caught up.
    async fn catch_up(&self, cursor: &mut String) -> anyhow::Result<()> {
        let Some(shared) = &self.shared else { return Ok(()) };
        loop {
            let entries = shared.read_after(cursor).await?;
            let full = entries.len() >= PAGE;
            for (id, session, until) in entries {
                *cursor = id;
                if let Some(session) = session {
                    self.record(session, until);
                }
            }
            if !full {
                return Ok(());
            }
        }
    }
}

/// Follows the stream until the last clone of the [`Revocations`] is gone.
async fn follow(inner: Weak<Inner>, mut cursor: String) {
    let mut ticker = tokio::time::interval(POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        match inner.catch_up(&mut cursor).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("reading ended sessions from Redis again");
            }
            Ok(()) => {}
            Err(e) => {
                metrics::counter!("session_revocation_read_failures_total").increment(1);
                if !failing {
                    failing = true;
                    tracing::warn!(error = %e, "cannot read ended sessions from Redis; retrying");
                }
            }
        }
    }
}

impl Shared {
    async fn append(&self, session: SessionId, until: u64) -> anyhow::Result<()> {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let oldest = now_ms.saturating_sub(self.retention.as_millis() as u64);
        let mut connection = self.connection.clone();
        redis::pipe()
            .cmd("XADD")
            .arg(&self.key)
            .arg("MINID")
            .arg("~")
            .arg(oldest)
            .arg("*")
            .arg("session")
            .arg(session.to_string())
            .arg("until")
            .arg(until)
            .ignore()
            // An idle stream goes away once nothing in it matters.
            .cmd("PEXPIRE")
            .arg(&self.key)
            .arg(self.retention.as_millis() as u64)
            .ignore()
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    /// Up to [`PAGE`] entries after `cursor`: (id, session, until). An
    /// entry that does not parse is skipped past (its session is `None`).
    async fn read_after(&self, cursor: &str) -> anyhow::Result<Vec<(String, Option<SessionId>, u64)>> {
        let mut connection = self.connection.clone();
        let reply: Option<redis::streams::StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(PAGE)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(cursor)
            .query_async(&mut connection)
            .await?;
        let mut entries = Vec::new();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in key.ids {
                let session = entry.get::<String>("session").and_then(|s| SessionId::parse(&s).ok());
                let until = entry.get::<u64>("until").unwrap_or(0);
                entries.push((entry.id, session, until));
            }
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_ended_session_is_known_and_noticed_once() {
        let revocations = Revocations::local();
        let mut notices = revocations.notices();
        let (ended, other) = (SessionId::generate(), SessionId::generate());
        revocations.end(ended, unix_now() + 60).await.unwrap();
        revocations.end(ended, unix_now() + 60).await.unwrap();
        assert!(revocations.is_ended(ended));
        assert!(!revocations.is_ended(other));
        assert_eq!(notices.try_recv().unwrap(), ended);
        assert!(notices.try_recv().is_err(), "ending it again is no news");
    }

    #[tokio::test]
    async fn an_end_whose_tokens_have_all_expired_is_not_kept() {
        let revocations = Revocations::local();
        let session = SessionId::generate();
        revocations.end(session, unix_now().saturating_sub(1)).await.unwrap();
        assert!(!revocations.is_ended(session));
    }
}
