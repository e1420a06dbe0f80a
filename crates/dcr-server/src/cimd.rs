//! Wiring of Client ID Metadata Documents: the fetcher, the shared cache of the configured
//! store, the decision scripts and the resolvers.

use std::sync::Arc;
use std::time::Duration;

use dcr_core::Registrar;
use dcr_core::cimd::{DocumentResolver, MemoryDocumentCache, MetadataDocumentCache};
use dcr_core::resolve::ClientResolver;

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

/// The document resolver `[cimd]` describes; `None` when documents are off.
pub fn document_resolver(
    config: &Config,
    store: &OpenStore,
    registrar: &Registrar,
) -> anyhow::Result<Option<DocumentResolver>> {
    if !config.cimd.enabled {
        return Ok(None);
    }
    build_document_resolver(config, store, registrar).map(Some)
}

/// The document resolver `[cimd]` describes, whether or not documents are on (for `dcr cimd`).
pub fn build_document_resolver(
    config: &Config,
    store: &OpenStore,
    registrar: &Registrar,
) -> anyhow::Result<DocumentResolver> {
    let c = &config.cimd;
    let mut builder =
        DocumentResolver::builder(registrar.clone(), Arc::new(fetcher(config)?), c.settings())
            .shared_cache(shared_cache(config, store));
    for name in &c.policies {
        if registrar.policies().contains(name) {
            continue;
        }
        if let Some(path) = config.registration.policies.get(name) {
            builder = builder.policy(
                name.clone(),
                crate::scripting::policy_script(name, &config.resolve(path))?,
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

/// The client resolver of the admin listener (and of `dcr cimd`).
pub fn client_resolver(
    config: &Config,
    store: &OpenStore,
    registrar: &Registrar,
) -> anyhow::Result<ClientResolver> {
    Ok(ClientResolver::new(
        registrar.clone(),
        document_resolver(config, store, registrar)?,
    ))
}
