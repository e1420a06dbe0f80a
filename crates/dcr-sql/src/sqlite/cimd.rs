//! [`MetadataDocumentCache`](dcr_core::cimd::MetadataDocumentCache) for [`SqliteStore`](super::SqliteStore): the table `cimd_documents` (`crate::cimd_cache`); its reads run on the store's readers.

crate::cimd_cache::document_cache!(super::SqliteStore, write = writer, reads {
    async fn get_document(
        &self,
        url: &str,
    ) -> Result<Option<dcr_core::cimd::CachedDocument>, dcr_core::store::StoreError> {
        self.readers.get_document(url)
    }

    async fn list_documents(
        &self,
        limit: usize,
    ) -> Result<Vec<dcr_core::cimd::CachedDocument>, dcr_core::store::StoreError> {
        self.scan(move |r| r.list_documents(limit)).await
    }
});
