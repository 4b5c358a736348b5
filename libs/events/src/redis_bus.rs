//! The shared bus: Redis pub/sub, one channel per topic, so a gateway only
//! receives what its users need and adding gateways adds no traffic to the
//! others. A dropped connection is re-established with backoff, every topic
//! resubscribed, and a gap reported.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chatterbox_proto::events::v1::Envelope;
use futures::StreamExt as _;
use prost::Message as _;
use redis::aio::{ConnectionManager, PubSubSink, PubSubStream};

use crate::listeners::{LocalListeners, listen_by_subscription};
use crate::{EventBus, Listener, Received, Subscription, Topic};

/// The bus of the distributed mode.
#[derive(Clone)]
pub struct RedisBus {
    client: redis::Client,
    publisher: ConnectionManager,
    prefix: String,
    /// Told of this process's events inside `publish`.
    listeners: LocalListeners,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisBus {
    /// A bus on `client`, its channels under `prefix`.
    pub async fn connect(client: redis::Client, prefix: impl Into<String>) -> anyhow::Result<Self> {
        let publisher = chatterbox_redis::connection(client.clone()).await?;
        Ok(Self { client, publisher, prefix: prefix.into(), listeners: LocalListeners::default() })
    }
}

struct RedisSubscription {
    client: redis::Client,
    prefix: String,
    topics: HashSet<Topic>,
    /// `None` while disconnected.
    connection: Option<(PubSubSink, PubSubStream)>,
}

impl std::fmt::Debug for RedisSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSubscription").field("topics", &self.topics.len()).finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl EventBus for RedisBus {
    async fn publish(&self, topic: &Topic, event: &Envelope) -> anyhow::Result<()> {
        self.listeners.tell(topic, event);
        let mut conn = self.publisher.clone();
        let _receivers: i64 = redis::cmd("PUBLISH")
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
        let connection = Some(self.client.get_async_pubsub().await?.split());
        Ok(Box::new(RedisSubscription {
            client: self.client.clone(),
            prefix: self.prefix.clone(),
            topics: HashSet::new(),
            connection,
        }))
    }
}

impl RedisSubscription {
    fn channels<'a>(&self, topics: impl IntoIterator<Item = &'a Topic>) -> Vec<String> {
        topics.into_iter().map(|t| t.channel(&self.prefix)).collect()
    }

    /// Reconnects with backoff until Redis answers, then resubscribes everything.
    async fn reconnect(&mut self) {
        let mut delay = Duration::from_millis(50);
        loop {
            match self.client.get_async_pubsub().await {
                Ok(pubsub) => {
                    let (mut sink, stream) = pubsub.split();
                    let all = self.channels(&self.topics);
                    if all.is_empty() || sink.subscribe(&all).await.is_ok() {
                        tracing::info!(topics = all.len(), "event bus reconnected");
                        self.connection = Some((sink, stream));
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, retry_in = ?delay, "event bus disconnected"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }
}

#[async_trait::async_trait]
impl Subscription for RedisSubscription {
    async fn subscribe(&mut self, topics: &[Topic]) -> anyhow::Result<()> {
        let fresh: Vec<Topic> = topics.iter().copied().filter(|t| !self.topics.contains(t)).collect();
        if fresh.is_empty() {
            return Ok(());
        }
        self.topics.extend(fresh.iter().copied());
        let channels = self.channels(&fresh);
        // While disconnected the topics are remembered and subscribed on reconnect.
        if let Some((sink, _)) = &mut self.connection
            && let Err(e) = sink.subscribe(&channels).await
        {
            tracing::warn!(error = %e, "subscribe failed; will resubscribe on reconnect");
            self.connection = None;
        }
        Ok(())
    }

    async fn unsubscribe(&mut self, topics: &[Topic]) -> anyhow::Result<()> {
        let gone: Vec<Topic> = topics.iter().copied().filter(|t| self.topics.remove(t)).collect();
        let channels = self.channels(&gone);
        if !channels.is_empty()
            && let Some((sink, _)) = &mut self.connection
            && let Err(e) = sink.unsubscribe(&channels).await
        {
            tracing::warn!(error = %e, "unsubscribe failed; reconnecting");
            self.connection = None;
        }
        Ok(())
    }

    async fn next(&mut self) -> Option<Received> {
        loop {
            let Some((_, stream)) = &mut self.connection else {
                self.reconnect().await;
                metrics::counter!("events_bus_gaps_total", "bus" => "redis").increment(1);
                return Some(Received::Gap);
            };
            match stream.next().await {
                Some(message) => {
                    let Some(topic) = Topic::from_channel(&self.prefix, message.get_channel_name()) else { continue };
                    // A late message for a topic just left is dropped here.
                    if !self.topics.contains(&topic) {
                        continue;
                    }
                    match Envelope::decode(message.get_payload_bytes()) {
                        Ok(envelope) => return Some(Received::Event { topic, envelope: Arc::new(envelope) }),

                        Err(e) => tracing::warn!(%topic, error = %e, "undecodable event skipped"),
                    }
                }
                None => {
                    // Say so at once (listeners stop trusting what they
                    // cached); the next call reconnects and says it again.
                    self.connection = None;
                    metrics::counter!("events_bus_gaps_total", "bus" => "redis").increment(1);
                    return Some(Received::Gap);
                }
            }
        }
    }
}
