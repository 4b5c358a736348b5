//! Per-conversation delivery state of one session: `message.new` goes out
//! in `seq` order, each once, whatever order the bus brings events in (two
//! sends committed in order may be published in the other order, and a lost
//! event leaves a hole). An early arrival waits briefly for the ones before
//! it; if they do not come, the session reads them from history.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::delivery::Outbound;

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
    held_since: Option<Instant>,
    /// The highest change number delivered (gap repair asks for later ones).
    change_mark: u64,
    /// Live changes at or below this went out in a replay already.
    replayed_to: u64,
}

impl Track {
    /// A conversation whose newest message is `latest` when the session
    /// starts following it.
    pub(crate) fn new(latest: u64) -> Self {
        Self {
            next: latest + 1,
            delivered_from: latest + 1,
            held: BTreeMap::new(),
            held_since: None,
            change_mark: 0,
            replayed_to: 0,
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

    /// A live `message.new`: what to send now, in order (empty when it is
    /// a duplicate or has to wait).
    pub(crate) fn live(&mut self, seq: u64, change: u64, event: Arc<Outbound>, now: Instant) -> Vec<Arc<Outbound>> {
        if seq < self.next {
            return Vec::new();
        }
        self.change_mark = self.change_mark.max(change);
        if seq > self.next {
            self.held.insert(seq, event);
            self.held_since.get_or_insert(now);
            return Vec::new();
        }
        self.next += 1;
        let mut out = vec![event];
        out.extend(self.release());
        out
    }

    /// Held events that are now next in line.
    fn release(&mut self) -> Vec<Arc<Outbound>> {
        let mut out = Vec::new();
        // Whatever history already delivered is dropped.
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() < self.next {
                entry.remove();
            } else if *entry.key() == self.next {
                out.push(entry.remove());
                self.next += 1;
            } else {
                break;
            }
        }
        if self.held.is_empty() {
            self.held_since = None;
        }
        out
    }

    /// A live edit or deletion: whether to send it.
    pub(crate) fn live_change(&mut self, change: u64) -> bool {
        if change <= self.replayed_to {
            return false;
        }
        self.change_mark = self.change_mark.max(change);
        true
    }

    /// When the wait for a hole ends, if there is one.
    pub(crate) fn repair_at(&self) -> Option<Instant> {
        self.held_since.map(|since| since + REPAIR_AFTER)
    }

    /// A message read from history during a replay or repair: whether to
    /// send it (it is not one this session already sent).
    pub(crate) fn replayed(&mut self, seq: u64, change: u64) -> bool {
        self.change_mark = self.change_mark.max(change);
        self.replayed_to = self.replayed_to.max(change);
        if seq >= self.delivered_from && seq < self.next {
            return false;
        }
        self.next = self.next.max(seq + 1);
        true
    }

    /// A change read from history: remembered so its live copy is skipped.
    pub(crate) fn replayed_change(&mut self, change: u64) {
        self.change_mark = self.change_mark.max(change);
        self.replayed_to = self.replayed_to.max(change);
    }

    /// Ends a replay from `from` (the client has everything up to it):
    /// every `seq` above it has now gone out, and held events that follow
    /// are returned, in order.
    pub(crate) fn replay_done(&mut self, from: u64) -> Vec<Arc<Outbound>> {
        self.delivered_from = self.delivered_from.min(from + 1);
        self.release()
    }
}

#[cfg(test)]
mod tests {
    use axum::extract::ws::Utf8Bytes;

    use super::*;
    use crate::realtime::delivery::Kind;

    fn event(seq: u64) -> Arc<Outbound> {
        Arc::new(Outbound { kind: Kind::Plain, text: Utf8Bytes::from(seq.to_string()) })
    }

    fn texts(events: &[Arc<Outbound>]) -> Vec<String> {
        events.iter().map(|e| e.text.as_str().to_owned()).collect()
    }

    #[test]
    fn in_order_events_go_out_at_once_and_duplicates_never() {
        let now = Instant::now();
        let mut t = Track::new(4);
        assert_eq!(texts(&t.live(5, 0, event(5), now)), ["5"]);
        assert!(t.live(5, 0, event(5), now).is_empty());
        assert!(t.live(3, 0, event(3), now).is_empty());
        assert_eq!(t.position(), 5);
        assert_eq!(t.repair_at(), None);
    }

    #[test]
    fn an_early_event_waits_for_the_one_before_it() {
        let now = Instant::now();
        let mut t = Track::new(0);
        assert!(t.live(2, 0, event(2), now).is_empty());
        assert!(t.live(3, 0, event(3), now).is_empty());
        assert_eq!(t.repair_at(), Some(now + REPAIR_AFTER));
        assert_eq!(texts(&t.live(1, 0, event(1), now)), ["1", "2", "3"]);
        assert_eq!(t.repair_at(), None);
    }

    #[test]
    fn history_fills_a_hole_and_held_events_follow_without_repeats() {
        let now = Instant::now();
        let mut t = Track::new(0);
        assert_eq!(texts(&t.live(1, 0, event(1), now)), ["1"]);
        assert!(t.live(4, 0, event(4), now).is_empty());
        // The repair reads 2, 3 and 4 from history.
        assert!(!t.replayed(1, 0));
        assert!(t.replayed(2, 0));
        assert!(t.replayed(3, 0));
        assert!(t.replayed(4, 0));
        assert!(t.replay_done(1).is_empty(), "4 went out from history; the held copy is dropped");
        assert!(t.live(4, 0, event(4), now).is_empty());
        assert_eq!(t.position(), 4);
    }

    #[test]
    fn a_resume_skips_what_went_out_live_before_it() {
        let now = Instant::now();
        // Following from 10; 11 went out live before the client's resume from 5.
        let mut t = Track::new(10);
        assert_eq!(texts(&t.live(11, 0, event(11), now)), ["11"]);
        let sent: Vec<u64> = (6..=12).filter(|seq| t.replayed(*seq, 0)).collect();
        assert_eq!(sent, [6, 7, 8, 9, 10, 12]);
        assert!(t.replay_done(5).is_empty());
        assert!(t.live(12, 0, event(12), now).is_empty());
        // After the resume the whole range counts as delivered.
        assert!(!t.replayed(7, 0));
    }

    #[test]
    fn changes_replayed_are_not_repeated_live() {
        let mut t = Track::new(3);
        t.replayed_change(7);
        assert!(!t.live_change(7));
        assert!(!t.live_change(6));
        assert!(t.live_change(8));
        assert_eq!(t.change_mark(), 8);
    }
}
