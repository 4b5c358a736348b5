//! Sharded pub/sub on a Redis Cluster: each topic's channel is subscribed
//! (`SSUBSCRIBE`) on the primary owning its slot, through one cluster
//! connection that speaks RESP3 and pushes what arrives into a bounded
//! queue.
//!
//! What can lose events, and what this does about each:
//! - a node's connection drops (the node died, or the network): the library
//!   reconnects and resubscribes by itself, but events published meanwhile
//!   are gone, and a dead primary's slots only come back once its replica is
//!   promoted. A gap is reported at once; the next read resubscribes every
//!   topic (retrying until the slot owners answer, so after a failover the
//!   new primary holds them) and reports a second gap, after which nothing
//!   published is missed;
//! - the server drops a subscription (`sunsubscribe` push: its slot moved to
//!   another shard): the same;
//! - the queue fills (this process reads slower than events arrive): a gap.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chatterbox_proto::events::v1::Envelope;
use futures::StreamExt as _;
use prost::Message as _;
use redis::cluster_async::ClusterConnection;
use redis::{ConnectionInfo, PushInfo, PushKind, Value};
use tokio::sync::mpsc;

use super::count_gap;
use crate::{Received, Subscription, Topic};

/// Pushes held for a slow reader before it is told of a gap instead.
const QUEUE: usize = 65_536;

/// Subscription commands in flight at once (one per channel: channels of
/// different slots cannot share a command).
const CONCURRENT_COMMANDS: usize = 64;

/// A subscription over sharded pub/sub.
pub(super) struct ClusterSubscription {
    connection: ClusterConnection,
    pushes: mpsc::Receiver<PushInfo>,
    /// Set when a push found the queue full.
    overflowed: Arc<AtomicBool>,
    prefix: String,
    topics: HashSet<Topic>,
    /// Every topic must be subscribed again before the next event is trusted.
    resubscribe: bool,
}

impl std::fmt::Debug for ClusterSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSubscription").field("topics", &self.topics.len()).finish_non_exhaustive()
    }
}

impl ClusterSubscription {
    pub(super) async fn open(nodes: &[ConnectionInfo], prefix: String) -> anyhow::Result<Self> {
        let (sender, pushes) = mpsc::channel(QUEUE);
        let overflowed = Arc::new(AtomicBool::new(false));
        let full = overflowed.clone();
        let push_sender = move |push: PushInfo| match sender.try_send(push) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                full.store(true, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
        };
        let connection = chatterbox_redis::cluster_builder(nodes)
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(push_sender)
            .build()?
            .get_async_connection()
            .await?;
        Ok(Self { connection, pushes, overflowed, prefix, topics: HashSet::new(), resubscribe: false })
    }

    /// Sends `SSUBSCRIBE` (or `SUNSUBSCRIBE`) for each topic, one channel
    /// per command, several at once; the first failure, if any.
    async fn each(&self, subscribe: bool, topics: impl IntoIterator<Item = Topic>) -> redis::RedisResult<()> {
        let commands = topics.into_iter().map(|topic| {
            let mut connection = self.connection.clone();
            let channel = topic.channel(&self.prefix);
            async move {
                if subscribe { connection.ssubscribe(channel).await } else { connection.sunsubscribe(channel).await }
            }
        });
        let results: Vec<redis::RedisResult<()>> =
            futures::stream::iter(commands).buffer_unordered(CONCURRENT_COMMANDS).collect().await;
        results.into_iter().collect()
    }

    /// Subscribes every topic again, retrying with backoff until every slot
    /// owner has confirmed (a failing-over shard answers once its replica is
    /// promoted).
    async fn resubscribe_all(&mut self) {
        let mut delay = Duration::from_millis(50);
        loop {
            match self.each(true, self.topics.iter().copied().collect::<Vec<_>>()).await {
                Ok(()) => {
                    tracing::info!(topics = self.topics.len(), "event bus resubscribed on the cluster");
                    self.resubscribe = false;
                    return;
                }
                Err(e) => tracing::warn!(error = %e, retry_in = ?delay, "event bus resubscription failed"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    /// The topic and event of a sharded message push.
    fn event(&self, data: &[Value]) -> Option<(Topic, Envelope)> {
        let [Value::BulkString(channel), Value::BulkString(payload), ..] = data else { return None };
        let topic = Topic::from_channel(&self.prefix, std::str::from_utf8(channel).ok()?)?;
        // A late message for a topic just left is dropped here.
        if !self.topics.contains(&topic) {
            return None;
        }
        match Envelope::decode(payload.as_slice()) {
            Ok(envelope) => Some((topic, envelope)),
            Err(e) => {
                tracing::warn!(%topic, error = %e, "undecodable event skipped");
                None
            }
        }
    }

    /// Whether a `sunsubscribe` push took away a topic still wanted.
    fn lost_topic(&self, data: &[Value]) -> bool {
        let [Value::BulkString(channel), ..] = data else { return false };
        std::str::from_utf8(channel)
            .ok()
            .and_then(|c| Topic::from_channel(&self.prefix, c))
            .is_some_and(|t| self.topics.contains(&t))
    }
}

#[async_trait::async_trait]
impl Subscription for ClusterSubscription {
    async fn subscribe(&mut self, topics: &[Topic]) -> anyhow::Result<()> {
        let fresh: Vec<Topic> = topics.iter().copied().filter(|t| !self.topics.contains(t)).collect();
        if fresh.is_empty() {
            return Ok(());
        }
        self.topics.extend(fresh.iter().copied());
        // A shard that does not answer now is resubscribed on the next read.
        if let Err(e) = self.each(true, fresh).await {
            tracing::warn!(error = %e, "subscribe failed; will resubscribe");
            self.resubscribe = true;
        }
        Ok(())
    }

    async fn unsubscribe(&mut self, topics: &[Topic]) -> anyhow::Result<()> {
        let gone: Vec<Topic> = topics.iter().copied().filter(|t| self.topics.remove(t)).collect();
        // Events of a topic that could not be left are dropped as they come.
        if let Err(e) = self.each(false, gone).await {
            tracing::debug!(error = %e, "unsubscribe failed");
        }
        Ok(())
    }

    async fn next(&mut self) -> Option<Received> {
        loop {
            if self.resubscribe {
                self.resubscribe_all().await;
                count_gap();
                return Some(Received::Gap);
            }
            if self.overflowed.swap(false, Ordering::Relaxed) {
                count_gap();
                return Some(Received::Gap);
            }
            let push = self.pushes.recv().await?;
            match push.kind {
                PushKind::SMessage => {
                    if let Some((topic, envelope)) = self.event(&push.data) {
                        return Some(Received::Event { topic, envelope: Arc::new(envelope) });
                    }
                }
                // Said at once (listeners stop trusting what they cached);
                // said again, and counted, once resubscribed.
                PushKind::Disconnection => {
                    self.resubscribe = true;
                    return Some(Received::Gap);
                }
                PushKind::SUnsubscribe if self.lost_topic(&push.data) => {
                    self.resubscribe = true;
                    return Some(Received::Gap);
                }
                _ => {}
            }
        }
    }
}
