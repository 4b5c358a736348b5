//! One bus subscription per gateway process, shared by all its sockets.
//!
//! The hub counts, per topic, the local sessions that need it: the first
//! one subscribes the topic on the bus, the last one to leave unsubscribes
//! it. So a gateway receives each event once, whatever number of its sockets
//! it is for, and only events some of its users need; adding gateways adds
//! capacity instead of multiplying traffic. Each event is rendered once and
//! offered to every interested session's bounded mailbox; a session whose
//! mailbox is full is told to disconnect (it can resume), never buffered
//! without limit.
//!
//! The hub also knows each session's login session: when one ends (logout,
//! `DELETE /auth/sessions/{id}`, a replayed refresh token, on any gateway),
//! its sockets here are told to close.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use chatterbox_events::{EventBus, Received, Subscription, Topic};
use chatterbox_identity::Revocations;
use tokio::sync::{Notify, broadcast, mpsc, oneshot};

use chatterbox_types::{SessionId, UserId};

use super::delivery::{Kind, Outbound, outbound};

/// Events a session may have waiting before it counts as too slow.
pub(crate) const MAILBOX_CAPACITY: usize = 1024;

/// Routes bus events to the sessions of this gateway.
#[derive(Debug)]
pub struct Hub {
    routes: Mutex<Routes>,
    commands: mpsc::UnboundedSender<Command>,
    next_id: AtomicU64,
    revocations: Revocations,
}

#[derive(Debug, Default)]
struct Routes {
    by_topic: HashMap<Topic, Local>,
    sessions: HashMap<u64, Session>,
    /// Open sessions per user, for the cap on each user's sockets.
    per_user: HashMap<UserId, u32>,
}

/// The sessions of this gateway that follow one topic.
#[derive(Debug, Default)]
struct Local {
    endpoints: HashMap<u64, Endpoint>,
    /// `endpoints` as a list, made by the first event after a change: an
    /// event is offered to it outside the lock, so sessions come and go
    /// while a large fan-out runs.
    snapshot: Option<Arc<[Endpoint]>>,
}

impl Local {
    fn insert(&mut self, id: u64, endpoint: Endpoint) {
        self.endpoints.insert(id, endpoint);
        self.snapshot = None;
    }

    fn remove(&mut self, id: u64) {
        if self.endpoints.remove(&id).is_some() {
            self.snapshot = None;
        }
    }

    fn snapshot(&mut self) -> Arc<[Endpoint]> {
        let endpoints = &self.endpoints;
        self.snapshot.get_or_insert_with(|| endpoints.values().cloned().collect()).clone()
    }
}

#[derive(Debug)]
struct Session {
    endpoint: Endpoint,
    topics: HashSet<Topic>,
    /// The login session of the token it runs on.
    login: SessionId,
}

/// Where the hub drops a session's events.
#[derive(Debug, Clone)]
struct Endpoint {
    /// The session's user: their own typing indicators are not sent back.
    user: UserId,
    mailbox: mpsc::Sender<Arc<Outbound>>,
    halt: Arc<Halt>,
}

/// Why the hub stops a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HaltReason {
    /// Its mailbox overflowed: it fell too far behind.
    TooSlow = 1,
    /// Its login session ended.
    SessionEnded = 2,
}

/// Raised once, by the first reason to stop a session.
#[derive(Debug, Default)]
pub(crate) struct Halt {
    /// 0 while the session may go on, else a [`HaltReason`].
    reason: AtomicU8,
    notify: Notify,
}

impl Halt {
    /// Whether the session was told to stop.
    pub(crate) fn raised(&self) -> bool {
        self.reason.load(Ordering::Acquire) != 0
    }

    fn raise(&self, reason: HaltReason) {
        if self.reason.compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.notify.notify_one();
        }
    }

    /// Resolves with the reason once the session is told to stop.
    pub(crate) async fn wait(&self) -> HaltReason {
        loop {
            match self.reason.load(Ordering::Acquire) {
                0 => self.notify.notified().await,
                1 => return HaltReason::TooSlow,
                _ => return HaltReason::SessionEnded,
            }
        }
    }
}

impl Endpoint {
    fn offer(&self, event: &Arc<Outbound>) {
        if self.halt.raised() || matches!(event.kind, Kind::Typing { user } if user == self.user) {
            return;
        }
        match self.mailbox.try_send(event.clone()) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("ws_slow_consumers_total").increment(1);
                self.halt.raise(HaltReason::TooSlow);
            }
            // The session is ending; its registration goes with it.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

#[derive(Debug)]
enum Command {
    /// Subscribe `topics` (may be empty) and answer once the bus has them,
    /// so a session can read history knowing no later event can slip past.
    Subscribe {
        topics: Vec<Topic>,
        done: oneshot::Sender<()>,
    },
    Unsubscribe {
        topics: Vec<Topic>,
    },
}

/// A user already holds as many sessions on this gateway as allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooManySessions {
    /// The cap.
    pub cap: u32,
}

