//! Membership answers kept for a short while, so a send does not ask the
//! conversation service every time.
//!
//! Only "is a participant" answers are kept (a refusal is asked again each
//! time, so a new member gets in at once). A kept answer is dropped when the
//! conversation service says membership may have changed: a `MemberLeft`,
//! `ConversationUpdated` or `AccessChanged` (a block) event on [`Topic::Membership`] drops every answer
//! about that conversation; a gap in the bus drops them all. How soon that
//! happens:
//! - **one process** (the embedded suite, on either bus): the event is heard
//!   inside the conversation service's `publish`, before it answers the
//!   removal, so the removed member's next call is refused;
//! - **several processes**: as soon as the event crosses the bus (Redis
//!   pub/sub: typically well under a millisecond). The bus reports a gap the
//!   moment its connection drops and again once it is back, each dropping
//!   every answer; an event lost otherwise (its publish failed) leaves an
//!   answer alive [`TTL`] at most.
//!
//! An answer fetched while an invalidation happened is not kept, so a
//! removal can never be undone by a slow check that started before it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use rand::Rng as _;

use chatterbox_errors::Error;
use chatterbox_events::{EventBus, Received, Topic};
use chatterbox_identity::Actor;
use chatterbox_proto::events::v1::Envelope;
use chatterbox_proto::events::v1::envelope::Event;
use chatterbox_types::{ConversationId, Timestamp, UserId};

use chatterbox_membership::{ConversationAccess, Standing};

/// The longest an answer is kept. Each is kept for a time drawn between
/// half of it and all of it: answers fetched together (a crowd's first
/// sends after a start) would otherwise expire together and be asked again
/// in one burst every `TTL`, the conversation service's reads then queueing
/// every send behind them.
pub const TTL: Duration = Duration::from_secs(10);

/// Answers kept at most; past it, expired ones go, then all if need be.
const MOST_ANSWERS: usize = 200_000;

/// A [`ConversationAccess`] that keeps the answers of another.
#[derive(Debug)]
pub struct CachedAccess {
    inner: Arc<dyn ConversationAccess>,
    cache: Arc<MembershipCache>,
}

impl CachedAccess {
    /// Asks `inner` when `cache` does not know.
    pub fn new(inner: Arc<dyn ConversationAccess>, cache: Arc<MembershipCache>) -> Self {
        Self { inner, cache }
    }
}

#[async_trait::async_trait]
impl ConversationAccess for CachedAccess {
    async fn check(&self, actor: &Actor, conversation: ConversationId) -> Result<Standing, Error> {
        let generation = match self.cache.get(conversation, actor.id) {
            Ok(standing) => return Ok(standing),
            Err(generation) => generation,
        };
        let standing = self.inner.check(actor, conversation).await?;
        self.cache.keep(conversation, actor.id, standing, generation);
        Ok(standing)
    }

    async fn record_activity(&self, actor: &Actor, conversation: ConversationId, at: Timestamp) -> Result<(), Error> {
        self.inner.record_activity(actor, conversation, at).await
    }

    async fn mentionable(
        &self,
        actor: &Actor,
        conversation: ConversationId,
        usernames: &[String],
    ) -> Result<Vec<(String, UserId)>, Error> {
        self.inner.mentionable(actor, conversation, usernames).await
    }

    async fn conversations(&self, actor: &Actor) -> Result<Vec<ConversationId>, Error> {
        self.inner.conversations(actor).await
    }
}

/// Who is known to take part in which conversation, until when.
#[derive(Debug)]
pub struct MembershipCache {
    state: Mutex<State>,
    ttl: Duration,
}

#[derive(Debug)]
struct State {
    members: HashMap<ConversationId, HashMap<UserId, (Standing, Instant)>>,
    answers: usize,
    /// Moves on at every invalidation.
    generation: u64,
    /// False once the bus is gone: nothing is kept any more.
    live: bool,
}

impl State {
    fn forget_all(&mut self) {
        self.members.clear();
        self.answers = 0;
    }

    fn forget(&mut self, conversation: ConversationId) {
        if let Some(members) = self.members.remove(&conversation) {
            self.answers -= members.len();
        }
    }

    fn forget_expired(&mut self, now: Instant) {
        self.members.retain(|_, members| {
            members.retain(|_, (_, until)| *until > now);
            !members.is_empty()
        });
        self.answers = self.members.values().map(HashMap::len).sum();
    }
}

