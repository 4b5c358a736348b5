//! The shared bus: Redis pub/sub, one channel per topic, so a gateway only
//! receives what its users need and adding gateways adds no traffic to the
//! others.
//!
//! On one server, plain pub/sub ([`standalone`]); on a Redis Cluster,
//! sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, [`cluster`]): a topic's events
//! travel only through the shard that owns its channel's slot, so adding
//! shards adds capacity (plain `PUBLISH` on a cluster reaches every node).
//! Either way a subscription that may have missed events (a dropped
//! connection, a primary failing over, a slot moving) resubscribes and
//! reports a [`Received::Gap`](crate::Received::Gap).

mod cluster;
mod standalone;

use chatterbox_proto::events::v1::Envelope;
use chatterbox_redis::{Connection, Target};
use prost::Message as _;

use crate::listeners::{LocalListeners, listen_by_subscription};
use crate::{EventBus, Listener, Subscription, Topic};

/// The bus of the distributed mode.
#[derive(Clone)]
pub struct RedisBus {
    target: Target,
    publisher: Connection,
    prefix: String,
    /// Told of this process's events inside `publish`.
    listeners: LocalListeners,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus").field("target", &self.target).field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisBus {
    /// A bus on `target`, its channels under `prefix`.
    pub async fn connect(target: Target, prefix: impl Into<String>) -> anyhow::Result<Self> {
        let publisher = target.connect().await?;
        Ok(Self { target, publisher, prefix: prefix.into(), listeners: LocalListeners::default() })
    }
}

/// Counts a time events may have been lost.
fn count_gap() {
    metrics::counter!("events_bus_gaps_total", "bus" => "redis").increment(1);
}

#[async_trait::async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, topic: &Topic, event: &Envelope) -> anyhow::Result<()> {
        self.listeners.tell(topic, event);
        let command = if self.target.is_cluster() { "SPUBLISH" } else { "PUBLISH" };
        let mut conn = self.publisher.clone();
        let _receivers: i64 = redis::cmd(command)
            .arg(topic.channel(&self.prefix))
            .arg(event.encode_to_vec())
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn listen(&self, topic: Topic, listener: Listener) -> anyhow::Result<()> {
        // Subscribed first, so nothing published from now on is missed.
        listen_by_subscription(self, topic, listener.clone()).await?;
        self.listeners.add(topic, listener);
        Ok(())
    }

    async fn subscription(&self) -> anyhow::Result<Box<dyn Subscription>> {
        Ok(match &self.target {
            Target::Standalone(client) => {
                Box::new(standalone::StandaloneSubscription::open(client.clone(), self.prefix.clone()).await?)
            }
            Target::Cluster(seeds) => {
                Box::new(cluster::ClusterSubscription::open(seeds, self.publisher.clone(), self.prefix.clone()).await?)
            }
        })
    }
}
