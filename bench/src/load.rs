//! The clients and scenarios.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chatterbox_message::MessageStore;
use chatterbox_message::store::NewMessage;
use chatterbox_proto::message::v1::SendMessageRequest;
use chatterbox_proto::message::v1::message_service_client::MessageServiceClient;
use chatterbox_types::{ConversationId, MessageId, Timestamp, UserId};
use rand::Rng as _;
use serde_json::{Value, json};
use tokio::runtime::Handle;

use crate::cpu;
use crate::stats::Summary;

/// A registered user.
#[derive(Debug, Clone)]
pub struct User {
    /// Their id.
    pub id: String,
    /// Their access token.
    pub token: String,
}

/// An HTTP client for the gateway.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for the gateway at `base`.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest::Client::builder().pool_max_idle_per_host(1024).build().unwrap_or_default(),
        }
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> anyhow::Result<Value> {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "POST {path}: {status} {body}");
        Ok(body)
    }

    /// Registers a user.
    pub async fn register(&self, name: &str) -> anyhow::Result<User> {
        let body = json!({"username": name, "email": format!("{name}@bench.example"), "password": "bench-password"});
        let r = self.post("/api/v1/auth/register", None, body).await?;
        Ok(User {
            id: r["user"]["id"].as_str().unwrap_or_default().to_owned(),
            token: r["tokens"]["access_token"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// Adds `user` to conversation `id` (as its admin `by`).
    pub async fn add(&self, by: &User, id: &str, user: &User) -> anyhow::Result<()> {
        self.post(&format!("/api/v1/conversations/{id}/participants"), Some(&by.token), json!({"user_id": user.id}))
            .await?;
        Ok(())
    }

    /// Creates `n` groups of the two users; returns their ids.
    pub async fn groups(&self, owner: &User, other: &User, n: usize) -> anyhow::Result<Vec<String>> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let body = json!({"type": "group", "name": format!("bench {i}"), "participant_ids": [other.id]});
            let r = self.post("/api/v1/conversations", Some(&owner.token), body).await?;
            ids.push(r["id"].as_str().unwrap_or_default().to_owned());
        }
        Ok(ids)
    }
}

/// The load generator's own runtime: its threads are named
/// [`cpu::LOAD_THREADS`], so the server's share of this process's CPU can
/// be told apart; a scenario's clients make their connections on it.
#[derive(Debug)]
pub struct LoadRuntime(Option<tokio::runtime::Runtime>);

impl LoadRuntime {
    /// Two worker threads, as many as the box has cores.
    pub fn new() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(cpu::LOAD_THREADS)
            .enable_all()
            .build()?;
        Ok(Self(Some(runtime)))
    }

    /// Where scenarios spawn their work.
    pub fn handle(&self) -> &Handle {
        self.0.as_ref().map(tokio::runtime::Runtime::handle).unwrap_or_else(|| unreachable!("taken only on drop"))
    }
}

impl Drop for LoadRuntime {
    /// Dropped from async code (the bench's main), so it must not block.
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs `total` operations on the `load` runtime, `concurrency` at a time;
/// `op(i)` does the i-th. A failed operation is counted, not fatal: the
/// figures say how many.
async fn run<F, Fut>(load: &Handle, total: usize, concurrency: usize, op: F) -> anyhow::Result<Summary>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let op = Arc::new(op);
    let started = Instant::now();
    let server_cpu = cpu::of_server_here();
    let workers = (0..concurrency.max(1)).map(|_| {
        let (next, op) = (next.clone(), op.clone());
        load.spawn(async move {
            let (mut samples, mut failures) = (Vec::new(), Vec::new());
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return (samples, failures);
                }
                let t = Instant::now();
                match op(i).await {
                    Ok(()) => samples.push(t.elapsed()),
                    Err(e) => failures.push(e.to_string()),
                }
            }
        })
    });
    let mut samples: Vec<Duration> = Vec::with_capacity(total);
    let mut failures = Vec::new();
    for worker in futures::future::join_all(workers).await {
        let (ok, failed) = worker?;
        samples.extend(ok);
        failures.extend(failed);
    }
    let elapsed = started.elapsed();
    let server_cpu = cpu::of_server_here().saturating_sub(server_cpu);
    Ok(Summary { server_cpu: Some(server_cpu), ..Summary::of(samples, failures, elapsed) })
}

/// Sends `total` messages through the gateway, round-robin over `groups`.
pub async fn sends_over_http(
    load: &Handle,
    client: &Client,
    user: &User,
    groups: &[String],
    total: usize,
    concurrency: usize,
) -> anyhow::Result<Summary> {
    let (client, token, groups) = (client.clone(), user.token.clone(), Arc::new(groups.to_vec()));
    run(load, total, concurrency, move |i| {
        let (client, token, groups) = (client.clone(), token.clone(), groups.clone());
        async move {
            let path = format!("/api/v1/conversations/{}/messages", groups[i % groups.len()]);
            client
                .post(&path, Some(&token), json!({"content": format!("http {i}"), "client_id": format!("h{i}")}))
                .await?;
            Ok(())
        }
    })
    .await
}

/// Sends `total` messages straight to the message service over gRPC.
pub async fn sends_over_grpc(
    load: &Handle,
    addr: SocketAddr,
    user: &User,
    groups: &[String],
    total: usize,
    concurrency: usize,
) -> anyhow::Result<Summary> {
    // The channel's connection task runs where it is made: on the load runtime.
    let channel = {
        let _on_load = load.enter();
        chatterbox_runtime::connect(&format!("http://{addr}"), Duration::from_secs(10), None)?
    };
    let client = MessageServiceClient::new(channel);
    let (token, groups) = (user.token.clone(), Arc::new(groups.to_vec()));
    run(load, total, concurrency, move |i| {
        let (mut client, token, groups) = (client.clone(), token.clone(), groups.clone());
        async move {
            let request = SendMessageRequest {
                conversation_id: groups[i % groups.len()].clone(),
                content: format!("grpc {i}"),
                r#type: String::new(),
                attachment_ids: Vec::new(),
                client_id: Some(format!("g{i}")),
                reply_to: None,
            };
            client.send_message(chatterbox_identity::with_bearer(request, &token)?).await?;
            Ok(())
        }
    })
    .await
}

