//! New messages published in `seq` order, per conversation.
//!
//! Group commit answers many sends of one conversation at once; each send's
//! task then publishes its own `message.new`, and tasks run in any order. A
//! gateway that sees `seq` 7 before 6 holds 7 and repairs from history; this
//! keeps that path idle. A send takes a [`Ticket`] before it appends; once it
//! knows its `seq` it hands its event over, and the event waits only while
//! another append of this instance in the same conversation is still under
//! way (it may hold the missing `seq`). A `seq` taken by another instance
//! (several message replicas) or by a send that failed or was cancelled
//! holds nothing up once no local append is in flight.
//!
//! Whatever happens, a message waits [`STALL`] at most; publishing runs in
//! its own task, so a caller that goes away mid-publish loses nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chatterbox_events::{EventBus, Topic, publish_after_commit};
use chatterbox_proto::events::v1::Envelope;
use chatterbox_types::ConversationId;

/// The longest a message waits for its predecessor.
pub const STALL: Duration = Duration::from_millis(100);

/// Lanes idle this long are forgotten.
const IDLE: Duration = Duration::from_secs(30);

/// Publishes `message.new` events in `seq` order.
#[derive(Debug, Clone)]
pub struct InOrder {
    bus: Arc<dyn EventBus>,
    lanes: Arc<Mutex<Lanes>>,
    /// The longest a message waits ([`STALL`] but in tests).
    stall: Duration,
}

#[derive(Debug, Default)]
struct Lanes {
    by_conversation: HashMap<ConversationId, Lane>,
    /// Calls since the last sweep of idle lanes.
    since_sweep: usize,
}

/// One conversation's publishing state.
#[derive(Debug)]
struct Lane {
    /// The `seq` to publish next, once one was published.
    next: Option<u64>,
    /// Messages committed but not published yet, by `seq`.
    waiting: BTreeMap<u64, Envelope>,
    /// Local appends begun and not yet handed over (or given up).
    in_flight: usize,
    /// Whether a task is publishing for this lane.
    publishing: bool,
    /// Since when the first waiting message has waited for a gap.
    stalled_since: Option<Instant>,
    /// Whether a stall timer is armed.
    timer: bool,
    used: Instant,
}

impl Lane {
    fn new(now: Instant) -> Self {
        Self {
            next: None,
            waiting: BTreeMap::new(),
            in_flight: 0,
            publishing: false,
            stalled_since: None,
            timer: false,
            used: now,
        }
    }

    /// The run of waiting messages that may go out now, in order: from
    /// `next`, or past a gap that no local append can fill any more (or that
    /// has waited [`STALL`]).
    fn ready(&mut self, now: Instant, stall: Duration) -> Vec<Envelope> {
        let Some(&first) = self.waiting.keys().next() else {
            self.stalled_since = None;
            return Vec::new();
        };
        let gap = self.next.is_none_or(|next| first > next);
        if gap {
            let waited = self.stalled_since.get_or_insert(now);
            let given_up = self.in_flight == 0 || now.duration_since(*waited) >= stall;
            if !given_up {
                return Vec::new();
            }
            if self.next.is_some() {
                metrics::counter!("message_publish_gaps_skipped_total").increment(1);
            }
            self.next = Some(first);
        }
        self.stalled_since = None;
        let mut run = Vec::new();
        let mut next = first;
        while let Some(event) = self.waiting.remove(&next) {
            run.push(event);
            next += 1;
        }
        self.next = Some(next);
        run
    }
}

/// A send's place in its conversation's lane, taken before it appends.
#[derive(Debug)]
pub struct Ticket {
    order: InOrder,
    conversation: ConversationId,
    /// False once handed over.
    open: bool,
}

impl InOrder {
    /// Publishes on `bus`.
    pub fn new(bus: Arc<dyn EventBus>) -> Self {
        Self::with_stall(bus, STALL)
    }

