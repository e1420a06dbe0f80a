mod authn;
use std::collections::HashSet;
use std::fmt::Write as _;
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

/// The shared cache of Client ID Metadata Documents.
mod cimd;

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
/// update queued at that moment (up to [`MAX_BATCH`]), applies them in one transaction — the
/// open registrations all together in a few statements, every other write in its own
/// savepoint; one failing write does not affect the others — commits once (one fsync for the
/// whole group) and only then answers each caller. Durability is unchanged: no call returns
/// `Ok` before its write is committed with `synchronous = FULL`.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    jobs: mpsc::Sender<Job>,
}

/// The WAL size, in pages (4 KiB), past which the writer checkpoints it into the database
/// file (about 16 MiB; SQLite's default is 1,000 pages).
const WAL_AUTOCHECKPOINT_PAGES: &str = "4000";

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
        // The savepoint journal in memory (`temp_store`): a group's bulk insert would spill it
        // to a temporary file, a write per page. It only serves `ROLLBACK TO`; durability
        // rests on the WAL. The writer checkpoints the WAL when it passes
        // `WAL_AUTOCHECKPOINT_PAGES` rather than SQLite's 1,000: fewer, larger checkpoints
        // write each hot index page to the database file fewer times.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                options
                    .clone()
                    .pragma("temp_store", "memory")
                    .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES),
            )
            .await
            .map_err(backend)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(backend)?;
        // Readers get a 16 MiB page cache each (SQLite's default is 2 MiB): with a million
        // clients, the index pages of the clients being read no longer fit in 2 MiB.
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true).pragma("cache_size", "-16384"))
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
            metadata: metadata_to_text(&c.metadata),
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
            metadata: metadata_to_text(&c.metadata),
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

/// Applies `jobs` in one transaction and commits once: first all the open registrations
/// together ([`insert_open_registrations`]), then each other job by itself ([`apply_alone`]),
/// in queue order. No job has been answered yet, so they are concurrent and this order is as
/// valid as the queue's. Returns each job's outcome, in order; if the transaction fails, every
/// job fails.
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
    let settled = match insert_open_registrations(&mut tx, jobs).await {
        Ok(settled) => settled,
        Err(msg) => return fail_all(msg),
    };
    let mut outcomes = Vec::with_capacity(jobs.len());
    for (job, settled) in jobs.iter().zip(settled) {
        let outcome = match settled {
            Some(outcome) => outcome,
            None => match apply_alone(&mut tx, &job.op).await {
                Ok(outcome) => outcome,
                Err(msg) => return fail_all(msg),
            },
        };
        outcomes.push(outcome);
    }
    match tx.commit().await {
        Ok(()) => outcomes,
        Err(e) => fail_all(e.to_string()),
    }
}

/// Runs a statement without arguments (savepoint control). `Err(message)`: the transaction
/// is unusable.
async fn execute(conn: &mut SqliteConnection, sql: &'static str) -> Result<(), String> {
    match sqlx::query(sql).execute(conn).await {
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Applies one job by itself, in savepoint `job` (undone if the job fails), and returns its
/// outcome. `Err(message)`: the transaction is unusable.
async fn apply_alone(
    conn: &mut SqliteConnection,
    op: &WriteOp,
) -> Result<Result<(), StoreError>, String> {
    execute(conn, "SAVEPOINT job").await?;
    let outcome = apply(conn, op).await;
    if outcome.is_err() {
        execute(conn, "ROLLBACK TO job").await?;
    }
    execute(conn, "RELEASE job").await?;
    Ok(outcome)
}

/// The outcome of each job of a group, `None` while it is still to be applied.
type Settled = Vec<Option<Result<(), StoreError>>>;

/// An open registration (an insert that spends no initial access token), borrowed from its job.
struct OpenRegistration<'a> {
    /// The job's position in its group.
    job: usize,
    client: BulkClient<'a>,
    rat: Option<&'a RatRow>,
}

/// A `clients` row, bound as an element of one JSON array:
/// `[client_id, metadata, created_at, updated_at, initial_access_token_id, managed_at]`.
type BulkClient<'a> = (&'a str, &'a str, i64, i64, Option<&'a str>, Option<i64>);

/// A `registration_access_tokens` row, bound as an element of one JSON array:
/// `[token_hash in hex, client_id, policies, created_at]`.
type BulkRat<'a> = (String, &'a str, &'a str, i64);

