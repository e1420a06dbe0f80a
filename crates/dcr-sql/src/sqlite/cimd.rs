//! [`MetadataDocumentCache`] for [`SqliteStore`]: the table `cimd_documents`.

use dcr_core::cimd::{CachedDocument, MetadataDocumentCache};
use dcr_core::store::StoreError;

use super::SqliteStore;
use crate::codec::{backend, metadata_from_text, metadata_to_text};

type Row = (String, String, i64, i64);

fn document((url, metadata, fetched_at, expires_at): Row) -> Result<CachedDocument, StoreError> {
    Ok(CachedDocument {
        url,
        metadata: metadata_from_text(&metadata)?,
        fetched_at,
        expires_at,
    })
}

#[async_trait::async_trait]
impl MetadataDocumentCache for SqliteStore {
    async fn get_document(&self, url: &str) -> Result<Option<CachedDocument>, StoreError> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT url, metadata, fetched_at, expires_at FROM cimd_documents WHERE url = ?1",
        )
        .bind(url)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.map(document).transpose()
    }

    async fn put_document(&self, doc: &CachedDocument) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cimd_documents (url, metadata, fetched_at, expires_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (url) DO UPDATE SET metadata = excluded.metadata, \
             fetched_at = excluded.fetched_at, expires_at = excluded.expires_at",
        )
        .bind(&doc.url)
        .bind(metadata_to_text(&doc.metadata))
        .bind(doc.fetched_at)
        .bind(doc.expires_at)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn list_documents(&self, limit: usize) -> Result<Vec<CachedDocument>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT url, metadata, fetched_at, expires_at FROM cimd_documents ORDER BY url LIMIT ?1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(document).collect()
    }

    async fn evict_document(&self, url: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM cimd_documents WHERE url = ?1")
            .bind(url)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }
}
