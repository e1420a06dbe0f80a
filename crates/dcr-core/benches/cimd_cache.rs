//! Micro-benchmark of resolving a Client ID Metadata Document that is in the in-process cache
//! (`cargo bench -p dcr-core --bench cimd_cache`): URL rules, host patterns, the cache lookup
//! and, in the second bench, an `allow_client` closure, as every authorization request pays.

#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use dcr_core::Registrar;
use dcr_core::cimd::{
    CimdSettings, Decision, DocumentResolver, FetchedDocument, MetadataDocumentFetcher,
};
use dcr_core::metadata::{ClientMetadata, FetchError, ServerMetadata};
use dcr_core::settings::RegistrarSettings;
use dcr_core::store::MemoryStore;
use serde_json::json;

const URL: &str = "https://claude.ai/oauth/claude-code-client-metadata";

fn main() {
    divan::main();
}

/// Serves one document, fresh for a day.
#[derive(Debug)]
struct OneDocument;

#[async_trait::async_trait]
impl MetadataDocumentFetcher for OneDocument {
    async fn fetch_document(
        &self,
        _url: &url::Url,
        _max_bytes: usize,
    ) -> Result<FetchedDocument, FetchError> {
        let doc = json!({
            "client_id": URL,
            "client_name": "Claude Code",
            "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        });
        Ok(FetchedDocument {
            body: doc.to_string().into_bytes(),
            freshness: Some(Duration::from_secs(86_400)),
        })
    }
}

fn setup(allow_client: bool) -> (tokio::runtime::Runtime, DocumentResolver) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let registrar = Registrar::builder(
        Arc::new(MemoryStore::new()),
        ServerMetadata::default(),
        RegistrarSettings::new("https://as.example"),
    )
    .build()
    .unwrap();
    let settings = CimdSettings {
        allowed_hosts: vec!["claude.ai".into(), "*.example.com".into()],
        ..CimdSettings::default()
    };
    let mut builder = DocumentResolver::builder(registrar, Arc::new(OneDocument), settings);
    if allow_client {
        builder = builder.allow_client(Decision::sync(|md: &ClientMetadata| {
            Ok(md.str("client_name") != Some("Evil"))
        }));
    }
    let resolver = builder.build().unwrap();
    rt.block_on(resolver.resolve(URL)).unwrap();
    (rt, resolver)
}

#[divan::bench]
fn cached_hit(bencher: divan::Bencher) {
    let (rt, resolver) = setup(false);
    bencher.bench_local(|| {
        rt.block_on(resolver.resolve(divan::black_box(URL)))
            .unwrap()
    });
}

#[divan::bench]
fn cached_hit_with_allow_client(bencher: divan::Bencher) {
    let (rt, resolver) = setup(true);
    bencher.bench_local(|| {
        rt.block_on(resolver.resolve(divan::black_box(URL)))
            .unwrap()
    });
}
