//! Last activity, written in batches off the send path.
//!
//! Every message moves its conversation's last activity (what "most recent
//! first" sorts by). Written as it comes, that is a second commit per send
//! in a second database. Here a send only notes the time; the notes of one
//! conversation merge (the latest wins), and they are written together
//! [`BATCH_WINDOW`] after the first of them, or before any read of this
//! service that shows activity, so a caller always reads its own sends'
//! order. What a process had noted but not written when it was killed is
//! lost: a conversation then sorts by an earlier message until its next
//! one (the messages themselves are in their own store, untouched). With
//! several replicas of this service, another replica's reads see a send's
//! activity within the window.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chatterbox_types::{ConversationId, Timestamp, UserId};

use crate::store::ConversationStore;

/// How long a noted activity waits for others to be written with it.
pub const BATCH_WINDOW: Duration = Duration::from_millis(50);

/// Notes not yet written: by conversation and author, the latest time
/// (kept per author, so a note the store will refuse, from someone who is
/// not a participant, never hides one it would take).
type Notes = HashMap<(ConversationId, UserId), Timestamp>;

/// Activity noted and not yet written, and the writing of it.
pub(crate) struct Activity {
    store: Arc<dyn ConversationStore>,
    noted: Mutex<Notes>,
    /// Held while a batch is written: a read that flushes waits for a batch
    /// taken before it, not only for what is still noted.
    writing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Activity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Activity").field("noted", &self.noted().len()).finish_non_exhaustive()
    }
}

impl Activity {
    pub(crate) fn new(store: Arc<dyn ConversationStore>) -> Arc<Self> {
        Arc::new(Self { store, noted: Mutex::default(), writing: tokio::sync::Mutex::new(()) })
    }

    fn noted(&self) -> std::sync::MutexGuard<'_, Notes> {
        self.noted.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes that `by` was active in `conversation` at `at`; written within
    /// [`BATCH_WINDOW`] (only if `by` takes part, and only forward).
    pub(crate) fn note(self: &Arc<Self>, conversation: ConversationId, by: UserId, at: Timestamp) {
        let first = {
            let mut noted = self.noted();
            let first = noted.is_empty();
            let latest = noted.entry((conversation, by)).or_insert(at);
            *latest = (*latest).max(at);
            first
        };
        if first {
            // One timer per batch, not per send.
            let this = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(BATCH_WINDOW).await;
                this.flush().await;
            });
        }
    }

    /// Writes everything noted so far; returns once it, and any batch
    /// taken before, is in the store. The writing runs in a task of its
    /// own: a caller that goes away (a cancelled read) cannot drop a batch
    /// half written. Notes whose write failed are noted again, for the next
    /// batch; a stale activity time only misorders a list, so the failure
    /// is logged, not returned to a read that happened to flush.
    pub(crate) async fn flush(self: &Arc<Self>) {
        // The common case on a read: nothing noted, nothing being written.
        if self.noted().is_empty() && self.writing.try_lock().is_ok() {
            return;
        }
        let this = self.clone();
        if let Err(e) = tokio::spawn(async move { this.write_batch().await }).await {
            tracing::warn!(error = %e, "writing activity stopped");
        }
    }

    async fn write_batch(self: &Arc<Self>) {
        let _writing = self.writing.lock().await;
        let batch: Vec<_> = std::mem::take(&mut *self.noted()).into_iter().collect();
        // Each write joins the store's own group commit: one transaction.
        let writes = batch.iter().map(|&((id, by), at)| self.store.record_activity(id, by, at));
        let results = futures::future::join_all(writes).await;
        for (((id, by), at), result) in batch.into_iter().zip(results) {
            if let Err(e) = result {
                tracing::warn!(conversation = %id, error = %e, "could not record activity; kept for the next batch");
                self.note(id, by, at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Conversation, Kind, SqliteConversationStore};

    async fn setup() -> (Arc<dyn ConversationStore>, Conversation) {
        let store: Arc<dyn ConversationStore> = Arc::new(SqliteConversationStore::in_memory().unwrap());
        let member = UserId::generate();
        let at = Timestamp::from_millis(10);
        let c = Conversation {
            id: ConversationId::generate(),
            kind: Kind::Group,
            name: "g".into(),
            description: String::new(),
            unique_key: "group:g".into(),
            name_key: "g".into(),
            participants: vec![member],
            admins: vec![member],
            created_by: member,
            created_at: at,
            updated_at: at,
            last_activity: at,
        };
        store.create(&c).await.unwrap();
        (store, c)
    }

    async fn last_activity(store: &Arc<dyn ConversationStore>, id: ConversationId) -> i64 {
        store.get(id).await.unwrap().unwrap().last_activity.millis()
    }

    #[tokio::test]
    async fn notes_merge_and_a_flush_writes_the_latest_of_a_participant() {
        let (store, c) = setup().await;
        let activity = Activity::new(store.clone());
        let member = c.participants[0];
        activity.note(c.id, member, Timestamp::from_millis(300));
        activity.note(c.id, member, Timestamp::from_millis(200));
        assert_eq!(last_activity(&store, c.id).await, 10, "not written yet");
        activity.flush().await;
        assert_eq!(last_activity(&store, c.id).await, 300, "the latest note wins");

        // A stranger's newer note neither moves it nor hides a member's.
        activity.note(c.id, member, Timestamp::from_millis(350));
        activity.note(c.id, UserId::generate(), Timestamp::from_millis(400));
        activity.flush().await;
        assert_eq!(last_activity(&store, c.id).await, 350);
    }

    #[tokio::test]
    async fn what_is_noted_is_written_within_the_window_without_a_read() {
        let (store, c) = setup().await;
        let activity = Activity::new(store.clone());
        activity.note(c.id, c.participants[0], Timestamp::from_millis(500));
        let deadline = tokio::time::Instant::now() + BATCH_WINDOW * 20;
        while last_activity(&store, c.id).await != 500 {
            assert!(tokio::time::Instant::now() < deadline, "never written");
            tokio::time::sleep(BATCH_WINDOW / 5).await;
        }
    }
}
