//! `dcr cimd`: check a Client ID Metadata Document as the server would, and show or drop the
//! documents kept in the store's shared cache.

use anyhow::Context as _;
use clap::Subcommand;

use crate::app::build_registrar;
use crate::config::Config;
use crate::storage::{OpenStore, StorageKind};

/// Client ID Metadata Document commands.
#[derive(Debug, Subcommand)]
pub enum CimdCommand {
    /// Fetches and validates the document at URL exactly as the server would (trust rules,
    /// policies, scripts, registration validation; `[cimd] enabled` need not be on), and
    /// prints the resulting client or the precise reason it is refused. Caches nothing.
    Check {
        /// The document URL (the client id).
        url: String,
    },
    /// Lists the documents kept in the store: URL, fetched, expires, client name.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Drops the document kept for URL from the store (running servers fetch it again once
    /// their in-memory copy expires).
    Evict {
        /// The document URL (the client id).
        url: String,
    },
}

/// Runs a `dcr cimd` command.
pub async fn run(config: &Config, command: CimdCommand) -> anyhow::Result<()> {
    match command {
        CimdCommand::Check { url } => check(config, &url).await,
        CimdCommand::List { limit } => {
            let (store, resolver) = stored(config).await?;
            let listed = resolver.list(limit).await;
            store.close().await;
            let docs = listed.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{:<60} {:<12} {:<12} NAME",
                "URL", "FETCHED_AT", "EXPIRES_AT"
            );
            for d in docs {
                println!(
                    "{:<60} {:<12} {:<12} {}",
                    d.url,
                    d.fetched_at,
                    d.expires_at,
                    d.metadata.str("client_name").unwrap_or("-")
                );
            }
            Ok(())
        }
        CimdCommand::Evict { url } => {
            let (store, resolver) = stored(config).await?;
            let evicted = resolver.evict(&url).await;
            store.close().await;
            anyhow::ensure!(
                evicted.map_err(|e| anyhow::anyhow!("{e}"))?,
                "no document kept for {url}"
            );
            tracing::info!(target: "dcr::audit", action = "cimd", outcome = "evicted",
                client_id = %url, by = "cli", "client metadata document evicted by an operator");
            println!("evicted {url}");
            Ok(())
        }
    }
}

/// Fetches and validates without any store: the registrar runs over a memory store.
async fn check(config: &Config, url: &str) -> anyhow::Result<()> {
    let mut config = config.clone();
    config.storage.url = "memory:".into();
    let store = OpenStore::open(&config).await?;
    let registrar = build_registrar(&config, &store)?;
    let resolver = crate::cimd::build_document_resolver(&config, &store, &registrar)?;
    match resolver.check(url).await {
        Ok(doc) => {
            let out = serde_json::json!({
                "client_id": doc.client_id,
                "source": "metadata_document",
                "cache_seconds": doc.expires_at - doc.fetched_at,
                "metadata": doc.metadata.as_map(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            eprintln!("{url} resolves to a valid client");
            Ok(())
        }
        Err(e) => anyhow::bail!("refused: {e}"),
    }
}

/// The store and a document resolver over its shared cache.
async fn stored(config: &Config) -> anyhow::Result<(OpenStore, dcr_core::cimd::DocumentResolver)> {
    anyhow::ensure!(
        StorageKind::parse(config)? != StorageKind::Memory,
        "storage.url is memory: documents are kept by each server process only"
    );
    let store = OpenStore::open(config).await?;
    let registrar = build_registrar(config, &store)?;
    let resolver =
        crate::cimd::build_document_resolver(config, &store, &registrar).context("cimd")?;
    Ok((store, resolver))
}
