//! [`DocumentResolver`](crate::cimd::DocumentResolver): a metadata document URL to a validated client, through the caches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use serde_json::Value;
use url::Url;

use super::document::{check_document, check_validated};
use super::hosts::HostRules;
use super::limiter::{GovernorHostLimiter, HostFetchLimiter};
use super::store::{CachedDocument, MemoryDocumentCache, MetadataDocumentCache};
use super::url_rules::check_document_url;
use super::{CimdError, CimdSettings, Decision, MetadataDocumentFetcher};
use crate::Registrar;
use crate::clock::{Clock, SystemClock};
use crate::metadata::ClientMetadata;
use crate::policy::{Policy, PolicyCall, PolicyError, PolicySet};

/// A client resolved from its metadata document.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedDocument {
    /// The client id: the document URL, exactly as presented.
    pub client_id: String,
    /// The validated metadata (never a client secret).
    pub metadata: ClientMetadata,
    /// When the document was fetched (seconds since the epoch).
    pub fetched_at: i64,
    /// When it will be fetched again (seconds since the epoch).
    pub expires_at: i64,
}

/// What the in-process cache holds for one URL.
#[derive(Debug)]
struct Entry {
    metadata: ClientMetadata,
    fetched_at: i64,
    expires_at: i64,
    ttl: Duration,
}

/// Entries live for their own freshness lifetime.
struct ByDocument;

impl Expiry<String, Arc<Entry>> for ByDocument {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Builds a [`DocumentResolver`].
pub struct DocumentResolverBuilder {
    registrar: Registrar,
    fetcher: Arc<dyn MetadataDocumentFetcher>,
    settings: CimdSettings,
    policies: PolicySet,
    allow_fetch: Option<Decision<Url>>,
    allow_client: Option<Decision<ClientMetadata>>,
    shared: Option<Arc<dyn MetadataDocumentCache>>,
    clock: Arc<dyn Clock>,
    host_limiter: Option<Arc<dyn HostFetchLimiter>>,
}

impl DocumentResolverBuilder {
    /// Adds the policy `name` (the registrar's policies are there already).
    pub fn policy(mut self, name: impl Into<String>, policy: Arc<dyn Policy>) -> Self {
        self.policies.insert(name, policy);
        self
    }

    /// Sets the decision asked before a document is fetched from a URL.
    pub fn allow_fetch(mut self, decision: Decision<Url>) -> Self {
        self.allow_fetch = Some(decision);
        self
    }

    /// Sets the decision asked on every resolution of a validated client, cache hits included.
    pub fn allow_client(mut self, decision: Decision<ClientMetadata>) -> Self {
        self.allow_client = Some(decision);
        self
    }

    /// Sets the shared cache (default: a process-local [`MemoryDocumentCache`]).
    pub fn shared_cache(mut self, cache: Arc<dyn MetadataDocumentCache>) -> Self {
        self.shared = Some(cache);
        self
    }

    /// Sets the per-host fetch limiter (default: a [`GovernorHostLimiter`] of the settings'
    /// `host_fetch_burst` and `host_fetch_per_second`, kept in this process).
    pub fn host_fetch_limiter(mut self, limiter: Arc<dyn HostFetchLimiter>) -> Self {
        self.host_limiter = Some(limiter);
        self
    }

