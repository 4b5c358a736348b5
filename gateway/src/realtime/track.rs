//! Per-conversation delivery state of one session: `message.new` goes out
//! in `seq` order, each once, whatever order the bus brings events in (two
//! sends committed in order may be published in the other order, and a lost
//! event leaves a hole). An early arrival waits briefly for the ones before
//! it; if they do not come, the session reads them from history.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use super::delivery::Outbound;

/// Events ready to go out, in order: nearly always one, kept inline so a
/// delivery allocates nothing.
pub(crate) type Ready = SmallVec<[Arc<Outbound>; 2]>;

/// How long an early event waits for the ones before it before the session
/// reads the hole from history.
pub(crate) const REPAIR_AFTER: Duration = Duration::from_millis(300);

/// Ordering state of one conversation in one session.
#[derive(Debug)]
pub(crate) struct Track {
    /// The next `seq` to deliver.
    next: u64,
    /// Every `seq` in `delivered_from..next` went out on this session.
    delivered_from: u64,
    /// Early arrivals, waiting for the `seq`s before them.
    held: BTreeMap<u64, Arc<Outbound>>,
    /// Edits and deletions of messages not delivered yet, by `seq`, with
    /// their change numbers: they go out right after their message.
    deferred: BTreeMap<u64, Vec<(u64, Arc<Outbound>)>>,
    /// Since when something has been waiting.
    held_since: Option<Instant>,
    /// The highest change number delivered (gap repair asks for later ones).
    change_mark: u64,
    /// Messages the latest replay sent from history, with the change they
    /// were sent at: their live copies up to that change are repeats.
    replayed: HashMap<String, u64>,
}

/// Messages a replay remembers at most; past that, a live edit may repeat
/// (harmless) rather than memory grow.
const REMEMBERED: usize = 10_000;

impl Track {
    /// A conversation whose newest message is `latest` when the session
    /// starts following it.
    pub(crate) fn new(latest: u64) -> Self {
        Self {
            next: latest + 1,
            delivered_from: latest + 1,
            held: BTreeMap::new(),
            deferred: BTreeMap::new(),
            held_since: None,
            change_mark: 0,
            replayed: HashMap::new(),
        }
    }

    /// The highest `seq` delivered or known when following started.
    pub(crate) fn position(&self) -> u64 {
        self.next - 1
    }

    /// The highest change number delivered.
    pub(crate) fn change_mark(&self) -> u64 {
        self.change_mark
    }

    /// Events waiting in this track.
    pub(crate) fn backlog(&self) -> usize {
        self.held.len() + self.deferred.values().map(Vec::len).sum::<usize>()
    }

    /// A live `message.new`: what to send now, in order (empty when it is
    /// a duplicate or has to wait).
    pub(crate) fn live(&mut self, seq: u64, event: Arc<Outbound>, now: Instant) -> Ready {
        let mut out = Ready::new();
        if seq < self.next {
            return out;
        }
        if seq > self.next {
            self.held.insert(seq, event);
            self.held_since.get_or_insert(now);
            return out;
        }
        self.next += 1;
        out.push(event);
        self.deferred_after(seq, 0, &mut out);
        self.release(&mut out);
        out
    }

    /// A live edit or deletion of `message` (`seq`) with change number
    /// `change`: what to send now.
    pub(crate) fn live_change(
        &mut self,
        message: &str,
        seq: u64,
        change: u64,
        event: Arc<Outbound>,
        now: Instant,
    ) -> Ready {
        let mut out = Ready::new();
        if self.replayed.get(message).is_some_and(|sent| *sent >= change) {
            return out;
        }
        if seq >= self.next {
            // Its message has not gone out yet: the change follows it.
            self.deferred.entry(seq).or_default().push((change, event));
            self.held_since.get_or_insert(now);
            return out;
        }
        self.change_mark = self.change_mark.max(change);
        out.push(event);
        out
    }

    /// Adds to `out` the deferred changes of `seq` later than `change`, in
    /// change order.
    fn deferred_after(&mut self, seq: u64, change: u64, out: &mut Ready) {
        let Some(mut waiting) = self.deferred.remove(&seq) else { return };
        waiting.sort_by_key(|(c, _)| *c);
        for (c, event) in waiting {
            if c > change {
                self.change_mark = self.change_mark.max(c);
                out.push(event);
            }
        }
    }

