//! The client authentication records of both SQL stores (`dcr_core::authn`): assertion `jti`s,
//! usage and tombstones, written once. Statements use `$N` placeholders, which SQLite accepts
//! too; [`authn_records!`] implements the traits for a store given its read and write pools.

/// Forgets the assertion `jti`s expired at `$1`.
pub(crate) const PRUNE_JTIS: &str = "DELETE FROM assertion_jtis WHERE expires_at <= $1";

/// Records the `jti` `$2` of client `$1` until `$3`, unless it is already recorded and not
/// expired at `$4` (then no row changes).
pub(crate) const RECORD_JTI: &str = "INSERT INTO assertion_jtis (client_id, jti, expires_at) \
    VALUES ($1, $2, $3) \
    ON CONFLICT (client_id, jti) DO UPDATE SET expires_at = excluded.expires_at \
    WHERE assertion_jtis.expires_at <= $4";

/// Records a use of client `$1` at `$2`, if the client exists; the latest use is kept.
pub(crate) const RECORD_USE: &str = "INSERT INTO client_usage (client_id, last_used_at) \
    SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM clients WHERE client_id = $1) \
    ON CONFLICT (client_id) DO UPDATE SET last_used_at = excluded.last_used_at \
    WHERE excluded.last_used_at > client_usage.last_used_at";

/// The last use of each client whose id is in the JSON array of strings `$1` (PostgreSQL).
pub(crate) const LAST_USED_POSTGRES: &str = "SELECT client_id, last_used_at FROM client_usage \
    WHERE client_id IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))";

/// The last use of each client whose id is in the JSON array of strings `$1` (SQLite).
pub(crate) const LAST_USED_SQLITE: &str = "SELECT client_id, last_used_at FROM client_usage \
    WHERE client_id IN (SELECT value FROM json_each($1))";

/// The last use of client `$1`.
pub(crate) const LAST_USED_ONE: &str = "SELECT last_used_at FROM client_usage WHERE client_id = $1";

/// Forgets the uses of client `$1`.
pub(crate) const DELETE_USAGE: &str = "DELETE FROM client_usage WHERE client_id = $1";

/// Tombstones client `$1` until `$2` (or moves its tombstone to `$2`).
pub(crate) const PUT_TOMBSTONE: &str = "INSERT INTO client_tombstones (client_id, until) \
    VALUES ($1, $2) ON CONFLICT (client_id) DO UPDATE SET until = excluded.until";

/// The tombstone of client `$1` still standing at `$2`, if any.
pub(crate) const TOMBSTONED: &str =
    "SELECT until FROM client_tombstones WHERE client_id = $1 AND until > $2";

/// Removes the tombstone of client `$1`.
pub(crate) const REMOVE_TOMBSTONE: &str = "DELETE FROM client_tombstones WHERE client_id = $1";

