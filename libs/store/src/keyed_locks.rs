//! Async locks by key, for writes a MongoDB-compatible server may not make
//! atomic.
//!
//! MongoDB applies an update to one document atomically. FerretDB (what the
//! tests run on) reads the document, applies the update and writes it back
//! without a transaction around the two, so two updates of one document at
//! once can lose one (a `$pull` undone by a concurrent `$set`). A store
//! takes the lock of the document it changes, so this process never sends
//! two such updates at once; several processes on FerretDB still can (a
//! limit of the test stand-in, not of MongoDB).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// One lock per key, holding a `T`, made on first use and forgotten once
/// no one holds or waits for it.
#[derive(Debug)]
pub struct KeyedLocks<K, T> {
    locks: Mutex<HashMap<K, Weak<tokio::sync::Mutex<T>>>>,
}

impl<K, T> Default for KeyedLocks<K, T> {
    fn default() -> Self {
        Self { locks: Mutex::new(HashMap::new()) }
    }
}

/// Past this many keys, those no one uses are forgotten.
const SWEEP_AT: usize = 1024;

impl<K: Eq + Hash + Clone, T: Default> KeyedLocks<K, T> {
    /// The lock of `key` (the same one for everyone using it now).
    pub fn for_key(&self, key: &K) -> Arc<tokio::sync::Mutex<T>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lock) = locks.get(key).and_then(Weak::upgrade) {
            return lock;
        }
        if locks.len() >= SWEEP_AT {
            locks.retain(|_, weak| weak.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(T::default()));
        locks.insert(key.clone(), Arc::downgrade(&lock));
        lock
    }

    /// Waits for the lock of `key` and holds it until the guard is dropped.
    pub async fn lock(&self, key: &K) -> tokio::sync::OwnedMutexGuard<T> {
        self.for_key(key).lock_owned().await
    }

    /// How many keys are remembered (used or not yet swept).
    pub fn len(&self) -> usize {
        self.locks.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_key_one_lock_while_in_use_and_forgotten_after() {
        let locks: KeyedLocks<u32, u64> = KeyedLocks::default();
        let a = locks.for_key(&1);
        *a.lock().await = 7;
        assert_eq!(*locks.for_key(&1).lock().await, 7, "the same lock while someone holds it");
        assert!(!Arc::ptr_eq(&a, &locks.for_key(&2)), "another key, another lock");
        drop(a);
        assert_eq!(*locks.for_key(&1).lock().await, 0, "a lock no one held is made afresh");

        for key in 0..SWEEP_AT as u32 + 10 {
            drop(locks.for_key(&key));
        }
        assert!(locks.len() <= SWEEP_AT, "unused keys are swept: {}", locks.len());
    }

    #[tokio::test]
    async fn holders_of_one_key_take_turns() {
        let locks: Arc<KeyedLocks<&str, Vec<u32>>> = Arc::default();
        let first = locks.for_key(&"c");
        let held = first.lock().await;
        let waiter = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.for_key(&"c").lock().await.push(2) })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "the second waits for the first");
        drop(held);
        waiter.await.unwrap();
        assert_eq!(*first.lock().await, [2]);
    }
}
