//! Where Redis is: one server, or the seed nodes of a cluster.

use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::{ConnectionInfo, IntoConnectionInfo as _};

use crate::Connection;

/// How long one command may wait for its answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long one connection attempt may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a command may take on a cluster, redirections and retries
/// included (a primary failing over takes seconds; callers do not wait).
const CLUSTER_OVERALL_TIMEOUT: Duration = Duration::from_millis(2000);

/// A Redis deployment to connect to.
#[derive(Clone)]
pub enum Target {
    /// One server (or a primary with replicas behind one address).
    Standalone(redis::Client),
    /// A Redis Cluster, reached through any of these seed nodes.
    Cluster(Vec<ConnectionInfo>),
}

/// A Redis address that cannot be used; the message says why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(String);

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Addresses only: a URL may hold a password.
        match self {
            Target::Standalone(client) => {
                f.debug_tuple("Standalone").field(client.get_connection_info().addr()).finish()
            }
            Target::Cluster(nodes) => {
                f.debug_tuple("Cluster").field(&nodes.iter().map(ConnectionInfo::addr).collect::<Vec<_>>()).finish()
            }
        }
    }
}

impl Target {
    /// One server at `url` (`redis://host:port/`).
    pub fn standalone(url: &str) -> Result<Self, TargetError> {
        if url.contains(',') {
            return Err(TargetError(
                "REDIS_URL lists several nodes: set REDIS_MODE=cluster for a Redis Cluster, or give one URL".into(),
            ));
        }
        let client = redis::Client::open(url).map_err(|e| TargetError(format!("REDIS_URL is not a Redis URL: {e}")))?;
        Ok(Target::Standalone(client))
    }

    /// A cluster reached through the comma-separated seed nodes in `seeds`
    /// (`redis://h1:7000,redis://h2:7001`); any one that answers is enough.
    pub fn cluster(seeds: &str) -> Result<Self, TargetError> {
        let nodes = seeds
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|url| {
                url.into_connection_info()
                    .map_err(|e| TargetError(format!("REDIS_URL: a seed node is not a Redis URL: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if nodes.is_empty() {
            return Err(TargetError("REDIS_URL names no seed node of the cluster".into()));
        }
        Ok(Target::Cluster(nodes))
    }

    /// Whether this is a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster(_))
    }

    /// A connection whose commands fail within about a second while the
    /// server (or the shard of their key) is away, reconnecting behind them.
    pub async fn connect(&self) -> redis::RedisResult<Connection> {
        match self {
            Target::Standalone(client) => {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_connection_timeout(Some(CONNECTION_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                Ok(Connection::Standalone(
                    redis::aio::ConnectionManager::new_with_config(client.clone(), config).await?,
                ))
            }
            Target::Cluster(nodes) => Ok(Connection::Cluster(
                ClusterClient::builder(nodes.to_vec())
                    .connection_timeout(CONNECTION_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(3)
                    .min_retry_wait(50)
                    .max_retry_wait(500)
                    .overall_response_timeout(Some(CLUSTER_OVERALL_TIMEOUT))
                    .build()?
                    .get_async_connection()
                    .await?,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standalone_url_is_one_server() {
        assert!(!Target::standalone("redis://127.0.0.1:6379/").unwrap().is_cluster());
        let e = Target::standalone("redis://a:1,redis://b:2").unwrap_err().to_string();
        assert!(e.contains("REDIS_MODE=cluster"), "{e}");
        assert!(Target::standalone("http://x").is_err());
    }

    #[test]
    fn a_cluster_url_is_a_list_of_seeds() {
        let Target::Cluster(nodes) = Target::cluster("redis://127.0.0.1:7000, redis://127.0.0.1:7001").unwrap() else {
            panic!("a cluster")
        };
        assert_eq!(nodes.len(), 2);
        assert!(Target::cluster(" , ").is_err());
        assert!(Target::cluster("redis://127.0.0.1:7000,nope://x").is_err());
    }

    #[test]
    fn debug_shows_no_password() {
        let shown = format!("{:?}", Target::cluster("redis://:hunter2@127.0.0.1:7000").unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
        let shown = format!("{:?}", Target::standalone("redis://:hunter2@127.0.0.1:7000/").unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
