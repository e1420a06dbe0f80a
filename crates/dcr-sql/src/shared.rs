//! What the SQLite and PostgreSQL stores do alike, written once.
//!
//! Most statements are the same text on both: they use `$N` placeholders, which SQLite accepts
//! too, and `CAST(.. AS TEXT)` where PostgreSQL needs a parameter's type. The stores differ in
//! how they write clients (SQLite group-commits through one writer thread; PostgreSQL locks rows
//! in one transaction per request), so each gives its own `insert_client`, `update_client` and
//! `delete_client`, and [`sql_store!`] adds the rest.

/// Spends one use of the initial access token `$1` at time `$2`, if it is still usable (one
/// row changed).
pub(crate) const SPEND_INITIAL_ACCESS_TOKEN: &str = "UPDATE initial_access_tokens \
    SET uses = uses + 1 WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2) \
    AND (max_uses IS NULL OR uses < max_uses)";

/// Inserts a client: `client_id, metadata, created_at, updated_at, initial_access_token_id,
/// managed_at`.
pub(crate) const INSERT_CLIENT: &str = "INSERT INTO clients \
    (client_id, metadata, created_at, updated_at, initial_access_token_id, managed_at) \
    VALUES ($1, $2, $3, $4, $5, $6)";

/// Inserts a registration access token: `token_hash, client_id, policies, created_at`.
pub(crate) const INSERT_RAT: &str = "INSERT INTO registration_access_tokens \
    (token_hash, client_id, policies, created_at) VALUES ($1, $2, $3, $4)";

