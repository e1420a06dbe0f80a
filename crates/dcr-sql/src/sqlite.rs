use std::path::Path;
use std::time::Duration;

use dcr_core::store::{
    ClientRecord, ClientStore, ClientUpdate, InitialAccessTokenRecord, InitialAccessTokenStore,
    NewClient, RegistrationAccessTokenRecord, StoreError,
};
use dcr_core::token::TokenHash;
use sqlx::SqliteConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot};

use crate::codec::{
    backend, hash_from_bytes, i64_to_u64, metadata_from_text, metadata_to_text, policies_from_text,
    policies_to_text, u64_to_i64,
};

/// A store in one SQLite file (WAL journal, `synchronous = FULL`: a write returns only once
/// it is durable).
///
/// Writes go through a single connection, so they never contend inside one process; reads use
/// a pool. Other processes (such as `dcr iat create`) may write to the same file at the same time.
///
/// Client inserts and updates are **group-committed**: a writer task takes every insert and
/// update queued at that moment (up to [`MAX_BATCH`]), applies each inside its own savepoint
/// (so one failing write does not affect the others), commits them in one transaction — one
/// fsync for the whole group — and only then answers each caller. Durability is unchanged:
/// no call returns `Ok` before its write is committed with `synchronous = FULL`.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    jobs: mpsc::Sender<Job>,
}

/// The most writes committed in one transaction.
pub const MAX_BATCH: usize = 512;

/// A registration access token row, owned so that it can travel to the writer task.
#[derive(Debug)]
struct RatRow {
    hash: [u8; 32],
    client_id: String,
    policies: String,
    created_at: i64,
}

impl RatRow {
    fn of(rat: &RegistrationAccessTokenRecord) -> Result<Self, StoreError> {
        Ok(Self {
            hash: *rat.hash.as_bytes(),
            client_id: rat.client_id.clone(),
            policies: policies_to_text(&rat.policies)?,
            created_at: rat.created_at,
        })
    }
}

/// A write the writer task applies in a group commit.
#[derive(Debug)]
enum WriteOp {
    Insert {
        client_id: String,
        metadata: String,
        created_at: i64,
        updated_at: i64,
        initial_access_token_id: Option<String>,
        managed_at: Option<i64>,
        rat: Option<RatRow>,
        spend: Option<(String, i64)>,
    },
    Update {
        client_id: String,
        metadata: String,
        updated_at: i64,
        managed_at: Option<i64>,
        presented: [u8; 32],
        rotate_to: Option<RatRow>,
    },
}

#[derive(Debug)]
struct Job {
    op: WriteOp,
    done: oneshot::Sender<Result<(), StoreError>>,
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

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(backend)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(backend)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(backend)?;
        let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_loop(writer.clone(), queue));
        Ok(Self {
            writer,
            reader,
            jobs,
        })
    }

    /// Hands `op` to the writer task and waits until its group is committed.
    async fn write(&self, op: WriteOp) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { op, done })
            .await
            .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?
    }

    /// Closes the connections (after in-flight queries finish).
    pub async fn close(&self) {
        // Readers first: the last connection to close checkpoints the WAL into the database
        // file and removes it, which a read-only connection cannot do.
        self.reader.close().await;
        self.writer.close().await;
    }
}

