//! Plain pub/sub on one server. A dropped connection is re-established
//! with backoff, every topic resubscribed, and a gap reported.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chatterbox_proto::events::v1::Envelope;
use futures::StreamExt as _;
use prost::Message as _;
use redis::aio::{PubSubSink, PubSubStream};

use super::count_gap;
use crate::{Received, Subscription, Topic};

/// A subscription on its own connection.
pub(super) struct StandaloneSubscription {
    client: redis::Client,
    prefix: String,
    topics: HashSet<Topic>,
    /// `None` while disconnected.
    connection: Option<(PubSubSink, PubSubStream)>,
}

impl std::fmt::Debug for StandaloneSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandaloneSubscription").field("topics", &self.topics.len()).finish_non_exhaustive()
    }
}

impl StandaloneSubscription {
    pub(super) async fn open(client: redis::Client, prefix: String) -> anyhow::Result<Self> {
        let connection = Some(client.get_async_pubsub().await?.split());
        Ok(Self { client, prefix, topics: HashSet::new(), connection })
    }

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
impl Subscription for StandaloneSubscription {
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
                count_gap();
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
                    // cached); the next call reconnects and says it again
                    // (counting the outage once, there).
                    self.connection = None;
                    return Some(Received::Gap);
                }
            }
        }
    }
}
