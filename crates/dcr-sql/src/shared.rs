//! What the SQLite and PostgreSQL stores do alike, written once.
//!
//! Most statements are the same text on both: they use `$N` placeholders, which SQLite accepts
//! too, and `CAST(.. AS TEXT)` where PostgreSQL needs a parameter's type. The stores differ in
//! how they write clients (SQLite group-commits through one writer thread; PostgreSQL locks rows
//! in one transaction per request), so each gives its own `insert_client`, `update_client` and
//! `delete_client`, and [`sql_store!`] adds the rest. They also read differently: PostgreSQL
//! through sqlx, SQLite through its own `rusqlite` readers (`sqlite/read.rs`); both run the
//! statements below.

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

/// The client `$1`: [`client_columns!`](crate::codec::client_columns).
pub(crate) const GET_CLIENT: &str = concat!(
    "SELECT ",
    crate::codec::client_columns!(),
    " FROM clients WHERE client_id = $1"
);

/// At most `$2` clients after the id `$1` (from the first if `$1` is null), in id order. Ids
/// compare byte by byte on both (`COLLATE "C"` on PostgreSQL): the primary key serves this.
pub(crate) const LIST_CLIENTS: &str = concat!(
    "SELECT ",
    crate::codec::client_columns!(),
    " FROM clients WHERE CAST($1 AS TEXT) IS NULL OR client_id > CAST($1 AS TEXT) \
    ORDER BY client_id LIMIT $2"
);

/// The registration access token hashed as `$1`.
pub(crate) const GET_RAT: &str = concat!(
    "SELECT ",
    crate::codec::rat_columns!(),
    " FROM registration_access_tokens WHERE token_hash = $1"
);

/// At most `$1` unmanaged open clients, oldest first: `client_id, created_at`.
pub(crate) const UNMANAGED_OPEN_CLIENTS: &str = "SELECT client_id, created_at FROM clients \
    WHERE initial_access_token_id IS NULL AND managed_at IS NULL \
    ORDER BY created_at, client_id LIMIT $1";

/// How many clients are unmanaged open ones.
pub(crate) const COUNT_UNMANAGED_OPEN_CLIENTS: &str = "SELECT COUNT(*) FROM clients \
    WHERE initial_access_token_id IS NULL AND managed_at IS NULL";

/// What a readiness probe runs.
pub(crate) const PING: &str = "SELECT 1";

/// Stores an initial access token: [`iat_columns!`](crate::codec::iat_columns).
pub(crate) const INSERT_IAT: &str = concat!(
    "INSERT INTO initial_access_tokens (",
    crate::codec::iat_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
);

/// The initial access token hashed as `$1`.
pub(crate) const GET_IAT: &str = concat!(
    "SELECT ",
    crate::codec::iat_columns!(),
    " FROM initial_access_tokens WHERE token_hash = $1"
);

/// Every initial access token, by creation time.
pub(crate) const LIST_IATS: &str = concat!(
    "SELECT ",
    crate::codec::iat_columns!(),
    " FROM initial_access_tokens ORDER BY created_at, id"
);

