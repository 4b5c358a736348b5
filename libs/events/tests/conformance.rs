//! One suite for every event bus: in process, on a real Redis server and on
//! a real Redis Cluster (sharded pub/sub).

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use chatterbox_testkit::{OnRedis, RedisBacking};
use std::sync::Arc;
use std::time::Duration;

use chatterbox_events::{EventBus, MemoryBus, Received, RedisBus, Topic, envelope};
use chatterbox_proto::events::v1::envelope::Event;
use chatterbox_proto::events::v1::{Envelope, MemberLeft};
use chatterbox_types::{ConversationId, Timestamp, UserId};

async fn bus(backing: RedisBacking) -> Box<dyn EventBus> {
    match backing {
        RedisBacking::InProcess => Box::new(MemoryBus::new()),
        RedisBacking::On(redis) => {
            Box::new(RedisBus::connect(redis.target(), chatterbox_testkit::fresh_key_prefix()).await.unwrap())
        }
    }
}

chatterbox_testkit::conformance! {
    make: crate::bus;
    names: [in_memory, on_redis, on_redis_cluster];
    tests: [subscribers_get_events_of_their_topics_in_order,
    one_subscription_hears_topics_of_every_shard,
    unsubscribed_topics_stop_arriving,
    every_subscriber_of_a_topic_gets_each_event,
    listeners_hear_every_event_of_their_topic_in_order,
    a_listener_has_heard_an_event_of_its_bus_when_publish_returns,];
}

fn event(n: u32) -> Envelope {
    envelope(
        Event::MemberLeft(MemberLeft { conversation_id: format!("c{n}"), user_id: String::new(), conversation: None }),
        Timestamp::from_millis(i64::from(n)),
    )
}

async fn next_event(sub: &mut Box<dyn chatterbox_events::Subscription>) -> (Topic, Envelope) {
    match tokio::time::timeout(Duration::from_secs(5), sub.next()).await.expect("an event arrives") {
        Some(Received::Event { topic, envelope }) => (topic, Arc::unwrap_or_clone(envelope)),

        other => panic!("expected an event, got {other:?}"),
    }
}

async fn subscribers_get_events_of_their_topics_in_order(bus: Box<dyn EventBus>) {
    let mine = Topic::Conversation(ConversationId::generate());
    let other = Topic::User(UserId::generate());
    let mut sub = bus.subscription().await.unwrap();
    sub.subscribe(&[mine]).await.unwrap();
    for n in 0..20 {
        bus.publish(&other, &event(1000 + n)).await.unwrap();
        bus.publish(&mine, &event(n)).await.unwrap();
    }
    for n in 0..20 {
        let (topic, envelope) = next_event(&mut sub).await;
        assert_eq!(topic, mine);
        assert_eq!(envelope, event_like(&envelope, n));
        assert_eq!(envelope.version, 1);
    }
}

/// The expected envelope for `n`, with the received one's generated id.
fn event_like(received: &Envelope, n: u32) -> Envelope {
    Envelope { id: received.id.clone(), ..event(n) }
}

/// Enough topics that, on a cluster, their channels fall in every shard.
async fn one_subscription_hears_topics_of_every_shard(bus: Box<dyn EventBus>) {
    let topics: Vec<Topic> = (0..48).map(|_| Topic::Conversation(ConversationId::generate())).collect();
    let mut sub = bus.subscription().await.unwrap();
    sub.subscribe(&topics).await.unwrap();
    for (n, topic) in topics.iter().enumerate() {
        bus.publish(topic, &event(n as u32)).await.unwrap();
    }
    let mut heard = std::collections::BTreeMap::new();
    while heard.len() < topics.len() {
        let (topic, envelope) = next_event(&mut sub).await;
        assert!(heard.insert(envelope.at_ms, topic).is_none(), "each event once");
    }
    for (n, topic) in topics.iter().enumerate() {
        assert_eq!(heard[&(n as i64)], *topic);
    }
}

