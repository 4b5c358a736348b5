//! The event bus: services publish typed, versioned events after commit;
//! gateways subscribe to the topics their connected users need.
//!
//! One trait, two implementations: [`MemoryBus`] (one process, the embedded
//! mode) and [`RedisBus`] (Redis pub/sub, any number of processes), with one
//! conformance suite (`tests/conformance.rs`). A subscriber that may have
//! missed events (it fell behind, or its Redis connection dropped and came
//! back) is told so with [`Received::Gap`], so it can catch up from history.

mod envelope;
mod listeners;
mod memory;
mod redis_bus;
mod topic;

pub use envelope::{EVENT_VERSION, envelope};
pub use memory::MemoryBus;
pub use redis_bus::RedisBus;
pub use topic::Topic;

use std::sync::Arc;

use chatterbox_proto::events::v1::Envelope;

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    /// An event on one of the subscribed topics.
    Event {
        /// The topic it was published on.
        topic: Topic,
        /// The event, shared: every subscription and listener of this
        /// process that hears it holds the same copy.
        envelope: Arc<Envelope>,
    },
    /// Events may have been lost here: catch up from the source of truth.
    Gap,
}

/// A live set of topics and the events published on them.
#[async_trait::async_trait]
pub trait Subscription: Send + std::fmt::Debug {
    /// Adds topics (already subscribed ones are ignored).
    async fn subscribe(&mut self, topics: &[Topic]) -> anyhow::Result<()>;
    /// Removes topics.
    async fn unsubscribe(&mut self, topics: &[Topic]) -> anyhow::Result<()>;
    /// The next event or gap; `None` once the bus is gone for good.
    async fn next(&mut self) -> Option<Received>;
}

/// Called with each event on the topic it listens to, a [`Received::Gap`]
/// when some may have been missed, and `None` once the bus is gone for good.
/// It runs on the publisher's path in one process: keep it short, and never
/// publish from it.
pub type Listener = std::sync::Arc<dyn Fn(Option<Received>) + Send + Sync>;

/// Publishes events and opens subscriptions.
#[async_trait::async_trait]
pub trait EventBus: Send + Sync + std::fmt::Debug {
    /// Publishes `event` on `topic` to every current subscriber of it.
    async fn publish(&self, topic: &Topic, event: &Envelope) -> anyhow::Result<()>;
    /// A new subscription with no topics yet.
    async fn subscription(&self) -> anyhow::Result<Box<dyn Subscription>>;

    /// Calls `listener` with every event published on `topic` from now on,
    /// for as long as the bus lives. An event published through this bus
    /// (or a clone of it) is heard inside `publish`, before it returns, so
    /// whoever hears back from the publisher knows the listener has seen it;
    /// an event from another process is heard as it arrives (a task reads a
    /// subscription). An event of this process may thus be heard twice.
    async fn listen(&self, topic: Topic, listener: Listener) -> anyhow::Result<()> {
        listeners::listen_by_subscription(self, topic, listener).await
    }
}

/// Publishes after a commit. The write is already durable, so a failure is
/// logged and counted, never turned into an error for the caller: clients
/// catch up from history.
pub async fn publish_after_commit(bus: &dyn EventBus, topics: &[Topic], event: &Envelope) {
    for topic in topics {
        if let Err(e) = bus.publish(topic, event).await {
            metrics::counter!("events_publish_failures_total").increment(1);
            tracing::warn!(%topic, error = %e, "could not publish an event");
        }
    }
}
