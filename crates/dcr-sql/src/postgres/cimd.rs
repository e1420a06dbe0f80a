//! [`MetadataDocumentCache`](dcr_core::cimd::MetadataDocumentCache) for [`PgStore`](super::PgStore): the table `cimd_documents` (`crate::cimd_cache`).

crate::cimd_cache::document_cache!(super::PgStore, read = pool, write = pool);
