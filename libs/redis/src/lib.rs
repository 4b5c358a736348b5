//! Redis connections with bounded waits. The library's defaults retry a
//! lost connection for many seconds while callers wait; every caller here
//! (event publishing, rate limits) would rather fail fast and carry on.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long one command may wait for its answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long one connection attempt may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_millis(500);

/// A self-reconnecting connection to `client` whose commands fail within
/// about a second while Redis is away (reconnection continues behind them).
pub async fn connection(client: redis::Client) -> redis::RedisResult<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_with_config(client, config).await
}
