//! Usage signals and tombstones: when each client was last authenticated or resolved for
//! the host, and which client ids were pruned or deleted (kept for a while, id only, so that
//! a host can answer "this registration expired; register again" rather than "unknown").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::resolve::ClientSource;
use crate::store::{Store, StoreError};

/// Keeps `last_used_at` of clients and tombstones of removed client ids.
#[async_trait::async_trait]
pub trait ClientUsageStore: Send + Sync + std::fmt::Debug + 'static {
    /// Records that `client_id` was used at `at` (a later time replaces an earlier one,
    /// never the reverse).
    async fn record_use(&self, client_id: &str, at: i64) -> Result<(), StoreError>;

    /// `last_used_at` of each of `client_ids` that has one.
    async fn last_used(&self, client_ids: &[String]) -> Result<HashMap<String, i64>, StoreError>;

    /// `last_used_at` of one client, if it has one ([`ClientUsageStore::last_used`] of one id,
    /// which stores may answer more cheaply).
    async fn last_used_of(&self, client_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .last_used(&[client_id.to_owned()])
            .await?
            .get(client_id)
            .copied())
    }

    /// Remembers that `client_id` was removed, until `until` (seconds since the epoch), and
    /// forgets its `last_used_at`. Tombstones that ended by then may be purged.
    async fn add_tombstone(&self, client_id: &str, until: i64) -> Result<(), StoreError>;

    /// Whether `client_id` has a tombstone still kept at `now`.
    async fn tombstoned(&self, client_id: &str, now: i64) -> Result<bool, StoreError>;

    /// Removes the tombstone of `client_id` (a client registered again under that id).
    async fn remove_tombstone(&self, client_id: &str) -> Result<(), StoreError>;
}

/// Usage records and tombstones in memory, for one process.
#[derive(Debug, Default)]
pub struct MemoryUsageStore {
    inner: Mutex<UsageMaps>,
}

#[derive(Debug, Default)]
struct UsageMaps {
    last_used: HashMap<String, i64>,
    tombstones: HashMap<String, i64>,
}

impl MemoryUsageStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, UsageMaps> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl ClientUsageStore for MemoryUsageStore {
    async fn record_use(&self, client_id: &str, at: i64) -> Result<(), StoreError> {
        let mut maps = self.lock();
        let last = maps.last_used.entry(client_id.to_owned()).or_insert(at);
        *last = (*last).max(at);
        Ok(())
    }

    async fn last_used(&self, client_ids: &[String]) -> Result<HashMap<String, i64>, StoreError> {
        let maps = self.lock();
        Ok(client_ids
            .iter()
            .filter_map(|id| maps.last_used.get(id).map(|at| (id.clone(), *at)))
            .collect())
    }

    async fn last_used_of(&self, client_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.lock().last_used.get(client_id).copied())
    }

    async fn add_tombstone(&self, client_id: &str, until: i64) -> Result<(), StoreError> {
        let mut maps = self.lock();
        maps.last_used.remove(client_id);
        maps.tombstones.insert(client_id.to_owned(), until);
        Ok(())
    }

    async fn tombstoned(&self, client_id: &str, now: i64) -> Result<bool, StoreError> {
        let mut maps = self.lock();
        maps.tombstones.retain(|_, until| *until > now);
        Ok(maps.tombstones.contains_key(client_id))
    }

    async fn remove_tombstone(&self, client_id: &str) -> Result<(), StoreError> {
        self.lock().tombstones.remove(client_id);
        Ok(())
    }
}

/// Records uses cheaply: at most one store write per client per interval (the first use
/// in each interval writes; the others only touch an in-process map). A registered client
/// that is used is also marked managed, so pruning never removes it as abandoned.
#[derive(Clone)]
pub struct UsageRecorder {
    store: Arc<dyn Store>,
    usage: Arc<dyn ClientUsageStore>,
    recent: moka::future::Cache<String, ()>,
}

impl std::fmt::Debug for UsageRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageRecorder").finish_non_exhaustive()
    }
}

impl UsageRecorder {
    /// Writes to `store` (`managed_at`) and `usage` (`last_used_at`) at most once per client
    /// per `interval`; remembers at most `capacity` recently recorded clients.
    pub fn new(
        store: Arc<dyn Store>,
        usage: Arc<dyn ClientUsageStore>,
        interval: Duration,
        capacity: u64,
    ) -> Self {
        Self {
            store,
            usage,
            recent: moka::future::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(interval.max(Duration::from_millis(1)))
                .build(),
        }
    }

    /// Records that `client_id` was used at `now`. A failed write is logged, never returned:
    /// a usage record is not worth refusing a client for.
    pub async fn record(&self, client_id: &str, source: ClientSource, now: i64) {
        if source != ClientSource::Registration || self.recent.contains_key(client_id) {
            return;
        }
        self.recent.insert(client_id.to_owned(), ()).await;
        let marked = self.store.mark_managed(client_id, now).await;
        let used = self.usage.record_use(client_id, now).await;
        if let Err(e) = marked.and(used) {
            // Try again on the next use.
            self.recent.invalidate(client_id).await;
            tracing::warn!(client_id = %client_id, error = %e, "client usage could not be recorded");
        }
    }
}
