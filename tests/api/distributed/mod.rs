//! The distributed mode for real: every service and two gateways as separate
//! processes of the `chatterbox` binary, on FerretDB and Redis.
//!
//! Here: the harness (the processes, the cluster, servers of a test's own)
//! and the drills' tools (sending with retries, listening, comparing what
//! was acknowledged with what history and clients got). The tests:
//! `across_gateways` (features across processes) and `drills` (faults).

mod across_gateways;
mod drills;
mod redis_cluster;
mod traces;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use chatterbox::{Key, Layout, Part};
use chatterbox_testkit::process::spawn_logged;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// A part running as its own process; killed when dropped.
struct Process {
    child: Child,
    /// Where it serves its API (gRPC or HTTP).
    addr: SocketAddr,
    /// Where it serves `/metrics` on its own, if asked to.
    metrics_addr: Option<SocketAddr>,
}

const BIN: &str = env!("CARGO_BIN_EXE_chatterbox");

/// Starts `chatterbox run <part>` and waits for it to log its listening address.
async fn start(part: &str, env: &[(String, String)]) -> Process {
    let spawned = spawn_logged(Path::new(BIN), &["run", part], env, |l| l.http.is_some() || !l.grpc.is_empty())
        .await
        .unwrap_or_else(|e| panic!("{part} starts: {e}"));
    let l = spawned.listening;
    let addr = l.http.or(l.grpc.first().map(|(_, a)| *a)).unwrap();
    Process { child: spawned.child, addr, metrics_addr: l.metrics }
}

impl Process {
    /// Kills it outright (SIGKILL): no goodbyes, as in a crash.
    async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }

    /// Sends it `signal` (`STOP` freezes it, `CONT` thaws it).
    fn signal(&self, signal: &str) {
        send_signal(self.child.id().expect("still running"), signal);
    }
}

fn keygen(dir: &Path) {
    let status = std::process::Command::new(BIN).args(["keygen", "--out"]).arg(dir).env_clear().status().unwrap();
    assert!(status.success());
}

/// Every part as its own process, and two gateways, on FerretDB + Redis.
struct Cluster {
    _keys: tempfile::TempDir,
    _data: tempfile::TempDir,
    /// Every service, started in the table of parts' order.
    services: HashMap<Part, Process>,
    /// What each service was started with, to start it again.
    envs: HashMap<Part, Vec<(String, String)>>,
    a: Process,
    b: Process,
    /// Proxies standing between some services and their callers.
    proxies: HashMap<Part, crate::fault_proxy::FaultProxy>,
}

impl Cluster {
    async fn start(http_rate_limit: u32) -> Self {
        Self::start_on(http_rate_limit, chatterbox_testkit::redis_url(), &[]).await
    }

