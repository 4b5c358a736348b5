//! One authenticated WebSocket session: it follows the user's topics
//! through the hub, answers their frames, and delivers events in order.
//!
//! Ordering and completeness: the session subscribes to a conversation
//! *before* it reads that conversation's position or history, so every
//! change committed after the read also arrives live; [`Track`] then puts
//! live `message.new` in `seq` order and drops what was already sent. A
//! `resume`, a hole that does not fill by itself and a bus gap are all
//! answered the same way: read from the message service what follows the
//! last position the client has, send what it has not seen, then carry on
//! live.
//!
//! Here: the session's state, its start and end. By job: `dispatch` (the
//! loop and what wakes it), `commands` (the client's frames), `membership`
//! (which conversations it follows), `replay` (resume, holes, gaps).

mod commands;
mod dispatch;
mod membership;
mod replay;

pub(crate) use commands::frame_too_big;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use chatterbox_errors::Error;
use chatterbox_events::{Topic, envelope, publish_after_commit};
use chatterbox_identity::{Actor, with_bearer};
use chatterbox_proto::conversation::v1::{ConversationType, ListConversationsRequest};
use chatterbox_proto::events::v1::{Typing, envelope::Event};
use chatterbox_proto::message::v1::{
    GetPositionsRequest, ListChangesRequest, ListMessagesRequest, MarkReadRequest, SendMessageRequest,
};
use chatterbox_proto::presence::v1::SetStatusRequest;
use chatterbox_types::{ConversationId, MAX_PAGE_LIMIT, SessionId, Timestamp, UserId};
use futures::SinkExt as _;
use serde_json::Value;
use tokio::time::Instant;

use super::answers::Owed;
use super::delivery::{Kind, Outbound};
use super::frames::{ClientFrame, Incoming, ServerFrame, error, message_changed, message_new, parse};
use super::hub::{HaltReason, MAILBOX_CAPACITY, Registration, TooManySessions};
use super::presence::Reporter;
use super::track::Track;
use super::{MAX_RESUMED, Realtime};
use crate::state::GatewayState;
use crate::views::MessageView;

/// How long one frame may take to reach a client before it counts as gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Steps (events delivered, frames answered) a busy session runs before it
/// writes out what they queued even though more events are waiting.
const STEPS_PER_FLUSH: usize = 64;

/// `presence` events remembered to drop the copies of one change that come
/// through several shared conversations (they are published together).
const PRESENCE_SEEN: usize = 16;

/// Close codes of `api.md` and RFC 6455.
pub(crate) mod close {
    /// Authentication failed or the token expired.
    pub const UNAUTHENTICATED: u16 = 4401;
    /// A frame over the size cap.
    pub const TOO_BIG: u16 = 1009;
    /// The client could not keep up: reconnect and resume.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// The gateway could not set the session up.
    pub const INTERNAL: u16 = 1011;
    /// Refused by policy: the user has too many sockets open.
    pub const POLICY: u16 = 1008;
}

/// Who a session speaks for, from a verified access token.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    pub user: UserId,
    pub token: String,
    /// When the token expires, in seconds since the Unix epoch.
    pub expires_at: u64,
    /// The login session it belongs to: when that ends, so does the socket.
    pub login: SessionId,
}

/// Seconds since the Unix epoch, as tokens count their expiry.
fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

impl Credentials {
    /// Checks `token`; only end users hold sessions.
    pub(crate) fn verify(state: &GatewayState, token: &str) -> Result<Self, Error> {
        let verified = state.verifier.verify_session(token)?;
        let (user, login) = verified.user_session()?;
        Ok(Self { user, token: token.to_owned(), expires_at: verified.expires_at, login })
    }

    fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_secs(self.expires_at.saturating_sub(unix_now()))
    }

    /// The caller, for a service of this process that trusts the gateway's
    /// check: refused once the token has expired (a frame may be read in
    /// the instant before the session notices and closes).
    fn actor(&self) -> Result<Actor, Error> {
        if unix_now() >= self.expires_at {
            return Err(Error::unauthenticated("access token expired: reconnect with a fresh one"));
        }
        Ok(Actor { id: self.user, token: self.token.clone() })
    }
}

/// Why a session ends.
#[derive(Debug)]
pub(crate) enum End {
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// The peer is gone: nothing to say.
    Gone,
}

/// A failed frame: answered with `error`, or the end of the session.
#[derive(Debug)]
enum Fail {
    Api(Error),
    End(End),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Api(e)
    }
}

impl From<tonic::Status> for Fail {
    fn from(status: tonic::Status) -> Self {
        Fail::Api(Error::from(status))
    }
}

impl From<End> for Fail {
    fn from(end: End) -> Self {
        Fail::End(end)
    }
}

/// What woke the session up.
enum Step {
    Frame(Option<Result<Message, axum::Error>>),
    Event(Arc<Outbound>),
    Answer(Option<Utf8Bytes>),
    /// The hub stopped the session: too slow, or its login session ended.
    Halt(HaltReason),
    Heartbeat,
    Expired,
    Repair,
}

/// Queues one text frame on the socket's write buffer, or reports the peer
/// gone. It reaches the wire when the buffer fills or at the next
/// [`flush`] (the session flushes once it has nothing more ready to send).
pub(crate) async fn send(socket: &mut WebSocket, text: Utf8Bytes) -> Result<(), End> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.feed(Message::Text(text))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(End::Gone),
    }
}