    /// Publishes on `bus`, a message waiting `stall` at most.
    pub fn with_stall(bus: Arc<dyn EventBus>, stall: Duration) -> Self {
        Self { bus, lanes: Arc::default(), stall }
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Says an append in `conversation` begins; its event goes through the
    /// ticket (dropping it says the append produced nothing to publish).
    pub fn ticket(&self, conversation: ConversationId) -> Ticket {
        let mut lanes = self.lanes();
        lanes.sweep();
        let now = Instant::now();
        let lane = lanes.by_conversation.entry(conversation).or_insert_with(|| Lane::new(now));
        lane.in_flight += 1;
        lane.used = now;
        Ticket { order: self.clone(), conversation, open: true }
    }

    /// Lets whatever is ready go out, in a task of its own (a caller that
    /// goes away cannot strand a lane), and waits for it.
    async fn flush(&self, conversation: ConversationId) {
        let this = self.clone();
        let _ = tokio::spawn(async move { this.drain(conversation).await }).await;
    }

    /// Publishes what is ready, until nothing is; one drainer per lane.
    async fn drain(&self, conversation: ConversationId) {
        {
            let mut lanes = self.lanes();
            let Some(lane) = lanes.by_conversation.get_mut(&conversation) else { return };
            if lane.publishing {
                return;
            }
            lane.publishing = true;
        }
        loop {
            let run = {
                let mut lanes = self.lanes();
                let Some(lane) = lanes.by_conversation.get_mut(&conversation) else { return };
                let run = lane.ready(Instant::now(), self.stall);
                if run.is_empty() {
                    lane.publishing = false;
                    if let Some(since) = lane.stalled_since {
                        self.arm(conversation, lane, since);
                    }
                    return;
                }
                run
            };
            for event in &run {
                publish_after_commit(self.bus.as_ref(), &[Topic::Conversation(conversation)], event).await;
            }
        }
    }

    /// Makes sure the lane is looked at again once its gap has waited
    /// [`STALL`].
    fn arm(&self, conversation: ConversationId, lane: &mut Lane, since: Instant) {
        if lane.timer {
            return;
        }
        lane.timer = true;
        let this = self.clone();
        let due = tokio::time::Instant::from_std(since + self.stall);
        let wake: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> = Box::pin(async move {
            tokio::time::sleep_until(due).await;
            if let Some(lane) = this.lanes().by_conversation.get_mut(&conversation) {
                lane.timer = false;
            }
            this.drain(conversation).await;
        });
        tokio::spawn(wake);
    }
}

impl Ticket {
    /// Hands over the event of message `seq`; returns once it is published,
    /// or waits behind a predecessor that another of this instance's
    /// appends may still hold (at most [`STALL`]).
    pub async fn publish(mut self, seq: u64, event: Envelope) {
        match self.hand_over(seq, event) {
            Some(late) => {
                let topic = [Topic::Conversation(self.conversation)];
                publish_after_commit(self.order.bus.as_ref(), &topic, &late).await;
            }
            None => self.order.flush(self.conversation).await,
        }
    }

    /// Files the event in its lane; gives it back when it is behind what
    /// already went out (its gap was given up): it is published on its own
    /// rather than held.
    fn hand_over(&mut self, seq: u64, event: Envelope) -> Option<Envelope> {
        self.open = false;
        let mut lanes = self.order.lanes();
        let now = Instant::now();
        let lane = lanes.by_conversation.entry(self.conversation).or_insert_with(|| Lane::new(now));
        lane.in_flight = lane.in_flight.saturating_sub(1);
        lane.used = now;
        if lane.next.is_some_and(|next| seq < next) {
            return Some(event);
        }
        lane.waiting.insert(seq, event);
        None
    }
}

impl Drop for Ticket {
    /// An append that failed or was cancelled holds no `seq` up any more.
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let mut lanes = self.order.lanes();
        let Some(lane) = lanes.by_conversation.get_mut(&self.conversation) else { return };
        lane.in_flight = lane.in_flight.saturating_sub(1);
        if lane.in_flight == 0 && !lane.waiting.is_empty() && !lane.publishing {
            drop(lanes);
            let (order, conversation) = (self.order.clone(), self.conversation);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { order.drain(conversation).await });
            }
        }
    }
}