/// Implements `AssertionReplayStore` and `ClientUsageStore` for `$store`: the other writes run
/// on the pool `self.$write`. `jtis_and_uses` says how `record_jti` and `record_use` write, the
/// writes of every authentication: `pool` (on `self.$write`, a transaction each) or
/// `writer_thread` (the store's inherent `record_jti_committed` and `record_use_committed`,
/// e.g. in a group commit).
///
/// - `authn_records!(Store, read = pool, write = pool, last_used = STATEMENT, jtis_and_uses = ..)`:
///   reads run on the sqlx pool `self.$read`; `$last_used` is the store's statement for
///   `last_used` (the one that differs: how a JSON array of ids becomes a set).
/// - `authn_records!(Store, write = pool, jtis_and_uses = .., usage_reads { own })`: the store
///   gives its own `last_used`, `last_used_of` and `tombstoned` (SQLite).
macro_rules! authn_records {
    ($store:ty, read = $read:ident, write = $write:ident, last_used = $last_used:path,
     jtis_and_uses = $how:ident) => {
        $crate::authn_records::authn_records!($store, write = $write, jtis_and_uses = $how,
            usage_reads {
            async fn last_used(
                &self,
                client_ids: &[String],
            ) -> Result<std::collections::HashMap<String, i64>, dcr_core::store::StoreError> {
                let ids = serde_json::to_string(client_ids).map_err($crate::codec::backend)?;
                let rows: Vec<(String, i64)> = sqlx::query_as($last_used)
                    .bind(ids)
                    .fetch_all(&self.$read)
                    .await
                    .map_err($crate::codec::backend)?;
                Ok(rows.into_iter().collect())
            }

            async fn last_used_of(
                &self,
                client_id: &str,
            ) -> Result<Option<i64>, dcr_core::store::StoreError> {
                let row: Option<(i64,)> = sqlx::query_as($crate::authn_records::LAST_USED_ONE)
                    .bind(client_id)
                    .fetch_optional(&self.$read)
                    .await
                    .map_err($crate::codec::backend)?;
                Ok(row.map(|(at,)| at))
            }

            async fn tombstoned(
                &self,
                client_id: &str,
                now: i64,
            ) -> Result<bool, dcr_core::store::StoreError> {
                let row: Option<(i64,)> = sqlx::query_as($crate::authn_records::TOMBSTONED)
                    .bind(client_id)
                    .bind(now)
                    .fetch_optional(&self.$read)
                    .await
                    .map_err($crate::codec::backend)?;
                Ok(row.is_some())
            }
        });
    };
    ($store:ty, write = $write:ident, jtis_and_uses = $how:ident,
     usage_reads { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl dcr_core::authn::AssertionReplayStore for $store {
            async fn record_jti(
                &self,
                client_id: &str,
                jti: &str,
                expires_at: i64,
                now: i64,
            ) -> Result<bool, dcr_core::store::StoreError> {
                $crate::authn_records::authn_records!(
                    @record_jti $how, self, $write, client_id, jti, expires_at, now
                )
            }
        }

        #[async_trait::async_trait]
        impl dcr_core::authn::ClientUsageStore for $store {
            $($own)*

            async fn record_use(
                &self,
                client_id: &str,
                at: i64,
            ) -> Result<(), dcr_core::store::StoreError> {
                $crate::authn_records::authn_records!(@record_use $how, self, $write, client_id, at)
            }

            async fn add_tombstone(
                &self,
                client_id: &str,
                until: i64,
            ) -> Result<(), dcr_core::store::StoreError> {
                sqlx::query($crate::authn_records::DELETE_USAGE)
                    .bind(client_id)
                    .execute(&self.$write)
                    .await
                    .map_err($crate::codec::backend)?;
                sqlx::query($crate::authn_records::PUT_TOMBSTONE)
                    .bind(client_id)
                    .bind(until)
                    .execute(&self.$write)
                    .await
                    .map_err($crate::codec::backend)?;
                Ok(())
            }

            async fn remove_tombstone(
                &self,
                client_id: &str,
            ) -> Result<(), dcr_core::store::StoreError> {
                sqlx::query($crate::authn_records::REMOVE_TOMBSTONE)
                    .bind(client_id)
                    .execute(&self.$write)
                    .await
                    .map_err($crate::codec::backend)?;
                Ok(())
            }
        }
    };
    (@record_jti pool, $self:ident, $write:ident, $client_id:ident, $jti:ident, $expires_at:ident, $now:ident) => {{
        sqlx::query($crate::authn_records::PRUNE_JTIS)
            .bind($now)
            .execute(&$self.$write)
            .await
            .map_err($crate::codec::backend)?;
        let done = sqlx::query($crate::authn_records::RECORD_JTI)
            .bind($client_id)
            .bind($jti)
            .bind($expires_at)
            .bind($now)
            .execute(&$self.$write)
            .await
            .map_err($crate::codec::backend)?;
        Ok(done.rows_affected() == 1)
    }};
    (@record_jti writer_thread, $self:ident, $write:ident, $client_id:ident, $jti:ident, $expires_at:ident, $now:ident) => {
        $self.record_jti_committed($client_id, $jti, $expires_at, $now).await
    };
    (@record_use pool, $self:ident, $write:ident, $client_id:ident, $at:ident) => {{
        sqlx::query($crate::authn_records::RECORD_USE)
            .bind($client_id)
            .bind($at)
            .execute(&$self.$write)
            .await
            .map_err($crate::codec::backend)?;
        Ok(())
    }};
    (@record_use writer_thread, $self:ident, $write:ident, $client_id:ident, $at:ident) => {
        $self.record_use_committed($client_id, $at).await
    };
}

pub(crate) use authn_records;
