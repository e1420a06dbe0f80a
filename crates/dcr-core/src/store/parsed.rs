//! Parsed metadata kept between reads, so that reading an unchanged client again does not parse
//! its stored JSON again (about 26,000 instructions for a typical client).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{StoreError, decode_metadata};
use crate::metadata::ClientMetadata;

/// The parsed metadata of the clients read last (at most a fixed number of them, the oldest
/// entry dropped first), each reused only when the JSON text a store read now is byte for byte
/// the text it was parsed from. A store that reads the text on every request (and compares it)
/// can therefore never answer stale metadata, even when another process changed the record.
///
/// Shared by the stores that keep metadata as JSON text: the memory store and SQLite.
pub struct ParsedMetadataCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<Arc<str>, ClientMetadata>,
    /// The ids in `by_id`, each once, oldest entry first.
    order: VecDeque<Arc<str>>,
}

impl ParsedMetadataCache {
    /// How many clients keep their parsed metadata (about 3 KB each) by default.
    pub const DEFAULT_CAPACITY: usize = 8_192;

    /// A cache of at most `capacity` clients (0: nothing is kept).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity,
        }
    }

    /// The metadata of `client_id` stored as `text`: the kept one if it was parsed from the same
    /// text, else `text` decoded ([`decode_metadata`]) and kept. An undecodable text is
    /// [`StoreError::Undecodable`] and is not kept.
    pub fn decode<T>(&self, client_id: &str, text: T) -> Result<ClientMetadata, StoreError>
    where
        T: AsRef<str> + Into<Arc<str>>,
    {
        if let Some(kept) = self.get(client_id, text.as_ref()) {
            return Ok(kept);
        }
        let metadata = decode_metadata(client_id, text.into())?;
        if self.capacity > 0 {
            let mut inner = self.lock();
            match inner.by_id.get_mut(client_id) {
                Some(slot) => *slot = metadata.clone(),
                None => {
                    let id = Arc::<str>::from(client_id);
                    inner.by_id.insert(id.clone(), metadata.clone());
                    inner.order.push_back(id);
                    if inner.order.len() > self.capacity
                        && let Some(oldest) = inner.order.pop_front()
                    {
                        inner.by_id.remove(&oldest);
                    }
                }
            }
        }
        Ok(metadata)
    }

    /// As [`decode`](Self::decode), but keeps nothing new (for listings, which would
    /// otherwise push out the clients read one by one).
    pub fn decode_unkept<T>(&self, client_id: &str, text: T) -> Result<ClientMetadata, StoreError>
    where
        T: AsRef<str> + Into<Arc<str>>,
    {
        match self.get(client_id, text.as_ref()) {
            Some(kept) => Ok(kept),
            None => decode_metadata(client_id, text.into()),
        }
    }

    /// The kept metadata of `client_id` if it was parsed from `text`; keeps nothing new.
    pub fn get(&self, client_id: &str, text: &str) -> Option<ClientMetadata> {
        let kept = self.lock().by_id.get(client_id).cloned()?;
        // Compared outside the lock. `json()` is the text it was parsed from (the very same
        // text, for the memory store, while the client is unchanged).
        let json = kept.json();
        (std::ptr::eq(&*json, text) || *json == *text).then_some(kept)
    }

    /// How many clients have their metadata kept.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether no client has its metadata kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change leaves `by_id` and `order` consistent before anything can panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for ParsedMetadataCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

/// Never shows the metadata (it may hold client secrets).
impl std::fmt::Debug for ParsedMetadataCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedMetadataCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &ClientMetadata, b: &ClientMetadata) -> bool {
        Arc::ptr_eq(&a.json(), &b.json())
    }

    #[test]
    fn reuses_only_what_was_parsed_from_the_same_text() {
        let cache = ParsedMetadataCache::new(4);
        let a = cache.decode("a", r#"{"client_name":"A"}"#).unwrap();
        let again = cache
            .decode("a", String::from(r#"{"client_name":"A"}"#))
            .unwrap();
        assert!(same(&a, &again), "the same text is not parsed again");
        let changed = cache.decode("a", r#"{"client_name":"B"}"#).unwrap();
        assert!(!same(&a, &changed));
        assert_eq!(changed.json().as_ref(), r#"{"client_name":"B"}"#);
        // The kept entry follows the latest text; the old text is parsed anew.
        let back = cache.decode("a", r#"{"client_name":"A"}"#).unwrap();
        assert!(!same(&a, &back));
        assert_eq!(back, a);
        assert!(cache.get("a", r#"{"client_name":"B"}"#).is_none());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn undecodable_text_is_an_error_for_that_client_and_is_not_kept() {
        let cache = ParsedMetadataCache::new(4);
        cache.decode("a", r#"{"client_name":"A"}"#).unwrap();
        let err = cache.decode("a", "{not json").unwrap_err();
        assert!(
            matches!(&err, StoreError::Undecodable { client_id, .. } if client_id == "a"),
            "{err:?}"
        );
        assert!(cache.get("a", "{not json").is_none());
        assert!(cache.decode("b", "[1]").is_err());
        assert!(cache.get("b", "[1]").is_none());
    }

    #[test]
    fn keeps_at_most_its_capacity_dropping_the_oldest() {
        let cache = ParsedMetadataCache::new(2);
        for id in ["a", "b", "a", "c"] {
            cache.decode(id, "{}").unwrap();
        }
        assert_eq!(cache.len(), 2);
        assert!(
            cache.get("a", "{}").is_none(),
            "the oldest entry went first"
        );
        assert!(cache.get("b", "{}").is_some());
        assert!(cache.get("c", "{}").is_some());
        let none = ParsedMetadataCache::new(0);
        none.decode("a", "{}").unwrap();
        assert!(none.is_empty());
    }
}