/// Inserts the [`BulkClient`] rows of the JSON array `?1`, skipping the ids already stored, and
/// returns the ids inserted. (`WHERE true` keeps SQLite from reading `ON CONFLICT` as a join
/// constraint.)
const INSERT_CLIENTS: &str = "INSERT INTO clients \
    (client_id, metadata, created_at, updated_at, initial_access_token_id, managed_at) \
    SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 \
    FROM json_each(?1) WHERE true ON CONFLICT (client_id) DO NOTHING RETURNING client_id";

/// Inserts the [`BulkRat`] rows of the JSON array `?1`.
const INSERT_RATS: &str = "INSERT INTO registration_access_tokens \
    (token_hash, client_id, policies, created_at) \
    SELECT unhex(value ->> 0), value ->> 1, value ->> 2, value ->> 3 FROM json_each(?1)";

/// The fast path: applies all the open registrations of `jobs` in savepoint `bulk`, in a
/// constant number of statements, and settles their outcomes; other jobs are left unsettled.
///
/// A job whose client id is already stored, or repeats that of an earlier job, gets
/// `ClientExists` (the first job wins). If a bulk statement fails otherwise (such as on a token
/// hash collision), the savepoint is undone and every job is left to [`apply_alone`], which
/// gives each its exact outcome. `Err(message)`: the transaction is unusable.
async fn insert_open_registrations(
    conn: &mut SqliteConnection,
    jobs: &[Job],
) -> Result<Settled, String> {
    let unsettled = || jobs.iter().map(|_| None).collect::<Settled>();
    let mut settled = unsettled();
    let mut ids = HashSet::new();
    let mut rows = Vec::new();
    for (job, op) in jobs.iter().map(|j| &j.op).enumerate() {
        let WriteOp::Insert {
            client_id,
            metadata,
            created_at,
            updated_at,
            initial_access_token_id,
            managed_at,
            rat,
            spend: None,
        } = op
        else {
            continue;
        };
        if ids.insert(client_id.as_str()) {
            rows.push(OpenRegistration {
                job,
                client: (
                    client_id,
                    metadata,
                    *created_at,
                    *updated_at,
                    initial_access_token_id.as_deref(),
                    *managed_at,
                ),
                rat: rat.as_ref(),
            });
        } else {
            settled[job] = Some(Err(StoreError::ClientExists));
        }
    }
    if rows.is_empty() {
        return Ok(settled);
    }
    execute(conn, "SAVEPOINT bulk").await?;
    let Ok(inserted) = insert_bulk(conn, &rows).await else {
        execute(conn, "ROLLBACK TO bulk").await?;
        execute(conn, "RELEASE bulk").await?;
        return Ok(unsettled());
    };
    execute(conn, "RELEASE bulk").await?;
    for row in rows {
        settled[row.job] = Some(if inserted.contains(row.client.0) {
            Ok(())
        } else {
            Err(StoreError::ClientExists)
        });
    }
    Ok(settled)
}

