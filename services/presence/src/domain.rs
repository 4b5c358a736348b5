//! The presence service's decisions: which connections count, when a user's
//! status changes, who hears of it, and what the user service records.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use chatterbox_errors::Error;
use chatterbox_events::{EventBus, Topic, envelope, publish_after_commit};
use chatterbox_identity::Actor;
use chatterbox_proto::events::v1::PresenceChanged;
use chatterbox_proto::events::v1::envelope::Event;
use chatterbox_runtime::Shutdown;
use chatterbox_types::{ConnectionId, ConversationId, Timestamp, UserId};

use crate::Status;
use crate::circles::Circles;
use crate::profiles::Profiles;
use crate::status::decide;
use crate::store::PresenceStore;

/// Most users one presence query may name.
pub const MAX_QUERY: usize = 100;
/// Most conversations that hear one user's changes.
pub const MAX_AUDIENCE: usize = 10_000;
/// Expired connections handled per sweep round.
const SWEEP_BATCH: usize = 512;
/// Locks that serialise the changes of one user in this process (users
/// share them by hash; a user's changes never interleave).
const LOCK_STRIPES: usize = 64;

/// Timing of presence.
#[derive(Debug, Clone, Copy)]
pub struct PresenceSettings {
    /// How long a connection counts as live after its last beat; gateways
    /// beat more often than this.
    pub ttl: Duration,
    /// How long without activity before a user counts as away.
    pub idle: Duration,
    /// Least time between two announcements of one user's changes (by this
    /// process): changes within it go out together, once, in their final
    /// state. Bounds what a user flipping status costs their audience.
    pub announce_gap: Duration,
}

/// A user's presence as others see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceView {
    /// Whose.
    pub user: UserId,
    /// Online, away or offline.
    pub status: Status,
    /// When their last connection ended, if ever.
    pub last_seen_ms: Option<i64>,
}

/// The presence domain.
#[derive(Debug)]
pub struct Presence {
    store: Arc<dyn PresenceStore>,
    profiles: Arc<dyn Profiles>,
    circles: Arc<dyn Circles>,
    events: Arc<dyn EventBus>,
    settings: PresenceSettings,
    stripes: Vec<tokio::sync::Mutex<()>>,
    pacing: Pacing,
}

/// What this process last announced of each user, and the users whose
/// change waits for the gap to pass (with the latest token at hand).
#[derive(Debug, Default)]
struct Pacing {
    announced: Mutex<HashMap<UserId, (Instant, Status)>>,
    waiting: Mutex<HashMap<UserId, (Instant, Option<String>)>>,
    added: Notify,
}

