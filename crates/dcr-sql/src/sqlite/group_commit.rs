//! The writer thread of the SQLite store: every queued write, applied in one transaction and
//! committed once (see [`SqliteStore`](super::SqliteStore)).
//!
//! The thread owns its own connection (`rusqlite`, statements prepared once and cached), so a
//! group costs no hop between threads per statement: the async side hands over a [`Job`] and
//! awaits its answer, the thread runs the whole group in SQLite and answers every job after the
//! commit.

use std::cell::Cell;
use std::path::Path;
use std::time::Duration;

use dcr_core::store::{RegistrationAccessTokenRecord, StoreError};
use dcr_core::token::TokenHash;
use rusqlite::{Connection, ErrorCode, ffi, params};
use tokio::sync::{mpsc, oneshot};

use super::{MAX_BATCH, WAL_AUTOCHECKPOINT_PAGES};
use crate::authn_records::{PRUNE_JTIS, RECORD_JTI, RECORD_USE};
use crate::codec::{backend, policies_to_text};
use crate::shared::{INSERT_CLIENT, INSERT_RAT, SPEND_INITIAL_ACCESS_TOKEN};

/// A registration access token row, owned so that it can travel to the writer thread.
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

/// A write the writer thread applies in a group commit.
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
    /// Deletes the client (its tokens go with it, `ON DELETE CASCADE`) if it holds the token
    /// hashed as `presented` (when given) and, with `unmanaged_open_only`, if it is an open
    /// registration never managed. Its outcome: whether a client was deleted.
    Delete {
        client_id: String,
        presented: Option<[u8; 32]>,
        unmanaged_open_only: bool,
    },
    /// Records an assertion's `jti` (`AssertionReplayStore::record_jti`). Its outcome: whether
    /// this was its first use. Within a group, jobs run in order, so of two jobs with one
    /// `(client_id, jti)` the first wins; across processes, `BEGIN IMMEDIATE` serialises groups.
    RecordJti {
        client_id: String,
        jti: String,
        expires_at: i64,
        now: i64,
    },
    /// Records a use of a client (`ClientUsageStore::record_use`).
    RecordUse { client_id: String, at: i64 },
}

/// A write and where to send its outcome: `Ok(true)` for a stored insert, update or use,
/// `Ok(b)` for a delete (whether it deleted a client) or a `jti` (whether it was its first use).
#[derive(Debug)]
pub(super) struct Job {
    pub(super) op: WriteOp,
    pub(super) done: oneshot::Sender<Result<bool, StoreError>>,
}

/// What the store sends to the writer thread.
#[derive(Debug)]
pub(super) enum Command {
    Write(Box<Job>),
    /// Finish the writes queued so far, close the connection, then answer.
    Stop(oneshot::Sender<()>),
}

thread_local! {
    /// Pages in the WAL after the writer's last commit (set by [`wal_pages`]).
    static WAL_PAGES: Cell<i32> = const { Cell::new(0) };
}

/// The writer's WAL hook: records the WAL's size instead of checkpointing inside the commit
/// (SQLite's automatic checkpoint), so that callers are answered before the checkpoint runs.
fn wal_pages(_: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

/// Opens the writer's connection to the (migrated) database at `path`: WAL journal,
/// `synchronous = FULL`, foreign keys on, the savepoint journal in memory (`temp_store`: a
/// group would otherwise spill it to a temporary file, a write per page; it only serves
/// `ROLLBACK TO`, durability rests on the WAL).
pub(super) fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "wal")?;
    conn.pragma_update(None, "synchronous", "full")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "temp_store", "memory")?;
    conn.set_prepared_statement_cache_capacity(32);
    conn.wal_hook(Some(wal_pages));
    Ok(conn)
}

/// The writer thread: group commits until [`Command::Stop`] or until every
/// [`SqliteStore`](super::SqliteStore) handle is dropped. After a commit whose WAL has passed
/// [`WAL_AUTOCHECKPOINT_PAGES`], and after answering its jobs, it checkpoints the WAL into the
/// database file (what SQLite's automatic checkpoint does, but inside the commit, before
/// anyone is answered).
pub(super) fn write_loop(mut conn: Connection, mut queue: mpsc::Receiver<Command>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut stopped = Vec::new();
    while let Some(first) = queue.blocking_recv() {
        let mut next = Some(first);
        while let Some(command) = next {
            match command {
                Command::Write(job) => batch.push(*job),
                Command::Stop(reply) => {
                    queue.close();
                    stopped.push(reply);
                }
            }
            next = if batch.len() < MAX_BATCH {
                queue.try_recv().ok()
            } else {
                None
            };
        }
        if batch.is_empty() {
            continue;
        }
        let outcomes = commit_group(&mut conn, &batch);
        for (job, outcome) in batch.drain(..).zip(outcomes) {
            // The caller may have gone away (request cancelled): its write stands anyway.
            let _ = job.done.send(outcome);
        }
        if WAL_PAGES.get() >= WAL_AUTOCHECKPOINT_PAGES {
            // Passive: never waits for readers; a failure leaves the WAL for the next try.
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            WAL_PAGES.set(0);
        }
    }
    drop(conn);
    for reply in stopped {
        let _ = reply.send(());
    }
}

