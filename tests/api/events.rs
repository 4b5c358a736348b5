//! Every change made through the API is published on the event bus after it
//! is committed, on the right topic (in process, or over Redis).

use std::time::Duration;

use chatterbox_events::{Received, Subscription, Topic};
use chatterbox_proto::events::v1::envelope::Event;
use chatterbox_types::{ConversationId, UserId};
use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::on_every_backend;

on_every_backend!(changes_are_published_on_their_topics_after_commit);

async fn next(sub: &mut Box<dyn Subscription>) -> (Topic, Event) {
    match tokio::time::timeout(Duration::from_secs(5), sub.next()).await.expect("an event within 5 s") {
        Some(Received::Event { topic, envelope }) => {
            assert_eq!(envelope.version, 1);
            (topic, envelope.event.clone().expect("a payload"))
        }
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn changes_are_published_on_their_topics_after_commit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, cat) = (app.register("ann").await, app.register("bob").await, app.register("cat").await);
    let bob_topic = Topic::User(UserId::parse(&bob.id).unwrap());
    let cat_topic = Topic::User(UserId::parse(&cat.id).unwrap());
    let mut sub = app.suite.events.subscription().await.unwrap();
    sub.subscribe(&[bob_topic, cat_topic]).await.unwrap();

    let id = app.group(&ann, "Team", &[&bob]).await;
    let (topic, event) = next(&mut sub).await;
    assert_eq!(topic, bob_topic);
    let Event::ConversationCreated(created) = event else { panic!("{event:?}") };
    assert_eq!(created.conversation.unwrap().id, id);

    let conversation = Topic::Conversation(ConversationId::parse(&id).unwrap());
    sub.subscribe(&[conversation]).await.unwrap();
    let m = app.say(&ann, &id, "hello").await;
    let mid = m["id"].as_str().unwrap();
    let (topic, event) = next(&mut sub).await;
    assert_eq!(topic, conversation);
    let Event::MessageCreated(created) = event else { panic!("{event:?}") };
    assert_eq!((created.message.as_ref().unwrap().seq, created.message.unwrap().content.as_str()), (1, "hello"));

    app.patch_as(&format!("/api/v1/messages/{mid}"), &ann.access_token, json!({"content": "hello!"})).await;
    let Event::MessageEdited(edited) = next(&mut sub).await.1 else { panic!("edit") };
    assert_eq!(edited.message.unwrap().content, "hello!");

    app.post_as(&format!("/api/v1/conversations/{id}/read"), &bob.access_token, json!({"seq": 1})).await;
    let Event::ReadUpdated(read) = next(&mut sub).await.1 else { panic!("read") };
    assert_eq!((read.user_id.as_str(), read.seq), (bob.id.as_str(), 1));

    app.delete_as(&format!("/api/v1/messages/{mid}"), &ann.access_token).await;
    let Event::MessageDeleted(deleted) = next(&mut sub).await.1 else { panic!("delete") };
    assert_eq!((deleted.message_id.as_str(), deleted.seq), (mid, 1));

    app.post_as(&format!("/api/v1/conversations/{id}/participants"), &ann.access_token, json!({"user_id": cat.id}))
        .await;
    let mut joined_topics = Vec::new();
    for _ in 0..2 {
        let (topic, event) = next(&mut sub).await;
        let Event::MemberJoined(joined) = event else { panic!("join") };
        assert_eq!(joined.user_id, cat.id);
        joined_topics.push(topic);
    }
    joined_topics.sort();
    let mut expected = vec![conversation, cat_topic];
    expected.sort();
    assert_eq!(joined_topics, expected, "the conversation and the new member hear of it");

    app.delete_as(&format!("/api/v1/conversations/{id}/participants/{}", cat.id), &cat.access_token).await;
    for _ in 0..2 {
        let Event::MemberLeft(left) = next(&mut sub).await.1 else { panic!("leave") };
        assert_eq!(left.user_id, cat.id);
    }

    // A refused change publishes nothing: the next event is Bob's message.
    let refused =
        app.post_as(&format!("/api/v1/conversations/{id}/messages"), &cat.access_token, json!({"content": "x"})).await;
    assert_eq!(refused.status(), reqwest::StatusCode::NOT_FOUND);
    app.say(&bob, &id, "after").await;
    let Event::MessageCreated(m) = next(&mut sub).await.1 else { panic!("message") };
    assert_eq!(m.message.unwrap().content, "after");
}