#[async_trait::async_trait]
impl ClientStore for SqliteStore {
    async fn insert_client(&self, new: NewClient<'_>) -> Result<(), StoreError> {
        let c = new.client;
        self.write(WriteOp::Insert {
            client_id: c.client_id.clone(),
            metadata: metadata_to_text(&c.metadata)?,
            created_at: c.created_at,
            updated_at: c.updated_at,
            initial_access_token_id: c.initial_access_token_id.clone(),
            managed_at: c.managed_at,
            rat: new.registration_access_token.map(RatRow::of).transpose()?,
            spend: new
                .spend_initial_access_token
                .map(|(id, now)| (id.to_owned(), now)),
        })
        .await
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let row: Option<ClientRow> = sqlx::query_as(
            "SELECT client_id, metadata, created_at, updated_at, initial_access_token_id, managed_at FROM clients WHERE client_id = ?1",
        )
        .bind(client_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?;
        row.map(client_from_row).transpose()
    }

    async fn update_client(&self, update: ClientUpdate<'_>) -> Result<(), StoreError> {
        let c = update.client;
        self.write(WriteOp::Update {
            client_id: c.client_id.clone(),
            metadata: metadata_to_text(&c.metadata)?,
            updated_at: c.updated_at,
            managed_at: c.managed_at,
            presented: *update.presented.as_bytes(),
            rotate_to: update.rotate_to.map(RatRow::of).transpose()?,
        })
        .await
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        sqlx::query("DELETE FROM registration_access_tokens WHERE client_id = ?1")
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let deleted = sqlx::query("DELETE FROM clients WHERE client_id = ?1")
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
            "SELECT token_hash, client_id, policies, created_at FROM registration_access_tokens WHERE token_hash = ?1",
        )
        .bind(hash.as_bytes().as_slice())
        .fetch_optional(&self.reader)
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
        sqlx::query("DELETE FROM registration_access_tokens WHERE token_hash = ?1")
            .bind(hash.as_bytes().as_slice())
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn list_clients(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        let rows: Vec<ClientRow> = sqlx::query_as(
            "SELECT client_id, metadata, created_at, updated_at, initial_access_token_id, managed_at FROM clients \
             WHERE ?1 IS NULL OR client_id > ?1 ORDER BY client_id LIMIT ?2",
        )
        .bind(after)
        .bind(u64_to_i64(limit as u64))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.into_iter().map(client_from_row).collect()
    }

    async fn mark_managed(&self, client_id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE clients SET managed_at = ?2 WHERE client_id = ?1 AND managed_at IS NULL",
        )
        .bind(client_id)
        .bind(at)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn unmanaged_open_clients(&self, limit: usize) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as(
            "SELECT client_id, created_at FROM clients WHERE initial_access_token_id IS NULL AND managed_at IS NULL \
             ORDER BY created_at, client_id LIMIT ?1",
        )
        .bind(u64_to_i64(limit as u64))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)
    }

    async fn count_unmanaged_open_clients(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM clients WHERE initial_access_token_id IS NULL AND managed_at IS NULL",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(backend)?;
        Ok(i64_to_u64(n))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

async fn insert_rat(conn: &mut SqliteConnection, rat: &RatRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO registration_access_tokens (token_hash, client_id, policies, created_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .bind(rat.hash.as_slice())
    .bind(&rat.client_id)
    .bind(&rat.policies)
    .bind(rat.created_at)
    .execute(&mut *conn)
    .await
    .map_err(|e| if is_unique_violation(&e) { StoreError::TokenExists } else { backend(e) })?;
    Ok(())
}

/// Applies one write (inside the caller's savepoint).
async fn apply(conn: &mut SqliteConnection, op: &WriteOp) -> Result<(), StoreError> {
    match op {
        WriteOp::Insert {
            client_id,
            metadata,
            created_at,
            updated_at,
            initial_access_token_id,
            managed_at,
            rat,
            spend,
        } => {
            if let Some((id, now)) = spend {
                let spent = sqlx::query(
                    "UPDATE initial_access_tokens SET uses = uses + 1 WHERE id = ?1 \
                     AND (expires_at IS NULL OR expires_at > ?2) AND (max_uses IS NULL OR uses < max_uses)",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
                if spent.rows_affected() != 1 {
                    return Err(StoreError::InitialAccessTokenUnavailable);
                }
            }
            sqlx::query(
                "INSERT INTO clients (client_id, metadata, created_at, updated_at, initial_access_token_id, managed_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(client_id)
            .bind(metadata)
            .bind(created_at)
            .bind(updated_at)
            .bind(initial_access_token_id)
            .bind(managed_at)
            .execute(&mut *conn)
            .await
            .map_err(|e| if is_unique_violation(&e) { StoreError::ClientExists } else { backend(e) })?;
            if let Some(rat) = rat {
                insert_rat(conn, rat).await?;
            }
            Ok(())
        }
        WriteOp::Update {
            client_id,
            metadata,
            updated_at,
            managed_at,
            presented,
            rotate_to,
        } => {
            let updated = sqlx::query(
                "UPDATE clients SET metadata = ?2, updated_at = ?3, managed_at = COALESCE(managed_at, ?5) \
                 WHERE client_id = ?1 AND EXISTS \
                 (SELECT 1 FROM registration_access_tokens WHERE token_hash = ?4 AND client_id = ?1)",
            )
            .bind(client_id)
            .bind(metadata)
            .bind(updated_at)
            .bind(presented.as_slice())
            .bind(managed_at)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
            if updated.rows_affected() != 1 {
                return Err(StoreError::RegistrationAccessTokenGone);
            }
            if let Some(new) = rotate_to {
                sqlx::query("DELETE FROM registration_access_tokens WHERE token_hash = ?1")
                    .bind(presented.as_slice())
                    .execute(&mut *conn)
                    .await
                    .map_err(backend)?;
                insert_rat(conn, new).await?;
            }
            Ok(())
        }
    }
}

/// The writer task: group commits until every [`SqliteStore`] handle is dropped.
async fn write_loop(pool: SqlitePool, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let outcomes = commit_group(&pool, &batch).await;
        for (job, outcome) in batch.drain(..).zip(outcomes) {
            // The caller may have gone away (request cancelled): its write stands anyway.
            let _ = job.done.send(outcome);
        }
    }
}

/// Applies `jobs` in one transaction, each in its own savepoint, and commits once.
/// Returns each job's outcome, in order; if the commit fails, every job fails.
async fn commit_group(pool: &SqlitePool, jobs: &[Job]) -> Vec<Result<(), StoreError>> {
    let fail_all = |msg: String| {
        jobs.iter()
            .map(|_| Err(StoreError::Backend(msg.clone())))
            .collect()
    };
    let mut tx = match pool.begin().await {
        Ok(tx) => tx,
        Err(e) => return fail_all(e.to_string()),
    };
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Err(e) = sqlx::query("SAVEPOINT job").execute(&mut *tx).await {
            return fail_all(e.to_string());
        }
        let outcome = apply(&mut tx, &job.op).await;
        let end = if outcome.is_ok() {
            sqlx::query("RELEASE job").execute(&mut *tx).await
        } else {
            match sqlx::query("ROLLBACK TO job").execute(&mut *tx).await {
                Ok(_) => sqlx::query("RELEASE job").execute(&mut *tx).await,
                Err(e) => Err(e),
            }
        };
        if let Err(e) = end {
            return fail_all(e.to_string());
        }
        outcomes.push(outcome);
    }
    match tx.commit().await {
        Ok(()) => outcomes,
        Err(e) => fail_all(e.to_string()),
    }
}

#[async_trait::async_trait]
impl InitialAccessTokenStore for SqliteStore {
    async fn insert_initial_access_token(
        &self,
        t: &InitialAccessTokenRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO initial_access_tokens (id, token_hash, label, policies, created_at, expires_at, max_uses, uses) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(&t.id)
        .bind(t.hash.as_bytes().as_slice())
        .bind(&t.label)
        .bind(policies_to_text(&t.policies)?)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.max_uses.map(u64_to_i64))
        .bind(u64_to_i64(t.uses))
        .execute(&self.writer)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::TokenExists } else { backend(e) })?;
        Ok(())
    }

    async fn find_initial_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<InitialAccessTokenRecord>, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {IAT_COLUMNS} FROM initial_access_tokens WHERE token_hash = ?1"
        ));
        let row: Option<IatRow> = sqlx::query_as(sql)
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.reader)
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
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
        rows.into_iter().map(iat_from_row).collect()
    }

    async fn revoke_initial_access_token(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM initial_access_tokens WHERE id = ?1")
            .bind(id)
            .execute(&self.writer)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() == 1)
    }
}