/// Applies `jobs` in one transaction and commits once. A failing job is undone alone and gets
/// its own error: an open registration by [`register`], every other job in its own savepoint. Returns each job's outcome, in order; if
/// the transaction fails, every job fails.
pub(super) fn commit_group(conn: &mut Connection, jobs: &[Job]) -> Vec<Result<bool, StoreError>> {
    match try_commit_group(conn, jobs) {
        Ok(outcomes) => outcomes,
        Err(e) => {
            // Leaves no transaction open behind a failed group (a no-op if none is).
            let _ = conn.execute_batch("ROLLBACK");
            let msg = e.to_string();
            jobs.iter()
                .map(|_| Err(StoreError::backend(msg.clone())))
                .collect()
        }
    }
}

/// `Err`: the transaction is unusable (every job fails).
fn try_commit_group(
    conn: &mut Connection,
    jobs: &[Job],
) -> rusqlite::Result<Vec<Result<bool, StoreError>>> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    prune_jtis(conn, jobs)?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        let outcome = match &job.op {
            // One statement each, which cannot fail but for the whole transaction (no
            // constraint can refuse it): no savepoint.
            WriteOp::RecordJti {
                client_id,
                jti,
                expires_at,
                now,
            } => Ok(record_jti(conn, client_id, jti, *expires_at, *now)?),
            WriteOp::RecordUse { client_id, at } => {
                record_use(conn, client_id, *at)?;
                Ok(true)
            }
            WriteOp::Insert {
                client_id,
                metadata,
                created_at,
                updated_at,
                initial_access_token_id,
                managed_at,
                rat,
                spend: None,
            } => register(
                conn,
                (
                    client_id,
                    metadata,
                    *created_at,
                    *updated_at,
                    initial_access_token_id.as_deref(),
                    *managed_at,
                ),
                rat.as_ref(),
            )?,
            op => {
                conn.prepare_cached("SAVEPOINT job")?.execute([])?;
                let outcome = apply(conn, op);
                if outcome.is_err() {
                    conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
                }
                conn.prepare_cached("RELEASE job")?.execute([])?;
                outcome
            }
        };
        outcomes.push(outcome);
    }
    conn.prepare_cached("COMMIT")?.execute([])?;
    Ok(outcomes)
}

/// Forgets the `jti`s expired at the earliest `now` of the group's `jti` jobs, once per group
/// (no job may see a record purged that is live at its own `now`).
fn prune_jtis(conn: &Connection, jobs: &[Job]) -> rusqlite::Result<()> {
    let earliest = jobs
        .iter()
        .filter_map(|job| match &job.op {
            WriteOp::RecordJti { now, .. } => Some(*now),
            _ => None,
        })
        .min();
    if let Some(now) = earliest {
        conn.prepare_cached(PRUNE_JTIS)?.execute(params![now])?;
    }
    Ok(())
}

/// Records `jti` of `client_id` until `expires_at` unless it is recorded and live at `now`:
/// whether it was recorded (its first use).
fn record_jti(
    conn: &Connection,
    client_id: &str,
    jti: &str,
    expires_at: i64,
    now: i64,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(RECORD_JTI)?
        .execute(params![client_id, jti, expires_at, now])?;
    Ok(changed == 1)
}

/// Records a use of `client_id` at `at` (if it exists; the latest use is kept).
fn record_use(conn: &Connection, client_id: &str, at: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(RECORD_USE)?
        .execute(params![client_id, at])?;
    Ok(())
}

/// A `clients` row: `client_id, metadata, created_at, updated_at, initial_access_token_id,
/// managed_at`.
type ClientColumns<'a> = (&'a str, &'a str, i64, i64, Option<&'a str>, Option<i64>);