impl MembershipCache {
    /// A cache that drops answers as `bus` tells of membership changes.
    pub async fn listening(bus: &dyn EventBus, ttl: Duration) -> anyhow::Result<Arc<Self>> {
        let cache = Arc::new(Self::new(ttl));
        let heard: Weak<Self> = Arc::downgrade(&cache);
        bus.listen(
            Topic::Membership,
            Arc::new(move |received| {
                if let Some(cache) = heard.upgrade() {
                    cache.heard(received);
                }
            }),
        )
        .await?;
        Ok(cache)
    }

    fn new(ttl: Duration) -> Self {
        let state = State { members: HashMap::new(), answers: 0, generation: 0, live: true };
        Self { state: Mutex::new(state), ttl }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the bus said.
    fn heard(&self, received: Option<Received>) {
        let mut state = self.state();
        state.generation += 1;
        match received {
            Some(Received::Event { envelope, .. }) => match changed_conversation(&envelope) {
                Some(conversation) => state.forget(conversation),
                None => state.forget_all(),
            },
            Some(Received::Gap) => state.forget_all(),
            None => {
                state.forget_all();
                state.live = false;
            }
        }
    }

    /// The kept answer, or the generation to hand back to [`Self::keep`].
    fn get(&self, conversation: ConversationId, user: UserId) -> Result<Standing, u64> {
        let state = self.state();
        match state.members.get(&conversation).and_then(|m| m.get(&user)) {
            Some((standing, until)) if *until > Instant::now() => {
                metrics::counter!("membership_cache_total", "outcome" => "hit").increment(1);
                Ok(*standing)
            }
            _ => {
                metrics::counter!("membership_cache_total", "outcome" => "miss").increment(1);
                Err(state.generation)
            }
        }
    }

    /// Keeps an answer fetched since `generation`, unless membership may
    /// have changed meanwhile.
    fn keep(&self, conversation: ConversationId, user: UserId, standing: Standing, generation: u64) {
        let mut state = self.state();
        if !state.live || state.generation != generation {
            return;
        }
        let now = Instant::now();
        if state.answers >= MOST_ANSWERS {
            state.forget_expired(now);
            if state.answers >= MOST_ANSWERS {
                state.forget_all();
            }
        }
        let until = now + rand::thread_rng().gen_range(self.ttl / 2..=self.ttl);
        let known = state.members.entry(conversation).or_default().insert(user, (standing, until));
        if known.is_none() {
            state.answers += 1;
        }
    }
}

/// The conversation a membership event is about (`None`: unknown, so every
/// answer is in doubt).
fn changed_conversation(envelope: &Envelope) -> Option<ConversationId> {
    let id = match envelope.event.as_ref()? {
        Event::MemberLeft(e) => &e.conversation_id,
        Event::AccessChanged(e) => &e.conversation_id,
        Event::ConversationUpdated(e) => &e.conversation.as_ref()?.id,
        _ => return None,
    };
    ConversationId::parse(id).ok()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chatterbox_events::{MemoryBus, envelope};
    use chatterbox_proto::events::v1::MemberLeft;

    use super::*;

    /// The conversation service as a list of members; counts its calls.
    #[derive(Debug, Default)]
    struct Members {
        of: Mutex<Vec<(ConversationId, UserId)>>,
        calls: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl ConversationAccess for Members {
        async fn check(&self, actor: &Actor, conversation: ConversationId) -> Result<Standing, Error> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            match self.of.lock().unwrap().contains(&(conversation, actor.id)) {
                true => Ok(Standing { admin: false, direct: false, blocked: false }),
                false => Err(Error::not_found("conversation not found")),
            }
        }

        async fn record_activity(&self, _: &Actor, _: ConversationId, _: Timestamp) -> Result<(), Error> {
            Ok(())
        }

        async fn mentionable(
            &self,
            _: &Actor,
            _: ConversationId,
            _: &[String],
        ) -> Result<Vec<(String, UserId)>, Error> {
            Ok(Vec::new())
        }

        async fn conversations(&self, actor: &Actor) -> Result<Vec<ConversationId>, Error> {
            Ok(self.of.lock().unwrap().iter().filter(|(_, u)| *u == actor.id).map(|(c, _)| *c).collect())
        }
    }

    fn actor() -> Actor {
        Actor { id: UserId::generate(), token: String::new() }
    }

    fn left(conversation: ConversationId, user: UserId) -> Envelope {
        let event =
            MemberLeft { conversation_id: conversation.to_string(), user_id: user.to_string(), conversation: None };
        envelope(Event::MemberLeft(event), Timestamp::now())
    }

    async fn setup(ttl: Duration) -> (MemoryBus, Arc<Members>, CachedAccess) {
        let bus = MemoryBus::new();
        let members = Arc::new(Members::default());
        let cache = MembershipCache::listening(&bus, ttl).await.unwrap();
        let access = CachedAccess::new(members.clone(), cache);
        (bus, members, access)
    }

    #[tokio::test]
    async fn a_member_is_asked_about_once_and_a_leave_is_heard_at_once() {
        let (bus, members, access) = setup(TTL).await;
        let (ann, c) = (actor(), ConversationId::generate());
        members.of.lock().unwrap().push((c, ann.id));
        for _ in 0..5 {
            access.check(&ann, c).await.unwrap();
        }
        assert_eq!(members.calls.load(Ordering::Relaxed), 1, "asked once");

        members.of.lock().unwrap().clear();
        bus.publish(&Topic::Membership, &left(c, ann.id)).await.unwrap();
        assert!(access.check(&ann, c).await.is_err(), "refused as soon as the leave is published");
    }

    #[tokio::test]
    async fn refusals_are_not_kept_so_a_new_member_gets_in_at_once() {
        let (_bus, members, access) = setup(TTL).await;
        let (bob, c) = (actor(), ConversationId::generate());
        assert!(access.check(&bob, c).await.is_err());
        members.of.lock().unwrap().push((c, bob.id));
        access.check(&bob, c).await.unwrap();
    }

    #[tokio::test]
    async fn a_gap_or_another_conversation_s_event_drops_what_it_should() {
        let (bus, members, access) = setup(TTL).await;
        let (ann, c, d) = (actor(), ConversationId::generate(), ConversationId::generate());
        members.of.lock().unwrap().extend([(c, ann.id), (d, ann.id)]);
        access.check(&ann, c).await.unwrap();
        access.check(&ann, d).await.unwrap();
        // A leave elsewhere drops only that conversation's answers.
        bus.publish(&Topic::Membership, &left(d, UserId::generate())).await.unwrap();
        access.check(&ann, c).await.unwrap();
        access.check(&ann, d).await.unwrap();
        assert_eq!(members.calls.load(Ordering::Relaxed), 3);
        access.cache.heard(Some(Received::Gap));
        access.check(&ann, c).await.unwrap();
        assert_eq!(members.calls.load(Ordering::Relaxed), 4, "a gap drops everything");
    }

    #[tokio::test]
    async fn an_answer_fetched_across_an_invalidation_is_not_kept() {
        let (_bus, members, access) = setup(TTL).await;
        let (ann, c) = (actor(), ConversationId::generate());
        members.of.lock().unwrap().push((c, ann.id));
        let Err(generation) = access.cache.get(c, ann.id) else { panic!("nothing kept yet") };
        // The removal lands while the check is on its way back.
        access
            .cache
            .heard(Some(Received::Event { topic: Topic::Membership, envelope: std::sync::Arc::new(left(c, ann.id)) }));
        access.cache.keep(c, ann.id, Standing { admin: false, direct: false, blocked: false }, generation);
        assert!(access.cache.get(c, ann.id).is_err(), "the stale answer was dropped");
    }

    #[tokio::test]
    async fn answers_expire() {
        let (_bus, members, access) = setup(Duration::from_millis(20)).await;
        let (ann, c) = (actor(), ConversationId::generate());
        members.of.lock().unwrap().push((c, ann.id));
        access.check(&ann, c).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        access.check(&ann, c).await.unwrap();
        assert_eq!(members.calls.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn answers_kept_together_expire_spread_over_the_second_half_of_the_ttl() {
        let (_bus, _members, access) = setup(TTL).await;
        let standing = Standing { admin: false, direct: false, blocked: false };
        let c = ConversationId::generate();
        let before = Instant::now();
        for _ in 0..200 {
            access.cache.keep(c, UserId::generate(), standing, 0);
        }
        let after = Instant::now();
        let expiries: Vec<Instant> = access.cache.state().members[&c].values().map(|(_, until)| *until).collect();
        assert_eq!(expiries.len(), 200);
        assert!(expiries.iter().all(|&at| at >= before + TTL / 2 && at <= after + TTL));
        let (first, last) = (expiries.iter().min().unwrap(), expiries.iter().max().unwrap());
        assert!(*last - *first > TTL / 4, "spread, not one instant: {:?}", *last - *first);
    }

    #[tokio::test]
    async fn once_the_bus_is_gone_nothing_is_kept() {
        let (_bus, members, access) = setup(TTL).await;
        let (ann, c) = (actor(), ConversationId::generate());
        members.of.lock().unwrap().push((c, ann.id));
        access.cache.heard(None);
        access.check(&ann, c).await.unwrap();
        access.check(&ann, c).await.unwrap();
        assert_eq!(members.calls.load(Ordering::Relaxed), 2);
    }
}