impl Pacing {
    /// How long `user`'s change to `status` must wait, if it must.
    fn wait_for(&self, user: UserId, status: Status, gap: Duration) -> Option<Duration> {
        let announced = self.announced.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, last) = announced.get(&user)?;
        let since = at.elapsed();
        (*last != status && since < gap).then(|| gap - since)
    }

    fn announced(&self, user: UserId, status: Status, gap: Duration) {
        let mut announced = self.announced.lock().unwrap_or_else(PoisonError::into_inner);
        if announced.len() >= 1_024 && announced.len().is_power_of_two() {
            announced.retain(|_, (at, _)| at.elapsed() < gap);
        }
        announced.insert(user, (Instant::now(), status));
    }

    fn defer(&self, user: UserId, wait: Duration, token: Option<&str>) {
        let due = Instant::now() + wait;
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = waiting.entry(user).or_insert((due, None));
        entry.0 = entry.0.min(due);
        if let Some(token) = token {
            entry.1 = Some(token.to_owned());
        }
        drop(waiting);
        self.added.notify_one();
    }

    fn next_due(&self) -> Option<Instant> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner).values().map(|(due, _)| *due).min()
    }

    fn take_due(&self) -> Vec<(UserId, Option<String>)> {
        let now = Instant::now();
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let due: Vec<UserId> = waiting.iter().filter(|(_, (at, _))| *at <= now).map(|(user, _)| *user).collect();
        due.into_iter().filter_map(|user| waiting.remove(&user).map(|(_, token)| (user, token))).collect()
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn unavailable(e: anyhow::Error) -> Error {
    Error::unavailable(e.context("presence store"))
}

impl Presence {
    /// The domain over its store, the user and conversation services and the bus.
    pub fn new(
        store: Arc<dyn PresenceStore>,
        profiles: Arc<dyn Profiles>,
        circles: Arc<dyn Circles>,
        events: Arc<dyn EventBus>,
        settings: PresenceSettings,
    ) -> Self {
        let stripes = (0..LOCK_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect();
        Self { store, profiles, circles, events, settings, stripes, pacing: Pacing::default() }
    }

    /// Holds `user`'s stripe: reading the connections, deciding, announcing
    /// and recording happen as one step per user (in this process).
    async fn lock(&self, user: UserId) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash as _, Hasher as _};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        user.hash(&mut hasher);
        let stripe = (hasher.finish() % LOCK_STRIPES as u64) as usize;
        self.stripes[stripe].lock().await
    }

    fn expiry(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(millis(self.settings.ttl))
    }

    /// A connection of the caller opened (a new one counts as active), or
    /// its `audience` (conversation ids) changed: the conversations that
    /// hear the caller's changes are replaced by those of them that are the
    /// caller's own direct and group conversations (a caller cannot make
    /// strangers hear it). If that cannot be checked now, the audience
    /// stays as it was and the connection still counts.
    pub async fn connect(
        &self,
        actor: &Actor,
        connection: ConnectionId,
        audience: &[ConversationId],
    ) -> Result<PresenceView, Error> {
        // A ULID's text: safe inside store keys.
        let connection = connection.to_string();
        if audience.len() > MAX_AUDIENCE {
            return Err(Error::invalid(format!("audience is limited to {MAX_AUDIENCE} conversations")));
        }
        let audience = if audience.is_empty() {
            Some(Vec::new())
        } else {
            match self.circles.private_among(&actor.token, audience).await {
                Ok(checked) => {
                    if checked.len() < audience.len() {
                        metrics::counter!("presence_audience_refused_total")
                            .increment((audience.len() - checked.len()) as u64);
                    }
                    Some(checked)
                }
                Err(e) => {
                    tracing::warn!(user = %actor.id, error = %e, "cannot check a presence audience; keeping the last one");
                    None
                }
            }
        };
        let _serial = self.lock(actor.id).await;
        let now = Timestamp::now().millis();
        if let Some(audience) = audience {
            self.store.set_audience(actor.id, &audience).await.map_err(unavailable)?;
        }
        self.store.beat(actor.id, &connection, now, self.expiry(now), false).await.map_err(unavailable)?;
        self.settle(actor.id, Some(&actor.token), now).await
    }

    /// A connection of the caller is alive; `active` if its user did
    /// something since the previous beat.
    pub async fn heartbeat(
        &self,
        actor: &Actor,
        connection: ConnectionId,
        active: bool,
    ) -> Result<PresenceView, Error> {
        let connection = connection.to_string();
        let _serial = self.lock(actor.id).await;
        let now = Timestamp::now().millis();
        self.store.beat(actor.id, &connection, now, self.expiry(now), active).await.map_err(unavailable)?;
        self.settle(actor.id, Some(&actor.token), now).await
    }

    /// A connection of the caller closed. (Its token may have just expired:
    /// the transport accepts that for closing.)
    pub async fn disconnect(&self, actor: &Actor, connection: ConnectionId) -> Result<PresenceView, Error> {
        let connection = connection.to_string();
        let _serial = self.lock(actor.id).await;
        let now = Timestamp::now().millis();
        if self.store.remove(actor.id, &connection).await.map_err(unavailable)? {
            self.last_connection_ended(actor.id, now, now).await.map_err(unavailable)?;
        }
        self.settle(actor.id, Some(&actor.token), now).await
    }

    /// Records `seen` as when the user was last seen if they have no live
    /// connection left, unless they chose to appear offline (then their
    /// comings and goings stay private).
    async fn last_connection_ended(&self, user: UserId, seen: i64, now: i64) -> anyhow::Result<()> {
        if self.store.connections(user, now).await?.is_empty()
            && self.store.record(user).await?.chosen != Some(Status::Offline)
        {
            self.store.set_last_seen(user, seen).await?;
        }
        Ok(())
    }

    /// What the caller says: `away` or `offline` (appear offline) stays until
    /// they say `online`, which lets activity decide again.
    pub async fn set_status(&self, actor: &Actor, status: Status) -> Result<PresenceView, Error> {
        let chosen = (status != Status::Online).then_some(status);
        let _serial = self.lock(actor.id).await;
        self.store.set_chosen(actor.id, chosen).await.map_err(unavailable)?;
        self.settle(actor.id, Some(&actor.token), Timestamp::now().millis()).await
    }

    /// The presence of each of `users`, in order; strangers read as offline.
    pub async fn get(&self, users: &[UserId]) -> Result<Vec<PresenceView>, Error> {
        if users.len() > MAX_QUERY {
            return Err(Error::invalid(format!("at most {MAX_QUERY} users per query")));
        }
        let now = Timestamp::now().millis();
        let idle = millis(self.settings.idle);
        let found = self.store.presence_of(users, now).await.map_err(unavailable)?;
        Ok(users
            .iter()
            .copied()
            .zip(found)
            .map(|(user, (live, record))| PresenceView {
                user,
                status: decide(&live, &record, now, idle),
                last_seen_ms: record.last_seen_ms,
            })
            .collect())
    }

    /// Decides the user's status now (their stripe held); if it changed,
    /// tells their conversations and, when they went offline and their token
    /// is at hand, the user service (status and `last_seen`).
    async fn settle(&self, user: UserId, token: Option<&str>, now: i64) -> Result<PresenceView, Error> {
        let live = self.store.connections(user, now).await.map_err(unavailable)?;
        let record = self.store.record(user).await.map_err(unavailable)?;
        let status = decide(&live, &record, now, millis(self.settings.idle));
        let view = PresenceView { user, status, last_seen_ms: record.last_seen_ms };
        if let Some(wait) = self.pacing.wait_for(user, status, self.settings.announce_gap) {
            // Announced a moment ago: this change goes out when the gap has
            // passed (the sweeper settles the user again then), in whatever
            // state the user is in by that time.
            self.pacing.defer(user, wait, token);
            return Ok(view);
        }
        let before = self.store.swap_announced(user, status).await.map_err(unavailable)?;
        // A user never announced counts as offline already.
        let changed = before.unwrap_or(Status::Offline) != status;
        if changed {
            let event = Event::PresenceChanged(PresenceChanged {
                user_id: user.to_string(),
                status: status.as_str().to_owned(),
                last_seen_ms: view.last_seen_ms,
            });
            let audience = self.store.audience(user).await.map_err(unavailable)?;
            let topics: Vec<Topic> = audience.into_iter().map(Topic::Conversation).collect();
            if !topics.is_empty() {
                publish_after_commit(self.events.as_ref(), &topics, &envelope(event, Timestamp::from_millis(now)))
                    .await;
            }
            self.pacing.announced(user, status, self.settings.announce_gap);
        }
        // The profile keeps what outlasts presence: going offline, and when.
        // (Coming online writes nothing: a burst of connections must not
        // become a burst of profile writes, and the live status is ours.)
        if let Some(token) = token
            && changed
            && status == Status::Offline
            && let Err(e) = self.profiles.record(token, status, view.last_seen_ms).await
        {
            tracing::warn!(%user, error = %e, "could not record last seen in the user service");
        }
        Ok(view)
    }

    /// Ends the connections that expired without closing (their gateway
    /// died); returns how many.
    pub async fn sweep_once(&self) -> anyhow::Result<usize> {
        let now = Timestamp::now().millis();
        let expired = self.store.sweep(now, SWEEP_BATCH).await?;
        let count = expired.len();
        // The last beat of each user's latest connection is when they were last seen.
        let mut last_beat: BTreeMap<UserId, i64> = BTreeMap::new();
        for e in expired {
            let beat = e.expires_at_ms.saturating_sub(millis(self.settings.ttl));
            last_beat.entry(e.user).and_modify(|at| *at = (*at).max(beat)).or_insert(beat);
        }
        for (user, beat) in last_beat {
            // One user's failure must not cost the others their announcement.
            let _serial = self.lock(user).await;
            if let Err(e) = self.last_connection_ended(user, beat, now).await {
                tracing::warn!(%user, error = %e, "could not record when an expired connection was last seen");
            }
            if let Err(e) = self.settle(user, None, now).await {
                tracing::warn!(%user, error = %e, "could not settle an expired connection");
            }
        }
        Ok(count)
    }

    /// Announces the changes that waited for their gap.
    async fn settle_waiting(&self) {
        for (user, token) in self.pacing.take_due() {
            let _serial = self.lock(user).await;
            if let Err(e) = self.settle(user, token.as_deref(), Timestamp::now().millis()).await {
                tracing::warn!(%user, error = %e, "could not announce a change that waited");
            }
        }
    }

    /// Sweeps expired connections, and announces the changes that waited
    /// for their gap, until `shutdown`; several replicas may sweep at once
    /// (each expired connection is claimed by one).
    pub async fn run_sweeper(self: Arc<Self>, shutdown: Shutdown) {
        let period = (self.settings.ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_due = self.pacing.next_due();
            tokio::select! {
                () = shutdown.requested() => return,
                _ = tick.tick() => {}
                () = self.pacing.added.notified() => continue,
                () = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {
                    self.settle_waiting().await;
                    continue;
                }
            }
            loop {
                match self.sweep_once().await {
                    Ok(n) if n == SWEEP_BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "presence sweep failed");
                        break;
                    }
                }
            }
        }
    }
}