    /// Adds to `out` the held events that are now next in line, each
    /// followed by its deferred changes.
    fn release(&mut self, out: &mut Ready) {
        // Whatever history already delivered is dropped.
        while let Some(entry) = self.held.first_entry() {
            let seq = *entry.key();
            if seq < self.next {
                entry.remove();
            } else if seq == self.next {
                out.push(entry.remove());
                self.next += 1;
                self.deferred_after(seq, 0, out);
            } else {
                break;
            }
        }
        if self.held.is_empty() && self.deferred.is_empty() {
            self.held_since = None;
        }
    }

    /// When the wait for a hole ends, if there is one.
    pub(crate) fn repair_at(&self) -> Option<Instant> {
        self.held_since.map(|since| since + REPAIR_AFTER)
    }

    /// A repair failed: wait again before the next attempt.
    pub(crate) fn postpone(&mut self, now: Instant) {
        if self.held_since.is_some() {
            self.held_since = Some(now);
        }
    }

    /// Starts a replay: what the previous one sent no longer matters.
    pub(crate) fn replay_begin(&mut self) {
        self.replayed.clear();
    }

    /// A message read from history during a replay or repair, in its state
    /// at change `change`: `None` when this session already sent it, else
    /// the deferred changes that are newer than that state, to send after it.
    pub(crate) fn replayed(&mut self, message: &str, seq: u64, change: u64) -> Option<Ready> {
        if seq >= self.delivered_from && seq < self.next {
            return None;
        }
        self.change_mark = self.change_mark.max(change);
        self.next = self.next.max(seq + 1);
        self.remember(message, change);
        let mut newer = Ready::new();
        self.deferred_after(seq, change, &mut newer);
        Some(newer)
    }

    /// A change read from history (always sent): its live copy is a repeat.
    pub(crate) fn replayed_change(&mut self, message: &str, change: u64) {
        self.change_mark = self.change_mark.max(change);
        self.remember(message, change);
    }

    fn remember(&mut self, message: &str, change: u64) {
        if self.replayed.len() < REMEMBERED || self.replayed.contains_key(message) {
            let sent = self.replayed.entry(message.to_owned()).or_default();
            *sent = (*sent).max(change);
        }
    }