impl Lanes {
    /// Every so often, forgets idle lanes with nothing pending.
    fn sweep(&mut self) {
        self.since_sweep += 1;
        if self.since_sweep < 4096 {
            return;
        }
        self.since_sweep = 0;
        let now = Instant::now();
        self.by_conversation.retain(|_, lane| {
            lane.in_flight > 0
                || lane.publishing
                || lane.timer
                || !lane.waiting.is_empty()
                || now.duration_since(lane.used) < IDLE
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
                    && let Some(Event::MessageDeleted(e)) = &envelope.event
                {
                    sink.lock().unwrap().push(e.seq);
                }
            }),
        )
        .await
        .unwrap();
        seen
    }

    /// A lane to watch; `stall` long enough that only what the test does
    /// releases a message, unless it is about the stall.
    async fn setup_with(stall: Duration) -> (ConversationId, Arc<Mutex<Vec<u64>>>, InOrder) {
        let bus = MemoryBus::new();
        let c = ConversationId::generate();
        let seen = heard(&bus, c).await;
        (c, seen, InOrder::with_stall(Arc::new(bus), stall))
    }

    async fn setup() -> (ConversationId, Arc<Mutex<Vec<u64>>>, InOrder) {
        setup_with(Duration::from_secs(60)).await
    }

    /// Waits (5 s at most) until `seen` holds `expected`.
    async fn until(seen: &Mutex<Vec<u64>>, expected: &[u64]) {
        let started = Instant::now();
        while seen.lock().unwrap().as_slice() != expected {
            assert!(started.elapsed() < Duration::from_secs(5), "{:?} != {expected:?}", seen.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn appends_finishing_out_of_order_are_published_in_order() {
        let (c, seen, order) = setup().await;
        order.ticket(c).publish(1, event(c, 1)).await;
        let (two, three, four) = (order.ticket(c), order.ticket(c), order.ticket(c));
        // 3 and 4 finish before 2, which is still appending here: they wait.
        let (three_done, four_done) =
            tokio::join!(tokio::spawn(three.publish(3, event(c, 3))), tokio::spawn(four.publish(4, event(c, 4))));
        three_done.unwrap();
        four_done.unwrap();
        assert_eq!(*seen.lock().unwrap(), [1]);
        two.publish(2, event(c, 2)).await;
        until(&seen, &[1, 2, 3, 4]).await;
    }

    #[tokio::test]
    async fn a_gap_no_local_append_can_fill_holds_nothing_up() {
        // Seq 2 was taken by another instance: 3 goes out at once.
        let (c, seen, order) = setup().await;
        order.ticket(c).publish(1, event(c, 1)).await;
        order.ticket(c).publish(3, event(c, 3)).await;
        assert_eq!(*seen.lock().unwrap(), [1, 3]);
        // A late 2 (its gap given up) still goes out, and 4 follows.
        order.ticket(c).publish(2, event(c, 2)).await;
        order.ticket(c).publish(4, event(c, 4)).await;
        assert_eq!(*seen.lock().unwrap(), [1, 3, 2, 4]);
    }

    #[tokio::test]
    async fn a_cancelled_append_releases_what_waits_behind_it() {
        let (c, seen, order) = setup().await;
        order.ticket(c).publish(1, event(c, 1)).await;
        let doomed = order.ticket(c);
        let three = order.ticket(c);
        tokio::spawn(three.publish(3, event(c, 3))).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), [1], "3 waits while 2 may still come");
        drop(doomed);
        until(&seen, &[1, 3]).await;
    }

    #[tokio::test]
    async fn a_predecessor_that_never_comes_holds_its_successors_for_the_stall_at_most() {
        let (c, seen, order) = setup_with(STALL).await;
        order.ticket(c).publish(1, event(c, 1)).await;
        // An append that never reports (stuck), then 3 and 4.
        let _stuck = order.ticket(c);
        let started = Instant::now();
        let (three, four) = (order.ticket(c), order.ticket(c));
        tokio::spawn(three.publish(3, event(c, 3)));
        tokio::spawn(four.publish(4, event(c, 4)));
        until(&seen, &[1, 3, 4]).await;
        assert!(started.elapsed() >= STALL, "released by the stall, not before");
    }

    #[tokio::test]
    async fn a_lane_s_first_messages_wait_for_appends_already_under_way() {
        // A fresh lane does not know its next seq: the first burst goes out
        // in order once its appends are in.
        let (c, seen, order) = setup().await;
        let (five, six) = (order.ticket(c), order.ticket(c));
        tokio::spawn(six.publish(6, event(c, 6))).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), Vec::<u64>::new());
        five.publish(5, event(c, 5)).await;
        until(&seen, &[5, 6]).await;
    }

    #[tokio::test]
    async fn conversations_do_not_wait_for_each_other() {
        let bus = MemoryBus::new();
        let (c, d) = (ConversationId::generate(), ConversationId::generate());
        let seen_d = heard(&bus, d).await;
        let order = InOrder::new(Arc::new(bus));
        order.ticket(c).publish(1, event(c, 1)).await;
        let _pending_in_c = order.ticket(c);
        order.ticket(d).publish(7, event(d, 7)).await;
        assert_eq!(*seen_d.lock().unwrap(), [7]);
    }
}
