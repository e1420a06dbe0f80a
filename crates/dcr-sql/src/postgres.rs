//! The PostgreSQL store: one database shared by any number of `dcr` processes.
//!
//! Every process reads and writes the database directly; nothing is cached in memory, so a
//! token revoked or a client deleted through one process is gone for all of them at once.
//!
//! Transactions run at PostgreSQL's default isolation, READ COMMITTED. Where a decision depends
//! on a row that a concurrent transaction may change, the row is locked first (or changed with
//! a conditional `UPDATE`/`DELETE`, whose row lock makes a waiting transaction re-check the
//! condition against the committed row):
//!
//! - registration spends an initial access token use with one conditional `UPDATE`;
//! - an update locks the presented registration access token (deleting it when rotating), then
//!   the client row, so two rotations with one token never both succeed and two updates are
//!   applied one after the other, never mixed.

mod authn;
use std::str::FromStr as _;
use std::time::Duration;

use dcr_core::store::{
    ClientRecord, ClientStore, ClientUpdate, InitialAccessTokenRecord, InitialAccessTokenStore,
    NewClient, RegistrationAccessTokenRecord, StoreError,
};
use dcr_core::token::TokenHash;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// The shared cache of Client ID Metadata Documents.
mod cimd;

use crate::codec::{
    backend, hash_from_bytes, i64_to_u64, metadata_from_text, metadata_to_text, policies_from_text,
    policies_to_text, u64_to_i64,
};

/// How a [`PgStore`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgStoreOptions {
    /// Most connections the pool of this process opens.
    pub max_connections: u32,
    /// Longest wait for a new connection at start-up (the migration and the first pool connection).
    pub connect_timeout: Duration,
    /// Longest wait of a query for a pooled connection (including opening one).
    pub acquire_timeout: Duration,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// A store in a PostgreSQL database, safe to share between several `dcr` processes.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

type ClientRow = (String, String, i64, i64, Option<String>, Option<i64>);
type IatRow = (
    String,
    Vec<u8>,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    i64,
);

const CLIENT_COLUMNS: &str =
    "client_id, metadata, created_at, updated_at, initial_access_token_id, managed_at";
const IAT_COLUMNS: &str = "id, token_hash, label, policies, created_at, expires_at, max_uses, uses";

fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn client_from_row(row: ClientRow) -> Result<ClientRecord, StoreError> {
    let (client_id, metadata, created_at, updated_at, initial_access_token_id, managed_at) = row;
    Ok(ClientRecord {
        client_id,
        metadata: metadata_from_text(&metadata)?,
        created_at,
        updated_at,
        initial_access_token_id,
        managed_at,
    })
}

fn iat_from_row(row: IatRow) -> Result<InitialAccessTokenRecord, StoreError> {
    let (id, hash, label, policies, created_at, expires_at, max_uses, uses) = row;
    Ok(InitialAccessTokenRecord {
        id,
        hash: hash_from_bytes(&hash)?,
        label,
        policies: policies_from_text(&policies)?,
        created_at,
        expires_at,
        max_uses: max_uses.map(i64_to_u64),
        uses: i64_to_u64(uses),
    })
}

