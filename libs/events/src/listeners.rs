//! Listeners registered in this process, called inside `publish`.

use std::sync::{Arc, PoisonError, RwLock};

use chatterbox_proto::events::v1::Envelope;

use crate::{EventBus, Listener, Received, Topic};

/// The listeners of one bus (shared by its clones), by topic.
#[derive(Clone, Default)]
pub(crate) struct LocalListeners(Arc<RwLock<Vec<(Topic, Listener)>>>);

impl LocalListeners {
    pub(crate) fn add(&self, topic: Topic, listener: Listener) {
        self.0.write().unwrap_or_else(PoisonError::into_inner).push((topic, listener));
    }

    /// Tells every listener of `topic` about `event` (one copy shared by
    /// them all, made only if someone listens).
    pub(crate) fn tell(&self, topic: &Topic, event: &Envelope) {
        let listeners = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let mut shared = None;
        for (_, listener) in listeners.iter().filter(|(t, _)| t == topic) {
            let envelope = shared.get_or_insert_with(|| Arc::new(event.clone())).clone();
            listener(Some(Received::Event { topic: *topic, envelope }));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.0.read().map_or(0, |l| l.len())
    }
}

/// Feeds `listener` from a subscription to `topic`, in a task, until the bus
/// is gone.
pub(crate) async fn listen_by_subscription<B: EventBus + ?Sized>(
    bus: &B,
    topic: Topic,
    listener: Listener,
) -> anyhow::Result<()> {
    let mut subscription = bus.subscription().await?;
    subscription.subscribe(&[topic]).await?;
    tokio::spawn(async move {
        loop {
            let next = subscription.next().await;
            let ended = next.is_none();
            listener(next);
            if ended {
                break;
            }
        }
    });
    Ok(())
}
