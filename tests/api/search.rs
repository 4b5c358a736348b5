//! Message search (api.md v1.1): `GET /api/v1/search/messages` finds the
//! messages of the caller's conversations whose text matches, newest first;
//! words case- and accent-insensitively, Chinese and Japanese by any run of
//! two or more characters; deleted messages never, edited ones by their
//! text now.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, TestUser, assert_error};
use crate::on_every_backend;

on_every_backend!(
    words_match_whole_ignoring_case_and_accents_newest_first,
    unspaced_text_matches_any_run_of_characters,
    only_conversations_the_caller_is_in_now_and_never_deleted_or_replaced_text,
    results_are_paged_and_narrowed_to_one_conversation,
    bad_queries_are_refused,
);

fn query(q: &str) -> String {
    let mut url = reqwest::Url::parse("http://x/api/v1/search/messages").unwrap();
    url.query_pairs_mut().append_pair("q", q);
    format!("{}?{}", url.path(), url.query().unwrap())
}

async fn search(app: &TestApp, user: &TestUser, q: &str) -> Vec<String> {
    contents(&app.json_as(&query(q), &user.access_token).await)
}

fn contents(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap().to_owned()).collect()
}

async fn words_match_whole_ignoring_case_and_accents_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let dm = app.direct(&ann, &bob).await;
    app.say(&ann, &dm, "Meet at the Café at noon").await;
    app.say(&bob, &dm, "CAFE or tea?").await;
    app.say(&ann, &dm, "cafeteria is closed").await;
    app.say(&bob, &dm, "Crème brûlée, naïve").await;

    assert_eq!(search(&app, &bob, "cafe").await, ["CAFE or tea?", "Meet at the Café at noon"]);
    assert_eq!(search(&app, &ann, "CAFÉ").await, ["CAFE or tea?", "Meet at the Café at noon"]);
    assert_eq!(search(&app, &ann, "creme brulee").await, ["Crème brûlée, naïve"]);
    assert_eq!(search(&app, &ann, "  NAIVE  ").await, ["Crème brûlée, naïve"]);
    // Every word must be there.
    assert_eq!(search(&app, &ann, "cafe noon").await, ["Meet at the Café at noon"]);
    assert!(search(&app, &ann, "cafe brulee").await.is_empty());
    // A search with nothing to look for (punctuation) finds nothing.
    assert!(search(&app, &ann, "?!").await.is_empty());
    // What search answers are messages as history shows them.
    let page = app.json_as(&query("tea"), &ann.access_token).await;
    assert_eq!(page["items"][0]["sender_id"], bob.id.as_str());
    assert!(page["items"][0]["seq"].as_u64().is_some());
    assert!(page["next_cursor"].is_null());
}

async fn unspaced_text_matches_any_run_of_characters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob) = (app.register("ann").await, app.register("bob").await);
    let dm = app.direct(&ann, &bob).await;
    app.say(&ann, &dm, "東京タワーに行こう").await;
    app.say(&bob, &dm, "京タ and タワ are separate here").await;
    app.say(&bob, &dm, "我在北京工作").await;

    assert_eq!(search(&app, &bob, "東京").await, ["東京タワーに行こう"]);
    assert_eq!(search(&app, &bob, "タワー").await, ["東京タワーに行こう"]);
    assert_eq!(search(&app, &bob, "京タワ").await, ["東京タワーに行こう"], "a run, not its pairs apart");
    assert_eq!(search(&app, &bob, "北京").await, ["我在北京工作"]);
    assert_eq!(search(&app, &bob, "タワ").await, ["京タ and タワ are separate here", "東京タワーに行こう"]);
    assert!(search(&app, &bob, "東タ").await.is_empty());
}

async fn only_conversations_the_caller_is_in_now_and_never_deleted_or_replaced_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, cat) = (app.register("ann").await, app.register("bob").await, app.register("cat").await);
    let team = app.group(&ann, "Team", &[&bob, &cat]).await;
    let private = app.direct(&ann, &bob).await;
    app.say(&ann, &team, "budget for the team").await;
    app.say(&ann, &private, "budget between us").await;
    let edited = app.say(&bob, &team, "draft budget").await;
    let deleted = app.say(&ann, &team, "secret budget").await;

    let path = |m: &Value| format!("/api/v1/messages/{}", m["id"].as_str().unwrap());
    let r = app.patch_as(&path(&edited), &bob.access_token, serde_json::json!({"content": "final plan"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.delete_as(&path(&deleted), &ann.access_token).await.status(), StatusCode::NO_CONTENT);

    assert_eq!(search(&app, &cat, "budget").await, ["budget for the team"], "not the direct conversation");
    assert_eq!(search(&app, &bob, "budget").await, ["budget between us", "budget for the team"]);
    assert_eq!(search(&app, &bob, "final").await, ["final plan"]);
    assert!(search(&app, &bob, "draft").await.is_empty(), "found by its text now only");
    assert!(search(&app, &bob, "secret").await.is_empty());

    // Once Cat is removed, the team's messages are not hers to find.
    let removed =
        app.delete_as(&format!("/api/v1/conversations/{team}/participants/{}", cat.id), &ann.access_token).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert!(search(&app, &cat, "budget").await.is_empty());
}

async fn results_are_paged_and_narrowed_to_one_conversation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ann, bob, eve) = (app.register("ann").await, app.register("bob").await, app.register("eve").await);
    let team = app.group(&ann, "Team", &[&bob]).await;
    let dm = app.direct(&ann, &bob).await;
    for n in 1..=5 {
        app.say(&ann, &team, &format!("report {n}")).await;
    }
    app.say(&ann, &dm, "report in private").await;

    let first = app.json_as(&format!("{}&limit=2", query("report")), &bob.access_token).await;
    assert_eq!(contents(&first), ["report in private", "report 5"]);
    let mut seen = contents(&first);
    let mut cursor = first["next_cursor"].as_str().unwrap().to_owned();
    loop {
        let page = app.json_as(&format!("{}&limit=2&cursor={cursor}", query("report")), &bob.access_token).await;
        seen.extend(contents(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, ["report in private", "report 5", "report 4", "report 3", "report 2", "report 1"]);

    let narrowed = app.json_as(&format!("{}&conversation_id={dm}", query("report")), &bob.access_token).await;
    assert_eq!(contents(&narrowed), ["report in private"]);
    // Not hers: 404, as for a conversation that does not exist.
    assert_error(
        app.get_as(&format!("{}&conversation_id={dm}", query("report")), &eve.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.get_as(&format!("{}&conversation_id=nonsense", query("report")), &eve.access_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

async fn bad_queries_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.register("ann").await;
    for bad in ["", "   ", &"x".repeat(201)] {
        assert_error(app.get_as(&query(bad), &ann.access_token).await, StatusCode::BAD_REQUEST, "invalid_argument")
            .await;
    }
    assert_eq!(app.get_as(&query(&"é".repeat(200)), &ann.access_token).await.status(), StatusCode::OK);
    assert_error(
        app.get_as("/api/v1/search/messages", &ann.access_token).await,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
    )
    .await;
    assert_error(
        app.get_as(&format!("{}&cursor=nonsense", query("x")), &ann.access_token).await,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
    )
    .await;
    assert_error(
        app.get_as(&format!("{}&limit=0", query("x")), &ann.access_token).await,
        StatusCode::BAD_REQUEST,
        "invalid_argument",
    )
    .await;
    assert_error(
        app.send(reqwest::Method::GET, &query("x"), None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}
