//! New messages published in `seq` order, per conversation.
//!
//! Group commit answers many sends of one conversation at once; each send's
//! task then publishes its own `message.new`, and tasks run in any order. A
//! gateway that sees `seq` 7 before 6 holds 7 and repairs from history; this
//! keeps that path idle: a message whose predecessor has not been published
//! yet waits for it, and whoever publishes a message also publishes the run
//! of successors waiting behind it.
//!
//! A predecessor that never comes (its task was cancelled between commit
//! and publish) holds the conversation up for [`STALL`] at most: then what
//! waits is published anyway and the gateways repair the gap from history,
//! as they do for any lost event. The order holds within one message
//! service instance; several instances serving one conversation each keep
//! their own order (the gateways still repair across them).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chatterbox_events::{EventBus, Topic, publish_after_commit};
use chatterbox_proto::events::v1::Envelope;
use chatterbox_types::ConversationId;

/// The longest a message waits for its predecessor.
pub const STALL: Duration = Duration::from_millis(100);

/// Lanes idle this long are forgotten (their next `seq` starts afresh).
const IDLE: Duration = Duration::from_secs(30);

/// Publishes `message.new` events in `seq` order.
#[derive(Debug, Clone)]
pub struct InOrder {
    bus: Arc<dyn EventBus>,
    lanes: Arc<Mutex<Lanes>>,
}

#[derive(Debug, Default)]
struct Lanes {
    by_conversation: HashMap<ConversationId, Lane>,
    /// Calls since the last sweep of idle lanes.
    since_sweep: usize,
}

/// What a publisher does once its message is filed.
enum Step {
    /// Publish it now, out of turn.
    Now(Box<Envelope>),
    /// Publish what is ready, its message included.
    Drain,
    /// Nothing: an earlier message's publisher, or the stall timer, will.
    Wait,
}

/// One conversation's publishing state.
#[derive(Debug)]
struct Lane {
    /// The `seq` to publish next.
    next: u64,
    /// Messages committed but not published yet, by `seq`.
    waiting: BTreeMap<u64, Envelope>,
    /// Whether a task is publishing for this lane (it drains `waiting`).
    publishing: bool,
    /// Whether a stall timer is armed.
    timer: bool,
    used: Instant,
}

impl InOrder {
    /// Publishes on `bus`.
    pub fn new(bus: Arc<dyn EventBus>) -> Self {
        Self { bus, lanes: Arc::default() }
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes message `seq` of `conversation` once every earlier one
    /// seen by this instance is (or [`STALL`] has passed).
    pub async fn publish(&self, conversation: ConversationId, seq: u64, event: Envelope) {
        match self.enqueue(conversation, seq, event) {
            Step::Now(event) => self.send(conversation, &event).await,
            Step::Drain => self.drain(conversation, false).await,
            Step::Wait => {}
        }
    }

    /// Files the message in its lane and says what the caller does next.
    fn enqueue(&self, conversation: ConversationId, seq: u64, event: Envelope) -> Step {
        let mut lanes = self.lanes();
        lanes.sweep();
        let now = Instant::now();
        let lane = lanes.by_conversation.entry(conversation).or_insert_with(|| Lane {
            next: seq,
            waiting: BTreeMap::new(),
            publishing: false,
            timer: false,
            used: now,
        });
        lane.used = now;
        if seq < lane.next {
            // Late (its lane moved past it after a stall): publish now.
            return Step::Now(Box::new(event));
        }
        lane.waiting.insert(seq, event);
        if lane.publishing {
            return Step::Wait;
        }
        if !lane.waiting.contains_key(&lane.next) {
            // Its predecessor is still on its way.
            self.arm(conversation, lane);
            return Step::Wait;
        }
        lane.publishing = true;
        Step::Drain
    }

    /// Gives the lane's gap [`STALL`] to fill, once.
    fn arm(&self, conversation: ConversationId, lane: &mut Lane) {
        if lane.timer {
            return;
        }
        lane.timer = true;
        let this = self.clone();
        let unstall: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> = Box::pin(async move {
            tokio::time::sleep(STALL).await;
            this.unstall(conversation).await;
        });
        tokio::spawn(unstall);
    }

    /// Publishes the run of consecutive messages from the lane's `next`
    /// (from its first waiting one when `skip` says the gap is given up),
    /// until none is ready; the caller holds the lane's `publishing` flag.
    async fn drain(&self, conversation: ConversationId, mut skip: bool) {
        loop {
            let run = {
                let mut lanes = self.lanes();
                let Some(lane) = lanes.by_conversation.get_mut(&conversation) else { return };
                if skip {
                    if let Some(&first) = lane.waiting.keys().next() {
                        lane.next = lane.next.max(first);
                    }
                    skip = false;
                }
                let mut run = Vec::new();
                while let Some(event) = lane.waiting.remove(&lane.next) {
                    run.push(event);
                    lane.next += 1;
                }
                if run.is_empty() {
                    lane.publishing = false;
                    if !lane.waiting.is_empty() {
                        self.arm(conversation, lane);
                    }
                    return;
                }
                run
            };
            for event in &run {
                self.send(conversation, event).await;
            }
        }
    }

    /// After [`STALL`]: if messages still wait for a predecessor, give it up.
    async fn unstall(&self, conversation: ConversationId) {
        {
            let mut lanes = self.lanes();
            let Some(lane) = lanes.by_conversation.get_mut(&conversation) else { return };
            lane.timer = false;
            if lane.publishing || lane.waiting.is_empty() {
                return;
            }
            metrics::counter!("message_publish_gaps_skipped_total").increment(1);
            lane.publishing = true;
        }
        self.drain(conversation, true).await;
    }

    async fn send(&self, conversation: ConversationId, event: &Envelope) {
        publish_after_commit(self.bus.as_ref(), &[Topic::Conversation(conversation)], event).await;
    }
}

impl Lanes {
    /// Every so often, forgets lanes idle for [`IDLE`] with nothing pending.
    fn sweep(&mut self) {
        self.since_sweep += 1;
        if self.since_sweep < 4096 {
            return;
        }
        self.since_sweep = 0;
        let now = Instant::now();
        self.by_conversation.retain(|_, lane| {
            lane.publishing || lane.timer || !lane.waiting.is_empty() || now.duration_since(lane.used) < IDLE
        });
    }
}

#[cfg(test)]
mod tests {
    use chatterbox_events::{MemoryBus, Received, envelope};
    use chatterbox_proto::events::v1::MessageDeleted;
    use chatterbox_proto::events::v1::envelope::Event;
    use chatterbox_types::Timestamp;

