//! The SQLite store: one file, one writer thread with its own connection (group commits, in
//! `group_commit.rs`), read-only connections that read inline (`read.rs`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dcr_core::store::{
    ClientDeletion, ClientRecord, ClientUpdate, InitialAccessTokenRecord, NewClient,
    RegistrationAccessTokenRecord, StoreError, list_decodable,
};
use dcr_core::token::TokenHash;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot};

use crate::codec::{backend, metadata_to_text};
use crate::shared::sql_store;

/// A store in one SQLite file (WAL journal, `synchronous = FULL`: a write returns only once
/// it is durable).
///
/// Client writes and the writes of every client authentication (assertion `jti`s, uses) go
/// through a single connection owned by a writer thread, so they never contend inside one
/// process; reads run inline on read-only connections (`read.rs`), which reuse the parsed
/// metadata of a client whose stored text has not changed. The other writes (initial access
/// tokens, tombstones, `mark_managed`) use a second, sqlx connection (`writer`), which also
/// applies the migrations. Other processes (such as `dcr iat create`) may write to the same file at the
/// same time.
///
/// Client inserts, updates and deletes are **group-committed**: the writer thread takes every
/// write queued at that moment (up to [`MAX_BATCH`]), applies them in one transaction, each in
/// its own savepoint (one failing write does not affect the others), commits once (one fsync
/// for the whole group) and only then answers each caller. Durability is unchanged: no call
/// returns `Ok` before its write is committed with `synchronous = FULL`.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: Arc<Readers>,
    jobs: mpsc::Sender<Command>,
}

/// The WAL size, in pages (4 KiB), past which the writers checkpoint it into the database
/// file (about 16 MiB; SQLite's default is 1,000 pages).
const WAL_AUTOCHECKPOINT_PAGES: i32 = 4000;

/// The most writes committed in one transaction.
pub const MAX_BATCH: usize = 512;

/// Client authentication records: assertion ids, usage, tombstones.
mod authn;
/// The shared cache of Client ID Metadata Documents.
mod cimd;
mod group_commit;
mod read;

use group_commit::{Command, Job, NewRat, WriteOp, open_writer, write_loop};
use read::Readers;

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
        // The writers checkpoint the WAL when it passes `WAL_AUTOCHECKPOINT_PAGES` rather than
        // SQLite's 1,000: fewer, larger checkpoints write each hot index page to the database
        // file fewer times.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                options
                    .clone()
                    .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string()),
            )
            .await
            .map_err(backend)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&writer)
            .await
            .map_err(backend)?;
        // As many idle readers as the runtime has workers: reads run inline on them.
        let workers = tokio::runtime::Handle::try_current()
            .map_or(1, |runtime| runtime.metrics().num_workers());
        let readers = Arc::new(Readers::open(path, workers)?);
        let conn = open_writer(path).map_err(backend)?;
        let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
        std::thread::Builder::new()
            .name("dcr-sqlite-writer".into())
            .spawn(move || write_loop(conn, queue))
            .map_err(backend)?;
        Ok(Self {
            writer,
            readers,
            jobs,
        })
    }

    /// Hands `op` to the writer thread and waits until its group is committed.
    async fn write(&self, op: WriteOp) -> Result<bool, StoreError> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Command::Write(Box::new(Job { op, done })))
            .await
            .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?
    }

    /// Runs `read`, a read that may visit many rows (listing, counting), on a blocking
    /// thread: point reads run inline ([`Readers`]), but a count over a million clients would
    /// hold a runtime worker for milliseconds.
    async fn scan<R: Send + 'static>(
        &self,
        read: impl FnOnce(&Readers) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || read(&readers))
            .await
            .map_err(backend)?
    }

    /// Closes the connections (after in-flight queries finish).
    pub async fn close(&self) {
        // Readers first, then the writer thread's connection: the last connection to close
        // checkpoints the WAL into the database file and removes it, which a read-only
        // connection cannot do. Writes handed over later fail ("the SQLite writer has stopped").
        self.readers.close().await;
        let (stopped, wait) = oneshot::channel();
        if self.jobs.send(Command::Stop(stopped)).await.is_ok() {
            let _ = wait.await;
        }
        self.writer.close().await;
    }
}

sql_store!(SqliteStore, write = writer, clients {
    async fn insert_client(&self, new: NewClient<'_>) -> Result<(), StoreError> {
        let c = new.client;
        self.write(WriteOp::Insert {
            client_id: c.client_id.clone(),
            metadata: metadata_to_text(&c.metadata),
            created_at: c.created_at,
            updated_at: c.updated_at,
            initial_access_token_id: c.initial_access_token_id.clone(),
            managed_at: c.managed_at,
            rat: new.registration_access_token.map(NewRat::of).transpose()?,
            spend: new
                .spend_initial_access_token
                .map(|(id, now)| (id.to_owned(), now)),
        })
        .await
        .map(drop)
    }

    async fn update_client(&self, update: ClientUpdate<'_>) -> Result<(), StoreError> {
        let c = update.client;
        self.write(WriteOp::Update {
            client_id: c.client_id.clone(),
            metadata: metadata_to_text(&c.metadata),
            updated_at: c.updated_at,
            managed_at: c.managed_at,
            presented: *update.presented.as_bytes(),
            rotate_to: update.rotate_to.map(NewRat::of).transpose()?,
        })
        .await
        .map(drop)
    }

    async fn delete_client(
        &self,
        client_id: &str,
        deletion: ClientDeletion<'_>,
    ) -> Result<bool, StoreError> {
        let presented = match deletion {
            ClientDeletion::ByToken(hash) => Some(*hash.as_bytes()),
            ClientDeletion::IfUnmanagedOpen | ClientDeletion::Unconditional => None,
        };
        // In a group commit of the writer thread: serialised with the other writes, so the
        // token checked here is the one an update may have rotated away.
        self.write(WriteOp::Delete {
            client_id: client_id.to_owned(),
            presented,
            unmanaged_open_only: matches!(deletion, ClientDeletion::IfUnmanagedOpen),
        })
        .await
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.readers.get_client(client_id)
    }

    async fn find_registration_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RegistrationAccessTokenRecord>, StoreError> {
        self.readers.find_registration_access_token(hash)
    }

    async fn list_clients(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        list_decodable(after, limit, |after, limit| {
            self.scan(move |r| r.clients_after(after.as_deref(), limit))
        })
        .await
    }

    async fn unmanaged_open_clients(&self, limit: usize) -> Result<Vec<(String, i64)>, StoreError> {
        self.scan(move |r| r.unmanaged_open_clients(limit)).await
    }

    async fn count_unmanaged_open_clients(&self) -> Result<u64, StoreError> {
        self.scan(Readers::count_unmanaged_open_clients).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.readers.ping()
    }
}, iats {
    async fn find_initial_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<InitialAccessTokenRecord>, StoreError> {
        self.readers.find_initial_access_token(hash)
    }

    async fn list_initial_access_tokens(&self) -> Result<Vec<InitialAccessTokenRecord>, StoreError> {
        self.scan(Readers::list_initial_access_tokens).await
    }
});