/// Inserts the clients of `rows` (skipping the ids already stored) and the registration access
/// tokens of those inserted, in two statements at most. Returns the ids inserted.
async fn insert_bulk(
    conn: &mut SqliteConnection,
    rows: &[OpenRegistration<'_>],
) -> Result<HashSet<String>, sqlx::Error> {
    let clients: Vec<&BulkClient> = rows.iter().map(|r| &r.client).collect();
    let clients = serde_json::to_string(&clients).map_err(|e| sqlx::Error::Encode(e.into()))?;
    let inserted: HashSet<String> = sqlx::query_scalar(INSERT_CLIENTS)
        .bind(clients)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    let rats: Vec<BulkRat> = rows
        .iter()
        .filter(|r| inserted.contains(r.client.0))
        .filter_map(|r| r.rat)
        .map(|r| {
            (
                hex(&r.hash),
                r.client_id.as_str(),
                r.policies.as_str(),
                r.created_at,
            )
        })
        .collect();
    if !rats.is_empty() {
        let rats = serde_json::to_string(&rats).map_err(|e| sqlx::Error::Encode(e.into()))?;
        sqlx::query(INSERT_RATS)
            .bind(rats)
            .execute(&mut *conn)
            .await?;
    }
    Ok(inserted)
}

/// `bytes` in lowercase hexadecimal.
fn hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(2 * bytes.len());
    for b in bytes {
        // Writing to a `String` cannot fail.
        let _ = write!(hex, "{b:02x}");
    }
    hex
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

#[cfg(test)]
mod tests {
    use dcr_core::metadata::ClientMetadata;
    use serde_json::json;

    use super::*;

    async fn open() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("dcr.db")).await.unwrap();
        (store, dir)
    }

    fn rat(token: &str, client_id: &str) -> RatRow {
        RatRow {
            hash: *TokenHash::of(token).as_bytes(),
            client_id: client_id.to_owned(),
            policies: r#"["tenant"]"#.to_owned(),
            created_at: 100,
        }
    }

    /// A registration of `client_id` with a token made from `token`, spending a use of the
    /// initial access token `iat` if given.
    fn insert(client_id: &str, token: &str, iat: Option<&str>) -> WriteOp {
        WriteOp::Insert {
            client_id: client_id.to_owned(),
            metadata: json!({ "client_id": client_id, "client_name": token }).to_string(),
            created_at: 100,
            updated_at: 100,
            initial_access_token_id: iat.map(str::to_owned),
            managed_at: None,
            rat: Some(rat(token, client_id)),
            spend: iat.map(|id| (id.to_owned(), 100)),
        }
    }

    /// An open registration: the fast path's kind of job.
    fn register(client_id: &str, token: &str) -> WriteOp {
        insert(client_id, token, None)
    }

    fn update(client_id: &str, presented: &str, rotate_to: Option<&str>) -> WriteOp {
        WriteOp::Update {
            client_id: client_id.to_owned(),
            metadata: json!({ "client_id": client_id, "client_name": "updated" }).to_string(),
            updated_at: 200,
            managed_at: None,
            presented: *TokenHash::of(presented).as_bytes(),
            rotate_to: rotate_to.map(|t| rat(t, client_id)),
        }
    }

    fn jobs(ops: Vec<WriteOp>) -> Vec<Job> {
        ops.into_iter()
            .map(|op| Job {
                op,
                done: oneshot::channel().0,
            })
            .collect()
    }

    /// Commits `ops` as one group, as the writer task does; the outcomes, as `Debug` text.
    async fn group(store: &SqliteStore, ops: Vec<WriteOp>) -> Vec<String> {
        commit_group(&store.writer, &jobs(ops))
            .await
            .iter()
            .map(|outcome| format!("{outcome:?}"))
            .collect()
    }

    /// Runs only the fast path on `ops` and commits; the outcomes it settled, as `Debug` text.
    async fn bulk(store: &SqliteStore, ops: Vec<WriteOp>) -> Vec<Option<String>> {
        let jobs = jobs(ops);
        let mut tx = store.writer.begin().await.unwrap();
        let settled = insert_open_registrations(&mut tx, &jobs).await.unwrap();
        tx.commit().await.unwrap();
        settled
            .iter()
            .map(|outcome| outcome.as_ref().map(|o| format!("{o:?}")))
            .collect()
    }

    async fn client_row(store: &SqliteStore, client_id: &str) -> Option<ClientRow> {
        sqlx::query_as(
            "SELECT client_id, metadata, created_at, updated_at, initial_access_token_id, managed_at FROM clients WHERE client_id = ?1",
        )
        .bind(client_id)
        .fetch_optional(&store.reader)
        .await
        .unwrap()
    }

    /// The client holding the registration access token made from `token`.
    async fn owner(store: &SqliteStore, token: &str) -> Option<String> {
        store
            .find_registration_access_token(&TokenHash::of(token))
            .await
            .unwrap()
            .map(|rat| rat.client_id)
    }

    async fn count_clients(store: &SqliteStore) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM clients")
            .fetch_one(&store.reader)
            .await
            .unwrap()
    }

    const OK: &str = "Ok(())";
    const CLIENT_EXISTS: &str = "Err(ClientExists)";
    const TOKEN_EXISTS: &str = "Err(TokenExists)";

    #[tokio::test]
    async fn bulk_path_stores_every_column_exactly() {
        let (store, _dir) = open().await;
        let tricky = ClientMetadata::from_trusted(
            json!({
                "client_id": "exact",
                "client_name": "nul \u{0} tab \t quote \" backslash \\ emoji 🦀 é",
                "big": 18_446_744_073_709_551_615_u64,
                "ratio": 0.1,
                "nested": { "a": [1, { "b": null }], "empty": {} },
            })
            .as_object()
            .cloned()
            .unwrap(),
        );
        let metadata = metadata_to_text(&tricky);
        let hash: [u8; 32] = std::array::from_fn(|i| [0, 0xff, 0x0a, 0x80][i % 4]);
        let exact = WriteOp::Insert {
            client_id: "exact".into(),
            metadata: metadata.clone(),
            created_at: i64::MIN,
            updated_at: i64::MAX,
            initial_access_token_id: Some("iat-é".into()),
            managed_at: Some(-1),
            rat: Some(RatRow {
                hash,
                client_id: "exact".into(),
                policies: r#"["a","\"b\""]"#.into(),
                created_at: 1_700_000_000,
            }),
            spend: None,
        };
        let mut bare = register("bare", "unused");
        if let WriteOp::Insert { rat, .. } = &mut bare {
            *rat = None;
        }

        assert_eq!(
            bulk(&store, vec![exact, bare]).await,
            [Some(OK.into()), Some(OK.into())]
        );
        assert_eq!(
            client_row(&store, "exact").await,
            Some((
                "exact".into(),
                metadata,
                i64::MIN,
                i64::MAX,
                Some("iat-é".into()),
                Some(-1)
            ))
        );
        let hash = hash_from_bytes(&hash).unwrap();
        assert_eq!(
            store.find_registration_access_token(&hash).await.unwrap(),
            Some(RegistrationAccessTokenRecord {
                hash,
                client_id: "exact".into(),
                policies: vec!["a".into(), "\"b\"".into()],
                created_at: 1_700_000_000,
            })
        );
        assert_eq!(
            client_row(&store, "bare").await.map(|row| row.4),
            Some(None)
        );
        assert_eq!(owner(&store, "unused").await, None);
    }

    #[tokio::test]
    async fn many_open_registrations_are_inserted_in_bulk() {
        let (store, _dir) = open().await;
        let ops = (0..200)
            .map(|i| register(&format!("c{i}"), &format!("tok-{i}")))
            .collect();
        let settled = bulk(&store, ops).await;
        assert!(
            settled.iter().all(|o| o.as_deref() == Some(OK)),
            "{settled:?}"
        );
        assert_eq!(count_clients(&store).await, 200);
        for i in 0..200 {
            assert_eq!(
                owner(&store, &format!("tok-{i}")).await,
                Some(format!("c{i}"))
            );
        }
    }

    #[tokio::test]
    async fn first_of_two_jobs_with_one_client_id_wins() {
        let (store, _dir) = open().await;
        let ops = vec![
            register("twice", "tok-first"),
            register("other", "tok-other"),
            register("twice", "tok-second"),
        ];
        assert_eq!(
            bulk(&store, ops).await,
            [Some(OK.into()), Some(OK.into()), Some(CLIENT_EXISTS.into())]
        );
        let stored = client_row(&store, "twice").await.unwrap();
        assert!(
            stored.1.contains("tok-first"),
            "the first job's record: {stored:?}"
        );
        assert_eq!(owner(&store, "tok-first").await.as_deref(), Some("twice"));
        assert_eq!(owner(&store, "tok-second").await, None);
        assert_eq!(owner(&store, "tok-other").await.as_deref(), Some("other"));
    }

    #[tokio::test]
    async fn stored_client_id_is_a_conflict_in_bulk() {
        let (store, _dir) = open().await;
        assert_eq!(
            group(&store, vec![register("taken", "tok-old")]).await,
            [OK]
        );
        let before = client_row(&store, "taken").await;
        assert_eq!(
            bulk(
                &store,
                vec![register("taken", "tok-new"), register("free", "tok-free")]
            )
            .await,
            [Some(CLIENT_EXISTS.into()), Some(OK.into())]
        );
        assert_eq!(client_row(&store, "taken").await, before, "unchanged");
        assert_eq!(owner(&store, "tok-old").await.as_deref(), Some("taken"));
        assert_eq!(
            owner(&store, "tok-new").await,
            None,
            "its RAT was not written"
        );
        assert_eq!(owner(&store, "tok-free").await.as_deref(), Some("free"));
    }

    #[tokio::test]
    async fn mixed_group_gives_each_job_its_outcome() {
        let (store, _dir) = open().await;
        for (id, max_uses) in [("once", Some(1)), ("unlimited", None)] {
            store
                .insert_initial_access_token(&InitialAccessTokenRecord {
                    id: id.into(),
                    hash: TokenHash::of(id),
                    label: None,
                    policies: vec![],
                    created_at: 0,
                    expires_at: None,
                    max_uses,
                    uses: 0,
                })
                .await
                .unwrap();
        }
        let setup = vec![register("u1", "tok-u1"), register("u2", "tok-u2")];
        assert_eq!(group(&store, setup).await, [OK, OK]);

        let ops = vec![
            register("n1", "tok-n1"),
            insert("s1", "tok-s1", Some("once")),
            update("u1", "tok-u1", None),
            insert("s2", "tok-s2", Some("once")),
            register("n2", "tok-n2"),
            update("u2", "tok-u2", Some("tok-u2b")),
            update("u1", "tok-u2", None),
            insert("n1", "tok-n1b", Some("unlimited")),
        ];
        assert_eq!(
            group(&store, ops).await,
            [
                OK,
                OK,
                OK,
                "Err(InitialAccessTokenUnavailable)",
                OK,
                OK,
                "Err(RegistrationAccessTokenGone)",
                CLIENT_EXISTS,
            ]
        );
        let uses = |id: &'static str| {
            let store = store.clone();
            async move {
                store
                    .find_initial_access_token(&TokenHash::of(id))
                    .await
                    .unwrap()
                    .unwrap()
                    .uses
            }
        };
        assert_eq!(uses("once").await, 1);
        assert_eq!(
            uses("unlimited").await,
            0,
            "a conflicting insert spends nothing"
        );
        for (token, client) in [("tok-n1", "n1"), ("tok-n2", "n2"), ("tok-s1", "s1")] {
            assert_eq!(owner(&store, token).await.as_deref(), Some(client));
        }
        assert_eq!(client_row(&store, "s2").await, None);
        assert_eq!(owner(&store, "tok-n1b").await, None);
        let u1 = client_row(&store, "u1").await.unwrap();
        assert_eq!((u1.1.contains("updated"), u1.3), (true, 200));
        assert_eq!(owner(&store, "tok-u1").await.as_deref(), Some("u1"));
        assert_eq!(owner(&store, "tok-u2").await, None, "rotated away");
        assert_eq!(owner(&store, "tok-u2b").await.as_deref(), Some("u2"));
        assert_eq!(count_clients(&store).await, 5);
    }

    #[tokio::test]
    async fn token_hash_collision_falls_back_to_one_job_at_a_time() {
        let (store, _dir) = open().await;
        assert_eq!(group(&store, vec![register("old", "tok-old")]).await, [OK]);
        let ops = || {
            vec![
                register("a", "tok-a"),
                register("b", "tok-a"),
                register("c", "tok-old"),
                register("d", "tok-d"),
                register("a", "tok-x"),
                register("e", "tok-e"),
            ]
        };
        assert_eq!(
            bulk(&store, ops()).await,
            vec![None; 6],
            "left to the per-job path"
        );
        assert_eq!(count_clients(&store).await, 1, "the bulk insert was undone");

        assert_eq!(
            group(&store, ops()).await,
            [OK, TOKEN_EXISTS, TOKEN_EXISTS, OK, CLIENT_EXISTS, OK]
        );
        for (token, client) in [
            ("tok-a", "a"),
            ("tok-d", "d"),
            ("tok-e", "e"),
            ("tok-old", "old"),
        ] {
            assert_eq!(owner(&store, token).await.as_deref(), Some(client));
        }
        assert_eq!(client_row(&store, "b").await, None);
        assert_eq!(client_row(&store, "c").await, None);
        assert_eq!(owner(&store, "tok-x").await, None);
        assert_eq!(count_clients(&store).await, 4);
    }

    #[tokio::test]
    async fn second_job_with_one_client_id_wins_when_the_first_fails_on_its_token() {
        let (store, _dir) = open().await;
        assert_eq!(group(&store, vec![register("old", "tok-old")]).await, [OK]);
        assert_eq!(
            group(
                &store,
                vec![register("y", "tok-old"), register("y", "tok-y")]
            )
            .await,
            [TOKEN_EXISTS, OK]
        );
        assert_eq!(owner(&store, "tok-y").await.as_deref(), Some("y"));
        assert_eq!(owner(&store, "tok-old").await.as_deref(), Some("old"));
    }
}
