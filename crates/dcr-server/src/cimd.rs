//! Wiring of Client ID Metadata Documents: the fetcher, the shared cache of the configured
//! store, the decision scripts and the resolvers.

use std::sync::Arc;
use std::time::Duration;

use dcr_core::Registrar;
use dcr_core::cimd::{
    DocumentResolver, HostFetchLimiter, MemoryDocumentCache, MetadataDocumentCache,
};
use dcr_core::resolve::ClientResolver;
use dcr_http::ratelimit::RedisBackend;
use dcr_http::{Limit, Rate, RateLimits};

use crate::config::Config;
use crate::storage::OpenStore;

/// The SSRF-guarded fetcher of `[fetch]`, trusting `extra_root_certificates` too.
pub fn fetcher(config: &Config) -> anyhow::Result<dcr_fetch::Fetcher> {
    let f = &config.fetch;
    let fetcher = dcr_fetch::Fetcher::with_root_certificates(
        dcr_fetch::FetcherConfig {
            connect_timeout: Duration::from_millis(f.connect_timeout_ms),
            timeout: Duration::from_millis(f.timeout_ms),
            max_body_bytes: f.max_body_bytes,
            allow_loopback_for_tests: f.allow_loopback_for_tests,
        },
        &crate::config_cimd::root_certificates(config)?,
    )?;
    Ok(fetcher)
}

/// The shared document cache of the configured store.
pub fn shared_cache(config: &Config, store: &OpenStore) -> Arc<dyn MetadataDocumentCache> {
    store.document_cache().unwrap_or_else(|| {
        Arc::new(MemoryDocumentCache::new(
            usize::try_from(config.cimd.cache_capacity).unwrap_or(usize::MAX),
        ))
    })
}

/// The per-host fetch limit of `[cimd]` kept in the rate limits' Redis backend (keys
/// `redis_key_prefix` + `cimd_host:` + host), so that it is one bucket for the fleet.
#[derive(Debug)]
struct SharedHostLimit(Limit);

#[async_trait::async_trait]
impl HostFetchLimiter for SharedHostLimit {
    async fn check(&self, host: &str) -> Result<(), Duration> {
        self.0.check(host).await
    }
}

fn shared_host_limit(config: &Config, backend: &Arc<RedisBackend>) -> Option<Arc<SharedHostLimit>> {
    let rate = Rate {
        burst: config.cimd.host_fetch_burst,
        per_second: config.cimd.host_fetch_per_second,
    };
    Some(Arc::new(SharedHostLimit(backend.limit("cimd_host", rate)?)))
}

/// The document resolver `[cimd]` describes; `None` when documents are off. With a Redis
/// backend in `limits`, the per-host fetch limit is kept there (one bucket for the fleet).
fn document_resolver(
    config: &Config,
    store: &OpenStore,
    registrar: &Registrar,
    limits: &RateLimits,
) -> anyhow::Result<Option<DocumentResolver>> {
    if !config.cimd.enabled {
        return Ok(None);
    }
    let host_limit = limits
        .backend
        .as_ref()
        .and_then(|backend| shared_host_limit(config, backend));
    build_resolver(config, store, registrar, host_limit).map(Some)
}

/// The document resolver `[cimd]` describes, whether or not documents are on (for `dcr cimd`).
pub fn build_document_resolver(
    config: &Config,
    store: &OpenStore,
    registrar: &Registrar,
) -> anyhow::Result<DocumentResolver> {
    build_resolver(config, store, registrar, None)
}

fn build_resolver(
    config: &Config,
    store: &OpenStore,
    registrar: &Registrar,
    host_limit: Option<Arc<SharedHostLimit>>,
) -> anyhow::Result<DocumentResolver> {
    let c = &config.cimd;
    let mut builder =
        DocumentResolver::builder(registrar.clone(), Arc::new(fetcher(config)?), c.settings())
            .shared_cache(shared_cache(config, store));
    if let Some(limit) = host_limit {
        builder = builder.host_fetch_limiter(limit);
    }
    for name in &c.policies {
        if registrar.policies().contains(name) {
            continue;
        }
        if let Some(path) = config.registration.policies.get(name) {
            builder = builder.policy(
                name.clone(),
                crate::scripting::policy_script(
                    name,
                    &config.resolve(path),
                    config.registration.body_limit,
                )?,
            );
        }
    }
    if let Some(path) = &c.allow_fetch {
        builder = builder.allow_fetch(crate::scripting::cimd::allow_fetch_script(
            &config.resolve(path),
        )?);
    }
    if let Some(path) = &c.allow_client {
        builder = builder.allow_client(crate::scripting::cimd::allow_client_script(
            &config.resolve(path),
        )?);
    }
    Ok(builder.build()?)
}

/// The client resolver of `dcr check-config` and of tests (its per-host fetch limit is kept
/// in this process).
pub fn client_resolver(
    config: &Config,
    store: &OpenStore,
    registrar: &Registrar,
) -> anyhow::Result<ClientResolver> {
    shared_client_resolver(config, store, registrar, &RateLimits::default())
}

/// The client resolver of the admin listener: its per-host fetch limit is kept in the Redis
/// backend of `limits` when there is one.
pub fn shared_client_resolver(
    config: &Config,
    store: &OpenStore,
    registrar: &Registrar,
    limits: &RateLimits,
) -> anyhow::Result<ClientResolver> {
    Ok(ClientResolver::new(
        registrar.clone(),
        document_resolver(config, store, registrar, limits)?,
    ))
}