/// Writes out what [`send`] queued, or reports the peer gone.
pub(crate) async fn flush(socket: &mut WebSocket) -> Result<(), End> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.flush()).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(End::Gone),
    }
}

/// Closes with `code` and `reason` (best effort: the peer may be gone).
pub(crate) async fn close_with(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
    let _ = tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
}

/// Waits for `timer`, or forever when there is none.
async fn fire(timer: &mut Option<Pin<Box<tokio::time::Sleep>>>) {
    match timer {
        Some(timer) => timer.as_mut().await,
        None => std::future::pending().await,
    }
}

/// A session between `ready` and its end.
struct Session {
    state: GatewayState,
    rt: Arc<Realtime>,
    credentials: Credentials,
    registration: Registration,
    tracks: HashMap<ConversationId, Track>,
    /// Conversations that may have a hole waiting (a superset; only live
    /// events open holes), so the loop does not scan every track per event.
    waiting: HashSet<ConversationId>,
    last_heard: Instant,
    /// Unique across gateways and restarts (the hub numbers only locally).
    connection_id: String,
    /// Reports to the presence service; taken when the session ends.
    reporter: Option<Reporter>,
    /// The followed conversations whose members hear the user's presence
    /// (not public rooms).
    audience: BTreeSet<ConversationId>,
    /// Whether the user did anything since the last presence report.
    active: bool,
    /// Envelope ids of recent `presence` events, oldest first.
    presence_seen: VecDeque<u128>,
    /// Answers to the client's frames not sent yet, in frame order.
    owed: Owed,
}

/// Runs a session for `credentials` on `socket` until either side ends it.
///
/// Not an `async fn`: its arguments would be kept twice in the future (as
/// arguments and as locals), and every idle connection holds this future.
/// The block owns the session and the socket once; what it awaits borrows them.
pub(crate) fn run(
    mut socket: WebSocket,
    state: GatewayState,
    credentials: Credentials,
) -> impl std::future::Future<Output = ()> + Send {
    let rt = state.realtime.clone();
    let registration = rt.hub.register(credentials.user, credentials.login, rt.max_per_user);
    let mut session = registration.map(|registration| Session {
        state,
        rt,
        credentials,
        registration,
        tracks: HashMap::new(),
        waiting: HashSet::new(),
        last_heard: Instant::now(),
        connection_id: ulid::Ulid::new().to_string(),
        reporter: None,
        audience: BTreeSet::new(),
        active: true,
        presence_seen: VecDeque::new(),
        owed: Owed::default(),
    });
    // Matched by reference: moving the session out would copy it into the
    // block's frame a second time.
    async move {
        match &mut session {
            Ok(session) => session.lifetime(&mut socket).await,
            Err(TooManySessions { cap }) => {
                let refused = Error::new(
                    chatterbox_errors::Code::RateLimited,
                    format!("this user already has {cap} WebSockets open here: close one first"),
                );
                let _ = Box::pin(send(&mut socket, error(None, &refused))).await;
                Box::pin(close_with(&mut socket, close::POLICY, "too many WebSockets for this user")).await;
            }
        }
    }
}

impl Session {
    /// Opens, serves and closes the session. Steps taken once are boxed: an
    /// idle session's future keeps only what waiting needs, not the largest
    /// step it ever took.
    async fn lifetime(&mut self, socket: &mut WebSocket) {
        // Bound first: a scrutinee's temporaries (the boxed future included)
        // would otherwise stay in this future's frame for the whole match.
        let opened = Box::pin(self.open()).await;
        let end = match opened {
            Ok(()) => {
                // Rendered at once: the frame itself is not kept across awaits.
                let ready = ServerFrame::Ready {
                    user_id: self.credentials.user.to_string(),
                    connection_id: &self.connection_id,
                }
                .text();
                let sent = match Box::pin(send(socket, ready)).await {
                    Ok(()) => Box::pin(flush(socket)).await,
                    gone => gone,
                };
                match sent {
                    Ok(()) => Box::pin(self.serve(socket)).await,
                    Err(end) => end,
                }
            }
            Err(e) => {
                let _ = Box::pin(send(socket, error(None, &e))).await;
                End::Close(close::INTERNAL, "could not start the session")
            }
        };
        if let Some(reporter) = self.reporter.take() {
            reporter.closed(&self.credentials.token);
        }
        if let End::Close(code, reason) = end {
            tracing::info!(user = %self.credentials.user, code, reason, "closing a WebSocket session");
            Box::pin(close_with(socket, code, reason)).await;
        }
    }
}

impl Session {
    fn me(&self) -> UserId {
        self.credentials.user
    }

    fn request<T>(&self, message: T) -> Result<tonic::Request<T>, Error> {
        with_bearer(message, &self.credentials.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(expires_at: u64) -> Credentials {
        Credentials { user: UserId::generate(), token: "t".into(), expires_at, login: SessionId::generate() }
    }

    #[test]
    fn a_caller_is_handed_on_only_while_the_token_lives() {
        let now = unix_now();
        let live = credentials(now + 60);
        assert_eq!(live.actor().unwrap().id, live.user);
        assert_eq!(credentials(now - 1).actor().unwrap_err().code(), chatterbox_errors::Code::Unauthenticated);
    }
}