/// A session's place in the hub; dropping it removes the session.
#[derive(Debug)]
pub(crate) struct Registration {
    hub: Arc<Hub>,
    id: u64,
    /// Events for the session, in bus order.
    pub mailbox: mpsc::Receiver<Arc<Outbound>>,
    /// Raised when the session must stop (its mailbox overflowed, or its
    /// login session ended).
    pub halt: Arc<Halt>,
}

impl Registration {
    /// The session now runs on a token of `login` (a fresh token sent on
    /// the socket).
    pub(crate) fn relogin(&self, login: SessionId) {
        self.hub.relogin(self.id, login);
    }

    /// Adds topics; returns once the bus delivers them.
    pub(crate) async fn subscribe(&self, topics: &[Topic]) -> anyhow::Result<()> {
        self.hub.subscribe(self.id, topics).await
    }

    /// Removes topics.
    pub(crate) fn unsubscribe(&self, topics: &[Topic]) {
        self.hub.unsubscribe(self.id, topics);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

impl Hub {
    /// Opens the gateway's subscription on `bus` and starts routing; stops
    /// the sessions whose login sessions `revocations` reports ended.
    pub async fn start(bus: Arc<dyn EventBus>, revocations: Revocations) -> anyhow::Result<Arc<Hub>> {
        let subscription = bus.subscription().await?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let notices = revocations.notices();
        let hub =
            Arc::new(Hub { routes: Mutex::new(Routes::default()), commands, next_id: AtomicU64::new(1), revocations });
        tokio::spawn(pump(Arc::downgrade(&hub), subscription, receiver));
        tokio::spawn(end_logins(Arc::downgrade(&hub), notices));
        Ok(hub)
    }

    /// Registers a session of `user`, running on a token of `login`, with no
    /// topics yet; refused when the user already has `cap` sessions on this
    /// gateway (0: no cap).
    pub(crate) fn register(
        self: &Arc<Self>,
        user: UserId,
        login: SessionId,
        cap: u32,
    ) -> Result<Registration, TooManySessions> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, mailbox) = mpsc::channel(MAILBOX_CAPACITY);
        let halt = Arc::new(Halt::default());
        let endpoint = Endpoint { user, mailbox: sender, halt: halt.clone() };
        {
            let mut routes = self.lock();
            let open = routes.per_user.entry(user).or_default();
            if cap > 0 && *open >= cap {
                metrics::counter!("ws_sessions_refused_total").increment(1);
                return Err(TooManySessions { cap });
            }
            *open += 1;
            routes.sessions.insert(id, Session { endpoint, topics: HashSet::new(), login });
        }
        // Checked after the session is in the map: an end recorded before
        // this is seen here, one recorded after finds the session there.
        if self.revocations.is_ended(login) {
            halt.raise(HaltReason::SessionEnded);
        }
        metrics::gauge!("ws_sessions").increment(1.0);
        Ok(Registration { hub: self.clone(), id, mailbox, halt })
    }

    fn relogin(&self, id: u64, login: SessionId) {
        let halt = {
            let mut routes = self.lock();
            let Some(session) = routes.sessions.get_mut(&id) else { return };
            session.login = login;
            session.endpoint.halt.clone()
        };
        if self.revocations.is_ended(login) {
            halt.raise(HaltReason::SessionEnded);
        }
    }