/// Implements `ClientStore` and `InitialAccessTokenStore` for `$store`, whose own `ClientStore`
/// methods are `$own`. Reads run on the pool `self.$read`, writes on `self.$write`; `close` is
/// the store's inherent `close`.
macro_rules! sql_store {
    ($store:ty, read = $read:ident, write = $write:ident, { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl dcr_core::store::ClientStore for $store {
            $($own)*

            async fn get_client(
                &self,
                client_id: &str,
            ) -> Result<Option<dcr_core::store::ClientRecord>, dcr_core::store::StoreError> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM clients WHERE client_id = $1",
                    $crate::codec::CLIENT_COLUMNS
                ));
                let row: Option<$crate::codec::ClientRow> = sqlx::query_as(sql)
                    .bind(client_id)
                    .fetch_optional(&self.$read)
                    .await
                    .map_err($crate::codec::backend)?;
                row.map($crate::codec::client_from_row).transpose()
            }

            async fn find_registration_access_token(
                &self,
                hash: &dcr_core::token::TokenHash,
            ) -> Result<
                Option<dcr_core::store::RegistrationAccessTokenRecord>,
                dcr_core::store::StoreError,
            > {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM registration_access_tokens WHERE token_hash = $1",
                    $crate::codec::RAT_COLUMNS
                ));
                let row: Option<$crate::codec::RatRow> = sqlx::query_as(sql)
                    .bind(hash.as_bytes().as_slice())
                    .fetch_optional(&self.$read)
                    .await
                    .map_err($crate::codec::backend)?;
                row.map($crate::codec::rat_from_row).transpose()
            }

            async fn revoke_registration_access_token(
                &self,
                hash: &dcr_core::token::TokenHash,
            ) -> Result<(), dcr_core::store::StoreError> {
                sqlx::query("DELETE FROM registration_access_tokens WHERE token_hash = $1")
                    .bind(hash.as_bytes().as_slice())
                    .execute(&self.$write)
                    .await
                    .map_err($crate::codec::backend)?;
                Ok(())
            }

            async fn list_clients(
                &self,
                after: Option<&str>,
                limit: usize,
            ) -> Result<Vec<dcr_core::store::ClientRecord>, dcr_core::store::StoreError> {
                dcr_core::store::list_decodable(after, limit, |after, limit| async move {
                    // Ids compare byte by byte on both (`COLLATE "C"` on PostgreSQL): the
                    // primary key serves this.
                    let sql = sqlx::AssertSqlSafe(format!(
                        "SELECT {} FROM clients WHERE CAST($1 AS TEXT) IS NULL \
                         OR client_id > CAST($1 AS TEXT) ORDER BY client_id LIMIT $2",
                        $crate::codec::CLIENT_COLUMNS
                    ));
                    let rows: Vec<$crate::codec::ClientRow> = sqlx::query_as(sql)
                        .bind(after)
                        .bind($crate::codec::u64_to_i64(limit as u64))
                        .fetch_all(&self.$read)
                        .await
                        .map_err($crate::codec::backend)?;
                    Ok(rows.into_iter().map($crate::codec::client_from_row).collect())
                })
                .await
            }

            async fn mark_managed(
                &self,
                client_id: &str,
                at: i64,
            ) -> Result<(), dcr_core::store::StoreError> {
                sqlx::query(
                    "UPDATE clients SET managed_at = $2 WHERE client_id = $1 AND managed_at IS NULL",
                )
                .bind(client_id)
                .bind(at)
                .execute(&self.$write)
                .await
                .map_err($crate::codec::backend)?;
                Ok(())
            }

            async fn unmanaged_open_clients(
                &self,
                limit: usize,
            ) -> Result<Vec<(String, i64)>, dcr_core::store::StoreError> {
                sqlx::query_as(
                    "SELECT client_id, created_at FROM clients \
                     WHERE initial_access_token_id IS NULL AND managed_at IS NULL \
                     ORDER BY created_at, client_id LIMIT $1",
                )
                .bind($crate::codec::u64_to_i64(limit as u64))
                .fetch_all(&self.$read)
                .await
                .map_err($crate::codec::backend)
            }

            async fn count_unmanaged_open_clients(
                &self,
            ) -> Result<u64, dcr_core::store::StoreError> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM clients \
                     WHERE initial_access_token_id IS NULL AND managed_at IS NULL",
                )
                .fetch_one(&self.$read)
                .await
                .map_err($crate::codec::backend)?;
                Ok($crate::codec::i64_to_u64(n))
            }

            async fn ping(&self) -> Result<(), dcr_core::store::StoreError> {
                sqlx::query("SELECT 1")
                    .execute(&self.$read)
                    .await
                    .map_err($crate::codec::backend)?;
                Ok(())
            }

            async fn close(&self) {
                <$store>::close(self).await;
            }
        }

        #[async_trait::async_trait]
        impl dcr_core::store::InitialAccessTokenStore for $store {
            async fn insert_initial_access_token(
                &self,
                t: &dcr_core::store::InitialAccessTokenRecord,
            ) -> Result<(), dcr_core::store::StoreError> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "INSERT INTO initial_access_tokens ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    $crate::codec::IAT_COLUMNS
                ));
                sqlx::query(sql)
                    .bind(&t.id)
                    .bind(t.hash.as_bytes().as_slice())
                    .bind(&t.label)
                    .bind($crate::codec::policies_to_text(&t.policies)?)
                    .bind(t.created_at)
                    .bind(t.expires_at)
                    .bind(t.max_uses.map($crate::codec::u64_to_i64))
                    .bind($crate::codec::u64_to_i64(t.uses))
                    .execute(&self.$write)
                    .await
                    .map_err(|e| {
                        $crate::codec::or_conflict(e, dcr_core::store::StoreError::TokenExists)
                    })?;
                Ok(())
            }

            async fn find_initial_access_token(
                &self,
                hash: &dcr_core::token::TokenHash,
            ) -> Result<
                Option<dcr_core::store::InitialAccessTokenRecord>,
                dcr_core::store::StoreError,
            > {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM initial_access_tokens WHERE token_hash = $1",
                    $crate::codec::IAT_COLUMNS
                ));
                let row: Option<$crate::codec::IatRow> = sqlx::query_as(sql)
                    .bind(hash.as_bytes().as_slice())
                    .fetch_optional(&self.$read)
                    .await
                    .map_err($crate::codec::backend)?;
                row.map($crate::codec::iat_from_row).transpose()
            }

            async fn list_initial_access_tokens(
                &self,
            ) -> Result<Vec<dcr_core::store::InitialAccessTokenRecord>, dcr_core::store::StoreError>
            {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM initial_access_tokens ORDER BY created_at, id",
                    $crate::codec::IAT_COLUMNS
                ));
                let rows: Vec<$crate::codec::IatRow> = sqlx::query_as(sql)
                    .fetch_all(&self.$read)
                    .await
                    .map_err($crate::codec::backend)?;
                rows.into_iter().map($crate::codec::iat_from_row).collect()
            }

            async fn revoke_initial_access_token(
                &self,
                id: &str,
            ) -> Result<bool, dcr_core::store::StoreError> {
                let done = sqlx::query("DELETE FROM initial_access_tokens WHERE id = $1")
                    .bind(id)
                    .execute(&self.$write)
                    .await
                    .map_err($crate::codec::backend)?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use sql_store;

/// The end of a `delete_client`: commits `tx` if it deleted the client (`rows` is the count of
/// client rows deleted), else drops it, which rolls back whatever it did.
pub(crate) async fn commit_if_deleted<DB: sqlx::Database>(
    tx: sqlx::Transaction<'_, DB>,
    rows: u64,
) -> Result<bool, dcr_core::store::StoreError> {
    if rows != 1 {
        return Ok(false);
    }
    tx.commit().await.map_err(crate::codec::backend)?;
    Ok(true)
}
