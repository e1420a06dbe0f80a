//! [`MetadataDocumentCache`](dcr_core::cimd::MetadataDocumentCache) for both SQL stores: the
//! table `cimd_documents`, written once. Statements use `$N` placeholders, which SQLite accepts
//! too; [`document_cache!`] implements the trait for a store given its read and write pools.

use dcr_core::cimd::CachedDocument;
use dcr_core::store::StoreError;

/// Reads the cached document of the URL `$1`.
pub(crate) const GET_DOCUMENT: &str =
    "SELECT url, metadata, fetched_at, expires_at FROM cimd_documents WHERE url = $1";

/// Stores (or replaces) a document: `url, metadata, fetched_at, expires_at`.
pub(crate) const PUT_DOCUMENT: &str = "INSERT INTO cimd_documents \
    (url, metadata, fetched_at, expires_at) VALUES ($1, $2, $3, $4) \
    ON CONFLICT (url) DO UPDATE SET metadata = excluded.metadata, \
    fetched_at = excluded.fetched_at, expires_at = excluded.expires_at";

/// Lists at most `$1` cached documents, by URL.
pub(crate) const LIST_DOCUMENTS: &str =
    "SELECT url, metadata, fetched_at, expires_at FROM cimd_documents ORDER BY url LIMIT $1";

/// Evicts the document of the URL `$1`.
pub(crate) const EVICT_DOCUMENT: &str = "DELETE FROM cimd_documents WHERE url = $1";

/// A row of `cimd_documents`: `url, metadata, fetched_at, expires_at`.
pub(crate) type DocumentRow = (String, String, i64, i64);

/// The document a row holds.
pub(crate) fn document(
    (url, metadata, fetched_at, expires_at): DocumentRow,
) -> Result<CachedDocument, StoreError> {
    let metadata = dcr_core::store::decode_metadata(&url, metadata.into())?;
    Ok(CachedDocument {
        url,
        metadata,
        fetched_at,
        expires_at,
    })
}

/// Implements `MetadataDocumentCache` for `$store`: writes run on the pool `self.$write`.
///
/// - `document_cache!(Store, read = pool, write = pool)`: reads run on the sqlx pool
///   `self.$read`.
/// - `document_cache!(Store, write = pool, reads { own })`: the store gives its own
///   `get_document` and `list_documents` (SQLite).
macro_rules! document_cache {
    ($store:ty, read = $read:ident, write = $write:ident) => {
        $crate::cimd_cache::document_cache!($store, write = $write, reads {
            async fn get_document(
                &self,
                url: &str,
            ) -> Result<Option<dcr_core::cimd::CachedDocument>, dcr_core::store::StoreError> {
                let row: Option<$crate::cimd_cache::DocumentRow> =
                    sqlx::query_as($crate::cimd_cache::GET_DOCUMENT)
                        .bind(url)
                        .fetch_optional(&self.$read)
                        .await
                        .map_err($crate::codec::backend)?;
                row.map($crate::cimd_cache::document).transpose()
            }

            async fn list_documents(
                &self,
                limit: usize,
            ) -> Result<Vec<dcr_core::cimd::CachedDocument>, dcr_core::store::StoreError> {
                let rows: Vec<$crate::cimd_cache::DocumentRow> =
                    sqlx::query_as($crate::cimd_cache::LIST_DOCUMENTS)
                        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                        .fetch_all(&self.$read)
                        .await
                        .map_err($crate::codec::backend)?;
                rows.into_iter().map($crate::cimd_cache::document).collect()
            }
        });
    };
    ($store:ty, write = $write:ident, reads { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl dcr_core::cimd::MetadataDocumentCache for $store {
            $($own)*

            async fn put_document(
                &self,
                doc: &dcr_core::cimd::CachedDocument,
            ) -> Result<(), dcr_core::store::StoreError> {
                sqlx::query($crate::cimd_cache::PUT_DOCUMENT)
                    .bind(&doc.url)
                    .bind($crate::codec::metadata_to_text(&doc.metadata))
                    .bind(doc.fetched_at)
                    .bind(doc.expires_at)
                    .execute(&self.$write)
                    .await
                    .map_err($crate::codec::backend)?;
                Ok(())
            }

            async fn evict_document(&self, url: &str) -> Result<bool, dcr_core::store::StoreError> {
                let done = sqlx::query($crate::cimd_cache::EVICT_DOCUMENT)
                    .bind(url)
                    .execute(&self.$write)
                    .await
                    .map_err($crate::codec::backend)?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}

pub(crate) use document_cache;