    /// Ends a replay from `from` (the client has everything up to it):
    /// every `seq` above it has now gone out, and held events that follow
    /// are returned, in order.
    pub(crate) fn replay_done(&mut self, from: u64) -> Ready {
        self.delivered_from = self.delivered_from.min(from + 1);
        self.next = self.next.max(from + 1);
        let mut out = Ready::new();
        self.release(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use axum::extract::ws::Utf8Bytes;

    use super::*;
    use crate::realtime::delivery::Kind;

    fn event(seq: u64) -> Arc<Outbound> {
        Arc::new(Outbound { kind: Kind::Plain, text: Utf8Bytes::from(seq.to_string()), reacted: None })
    }

    fn texts(events: &[Arc<Outbound>]) -> Vec<String> {
        events.iter().map(|e| e.text.as_str().to_owned()).collect()
    }

    #[test]
    fn in_order_events_go_out_at_once_and_duplicates_never() {
        let now = Instant::now();
        let mut t = Track::new(4);
        assert_eq!(texts(&t.live(5, event(5), now)), ["5"]);
        assert!(t.live(5, event(5), now).is_empty());
        assert!(t.live(3, event(3), now).is_empty());
        assert_eq!(t.position(), 5);
        assert_eq!(t.repair_at(), None);
    }

    #[test]
    fn an_early_event_waits_for_the_one_before_it() {
        let now = Instant::now();
        let mut t = Track::new(0);
        assert!(t.live(2, event(2), now).is_empty());
        assert!(t.live(3, event(3), now).is_empty());
        assert_eq!(t.repair_at(), Some(now + REPAIR_AFTER));
        assert_eq!(texts(&t.live(1, event(1), now)), ["1", "2", "3"]);
        assert_eq!(t.repair_at(), None);
    }

    #[test]
    fn history_fills_a_hole_and_held_events_follow_without_repeats() {
        let now = Instant::now();
        let mut t = Track::new(0);
        assert_eq!(texts(&t.live(1, event(1), now)), ["1"]);
        assert!(t.live(4, event(4), now).is_empty());
        // The repair reads 2, 3 and 4 from history.
        assert!(t.replayed("m1", 1, 0).is_none());
        assert!(t.replayed("m2", 2, 0).is_some());
        assert!(t.replayed("m3", 3, 0).is_some());
        assert!(t.replayed("m4", 4, 0).is_some());
        assert!(t.replay_done(1).is_empty(), "4 went out from history; the held copy is dropped");
        assert!(t.live(4, event(4), now).is_empty());
        assert_eq!(t.position(), 4);
    }

    #[test]
    fn a_resume_skips_what_went_out_live_before_it() {
        let now = Instant::now();
        // Following from 10; 11 went out live before the client's resume from 5.
        let mut t = Track::new(10);
        assert_eq!(texts(&t.live(11, event(11), now)), ["11"]);
        let sent: Vec<u64> = (6..=12).filter(|seq| t.replayed(&format!("m{seq}"), *seq, 0).is_some()).collect();
        assert_eq!(sent, [6, 7, 8, 9, 10, 12]);
        assert!(t.replay_done(5).is_empty());
        assert!(t.live(12, event(12), now).is_empty());
        // After the resume the whole range counts as delivered.
        assert!(t.replayed("m7", 7, 0).is_none());
    }

    #[test]
    fn a_live_change_is_skipped_only_when_history_sent_that_message_at_that_change() {
        let now = Instant::now();
        let mut t = Track::new(2);
        assert_eq!(texts(&t.live(3, event(3), now)), ["3"]);
        t.replay_begin();
        t.replayed_change("m2", 7);
        assert!(t.live_change("m2", 2, 7, event(70), now).is_empty(), "history sent m2 at change 7");
        assert_eq!(texts(&t.live_change("m2", 2, 9, event(90), now)), ["90"], "a later edit goes out");
        assert_eq!(texts(&t.live_change("m1", 1, 5, event(50), now)), ["50"], "another message's edit goes out");
        // A message already sent live is not re-sent by a replay, so its live edits are not repeats.
        assert!(t.replayed("m3", 3, 8).is_none());
        assert_eq!(texts(&t.live_change("m3", 3, 8, event(80), now)), ["80"]);
        assert_eq!(t.change_mark(), 9);
    }

    #[test]
    fn a_change_of_a_message_not_yet_delivered_follows_it() {
        let now = Instant::now();
        let mut t = Track::new(0);
        // 2 arrives before 1, then 2 is edited: the edit waits behind 2, which waits behind 1.
        assert!(t.live(2, event(2), now).is_empty());
        assert!(t.live_change("m2", 2, 5, event(25), now).is_empty());
        assert_eq!(t.backlog(), 2);
        assert_eq!(texts(&t.live(1, event(1), now)), ["1", "2", "25"]);
        assert_eq!(t.repair_at(), None);
        // If history delivers a message in a state newer than a deferred change, that change is dropped.
        assert!(t.live_change("m3", 3, 6, event(36), now).is_empty());
        assert!(t.live_change("m3", 3, 8, event(38), now).is_empty());
        assert_eq!(texts(&t.replayed("m3", 3, 6).unwrap()), ["38"]);
        assert_eq!(t.backlog(), 0);
    }

    #[test]
    fn a_resume_from_ahead_moves_the_position_up() {
        let now = Instant::now();
        let mut t = Track::new(5);
        // The client read up to 7 by history before this session saw 6 and 7 live.
        assert!(t.replay_done(7).is_empty());
        assert_eq!(t.position(), 7);
        assert!(t.live(6, event(6), now).is_empty());
        assert!(t.live(7, event(7), now).is_empty());
        assert_eq!(texts(&t.live(8, event(8), now)), ["8"]);
    }

    #[test]
    fn a_failed_repair_waits_again() {
        let now = Instant::now();
        let mut t = Track::new(0);
        assert!(t.live(3, event(3), now).is_empty());
        let later = now + Duration::from_secs(1);
        t.postpone(later);
        assert_eq!(t.repair_at(), Some(later + REPAIR_AFTER));
    }
}