/// Parses a `postgres://` URL. The error never repeats the URL (it may hold a password).
pub fn parse_url(url: &str) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url)
        .map_err(|_| StoreError::Backend("not a valid postgres:// URL".into()))
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`) and applies
    /// pending migrations.
    pub async fn open(url: &str, options: &PgStoreOptions) -> Result<Self, StoreError> {
        Self::open_with(parse_url(url)?, options).await
    }

    /// Connects with explicit connection options and applies pending migrations.
    ///
    /// Several processes may open the same database at once: sqlx's PostgreSQL migrator holds
    /// a session advisory lock (keyed on the database name) while it checks and applies
    /// migrations, so exactly one applies each migration and the others wait, then find it
    /// applied. The migration runs on a connection of its own that is closed afterwards, so
    /// the lock is released even when a migration fails.
    pub async fn open_with(
        connect: PgConnectOptions,
        options: &PgStoreOptions,
    ) -> Result<Self, StoreError> {
        let connect = connect.application_name("dcr");
        // A pool of one connection of its own for the migration, closed afterwards whatever
        // happened: closing ends the session, which releases the advisory lock.
        let migration_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect.clone());
        let migration_pool = tokio::time::timeout(options.connect_timeout, migration_pool)
            .await
            .map_err(|_| StoreError::Backend("timed out connecting to PostgreSQL".into()))?
            .map_err(backend)?;
        let migrated = sqlx::migrate!("./migrations/postgres")
            .run(&migration_pool)
            .await;
        migration_pool.close().await;
        migrated.map_err(backend)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect);
        let pool = tokio::time::timeout(options.connect_timeout, pool)
            .await
            .map_err(|_| StoreError::Backend("timed out connecting to PostgreSQL".into()))?
            .map_err(backend)?;
        Ok(Self { pool })
    }

    /// Closes the connections (after in-flight queries finish).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait::async_trait]
impl ClientStore for PgStore {
    async fn insert_client(&self, new: NewClient<'_>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        if let Some((id, now)) = new.spend_initial_access_token {
            // The row lock taken by the UPDATE makes concurrent spenders queue, and each
            // re-checks the use limit against the committed count.
            let spent = sqlx::query(
                "UPDATE initial_access_tokens SET uses = uses + 1 WHERE id = $1 \
                 AND (expires_at IS NULL OR expires_at > $2) AND (max_uses IS NULL OR uses < max_uses)",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            if spent.rows_affected() != 1 {
                return Err(StoreError::InitialAccessTokenUnavailable);
            }
        }
        let c = new.client;
        sqlx::query(
            "INSERT INTO clients (client_id, metadata, created_at, updated_at, initial_access_token_id, managed_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&c.client_id)
        .bind(metadata_to_text(&c.metadata))
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(&c.initial_access_token_id)
        .bind(c.managed_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::ClientExists } else { backend(e) })?;
        if let Some(rat) = new.registration_access_token {
            insert_rat(&mut tx, rat).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1"
        ));
        let row: Option<ClientRow> = sqlx::query_as(sql)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(client_from_row).transpose()
    }

    async fn update_client(&self, update: ClientUpdate<'_>) -> Result<(), StoreError> {
        let c = update.client;
        let presented = update.presented.as_bytes().as_slice();
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // 1. The presented token, locked (lock order everywhere: token, then client).
        let token_held = if update.rotate_to.is_some() {
            // Deleting locks the row; a concurrent rotation with the same token waits, then
            // finds the row gone and deletes nothing.
            sqlx::query(
                "DELETE FROM registration_access_tokens WHERE token_hash = $1 AND client_id = $2",
            )
            .bind(presented)
            .bind(&c.client_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected()
                == 1
        } else {
            // A shared lock: other non-rotating updates may hold it too, but a rotation,
            // a revocation or a delete waits for us (and we for them).
            sqlx::query(
                "SELECT 1 FROM registration_access_tokens WHERE token_hash = $1 AND client_id = $2 FOR SHARE",
            )
            .bind(presented)
            .bind(&c.client_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
            .is_some()
        };
        if !token_held {
            return Err(StoreError::RegistrationAccessTokenGone);
        }
        // 2. The client row, locked, so concurrent updates are applied one after the other.
        let client_held =
            sqlx::query("SELECT 1 FROM clients WHERE client_id = $1 FOR NO KEY UPDATE")
                .bind(&c.client_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?
                .is_some();
        if !client_held {
            return Err(StoreError::RegistrationAccessTokenGone);
        }
        sqlx::query(
            "UPDATE clients SET metadata = $2, updated_at = $3, managed_at = COALESCE(managed_at, $4) \
             WHERE client_id = $1",
        )
        .bind(&c.client_id)
        .bind(metadata_to_text(&c.metadata))
        .bind(c.updated_at)
        .bind(c.managed_at)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        // 3. The new token.
        if let Some(new) = update.rotate_to {
            insert_rat(&mut tx, new).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("DELETE FROM registration_access_tokens WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn find_registration_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RegistrationAccessTokenRecord>, StoreError> {
        let row: Option<(Vec<u8>, String, String, i64)> = sqlx::query_as(
            "SELECT token_hash, client_id, policies, created_at FROM registration_access_tokens WHERE token_hash = $1",
        )
        .bind(hash.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|(h, client_id, policies, created_at)| {
            Ok(RegistrationAccessTokenRecord {
                hash: hash_from_bytes(&h)?,
                client_id,
                policies: policies_from_text(&policies)?,
                created_at,
            })
        })
        .transpose()
    }

    async fn revoke_registration_access_token(&self, hash: &TokenHash) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM registration_access_tokens WHERE token_hash = $1")
            .bind(hash.as_bytes().as_slice())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn list_clients(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        // Ids are `COLLATE "C"` (byte order, like the other stores): the primary key serves this.
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CLIENT_COLUMNS} FROM clients \
             WHERE $1::text IS NULL OR client_id > $1::text ORDER BY client_id LIMIT $2"
        ));
        let rows: Vec<ClientRow> = sqlx::query_as(sql)
            .bind(after)
            .bind(u64_to_i64(limit as u64))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.into_iter().map(client_from_row).collect()
    }

    async fn mark_managed(&self, client_id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE clients SET managed_at = $2 WHERE client_id = $1 AND managed_at IS NULL",
        )
        .bind(client_id)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn unmanaged_open_clients(&self, limit: usize) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as(
            "SELECT client_id, created_at FROM clients WHERE initial_access_token_id IS NULL AND managed_at IS NULL \
             ORDER BY created_at, client_id LIMIT $1",
        )
        .bind(u64_to_i64(limit as u64))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)
    }

    async fn count_unmanaged_open_clients(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM clients WHERE initial_access_token_id IS NULL AND managed_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(i64_to_u64(n))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

async fn insert_rat(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    rat: &RegistrationAccessTokenRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO registration_access_tokens (token_hash, client_id, policies, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(rat.hash.as_bytes().as_slice())
    .bind(&rat.client_id)
    .bind(policies_to_text(&rat.policies)?)
    .bind(rat.created_at)
    .execute(&mut **tx)
    .await
    .map_err(|e| if is_unique_violation(&e) { StoreError::TokenExists } else { backend(e) })?;
    Ok(())
}

#[async_trait::async_trait]
impl InitialAccessTokenStore for PgStore {
    async fn insert_initial_access_token(
        &self,
        t: &InitialAccessTokenRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO initial_access_tokens (id, token_hash, label, policies, created_at, expires_at, max_uses, uses) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&t.id)
        .bind(t.hash.as_bytes().as_slice())
        .bind(&t.label)
        .bind(policies_to_text(&t.policies)?)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.max_uses.map(u64_to_i64))
        .bind(u64_to_i64(t.uses))
        .execute(&self.pool)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::TokenExists } else { backend(e) })?;
        Ok(())
    }

    async fn find_initial_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<InitialAccessTokenRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {IAT_COLUMNS} FROM initial_access_tokens WHERE token_hash = $1"
        ));
        let row: Option<IatRow> = sqlx::query_as(sql)
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(iat_from_row).transpose()
    }

    async fn list_initial_access_tokens(
        &self,
    ) -> Result<Vec<InitialAccessTokenRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {IAT_COLUMNS} FROM initial_access_tokens ORDER BY created_at, id"
        ));
        let rows: Vec<IatRow> = sqlx::query_as(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.into_iter().map(iat_from_row).collect()
    }

    async fn revoke_initial_access_token(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM initial_access_tokens WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }
}
