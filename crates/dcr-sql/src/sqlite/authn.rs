//! The client authentication records of the SQLite store (`crate::authn_records`); its reads
//! run on the store's readers.

crate::authn_records::authn_records!(super::SqliteStore, write = writer, usage_reads {
    async fn last_used(
        &self,
        client_ids: &[String],
    ) -> Result<std::collections::HashMap<String, i64>, dcr_core::store::StoreError> {
        self.readers.last_used(client_ids)
    }

    async fn tombstoned(
        &self,
        client_id: &str,
        now: i64,
    ) -> Result<bool, dcr_core::store::StoreError> {
        self.readers.tombstoned(client_id, now)
    }
});
