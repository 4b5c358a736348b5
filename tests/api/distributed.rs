//! The distributed mode for real: every service and two gateways as separate
//! processes of the `chatterbox` binary, on FerretDB and Redis.

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
}

impl Cluster {
    async fn start(http_rate_limit: u32) -> Self {
        Self::start_on(http_rate_limit, chatterbox_testkit::redis_url(), &[]).await
    }

    /// A cluster whose events and limits go through the Redis at `redis_url`,
    /// every part also given `settings`. Which part calls which, and so
    /// which URLs each is given, comes from the table of parts.
    async fn start_on(http_rate_limit: u32, redis_url: String, settings: &[(&'static str, String)]) -> Self {
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
        let bucket = chatterbox_testkit::fresh_bucket_name();
        let s3 = chatterbox_media::S3Settings {
            bucket: bucket.clone(),
            endpoint: Some(chatterbox_testkit::s3_endpoint()),
            public_endpoint: None,
        };
        chatterbox_media::S3BlobStore::new(&s3).await.create_bucket().await.unwrap();
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
        let env_of = |part: Part, layout: &Layout| -> Vec<(String, String)> {
            let mut env: Vec<(String, String)> = common.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
            env.extend(settings.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
            env.extend(own(part).into_iter().map(|(k, v)| (k.to_owned(), v)));
            env.extend(layout.env(part));
            env.push((part.key().variable().to_owned(), key_file(part.key())));
            env
        };
        let mut services = HashMap::new();
        let mut envs = HashMap::new();
        for part in Part::START_ORDER.into_iter().filter(|p| *p != Part::Gateway) {
            let env = env_of(part, &layout);
            let process = start(part.name(), &env).await;
            layout.started(part, process.addr);
            services.insert(part, process);
            envs.insert(part, env);
        }
        let gateway_env = env_of(Part::Gateway, &layout);
        let a = start(Part::Gateway.name(), &gateway_env).await;
        let b = start(Part::Gateway.name(), &gateway_env).await;
        Self { _keys: keys, _data: data, services, envs, a, b }
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

#[tokio::test]
async fn a_user_signs_up_through_one_gateway_and_in_through_another() {
    let cluster = Cluster::start(10).await;
    let (a, b, user) = (&cluster.a, &cluster.b, cluster.service(Part::User));
    let client = reqwest::Client::new();
    let url = |g: &Process, path: &str| format!("http://{}{path}", g.addr);

    for g in [a, b] {
        assert_eq!(client.get(url(g, "/readyz")).send().await.unwrap().status(), StatusCode::OK);
    }
    // The probe the container image relies on: gRPC health, and HTTP /readyz.
    let probe =
        |target: String| std::process::Command::new(BIN).args(["health", &target]).env_clear().output().unwrap();
    assert!(probe(format!("http://{}", user.addr)).status.success());
    assert!(probe(format!("http://{}/readyz", a.addr)).status.success());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    assert!(!probe(format!("http://{closed}")).status.success());
    assert!(!probe(format!("http://{}/nope", a.addr)).status.success());

    let registered = client
        .post(url(a, "/api/v1/auth/register"))
        .json(&json!({"username": "dora", "email": "dora@example.com", "password": "explorer-pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let registered: Value = registered.json().await.unwrap();

    let login = client
        .post(url(b, "/api/v1/auth/login"))
        .json(&json!({"email": "dora@example.com", "password": "explorer-pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let login: Value = login.json().await.unwrap();
    assert_eq!(login["user"]["id"], registered["user"]["id"]);

    // A token minted behind gateway A is good at gateway B, and a refresh
    // token issued through A rotates through B.
    let me = client
        .get(url(b, "/api/v1/users/me"))
        .bearer_auth(registered["tokens"]["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let refreshed = client
        .post(url(b, "/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": registered["tokens"]["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);

    // A service alone serves its own metrics, counting the calls it answered.
    let metrics = client.get(format!("http://{}/metrics", user.metrics_addr.unwrap())).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("grpc_server_requests_total"), "{metrics}");
    assert!(metrics.contains("/chatterbox.user.v1.UserService/CreateUser"), "{metrics}");

    // Both gateways draw from one bucket in Redis: with 10 per minute and 4
    // spent, the limit is hit within a few more requests, not after 16.
    let mut first_refusal = None;
    for n in 0..16 {
        let g = if n % 2 == 0 { a } else { b };
        let r = client.get(url(g, "/api/v1/users/me")).send().await.unwrap();
        assert!(r.headers().contains_key("x-ratelimit-remaining"));
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            first_refusal = Some(n);
            break;
        }
    }
    let n = first_refusal.expect("the shared limit was reached");
    assert!(n <= 8, "first 429 after {n} more requests");
    let other = if n % 2 == 0 { b } else { a };
    let r = client.get(url(other, "/api/v1/users/me")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "the other gateway shares the bucket");
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

#[tokio::test]
async fn two_users_on_different_gateways_hold_a_conversation() {
    let cluster = Cluster::start(0).await;
    let client = reqwest::Client::new();
    let (ann, ann_token) = register(&client, &cluster.a, "ann").await;
    let (bob, bob_token) = register(&client, &cluster.b, "bob").await;
    let at = |g: &Process, path: &str| format!("http://{}{path}", g.addr);
    let id = &direct(&client, &cluster.a, &ann_token, &bob).await;

    // Bob, through the other gateway, finds the same conversation.
    let again = client
        .post(at(&cluster.b, "/api/v1/conversations"))
        .bearer_auth(&bob_token)
        .json(&json!({"type": "direct", "participant_ids": [ann]}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], id.as_str());

    for (gateway, token, text) in [(&cluster.a, &ann_token, "hi bob"), (&cluster.b, &bob_token, "hi ann")] {
        let sent = client
            .post(at(gateway, &format!("/api/v1/conversations/{id}/messages")))
            .bearer_auth(token)
            .json(&json!({"content": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), StatusCode::CREATED);
    }
    let history: Value =
        crate::helpers::get_json(&client, &at(&cluster.b, &format!("/api/v1/conversations/{id}/messages")), &bob_token)
            .await;
    let seen: Vec<(u64, &str)> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["seq"].as_u64().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(seen, [(1, "hi bob"), (2, "hi ann")]);

    let mine: Value = crate::helpers::get_json(&client, &at(&cluster.a, "/api/v1/conversations"), &ann_token).await;
    assert_eq!(mine["items"][0]["unread_count"], 1);
    assert_eq!(mine["items"][0]["last_message"]["content"], "hi ann");
}

/// The message service keeps membership answers; a removal made through the
/// conversation service (another process) reaches it over Redis, so the
/// removed member is refused within the bus latency, long before the
/// cache's expiry.
#[tokio::test]
async fn a_member_removed_through_one_process_is_refused_by_the_message_service_of_another() {
    let cluster = Cluster::start(0).await;
    let client = reqwest::Client::new();
    let (_, ann_token) = register(&client, &cluster.a, "ann").await;
    let (bob, bob_token) = register(&client, &cluster.b, "bob").await;
    let at = |g: &Process, path: &str| format!("http://{}{path}", g.addr);
    let created = client
        .post(at(&cluster.a, "/api/v1/conversations"))
        .bearer_auth(&ann_token)
        .json(&json!({"type": "group", "name": "Team", "participant_ids": [bob]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let messages = at(&cluster.b, &format!("/api/v1/conversations/{id}/messages"));
    let send = || client.post(&messages).bearer_auth(&bob_token).json(&json!({"content": "still in?"})).send();
    // Twice: the second answer comes from the message service's cache.
    for _ in 0..2 {
        assert_eq!(send().await.unwrap().status(), StatusCode::CREATED);
    }
    let metrics =
        client.get(format!("http://{}/metrics", cluster.service(Part::Message).metrics_addr.unwrap())).send().await;
    let metrics = metrics.unwrap().text().await.unwrap();
    let hits = metrics
        .lines()
        .find(|l| l.starts_with("membership_cache_total{") && l.contains(r#"outcome="hit""#))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert!(hits.is_some_and(|h| h >= 1.0), "the message service answered from its cache:\n{metrics}");

    let removed = client
        .delete(at(&cluster.a, &format!("/api/v1/conversations/{id}/participants/{bob}")))
        .bearer_auth(&ann_token)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let started = std::time::Instant::now();
    loop {
        let read = client.get(&messages).bearer_auth(&bob_token).send().await.unwrap();
        if read.status() == StatusCode::NOT_FOUND {
            break;
        }
        assert_eq!(read.status(), StatusCode::OK);
        let waited = started.elapsed();
        assert!(waited < std::time::Duration::from_secs(2), "still let in after {waited:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

/// A Redis server of the test's own, so it can be killed and restarted.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = Self { port, child: None };
        redis.restart().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (make install-test-deps)");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start");
    }

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

/// Drill (fault drills, item 7): Redis, which carries events, presence and
/// the rate limits, is unreachable for five seconds mid-conversation, with
/// the HTTP limit on. The limits fail open (chat goes on; documented in
/// docs/failures.md) and hold again once Redis is back; the bus resubscribes
/// and fills the gap, so every client gets every message once, in order.
#[tokio::test]
async fn clients_on_two_gateways_get_every_message_once_across_a_redis_outage_with_limits_failing_open() {
    const LIMIT: u32 = 60;
    let mut redis = OwnRedis::start().await;
    let cluster = Cluster::start_on(LIMIT, redis.url(), &[]).await;
    let client = reqwest::Client::new();
    let (ann, ann_token) = register(&client, &cluster.a, "ann").await;
    let (bob, bob_token) = register(&client, &cluster.b, "bob").await;
    let at = |g: &Process, path: &str| format!("http://{}{path}", g.addr);
    let id = direct(&client, &cluster.a, &ann_token, &bob).await;

    let (ann_user, bob_user) = (test_user(&ann, &ann_token), test_user(&bob, &bob_token));
    // Ann on gateway A, Bob on gateway B, and Bob's second device on A.
    const TOTAL: u64 = 30;
    let readers = [
        tokio::spawn(collect_messages(crate::ws_client::ws_at(cluster.a.addr, &ann_user).await, TOTAL)),
        tokio::spawn(collect_messages(crate::ws_client::ws_at(cluster.b.addr, &bob_user).await, TOTAL)),
        tokio::spawn(collect_messages(crate::ws_client::ws_at(cluster.a.addr, &bob_user).await, TOTAL)),
    ];

    // Messages 10 to 17 go out with Redis down, over about five seconds.
    let mut down_for = std::time::Duration::ZERO;
    let mut down_since = None;
    for n in 1..=TOTAL {
        if n == 10 {
            redis.kill().await;
            down_since = Some(std::time::Instant::now());
        }
        if n == 18 {
            redis.restart().await;
            down_for = down_since.unwrap().elapsed();
        }
        let (gateway, token) = if n % 2 == 0 { (&cluster.a, &ann_token) } else { (&cluster.b, &bob_token) };
        let sent = client
            .post(at(gateway, &format!("/api/v1/conversations/{id}/messages")))
            .bearer_auth(token)
            .json(&json!({"content": format!("message {n}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), StatusCode::CREATED, "message {n} is acknowledged with Redis down or up");
        let pause = if (10..18).contains(&n) { 650 } else { 50 };
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
    }
    assert!(down_for >= std::time::Duration::from_secs(5), "Redis was down {down_for:?}");

    let expected: Vec<u64> = (1..=TOTAL).collect();
    for reader in readers {
        let seqs = reader.await.unwrap();
        assert_eq!(seqs, expected, "every acknowledged message exactly once, in order");
    }
    // Back, the limit holds again: a burst from this address meets 429
    // (Redis came back empty, so the burst's own requests fill the bucket).
    let mut statuses = Vec::new();
    for _ in 0..LIMIT + 10 {
        let me = client.get(at(&cluster.a, "/api/v1/users/me")).bearer_auth(&ann_token).send().await.unwrap();
        statuses.push(me.status());
    }
    assert_eq!(statuses[0], StatusCode::OK, "the burst starts within the limit");
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "the limit holds once Redis is back");
    println!(
        "[drill] Redis down {down_for:?} with limits on: acknowledged {TOTAL}, lost 0, duplicated 0, out of order 0, \
         5xx 0 (limits failed open), limit enforced again after"
    );
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

#[tokio::test]
async fn a_killed_gateways_users_go_offline_when_their_connections_expire() {
    let mut cluster = Cluster::start_on(0, chatterbox_testkit::redis_url(), &quick_presence()).await;
    let client = reqwest::Client::new();
    let (ann, ann_token) = register(&client, &cluster.a, "ann").await;
    let (bob, bob_token) = register(&client, &cluster.b, "bob").await;
    direct(&client, &cluster.a, &ann_token, &bob).await;
    let mut bob_ws = crate::ws_client::ws_at(cluster.b.addr, &test_user(&bob, &bob_token)).await.watch_presence();
    let _ann_ws = crate::ws_client::ws_at(cluster.a.addr, &test_user(&ann, &ann_token)).await;
    assert_eq!(bob_ws.presence_of(&ann).await["status"], "online");

    // Gateway A dies without closing anything: presence hears nothing more
    // about Ann's connection, which expires on its own.
    let killed = chatterbox_types::Timestamp::now();
    cluster.a.kill().await;
    let offline = bob_ws.presence_of(&ann).await;
    assert_eq!(offline["status"], "offline");
    let last_seen = offline["last_seen"].as_str().expect("last_seen: the last report of her connection");
    // Reports come every second; one may have been in flight at the kill.
    let earliest = chatterbox_types::Timestamp::from_millis(killed.millis() - 1_500).to_rfc3339();
    let latest = chatterbox_types::Timestamp::from_millis(killed.millis() + 1_500).to_rfc3339();
    assert!(last_seen >= earliest.as_str() && last_seen <= latest.as_str(), "{last_seen} vs {killed:?}");
    let found: Value = crate::helpers::get_json(
        &client,
        &format!("http://{}/api/v1/presence?user_ids={ann}", cluster.b.addr),
        &bob_token,
    )
    .await;
    assert_eq!(found["items"][0]["status"], "offline");
    assert_eq!(found["items"][0]["last_seen"], last_seen);
}

#[tokio::test]
async fn chat_across_gateways_goes_on_with_the_presence_service_killed() {
    let mut cluster = Cluster::start_on(0, chatterbox_testkit::redis_url(), &quick_presence()).await;
    let client = reqwest::Client::new();
    let (ann, ann_token) = register(&client, &cluster.a, "ann").await;
    let (bob, bob_token) = register(&client, &cluster.b, "bob").await;
    let id = direct(&client, &cluster.a, &ann_token, &bob).await;
    // Bob connects and leaves while presence runs: his profile records it.
    let bob_ws = crate::ws_client::ws_at(cluster.b.addr, &test_user(&bob, &bob_token)).await;
    drop(bob_ws);
    // Asked of the user service itself (the gateway would show presence's view).
    let users = chatterbox_runtime::connect(
        &format!("http://{}", cluster.service(Part::User).addr),
        std::time::Duration::from_secs(5),
        None,
    )
    .unwrap();
    let mut users = chatterbox_proto::user::v1::user_service_client::UserServiceClient::new(users);
    let deadline = tokio::time::Instant::now() + crate::ws_client::PATIENCE;
    let recorded = loop {
        let request =
            chatterbox_identity::with_bearer(chatterbox_proto::user::v1::GetMeRequest {}, &bob_token).unwrap();
        let me = users.get_me(request).await.unwrap().into_inner();
        if let Some(ms) = me.last_seen_ms {
            assert_eq!(me.status, "offline");
            break chatterbox_types::Timestamp::from_millis(ms).to_rfc3339();
        }
        assert!(tokio::time::Instant::now() < deadline, "last_seen never recorded");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    cluster.service_mut(Part::Presence).kill().await;
    // Profiles still answer, from the user service: what presence recorded there.
    let profile: Value =
        crate::helpers::get_json(&client, &format!("http://{}/api/v1/users/{bob}", cluster.a.addr), &ann_token).await;
    assert_eq!((profile["status"].as_str(), profile["last_seen"].as_str()), (Some("offline"), Some(recorded.as_str())));

    let mut ann_ws = crate::ws_client::ws_at(cluster.a.addr, &test_user(&ann, &ann_token)).await;
    let mut bob_ws = crate::ws_client::ws_at(cluster.b.addr, &test_user(&bob, &bob_token)).await;
    ann_ws
        .send(json!({"type": "message.send", "id": 1, "conversation_id": id, "content": "hello?", "client_id": "c1"}))
        .await;
    assert_eq!(ann_ws.answer().await["message"]["seq"], 1);
    let got = bob_ws.expect("message.new").await;
    assert_eq!(got["message"]["content"], "hello?");
    let ready = client.get(format!("http://{}/readyz", cluster.b.addr)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK, "a gateway stays in rotation without presence");
}

#[tokio::test]
async fn two_people_chat_in_chromium_through_two_gateways() {
    let short_tokens = [("CHATTERBOX_ACCESS_TOKEN_TTL_SECS", crate::browser::SHORT_TOKEN_SECS.to_string())];
    let cluster = Cluster::start_on(0, chatterbox_testkit::redis_url(), &short_tokens).await;
    let alice = format!("http://{}", cluster.a.addr);
    let bob = format!("http://{}", cluster.b.addr);
    crate::browser::chat_in_chromium(&alice, &bob, "two-gateways").await;
}

#[tokio::test]
async fn a_session_ended_through_one_gateway_stops_on_the_other_and_in_every_service_within_a_second() {
    let cluster = Cluster::start(0).await;
    let client = reqwest::Client::new();
    let (ann, laptop_token) = register(&client, &cluster.a, "ann").await;
    // A second login (her phone), through the other gateway, with a socket there.
    let login = client
        .post(format!("http://{}/api/v1/auth/login", cluster.b.addr))
        .json(&json!({"email": "ann@example.com", "password": "long-enough-pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let login: Value = login.json().await.unwrap();
    let phone_token = login["tokens"]["access_token"].as_str().unwrap().to_owned();
    let mut phone_socket = crate::ws_client::ws_at(cluster.b.addr, &test_user(&ann, &phone_token)).await;
    let sessions: Value =
        crate::helpers::get_json(&client, &format!("http://{}/api/v1/auth/sessions", cluster.a.addr), &phone_token)
            .await;
    let phone = sessions["items"].as_array().unwrap().iter().find(|s| s["current"] == true).unwrap()["id"].clone();
    let phone = phone.as_str().unwrap();

    // The laptop ends the phone's session through gateway A.
    let ended = client
        .delete(format!("http://{}/api/v1/auth/sessions/{phone}", cluster.a.addr))
        .bearer_auth(&laptop_token)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let started = std::time::Instant::now();
    let within = std::time::Duration::from_secs(1);
    let users = chatterbox_runtime::connect(
        &format!("http://{}", cluster.service(Part::User).addr),
        std::time::Duration::from_secs(5),
        None,
    )
    .unwrap();
    let mut users = chatterbox_proto::user::v1::user_service_client::UserServiceClient::new(users);
    let me = format!("http://{}/api/v1/users/me", cluster.b.addr);
    loop {
        let at_b = client.get(&me).bearer_auth(&phone_token).send().await.unwrap().status();
        let request = chatterbox_identity::with_bearer(chatterbox_proto::user::v1::GetMeRequest {}, &phone_token);
        let at_user_service = users.get_me(request.unwrap()).await.map(|_| ()).map_err(|s| s.code());
        if at_b == StatusCode::UNAUTHORIZED && at_user_service == Err(tonic::Code::Unauthenticated) {
            break;
        }
        assert!(
            started.elapsed() < within,
            "still accepted after {:?}: {at_b} / {at_user_service:?}",
            started.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (_, close) = phone_socket.closed().await;
    assert!(started.elapsed() < within + std::time::Duration::from_millis(500), "{:?}", started.elapsed());
    assert_eq!(close.unwrap().code, tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::from(4401));
    // The laptop goes on, at either gateway.
    for g in [&cluster.a, &cluster.b] {
        let me = client.get(format!("http://{}/api/v1/users/me", g.addr)).bearer_auth(&laptop_token).send().await;
        assert_eq!(me.unwrap().status(), StatusCode::OK);
    }
}

/// Drill (issue "fault drills", item 2): the message service is killed with
/// SIGKILL in the middle of a stream of sends and started again. A client
/// sends through gateway A, retrying each send with its `client_id` as a real
/// client does; the other participant listens on gateway B. At the end,
/// what was acknowledged is compared with history and with what was heard:
/// nothing lost, nothing twice, nothing out of order, and every send made
/// during the outage answered promptly (503), never left hanging.
/// `CHATTERBOX_DRILL_MESSAGES` sizes it (`make bench` runs a larger one).
#[tokio::test]
async fn drill_the_message_service_killed_mid_stream_loses_and_repeats_nothing() {
    let total: u64 = std::env::var("CHATTERBOX_DRILL_MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(240);
    let mut cluster = Cluster::start(0).await;
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(15)).build().unwrap();
    let (ann, ann_token) = register(&client, &cluster.a, "ann").await;
    let (bob, bob_token) = register(&client, &cluster.b, "bob").await;
    let conversation = direct(&client, &cluster.a, &ann_token, &bob).await;
    let bob_ws = crate::ws_client::ws_at(cluster.b.addr, &test_user(&bob, &bob_token)).await;
    let patience = std::time::Duration::from_secs(60 + total / 10);
    let heard = tokio::spawn(collect_messages_within(bob_ws, total, patience));
    let _ = ann;

    let url = format!("http://{}/api/v1/conversations/{conversation}/messages", cluster.a.addr);
    let (progress, mut sent_so_far) = tokio::sync::watch::channel(0u64);
    let sender = {
        let (client, token) = (client.clone(), ann_token.clone());
        tokio::spawn(async move {
            let mut acknowledged: Vec<(String, u64)> = Vec::new();
            let mut refused: HashMap<u16, u64> = HashMap::new();
            let mut slowest = std::time::Duration::ZERO;
            let mut outage: Option<std::time::Instant> = None;
            let mut longest_outage = std::time::Duration::ZERO;
            for n in 0..total {
                let client_id = format!("drill-{n}");
                let body = json!({"content": format!("m{n}"), "client_id": client_id});
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                let seq = loop {
                    let started = std::time::Instant::now();
                    let answer = client.post(&url).bearer_auth(&token).json(&body).send().await;
                    slowest = slowest.max(started.elapsed());
                    match answer {
                        Ok(r) if r.status().is_success() => {
                            let message: Value = r.json().await.unwrap();
                            if let Some(since) = outage.take() {
                                longest_outage = longest_outage.max(since.elapsed());
                            }
                            break message["seq"].as_u64().unwrap();
                        }
                        Ok(r) => {
                            let status = r.status().as_u16();
                            *refused.entry(status).or_default() += 1;
                            assert!(status == 503 || status == 429, "a send during the outage answered {status}");
                            let error: Value = r.json().await.unwrap();
                            assert!(error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
                        }
                        Err(e) => panic!("a send was left without an answer: {e}"),
                    }
                    outage.get_or_insert_with(std::time::Instant::now);
                    assert!(std::time::Instant::now() < deadline, "{client_id} never got through");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                };
                acknowledged.push((client_id, seq));
                let _ = progress.send(n + 1);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            (acknowledged, refused, slowest, longest_outage)
        })
    };

    // A third of the way in, the message service dies without a word and
    // comes back two seconds later.
    sent_so_far.wait_for(|n| *n >= total / 3).await.unwrap();
    cluster.service_mut(Part::Message).kill().await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    cluster.restart(Part::Message).await;
    let (acknowledged, refused, slowest, longest_outage) = sender.await.unwrap();

    // History holds every acknowledged message once, in order.
    assert_eq!(acknowledged.len() as u64, total);
    let seqs: Vec<u64> = acknowledged.iter().map(|(_, seq)| *seq).collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>(), "acknowledged in order, no seq taken twice or skipped");
    let mut history = Vec::new();
    let mut after = 0;
    loop {
        let page: Value = crate::helpers::get_json(
            &client,
            &format!("http://{}/api/v1/conversations/{conversation}/messages?after={after}&limit=100", cluster.b.addr),
            &bob_token,
        )
        .await;
        let items = page["items"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        after = items.last().unwrap()["seq"].as_u64().unwrap();
        history.extend(items);
    }
    let kept: Vec<(String, u64)> =
        history.iter().map(|m| (m["client_id"].as_str().unwrap().to_owned(), m["seq"].as_u64().unwrap())).collect();
    assert_eq!(kept, acknowledged, "history is exactly what was acknowledged: none lost, none twice");
    // The listener on the other gateway heard each once, in order.
    let heard = heard.await.unwrap();
    assert_eq!(heard, seqs, "every acknowledged message reached the other gateway once, in order");
    // Refusals came fast: a send never waits past the internal deadline.
    assert!(slowest < std::time::Duration::from_secs(6), "a send took {slowest:?}");
    println!(
        "[drill] message service killed: acknowledged {total}, lost 0, duplicated 0, out of order 0, \
         refused {refused:?}, slowest answer {slowest:?}, back after {longest_outage:?}"
    );
}

/// Drill (fault drills, item 3): a gateway is killed with SIGKILL while a
/// client listens on it. The client reconnects to the other gateway and
/// resumes from the last message it has; in the end it holds every message
/// once. `CHATTERBOX_DRILL_MESSAGES` sizes it.
#[tokio::test]
async fn drill_a_killed_gateways_client_resumes_on_the_other_and_misses_nothing() {
    let total: u64 = std::env::var("CHATTERBOX_DRILL_MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(240);
    let mut cluster = Cluster::start(0).await;
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(15)).build().unwrap();
    let (_, ann_token) = register(&client, &cluster.b, "ann").await;
    let (bob, bob_token) = register(&client, &cluster.a, "bob").await;
    let conversation = direct(&client, &cluster.b, &ann_token, &bob).await;
    let bob_user = test_user(&bob, &bob_token);
    let mut socket = crate::ws_client::ws_at(cluster.a.addr, &bob_user).await;

    // Ann writes through gateway B, which stays up.
    let url = format!("http://{}/api/v1/conversations/{conversation}/messages", cluster.b.addr);
    let sender = {
        let (client, token) = (client.clone(), ann_token.clone());
        tokio::spawn(async move {
            for n in 0..total {
                let body = json!({"content": format!("m{n}"), "client_id": format!("drill-{n}")});
                let r = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
                assert!(r.status().is_success(), "{}", r.status());
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
    };

    let mut received: Vec<u64> = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60 + total / 10);
    let mut killed_at = None;
    let mut resumed_after = None;
    while (received.len() as u64) < total || (1..=total).any(|s| !received.contains(&s)) {
        assert!(tokio::time::Instant::now() < deadline, "{} of {total} after {:?}", received.len(), killed_at);
        match socket.next_unless_gone(std::time::Duration::from_millis(500)).await {
            Ok(Some(frame)) if frame["type"] == "message.new" => {
                received.push(frame["message"]["seq"].as_u64().unwrap());
                if killed_at.is_none() && received.len() as u64 >= total / 3 {
                    // Gateway A dies without a word.
                    cluster.a.kill().await;
                    killed_at = Some(std::time::Instant::now());
                }
            }
            Ok(Some(frame)) if frame["type"] == "resumed" => {
                resumed_after = killed_at.map(|at| at.elapsed());
            }
            Ok(_) => {}
            Err(()) => {
                // As a client does: reconnect elsewhere and resume from the
                // last message it holds without a gap.
                let mut have = 0;
                while received.contains(&(have + 1)) {
                    have += 1;
                }
                socket = crate::ws_client::ws_at(cluster.b.addr, &bob_user).await;
                socket.send(json!({"type": "resume", "id": "r", "positions": {conversation.clone(): have}})).await;
            }
        }
    }
    sender.await.unwrap();
    // Anything repeated would arrive right behind.
    while let Ok(Some(frame)) = socket.next_unless_gone(std::time::Duration::from_millis(500)).await {
        if frame["type"] == "message.new" {
            received.push(frame["message"]["seq"].as_u64().unwrap());
        }
    }
    assert!(killed_at.is_some() && resumed_after.is_some(), "the gateway was killed and the client resumed");
    let mut sorted = received.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), received.len(), "nothing arrived twice");
    assert_eq!(sorted, (1..=total).collect::<Vec<_>>(), "every message arrived");
    println!(
        "[drill] gateway killed: {total} messages, lost 0, duplicated 0, resumed on the other gateway {:?} after the kill",
        resumed_after.unwrap()
    );
}

/// Drill (fault drills, item 4): a gateway is frozen (SIGSTOP) while a
/// client listens on it, as a stuck node would freeze it, and thawed
/// (SIGCONT) ten seconds later. The client, hearing nothing (its pings
/// unanswered), moves to the other gateway and resumes; it ends with every
/// message once, in order. Thawed, the gateway serves again: a client that
/// connects to it then hears what is sent next, once, like the moved one.
/// `CHATTERBOX_DRILL_MESSAGES` sizes it.
#[tokio::test]
async fn drill_a_frozen_gateways_client_moves_on_and_the_thawed_gateway_serves_again() {
    use std::time::{Duration, Instant};
    let total: u64 = std::env::var("CHATTERBOX_DRILL_MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(240);
    const FROZEN_FOR: Duration = Duration::from_secs(10);
    // Silence after which the client pings, and after which it gives up on the connection.
    const QUIET: Duration = Duration::from_secs(1);
    const DEAD: Duration = Duration::from_secs(3);
    let cluster = Cluster::start(0).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
    let (_, ann_token) = register(&client, &cluster.b, "ann").await;
    let (bob, bob_token) = register(&client, &cluster.a, "bob").await;
    let conversation = direct(&client, &cluster.b, &ann_token, &bob).await;
    let bob_user = test_user(&bob, &bob_token);
    let mut socket = crate::ws_client::ws_at(cluster.a.addr, &bob_user).await;

    // Ann writes through gateway B, which stays up, with a client_id per message.
    let url = format!("http://{}/api/v1/conversations/{conversation}/messages", cluster.b.addr);
    let send = {
        let (client, token) = (client.clone(), ann_token.clone());
        move |n: u64| {
            let (client, token, url) = (client.clone(), token.clone(), url.clone());
            async move {
                let body = json!({"content": format!("m{n}"), "client_id": format!("drill-{n}")});
                let r = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
                assert!(r.status().is_success(), "{}", r.status());
            }
        }
    };
    let sender = {
        let send = send.clone();
        tokio::spawn(async move {
            for n in 0..total {
                send(n).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let mut received: Vec<u64> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60 + total / 10);
    let (mut frozen_at, mut moved_after, mut last_heard) = (None::<Instant>, None, Instant::now());
    let mut thaw = None;
    while (1..=total).any(|s| !received.contains(&s)) {
        assert!(tokio::time::Instant::now() < deadline, "{} of {total}", received.len());
        let gone = match socket.next_unless_gone(Duration::from_millis(250)).await {
            Ok(Some(frame)) => {
                last_heard = Instant::now();
                if frame["type"] == "message.new" {
                    received.push(frame["message"]["seq"].as_u64().unwrap());
                    if frozen_at.is_none() && received.len() as u64 >= total / 3 {
                        cluster.a.signal("STOP");
                        frozen_at = Some(Instant::now());
                        let pid = cluster.a.child.id().unwrap();
                        thaw = Some(tokio::spawn(async move {
                            tokio::time::sleep(FROZEN_FOR).await;
                            send_signal(pid, "CONT");
                        }));
                    }
                } else if frame["type"] == "resumed" {
                    moved_after = frozen_at.map(|at| at.elapsed());
                }
                false
            }
            Ok(None) if last_heard.elapsed() > DEAD => true,
            Ok(None) => {
                if last_heard.elapsed() > QUIET {
                    // As a client does when its connection goes quiet.
                    socket.send(json!({"type": "ping", "id": "alive"})).await;
                }
                false
            }
            Err(()) => true,
        };
        if gone {
            // Elsewhere, from the last message held without a gap.
            let mut have = 0;
            while received.contains(&(have + 1)) {
                have += 1;
            }
            socket = crate::ws_client::ws_at(cluster.b.addr, &bob_user).await;
            socket.send(json!({"type": "resume", "id": "r", "positions": {conversation.clone(): have}})).await;
            last_heard = Instant::now();
        }
    }
    sender.await.unwrap();
    assert!(frozen_at.is_some() && moved_after.is_some(), "the gateway froze and the client resumed elsewhere");
    assert_eq!(received, (1..=total).collect::<Vec<_>>(), "every message once, in order");

    // Thawed, gateway A sheds the stale session and serves a new one.
    thaw.unwrap().await.unwrap();
    let thawed = Instant::now();
    let mut on_thawed = loop {
        let ready = client.get(format!("http://{}/readyz", cluster.a.addr)).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break crate::ws_client::ws_at(cluster.a.addr, &bob_user).await;
        }
        assert!(thawed.elapsed() < Duration::from_secs(30), "gateway A serves again after the thaw");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let back_after = thawed.elapsed();
    on_thawed.sync().await;
    send(total).await;
    for ws in [&mut socket, &mut on_thawed] {
        let frame = ws.expect("message.new").await;
        assert_eq!(frame["message"]["seq"].as_u64(), Some(total + 1));
        // Nothing else, and nothing twice.
        while let Some(frame) = ws.try_next(Duration::from_millis(500)).await {
            assert_ne!(frame["type"], "message.new", "{frame}");
        }
    }
    println!(
        "[drill] gateway frozen {FROZEN_FOR:?}: acknowledged {}, lost 0, duplicated 0, out of order 0, 5xx 0, \
         client resumed elsewhere {:?} after the freeze, thawed gateway serving {back_after:?} after SIGCONT",
        total + 1,
        moved_after.unwrap()
    );
}

/// Sends `signal` (`STOP`, `CONT`, …) to process `pid`.
fn send_signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A FerretDB of the test's own (SQLite under a directory of its own), so it
/// can be stopped and started again on the same port and data.
struct OwnFerret {
    port: u16,
    data: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnFerret {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut ferret = Self { port, data: tempfile::tempdir().unwrap(), child: None };
        ferret.restart().await;
        ferret
    }

    fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    async fn restart(&mut self) {
        let binary = std::env::var("TEST_FERRETDB").expect("TEST_FERRETDB is set by make test");
        let child = Command::new(binary)
            .arg("--handler=sqlite")
            .arg(format!("--sqlite-url=file:{}/", self.data.path().display()))
            .arg(format!("--listen-addr=127.0.0.1:{}", self.port))
            .args(["--debug-addr=-", "--telemetry=disable", "--log-level=warn"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("FerretDB starts");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("FerretDB did not start");
    }

    /// Stops it outright (SIGKILL), as a crashed or unreachable server.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }
}

/// Drill (fault drills, item 5): the database goes away for ten seconds in
/// the middle of a stream of sends and comes back; nothing is restarted. A
/// client sends through gateway A, retrying each send with its `client_id`;
/// the other participant listens on gateway B. While the database is gone
/// sends answer 503 promptly and `/readyz` names the services that cannot
/// reach it; once it is back traffic resumes by itself, and history holds
/// every acknowledged message once, in order, as heard on B.
/// `CHATTERBOX_DRILL_MESSAGES` sizes it.
#[tokio::test]
async fn drill_the_database_gone_for_ten_seconds_loses_and_repeats_nothing() {
    use std::time::{Duration, Instant};
    let total: u64 = std::env::var("CHATTERBOX_DRILL_MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(240);
    const GONE_FOR: Duration = Duration::from_secs(10);
    let mut ferret = OwnFerret::start().await;
    let cluster = Cluster::start_on(0, chatterbox_testkit::redis_url(), &[("MONGODB_URI", ferret.uri())]).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
    let (_, ann_token) = register(&client, &cluster.a, "ann").await;
    let (bob, bob_token) = register(&client, &cluster.b, "bob").await;
    let conversation = direct(&client, &cluster.a, &ann_token, &bob).await;
    let bob_ws = crate::ws_client::ws_at(cluster.b.addr, &test_user(&bob, &bob_token)).await;
    let heard = tokio::spawn(collect_messages_within(bob_ws, total, Duration::from_secs(90 + total / 10)));

    let url = format!("http://{}/api/v1/conversations/{conversation}/messages", cluster.a.addr);
    let (progress, mut sent_so_far) = tokio::sync::watch::channel(0u64);
    let sender = {
        let (client, token) = (client.clone(), ann_token.clone());
        tokio::spawn(async move {
            let mut acknowledged: Vec<(String, u64)> = Vec::new();
            let mut refused: HashMap<u16, u64> = HashMap::new();
            let (mut slowest, mut outage, mut longest_outage) = (Duration::ZERO, None::<Instant>, Duration::ZERO);
            for n in 0..total {
                let client_id = format!("drill-{n}");
                let body = json!({"content": format!("m{n}"), "client_id": client_id});
                let deadline = Instant::now() + Duration::from_secs(60);
                let seq = loop {
                    let started = Instant::now();
                    let answer = client.post(&url).bearer_auth(&token).json(&body).send().await;
                    slowest = slowest.max(started.elapsed());
                    match answer {
                        Ok(r) if r.status().is_success() => {
                            let message: Value = r.json().await.unwrap();
                            if let Some(since) = outage.take() {
                                longest_outage = longest_outage.max(since.elapsed());
                            }
                            break message["seq"].as_u64().unwrap();
                        }
                        Ok(r) => {
                            let status = r.status().as_u16();
                            *refused.entry(status).or_default() += 1;
                            let error: Value = r.json().await.unwrap();
                            assert_eq!(status, 503, "a send with the database gone answered {status}: {error}");
                            assert!(error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
                        }
                        Err(e) => panic!("a send was left without an answer: {e}"),
                    }
                    outage.get_or_insert_with(Instant::now);
                    assert!(Instant::now() < deadline, "{client_id} never got through");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                };
                acknowledged.push((client_id, seq));
                let _ = progress.send(n + 1);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (acknowledged, refused, slowest, longest_outage)
        })
    };

    // A third of the way in, the database goes away; the gateways say so.
    sent_so_far.wait_for(|n| *n >= total / 3).await.unwrap();
    ferret.kill().await;
    let gone_at = Instant::now();
    let readyz = format!("http://{}/readyz", cluster.b.addr);
    let not_ready = loop {
        let answer = client.get(&readyz).send().await.unwrap();
        if answer.status() == StatusCode::SERVICE_UNAVAILABLE {
            break answer.json::<Value>().await.unwrap();
        }
        assert!(gone_at.elapsed() < GONE_FOR, "/readyz never said the database was gone");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let said_after = gone_at.elapsed();
    assert_eq!(not_ready["error"]["code"], "unavailable", "{not_ready}");
    // Behind it, the services' health: not serving, yet alive (a restart
    // would not bring the database back).
    let health = |service: &str| {
        let channel = chatterbox_runtime::connect(
            &format!("http://{}", cluster.service(Part::Message).addr),
            Duration::from_secs(2),
            None,
        )
        .unwrap();
        let request = tonic_health::pb::HealthCheckRequest { service: service.to_owned() };
        async move {
            let answer = tonic_health::pb::health_client::HealthClient::new(channel).check(request).await.unwrap();
            answer.into_inner().status()
        }
    };
    use tonic_health::pb::health_check_response::ServingStatus;
    while health("chatterbox.message.v1.MessageService").await != ServingStatus::NotServing {
        assert!(gone_at.elapsed() < GONE_FOR, "the message service never said it cannot reach its database");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(health("").await, ServingStatus::Serving, "the process is alive");
    tokio::time::sleep(GONE_FOR.saturating_sub(gone_at.elapsed())).await;
    ferret.restart().await;
    let back_at = Instant::now();
    let (acknowledged, refused, slowest, longest_outage) = sender.await.unwrap();
    // Ready again by itself.
    loop {
        if client.get(&readyz).send().await.unwrap().status() == StatusCode::OK {
            break;
        }
        assert!(back_at.elapsed() < Duration::from_secs(30), "/readyz stays unready after the database is back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    assert_eq!(acknowledged.len() as u64, total);
    let seqs: Vec<u64> = acknowledged.iter().map(|(_, seq)| *seq).collect();
    assert_eq!(seqs, (1..=total).collect::<Vec<_>>(), "acknowledged in order, no seq taken twice or skipped");
    let mut history = Vec::new();
    let mut after = 0;
    loop {
        let page: Value = crate::helpers::get_json(
            &client,
            &format!("http://{}/api/v1/conversations/{conversation}/messages?after={after}&limit=100", cluster.b.addr),
            &bob_token,
        )
        .await;
        let items = page["items"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        after = items.last().unwrap()["seq"].as_u64().unwrap();
        history.extend(items);
    }
    let kept: Vec<(String, u64)> =
        history.iter().map(|m| (m["client_id"].as_str().unwrap().to_owned(), m["seq"].as_u64().unwrap())).collect();
    assert_eq!(kept, acknowledged, "history is exactly what was acknowledged: none lost, none twice");
    assert_eq!(heard.await.unwrap(), seqs, "every acknowledged message reached the other gateway once, in order");
    assert!(refused.get(&503).is_some_and(|n| *n > 0), "sends met the outage: {refused:?}");
    assert!(slowest < Duration::from_secs(6), "a send took {slowest:?}");
    println!(
        "[drill] database gone {GONE_FOR:?}: acknowledged {total}, lost 0, duplicated 0, out of order 0, \
         5xx {refused:?} (all 503), slowest answer {slowest:?}, /readyz unready {said_after:?} after, \
         sends back {longest_outage:?} after the first refusal"
    );
}
