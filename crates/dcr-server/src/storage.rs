//! Opening the store named by `[storage] url`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use dcr_core::store::{MemoryStore, Store};
use dcr_sql::{PgStore, PgStoreOptions, SqliteStore};

use crate::config::Config;

/// Which kind of store a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageKind {
    /// `memory:`: nothing survives a restart.
    Memory,
    /// `sqlite://PATH` or `sqlite:PATH`, relative to the config file.
    Sqlite(PathBuf),
    /// `postgres://...` or `postgresql://...` (the URL stays in the config: it may hold a
    /// password). May be shared by several processes.
    Postgres,
}

impl StorageKind {
    /// Parses a storage URL.
    pub fn parse(config: &Config) -> anyhow::Result<Self> {
        let url = config.storage.url.trim();
        if url == "memory:" || url == "memory://" {
            return Ok(StorageKind::Memory);
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            anyhow::ensure!(
                !path.is_empty(),
                "storage.url: sqlite URL without a file path"
            );
            return Ok(StorageKind::Sqlite(config.resolve(&PathBuf::from(path))));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            dcr_sql::postgres::parse_url(url).map_err(|e| anyhow::anyhow!("storage.url: {e}"))?;
            return Ok(StorageKind::Postgres);
        }
        // Never echo the URL: it may hold a password.
        let scheme = url.split_once(':').map_or("", |(s, _)| s);
        anyhow::bail!(
            "storage.url: scheme {scheme:?} is not a supported store (use sqlite://PATH, postgres://... or memory:)"
        )
    }
}

/// An open store.
#[derive(Clone)]
pub struct OpenStore {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The kind it is.
    pub kind: StorageKind,
    sqlite: Option<SqliteStore>,
    postgres: Option<PgStore>,
    memory_authn: crate::admin_authn::AuthnStores,
}

impl OpenStore {
    /// Opens the configured store, creating and migrating it if needed.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let kind = StorageKind::parse(config)?;
        match &kind {
            StorageKind::Memory => Ok(Self {
                store: Arc::new(MemoryStore::new()),
                kind,
                sqlite: None,
                postgres: None,
                memory_authn: Default::default(),
            }),
            StorageKind::Sqlite(path) => {
                let sqlite = SqliteStore::open(path)
                    .await
                    .with_context(|| format!("opening SQLite store {}", path.display()))?;
                Ok(Self {
                    store: Arc::new(sqlite.clone()),
                    kind,
                    sqlite: Some(sqlite),
                    postgres: None,
                    memory_authn: Default::default(),
                })
            }
            StorageKind::Postgres => {
                let options = PgStoreOptions {
                    max_connections: config.storage.max_connections,
                    connect_timeout: Duration::from_millis(config.storage.connect_timeout_ms),
                    acquire_timeout: Duration::from_millis(config.storage.acquire_timeout_ms),
                };
                let pg = PgStore::open(config.storage.url.trim(), &options)
                    .await
                    .context("opening PostgreSQL store (storage.url)")?;
                Ok(Self {
                    store: Arc::new(pg.clone()),
                    kind,
                    sqlite: None,
                    postgres: Some(pg),
                    memory_authn: Default::default(),
                })
            }
        }
    }

    /// The shared cache of metadata documents in this store (`None` for the memory store,
    /// whose documents are kept by each process).
    pub fn document_cache(&self) -> Option<Arc<dyn dcr_core::cimd::MetadataDocumentCache>> {
        if let Some(s) = &self.sqlite {
            return Some(Arc::new(s.clone()));
        }
        self.postgres
            .as_ref()
            .map(|p| Arc::new(p.clone()) as Arc<dyn dcr_core::cimd::MetadataDocumentCache>)
    }

    /// The client authentication records (assertion `jti`s, usage, tombstones) in this
    /// store; in memory (one set per open store) for the memory store.
    pub fn authn_stores(&self) -> crate::admin_authn::AuthnStores {
        if let Some(s) = &self.sqlite {
            return crate::admin_authn::AuthnStores::of(Arc::new(s.clone()));
        }
        if let Some(p) = &self.postgres {
            return crate::admin_authn::AuthnStores::of(Arc::new(p.clone()));
        }
        self.memory_authn.clone()
    }

    /// Closes connections cleanly.
    pub async fn close(&self) {
        self.store.close().await;
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn kind(url: &str) -> anyhow::Result<StorageKind> {
        let toml = format!("[storage]\nurl = \"{url}\"");
        StorageKind::parse(&Config::from_toml(&toml, Path::new("/srv"))?)
    }

    #[test]
    fn storage_urls() {
        assert_eq!(kind("memory:").unwrap(), StorageKind::Memory);
        assert_eq!(
            kind("sqlite://dcr.db").unwrap(),
            StorageKind::Sqlite(PathBuf::from("/srv/dcr.db"))
        );
        assert_eq!(
            kind("postgres://dcr:pw@db:5432/dcr").unwrap(),
            StorageKind::Postgres
        );
        assert_eq!(
            kind("postgresql://dcr@db/dcr").unwrap(),
            StorageKind::Postgres
        );
        let e = kind("mysql://u:hunter2@db/dcr").unwrap_err().to_string();
        assert!(e.contains("storage.url") && !e.contains("hunter2"), "{e}");
        let e = kind("postgres://u:hunter2@[db/dcr")
            .unwrap_err()
            .to_string();
        assert!(e.contains("storage.url") && !e.contains("hunter2"), "{e}");
    }
}
