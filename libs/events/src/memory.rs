//! The in-process bus: one broadcast channel, each subscription filtering
//! by its topics. A subscription that falls too far behind gets a gap.
//! Listeners are called inside `publish`.

use std::collections::HashSet;
use std::sync::Arc;

use chatterbox_proto::events::v1::Envelope;
use tokio::sync::broadcast;

use crate::listeners::LocalListeners;
use crate::{EventBus, Listener, Received, Subscription, Topic};

/// Events in flight that a slow subscription may fall behind by.
const CAPACITY: usize = 65_536;

/// The bus of the embedded mode.
#[derive(Clone)]
pub struct MemoryBus {
    sender: broadcast::Sender<(Topic, Arc<Envelope>)>,
    /// Called inside `publish`, by topic.
    listeners: LocalListeners,
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBus")
            .field("subscriptions", &self.sender.receiver_count())
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self { sender: broadcast::channel(CAPACITY).0, listeners: LocalListeners::default() }
    }
}

impl MemoryBus {
    /// A bus with no subscribers.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Debug)]
struct MemorySubscription {
    receiver: broadcast::Receiver<(Topic, Arc<Envelope>)>,
    topics: HashSet<Topic>,
}

#[async_trait::async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, topic: &Topic, event: &Envelope) -> anyhow::Result<()> {
        self.listeners.tell(topic, event);
        // One copy shared by every subscription. No subscriber at all is not
        // an error: nobody is listening.
        let _ = self.sender.send((*topic, Arc::new(event.clone())));
        Ok(())
    }

    async fn listen(&self, topic: Topic, listener: Listener) -> anyhow::Result<()> {
        // Every event of this bus is published here: no subscription needed.
        self.listeners.add(topic, listener);
        Ok(())
    }

    async fn subscription(&self) -> anyhow::Result<Box<dyn Subscription>> {
        Ok(Box::new(MemorySubscription { receiver: self.sender.subscribe(), topics: HashSet::new() }))
    }
}

#[async_trait::async_trait]
impl Subscription for MemorySubscription {
    async fn subscribe(&mut self, topics: &[Topic]) -> anyhow::Result<()> {
        self.topics.extend(topics.iter().copied());
        Ok(())
    }

    async fn unsubscribe(&mut self, topics: &[Topic]) -> anyhow::Result<()> {
        for t in topics {
            self.topics.remove(t);
        }
        Ok(())
    }

    async fn next(&mut self) -> Option<Received> {
        loop {
            match self.receiver.recv().await {
                Ok((topic, envelope)) if self.topics.contains(&topic) => {
                    return Some(Received::Event { topic, envelope });
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    metrics::counter!("events_bus_gaps_total", "bus" => "memory").increment(1);
                    return Some(Received::Gap);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