/// Implements `ClientStore` and `InitialAccessTokenStore` for `$store`, whose own `ClientStore`
/// methods are `$own`. Writes run on the pool `self.$write`; `close` is the store's inherent
/// `close`.
///
/// - `sql_store!(Store, read = pool, write = pool, { own })`: reads run on the sqlx pool
///   `self.$read` too (PostgreSQL).
/// - `sql_store!(Store, write = pool, clients { own }, iats { own })`: the store gives its own
///   reads: in `clients`, with its client writes, `get_client`,
///   `find_registration_access_token`, `list_clients`, `unmanaged_open_clients`,
///   `count_unmanaged_open_clients` and `ping`; in `iats`, `find_initial_access_token` and
///   `list_initial_access_tokens` (SQLite).
macro_rules! sql_store {
    ($store:ty, read = $read:ident, write = $write:ident, { $($own:tt)* }) => {
        $crate::shared::sql_store!($store, write = $write, clients {
            $($own)*

            async fn get_client(
                &self,
                client_id: &str,
            ) -> Result<Option<dcr_core::store::ClientRecord>, dcr_core::store::StoreError> {
                let row: Option<$crate::codec::ClientRow> =
                    sqlx::query_as($crate::shared::GET_CLIENT)
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
                let row: Option<$crate::codec::RatRow> = sqlx::query_as($crate::shared::GET_RAT)
                    .bind(hash.as_bytes().as_slice())
                    .fetch_optional(&self.$read)
                    .await
                    .map_err($crate::codec::backend)?;
                row.map($crate::codec::rat_from_row).transpose()
            }

            async fn list_clients(
                &self,
                after: Option<&str>,
                limit: usize,
            ) -> Result<Vec<dcr_core::store::ClientRecord>, dcr_core::store::StoreError> {
                dcr_core::store::list_decodable(after, limit, |after, limit| async move {
                    let rows: Vec<$crate::codec::ClientRow> =
                        sqlx::query_as($crate::shared::LIST_CLIENTS)
                            .bind(after)
                            .bind($crate::codec::u64_to_i64(limit as u64))
                            .fetch_all(&self.$read)
                            .await
                            .map_err($crate::codec::backend)?;
                    Ok(rows.into_iter().map($crate::codec::client_from_row).collect())
                })
                .await
            }

            async fn unmanaged_open_clients(
                &self,
                limit: usize,
            ) -> Result<Vec<(String, i64)>, dcr_core::store::StoreError> {
                sqlx::query_as($crate::shared::UNMANAGED_OPEN_CLIENTS)
                    .bind($crate::codec::u64_to_i64(limit as u64))
                    .fetch_all(&self.$read)
                    .await
                    .map_err($crate::codec::backend)
            }

            async fn count_unmanaged_open_clients(
                &self,
            ) -> Result<u64, dcr_core::store::StoreError> {
                let (n,): (i64,) = sqlx::query_as($crate::shared::COUNT_UNMANAGED_OPEN_CLIENTS)
                    .fetch_one(&self.$read)
                    .await
                    .map_err($crate::codec::backend)?;
                Ok($crate::codec::i64_to_u64(n))
            }

            async fn ping(&self) -> Result<(), dcr_core::store::StoreError> {
                sqlx::query($crate::shared::PING)
                    .execute(&self.$read)
                    .await
                    .map_err($crate::codec::backend)?;
                Ok(())
            }
        }, iats {
            async fn find_initial_access_token(
                &self,
                hash: &dcr_core::token::TokenHash,
            ) -> Result<
                Option<dcr_core::store::InitialAccessTokenRecord>,
                dcr_core::store::StoreError,
            > {
                let row: Option<$crate::codec::IatRow> = sqlx::query_as($crate::shared::GET_IAT)
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
                let rows: Vec<$crate::codec::IatRow> = sqlx::query_as($crate::shared::LIST_IATS)
                    .fetch_all(&self.$read)
                    .await
                    .map_err($crate::codec::backend)?;
                rows.into_iter().map($crate::codec::iat_from_row).collect()
            }
        });
    };
    (
        $store:ty,
        write = $write:ident,
        clients { $($own:tt)* },
        iats { $($own_iats:tt)* }
    ) => {
        #[async_trait::async_trait]
        impl dcr_core::store::ClientStore for $store {
            $($own)*

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

            async fn close(&self) {
                <$store>::close(self).await;
            }
        }

        #[async_trait::async_trait]
        impl dcr_core::store::InitialAccessTokenStore for $store {
            $($own_iats)*

            async fn insert_initial_access_token(
                &self,
                t: &dcr_core::store::InitialAccessTokenRecord,
            ) -> Result<(), dcr_core::store::StoreError> {
                sqlx::query($crate::shared::INSERT_IAT)
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