    /// A cluster whose events and limits go through the Redis at `redis_url`,
    /// every part also given `settings`. Which part calls which, and so
    /// which URLs each is given, comes from the table of parts.
    async fn start_on(http_rate_limit: u32, redis_url: String, settings: &[(&'static str, String)]) -> Self {
        Self::start_with(http_rate_limit, redis_url, settings, &[]).await
    }

    /// [`Cluster::start_on`], every call to the `proxied` services going
    /// through a [`crate::fault_proxy::FaultProxy`] of its own.
    async fn start_with(
        http_rate_limit: u32,
        redis_url: String,
        settings: &[(&'static str, String)],
        proxied: &[Part],
    ) -> Self {
        let keys = tempfile::tempdir().unwrap();
        keygen(keys.path());
        let data = tempfile::tempdir().unwrap();
        let key_file = |key: Key| match key {
            Key::Signing => keys.path().join("jwt-private.pem").display().to_string(),
            Key::Verifying => keys.path().join("jwt-public.pem").display().to_string(),
        };
        let common = [
            ("MONGODB_URI", chatterbox_testkit::mongodb_uri()),
            ("CHATTERBOX_MONGODB_DATABASE", chatterbox_testkit::fresh_database_name()),
            ("CHATTERBOX_DATA_DIR", data.path().display().to_string()),
            ("CHATTERBOX_GRPC_ADDR", "127.0.0.1:0".into()),
            ("CHATTERBOX_HTTP_ADDR", "127.0.0.1:0".into()),
            ("REDIS_URL", redis_url),
            ("CHATTERBOX_REDIS_KEY_PREFIX", chatterbox_testkit::fresh_key_prefix()),
        ];
        // Media in a bucket of the test S3 server.
        let bucket = crate::media_bucket::fresh_media_bucket().await;
        let aws = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]
            .map(|k| (k, std::env::var(k).unwrap_or_else(|_| panic!("{k} is set by make test"))));
        // What only some parts get, besides what the table says.
        let own = |part: Part| -> Vec<(&'static str, String)> {
            match part {
                Part::User | Part::Message => vec![("CHATTERBOX_METRICS_ADDR", "127.0.0.1:0".into())],
                Part::Media => {
                    let mut own = vec![
                        ("S3_BUCKET", bucket.clone()),
                        ("CHATTERBOX_S3_ENDPOINT", chatterbox_testkit::s3_endpoint()),
                    ];
                    own.extend(aws.iter().cloned());
                    own
                }
                Part::Gateway => vec![
                    ("CHATTERBOX_HTTP_RATE_LIMIT", http_rate_limit.to_string()),
                    // Pages may show images from where media's signed URLs point.
                    ("CHATTERBOX_S3_PUBLIC_ENDPOINT", chatterbox_testkit::s3_endpoint()),
                ],
                _ => Vec::new(),
            }
        };
        let mut layout = Layout::new(|| std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()).unwrap();
        let own_env = |part: Part| -> Vec<(String, String)> {
            let mut env: Vec<(String, String)> = common.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
            env.extend(settings.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
            env.extend(own(part).into_iter().map(|(k, v)| (k.to_owned(), v)));
            env.push((part.key().variable().to_owned(), key_file(part.key())));
            env
        };
        let mut envs = HashMap::new();
        let mut proxies = HashMap::new();
        let started = layout
            .start_services(&own_env, async |part, env| {
                let process = start(part.name(), &env).await;
                let reached_at = if proxied.contains(&part) {
                    assert!(!Part::addressed_before_start().contains(&part), "{part:?}: a caller started before it");
                    let proxy = crate::fault_proxy::FaultProxy::start(process.addr).await;
                    let addr = proxy.addr();
                    proxies.insert(part, proxy);
                    addr
                } else {
                    process.addr
                };
                envs.insert(part, env);
                Ok((process, reached_at))
            })
            .await
            .unwrap();
        let services: HashMap<Part, Process> = started.into_iter().collect();
        let gateway_env = layout.gateway_env(own_env(Part::Gateway));
        let a = start(Part::Gateway.name(), &gateway_env).await;
        let b = start(Part::Gateway.name(), &gateway_env).await;
        Self { _keys: keys, _data: data, services, envs, a, b, proxies }
    }

    /// Starts `part` again (after a kill) where it listened before.
    async fn restart(&mut self, part: Part) {
        let mut env = self.envs[&part].clone();
        env.push(("CHATTERBOX_GRPC_ADDR".into(), self.services[&part].addr.to_string()));
        let process = start(part.name(), &env).await;
        assert_eq!(process.addr, self.services[&part].addr, "{} is back where the others look", part.name());
        self.services.insert(part, process);
    }

    fn service(&self, part: Part) -> &Process {
        &self.services[&part]
    }

    fn service_mut(&mut self, part: Part) -> &mut Process {
        self.services.get_mut(&part).unwrap()
    }
}

/// Registers through `gateway`; returns (id, access token).
async fn register(client: &reqwest::Client, gateway: &Process, name: &str) -> (String, String) {
    let r = client
        .post(format!("http://{}/api/v1/auth/register", gateway.addr))
        .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": "long-enough-pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    (body["user"]["id"].as_str().unwrap().to_owned(), body["tokens"]["access_token"].as_str().unwrap().to_owned())
}

/// Opens the direct conversation of the token's user and `other` through
/// `gateway`, expecting it new; returns its id.
async fn direct(client: &reqwest::Client, gateway: &Process, token: &str, other: &str) -> String {
    let created = client
        .post(format!("http://{}/api/v1/conversations", gateway.addr))
        .bearer_auth(token)
        .json(&json!({"type": "direct", "participant_ids": [other]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

/// A backing server of the test's own (Redis, FerretDB) on a loopback port
/// of its own, so a drill can kill it and start it again where it was, with
/// the data it kept.
struct OwnServer {
    name: &'static str,
    port: u16,
    /// Where it keeps its data, when it keeps any.
    data: Option<tempfile::TempDir>,
    /// The command that starts it on a port, with its data directory.
    command: fn(u16, Option<&Path>) -> Command,
    child: Option<Child>,
}

impl OwnServer {
    /// A redis-server that keeps nothing on disk.
    async fn redis() -> Self {
        Self::start("redis-server", None, |port, _| {
            let mut command = Command::new("redis-server");
            command.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
            command
        })
        .await
    }

    /// A FerretDB keeping its SQLite files in a directory of its own.
    async fn ferretdb() -> Self {
        Self::start("FerretDB", Some(tempfile::tempdir().unwrap()), |port, data| {
            let mut command = Command::new(std::env::var("TEST_FERRETDB").expect("TEST_FERRETDB is set by make test"));
            command
                .arg("--handler=sqlite")
                .arg(format!("--sqlite-url=file:{}/", data.unwrap().display()))
                .arg(format!("--listen-addr=127.0.0.1:{port}"))
                .args(["--debug-addr=-", "--telemetry=disable", "--log-level=warn"]);
            command
        })
        .await
    }

    async fn start(
        name: &'static str,
        data: Option<tempfile::TempDir>,
        command: fn(u16, Option<&Path>) -> Command,
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = Self { name, port, data, command, child: None };
        server.restart().await;
        server
    }

    fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn mongodb_uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    /// Starts it (again) and waits until it accepts connections.
    async fn restart(&mut self) {
        let mut command = (self.command)(self.port, self.data.as_ref().map(tempfile::TempDir::path));
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts (make test installs it): {e}", self.name));
        self.child = Some(child);
        let port = self.port;
        chatterbox_testkit::eventually(
            &format!("{} starts", self.name),
            std::time::Duration::from_secs(10),
            || async { tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map(drop).map_err(|e| e.to_string()) },
        )
        .await;
    }

    /// Stops it outright (SIGKILL), as a crashed or unreachable server.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

/// Collects the `seq`s of `message.new` events until it has `1..=total`
/// (or gives up after a while); returns them in arrival order.
async fn collect_messages(ws: crate::ws_client::Ws, total: u64) -> Vec<u64> {
    collect_messages_within(ws, total, std::time::Duration::from_secs(45)).await
}

/// [`collect_messages`] with its own patience.
async fn collect_messages_within(mut ws: crate::ws_client::Ws, total: u64, patience: std::time::Duration) -> Vec<u64> {
    let mut seqs = Vec::new();
    let deadline = tokio::time::Instant::now() + patience;
    while (1..=total).any(|s| !seqs.contains(&s)) && tokio::time::Instant::now() < deadline {
        let Some(frame) = ws.try_next(std::time::Duration::from_secs(1)).await else { continue };
        if frame["type"] == "message.new" {
            seqs.push(frame["message"]["seq"].as_u64().unwrap());
        }
    }
    // Anything extra (a duplicate) would arrive right behind.
    while let Some(frame) = ws.try_next(std::time::Duration::from_millis(500)).await {
        if frame["type"] == "message.new" {
            seqs.push(frame["message"]["seq"].as_u64().unwrap());
        }
    }
    seqs
}

/// A client's view of a user registered through `gateway`.
fn test_user(id: &str, token: &str) -> crate::helpers::TestUser {
    crate::helpers::TestUser {
        id: id.to_owned(),
        email: String::new(),
        password: String::new(),
        access_token: token.to_owned(),
        refresh_token: String::new(),
    }
}

/// Reports every second; a connection not reported for 3 s is gone.
fn quick_presence() -> [(&'static str, String); 2] {
    [("CHATTERBOX_WS_HEARTBEAT_SECS", "1".into()), ("CHATTERBOX_PRESENCE_TTL_SECS", "3".into())]
}

/// How many messages a drill sends (`CHATTERBOX_DRILL_MESSAGES`; `make
/// bench` runs them larger).
fn drill_messages() -> u64 {
    std::env::var("CHATTERBOX_DRILL_MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(240)
}

/// What a drill's sender saw.
struct Sent {
    /// (`client_id`, `seq`) of every acknowledged send, in sending order.
    acknowledged: Vec<(String, u64)>,
    /// Refusals by status.
    refused: HashMap<u16, u64>,
    /// The slowest single answer.
    slowest: std::time::Duration,
    /// The longest time from a first refusal to the next acknowledgement.
    longest_outage: std::time::Duration,
}

/// One send as a client makes it: retried every 200 ms, with the same
/// `client_id`, while the answer is one of `retryable` (which must carry an
/// error message), for at most a minute. Any other answer, or none, fails
/// the drill. Returns the `seq` given, the refusals met on the way and when
/// the first came.
async fn send_one(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    client_id: &str,
    retryable: &[u16],
    slowest: &mut std::time::Duration,
) -> (u64, Vec<u16>, Option<std::time::Instant>) {
    use std::time::{Duration, Instant};
    let body = json!({"content": format!("{client_id} says hello"), "client_id": client_id});
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut refusals, mut first_refused) = (Vec::new(), None);
    loop {
        let started = Instant::now();
        let answer = client.post(url).bearer_auth(token).json(&body).send().await;
        *slowest = (*slowest).max(started.elapsed());
        match answer {
            Ok(r) if r.status().is_success() => {
                let message: Value = r.json().await.unwrap();
                return (message["seq"].as_u64().unwrap(), refusals, first_refused);
            }
            Ok(r) => {
                let status = r.status().as_u16();
                refusals.push(status);
                first_refused.get_or_insert(started);
                let error: Value = r.json().await.unwrap();
                assert!(retryable.contains(&status), "{client_id} answered {status}: {error}");
                assert!(error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
            }
            Err(e) => panic!("{client_id} was left without an answer: {e}"),
        }
        assert!(Instant::now() < deadline, "{client_id} never got through");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends `total` messages to `url` one after the other with [`send_one`];
/// `progress` counts the acknowledged ones.
async fn send_retrying(
    client: reqwest::Client,
    url: String,
    token: String,
    total: u64,
    retryable: &'static [u16],
    progress: tokio::sync::watch::Sender<u64>,
) -> Sent {
    use std::time::Duration;
    let mut sent = Sent {
        acknowledged: Vec::new(),
        refused: HashMap::new(),
        slowest: Duration::ZERO,
        longest_outage: Duration::ZERO,
    };
    for n in 0..total {
        let client_id = format!("drill-{n}");
        let (seq, refusals, first_refused) =
            send_one(&client, &url, &token, &client_id, retryable, &mut sent.slowest).await;
        if let Some(at) = first_refused {
            sent.longest_outage = sent.longest_outage.max(at.elapsed());
        }
        for status in refusals {
            *sent.refused.entry(status).or_default() += 1;
        }
        sent.acknowledged.push((client_id, seq));
        let _ = progress.send(n + 1);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sent
}

/// A conversation's whole history as (`client_id`, `seq`), read page by
/// page through `gateway`.
async fn history_of(
    client: &reqwest::Client,
    gateway: &Process,
    conversation: &str,
    token: &str,
) -> Vec<(String, u64)> {
    let mut history = Vec::new();
    let mut after = 0;
    loop {
        let url =
            format!("http://{}/api/v1/conversations/{conversation}/messages?after={after}&limit=100", gateway.addr);
        let page: Value = crate::helpers::get_json(client, &url, token).await;
        let items = page["items"].as_array().unwrap().clone();
        let Some(last) = items.last() else { break };
        after = last["seq"].as_u64().unwrap();
        history.extend(items.iter().map(|m| (m["client_id"].as_str().unwrap().to_owned(), m["seq"].as_u64().unwrap())));
    }
    history
}

/// The end of every sending drill: acknowledged in order with no gap,
/// history exactly that, and the listener heard each once, in order.
fn assert_kept_once_in_order(sent: &Sent, total: u64, history: &[(String, u64)], heard: &[u64]) {
    assert_eq!(sent.acknowledged.len() as u64, total);
    let seqs: Vec<u64> = sent.acknowledged.iter().map(|(_, seq)| *seq).collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>(), "acknowledged in order, no seq taken twice or skipped");
    assert_eq!(history, sent.acknowledged, "history is exactly what was acknowledged: none lost, none twice");
    assert_eq!(heard, seqs, "every acknowledged message reached the other gateway once, in order");
}

/// A drill's stream: Ann sends through gateway A with [`send_retrying`]
/// (answers in `retryable` retried), Bob listens on gateway B.
struct Stream {
    client: reqwest::Client,
    bob_token: String,
    conversation: String,
    total: u64,
    /// How many sends are acknowledged so far.
    sent_so_far: tokio::sync::watch::Receiver<u64>,
    sender: tokio::task::JoinHandle<Sent>,
    heard: tokio::task::JoinHandle<Vec<u64>>,
}

impl Stream {
    /// Starts `total` sends; Bob listens for at most `patience`.
    async fn start(cluster: &Cluster, total: u64, retryable: &'static [u16], patience: std::time::Duration) -> Self {
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(20)).build().unwrap();
        let (_, ann_token) = register(&client, &cluster.a, "ann").await;
        let (bob, bob_token) = register(&client, &cluster.b, "bob").await;
        let conversation = direct(&client, &cluster.a, &ann_token, &bob).await;
        let bob_ws = crate::ws_client::ws_at(cluster.b.addr, &test_user(&bob, &bob_token)).await;
        let heard = tokio::spawn(collect_messages_within(bob_ws, total, patience));
        let url = format!("http://{}/api/v1/conversations/{conversation}/messages", cluster.a.addr);
        let (progress, sent_so_far) = tokio::sync::watch::channel(0u64);
        let sender = tokio::spawn(send_retrying(client.clone(), url, ann_token, total, retryable, progress));
        Self { client, bob_token, conversation, total, sent_so_far, sender, heard }
    }

    /// Waits until `n` sends are acknowledged.
    async fn acknowledged(&mut self, n: u64) {
        self.sent_so_far.wait_for(|sent| *sent >= n).await.unwrap();
    }

    /// Waits for the last send, then checks history (read through gateway
    /// B) and what Bob heard against what was acknowledged.
    async fn finish(self, cluster: &Cluster) -> Sent {
        let sent = self.sender.await.unwrap();
        let history = history_of(&self.client, &cluster.b, &self.conversation, &self.bob_token).await;
        assert_kept_once_in_order(&sent, self.total, &history, &self.heard.await.unwrap());
        sent
    }
}

/// Ann and Bob in a direct conversation, Bob listening on gateway A.
/// Ann and Bob in a direct conversation, each listening for `total`
/// messages: Ann on gateway A, Bob on B, and Bob's second device on A.
struct BothListening {
    client: reqwest::Client,
    ann_token: String,
    bob_token: String,
    conversation: String,
    /// What each of the three sockets heard ([`collect_messages`]).
    readers: [tokio::task::JoinHandle<Vec<u64>>; 3],
}

async fn both_listen(cluster: &Cluster, total: u64) -> BothListening {
    let client = reqwest::Client::new();
    let (ann, ann_token) = register(&client, &cluster.a, "ann").await;
    let (bob, bob_token) = register(&client, &cluster.b, "bob").await;
    let conversation = direct(&client, &cluster.a, &ann_token, &bob).await;
    let (ann_user, bob_user) = (test_user(&ann, &ann_token), test_user(&bob, &bob_token));
    let readers = [
        tokio::spawn(collect_messages(crate::ws_client::ws_at(cluster.a.addr, &ann_user).await, total)),
        tokio::spawn(collect_messages(crate::ws_client::ws_at(cluster.b.addr, &bob_user).await, total)),
        tokio::spawn(collect_messages(crate::ws_client::ws_at(cluster.a.addr, &bob_user).await, total)),
    ];
    BothListening { client, ann_token, bob_token, conversation, readers }
}

struct Listening {
    client: reqwest::Client,
    ann_token: String,
    conversation: String,
    bob_user: crate::helpers::TestUser,
    socket: crate::ws_client::Ws,
}

async fn bob_listens_on_a(cluster: &Cluster) -> Listening {
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(15)).build().unwrap();
    let (_, ann_token) = register(&client, &cluster.b, "ann").await;
    let (bob, bob_token) = register(&client, &cluster.a, "bob").await;
    let conversation = direct(&client, &cluster.b, &ann_token, &bob).await;
    let bob_user = test_user(&bob, &bob_token);
    let socket = crate::ws_client::ws_at(cluster.a.addr, &bob_user).await;
    Listening { client, ann_token, conversation, bob_user, socket }
}

/// Ann sends `total` messages through gateway B (which stays up), each with
/// its `client_id`; every one must be acknowledged.
fn ann_writes_through_b(
    cluster: &Cluster,
    client: &reqwest::Client,
    token: &str,
    conversation: &str,
    total: u64,
) -> tokio::task::JoinHandle<()> {
    let url = format!("http://{}/api/v1/conversations/{conversation}/messages", cluster.b.addr);
    let (client, token) = (client.clone(), token.to_owned());
    tokio::spawn(async move {
        let mut slowest = std::time::Duration::ZERO;
        for n in 0..total {
            send_one(&client, &url, &token, &format!("drill-{n}"), &[], &mut slowest).await;
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
}

/// As a client does when its connection is gone: connects to `gateway` and
/// resumes from the last message it holds without a gap.
async fn resume_elsewhere(
    gateway: &Process,
    user: &crate::helpers::TestUser,
    conversation: &str,
    received: &[u64],
) -> crate::ws_client::Ws {
    let mut have = 0;
    while received.contains(&(have + 1)) {
        have += 1;
    }
    let mut socket = crate::ws_client::ws_at(gateway.addr, user).await;
    socket.send(json!({"type": "resume", "id": "r", "positions": {conversation: have}})).await;
    socket
}

/// Each of `1..=total` arrived, none twice. (Live events that reach a new
/// connection before its `resume` is handled go out as they come, as the
/// contract says, so a client orders by seq.)
fn assert_each_arrived_once(received: &[u64], total: u64) {
    let mut sorted = received.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), received.len(), "nothing arrived twice");
    assert_eq!(sorted, (1..=total).collect::<Vec<_>>(), "every message arrived");
}

/// Sends `signal` (`STOP`, `CONT`, …) to process `pid`.
fn send_signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Runs the soak on `cluster`; with `kill`, that service is killed halfway
/// through and restarted two seconds later. Returns the drill's report.
async fn soak(cluster: &mut Cluster, kill: Option<Part>) -> String {
    use futures::StreamExt as _;
    use std::time::{Duration, Instant};
    let setting = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let clients = setting("CHATTERBOX_SOAK_CLIENTS", 200) as usize;
    let (rate, secs, logins) = (
        setting("CHATTERBOX_SOAK_RATE", 20),
        setting("CHATTERBOX_SOAK_SECS", 20),
        setting("CHATTERBOX_SOAK_LOGINS", 5),
    );
    const GROUP: usize = 10;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let gateways = [cluster.a.addr, cluster.b.addr];

    let users: Vec<(String, String)> = futures::stream::iter(0..clients)
        .map(|n| {
            let gateway = if n % 2 == 0 { &cluster.a } else { &cluster.b };
            let client = &client;
            async move { register(client, gateway, &format!("soak{n}")).await }
        })
        .buffered(8)
        .collect()
        .await;
    let groups: Vec<(String, Vec<usize>)> = futures::stream::iter(users.chunks(GROUP).enumerate())
        .map(|(g, members)| {
            let client = client.clone();
            let (first, others) = (members[0].1.clone(), members[1..].iter().map(|m| m.0.clone()).collect::<Vec<_>>());
            let url = format!("http://{}/api/v1/conversations", gateways[g % 2]);
            async move {
                let body = json!({"type": "group", "name": format!("soak group {g}"), "participant_ids": others});
                let created = client.post(url).bearer_auth(first).json(&body).send().await.unwrap();
                assert_eq!(created.status(), StatusCode::CREATED);
                let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
                (id, (g * GROUP..(g * GROUP + GROUP).min(clients)).collect())
            }
        })
        .buffered(8)
        .collect()
        .await;

    // Every user listens; what each hears: (conversation, seq, when).
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut listeners = Vec::new();
    // How many messages each has heard so far, to know when all are in.
    let counts: std::sync::Arc<Vec<std::sync::atomic::AtomicUsize>> =
        std::sync::Arc::new((0..clients).map(|_| std::sync::atomic::AtomicUsize::new(0)).collect());
    for (n, (id, token)) in users.iter().enumerate() {
        let mut ws = crate::ws_client::ws_at(gateways[n % 2], &test_user(id, token)).await;
        let (mut stopped, counts) = (stopped.clone(), counts.clone());
        listeners.push(tokio::spawn(async move {
            let mut heard: Vec<(String, u64, Instant)> = Vec::new();
            while !*stopped.borrow_and_update() {
                match ws.next_unless_gone(Duration::from_millis(200)).await {
                    Ok(Some(frame)) if frame["type"] == "message.new" => {
                        let message = &frame["message"];
                        let conversation = message["conversation_id"].as_str().unwrap().to_owned();
                        heard.push((conversation, message["seq"].as_u64().unwrap(), Instant::now()));
                        counts[n].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(()) => panic!("a soak client's connection dropped"),
                }
            }
            heard
        }));
    }

    // Logins alongside, from existing users.
    let login_task = {
        let (client, url) = (client.clone(), format!("http://{}/api/v1/auth/login", cluster.b.addr));
        tokio::spawn(async move {
            let mut done = 0u64;
            if logins == 0 {
                return done;
            }
            let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / logins as f64));
            let until = Instant::now() + Duration::from_secs(secs);
            while Instant::now() < until {
                every.tick().await;
                let who = format!("soak{}@example.com", done as usize % clients);
                let body = json!({"email": who, "password": "long-enough-pw"});
                let answer = client.post(&url).json(&body).send().await.unwrap();
                assert_eq!(answer.status(), StatusCode::OK, "a login during the soak");
                done += 1;
            }
            done
        })
    };

    // The sends, paced, a bounded number in flight (past it the offered rate drops).
    let started = Instant::now();
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let mut sends = tokio::task::JoinSet::new();
    let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let mut n = 0usize;
    let mut schedule = kill.map(|part| KillSchedule::new(part, Duration::from_secs(secs) / 2));
    while started.elapsed() < Duration::from_secs(secs) {
        every.tick().await;
        // The kill and the restart go on while every slot waits on the dead service.
        let permit = loop {
            if let Some(schedule) = &mut schedule {
                schedule.step(cluster, started.elapsed()).await;
            }
            let slot = tokio::time::timeout(Duration::from_millis(100), in_flight.clone().acquire_owned()).await;
            if let Ok(permit) = slot {
                break permit.unwrap();
            }
        };
        let (conversation, members) = &groups[n % groups.len()];
        let sender = members[(n / groups.len()) % members.len()];
        let url = format!("http://{}/api/v1/conversations/{conversation}/messages", gateways[n % 2]);
        let (client, token, conversation) = (client.clone(), users[sender].1.clone(), conversation.clone());
        sends.spawn(async move {
            let sent_at = Instant::now();
            let mut slowest = Duration::ZERO;
            let (seq, refusals, _) =
                send_one(&client, &url, &token, &format!("soak-{n}"), &[503, 429], &mut slowest).await;
            drop(permit);
            (conversation, seq, sent_at, refusals)
        });
        n += 1;
    }
    let mut acknowledged: HashMap<String, Vec<(u64, Instant)>> = HashMap::new();
    let mut refused: HashMap<u16, u64> = HashMap::new();
    while let Some(done) = sends.join_next().await {
        if let Some(schedule) = &mut schedule {
            schedule.step(cluster, started.elapsed()).await;
        }
        let (conversation, seq, sent_at, refusals) = done.unwrap();
        acknowledged.entry(conversation).or_default().push((seq, sent_at));
        for status in refusals {
            *refused.entry(status).or_default() += 1;
        }
    }
    let sending_took = started.elapsed();
    if let Some(schedule) = &mut schedule {
        schedule.finish(cluster).await;
    }
    let logged_in = login_task.await.unwrap();

    // Wait for every listener to have heard what its group was sent (or a
    // minute), and a moment more for anything extra (a copy), then compare.
    let expected_deliveries: usize =
        groups.iter().map(|(c, m)| acknowledged.get(c).map_or(0, Vec::len) * m.len()).sum();
    let deadline = Instant::now() + Duration::from_secs(60);
    for (conversation, members) in &groups {
        let expected = acknowledged.get(conversation).map_or(0, Vec::len);
        for member in members {
            while counts[*member].load(std::sync::atomic::Ordering::Relaxed) < expected && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send_replace(true);
    let mut heard_by = Vec::new();
    for listener in listeners {
        heard_by.push(listener.await.unwrap());
    }
    let (mut lost, mut duplicated, mut out_of_order, mut latencies) = (0usize, 0usize, 0usize, Vec::new());
    for (conversation, members) in &groups {
        let mut sent = acknowledged.get(conversation).cloned().unwrap_or_default();
        sent.sort_by_key(|(seq, _)| *seq);
        let seqs: Vec<u64> = sent.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{conversation}: seqs without gaps or repeats");
        let kept: Vec<u64> = history_of(&client, &cluster.b, conversation, &users[members[0]].1)
            .await
            .into_iter()
            .map(|(_, seq)| seq)
            .collect();
        assert_eq!(kept, seqs, "{conversation}: history is what was acknowledged, no copies");
        for member in members {
            let heard: Vec<&(String, u64, Instant)> =
                heard_by[*member].iter().filter(|h| h.0 == *conversation).collect();
            let got: Vec<u64> = heard.iter().map(|h| h.1).collect();
            out_of_order += got.windows(2).filter(|w| w[0] >= w[1]).count();
            let mut unique = got.clone();
            unique.sort_unstable();
            unique.dedup();
            duplicated += got.len() - unique.len();
            lost += seqs.iter().filter(|s| unique.binary_search(s).is_err()).count();
            for (_, seq, at) in heard {
                if let Some((_, sent_at)) = sent.get((*seq as usize).wrapping_sub(1)) {
                    latencies.push(at.saturating_duration_since(*sent_at));
                }
            }
        }
    }
    latencies.sort_unstable();
    let percentile =
        |p: f64| latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)));
    let messages: usize = acknowledged.values().map(Vec::len).sum();
    let report = format!(
        "[drill] soak{}: {clients} clients in {} groups over two gateways, {messages} messages acknowledged in \
         {sending_took:?} ({:.1}/s offered {rate}/s), {expected_deliveries} deliveries expected, lost {lost}, \
         duplicated {duplicated}, out of order {out_of_order}, refused {refused:?}, {logged_in} logins alongside, \
         delivery p50 {:?} p99 {:?} max {:?}",
        schedule.as_ref().map(KillSchedule::describe).unwrap_or_default(),
        groups.len(),
        messages as f64 / sending_took.as_secs_f64(),
        percentile(0.50).copied().unwrap_or_default(),
        percentile(0.99).copied().unwrap_or_default(),
        latencies.last().copied().unwrap_or_default(),
    );
    assert_eq!(
        (lost, duplicated, out_of_order),
        (0, 0, 0),
        "every member heard every message once, in order: {report}"
    );
    assert!(refused.keys().all(|s| *s == 503 || *s == 429), "only load shedding: {report}");
    assert_eq!(latencies.len(), expected_deliveries, "{report}");
    report
}

/// A service killed (SIGKILL) at a point of a drill and started again two
/// seconds later.
struct KillSchedule {
    part: Part,
    at: std::time::Duration,
    killed: Option<std::time::Instant>,
    back_after: Option<std::time::Duration>,
}

impl KillSchedule {
    const DOWN_FOR: std::time::Duration = std::time::Duration::from_secs(2);

    fn new(part: Part, at: std::time::Duration) -> Self {
        Self { part, at, killed: None, back_after: None }
    }

    /// Kills or restarts the service when it is time, `elapsed` into the drill.
    async fn step(&mut self, cluster: &mut Cluster, elapsed: std::time::Duration) {
        match self.killed {
            None if elapsed >= self.at => {
                cluster.service_mut(self.part).kill().await;
                self.killed = Some(std::time::Instant::now());
            }
            Some(killed) if self.back_after.is_none() && killed.elapsed() >= Self::DOWN_FOR => {
                cluster.restart(self.part).await;
                self.back_after = Some(killed.elapsed());
            }
            _ => {}
        }
    }

    /// The service is up again at the end, having been killed.
    async fn finish(&mut self, cluster: &mut Cluster) {
        let killed = self.killed.unwrap_or_else(|| panic!("{:?} was not killed during the drill", self.part));
        if self.back_after.is_none() {
            tokio::time::sleep(Self::DOWN_FOR.saturating_sub(killed.elapsed())).await;
            self.step(cluster, self.at).await;
        }
    }

    fn describe(&self) -> String {
        let back = self.back_after.unwrap_or_default();
        format!(" with the {} service killed {:?} in, back {back:?} later", self.part.name(), self.at)
    }
}