async fn unsubscribed_topics_stop_arriving(bus: Box<dyn EventBus>) {
    let (a, b) = (Topic::User(UserId::generate()), Topic::User(UserId::generate()));
    let mut sub = bus.subscription().await.unwrap();
    sub.subscribe(&[a, b]).await.unwrap();
    sub.unsubscribe(&[a]).await.unwrap();
    bus.publish(&a, &event(1)).await.unwrap();
    bus.publish(&b, &event(2)).await.unwrap();
    let (topic, envelope) = next_event(&mut sub).await;
    assert_eq!((topic, envelope.at_ms), (b, 2));
}

async fn every_subscriber_of_a_topic_gets_each_event(bus: Box<dyn EventBus>) {
    let topic = Topic::Conversation(ConversationId::generate());
    let mut first = bus.subscription().await.unwrap();
    let mut second = bus.subscription().await.unwrap();
    first.subscribe(&[topic]).await.unwrap();
    second.subscribe(&[topic]).await.unwrap();
    bus.publish(&topic, &event(7)).await.unwrap();
    assert_eq!(next_event(&mut first).await.1.at_ms, 7);
    assert_eq!(next_event(&mut second).await.1.at_ms, 7);
}

/// What a listener heard, in order.
fn recorder() -> (chatterbox_events::Listener, tokio::sync::mpsc::UnboundedReceiver<Option<Received>>) {
    let (heard, hearing) = tokio::sync::mpsc::unbounded_channel();
    let listener: chatterbox_events::Listener = std::sync::Arc::new(move |received| {
        let _ = heard.send(received);
    });
    (listener, hearing)
}

async fn listeners_hear_every_event_of_their_topic_in_order(bus: Box<dyn EventBus>) {
    let (listener, mut hearing) = recorder();
    bus.listen(Topic::Membership, listener).await.unwrap();
    let other = Topic::User(UserId::generate());
    for n in 0..10 {
        bus.publish(&other, &event(100 + n)).await.unwrap();
        bus.publish(&Topic::Membership, &event(n)).await.unwrap();
    }
    // An event of this process may be heard twice (here, then from Redis):
    // the first hearings come in order.
    let mut first_heard = Vec::new();
    while first_heard.len() < 10 {
        match tokio::time::timeout(Duration::from_secs(5), hearing.recv()).await.expect("the listener hears it") {
            Some(Some(Received::Event { topic, envelope })) => {
                assert_eq!(topic, Topic::Membership);
                if !first_heard.contains(&envelope.at_ms) {
                    first_heard.push(envelope.at_ms);
                }
            }
            other => panic!("expected an event, got {other:?}"),
        }
    }
    assert_eq!(first_heard, (0..10).collect::<Vec<i64>>());
}

async fn a_listener_has_heard_an_event_of_its_bus_when_publish_returns(bus: Box<dyn EventBus>) {
    let (listener, mut hearing) = recorder();
    bus.listen(Topic::Membership, listener).await.unwrap();
    bus.publish(&Topic::Membership, &event(1)).await.unwrap();
    assert!(matches!(hearing.try_recv(), Ok(Some(Received::Event { .. }))), "heard before publish returned");
}

#[tokio::test]
async fn listeners_hear_events_published_by_other_processes() {
    for redis in [OnRedis::Server, OnRedis::Cluster] {
        listeners_hear_events_published_by_another_process_on(redis).await;
    }
}

async fn listeners_hear_events_published_by_another_process_on(redis: OnRedis) {
    let prefix = chatterbox_testkit::fresh_key_prefix();
    let here = RedisBus::connect(redis.target(), prefix.clone()).await.unwrap();
    let elsewhere = RedisBus::connect(redis.target(), prefix).await.unwrap();
    let (listener, mut hearing) = recorder();
    here.listen(Topic::Membership, listener).await.unwrap();
    elsewhere.publish(&Topic::Membership, &event(3)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), hearing.recv()).await.expect("the listener hears it") {
        Some(Some(Received::Event { envelope, .. })) => assert_eq!(envelope.at_ms, 3),
        other => panic!("expected the event, got {other:?}"),
    }
}
