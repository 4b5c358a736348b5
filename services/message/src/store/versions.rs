//! Versions of each conversation's history, for stores whose every write
//! goes through this process (SQLite: one writing connection). A reader that
//! takes a conversation's version *before* reading a page of it, and finds the
//! same version later, knows no write to that conversation has been
//! acknowledged since: what it rendered from the page is still current. The
//! gateway keeps rendered history pages on that basis.
//!
//! Versions live in a fixed table of counters indexed by a hash of the
//! conversation id: bounded memory, one atomic add per write. Two
//! conversations sharing a counter only invalidate each other's pages more
//! often than needed, never too seldom.

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, Ordering};

use chatterbox_types::ConversationId;

/// Counters in the table (1 MiB of them would be 131,072; 16,384 are 128 KiB).
const SLOTS: usize = 16_384;

/// One counter per slot, bumped after every write to a conversation of it.
pub(crate) struct HistoryVersions {
    slots: Box<[AtomicU64]>,
    hasher: std::hash::RandomState,
}

impl std::fmt::Debug for HistoryVersions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryVersions").field("slots", &self.slots.len()).finish()
    }
}

impl Default for HistoryVersions {
    fn default() -> Self {
        Self { slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(), hasher: std::hash::RandomState::new() }
    }
}

impl HistoryVersions {
    fn slot(&self, conversation: ConversationId) -> &AtomicU64 {
        let mut h = self.hasher.build_hasher();
        conversation.hash(&mut h);
        let i = (std::hash::Hasher::finish(&h) as usize) % self.slots.len();
        &self.slots[i]
    }

    /// The version of `conversation`'s history now.
    pub(crate) fn current(&self, conversation: ConversationId) -> u64 {
        self.slot(conversation).load(Ordering::Acquire)
    }

    /// Records that a write to `conversation` ended (committed, or failed in
    /// a way that may have committed). Called before the write is
    /// acknowledged, so a reader told of the write cannot see the old version.
    pub(crate) fn bump(&self, conversation: ConversationId) {
        self.slot(conversation).fetch_add(1, Ordering::AcqRel);
    }

    /// Records a write whose conversation is not known (a failed edit or
    /// deletion): every version moves.
    pub(crate) fn bump_all(&self) {
        for slot in &self.slots {
            slot.fetch_add(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_moves_its_conversations_version_and_bump_all_moves_every_one() {
        let versions = HistoryVersions::default();
        let (a, b) = (ConversationId::generate(), ConversationId::generate());
        let (a0, b0) = (versions.current(a), versions.current(b));
        versions.bump(a);
        assert_ne!(versions.current(a), a0);
        // b moves only if it shares a's counter (a collision), never backwards.
        assert!(versions.current(b) >= b0);
        let (a1, b1) = (versions.current(a), versions.current(b));
        versions.bump_all();
        assert_ne!(versions.current(a), a1);
        assert_ne!(versions.current(b), b1);
    }
}
