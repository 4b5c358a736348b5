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

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use chatterbox_events::{EventBus, Received, Subscription, Topic};
use tokio::sync::{Notify, mpsc, oneshot};

use chatterbox_types::UserId;

use super::delivery::{Kind, Outbound, outbound};

/// Events a session may have waiting before it counts as too slow.
pub(crate) const MAILBOX_CAPACITY: usize = 1024;

/// Routes bus events to the sessions of this gateway.
#[derive(Debug)]
pub struct Hub {
    routes: Mutex<Routes>,
    commands: mpsc::UnboundedSender<Command>,
    next_id: AtomicU64,
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
}

/// Where the hub drops a session's events.
#[derive(Debug, Clone)]
struct Endpoint {
    /// The session's user: their own typing indicators are not sent back.
    user: UserId,
    mailbox: mpsc::Sender<Arc<Outbound>>,
    overflow: Arc<Overflow>,
}

/// Raised once when a session's mailbox overflows.
#[derive(Debug, Default)]
pub(crate) struct Overflow {
    raised: AtomicBool,
    notify: Notify,
}

impl Overflow {
    /// Whether the session fell too far behind.
    pub(crate) fn raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// Resolves once the session has fallen too far behind.
    pub(crate) async fn wait(&self) {
        while !self.raised() {
            self.notify.notified().await;
        }
    }
}

impl Endpoint {
    fn offer(&self, event: &Arc<Outbound>) {
        if self.overflow.raised() || matches!(event.kind, Kind::Typing { user } if user == self.user) {
            return;
        }
        match self.mailbox.try_send(event.clone()) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("ws_slow_consumers_total").increment(1);
                self.overflow.raised.store(true, Ordering::Release);
                self.overflow.notify.notify_one();
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
    /// Raised when the mailbox overflowed.
    pub overflow: Arc<Overflow>,
}

impl Registration {
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
    /// Opens the gateway's subscription on `bus` and starts routing.
    pub async fn start(bus: Arc<dyn EventBus>) -> anyhow::Result<Arc<Hub>> {
        let subscription = bus.subscription().await?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let hub = Arc::new(Hub { routes: Mutex::new(Routes::default()), commands, next_id: AtomicU64::new(1) });
        tokio::spawn(pump(Arc::downgrade(&hub), subscription, receiver));
        Ok(hub)
    }

    /// Registers a session of `user` with no topics yet; refused when the
    /// user already has `cap` sessions on this gateway (0: no cap).
    pub(crate) fn register(self: &Arc<Self>, user: UserId, cap: u32) -> Result<Registration, TooManySessions> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, mailbox) = mpsc::channel(MAILBOX_CAPACITY);
        let overflow = Arc::new(Overflow::default());
        let endpoint = Endpoint { user, mailbox: sender, overflow: overflow.clone() };
        {
            let mut routes = self.lock();
            let open = routes.per_user.entry(user).or_default();
            if cap > 0 && *open >= cap {
                metrics::counter!("ws_sessions_refused_total").increment(1);
                return Err(TooManySessions { cap });
            }
            *open += 1;
            routes.sessions.insert(id, Session { endpoint, topics: HashSet::new() });
        }
        metrics::gauge!("ws_sessions").increment(1.0);
        Ok(Registration { hub: self.clone(), id, mailbox, overflow })
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
        Endpoint { user: UserId::generate(), mailbox, overflow: Arc::default() }
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
