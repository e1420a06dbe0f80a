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
//!   applied one after the other, never mixed;
//! - a delete by registration access token locks (deletes) that token first, in the same
//!   order, so a delete and a rotation with one token never both succeed.

mod authn;
use std::str::FromStr as _;
use std::time::Duration;

use dcr_core::store::{
    ClientDeletion, ClientUpdate, NewClient, RegistrationAccessTokenRecord, StoreError,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};

/// The shared cache of Client ID Metadata Documents.
mod cimd;

use crate::codec::{backend, metadata_to_text, or_conflict, policies_to_text};
use crate::shared::{
    INSERT_CLIENT, INSERT_RAT, SPEND_INITIAL_ACCESS_TOKEN, commit_if_deleted, sql_store,
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

/// Parses a `postgres://` URL. The error never repeats the URL (it may hold a password).
///
/// TLS follows the URL's `sslmode` and `sslrootcert` as libpq does (see the README, "Running
/// several instances"): `disable`, `prefer` (the default), `require`, `verify-ca`,
/// `verify-full`. As in libpq, `require` with a root certificate (`sslrootcert`, or
/// `PGSSLROOTCERT`) verifies the chain, like `verify-ca`.
pub fn parse_url(url: &str) -> Result<PgConnectOptions, StoreError> {
    if let Some(mode) = query_value(url, &["sslmode", "ssl-mode"])
        && mode.parse::<PgSslMode>().is_err()
    {
        return Err(StoreError::backend(format!(
            "sslmode {mode:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
        )));
    }
    let options = PgConnectOptions::from_str(url)
        .map_err(|_| StoreError::Backend("not a valid postgres:// URL".into()))?;
    if matches!(options.get_ssl_mode(), PgSslMode::Require) && names_root_cert(url) {
        return Ok(options.ssl_mode(PgSslMode::VerifyCa));
    }
    Ok(options)
}

/// The value of the first of `keys` in the URL's query (as written: these values need no
/// decoding), if any.
fn query_value<'a>(url: &'a str, keys: &[&str]) -> Option<&'a str> {
    let (_, query) = url.split_once('?')?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        keys.contains(&key).then_some(value)
    })
}

/// Whether the URL's query, or the environment, names a root certificate file.
fn names_root_cert(url: &str) -> bool {
    query_value(url, &["sslrootcert", "ssl-root-cert", "ssl-ca"]).is_some()
        || std::env::var_os("PGSSLROOTCERT").is_some()
}

/// `sslmode` as the URL spells it.
fn ssl_mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// Why connecting to the server of `connect` failed, naming the server and the TLS mode (never
/// the password).
fn connect_error(connect: &PgConnectOptions, err: impl std::fmt::Display) -> StoreError {
    let mode = ssl_mode_name(connect.get_ssl_mode());
    let mut reason = err.to_string();
    // rustls refusing the certificate surfaces as an I/O error: say what to check.
    if reason.contains("peer certificate") {
        reason = format!(
            "TLS: the server's certificate was refused ({reason}); check sslrootcert (the CA \
             that signed it){}",
            if mode == "verify-full" {
                " and that the URL's host is a name the certificate is for"
            } else {
                ""
            }
        );
    }
    StoreError::backend(format!(
        "cannot connect to PostgreSQL at {}:{} (sslmode={mode}): {reason}",
        connect.get_host(),
        connect.get_port()
    ))
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
            .map_err(|_| connect_error(&connect, "timed out"))?
            .map_err(|e| connect_error(&connect, e))?;
        let migrated = sqlx::migrate!("./migrations/postgres")
            .run(&migration_pool)
            .await;
        migration_pool.close().await;
        migrated.map_err(backend)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone());
        let pool = tokio::time::timeout(options.connect_timeout, pool)
            .await
            .map_err(|_| connect_error(&connect, "timed out"))?
            .map_err(|e| connect_error(&connect, e))?;
        Ok(Self { pool })
    }

    /// Closes the connections (after in-flight queries finish).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

sql_store!(PgStore, read = pool, write = pool, {
    async fn insert_client(&self, new: NewClient<'_>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        if let Some((id, now)) = new.spend_initial_access_token {
            // The row lock taken by the UPDATE makes concurrent spenders queue, and each
            // re-checks the use limit against the committed count.
            let spent = sqlx::query(SPEND_INITIAL_ACCESS_TOKEN)
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
        sqlx::query(INSERT_CLIENT)
            .bind(&c.client_id)
            .bind(metadata_to_text(&c.metadata))
            .bind(c.created_at)
            .bind(c.updated_at)
            .bind(&c.initial_access_token_id)
            .bind(c.managed_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| or_conflict(e, StoreError::ClientExists))?;
        if let Some(rat) = new.registration_access_token {
            insert_rat(&mut tx, rat).await?;
        }
        tx.commit().await.map_err(backend)
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

    async fn delete_client(
        &self,
        client_id: &str,
        deletion: ClientDeletion<'_>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        if let ClientDeletion::ByToken(hash) = deletion {
            // The presented token first, deleted (locked), as an update locks it: a concurrent
            // rotation with it either finished (we find it gone) or waits and finds it gone.
            let held = sqlx::query(
                "DELETE FROM registration_access_tokens WHERE token_hash = $1 AND client_id = $2",
            )
            .bind(hash.as_bytes().as_slice())
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected()
                == 1;
            if !held {
                return Ok(false);
            }
        }
        sqlx::query("DELETE FROM registration_access_tokens WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // Then the client, by the same lock order as an update (token, then client); when
        // pruning, only while it is still unmanaged (re-checked on the row once locked).
        let deleted = sqlx::query(
            "DELETE FROM clients WHERE client_id = $1 \
             AND (NOT $2 OR (initial_access_token_id IS NULL AND managed_at IS NULL))",
        )
        .bind(client_id)
        .bind(matches!(deletion, ClientDeletion::IfUnmanagedOpen))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        // Not deleted: rolled back, its tokens stay.
        commit_if_deleted(tx, deleted.rows_affected()).await
    }
});

async fn insert_rat(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    rat: &RegistrationAccessTokenRecord,
) -> Result<(), StoreError> {
    sqlx::query(INSERT_RAT)
        .bind(rat.hash.as_bytes().as_slice())
        .bind(&rat.client_id)
        .bind(policies_to_text(&rat.policies)?)
        .bind(rat.created_at)
        .execute(&mut **tx)
        .await
        .map_err(|e| or_conflict(e, StoreError::TokenExists))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> &'static str {
        ssl_mode_name(parse_url(url).unwrap().get_ssl_mode())
    }

    #[test]
    fn sslmode_is_read_from_the_url_as_libpq_reads_it() {
        if std::env::var_os("PGSSLMODE").is_some() || std::env::var_os("PGSSLROOTCERT").is_some() {
            return;
        }
        assert_eq!(mode("postgres://u@h/db"), "prefer", "the default");
        for m in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            assert_eq!(mode(&format!("postgres://u@h/db?sslmode={m}")), m);
        }
        assert_eq!(
            mode("postgres://u@h/db?sslmode=require&sslrootcert=/ca.pem"),
            "verify-ca",
            "require with a root certificate verifies the chain"
        );
        assert_eq!(
            mode("postgres://u@h/db?sslrootcert=/ca.pem&sslmode=verify-full"),
            "verify-full"
        );
    }

    #[test]
    fn an_unknown_sslmode_is_named_and_the_url_is_not_repeated() {
        let err = parse_url("postgres://u:hunter2@h/db?sslmode=verify").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("\"verify\" is not one of"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}
