//! Test support shared by every crate's tests.
//!
//! `make test` starts redis-server, FerretDB and an S3-compatible server on
//! free loopback ports and exports `TEST_REDIS_URL`, `TEST_MONGODB_URI` and
//! `TEST_S3_ENDPOINT`. Tests that need them call
//! these helpers; run outside `make test`, they fail with a message saying so
//! rather than skipping silently.

pub mod json;
mod poll;
pub mod process;

pub use poll::eventually;

use redis::aio::ConnectionManager;

fn required_env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests with `make test`, which starts the test servers"))
}

/// The Redis server's URL.
pub fn redis_url() -> String {
    required_env("TEST_REDIS_URL")
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

/// A connection to the test Redis server.
pub async fn redis_connection() -> ConnectionManager {
    let client = redis::Client::open(redis_url()).expect("TEST_REDIS_URL is a valid URL");
    ConnectionManager::new(client).await.expect("the test Redis server answers")
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
#[macro_export]
macro_rules! conformance {
    (make: $make:path; names: [$in_process:ident, $test_server:ident $(,)?]; tests: [$($name:ident),* $(,)?];) => {
        $( $crate::conformance_test!(
            $make,
            $name,
            [$in_process => $crate::Backing::InProcess, $test_server => $crate::Backing::TestServer]
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
