//! The client authentication records of the SQLite store (`crate::authn_records`). Its reads
//! run on the store's readers; the writes of every authentication (assertion `jti`s, uses) go
//! through the writer thread, committed in the same group transactions as client writes (one
//! fsync per group, not one per assertion).

use dcr_core::store::StoreError;

use super::SqliteStore;
use super::group_commit::WriteOp;

crate::authn_records::authn_records!(super::SqliteStore, write = writer,
    jtis_and_uses = writer_thread, usage_reads {
    async fn last_used(
        &self,
        client_ids: &[String],
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        self.readers.last_used(client_ids)
    }

    async fn last_used_of(&self, client_id: &str) -> Result<Option<i64>, StoreError> {
        self.readers.last_used_of(client_id)
    }

    async fn tombstoned(&self, client_id: &str, now: i64) -> Result<bool, StoreError> {
        self.readers.tombstoned(client_id, now)
    }
});

impl SqliteStore {
    /// `AssertionReplayStore::record_jti`, answered once its group is committed.
    async fn record_jti_committed(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.write(WriteOp::RecordJti {
            client_id: client_id.to_owned(),
            jti: jti.to_owned(),
            expires_at,
            now,
        })
        .await
    }

    /// `ClientUsageStore::record_use`, answered once its group is committed.
    async fn record_use_committed(&self, client_id: &str, at: i64) -> Result<(), StoreError> {
        self.write(WriteOp::RecordUse {
            client_id: client_id.to_owned(),
            at,
        })
        .await
        .map(drop)
    }
}
