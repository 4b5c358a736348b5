//! The presence domain on the in-memory store (the embedded mode): what a
//! crash leaves behind expires, and changes are announced once and recorded.

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatterbox_errors::Error;
use chatterbox_events::{EventBus, MemoryBus, Received, Topic};
use chatterbox_identity::Actor;
use chatterbox_presence::{Circles, MemoryPresenceStore, Presence, PresenceSettings, Profiles, Status};
use chatterbox_proto::events::v1::envelope::Event;
use chatterbox_types::{ConnectionId, ConversationId, UserId};

/// What the user service was told: status and last seen.
#[derive(Debug, Default)]
struct Recorded(Mutex<Vec<(Status, Option<i64>)>>);

#[async_trait::async_trait]
impl Profiles for Recorded {
    async fn record(&self, _token: &str, status: Status, last_seen_ms: Option<i64>) -> Result<(), Error> {
        self.0.lock().unwrap().push((status, last_seen_ms));
        Ok(())
    }
}

/// The user's own direct and group conversations; `None` when the
/// conversation service cannot be reached.
#[derive(Debug)]
struct Own(Mutex<Option<Vec<ConversationId>>>);

#[async_trait::async_trait]
impl Circles for Own {
    async fn private_among(&self, _token: &str, asked: &[ConversationId]) -> Result<Vec<ConversationId>, Error> {
        match &*self.0.lock().unwrap() {
            Some(own) => Ok(asked.iter().copied().filter(|c| own.contains(c)).collect()),
            None => Err(Error::unavailable(anyhow::anyhow!("conversation service down"))),
        }
    }
}

struct Setup {
    presence: Arc<Presence>,
    circles: Arc<Own>,
    bus: Arc<MemoryBus>,
    recorded: Arc<Recorded>,
    events: Box<dyn chatterbox_events::Subscription>,
    actor: Actor,
    conversation: ConversationId,
}

async fn setup(ttl: Duration) -> Setup {
    setup_paced(ttl, Duration::ZERO).await
}

/// With changes announced at most once per `gap`.
async fn setup_paced(ttl: Duration, gap: Duration) -> Setup {
    let bus = Arc::new(MemoryBus::new());
    let recorded = Arc::new(Recorded::default());
    let settings = PresenceSettings { ttl, idle: Duration::from_secs(60), announce_gap: gap };
    let conversation = ConversationId::generate();
    let circles = Arc::new(Own(Mutex::new(Some(vec![conversation]))));
    let presence = Arc::new(Presence::new(
        Arc::new(MemoryPresenceStore::new()),
        recorded.clone(),
        circles.clone(),
        bus.clone(),
        settings,
    ));
    let mut events = bus.subscription().await.unwrap();
    events.subscribe(&[Topic::Conversation(conversation)]).await.unwrap();
    let actor = Actor { id: UserId::generate(), token: "token".into() };
    Setup { presence, circles, bus, recorded, events, actor, conversation }
}

async fn next_status(events: &mut Box<dyn chatterbox_events::Subscription>) -> (String, Option<i64>) {
    let received = tokio::time::timeout(Duration::from_secs(5), events.next()).await.unwrap().unwrap();
    let Received::Event { envelope, .. } = received else { panic!("expected an event, got {received:?}") };
    let Some(Event::PresenceChanged(e)) = envelope.event.clone() else { panic!("expected presence, got {envelope:?}") };
    (e.status, e.last_seen_ms)
}

fn connection() -> ConnectionId {
    ConnectionId::generate()
}

