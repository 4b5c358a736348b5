//! A session's answers still owed: the frames it took in, answered in the
//! order they came while its loop goes on delivering events.
//!
//! A frame that waits on a service (`message.send`, `read`, `presence.set`)
//! becomes a future here instead of stopping the loop, so deliveries keep
//! flowing while a send commits. The futures run one after the other: a
//! client's sends commit in the order it sent them, and every answer
//! (`ack`, `pong`, `error`) comes back in frame order, as if each frame had
//! been handled before the next was read. At most [`MAX_OWED`] wait; beyond
//! that the session stops reading frames and TCP holds the client back.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

use axum::extract::ws::Utf8Bytes;
use sync_wrapper::SyncWrapper;

/// Frames a session takes in before their answers while earlier ones wait.
pub(crate) const MAX_OWED: usize = 32;

/// The answer to one frame: a frame to send, or nothing to say.
pub(crate) type Answer = Pin<Box<dyn Future<Output = Option<Utf8Bytes>> + Send>>;

/// Answers owed, oldest first; only the oldest runs.
#[derive(Default)]
pub(crate) struct Owed {
    /// Behind a wrapper that is `Sync` because it hands out only exclusive
    /// access: the futures need not be `Sync` for the session to be.
    answers: SyncWrapper<VecDeque<Answer>>,
    /// How many are owed, readable without exclusive access.
    count: usize,
}

impl Owed {
    /// Owes `answer` after every answer owed already.
    pub(crate) fn push(&mut self, answer: Answer) {
        self.answers.get_mut().push_back(answer);
        self.count += 1;
    }

    /// Owes a frame that is ready now (it still waits its turn).
    pub(crate) fn push_ready(&mut self, frame: Utf8Bytes) {
        self.push(Box::pin(std::future::ready(Some(frame))));
    }

    /// Whether nothing is owed.
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether the session should read no more frames for now.
    pub(crate) fn is_full(&self) -> bool {
        self.count >= MAX_OWED
    }

    /// The oldest answer once it is ready; pending for ever when nothing is
    /// owed. Cancel-safe: dropped before it resolves, nothing is lost.
    pub(crate) fn next(&mut self) -> impl Future<Output = Option<Utf8Bytes>> + '_ {
        poll_fn(|cx| {
            let answers = self.answers.get_mut();
            let Some(oldest) = answers.front_mut() else { return Poll::Pending };
            let answer = std::task::ready!(oldest.as_mut().poll(cx));
            answers.pop_front();
            self.count -= 1;
            Poll::Ready(answer)
        })
    }
}

impl std::fmt::Debug for Owed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owed").field("count", &self.count).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    fn text(s: &'static str) -> Utf8Bytes {
        Utf8Bytes::from_static(s)
    }

    #[tokio::test]
    async fn answers_come_in_order_and_run_one_at_a_time() {
        let mut owed = Owed::default();
        let started = Arc::new(AtomicUsize::new(0));
        let slow = {
            let started = started.clone();
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                Some(text("slow"))
            }
        };
        let quick = {
            let started = started.clone();
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                Some(text("quick"))
            }
        };
        owed.push(Box::pin(slow));
        owed.push(Box::pin(quick));
        owed.push(Box::pin(async { None }));
        owed.push_ready(text("ready"));

        // Polled once, the first has started and the second has not.
        assert!(tokio::time::timeout(Duration::from_millis(10), owed.next()).await.is_err());
        assert_eq!(started.load(Ordering::SeqCst), 1);
        assert_eq!(owed.next().await, Some(text("slow")));
        assert_eq!(owed.next().await, Some(text("quick")));
        assert_eq!(owed.next().await, None);
        assert_eq!(owed.next().await, Some(text("ready")));
        assert!(owed.is_empty());
        assert!(tokio::time::timeout(Duration::from_millis(20), owed.next()).await.is_err(), "nothing owed: pending");
    }

    #[test]
    fn it_fills_up_at_the_bound() {
        let mut owed = Owed::default();
        for _ in 0..MAX_OWED - 1 {
            owed.push_ready(text("x"));
            assert!(!owed.is_full());
        }
        owed.push_ready(text("x"));
        assert!(owed.is_full());
    }
}
