//! Single use of client assertions (RFC 7523 §3 item 7): every accepted `jti` is recorded
//! until the assertion's `exp`, in the store, so that every instance sharing the store sees it.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::StoreError;

/// Records the `jti` of every accepted client assertion until it expires.
///
/// Implementations must make [`AssertionReplayStore::record_jti`] atomic: of any number of
/// concurrent calls (from any number of processes) for one `(client_id, jti)`, exactly one
/// returns `true` until `expires_at` has passed.
#[async_trait::async_trait]
pub trait AssertionReplayStore: Send + Sync + std::fmt::Debug + 'static {
    /// Records `jti` of `client_id` until `expires_at` (seconds since the epoch). `true` when
    /// this is its first use (or its previous record expired by `now`), `false` for a replay.
    /// Records that expired by `now` may be purged.
    async fn record_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
}

/// Replay records in memory, for one process (tests, `memory:` stores).
#[derive(Debug, Default)]
pub struct MemoryReplayStore {
    inner: Mutex<ReplayMap>,
}

#[derive(Debug, Default)]
struct ReplayMap {
    /// `(client_id, jti)` → `expires_at`.
    records: HashMap<(String, String), i64>,
    /// The map is purged of expired records when it grows past this.
    purge_at: usize,
}

impl MemoryReplayStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records are kept (expired ones included until the next purge).
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether no record is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReplayMap> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl AssertionReplayStore for MemoryReplayStore {
    async fn record_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut map = self.lock();
        if map.records.len() >= map.purge_at {
            map.records.retain(|_, exp| *exp > now);
            map.purge_at = (map.records.len() * 2).max(1024);
        }
        let key = (client_id.to_owned(), jti.to_owned());
        match map.records.get(&key) {
            Some(exp) if *exp > now => Ok(false),
            _ => {
                map.records.insert(key, expires_at);
                Ok(true)
            }
        }
    }
}