/// Applies an open registration (an insert that spends no initial access token) without a
/// savepoint: a savepoint per job made SQLite copy every page the job touched into its
/// sub-journal, about a third of the writer's instructions. The client row is inserted first
/// (a duplicate id is found before anything is written: `ClientExists`); if its token then
/// collides with a stored one, the row is deleted again (`TokenExists`), which is all a
/// savepoint would have undone. `Err`: any other failure, which fails the whole group (a
/// statement may have been left half-applied).
fn register(
    conn: &Connection,
    client: ClientColumns<'_>,
    rat: Option<&NewRat>,
) -> rusqlite::Result<Result<bool, StoreError>> {
    let client_id = client.0;
    let inserted = conn.prepare_cached(INSERT_CLIENT)?.execute(params![
        client.0, client.1, client.2, client.3, client.4, client.5
    ]);
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Ok(Err(StoreError::ClientExists)),
        Err(e) => return Err(e),
    }
    let Some(rat) = rat else {
        return Ok(Ok(true));
    };
    let inserted = conn.prepare_cached(INSERT_RAT)?.execute(params![
        rat.hash.as_bytes().as_slice(),
        rat.client_id,
        rat.policies,
        rat.created_at
    ]);
    match inserted {
        Ok(_) => Ok(Ok(true)),
        Err(e) if is_unique_violation(&e) => {
            conn.prepare_cached("DELETE FROM clients WHERE client_id = ?1")?
                .execute(params![client_id])?;
            Ok(Err(StoreError::TokenExists))
        }
        Err(e) => Err(e),
    }
}

/// Whether `err` is a unique-key (or primary-key) violation.
fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.code == ErrorCode::ConstraintViolation
                && matches!(
                    e.extended_code,
                    ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                )
    )
}

/// `err`, unless it is a unique-key violation, which is `conflict`.
fn or_conflict(err: rusqlite::Error, conflict: StoreError) -> StoreError {
    if is_unique_violation(&err) {
        conflict
    } else {
        backend(err)
    }
}

fn insert_rat(conn: &Connection, rat: &NewRat) -> Result<(), StoreError> {
    conn.prepare_cached(INSERT_RAT)
        .and_then(|mut s| {
            s.execute(params![
                rat.hash.as_bytes().as_slice(),
                rat.client_id,
                rat.policies,
                rat.created_at
            ])
        })
        .map_err(|e| or_conflict(e, StoreError::TokenExists))?;
    Ok(())
}

/// Runs a cached statement; the number of rows it changed.
fn execute(
    conn: &Connection,
    sql: &'static str,
    params: impl rusqlite::Params,
) -> Result<usize, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(backend)
}

/// Applies one write (inside the caller's savepoint).
fn apply(conn: &Connection, op: &WriteOp) -> Result<bool, StoreError> {
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
            if let Some((id, now)) = spend
                && execute(conn, SPEND_INITIAL_ACCESS_TOKEN, params![id, now])? != 1
            {
                return Err(StoreError::InitialAccessTokenUnavailable);
            }
            conn.prepare_cached(INSERT_CLIENT)
                .and_then(|mut s| {
                    s.execute(params![
                        client_id,
                        metadata,
                        created_at,
                        updated_at,
                        initial_access_token_id,
                        managed_at
                    ])
                })
                .map_err(|e| or_conflict(e, StoreError::ClientExists))?;
            if let Some(rat) = rat {
                insert_rat(conn, rat)?;
            }
            Ok(true)
        }
        WriteOp::Update {
            client_id,
            metadata,
            updated_at,
            managed_at,
            presented,
            rotate_to,
        } => {
            let updated = execute(
                conn,
                "UPDATE clients SET metadata = ?2, updated_at = ?3, \
                 managed_at = COALESCE(managed_at, ?5) \
                 WHERE client_id = ?1 AND EXISTS (SELECT 1 FROM registration_access_tokens \
                 WHERE token_hash = ?4 AND client_id = ?1)",
                params![
                    client_id,
                    metadata,
                    updated_at,
                    presented.as_slice(),
                    managed_at
                ],
            )?;
            if updated != 1 {
                return Err(StoreError::RegistrationAccessTokenGone);
            }
            if let Some(new) = rotate_to {
                execute(
                    conn,
                    "DELETE FROM registration_access_tokens WHERE token_hash = ?1",
                    params![presented.as_slice()],
                )?;
                insert_rat(conn, new)?;
            }
            Ok(true)
        }
        WriteOp::Delete {
            client_id,
            presented,
            unmanaged_open_only,
        } => {
            // Its tokens go with it: `ON DELETE CASCADE`, with `foreign_keys` on for every
            // connection.
            let deleted = execute(
                conn,
                "DELETE FROM clients WHERE client_id = ?1 AND (?2 IS NULL OR EXISTS \
                 (SELECT 1 FROM registration_access_tokens \
                 WHERE token_hash = ?2 AND client_id = ?1)) \
                 AND (NOT ?3 OR (initial_access_token_id IS NULL AND managed_at IS NULL))",
                params![
                    client_id,
                    presented.as_ref().map(|p| p.as_slice()),
                    unmanaged_open_only
                ],
            )?;
            Ok(deleted == 1)
        }
        WriteOp::RecordJti {
            client_id,
            jti,
            expires_at,
            now,
        } => record_jti(conn, client_id, jti, *expires_at, *now).map_err(backend),
        WriteOp::RecordUse { client_id, at } => record_use(conn, client_id, *at)
            .map(|()| true)
            .map_err(backend),
    }
}

#[cfg(test)]
#[path = "group_commit_tests.rs"]
mod tests;