/// Distinct rare words in the seeded history.
pub const VOCABULARY: usize = 1_000;

/// What a search scenario looks for.
#[derive(Debug, Clone, Copy)]
pub enum Search {
    /// A random `w<k>`: about one message in [`VOCABULARY`].
    RareWord,
    /// Two random `w<k>`: almost never together.
    TwoRareWords,
    /// `ordinary`: in every message.
    CommonWord,
}

/// Makes `total` searches through the gateway as `user`; each must answer 200.
pub async fn searches(
    load: &Handle,
    client: &Client,
    user: &User,
    search: Search,
    (total, concurrency): (usize, usize),
) -> anyhow::Result<Summary> {
    let (client, token) = (client.clone(), user.token.clone());
    run(load, total, concurrency, move |_| {
        let (client, token) = (client.clone(), token.clone());
        async move {
            let word = || format!("w{}", rand::thread_rng().gen_range(0..VOCABULARY));
            let q = match search {
                Search::RareWord => word(),
                Search::TwoRareWords => format!("{}+{}", word(), word()),
                Search::CommonWord => "ordinary".to_owned(),
            };
            let url = format!("{}/api/v1/search/messages?q={q}&limit=20", client.base);
            let response = client.http.get(url).bearer_auth(&token).send().await?;
            anyhow::ensure!(response.status().is_success(), "search: {}", response.status());
            let page = response.bytes().await?;
            if let Search::CommonWord = search {
                anyhow::ensure!(messages_in(&page) > 0, "{search:?} found nothing");
            }
            Ok(())
        }
    })
    .await
}

/// Fills each conversation with `per` messages through the store's import.
pub async fn import(store: &dyn MessageStore, user: &User, conversations: &[String], per: usize) -> anyhow::Result<()> {
    let sender = UserId::parse(&user.id)?;
    for id in conversations {
        let conversation = ConversationId::parse(id)?;
        for chunk_start in (0..per).step_by(10_000) {
            let batch: Vec<NewMessage> = (chunk_start..per.min(chunk_start + 10_000))
                .map(|n| NewMessage {
                    id: MessageId::generate(),
                    conversation_id: conversation,
                    sender_id: sender,
                    kind: chatterbox_types::MessageKind::Text,
                    // `ordinary` is in every message; each `w<k>` in about
                    // one in VOCABULARY (what the search scenarios look for).
                    content: format!(
                        "history message {n} with some ordinary chat-sized text about w{}",
                        rand::thread_rng().gen_range(0..VOCABULARY)
                    ),
                    attachments: Vec::new(),
                    client_id: None,
                    created_at: Timestamp::now(),
                    reply_to: None,
                    mentions: Vec::new(),
                })
                .collect();
            store.import(conversation, &batch).await?;
        }
    }
    // A search waits for the full-text index to catch up with what was
    // imported (SQLite indexes behind writes), so the reads measured next
    // do not share the machine with that.
    if let Some(first) = conversations.first() {
        store.search(&["ordinary".to_owned()], &[ConversationId::parse(first)?], None, 1).await?;
    }
    Ok(())
}

/// How many messages a page of history holds: every message names its
/// conversation once, and no text can hold that key unescaped. Counted
/// rather than parsed, so the load generator, sharing the server's cores,
/// leaves them to the server (parsing 15 KB pages took 60% of both cores
/// at 14,000 reads/s).
fn messages_in(page: &[u8]) -> usize {
    memchr::memmem::find_iter(page, br#""conversation_id":"#).count()
}

/// What one read of a random conversation checks of its answer.
#[derive(Debug, Clone, Copy)]
pub enum Read {
    /// `GET .../messages?limit=50`: a full page, parsed lean.
    HistoryPage,
    /// `GET /api/v1/conversations/{id}`: two calls behind the gateway (the
    /// conversation service, then the message service for the last message
    /// and the unread count).
    Conversation,
}

/// Makes `total` reads of random `conversations` through the gateway.
pub async fn reads(
    load: &Handle,
    client: &Client,
    user: &User,
    conversations: &[String],
    read: Read,
    (total, concurrency): (usize, usize),
) -> anyhow::Result<Summary> {
    let (client, token, conversations) = (client.clone(), user.token.clone(), Arc::new(conversations.to_vec()));
    run(load, total, concurrency, move |_| {
        let (client, token, conversations) = (client.clone(), token.clone(), conversations.clone());
        async move {
            let id = &conversations[rand::thread_rng().gen_range(0..conversations.len())];
            let url = match read {
                Read::HistoryPage => format!("{}/api/v1/conversations/{id}/messages?limit=50", client.base),
                Read::Conversation => format!("{}/api/v1/conversations/{id}", client.base),
            };
            let response = client.http.get(url).bearer_auth(&token).send().await?;
            anyhow::ensure!(response.status().is_success(), "{read:?}: {}", response.status());
            match read {
                Read::HistoryPage => {
                    let page = response.bytes().await?;
                    anyhow::ensure!(messages_in(&page) == 50, "a full page");
                }
                Read::Conversation => drop(response.bytes().await?),
            }
            Ok(())
        }
    })
    .await
}
