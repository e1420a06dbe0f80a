//! Opening the store named by `[storage] url`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use dcr_core::store::{MemoryStore, Store};
use dcr_sql::SqliteStore;

use crate::config::Config;

/// Which kind of store a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageKind {
    /// `memory:`: nothing survives a restart.
    Memory,
    /// `sqlite://PATH` or `sqlite:PATH`, relative to the config file.
    Sqlite(PathBuf),
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
        anyhow::bail!(
            "storage.url: {url:?} is not a supported store (use sqlite://PATH or memory:)"
        )
    }
}

/// An open store and what is needed to close it.
#[derive(Clone)]
pub struct OpenStore {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The kind it is.
    pub kind: StorageKind,
    sqlite: Option<SqliteStore>,
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
            }),
            StorageKind::Sqlite(path) => {
                let sqlite = SqliteStore::open(path)
                    .await
                    .with_context(|| format!("opening SQLite store {}", path.display()))?;
                Ok(Self {
                    store: Arc::new(sqlite.clone()),
                    kind,
                    sqlite: Some(sqlite),
                })
            }
        }
    }

    /// Closes connections cleanly.
    pub async fn close(&self) {
        if let Some(s) = &self.sqlite {
            s.close().await;
        }
    }
}
