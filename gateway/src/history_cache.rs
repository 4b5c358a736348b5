//! History pages as rendered (the JSON body of `GET .../messages`), kept
//! while their conversation's history version stands.
//!
//! The message service says, after checking the caller may read the
//! conversation, which version its history is at; a page rendered from a
//! read that began after that version was taken is served again as long as
//! the version is unchanged, since every write that could change the page
//! moves the version before it is acknowledged. Where the version cannot be
//! known (the message service in another process), nothing is kept.
//!
//! Bounded by bytes, in shards each with its own lock; the oldest pages go
//! first.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

/// Shards of the cache (each its own lock).
const SHARDS: usize = 16;

/// What a page costs besides its body: its key and the bookkeeping.
const ENTRY_OVERHEAD: usize = 160;

/// Which page: a conversation, a window and a size, and whose: a page
/// showing reactions says for its reader whether they reacted (`me`), so it
/// is kept for that reader alone; any other page is the same for everyone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PageKey {
    pub(crate) conversation: String,
    pub(crate) before: Option<u64>,
    pub(crate) after: Option<u64>,
    pub(crate) limit: u32,
    pub(crate) reader: Option<chatterbox_types::UserId>,
}

/// Rendered pages, by key, with the version each was rendered at.
pub(crate) struct HistoryCache {
    shards: Box<[Mutex<Shard>]>,
    shard_budget: usize,
    hasher: std::hash::RandomState,
}

impl std::fmt::Debug for HistoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryCache").field("budget", &(self.shard_budget * self.shards.len())).finish()
    }
}

#[derive(Default)]
struct Shard {
    pages: HashMap<PageKey, Page>,
    /// Keys in the order they came in (each once).
    order: VecDeque<PageKey>,
    bytes: usize,
}

struct Page {
    version: u64,
    body: Bytes,
}

impl HistoryCache {
    /// A cache holding about `budget` bytes of pages (0: none).
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            shard_budget: budget / SHARDS,
            hasher: std::hash::RandomState::new(),
        }
    }

    fn shard(&self, key: &PageKey) -> &Mutex<Shard> {
        &self.shards[(self.hasher.hash_one(key) as usize) % self.shards.len()]
    }

    /// The page rendered at `version`, if it is kept.
    pub(crate) fn get(&self, key: &PageKey, version: u64) -> Option<Bytes> {
        let shard = self.shard(key).lock().unwrap_or_else(PoisonError::into_inner);
        shard.pages.get(key).filter(|page| page.version == version).map(|page| page.body.clone())
    }

    /// Keeps `body`, rendered from a read that began after `version` was
    /// taken; replaces what was kept under `key`. A page bigger than a
    /// quarter of a shard is not kept.
    pub(crate) fn put(&self, key: PageKey, version: u64, body: Bytes) {
        let cost = body.len() + ENTRY_OVERHEAD;
        if cost > self.shard_budget / 4 {
            return;
        }
        let mut guard = self.shard(&key).lock().unwrap_or_else(PoisonError::into_inner);
        let shard = &mut *guard;
        match shard.pages.get_mut(&key) {
            Some(page) => {
                // Never go back to an older version (a slow reader finishing late).
                if page.version > version {
                    return;
                }
                shard.bytes = shard.bytes + body.len() - page.body.len();
                *page = Page { version, body };
            }
            None => {
                shard.bytes += cost;
                shard.order.push_back(key.clone());
                shard.pages.insert(key, Page { version, body });
            }
        }
        while shard.bytes > self.shard_budget {
            let Some(oldest) = shard.order.pop_front() else { break };
            if let Some(page) = shard.pages.remove(&oldest) {
                shard.bytes -= page.body.len() + ENTRY_OVERHEAD;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(conversation: &str) -> PageKey {
        PageKey { conversation: conversation.to_owned(), before: None, after: None, limit: 50, reader: None }
    }

    #[test]
    fn a_page_is_served_at_its_version_only() {
        let cache = HistoryCache::new(1 << 20);
        cache.put(key("a"), 3, Bytes::from_static(b"[3]"));
        assert_eq!(cache.get(&key("a"), 3).as_deref(), Some(&b"[3]"[..]));
        assert_eq!(cache.get(&key("a"), 4), None, "a newer version misses");
        assert_eq!(cache.get(&key("b"), 3), None);
        let other_window = PageKey { before: Some(10), ..key("a") };
        assert_eq!(cache.get(&other_window, 3), None);
        cache.put(key("a"), 4, Bytes::from_static(b"[4]"));
        assert_eq!(cache.get(&key("a"), 4).as_deref(), Some(&b"[4]"[..]));
        // A late render of an older version does not replace a newer one.
        cache.put(key("a"), 3, Bytes::from_static(b"[3]"));
        assert_eq!(cache.get(&key("a"), 4).as_deref(), Some(&b"[4]"[..]));
    }

    #[test]
    fn the_cache_keeps_to_its_budget_dropping_the_oldest_pages_first() {
        let budget = SHARDS * 4 * (1000 + ENTRY_OVERHEAD);
        let cache = HistoryCache::new(budget);
        let body = Bytes::from(vec![b'x'; 1000]);
        for i in 0..1000 {
            cache.put(key(&format!("c{i}")), 1, body.clone());
        }
        let kept: Vec<usize> = (0..1000).filter(|i| cache.get(&key(&format!("c{i}")), 1).is_some()).collect();
        assert!(kept.len() <= SHARDS * 4, "{} pages kept", kept.len());
        assert!(!kept.is_empty());
        assert!(kept.contains(&999), "the newest page stays");
        for shard in cache.shards.iter() {
            let shard = shard.lock().unwrap();
            assert!(shard.bytes <= cache.shard_budget);
            assert_eq!(shard.bytes, shard.pages.values().map(|p| p.body.len() + ENTRY_OVERHEAD).sum::<usize>());
        }
        // Too big for the cache: not kept.
        cache.put(key("big"), 1, Bytes::from(vec![b'x'; budget]));
        assert_eq!(cache.get(&key("big"), 1), None);
    }
}
