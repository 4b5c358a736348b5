//! Ended sessions shared through Redis: every process learns of an end
//! within a second, including one that starts afterwards or whose
//! connection was down when it happened.

#![allow(clippy::unwrap_used)] // a panic is how a test fails

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chatterbox_identity::{REVOCATION_POLL, Revocations};
use chatterbox_testkit::OnRedis;
use chatterbox_types::SessionId;

fn in_a_minute() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 60
}

async fn shared(prefix: &str) -> Revocations {
    shared_on(OnRedis::Server, prefix).await
}

async fn shared_on(redis: OnRedis, prefix: &str) -> Revocations {
    Revocations::shared(redis.connection().await, prefix, Duration::from_secs(120)).await.unwrap()
}

#[tokio::test]
async fn an_end_in_one_process_reaches_the_others_within_a_second() {
    an_end_reaches_the_others_within_a_second_on(OnRedis::Server).await;
}

#[tokio::test]
async fn an_end_in_one_process_reaches_the_others_within_a_second_on_a_redis_cluster() {
    an_end_reaches_the_others_within_a_second_on(OnRedis::Cluster).await;
}

async fn an_end_reaches_the_others_within_a_second_on(redis: OnRedis) {
    let prefix = chatterbox_testkit::fresh_key_prefix();
    let shared = |prefix: String| async move { shared_on(redis, &prefix).await };
    let (auth, gateway) = (shared(prefix.clone()).await, shared(prefix.clone()).await);
    let mut notices = gateway.notices();
    let session = SessionId::generate();
    let started = Instant::now();
    auth.end(session, in_a_minute()).await.unwrap();
    assert!(auth.is_ended(session), "the ending process knows at once");
    let noticed = tokio::time::timeout(Duration::from_secs(1), notices.recv()).await.unwrap().unwrap();
    assert_eq!(noticed, session);
    assert!(gateway.is_ended(session));
    assert!(started.elapsed() <= REVOCATION_POLL * 3, "{:?}", started.elapsed());

    // A process started later reads the retained ends before it serves.
    let late = shared(prefix).await;
    assert!(late.is_ended(session));
    assert!(!late.is_ended(SessionId::generate()));
    // Another deployment's prefix shares nothing.
    assert!(!shared(chatterbox_testkit::fresh_key_prefix()).await.is_ended(session));
}

#[tokio::test]
async fn ends_are_read_in_pages_and_none_is_missed() {
    let prefix = chatterbox_testkit::fresh_key_prefix();
    let auth = shared(&prefix).await;
    let sessions: Vec<SessionId> = (0..2_500).map(|_| SessionId::generate()).collect();
    for session in &sessions {
        auth.end(*session, in_a_minute()).await.unwrap();
    }
    let late = shared(&prefix).await;
    assert!(sessions.iter().all(|s| late.is_ended(*s)));
}