    /// Stops every session running on one of `ended` (one pass over the
    /// sessions, however many ended at once).
    fn stop_logins(&self, ended: impl Fn(SessionId) -> bool) {
        let mut stopped = 0;
        for session in self.lock().sessions.values().filter(|s| ended(s.login)) {
            session.endpoint.halt.raise(HaltReason::SessionEnded);
            stopped += 1;
        }
        if stopped > 0 {
            metrics::counter!("ws_sessions_ended_by_logout_total").increment(stopped);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Routes> {
        // A panic while holding the lock cannot leave the maps half-changed
        // in a way that matters more than losing every socket would.
        self.routes.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn subscribe(&self, id: u64, topics: &[Topic]) -> anyhow::Result<()> {
        let (done, answer) = oneshot::channel();
        {
            let mut routes = self.lock();
            let Routes { by_topic, sessions, .. } = &mut *routes;
            let Some(session) = sessions.get_mut(&id) else { anyhow::bail!("session is gone") };
            let mut fresh = Vec::new();
            for topic in topics {
                if session.topics.insert(*topic) {
                    let local = by_topic.entry(*topic).or_default();
                    if local.endpoints.is_empty() {
                        fresh.push(*topic);
                    }
                    local.insert(id, session.endpoint.clone());
                }
            }
            // Sent under the lock: the bus sees subscribes and unsubscribes
            // in the order the counts changed. Even with nothing fresh, the
            // answer waits for an earlier session's subscribe of these topics.
            self.commands.send(Command::Subscribe { topics: fresh, done })?;
        }
        answer.await?;
        Ok(())
    }

    fn unsubscribe(&self, id: u64, topics: &[Topic]) {
        let mut routes = self.lock();
        let Routes { by_topic, sessions, .. } = &mut *routes;
        let Some(session) = sessions.get_mut(&id) else { return };
        let gone: Vec<Topic> = topics.iter().copied().filter(|t| session.topics.remove(t)).collect();
        self.forget(by_topic, id, gone);
    }

    fn remove(&self, id: u64) {
        let mut routes = self.lock();
        let Routes { by_topic, sessions, per_user } = &mut *routes;
        if let Some(session) = sessions.remove(&id) {
            metrics::gauge!("ws_sessions").decrement(1.0);
            let user = session.endpoint.user;
            if let Some(open) = per_user.get_mut(&user) {
                *open -= 1;
                if *open == 0 {
                    per_user.remove(&user);
                }
            }
            self.forget(by_topic, id, session.topics.into_iter().collect());
        }
    }

    /// Drops `id` from `topics`; unsubscribes those nobody here needs now.
    fn forget(&self, by_topic: &mut HashMap<Topic, Local>, id: u64, topics: Vec<Topic>) {
        let mut unused = Vec::new();
        for topic in topics {
            if let Some(local) = by_topic.get_mut(&topic) {
                local.remove(id);
                if local.endpoints.is_empty() {
                    by_topic.remove(&topic);
                    unused.push(topic);
                }
            }
        }
        if !unused.is_empty() {
            // Only fails when the pump is gone, and then nothing is subscribed.
            let _ = self.commands.send(Command::Unsubscribe { topics: unused });
        }
    }

    fn dispatch(&self, topic: Topic, event: &Arc<Outbound>) {
        // The lock covers only taking the list. A session that joins after
        // it is taken waits for its subscribe answer, which the pump gives
        // after this event, and then reads history, which holds it.
        let Some(endpoints) = self.lock().by_topic.get_mut(&topic).map(Local::snapshot) else { return };
        metrics::counter!("ws_deliveries_total").increment(endpoints.len() as u64);
        for endpoint in endpoints.iter() {
            endpoint.offer(event);
        }
    }

    fn broadcast_gap(&self) {
        let gap = Arc::new(Outbound::gap());
        for session in self.lock().sessions.values() {
            session.endpoint.offer(&gap);
        }
    }
}

/// Stops the sessions of each login session as it ends, until the hub is
/// dropped. Ends that arrive together are handled in one pass; after
/// falling behind, every session is checked against the revocations.
async fn end_logins(hub: Weak<Hub>, mut notices: broadcast::Receiver<SessionId>) {
    loop {
        let first = notices.recv().await;
        let Some(hub) = hub.upgrade() else { return };
        match first {
            Ok(first) => {
                let mut ended = HashSet::from([first]);
                while let Ok(next) = notices.try_recv() {
                    ended.insert(next);
                }
                hub.stop_logins(|login| ended.contains(&login));
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let revocations = hub.revocations.clone();
                hub.stop_logins(|login| revocations.is_ended(login));
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Applies subscription changes and routes events until the hub is dropped.
async fn pump(hub: Weak<Hub>, mut subscription: Box<dyn Subscription>, mut commands: mpsc::UnboundedReceiver<Command>) {
    loop {
        tokio::select! {
            biased;
            command = commands.recv() => match command {
                // Every sender is the hub itself: it is gone.
                None => return,
                Some(Command::Subscribe { topics, done }) => {
                    if !topics.is_empty()
                        && let Err(e) = subscription.subscribe(&topics).await
                    {
                        tracing::warn!(error = %e, "subscribing failed");
                    }
                    let _ = done.send(());
                }
                Some(Command::Unsubscribe { topics }) => {
                    if let Err(e) = subscription.unsubscribe(&topics).await {
                        tracing::warn!(error = %e, "unsubscribing failed");
                    }
                }
            },
            received = subscription.next() => {
                let Some(hub) = hub.upgrade() else { return };
                match received {
                    None => {
                        tracing::warn!("event bus closed; real-time delivery stops");
                        return;
                    }
                    Some(Received::Gap) => {
                        tracing::info!("event bus gap: sessions catch up from history");
                        hub.broadcast_gap();
                    }
                    Some(Received::Event { topic, envelope }) => {
                        if let Some(event) = outbound(topic, &envelope) {
                            hub.dispatch(topic, &Arc::new(event));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        let (mailbox, _) = mpsc::channel(1);
        Endpoint { user: UserId::generate(), mailbox, halt: Arc::default() }
    }

    fn users(snapshot: &[Endpoint]) -> HashSet<UserId> {
        snapshot.iter().map(|e| e.user).collect()
    }

    #[test]
    fn a_topic_snapshot_is_reused_until_its_sessions_change() {
        let mut local = Local::default();
        let (a, b) = (endpoint(), endpoint());
        local.insert(1, a.clone());
        let first = local.snapshot();
        assert!(Arc::ptr_eq(&first, &local.snapshot()), "no change: the same list");

        local.insert(2, b.clone());
        assert_eq!(users(&local.snapshot()), HashSet::from([a.user, b.user]));
        local.remove(1);
        assert_eq!(users(&local.snapshot()), HashSet::from([b.user]));

        let kept = local.snapshot();
        local.remove(7);
        assert!(Arc::ptr_eq(&kept, &local.snapshot()), "removing a stranger changes nothing");
        assert_eq!(users(&first), HashSet::from([a.user]), "a list taken earlier stays as it was");
    }
}
