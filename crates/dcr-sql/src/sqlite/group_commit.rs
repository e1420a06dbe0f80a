//! The writer task of the SQLite store: every queued insert and update, applied in one
//! transaction and committed once (see [`SqliteStore`](super::SqliteStore)).

use std::collections::HashSet;

use dcr_core::store::{RegistrationAccessTokenRecord, StoreError};
use dcr_core::token::TokenHash;
use sqlx::SqliteConnection;
use sqlx::sqlite::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::MAX_BATCH;
use crate::codec::{backend, or_conflict, policies_to_text};
use crate::shared::{INSERT_CLIENT, INSERT_RAT, SPEND_INITIAL_ACCESS_TOKEN};

/// A registration access token row, owned so that it can travel to the writer task.
#[derive(Debug)]
pub(super) struct NewRat {
    hash: TokenHash,
    client_id: String,
    policies: String,
    created_at: i64,
}

impl NewRat {
    pub(super) fn of(rat: &RegistrationAccessTokenRecord) -> Result<Self, StoreError> {
        Ok(Self {
            hash: rat.hash,
            client_id: rat.client_id.clone(),
            policies: policies_to_text(&rat.policies)?,
            created_at: rat.created_at,
        })
    }
}

/// A write the writer task applies in a group commit.
#[derive(Debug)]
pub(super) enum WriteOp {
    Insert {
        client_id: String,
        metadata: String,
        created_at: i64,
        updated_at: i64,
        initial_access_token_id: Option<String>,
        managed_at: Option<i64>,
        rat: Option<NewRat>,
        spend: Option<(String, i64)>,
    },
    Update {
        client_id: String,
        metadata: String,
        updated_at: i64,
        managed_at: Option<i64>,
        presented: [u8; 32],
        rotate_to: Option<NewRat>,
    },
}

#[derive(Debug)]
pub(super) struct Job {
    pub(super) op: WriteOp,
    pub(super) done: oneshot::Sender<Result<(), StoreError>>,
}

async fn insert_rat(conn: &mut SqliteConnection, rat: &NewRat) -> Result<(), StoreError> {
    sqlx::query(INSERT_RAT)
        .bind(rat.hash.as_bytes().as_slice())
        .bind(&rat.client_id)
        .bind(&rat.policies)
        .bind(rat.created_at)
        .execute(&mut *conn)
        .await
        .map_err(|e| or_conflict(e, StoreError::TokenExists))?;
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
                let spent = sqlx::query(SPEND_INITIAL_ACCESS_TOKEN)
                    .bind(id)
                    .bind(now)
                    .execute(&mut *conn)
                    .await
                    .map_err(backend)?;
                if spent.rows_affected() != 1 {
                    return Err(StoreError::InitialAccessTokenUnavailable);
                }
            }
            sqlx::query(INSERT_CLIENT)
                .bind(client_id)
                .bind(metadata)
                .bind(created_at)
                .bind(updated_at)
                .bind(initial_access_token_id)
                .bind(managed_at)
                .execute(&mut *conn)
                .await
                .map_err(|e| or_conflict(e, StoreError::ClientExists))?;
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
pub(super) async fn write_loop(pool: SqlitePool, mut queue: mpsc::Receiver<Job>) {
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
            .map(|_| Err(StoreError::backend(msg.clone())))
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
    rat: Option<&'a NewRat>,
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
                r.hash.to_hex(),
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

#[cfg(test)]
#[path = "group_commit_tests.rs"]
mod tests;