    /// Sets the clock of the shared cache's expiry times (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the resolver; every policy named in the settings must be known.
    pub fn build(self) -> Result<DocumentResolver, CimdError> {
        let s = &self.settings;
        let bad = |what: &str| Err(CimdError::Unavailable(format!("cimd settings: {what}")));
        if let Some(name) = self.policies.first_unknown(&s.policies) {
            return bad(&format!("policy {name:?} is not configured"));
        }
        if s.cache_min_seconds > s.cache_max_seconds {
            return bad("cache_min_seconds must not exceed cache_max_seconds");
        }
        let Some(governor) = GovernorHostLimiter::new(s.host_fetch_burst, s.host_fetch_per_second)
        else {
            return bad(
                "host_fetch_burst must be at least 1 and host_fetch_per_second at least 0.001",
            );
        };
        let limiter = self.host_limiter.unwrap_or_else(|| Arc::new(governor));
        let cache = Cache::builder()
            .max_capacity(s.cache_capacity.max(1))
            .expire_after(ByDocument)
            .build();
        let hosts = HostRules::new(&s.allowed_hosts, &s.denied_hosts);
        let shared = self
            .shared
            .unwrap_or_else(|| Arc::new(MemoryDocumentCache::new(10_000)));
        Ok(DocumentResolver {
            inner: Arc::new(Inner {
                registrar: self.registrar,
                fetcher: self.fetcher,
                hosts,
                policies: self.policies,
                allow_fetch: self.allow_fetch,
                allow_client: self.allow_client,
                shared,
                clock: self.clock,
                limiter,
                cache,
                settings: self.settings,
            }),
        })
    }
}

struct Inner {
    registrar: Registrar,
    fetcher: Arc<dyn MetadataDocumentFetcher>,
    settings: CimdSettings,
    hosts: HostRules,
    policies: PolicySet,
    allow_fetch: Option<Decision<Url>>,
    allow_client: Option<Decision<ClientMetadata>>,
    shared: Arc<dyn MetadataDocumentCache>,
    clock: Arc<dyn Clock>,
    limiter: Arc<dyn HostFetchLimiter>,
    cache: Cache<String, Arc<Entry>>,
}

/// Resolves Client ID Metadata Document URLs to validated clients (see the
/// [module documentation](crate::cimd)). Cheap to clone; share one per server.
#[derive(Clone)]
pub struct DocumentResolver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DocumentResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentResolver")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

fn fetch_outcome(outcome: &'static str) {
    metrics::counter!("dcr_cimd_fetches_total", "outcome" => outcome).increment(1);
}

fn audit_refusal(client_id: &str, err: &CimdError) {
    let outcome = match err {
        CimdError::Unavailable(_) => "failed",
        _ => "refused",
    };
    tracing::warn!(target: "dcr::audit", action = "cimd", outcome, client_id,
        reason = err.kind(), detail = %err, "client metadata document {outcome}");
}

/// The members whose values differ between two versions of a document, sorted.
pub(super) fn changed_members(old: &ClientMetadata, new: &ClientMetadata) -> Vec<String> {
    let (a, b) = (old.as_map(), new.as_map());
    let mut changed: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    changed.sort();
    changed.dedup();
    changed
}

impl DocumentResolver {
    /// Starts building a resolver that validates documents with `registrar` (its metadata
    /// rules and its policies) and fetches them with `fetcher`.
    pub fn builder(
        registrar: Registrar,
        fetcher: Arc<dyn MetadataDocumentFetcher>,
        settings: CimdSettings,
    ) -> DocumentResolverBuilder {
        DocumentResolverBuilder {
            policies: registrar.policies().clone(),
            registrar,
            fetcher,
            settings,
            allow_fetch: None,
            allow_client: None,
            shared: None,
            clock: Arc::new(SystemClock),
            host_limiter: None,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &CimdSettings {
        &self.inner.settings
    }

    /// Resolves the document URL `client_id`: from the in-process cache, the shared cache,
    /// or by fetching and validating it. Concurrent resolutions of one URL share one fetch.
    pub async fn resolve(&self, client_id: &str) -> Result<ResolvedDocument, CimdError> {
        let result = self.resolve_inner(client_id).await;
        if let Err(e) = &result {
            audit_refusal(client_id, e);
        }
        result
    }

    async fn resolve_inner(&self, client_id: &str) -> Result<ResolvedDocument, CimdError> {
        let url = self.admit(client_id)?;
        let entry = self
            .inner
            .cache
            .entry_by_ref(client_id)
            .or_try_insert_with(self.load(client_id, &url))
            .await
            .map_err(|e| (*e).clone())?;
        if entry.is_fresh() {
            metrics::counter!("dcr_cimd_cache_misses_total").increment(1);
        } else {
            metrics::counter!("dcr_cimd_cache_hits_total", "layer" => "memory").increment(1);
        }
        let entry = entry.into_value();
        self.allow_client(client_id, &entry.metadata).await?;
        Ok(ResolvedDocument {
            client_id: client_id.to_owned(),
            metadata: entry.metadata.clone(),
            fetched_at: entry.fetched_at,
            expires_at: entry.expires_at,
        })
    }

    /// Fetches and validates the document at `client_id` as [`DocumentResolver::resolve`]
    /// would, bypassing and leaving alone every cache (for `dcr cimd check`).
    pub async fn check(&self, client_id: &str) -> Result<ResolvedDocument, CimdError> {
        let url = self.admit(client_id)?;
        let now = self.inner.clock.now();
        let (metadata, ttl) = self.fetch_and_validate(client_id, &url).await?;
        self.allow_client(client_id, &metadata).await?;
        Ok(ResolvedDocument {
            client_id: client_id.to_owned(),
            metadata,
            fetched_at: now,
            expires_at: now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
        })
    }

    /// Up to `limit` documents of the shared cache, by URL.
    pub async fn list(&self, limit: usize) -> Result<Vec<CachedDocument>, CimdError> {
        self.inner
            .shared
            .list_documents(limit)
            .await
            .map_err(|e| CimdError::Unavailable(format!("store: {e}")))
    }

    /// Drops the document of `client_id` from both caches; `false` if the shared cache had none.
    pub async fn evict(&self, client_id: &str) -> Result<bool, CimdError> {
        self.inner.cache.invalidate(client_id).await;
        self.inner
            .shared
            .evict_document(client_id)
            .await
            .map_err(|e| CimdError::Unavailable(format!("store: {e}")))
    }

    /// The checks made before any cache or fetch: URL rules and host patterns.
    fn admit(&self, client_id: &str) -> Result<Url, CimdError> {
        let url = check_document_url(client_id, self.inner.settings.allow_query)
            .map_err(CimdError::InvalidUrl)?;
        self.inner
            .hosts
            .check(url.host_str().unwrap_or_default())
            .map_err(CimdError::Refused)?;
        Ok(url)
    }

    async fn allow_client(&self, client_id: &str, md: &ClientMetadata) -> Result<(), CimdError> {
        let Some(decision) = &self.inner.allow_client else {
            return Ok(());
        };
        match decision.decide(md.clone()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(CimdError::Refused(format!(
                "the allow_client decision refused {client_id}"
            ))),
            Err(e) => Err(CimdError::Unavailable(format!("allow_client failed: {e}"))),
        }
    }

    /// The in-process cache's loader: the shared cache, else a fetch.
    async fn load(&self, client_id: &str, url: &Url) -> Result<Arc<Entry>, CimdError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let previous = match inner.shared.get_document(client_id).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "shared document cache unavailable; fetching");
                None
            }
        };
        if let Some(p) = &previous
            && p.expires_at > now
        {
            metrics::counter!("dcr_cimd_cache_hits_total", "layer" => "store").increment(1);
            return Ok(Arc::new(Entry {
                metadata: p.metadata.clone(),
                fetched_at: p.fetched_at,
                expires_at: p.expires_at,
                ttl: Duration::from_secs(u64::try_from(p.expires_at - now).unwrap_or(1)),
            }));
        }
        match self.fetch_and_validate(client_id, url).await {
            Ok((metadata, ttl)) => {
                let expires_at =
                    now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
                let doc = CachedDocument {
                    url: client_id.to_owned(),
                    metadata,
                    fetched_at: now,
                    expires_at,
                };
                if let Err(e) = inner.shared.put_document(&doc).await {
                    tracing::warn!(error = %e, "could not keep the document in the shared cache");
                }
                match &previous {
                    None => tracing::info!(target: "dcr::audit", action = "cimd",
                        outcome = "first_use", client_id, "client metadata document first used"),
                    Some(p) => {
                        let changed = changed_members(&p.metadata, &doc.metadata);
                        if !changed.is_empty() {
                            metrics::counter!("dcr_cimd_document_changes_total").increment(1);
                            tracing::warn!(target: "dcr::audit", action = "cimd",
                                outcome = "changed", client_id,
                                changed_members = %changed.join(","),
                                "client metadata document changed");
                        }
                    }
                }
                Ok(Arc::new(Entry {
                    metadata: doc.metadata,
                    fetched_at: now,
                    expires_at,
                    ttl,
                }))
            }
            Err(e) => {
                let stale = i64::try_from(inner.settings.stale_if_error_seconds).unwrap_or(0);
                if let Some(p) = previous
                    && !matches!(e, CimdError::Refused(_))
                    && now < p.expires_at.saturating_add(stale)
                {
                    let left = p.expires_at.saturating_add(stale) - now;
                    let keep =
                        left.min(i64::try_from(inner.settings.cache_min_seconds).unwrap_or(1));
                    tracing::warn!(client_id, error = %e,
                        "refetching the document failed; serving the expired one (stale_if_error)");
                    return Ok(Arc::new(Entry {
                        metadata: p.metadata,
                        fetched_at: p.fetched_at,
                        expires_at: p.expires_at,
                        ttl: Duration::from_secs(u64::try_from(keep.max(1)).unwrap_or(1)),
                    }));
                }
                Err(e)
            }
        }
    }

    /// Fetches the document, checks it, runs the policies and the registration validation.
    /// Returns the validated metadata and how long to keep it.
    async fn fetch_and_validate(
        &self,
        client_id: &str,
        url: &Url,
    ) -> Result<(ClientMetadata, Duration), CimdError> {
        let inner = &self.inner;
        let s = &inner.settings;
        if let Some(decision) = &inner.allow_fetch {
            match decision.decide(url.clone()).await {
                Ok(true) => {}
                Ok(false) => {
                    fetch_outcome("refused");
                    return Err(CimdError::Refused(format!(
                        "the allow_fetch decision refused {client_id}"
                    )));
                }
                Err(e) => return Err(CimdError::Unavailable(format!("allow_fetch failed: {e}"))),
            }
        }
        let host = url.host_str().unwrap_or_default().to_owned();
        if inner.limiter.check(&host).await.is_err() {
            fetch_outcome("rate_limited");
            return Err(CimdError::Fetch(format!(
                "too many documents fetched from {host}; try again later"
            )));
        }
        let fetched = inner
            .fetcher
            .fetch_document(url, s.max_document_bytes)
            .await
            .map_err(|e| {
                fetch_outcome("failed");
                CimdError::Fetch(e.0)
            })?;
        let validated = self
            .validate(client_id, &fetched.body)
            .await
            .inspect_err(|e| {
                if matches!(e, CimdError::Invalid(_)) {
                    fetch_outcome("invalid");
                }
            })?;
        fetch_outcome("ok");
        let ttl = fetched
            .freshness
            .unwrap_or_default()
            .clamp(
                Duration::from_secs(s.cache_min_seconds),
                Duration::from_secs(s.cache_max_seconds),
            )
            .max(Duration::from_secs(1));
        Ok((validated, ttl))
    }

    async fn validate(&self, client_id: &str, body: &[u8]) -> Result<ClientMetadata, CimdError> {
        let inner = &self.inner;
        let members = check_document(client_id, body).map_err(CimdError::Invalid)?;
        let mut call = PolicyCall {
            properties: members,
            ..PolicyCall::default()
        };
        for name in &inner.settings.policies {
            let Some(policy) = inner.policies.get(name) else {
                return Err(CimdError::Unavailable(format!(
                    "policy {name:?} is not configured"
                )));
            };
            match policy.apply(&mut call).await {
                Ok(()) => {}
                Err(PolicyError::Reject(msg)) => {
                    return Err(CimdError::Invalid(format!("policy {name}: {msg}")));
                }
                Err(PolicyError::Failed(detail)) => {
                    return Err(CimdError::Unavailable(format!("policy {name}: {detail}")));
                }
            }
        }
        let mut properties = call.properties;
        // The client id is the URL: policies cannot move it, nor give the client a secret.
        properties.insert("client_id".into(), Value::String(client_id.to_owned()));
        properties.remove("client_secret");
        properties.remove("client_secret_expires_at");
        let validated = inner
            .registrar
            .validate(properties)
            .await
            .map_err(|e| match e {
                e if e.is_server_error() => CimdError::Unavailable(e.to_string()),
                other => CimdError::Invalid(other.description().to_owned()),
            })?;
        check_validated(&validated).map_err(CimdError::Invalid)?;
        Ok(validated)
    }
}
