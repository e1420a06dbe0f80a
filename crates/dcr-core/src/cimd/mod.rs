//! OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-02): a
//! `client_id` that is an `https` URL names a JSON document, published by the client, that
//! holds its metadata. [`DocumentResolver`](crate::cimd::DocumentResolver) turns such a URL into a validated client:
//!
//! - the URL rules ([`check_document_url`](crate::cimd::check_document_url)) and the host allow/deny patterns are checked
//!   before anything is fetched, then the `allow_fetch` decision;
//! - fetches go through a [`MetadataDocumentFetcher`](crate::cimd::MetadataDocumentFetcher) (the SSRF-guarded `dcr-fetch` crate in
//!   the server), at most a configured number per host and second (a [`HostFetchLimiter`](crate::cimd::HostFetchLimiter):
//!   in this process by default, or shared by instances);
//! - the document must be a JSON object whose `client_id` is the URL, without shared-secret
//!   authentication; the named policies run on it, then the same validation as a
//!   registration ([`crate::Registrar`]);
//! - validated documents are cached in-process (concurrent resolutions of one URL share one
//!   fetch) and in a [`MetadataDocumentCache`](crate::cimd::MetadataDocumentCache) (the store, shared by instances), for the
//!   response's `Cache-Control: max-age` / `Expires`, clamped to the configured bounds.
//!   Failures are never cached;
//! - the `allow_client` decision runs on every resolution, cache hits included.
//!
//! Audit records (`dcr::audit`, `action = "cimd"`): `first_use`, `changed` (with the members
//! that changed), `refused`, `failed`. Metrics: `dcr_cimd_fetches_total{outcome}` (`ok`,
//! `failed`, `invalid`, `refused`, `rate_limited`), `dcr_cimd_cache_hits_total{layer}`
//! (`memory`, `store`), `dcr_cimd_cache_misses_total`.

mod document;
mod hosts;
mod limiter;
mod resolver;
/// The shared cache of validated documents.
pub mod store;
mod url_rules;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use limiter::{GovernorHostLimiter, HostFetchLimiter};
pub use resolver::{DocumentResolver, DocumentResolverBuilder, ResolvedDocument};
pub use store::{CachedDocument, MemoryDocumentCache, MetadataDocumentCache};
pub use url_rules::{check_document_url, is_document_url};

use crate::factory::BoxFuture;
use crate::metadata::FetchError;

/// Settings of a [`DocumentResolver`]; the defaults are those of the `[cimd]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct CimdSettings {
    /// Host patterns documents may be fetched from (`claude.ai`, `*.example.com`); empty
    /// allows every public host.
    pub allowed_hosts: Vec<String>,
    /// Host patterns never fetched from; checked first.
    pub denied_hosts: Vec<String>,
    /// Shortest time a validated document is kept, in seconds (default 30).
    pub cache_min_seconds: u64,
    /// Longest time a validated document is kept, in seconds (default 86,400).
    pub cache_max_seconds: u64,
    /// Largest document accepted, in bytes (default 5,120).
    pub max_document_bytes: usize,
    /// Policies run, in this order, on every document before validation.
    pub policies: Vec<String>,
    /// Accept document URLs with a query string (default false: the draft says SHOULD NOT).
    pub allow_query: bool,
    /// How long after its expiry a document is still used when refetching it fails, in
    /// seconds (default 0: the client is refused).
    pub stale_if_error_seconds: u64,
    /// Fetches allowed at once from one host (default 10).
    pub host_fetch_burst: u32,
    /// Fetches per second refilled per host (default 1).
    pub host_fetch_per_second: f64,
    /// Documents kept in the in-process cache (default 10,000).
    pub cache_capacity: u64,
}

impl Default for CimdSettings {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            denied_hosts: Vec::new(),
            cache_min_seconds: 30,
            cache_max_seconds: 86_400,
            max_document_bytes: 5_120,
            policies: Vec::new(),
            allow_query: false,
            stale_if_error_seconds: 0,
            host_fetch_burst: 10,
            host_fetch_per_second: 1.0,
            cache_capacity: 10_000,
        }
    }
}

/// A fetched document: its body and how long the response says it stays fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedDocument {
    /// The response body (at most the requested number of bytes).
    pub body: Vec<u8>,
    /// The freshness lifetime from `Cache-Control` / `Expires` (RFC 9111), if the response
    /// gave one; the resolver clamps it to its bounds.
    pub freshness: Option<Duration>,
}

/// Fetches Client ID Metadata Documents.
///
/// Implementations must refuse non-public destinations, follow no redirects, accept only
/// `200 OK` with a JSON content type, send `Accept: application/json`, bound the time and
/// read at most `max_bytes` bytes (a larger body is an error).
#[async_trait::async_trait]
pub trait MetadataDocumentFetcher: Send + Sync + std::fmt::Debug {
    /// GETs the document at `url`.
    async fn fetch_document(
        &self,
        url: &url::Url,
        max_bytes: usize,
    ) -> Result<FetchedDocument, FetchError>;
}

/// Why a metadata document URL did not resolve to a client. The descriptions say what is
/// wrong without internals (no addresses, no TLS details).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CimdError {
    /// The client id is not a valid document URL.
    #[error("client_id is not a valid client metadata document URL: {0}")]
    InvalidUrl(String),
    /// The trust rules refuse it (hosts, `allow_fetch`, `allow_client`).
    #[error("client metadata document refused: {0}")]
    Refused(String),
    /// The document could not be fetched (network, status, size, rate limit).
    #[error("client metadata document could not be fetched: {0}")]
    Fetch(String),
    /// The document is not a valid client.
    #[error("client metadata document is invalid: {0}")]
    Invalid(String),
    /// Something on the server side failed (a policy or decision erred): retry later.
    #[error("client metadata documents are unavailable: {0}")]
    Unavailable(String),
}

impl CimdError {
    /// One word for logs and audit records: `invalid_url`, `refused`, `fetch_failed`,
    /// `invalid_document`, `unavailable`.
    pub fn kind(&self) -> &'static str {
        match self {
            CimdError::InvalidUrl(_) => "invalid_url",
            CimdError::Refused(_) => "refused",
            CimdError::Fetch(_) => "fetch_failed",
            CimdError::Invalid(_) => "invalid_document",
            CimdError::Unavailable(_) => "unavailable",
        }
    }
}

type DecisionFn<T> = dyn Fn(T) -> BoxFuture<Result<bool, String>> + Send + Sync;

/// A yes/no decision on a URL (`allow_fetch`) or a client (`allow_client`), made by a
/// synchronous or an asynchronous closure. `Err` is a failure of the decision itself.
pub struct Decision<T>(Arc<DecisionFn<T>>);

impl<T> Clone for Decision<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> std::fmt::Debug for Decision<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decision(closure)")
    }
}

impl<T: Send + 'static> Decision<T> {
    /// A decision made by a synchronous closure.
    pub fn sync(f: impl Fn(&T) -> Result<bool, String> + Send + Sync + 'static) -> Self {
        Self(Arc::new(move |t: T| -> BoxFuture<_> {
            let r = f(&t);
            Box::pin(async move { r })
        }))
    }

    /// A decision made by an asynchronous closure.
    pub fn from_async<F, Fut>(f: F) -> Self
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<bool, String>> + Send + 'static,
    {
        Self(Arc::new(move |t: T| -> BoxFuture<_> { Box::pin(f(t)) }))
    }

    /// Makes the decision.
    pub async fn decide(&self, subject: T) -> Result<bool, String> {
        (self.0)(subject).await
    }
}

#[cfg(test)]
mod tests;
