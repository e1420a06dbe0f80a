//! The shared cache of validated documents: kept in the configured store with their expiry,
//! so that every instance on one store, and an instance after a restart, reuses them.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::metadata::ClientMetadata;
use crate::store::StoreError;

/// A validated document as the cache keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedDocument {
    /// The document URL (the client id), exactly as presented.
    pub url: String,
    /// The validated metadata (policies applied; never a client secret).
    pub metadata: ClientMetadata,
    /// When it was fetched (seconds since the epoch).
    pub fetched_at: i64,
    /// When it must be fetched again (seconds since the epoch).
    pub expires_at: i64,
}

/// Storage of validated metadata documents, shared by the instances on one store.
///
/// [`MetadataDocumentCache::get_document`] returns a document even after its expiry: the
/// resolver decides what an expired one is still good for (`stale_if_error`, change audit).
#[async_trait::async_trait]
pub trait MetadataDocumentCache: Send + Sync {
    /// The document kept for `url`, expired or not.
    async fn get_document(&self, url: &str) -> Result<Option<CachedDocument>, StoreError>;
    /// Keeps `doc`, replacing what was kept for its URL.
    async fn put_document(&self, doc: &CachedDocument) -> Result<(), StoreError>;
    /// Up to `limit` kept documents, by URL.
    async fn list_documents(&self, limit: usize) -> Result<Vec<CachedDocument>, StoreError>;
    /// Drops the document kept for `url`; `false` if there was none.
    async fn evict_document(&self, url: &str) -> Result<bool, StoreError>;
}

/// A process-local [`MetadataDocumentCache`] (the default, and the one of the memory store).
/// Holds at most `capacity` documents; beyond it, the one expiring first is dropped.
#[derive(Debug)]
pub struct MemoryDocumentCache {
    docs: Mutex<HashMap<String, CachedDocument>>,
    capacity: usize,
}

impl MemoryDocumentCache {
    /// An empty cache of at most `capacity` documents.
    pub fn new(capacity: usize) -> Self {
        Self {
            docs: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedDocument>> {
        self.docs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for MemoryDocumentCache {
    fn default() -> Self {
        Self::new(10_000)
    }
}

#[async_trait::async_trait]
impl MetadataDocumentCache for MemoryDocumentCache {
    async fn get_document(&self, url: &str) -> Result<Option<CachedDocument>, StoreError> {
        Ok(self.lock().get(url).cloned())
    }

    async fn put_document(&self, doc: &CachedDocument) -> Result<(), StoreError> {
        let mut docs = self.lock();
        if docs.len() >= self.capacity && !docs.contains_key(&doc.url) {
            let first = docs
                .values()
                .min_by_key(|d| d.expires_at)
                .map(|d| d.url.clone());
            if let Some(url) = first {
                docs.remove(&url);
            }
        }
        docs.insert(doc.url.clone(), doc.clone());
        Ok(())
    }

    async fn list_documents(&self, limit: usize) -> Result<Vec<CachedDocument>, StoreError> {
        let docs = self.lock();
        let mut all: Vec<CachedDocument> = docs.values().cloned().collect();
        all.sort_by(|a, b| a.url.cmp(&b.url));
        all.truncate(limit);
        Ok(all)
    }

    async fn evict_document(&self, url: &str) -> Result<bool, StoreError> {
        Ok(self.lock().remove(url).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(url: &str, expires_at: i64) -> CachedDocument {
        CachedDocument {
            url: url.into(),
            metadata: ClientMetadata::default(),
            fetched_at: 0,
            expires_at,
        }
    }

    #[tokio::test]
    async fn keeps_lists_evicts_and_bounds() {
        let c = MemoryDocumentCache::new(2);
        c.put_document(&doc("https://b/x", 10)).await.unwrap();
        c.put_document(&doc("https://a/x", 5)).await.unwrap();
        c.put_document(&doc("https://c/x", 20)).await.unwrap();
        let urls: Vec<String> = c
            .list_documents(10)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.url)
            .collect();
        assert_eq!(urls, ["https://b/x", "https://c/x"]);
        assert!(c.evict_document("https://b/x").await.unwrap());
        assert!(!c.evict_document("https://b/x").await.unwrap());
        assert_eq!(
            c.get_document("https://c/x")
                .await
                .unwrap()
                .unwrap()
                .expires_at,
            20
        );
    }
}
