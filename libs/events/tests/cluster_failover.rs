//! The bus on a Redis Cluster of the test's own, whose primary carrying a
//! topic is killed: the subscription reports the gap, and once the replica
//! has taken over it hears every event published again, on that topic and on
//! the others it holds (channels of many slots, several on each primary).

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::sync::Arc;
use std::time::{Duration, Instant};

use chatterbox_events::{EventBus, Received, RedisBus, Topic, envelope};
use chatterbox_proto::events::v1::envelope::Event;
use chatterbox_proto::events::v1::{Envelope, MemberLeft};
use chatterbox_redis::Target;
use chatterbox_testkit::redis_cluster::OwnRedisCluster;
use chatterbox_types::{ConversationId, Timestamp};

fn event(n: u32) -> Envelope {
    envelope(
        Event::MemberLeft(MemberLeft { conversation_id: format!("c{n}"), user_id: String::new(), conversation: None }),
        Timestamp::from_millis(i64::from(n)),
    )
}

#[tokio::test]
async fn a_subscription_hears_its_topic_again_after_the_primary_carrying_it_fails_over() {
    let redis = OwnRedisCluster::start(Duration::from_millis(1000));
    let prefix = chatterbox_testkit::fresh_key_prefix();
    let bus = RedisBus::connect(Target::cluster(&redis.seeds).unwrap(), prefix.clone()).await.unwrap();
    let topics: Vec<Topic> = (0..12).map(|_| Topic::Conversation(ConversationId::generate())).collect();
    let topic = topics[0];
    let mut sub = bus.subscription().await.unwrap();
    sub.subscribe(&topics).await.unwrap();
    let channel = format!("{prefix}:events:{topic}");
    let victim = redis.primary_of(&channel).await.unwrap();

    redis.kill(victim);
    let killed = Instant::now();
    // A gap is reported (the connection to the dead node dropped), then,
    // once resubscribed, another.
    let mut gaps = 0;
    while gaps < 2 {
        match tokio::time::timeout(Duration::from_secs(30), sub.next()).await.expect("gaps are reported") {
            Some(Received::Gap) => gaps += 1,
            Some(Received::Event { .. }) => {}
            None => panic!("the bus ended"),
        }
    }
    let resubscribed_after = killed.elapsed();
    // From now on every event arrives, on every topic, for a while.
    for n in 0..36u32 {
        let on = topics[n as usize % topics.len()];
        bus.publish(&on, &event(n)).await.unwrap();
        match tokio::time::timeout(Duration::from_secs(5), sub.next()).await.expect("the event arrives") {
            Some(Received::Event { topic, envelope }) => {
                assert_eq!((topic, Arc::unwrap_or_clone(envelope).at_ms), (on, i64::from(n)));
            }
            other => panic!("event {n}: got {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(redis.primary_of(&channel).await, Some(victim), "a replica took over");
    println!("resubscribed {resubscribed_after:?} after the kill");
}