    use super::*;

    fn event(conversation: ConversationId, seq: u64) -> Envelope {
        let deleted =
            MessageDeleted { conversation_id: conversation.to_string(), message_id: String::new(), seq, change_seq: 0 };
        envelope(Event::MessageDeleted(deleted), Timestamp::now())
    }

    /// The `seq`s published on `conversation`'s topic, as they are heard.
    async fn heard(bus: &MemoryBus, conversation: ConversationId) -> Arc<Mutex<Vec<u64>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        bus.listen(
            Topic::Conversation(conversation),
            Arc::new(move |received| {
                if let Some(Received::Event { envelope, .. }) = received
                    && let Some(Event::MessageDeleted(e)) = envelope.event
                {
                    sink.lock().unwrap().push(e.seq);
                }
            }),
        )
        .await
        .unwrap();
        seen
    }

    #[tokio::test]
    async fn messages_finishing_out_of_order_are_published_in_order() {
        let bus = MemoryBus::new();
        let c = ConversationId::generate();
        let seen = heard(&bus, c).await;
        let order = InOrder::new(Arc::new(bus));
        order.publish(c, 1, event(c, 1)).await;
        // 3 and 4 finish before 2: they wait for it, and 2 brings them.
        order.publish(c, 3, event(c, 3)).await;
        order.publish(c, 4, event(c, 4)).await;
        assert_eq!(*seen.lock().unwrap(), [1]);
        order.publish(c, 2, event(c, 2)).await;
        assert_eq!(*seen.lock().unwrap(), [1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn conversations_do_not_wait_for_each_other() {
        let bus = MemoryBus::new();
        let (c, d) = (ConversationId::generate(), ConversationId::generate());
        let seen_d = heard(&bus, d).await;
        let order = InOrder::new(Arc::new(bus));
        order.publish(c, 1, event(c, 1)).await;
        order.publish(c, 3, event(c, 3)).await;
        order.publish(d, 7, event(d, 7)).await;
        assert_eq!(*seen_d.lock().unwrap(), [7]);
    }

    #[tokio::test]
    async fn a_predecessor_that_never_comes_holds_its_successors_for_the_stall_at_most() {
        let bus = MemoryBus::new();
        let c = ConversationId::generate();
        let seen = heard(&bus, c).await;
        let order = InOrder::new(Arc::new(bus));
        order.publish(c, 1, event(c, 1)).await;
        order.publish(c, 3, event(c, 3)).await;
        order.publish(c, 4, event(c, 4)).await;
        let started = Instant::now();
        tokio::time::sleep(STALL / 2).await;
        assert_eq!(*seen.lock().unwrap(), [1], "still waiting for 2");
        while seen.lock().unwrap().len() < 3 {
            assert!(started.elapsed() < Duration::from_secs(5), "2 is given up after the stall");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(started.elapsed() >= STALL);
        assert_eq!(*seen.lock().unwrap(), [1, 3, 4], "2 given up");
        // 2 shows up late: published at once; and the lane goes on from 5.
        order.publish(c, 2, event(c, 2)).await;
        order.publish(c, 5, event(c, 5)).await;
        assert_eq!(*seen.lock().unwrap(), [1, 3, 4, 2, 5]);
    }
}