#[tokio::test]
async fn connections_of_a_crashed_gateway_expire_and_the_user_goes_offline() {
    let mut s = setup(Duration::from_millis(300)).await;
    let opened = s.presence.connect(&s.actor, connection(), &[s.conversation]).await.unwrap();
    assert_eq!(opened.status, Status::Online);
    assert_eq!(next_status(&mut s.events).await, ("online".into(), None));
    let reported_at = chatterbox_types::Timestamp::now().millis();

    // Nothing more is heard of the connection: before its expiry it still counts.
    assert_eq!(s.presence.sweep_once().await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(s.presence.sweep_once().await.unwrap(), 1);
    let (status, last_seen) = next_status(&mut s.events).await;
    assert_eq!(status, "offline");
    let last_seen = last_seen.unwrap();
    assert!((reported_at - 100..=reported_at).contains(&last_seen), "last seen at its last report: {last_seen}");
    let now = s.presence.get(&[s.actor.id]).await.unwrap();
    assert_eq!((now[0].status, now[0].last_seen_ms), (Status::Offline, Some(last_seen)));
    assert_eq!(s.presence.sweep_once().await.unwrap(), 0, "swept once");
}

#[tokio::test]
async fn changes_are_announced_once_and_going_offline_is_recorded_with_the_users_token() {
    let mut s = setup(Duration::from_secs(30)).await;
    let (phone, laptop) = (connection(), connection());
    let audience = [s.conversation];
    s.presence.connect(&s.actor, phone, &audience).await.unwrap();
    s.presence.connect(&s.actor, laptop, &audience).await.unwrap();
    s.presence.heartbeat(&s.actor, laptop, false).await.unwrap();
    assert_eq!(s.presence.disconnect(&s.actor, phone).await.unwrap().status, Status::Online);
    // A second close of the same connection changes nothing.
    assert_eq!(s.presence.disconnect(&s.actor, phone).await.unwrap().status, Status::Online);
    let closed = s.presence.disconnect(&s.actor, laptop).await.unwrap();
    assert_eq!(closed.status, Status::Offline);
    let last_seen = closed.last_seen_ms.unwrap();

    assert_eq!(next_status(&mut s.events).await, ("online".into(), None));
    assert_eq!(next_status(&mut s.events).await, ("offline".into(), Some(last_seen)));
    assert!(tokio::time::timeout(Duration::from_millis(200), s.events.next()).await.is_err(), "nothing else");
    let recorded = s.recorded.0.lock().unwrap().clone();
    assert_eq!(recorded, [(Status::Offline, Some(last_seen))], "profiles record going offline, and when");
}

#[tokio::test]
async fn only_the_users_own_conversations_hear_of_them() {
    let mut s = setup(Duration::from_secs(60)).await;
    let stranger = ConversationId::generate();
    let mut strangers = s.bus.subscription().await.unwrap();
    strangers.subscribe(&[Topic::Conversation(stranger)]).await.unwrap();
    // The caller names a conversation that is not theirs: it hears nothing.
    let audience = [s.conversation, stranger];
    s.presence.connect(&s.actor, connection(), &audience).await.unwrap();
    assert_eq!(next_status(&mut s.events).await, ("online".into(), None));
    s.presence.set_status(&s.actor, Status::Away).await.unwrap();
    assert_eq!(next_status(&mut s.events).await.0, "away");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), strangers.next()).await.is_err(),
        "strangers hear nothing"
    );

    // With membership unknown for a moment, the last checked audience stays
    // and the connection still counts.
    *s.circles.0.lock().unwrap() = None;
    let opened = s.presence.connect(&s.actor, connection(), &[stranger]).await.unwrap();
    assert_eq!(opened.status, Status::Away);
    s.presence.set_status(&s.actor, Status::Online).await.unwrap();
    assert_eq!(next_status(&mut s.events).await.0, "online");
    assert!(tokio::time::timeout(Duration::from_millis(200), strangers.next()).await.is_err());
}

#[tokio::test]
async fn rapid_changes_go_out_once_a_gap_in_their_final_state() {
    let mut s = setup_paced(Duration::from_secs(60), Duration::from_millis(300)).await;
    let shutdown = chatterbox_runtime::Shutdown::new(Duration::from_secs(1));
    tokio::spawn(s.presence.clone().run_sweeper(shutdown.clone()));
    s.presence.connect(&s.actor, connection(), &[s.conversation]).await.unwrap();
    assert_eq!(next_status(&mut s.events).await.0, "online");
    // Twenty flips within the gap: at most one more announcement, the last state.
    for n in 0..20 {
        let status = if n % 2 == 0 { Status::Away } else { Status::Online };
        s.presence.set_status(&s.actor, status).await.unwrap();
    }
    s.presence.set_status(&s.actor, Status::Away).await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(next_status(&mut s.events).await.0, "away");
    assert!(tokio::time::timeout(Duration::from_millis(600), s.events.next()).await.is_err(), "once");
    assert!(started.elapsed() < Duration::from_secs(2));
    // After the gap, a change goes out at once again.
    tokio::time::sleep(Duration::from_millis(350)).await;
    s.presence.set_status(&s.actor, Status::Online).await.unwrap();
    assert_eq!(next_status(&mut s.events).await.0, "online");
    shutdown.trigger();
}
