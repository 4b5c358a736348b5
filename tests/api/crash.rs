//! The one-process suite killed with SIGKILL in the middle of a burst of
//! sends from many connections (REST and WebSocket): after a restart on the
//! same data, every acknowledged message is in history exactly once, `seq`
//! has no gap, and a client retrying with its `client_id` gets the original
//! (or, for a send that never committed, one new message, once).
//!
//! What it proves: a send is acknowledged only once committed, commits are
//! atomic, and `seq` and `client_id` hold across a crash of the process. A
//! SIGKILL leaves the operating system's page cache alone, so it does not
//! prove data reaches the disk before the acknowledgement (that is
//! `synchronous=FULL`, not testable without cutting the machine's power).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chatterbox_testkit::process::spawn_logged;
use futures::{SinkExt as _, StreamExt as _};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const BIN: &str = env!("CARGO_BIN_EXE_chatterbox");

/// Senders of each kind, each alone in its own direct conversation.
const SENDERS_PER_KIND: usize = 4;
/// Acknowledged sends after which the process is killed.
const KILL_AFTER: usize = 300;
/// The most any sender tries, so the test ends whatever happens.
const MOST_PER_SENDER: usize = 5_000;

/// The all-in-one process on `data`.
async fn start(data: &Path) -> (Child, SocketAddr) {
    let env = [
        ("CHATTERBOX_DATA_DIR", data.display().to_string()),
        ("CHATTERBOX_HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("CHATTERBOX_HTTP_RATE_LIMIT", "0".to_owned()),
        ("CHATTERBOX_WS_RATE_LIMIT", "0".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let spawned = spawn_logged(Path::new(BIN), &[], &env, |l| l.http.is_some()).await.expect("the suite starts");
    let addr = spawned.listening.http.unwrap();
    (spawned.child, addr)
}

/// One sender's view: what was acknowledged (client_id → message), and the
/// send it was making when the process died, if any (its fate unknown).
#[derive(Debug, Default)]
struct Sent {
    acked: BTreeMap<String, Value>,
    in_doubt: Option<String>,
}

impl Sent {
    /// Notes how a send went (its message, or no answer); says whether the
    /// sender goes on.
    fn record(&mut self, client_id: String, answer: Option<Value>, acked: &AtomicUsize) -> bool {
        match answer {
            Some(message) => {
                self.acked.insert(client_id, message);
                acked.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => {
                self.in_doubt = Some(client_id);
                false
            }
        }
    }
}

struct Sender {
    name: String,
    token: String,
    conversation: String,
}

async fn register(client: &reqwest::Client, addr: SocketAddr, name: &str) -> (String, String) {
    let body =
        json!({"username": name, "email": format!("{name}@example.com"), "password": format!("pw-{name}-secret")});
    let r = client.post(format!("http://{addr}/api/v1/auth/register")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "registering {name}");
    let body: Value = r.json().await.unwrap();
    (body["user"]["id"].as_str().unwrap().to_owned(), body["tokens"]["access_token"].as_str().unwrap().to_owned())
}

async fn post_message(
    client: &reqwest::Client,
    addr: SocketAddr,
    sender: &Sender,
    client_id: &str,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("http://{addr}/api/v1/conversations/{}/messages", sender.conversation))
        .bearer_auth(&sender.token)
        .json(&json!({"content": format!("message {client_id}"), "client_id": client_id}))
        .send()
        .await
}

/// Sends over REST, on its own connection, until the server goes away.
async fn send_over_rest(addr: SocketAddr, sender: Arc<Sender>, acked: Arc<AtomicUsize>) -> Sent {
    let client = reqwest::Client::new();
    let mut sent = Sent::default();
    for k in 0..MOST_PER_SENDER {
        let client_id = format!("{}-{k}", sender.name);
        let answered = match post_message(&client, addr, &sender, &client_id).await {
            Ok(r) if r.status() == StatusCode::CREATED => r.json::<Value>().await.ok(),
            Ok(r) if r.status().is_server_error() => None,
            Ok(r) => panic!("{client_id}: unexpected {}", r.status()),
            Err(_) => None,
        };
        if !sent.record(client_id, answered, &acked) {
            break;
        }
    }
    sent
}

/// Sends over a WebSocket, one `message.send` at a time, until it drops.
async fn send_over_websocket(addr: SocketAddr, sender: Arc<Sender>, acked: Arc<AtomicUsize>) -> Sent {
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    let bearer = HeaderValue::from_str(&format!("Bearer {}", sender.token)).unwrap();
    request.headers_mut().insert("authorization", bearer);
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.expect("the upgrade succeeds");
    let mut sent = Sent::default();
    for k in 0..MOST_PER_SENDER {
        let client_id = format!("{}-{k}", sender.name);
        let frame = json!({
            "type": "message.send", "id": client_id, "conversation_id": sender.conversation,
            "content": format!("message {client_id}"), "client_id": client_id,
        });
        if ws.send(Frame::text(frame.to_string())).await.is_err() {
            sent.in_doubt = Some(client_id);
            break;
        }
        // Other frames (ready, its own message.new) pass by; the ack or the end comes.
        let ack = loop {
            let Ok(Some(Ok(Frame::Text(text)))) = tokio::time::timeout(Duration::from_secs(30), ws.next()).await else {
                break None;
            };
            let frame: Value = serde_json::from_str(&text).unwrap();
            match frame["type"].as_str() {
                Some("ack") if frame["id"] == client_id.as_str() => break Some(frame["message"].clone()),
                Some("error") if frame["id"] == client_id.as_str() => panic!("{client_id}: {frame}"),
                _ => {}
            }
        };
        if !sent.record(client_id, ack, &acked) {
            break;
        }
    }
    sent
}

/// A conversation's whole history, oldest first.
async fn history(client: &reqwest::Client, addr: SocketAddr, sender: &Sender) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    loop {
        let after = all.last().map_or(0, |m| m["seq"].as_u64().unwrap());
        let url =
            format!("http://{addr}/api/v1/conversations/{}/messages?after={after}&limit=100", sender.conversation);
        let r = client.get(url).bearer_auth(&sender.token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let page: Value = r.json().await.unwrap();
        let items = page["items"].as_array().expect("a page of messages").clone();
        if items.is_empty() {
            return all;
        }
        all.extend(items);
    }
}

/// Every acknowledged message is there once, under the id and `seq` it was
/// acknowledged with; `seq` runs 1, 2, 3… with no gap; no `client_id` twice.
/// Returns the history by `client_id`.
fn check_history(name: &str, messages: &[Value], acked: &BTreeMap<String, Value>) -> HashMap<String, Value> {
    let seqs: Vec<u64> = messages.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{name}: seq has no gap and no repeat");
    let mut by_client: HashMap<String, Value> = HashMap::new();
    for m in messages {
        let client_id = m["client_id"].as_str().expect("every message here has a client_id").to_owned();
        assert!(by_client.insert(client_id.clone(), m.clone()).is_none(), "{name}: {client_id} is stored twice");
    }
    for (client_id, ack) in acked {
        let stored = by_client.get(client_id).unwrap_or_else(|| panic!("{name}: acknowledged {client_id} was lost"));
        assert_eq!(stored["id"], ack["id"], "{name}: {client_id} keeps its id");
        assert_eq!(stored["seq"], ack["seq"], "{name}: {client_id} keeps its seq");
    }
    by_client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_mid_burst_loses_and_repeats_nothing_acknowledged() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, addr) = start(data.path()).await;
    let client = reqwest::Client::new();

    let mut senders = Vec::new();
    for i in 0..2 * SENDERS_PER_KIND {
        let name = format!("sender{i}");
        let (_, token) = register(&client, addr, &name).await;
        let (peer, _) = register(&client, addr, &format!("peer{i}")).await;
        let r = client
            .post(format!("http://{addr}/api/v1/conversations"))
            .bearer_auth(&token)
            .json(&json!({"type": "direct", "participant_ids": [peer]}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let conversation = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        senders.push(Arc::new(Sender { name, token, conversation }));
    }

    let acked = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = senders
        .iter()
        .enumerate()
        .map(|(i, sender)| {
            let (sender, acked) = (sender.clone(), acked.clone());
            if i < SENDERS_PER_KIND {
                tokio::spawn(send_over_rest(addr, sender, acked))
            } else {
                tokio::spawn(send_over_websocket(addr, sender, acked))
            }
        })
        .collect();
    let burst = tokio::time::timeout(Duration::from_secs(120), async {
        while acked.load(Ordering::Relaxed) < KILL_AFTER {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    burst.await.expect("the burst gets going");
    // SIGKILL, in the middle of the burst: no drain, no goodbye.
    child.kill().await.unwrap();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let total: usize = results.iter().map(|s| s.acked.len()).sum();
    assert!(total >= KILL_AFTER, "{total} acknowledged before the kill");

    let (_child, addr) = start(data.path()).await;
    for (sender, sent) in senders.iter().zip(&results) {
        let stored = check_history(&sender.name, &history(&client, addr, sender).await, &sent.acked);

        // A client that never heard back retries: the original if it
        // committed, else one new message.
        if let Some(client_id) = &sent.in_doubt {
            let r = post_message(&client, addr, sender, client_id).await.unwrap();
            let status = r.status();
            let message: Value = r.json().await.unwrap();
            match stored.get(client_id) {
                Some(original) => {
                    assert_eq!(status, StatusCode::OK, "{client_id} committed before the kill: the original");
                    assert_eq!(message["id"], original["id"]);
                }
                None => assert_eq!(status, StatusCode::CREATED, "{client_id} never committed: sent now"),
            }
        }
        // A retry of an acknowledged send gets the original.
        let (client_id, ack) = sent.acked.iter().next_back().expect("every sender had acknowledgements");
        let r = post_message(&client, addr, sender, client_id).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{client_id}: a retry answers the original");
        assert_eq!(r.json::<Value>().await.unwrap()["id"], ack["id"]);

        // And after the retries, still each client_id once, no gap.
        let after = history(&client, addr, sender).await;
        let stored = check_history(&sender.name, &after, &sent.acked);
        if let Some(client_id) = &sent.in_doubt {
            assert!(stored.contains_key(client_id), "{client_id} is stored once after its retry");
        }
        assert_eq!(after.len(), sent.acked.len() + usize::from(sent.in_doubt.is_some()), "{}", sender.name);
    }
}
