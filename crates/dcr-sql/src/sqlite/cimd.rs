//! [`MetadataDocumentCache`](dcr_core::cimd::MetadataDocumentCache) for [`SqliteStore`](super::SqliteStore): the table `cimd_documents` (`crate::cimd_cache`).

crate::cimd_cache::document_cache!(super::SqliteStore, read = reader, write = writer);
