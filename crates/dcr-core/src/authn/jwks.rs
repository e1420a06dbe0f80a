//! Keys of `private_key_jwt` clients: from `jwks`, or fetched from `jwks_uri` through the
//! host's SSRF-guarded fetcher, cached, and fetched again when an assertion names a `kid`
//! the cached set does not have (at most once per configured interval per URI).

use std::borrow::Borrow;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;
use serde::Deserialize as _;
use serde_json::Value;

use crate::metadata::DocumentFetcher;

/// A client's public key: its JWK (`kid`, `use`, `alg`, kind) and, decoded once, the key that
/// checks signatures (`None` when its parameters do not decode).
#[derive(Clone)]
pub(crate) struct Key {
    pub(crate) jwk: Jwk,
    pub(crate) decoding: Option<DecodingKey>,
}

impl Key {
    pub(crate) fn new(jwk: Jwk) -> Self {
        let decoding = DecodingKey::from_jwk(&jwk).ok();
        Self { jwk, decoding }
    }
}

impl Borrow<Jwk> for Key {
    fn borrow(&self) -> &Jwk {
        &self.jwk
    }
}

/// The usable keys of a JWK set: each member of `keys` that parses as a JWK (unknown key
/// types are skipped, as RFC 7517 §5 asks).
pub(crate) fn keys_of(set: &Value) -> Vec<Key> {
    set.get("keys")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(|k| Jwk::deserialize(k).ok())
                .map(Key::new)
                .collect()
        })
        .unwrap_or_default()
}

/// The keys of a client's `jwks` member, parsed once per client and set (by client id; an
/// entry is used only while the client's `jwks` is still the set it was parsed from).
#[derive(Clone)]
pub(crate) struct InlineKeys {
    sets: moka::future::Cache<String, Arc<ParsedSet>>,
}

/// A `jwks` member and its keys.
struct ParsedSet {
    set: Value,
    keys: Arc<Vec<Key>>,
}

impl std::fmt::Debug for InlineKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineKeys")
            .field("entries", &self.sets.entry_count())
            .finish()
    }
}

impl InlineKeys {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            sets: moka::future::Cache::builder()
                .max_capacity(capacity)
                .build(),
        }
    }

    /// The keys of `set`, the `jwks` of `client_id`.
    pub(crate) async fn get(&self, client_id: &str, set: &Value) -> Arc<Vec<Key>> {
        if let Some(entry) = self.sets.get(client_id).await
            && entry.set == *set
        {
            return entry.keys.clone();
        }
        let keys = Arc::new(keys_of(set));
        let entry = ParsedSet {
            set: set.clone(),
            keys: keys.clone(),
        };
        self.sets
            .insert(client_id.to_owned(), Arc::new(entry))
            .await;
        keys
    }
}

/// Fetched JWK sets by URI.
#[derive(Clone)]
pub(crate) struct JwksCache {
    fetcher: Option<Arc<dyn DocumentFetcher>>,
    sets: moka::future::Cache<String, Arc<Vec<Key>>>,
    /// URIs refetched for an unknown `kid` recently (the entry expires after the interval).
    refetched: moka::future::Cache<String, ()>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("fetcher", &self.fetcher.is_some())
            .field("entries", &self.sets.entry_count())
            .finish()
    }
}

impl JwksCache {
    pub(crate) fn new(
        fetcher: Option<Arc<dyn DocumentFetcher>>,
        ttl: Duration,
        refetch_interval: Duration,
    ) -> Self {
        Self {
            fetcher,
            sets: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl.max(Duration::from_secs(1)))
                .build(),
            refetched: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(refetch_interval.max(Duration::from_millis(1)))
                .build(),
        }
    }

    /// The keys at `uri`, from the cache or fetched (concurrent callers share one fetch).
    pub(crate) async fn get(&self, uri: &str) -> Result<Arc<Vec<Key>>, String> {
        let this = self.clone();
        let key = uri.to_owned();
        self.sets
            .try_get_with(key.clone(), async move { this.fetch(&key).await })
            .await
            .map_err(|e| (*e).clone())
    }

    /// Fetches `uri` again unless it was refetched within the interval: `true` when it was.
    pub(crate) async fn refresh(&self, uri: &str) -> bool {
        if self.refetched.contains_key(uri) {
            return false;
        }
        self.refetched.insert(uri.to_owned(), ()).await;
        match self.fetch(uri).await {
            Ok(keys) => {
                self.sets.insert(uri.to_owned(), keys).await;
                true
            }
            Err(_) => false,
        }
    }

    async fn fetch(&self, uri: &str) -> Result<Arc<Vec<Key>>, String> {
        let fetcher = self
            .fetcher
            .as_ref()
            .ok_or("the client's jwks_uri cannot be fetched (no fetcher is configured)")?;
        let url = url::Url::parse(uri).map_err(|_| "the client's jwks_uri is not a URL")?;
        let set = fetcher
            .fetch_json(&url, "jwks_uri")
            .await
            .map_err(|e| format!("the client's jwks_uri could not be fetched: {e}"))?;
        Ok(Arc::new(keys_of(&set)))
    }
}
