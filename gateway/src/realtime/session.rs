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

    /// Follows the user and every conversation they are in, then tells
    /// the presence service the connection is open.
    async fn open(&mut self) -> Result<(), Error> {
        // The user's own topic first: a conversation joined while the list
        // is read is then announced rather than missed.
        self.registration.subscribe(&[Topic::User(self.me())]).await.map_err(Error::unavailable)?;
        let listed = self.conversation_ids().await?;
        let conversations: Vec<ConversationId> = listed.iter().map(|(id, _)| *id).collect();
        self.follow(&conversations).await?;
        let tracks = &self.tracks;
        self.audience =
            listed.into_iter().filter(|(id, room)| !room && tracks.contains_key(id)).map(|(id, _)| id).collect();
        let audience = self.audience.iter().map(ToString::to_string).collect();
        let state = self.state.clone();
        self.reporter =
            Some(Reporter::start(state, self.connection_id.clone(), audience, &self.credentials.token).await);
        Ok(())
    }

    /// Tells presence who hears about the user now that `audience` changed.
    fn audience_changed(&self) {
        if let Some(reporter) = &self.reporter {
            reporter.audience(self.audience.iter().map(ToString::to_string).collect(), &self.credentials.token);
        }
    }

    /// Every conversation the user is in, page by page, and whether each is a public room.
    async fn conversation_ids(&self) -> Result<Vec<(ConversationId, bool)>, Error> {
        let mut ids = Vec::new();
        let mut cursor = String::new();
        loop {
            let request = self.request(ListConversationsRequest { limit: MAX_PAGE_LIMIT, cursor })?;
            let page = self.state.conversations.clone().list_conversation_refs(request).await?.into_inner();
            ids.extend(
                page.items
                    .iter()
                    .filter_map(|c| Some((ConversationId::parse(&c.id).ok()?, c.r#type() == ConversationType::Room))),
            );
            if page.next_cursor.is_empty() {
                return Ok(ids);
            }
            cursor = page.next_cursor;
        }
    }

    /// Subscribes `conversations`, then reads where each stands: the
    /// subscription comes first so nothing committed after the read is lost.
    async fn follow(&mut self, conversations: &[ConversationId]) -> Result<(), Error> {
        if conversations.is_empty() {
            return Ok(());
        }
        let topics: Vec<Topic> = conversations.iter().copied().map(Topic::Conversation).collect();
        self.registration.subscribe(&topics).await.map_err(Error::unavailable)?;
        for chunk in conversations.chunks(MAX_PAGE_LIMIT as usize) {
            let conversation_ids = chunk.iter().map(ToString::to_string).collect();
            let request = self.request(GetPositionsRequest { conversation_ids })?;
            let positions = match self.state.messages.clone().get_positions(request).await {
                Ok(answer) => answer.into_inner().positions,
                Err(status) => {
                    // Keep what is followed already; drop the rest.
                    self.unsubscribe_untracked(conversations);
                    return Err(status.into());
                }
            };
            for p in positions {
                if let Ok(id) = ConversationId::parse(&p.conversation_id) {
                    self.tracks.entry(id).or_insert_with(|| Track::new(p.seq));
                }
            }
        }
        // Left in the meantime: no position, so no events either.
        self.unsubscribe_untracked(conversations);
        Ok(())
    }

    /// Unsubscribes those of `conversations` that have no track.
    fn unsubscribe_untracked(&self, conversations: &[ConversationId]) {
        let untracked: Vec<Topic> =
            conversations.iter().filter(|c| !self.tracks.contains_key(c)).copied().map(Topic::Conversation).collect();
        if !untracked.is_empty() {
            self.registration.unsubscribe(&untracked);
        }
    }

    /// Stops following `conversation`.
    fn unfollow(&mut self, conversation: ConversationId) {
        self.tracks.remove(&conversation);
        self.registration.unsubscribe(&[Topic::Conversation(conversation)]);
        if self.audience.remove(&conversation) {
            self.audience_changed();
        }
    }

    async fn serve(&mut self, socket: &mut WebSocket) -> End {
        let halt = self.registration.halt.clone();
        let period = self.rt.heartbeat;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
        let mut steps_unflushed = 0;
        // Two timers kept across turns and moved only when their instant
        // changes (a fresh token, another hole), not made anew per event.
        let mut expiry_for = self.credentials.expires_at;
        let expiry = tokio::time::sleep_until(self.credentials.deadline());
        tokio::pin!(expiry);
        let mut repair_for = None;
        // Made when a hole first waits (rare): an idle session keeps one timer.
        let mut repair: Option<Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            let tracks = &self.tracks;
            self.waiting.retain(|c| tracks.get(c).is_some_and(|t| t.repair_at().is_some()));
            let repair_at = self.waiting.iter().filter_map(|c| tracks.get(c)?.repair_at()).min().map(Instant::from_std);
            if self.credentials.expires_at != expiry_for {
                expiry_for = self.credentials.expires_at;
                expiry.as_mut().reset(self.credentials.deadline());
            }
            if let Some(at) = repair_at
                && repair_for != Some(at)
            {
                repair_for = Some(at);
                match repair.as_mut() {
                    Some(timer) => timer.as_mut().reset(at),
                    None => repair = Some(Box::pin(tokio::time::sleep_until(at))),
                }
            }
            // Outbound first: a session drains what it owes its client before
            // it reads more from it (frames are rate-limited; events are not),
            // and reads none while too many of its answers are still owed.
            let step = tokio::select! {
                biased;
                reason = halt.wait() => Step::Halt(reason),
                answer = self.owed.next(), if !self.owed.is_empty() => Step::Answer(answer),
                Some(event) = self.registration.mailbox.recv() => Step::Event(event),
                frame = socket.recv(), if !self.owed.is_full() => Step::Frame(frame),
                _ = heartbeat.tick() => Step::Heartbeat,
                () = &mut expiry => Step::Expired,
                () = fire(&mut repair), if repair_at.is_some() => Step::Repair,
            };
            let outcome = match step {
                Step::Frame(Some(Ok(message))) => {
                    self.last_heard = Instant::now();
                    Box::pin(self.on_message(socket, message)).await
                }
                Step::Frame(Some(Err(e))) if frame_too_big(&e) => Err(End::Close(close::TOO_BIG, "frame too large")),
                Step::Frame(_) => Err(End::Gone),
                Step::Event(event) => Box::pin(self.on_event(socket, event)).await,
                Step::Answer(Some(frame)) => send(socket, frame).await,
                Step::Answer(None) => Ok(()),
                Step::Halt(HaltReason::TooSlow) => {
                    Err(End::Close(close::TRY_AGAIN_LATER, "too slow: reconnect and resume"))
                }
                Step::Halt(HaltReason::SessionEnded) => {
                    let ended = Error::unauthenticated("this login session has ended: log in again");
                    let _ = Box::pin(send(socket, error(None, &ended))).await;
                    Err(End::Close(close::UNAUTHENTICATED, "login session ended"))
                }
                Step::Heartbeat => Box::pin(self.on_heartbeat(socket)).await,
                Step::Expired => {
                    let expired = Error::unauthenticated("access token expired: reconnect with a fresh one");
                    let _ = Box::pin(send(socket, error(None, &expired))).await;
                    Err(End::Close(close::UNAUTHENTICATED, "access token expired"))
                }
                Step::Repair => Box::pin(self.repair_holes(socket)).await,
            };
            if let Err(end) = outcome {
                return end;
            }
            // One write for everything the steps since the last flush
            // queued: once nothing more is ready, or after a bounded run.
            steps_unflushed += 1;
            if self.registration.mailbox.is_empty() || steps_unflushed >= STEPS_PER_FLUSH {
                steps_unflushed = 0;
                if let Err(end) = flush(socket).await {
                    return end;
                }
            }
        }
    }

    async fn on_heartbeat(&mut self, socket: &mut WebSocket) -> Result<(), End> {
        if self.owed.is_full() {
            // Not reading frames (answers are owed): silence proves nothing.
            self.last_heard = Instant::now();
        }
        if self.last_heard.elapsed() > self.rt.heartbeat * 2 {
            return Err(End::Gone);
        }
        if let Some(reporter) = &self.reporter {
            reporter.alive(std::mem::take(&mut self.active), &self.credentials.token);
        }
        match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Ping(Default::default()))).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(End::Gone),
        }
    }

    /// Takes in one frame; its answer joins those owed.
    async fn on_message(&mut self, socket: &mut WebSocket, message: Message) -> Result<(), End> {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                self.owed.push_ready(error(None, &Error::invalid("frames are JSON text, not binary")));
                return Ok(());
            }
            // Pongs prove liveness (already noted); pings are answered by
            // the WebSocket layer; a close is answered likewise, and the
            // next read ends the session.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => return Ok(()),
        };
        if let Some(retry_after) = self.rate_limited().await {
            let frame = ServerFrame::Error {
                id: parse(&text).ok().and_then(|i| i.id),
                code: chatterbox_errors::Code::RateLimited.as_str(),
                message: "too many frames: slow down",
                retry_after_ms: Some(retry_after.as_millis().try_into().unwrap_or(u64::MAX).max(1)),
            };
            self.owed.push_ready(frame.text());
            return Ok(());
        }
        match parse(&text) {
            Ok(Incoming { id, frame }) => match self.on_frame(socket, id.clone(), frame).await {
                Ok(()) => {}
                Err(Fail::Api(e)) => self.owed.push_ready(error(id, &e)),
                Err(Fail::End(end)) => return Err(end),
            },
            Err((id, e)) => self.owed.push_ready(error(id, &e)),
        }
        Ok(())
    }

    /// `Some(wait)` when the user is over their frame rate.
    async fn rate_limited(&self) -> Option<Duration> {
        let limiter = self.rt.limiter.as_ref()?;
        match limiter.acquire(&self.me().to_string()).await {
            Ok(decision) if !decision.allowed => Some(decision.retry_after),
            Ok(_) => None,
            Err(e) => {
                // A limiter outage must not take chat down with it.
                tracing::warn!(error = %e, "WebSocket rate limiter unavailable; frame allowed");
                None
            }
        }
    }

    /// Acts on one frame. What waits on a service is owed (answered later,
    /// in order) rather than awaited here; only `resume`, which writes
    /// history straight to the socket, runs in the loop, once every earlier
    /// answer is out.
    async fn on_frame(&mut self, socket: &mut WebSocket, id: Option<Value>, frame: ClientFrame) -> Result<(), Fail> {
        // What a person does, as opposed to what a client does by itself.
        if matches!(
            frame,
            ClientFrame::Send { .. }
                | ClientFrame::Read { .. }
                | ClientFrame::Typing { .. }
                | ClientFrame::PresenceSet { .. }
        ) {
            self.active = true;
        }
        match frame {
            ClientFrame::Ping => self.owed.push_ready(ServerFrame::Pong { id }.text()),
            ClientFrame::Auth { access_token } => {
                let fresh = Credentials::verify(&self.state, &access_token)?;
                if fresh.user != self.me() {
                    return Err(Error::permission_denied("a session cannot change user").into());
                }
                if fresh.login != self.credentials.login {
                    self.registration.relogin(fresh.login);
                }
                self.credentials = fresh;
                self.owed.push_ready(ServerFrame::Ack { id, message: None }.text());
            }
            ClientFrame::Send { conversation_id, content, message_type, attachments, client_id } => {
                let request = SendMessageRequest {
                    conversation_id,
                    content,
                    r#type: message_type,
                    attachment_ids: attachments,
                    client_id: Some(client_id),
                };
                let caller = self.credentials.actor()?;
                let (admission, api) = (self.state.sends.clone(), self.state.message_api.clone());
                self.owed.push(Box::pin(async move {
                    // Admitted when its turn comes: a queued send holds no slot.
                    let admitted = match admission.admit() {
                        Ok(admitted) => admitted,
                        Err(overloaded) => {
                            let e = overloaded.error();
                            let frame = ServerFrame::Error {
                                id,
                                code: e.code().as_str(),
                                message: e.message(),
                                retry_after_ms: Some(overloaded.retry_after_ms()),
                            };
                            return Some(frame.text());
                        }
                    };
                    let sent = api.send_message(&caller, request).await;
                    drop(admitted);
                    let message = sent.and_then(|sent| {
                        sent.message.ok_or_else(|| Error::invariant("SendMessage answered without a message"))
                    });
                    Some(match message {
                        Ok(message) => ServerFrame::Ack { id, message: Some(MessageView::from(message)) }.text(),
                        Err(e) => error(id, &e),
                    })
                }));
            }
            ClientFrame::Read { conversation_id, seq } => {
                let request = self.request(MarkReadRequest { conversation_id, seq })?;
                let messages = self.state.messages.clone();
                self.owed.push(Box::pin(async move { answer(id, messages.mark_read(request).await) }));
            }
            ClientFrame::Typing { conversation_id, state } => {
                let conversation = self.followed(&conversation_id)?;
                let event = Event::Typing(Typing {
                    conversation_id,
                    user_id: self.me().to_string(),
                    state: state.as_str().to_owned(),
                });
                let bus = self.rt.bus.clone();
                self.owed.push(Box::pin(async move {
                    let topics = [Topic::Conversation(conversation)];
                    publish_after_commit(bus.as_ref(), &topics, &envelope(event, Timestamp::now())).await;
                    ack(id)
                }));
            }
            ClientFrame::PresenceSet { status } => {
                let request = self.request(SetStatusRequest { status })?;
                let presence = self.state.presence.clone();
                self.owed.push(Box::pin(async move { answer(id, presence.set_status(request).await) }));
            }
            ClientFrame::Resume { positions } => Box::pin(self.resume(socket, id, positions)).await?,
        }
        Ok(())
    }

    /// Replays what the client missed in each named conversation, within
    /// bounds: at most [`MAX_RESUMED`] conversations per frame, and per
    /// conversation at most the gateway's reach of messages and changes;
    /// one further behind is named in `resumed.history` instead, for the
    /// client to reload from history (live events go on).
    async fn resume(
        &mut self,
        socket: &mut WebSocket,
        id: Option<Value>,
        positions: BTreeMap<String, u64>,
    ) -> Result<(), Fail> {
        while !self.owed.is_empty() {
            if let Some(frame) = self.owed.next().await {
                send(socket, frame).await?;
            }
        }
        if positions.len() > MAX_RESUMED {
            let refused =
                Error::invalid(format!("at most {MAX_RESUMED} conversations per resume: send the rest in another"));
            send(socket, error(id, &refused)).await?;
            return Ok(());
        }
        let reach = self.rt.resume_reach;
        let followed: Vec<String> = positions.keys().filter(|c| self.followed(c).is_ok()).cloned().collect();
        let latest = self.latest(followed).await?;
        let mut reached = BTreeMap::new();
        let mut history = BTreeMap::new();
        for (conversation_id, from) in positions {
            let conversation = match self.followed(&conversation_id) {
                Ok(c) => c,
                Err(e) => {
                    send(socket, error(id.clone(), &e)).await?;
                    continue;
                }
            };
            let now = latest.get(&conversation_id).copied().unwrap_or(0);
            if now.saturating_sub(from) > reach {
                history.insert(conversation_id, now);
                continue;
            }
            match self.replay(socket, conversation, from, 0, reach).await {
                Ok(Some(position)) => {
                    reached.insert(conversation_id, position);
                }
                Ok(None) => {
                    history.insert(conversation_id, now);
                }
                Err(Fail::Api(e)) => send(socket, error(id.clone(), &e)).await?,
                Err(end) => return Err(end),
            }
        }
        if !history.is_empty() {
            metrics::counter!("ws_resumes_left_to_history_total").increment(history.len() as u64);
        }
        send(socket, ServerFrame::Resumed { id, positions: reached, history }.text()).await?;
        Ok(())
    }

    /// The latest `seq` of each conversation, in one call.
    async fn latest(&self, conversation_ids: Vec<String>) -> Result<HashMap<String, u64>, Fail> {
        if conversation_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let request = self.request(GetPositionsRequest { conversation_ids })?;
        let positions = self.state.messages.clone().get_positions(request).await?.into_inner().positions;
        Ok(positions.into_iter().map(|p| (p.conversation_id, p.seq)).collect())
    }

    /// A conversation this session follows (the user is in it), else 404.
    fn followed(&self, conversation_id: &str) -> Result<ConversationId, Error> {
        ConversationId::parse(conversation_id)
            .ok()
            .filter(|c| self.tracks.contains_key(c))
            .ok_or_else(|| Error::not_found("conversation not found"))
    }

    /// Sends what followed `from` in `conversation`: edits and deletions of
    /// messages up to `from` after change `after_change`, then every newer
    /// message this session has not sent yet. Returns the position reached,
    /// or `None` once more than `reach` changes came up (the rest is left to
    /// history; what was sent is current, and no message was replayed).
    async fn replay(
        &mut self,
        socket: &mut WebSocket,
        conversation: ConversationId,
        from: u64,
        after_change: u64,
        reach: u64,
    ) -> Result<Option<u64>, Fail> {
        let client = self.state.messages.clone();
        let conversation_id = conversation.to_string();
        if let Some(track) = self.tracks.get_mut(&conversation) {
            track.replay_begin();
        }
        if self.tracks.get(&conversation).is_some_and(|t| from > t.position()) {
            // Beyond what this session knows: ask where the conversation is now.
            let request = self.request(GetPositionsRequest { conversation_ids: vec![conversation_id.clone()] })?;
            let latest = client.get_positions(request).await?.into_inner().positions.first().map_or(0, |p| p.seq);
            if from > latest {
                return Err(Error::invalid(format!(
                    "position {from} is beyond the conversation's last message ({latest})"
                ))
                .into());
            }
        }
        let mut after_change = after_change;
        let mut changes: u64 = 0;
        loop {
            let request = self.request(ListChangesRequest {
                conversation_id: conversation_id.clone(),
                after_seq: from,
                after_change,
                limit: MAX_PAGE_LIMIT,
            })?;
            let page = client.list_changes(request).await?.into_inner();
            for m in page.items {
                if changes >= reach {
                    return Ok(None);
                }
                after_change = m.change_seq;
                if let Some(track) = self.tracks.get_mut(&conversation) {
                    track.replayed_change(&m.id, m.change_seq);
                }
                changes += 1;
                send(socket, message_changed(m)).await?;
            }
            if !page.has_more {
                break;
            }
        }
        let mut after = from;
        loop {
            let request = self.request(ListMessagesRequest {
                conversation_id: conversation_id.clone(),
                before: None,
                after: Some(after),
                limit: MAX_PAGE_LIMIT,
            })?;
            let items = client.list_messages(request).await?.into_inner().items;
            let full = items.len() >= MAX_PAGE_LIMIT as usize;
            for m in items {
                after = m.seq;
                let fresh = match self.tracks.get_mut(&conversation) {
                    Some(track) => track.replayed(&m.id, m.seq, m.change_seq),
                    None => Some(Default::default()),
                };
                if let Some(newer_changes) = fresh {
                    send(socket, message_new(m)).await?;
                    for event in newer_changes {
                        send(socket, event.text.clone()).await?;
                    }
                }
            }
            if !full {
                break;
            }
        }
        let Some(track) = self.tracks.get_mut(&conversation) else { return Ok(Some(after)) };
        let waiting = track.replay_done(from);
        let position = track.position();
        for event in waiting {
            send(socket, event.text.clone()).await?;
        }
        Ok(Some(position))
    }

    /// Reads the holes that did not fill by themselves from history.
    async fn repair_holes(&mut self, socket: &mut WebSocket) -> Result<(), End> {
        let now = std::time::Instant::now();
        let due: Vec<(ConversationId, u64, u64)> = self
            .waiting
            .iter()
            .filter_map(|c| self.tracks.get(c).map(|t| (c, t)))
            .filter(|(_, t)| t.repair_at().is_some_and(|at| at <= now))
            .map(|(c, t)| (*c, t.position(), t.change_mark()))
            .collect();
        for (conversation, position, change) in due {
            metrics::counter!("ws_repairs_total").increment(1);
            if !self.catch_up(socket, conversation, position, change).await?
                && let Some(track) = self.tracks.get_mut(&conversation)
            {
                // Try again later rather than on every turn of the loop.
                track.postpone(std::time::Instant::now());
            }
        }
        Ok(())
    }

    /// A replay on the session's own initiative: failures are logged, not
    /// sent; returns whether it succeeded.
    async fn catch_up(
        &mut self,
        socket: &mut WebSocket,
        conversation: ConversationId,
        from: u64,
        after_change: u64,
    ) -> Result<bool, End> {
        // A hole is bounded by the session's backlog: no reach applies.
        match self.replay(socket, conversation, from, after_change, u64::MAX).await {
            Ok(_) => Ok(true),
            Err(Fail::End(end)) => Err(end),
            Err(Fail::Api(e)) => {
                tracing::warn!(%conversation, error = %e, "could not catch up from history");
                Ok(false)
            }
        }
    }

    /// The bus may have lost events: catch up on membership and on every
    /// conversation from where this session stands.
    async fn after_gap(&mut self, socket: &mut WebSocket) -> Result<(), End> {
        match self.conversation_ids().await {
            Ok(now) => {
                let gone: Vec<ConversationId> =
                    self.tracks.keys().filter(|c| !now.iter().any(|(id, _)| id == *c)).copied().collect();
                for conversation in gone {
                    let left = ServerFrame::ConversationLeft { conversation_id: &conversation.to_string() }.text();
                    self.unfollow(conversation);
                    send(socket, left).await?;
                }
                let fresh: Vec<(ConversationId, bool)> =
                    now.into_iter().filter(|(c, _)| !self.tracks.contains_key(c)).collect();
                for (conversation, room) in fresh {
                    self.joined(socket, conversation, room, None).await?;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not re-read conversations after a gap"),
        }
        let positions: Vec<(ConversationId, u64, u64)> =
            self.tracks.iter().map(|(c, t)| (*c, t.position(), t.change_mark())).collect();
        for (conversation, position, change) in positions {
            self.catch_up(socket, conversation, position, change).await?;
        }
        Ok(())
    }

    /// The user is in `conversation` (a public room or not) now: follow it,
    /// then say so.
    async fn joined(
        &mut self,
        socket: &mut WebSocket,
        conversation: ConversationId,
        room: bool,
        frame: Option<Utf8Bytes>,
    ) -> Result<(), End> {
        if self.tracks.contains_key(&conversation) {
            return Ok(());
        }
        if let Err(e) = self.follow(&[conversation]).await {
            // Announcing a conversation whose messages would not arrive is
            // worse than a reconnect, which starts from a consistent state.
            tracing::warn!(%conversation, error = %e, "could not follow a joined conversation");
            return Err(End::Close(close::INTERNAL, "could not follow a joined conversation: reconnect"));
        }
        if !self.tracks.contains_key(&conversation) {
            // Gone again before we could follow it.
            return Ok(());
        }
        if !room && self.audience.insert(conversation) {
            self.audience_changed();
        }
        let frame = match frame {
            Some(frame) => frame,
            None => match self.conversation_frame(conversation).await {
                Some(frame) => frame,
                None => return Ok(()),
            },
        };
        send(socket, frame).await
    }

    /// `conversation.joined` for a conversation found after a gap.
    async fn conversation_frame(&self, conversation: ConversationId) -> Option<Utf8Bytes> {
        let request = self
            .request(chatterbox_proto::conversation::v1::GetConversationRequest { id: conversation.to_string() })
            .ok()?;
        let c = self.state.conversations.clone().get_conversation(request).await.ok()?.into_inner();
        Some(ServerFrame::ConversationJoined { conversation: super::frames::conversation_view(c) }.text())
    }

    async fn on_event(&mut self, socket: &mut WebSocket, event: Arc<Outbound>) -> Result<(), End> {
        match &event.kind {
            Kind::NewMessage { conversation, .. } | Kind::Changed { conversation, .. } => {
                let Some(track) = self.tracks.get_mut(conversation) else { return Ok(()) };
                let now = std::time::Instant::now();
                let ready = match &event.kind {
                    Kind::NewMessage { seq, .. } => track.live(*seq, event.clone(), now),
                    Kind::Changed { message, seq, change, .. } => {
                        track.live_change(message, *seq, *change, event.clone(), now)
                    }
                    // The outer arm admits only the two kinds above.
                    _ => Default::default(),
                };
                if track.backlog() > MAILBOX_CAPACITY {
                    return Err(End::Close(close::TRY_AGAIN_LATER, "too far behind: reconnect and resume"));
                }
                if track.repair_at().is_some() {
                    self.waiting.insert(*conversation);
                }
                for event in ready {
                    send(socket, event.text.clone()).await?;
                }
                Ok(())
            }
            Kind::Typing { user } | Kind::MemberChanged { user } if *user == self.me() => Ok(()),
            Kind::Typing { .. } | Kind::MemberChanged { .. } | Kind::Plain => send(socket, event.text.clone()).await,
            Kind::Joined { conversation, room } => {
                self.joined(socket, *conversation, *room, Some(event.text.clone())).await
            }
            Kind::Presence { id } => {
                if self.presence_seen.contains(id) {
                    return Ok(());
                }
                if self.presence_seen.len() == PRESENCE_SEEN {
                    self.presence_seen.pop_front();
                }
                self.presence_seen.push_back(*id);
                send(socket, event.text.clone()).await
            }
            Kind::Left { conversation } => {
                let known = self.tracks.contains_key(conversation);
                self.unfollow(*conversation);
                if known { send(socket, event.text.clone()).await } else { Ok(()) }
            }
            Kind::Gap => self.after_gap(socket).await,
        }
    }
}

/// `ack` for a frame that carried an `id`; nothing for one that did not.
fn ack(id: Option<Value>) -> Option<Utf8Bytes> {
    id.is_some().then(|| ServerFrame::Ack { id, message: None }.text())
}

/// The answer to a frame a service call carried out: [`ack`], or `error`.
fn answer<T>(id: Option<Value>, outcome: Result<T, tonic::Status>) -> Option<Utf8Bytes> {
    match outcome {
        Ok(_) => ack(id),
        Err(status) => Some(error(id, &status.into())),
    }
}

/// Whether a read failed because a frame exceeded the size cap.
pub(crate) fn frame_too_big(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(tungstenite::Error::Capacity(_)) = err.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = err.source();
    }
    false
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
