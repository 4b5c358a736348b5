//! Test support shared by every crate's tests.
//!
//! `make test` starts redis-server, a six-node Redis Cluster, FerretDB and an
//! S3-compatible server on free loopback ports and exports `TEST_REDIS_URL`,
//! `TEST_REDIS_CLUSTER_URLS`, `TEST_MONGODB_URI` and `TEST_S3_ENDPOINT`. Tests that need them call
//! these helpers; run outside `make test`, they fail with a message saying so
//! rather than skipping silently.

pub mod json;
mod poll;
pub mod process;
pub mod redis_cluster;

pub use poll::eventually;

/// The checkout under test: the nearest directory at or above the current
/// one (cargo runs each test binary in its package's directory) that holds
/// the workspace's `Cargo.lock`. Found when the test runs, never baked in
/// at build time: builds are shared between checkouts (one
/// `CARGO_TARGET_DIR` for CI's clean clone and the working copy), and a
/// path compiled into a reused artifact would name another checkout, or
/// one that is gone.
pub fn workspace_root() -> std::path::PathBuf {
    let here = std::env::current_dir().expect("a current directory");
    here.ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file() && dir.join("scripts").is_dir())
        .unwrap_or_else(|| panic!("no workspace at or above {}", here.display()))
        .to_path_buf()
}

fn required_env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests with `make test`, which starts the test servers"))
}

/// The Redis server's URL.
pub fn redis_url() -> String {
    required_env("TEST_REDIS_URL")
}

/// The seed nodes of the test Redis Cluster, comma-separated (`REDIS_URL`
/// with `REDIS_MODE=cluster`).
pub fn redis_cluster_urls() -> String {
    required_env("TEST_REDIS_CLUSTER_URLS")
}

/// The MongoDB-compatible server's URI.
pub fn mongodb_uri() -> String {
    required_env("TEST_MONGODB_URI")
}

/// The S3-compatible server's endpoint (credentials and region are in the
/// standard `AWS_*` variables, which `make test` sets too).
pub fn s3_endpoint() -> String {
    required_env("TEST_S3_ENDPOINT")
}

/// A bucket name no other test uses (S3 rules: lower case, digits, dashes).
pub fn fresh_bucket_name() -> String {
    format!("t-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// Where a Redis-backed implementation under test keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnRedis {
    /// The test Redis server.
    Server,
    /// The test Redis Cluster.
    Cluster,
}

impl OnRedis {
    /// Where that Redis is.
    pub fn target(self) -> chatterbox_redis::Target {
        match self {
            OnRedis::Server => {
                chatterbox_redis::Target::standalone(&redis_url()).expect("TEST_REDIS_URL is a Redis URL")
            }
            OnRedis::Cluster => chatterbox_redis::Target::cluster(&redis_cluster_urls())
                .expect("TEST_REDIS_CLUSTER_URLS are Redis URLs"),
        }
    }

    /// A connection to it.
    pub async fn connection(self) -> chatterbox_redis::Connection {
        self.target().connect().await.expect("the test Redis answers")
    }
}

/// Where a conformance suite of a Redis-backed part runs: in this process,
/// on the test Redis server, or on the test Redis Cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisBacking {
    /// In this process.
    InProcess,
    /// On Redis.
    On(OnRedis),
}

/// A connection to the test Redis server.
pub async fn redis_connection() -> chatterbox_redis::Connection {
    OnRedis::Server.connection().await
}

/// A database name no other test uses.
pub fn fresh_database_name() -> String {
    format!("t{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// A unique prefix for Redis keys, so tests sharing one server never collide.
pub fn fresh_key_prefix() -> String {
    format!("test-{}", ulid::Ulid::new())
}

/// Where an implementation under a conformance suite keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// In this process: SQLite in memory, plain memory, a directory.
    InProcess,
    /// On the servers `make test` starts: FerretDB, Redis, S3.
    TestServer,
}

/// Runs each test body once per backing, as `#[tokio::test]`s named
/// `<test>::<name>`: each body is `async fn(handle)`, called with
/// `make(Backing::InProcess).await` and `make(Backing::TestServer).await`,
/// so a suite's `make` is the one place it builds an implementation. Paths
/// are written from the crate root.
///
/// ```ignore
/// chatterbox_testkit::conformance! {
///     make: crate::store;
///     names: [sqlite, mongodb];
///     tests: [round_trips, keys_are_unique];
/// }
/// ```
///
/// A suite of a Redis-backed part takes a [`RedisBacking`] and runs three
/// times: `names: [memory, redis, redis_cluster]`.
#[macro_export]
macro_rules! conformance {
    (make: $make:path; names: [$in_process:ident, $test_server:ident $(,)?]; tests: [$($name:ident),* $(,)?];) => {
        $( $crate::conformance_test!(
            $make,
            $name,
            [$in_process => $crate::Backing::InProcess, $test_server => $crate::Backing::TestServer]
        ); )*
    };
    (make: $make:path; names: [$in_process:ident, $server:ident, $cluster:ident $(,)?]; tests: [$($name:ident),* $(,)?];) => {
        $( $crate::conformance_test!(
            $make,
            $name,
            [
                $in_process => $crate::RedisBacking::InProcess,
                $server => $crate::RedisBacking::On($crate::OnRedis::Server),
                $cluster => $crate::RedisBacking::On($crate::OnRedis::Cluster),
            ]
        ); )*
    };
}

/// One test body on every backend; used by [`conformance!`].
#[doc(hidden)]
#[macro_export]
// `crate` is meant: the test bodies live in the calling test crate.
#[allow(clippy::crate_in_macro_def)]
macro_rules! conformance_test {
    ($make:path, $name:ident, [$($backend:ident => $variant:expr),+ $(,)?]) => {
        mod $name {
            $(
                #[tokio::test]
                async fn $backend() {
                    crate::$name($make($variant).await).await;
                }
            )+
        }
    };
}
