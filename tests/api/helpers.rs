//! Spawning a suite per test and talking to it like a client would.

use std::net::SocketAddr;

use chatterbox::embedded::Suite;
use chatterbox_config::{Config, Secret};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

/// GETs `url` as `token` and reads the JSON answer, whatever its status.
pub async fn get_json(client: &reqwest::Client, url: &str, token: &str) -> Value {
    client.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

/// Which backends a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite files and in-process state.
    Embedded,
    /// MongoDB (FerretDB) and Redis, as the distributed mode uses.
    MongoRedis,
}

/// Runs a test body once per backend: `fn name(backend: Backend)`.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn embedded() {
                super::$name($crate::helpers::Backend::Embedded).await;
            }

            #[tokio::test]
            async fn on_mongodb_and_redis() {
                super::$name($crate::helpers::Backend::MongoRedis).await;
            }
        }
    )*};
}

/// A running suite and an HTTP client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub data_dir: tempfile::TempDir,
    pub client: reqwest::Client,
    /// The running suite; dropping it stops every part.
    pub suite: Suite,
    /// What it was started with.
    pub config: Config,
}

/// A registered user as a client holds it.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// The configuration a test suite starts from: loopback, port 0, a fresh
/// data dir (and database and key prefix), no rate limit unless asked.
pub fn test_config(backend: Backend, data_dir: &std::path::Path) -> Config {
    let mut config = Config {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        http_rate_limit: 0,
        log: "warn".into(),
        ..Config::default()
    };
    if backend == Backend::MongoRedis {
        config.mongodb_uri = Some(Secret::new(chatterbox_testkit::mongodb_uri()));
        config.mongodb_database = chatterbox_testkit::fresh_database_name();
        config.redis_url = Some(Secret::new(chatterbox_testkit::redis_url()));
        config.redis_key_prefix = chatterbox_testkit::fresh_key_prefix();
        config.s3_bucket = Some(chatterbox_testkit::fresh_bucket_name());
        config.s3_endpoint = Some(chatterbox_testkit::s3_endpoint());
    }
    config
}

impl TestApp {
    /// A suite on `backend` with the test defaults.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// A suite on `backend`, with the configuration adjusted by `tweak`.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let (config, data_dir) = configured(backend, tweak);
        Self::start(config, data_dir).await
    }

    /// A suite on `backend` whose tokens and login sessions tell time by
    /// `clock`, with the configuration adjusted by `tweak`.
    pub async fn spawn_with_clock(
        backend: Backend,
        clock: &chatterbox_types::ManualClock,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let (config, data_dir) = configured(backend, tweak);
        Self::start_with_clock(config, data_dir, std::sync::Arc::new(clock.clone())).await
    }

    /// A suite with exactly this configuration.
    pub async fn start(config: Config, data_dir: tempfile::TempDir) -> Self {
        Self::start_with_clock(config, data_dir, chatterbox_types::system_clock()).await
    }

    async fn start_with_clock(
        config: Config,
        data_dir: tempfile::TempDir,
        clock: std::sync::Arc<dyn chatterbox_types::Clock>,
    ) -> Self {
        if let Some(bucket) = &config.s3_bucket {
            let settings = chatterbox_media::S3Settings {
                bucket: bucket.clone(),
                endpoint: config.s3_endpoint.clone(),
                public_endpoint: None,
            };
            chatterbox_media::S3BlobStore::new(&settings)
                .await
                .create_bucket()
                .await
                .expect("the test bucket is created");
        }
        let suite = chatterbox::embedded::start_with_clock(&config, clock).await.expect("the suite starts");
        Self { addr: suite.http_addr, data_dir, client: reqwest::Client::new(), suite, config }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("the gateway answers")
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.send(Method::POST, path, None, Some(body)).await
    }

    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post_as(&self, path: &str, token: &str, body: Value) -> Response {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch_as(&self, path: &str, token: &str, body: Value) -> Response {
        self.send(Method::PATCH, path, Some(token), Some(body)).await
    }

    pub async fn delete_as(&self, path: &str, token: &str) -> Response {
        self.send(Method::DELETE, path, Some(token), None).await
    }

    /// GETs `path` as `token`, expecting 200, and returns the JSON.
    pub async fn json_as(&self, path: &str, token: &str) -> Value {
        let r = self.get_as(path, token).await;
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }

    /// Creates a direct conversation between `a` and `b`; returns its id.
    pub async fn direct(&self, a: &TestUser, b: &TestUser) -> String {
        let r = self
            .post_as("/api/v1/conversations", &a.access_token, json!({"type": "direct", "participant_ids": [b.id]}))
            .await;
        assert!(r.status().is_success(), "{}", r.status());
        r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    /// Creates a group of `owner` and `others`; returns its id.
    pub async fn group(&self, owner: &TestUser, name: &str, others: &[&TestUser]) -> String {
        let ids: Vec<&str> = others.iter().map(|u| u.id.as_str()).collect();
        let r = self
            .post_as(
                "/api/v1/conversations",
                &owner.access_token,
                json!({"type": "group", "name": name, "participant_ids": ids}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    /// Sends `content` to a conversation as `user`, expecting 201; returns the message.
    pub async fn say(&self, user: &TestUser, conversation: &str, content: &str) -> Value {
        let r = self
            .post_as(
                &format!("/api/v1/conversations/{conversation}/messages"),
                &user.access_token,
                json!({"content": content}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "sending {content:?}");
        r.json().await.unwrap()
    }

    pub async fn register_raw(&self, username: &str, email: &str, password: &str) -> Response {
        self.post("/api/v1/auth/register", json!({"username": username, "email": email, "password": password})).await
    }

    /// Registers `username` (email `<username>@example.com`) and returns it.
    pub async fn register(&self, username: &str) -> TestUser {
        let email = format!("{}@example.com", username.to_lowercase());
        let password = format!("pw-{username}-secret");
        let response = self.register_raw(username, &email, &password).await;
        assert_eq!(response.status(), StatusCode::CREATED, "registering {username}");
        let body: Value = response.json().await.unwrap();
        TestUser {
            id: body["user"]["id"].as_str().unwrap().to_owned(),
            email,
            password,
            access_token: body["tokens"]["access_token"].as_str().unwrap().to_owned(),
            refresh_token: body["tokens"]["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post("/api/v1/auth/login", json!({"email": email, "password": password})).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post("/api/v1/auth/refresh", json!({"refresh_token": refresh_token})).await
    }
}

/// The test configuration for `backend` in a fresh data directory,
/// adjusted by `tweak`.
fn configured(backend: Backend, tweak: impl FnOnce(&mut Config)) -> (Config, tempfile::TempDir) {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(backend, data_dir.path());
    tweak(&mut config);
    (config, data_dir)
}

/// Asserts the status and the contract's error body; returns the message.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "errors are JSON"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().expect("a message").to_owned();
    assert!(!message.is_empty());
    message
}
