//! The readers of the SQLite store: read-only `rusqlite` connections with cached statements,
//! run inline on the calling thread.
//!
//! The statements are those of the PostgreSQL store (`crate::shared`, `crate::authn_records`,
//! `crate::cimd_cache`); only how they run differs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use dcr_core::cimd::CachedDocument;
use dcr_core::store::{
    ClientRecord, InitialAccessTokenRecord, ParsedMetadataCache, RegistrationAccessTokenRecord,
    StoreError,
};
use dcr_core::token::TokenHash;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Params, Row, params};

use crate::authn_records::{LAST_USED_ONE, LAST_USED_SQLITE, TOMBSTONED};
use crate::cimd_cache::{GET_DOCUMENT, LIST_DOCUMENTS, document};
use crate::codec::{backend, i64_to_u64, iat_from_row, rat_from_row, u64_to_i64};
use crate::shared::{
    COUNT_UNMANAGED_OPEN_CLIENTS, GET_CLIENT, GET_IAT, GET_RAT, LIST_CLIENTS, LIST_IATS, PING,
    UNMANAGED_OPEN_CLIENTS,
};

/// Read-only connections to the store's file, and the parsed metadata of recent reads.
///
/// A read runs **inline**, on the thread that asks (a tokio worker), rather than on a thread
/// of its own: from the page cache it takes a few microseconds, less than handing it to
/// another thread and back (two context switches each way on a server given one core; sqlx's
/// SQLite driver made that hop for every query). A read never awaits while it holds a
/// connection, so no more reads run at once than there are threads running them: the pool
/// keeps at most as many idle connections as the runtime that opened the store has workers
/// (`keep`), each with its own page cache. A caller that finds none idle (a thread outside
/// that runtime, such as the blocking thread of a listing: `SqliteStore::scan`) opens one for
/// its read and closes it afterwards.
///
/// The connections are opened read-only: they never create, write or checkpoint the WAL (the
/// writer thread does), and in WAL mode a reader never waits for the writer. The rare
/// `SQLITE_BUSY` of a reader (while another process recovers the WAL) waits up to 5 s.
pub(super) struct Readers {
    path: PathBuf,
    keep: usize,
    idle: Mutex<Vec<Connection>>,
    /// Connections lent out now (closing waits until none is).
    lent: AtomicUsize,
    closed: AtomicBool,
    parsed: ParsedMetadataCache,
}

/// A connection lent out by [`Readers::with`], given back when dropped (even by a panic).
struct Lent<'a> {
    readers: &'a Readers,
    conn: Option<Connection>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !self.readers.closed.load(Ordering::SeqCst)
        {
            let mut idle = self.readers.idle();
            if idle.len() < self.readers.keep {
                idle.push(conn);
            }
        }
        self.readers.lent.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Readers {
    /// Readers of the database at `path`, keeping up to `keep` idle connections; opens one
    /// now, so that a file that cannot be read fails here.
    pub(super) fn open(path: &Path, keep: usize) -> Result<Self, StoreError> {
        let readers = Self {
            path: path.to_owned(),
            keep: keep.max(1),
            idle: Mutex::new(Vec::new()),
            lent: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            parsed: ParsedMetadataCache::default(),
        };
        let first = readers.connect().map_err(backend)?;
        readers.idle().push(first);
        Ok(readers)
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // 16 MiB of page cache (SQLite's default is 2 MiB): with a million clients, the index
        // pages of the clients being read no longer fit in 2 MiB.
        conn.pragma_update(None, "cache_size", -16_384)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // Pushing or popping a connection cannot leave the list half-changed.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `read` on an idle connection (or a new one), on this thread.
    fn with<R>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R, StoreError> {
        // Counted before `closed` is checked: `close` either sees this read or it sees `closed`.
        self.lent.fetch_add(1, Ordering::SeqCst);
        let mut lent = Lent {
            readers: self,
            conn: None,
        };
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("the SQLite store is closed".into()));
        }
        let idle = self.idle().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.connect().map_err(backend)?,
        };
        read(lent.conn.insert(conn)).map_err(backend)
    }

    /// Closes every connection, once the reads under way have finished; later reads fail.
    pub(super) async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        while self.lent.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        self.idle().clear();
    }

    /// The rows `sql` answers for `params`, each mapped by `map`.
    fn all<R>(
        &self,
        sql: &str,
        params: impl Params,
        mut map: impl FnMut(&Row<'_>) -> rusqlite::Result<R>,
    ) -> Result<Vec<R>, StoreError> {
        self.with(|conn| {
            let mut statement = conn.prepare_cached(sql)?;
            let mut rows = statement.query(params)?;
            let mut all = Vec::new();
            while let Some(row) = rows.next()? {
                all.push(map(row)?);
            }
            Ok(all)
        })
    }

    /// The first row `sql` answers for `params`, mapped by `map`.
    fn one<R>(
        &self,
        sql: &str,
        params: impl Params,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<R>,
    ) -> Result<Option<R>, StoreError> {
        self.with(|conn| conn.prepare_cached(sql)?.query_row(params, map).optional())
    }

    /// The client in `row` ([`crate::codec::client_columns!`]), its metadata decoded through
    /// the parsed-metadata cache (`keep`: kept there too); [`StoreError::Undecodable`] if the
    /// metadata cannot be decoded.
    fn client(
        &self,
        row: &Row<'_>,
        keep: bool,
    ) -> rusqlite::Result<Result<ClientRecord, StoreError>> {
        let client_id: String = row.get(0)?;
        let undecodable = |reason: &str| StoreError::Undecodable {
            client_id: client_id.clone(),
            reason: reason.to_owned(),
        };
        // The stored text is compared with the cached one in place; copied only to be parsed.
        let metadata = match row.get_ref(1)? {
            ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) if keep => self.parsed.decode(&client_id, text),
                Ok(text) => self.parsed.decode_unkept(&client_id, text),
                Err(_) => Err(undecodable("the metadata is not UTF-8 text")),
            },
            _ => Err(undecodable("the metadata is not text")),
        };
        let metadata = match metadata {
            Ok(metadata) => metadata,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok(ClientRecord {
            client_id,
            metadata,
            created_at: row.get(2)?,
            updated_at: row.get(3)?,
            initial_access_token_id: row.get(4)?,
            managed_at: row.get(5)?,
        }))
    }

    pub(super) fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.one(GET_CLIENT, [client_id], |row| self.client(row, true))?
            .transpose()
    }

    /// At most `limit` clients after `after`, each decoded or not (for `list_decodable`).
    pub(super) fn clients_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Result<ClientRecord, StoreError>>, StoreError> {
        self.all(
            LIST_CLIENTS,
            params![after, u64_to_i64(limit as u64)],
            |row| self.client(row, false),
        )
    }

    pub(super) fn find_registration_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RegistrationAccessTokenRecord>, StoreError> {
        self.one(GET_RAT, [hash.as_bytes().as_slice()], |row| {
            Ok(rat_from_row((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
            )))
        })?
        .transpose()
    }

    pub(super) fn unmanaged_open_clients(
        &self,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        self.all(UNMANAGED_OPEN_CLIENTS, [u64_to_i64(limit as u64)], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
    }

    pub(super) fn count_unmanaged_open_clients(&self) -> Result<u64, StoreError> {
        let n: Option<i64> = self.one(COUNT_UNMANAGED_OPEN_CLIENTS, [], |row| row.get(0))?;
        Ok(i64_to_u64(n.unwrap_or(0)))
    }

    pub(super) fn ping(&self) -> Result<(), StoreError> {
        self.one(PING, [], |_| Ok(())).map(drop)
    }

    pub(super) fn find_initial_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<InitialAccessTokenRecord>, StoreError> {
        self.one(GET_IAT, [hash.as_bytes().as_slice()], |row| {
            Ok(iat_from_row(iat_row(row)?))
        })?
        .transpose()
    }

    pub(super) fn list_initial_access_tokens(
        &self,
    ) -> Result<Vec<InitialAccessTokenRecord>, StoreError> {
        self.all(LIST_IATS, [], iat_row)?
            .into_iter()
            .map(iat_from_row)
            .collect()
    }

    pub(super) fn last_used(
        &self,
        client_ids: &[String],
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        let ids = serde_json::to_string(client_ids).map_err(backend)?;
        let rows = self.all(LAST_USED_SQLITE, [ids], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
        Ok(rows.into_iter().collect())
    }

    pub(super) fn last_used_of(&self, client_id: &str) -> Result<Option<i64>, StoreError> {
        self.one(LAST_USED_ONE, [client_id], |row| row.get(0))
    }

    pub(super) fn tombstoned(&self, client_id: &str, now: i64) -> Result<bool, StoreError> {
        let until: Option<i64> = self.one(TOMBSTONED, params![client_id, now], |row| row.get(0))?;
        Ok(until.is_some())
    }

    pub(super) fn get_document(&self, url: &str) -> Result<Option<CachedDocument>, StoreError> {
        self.one(GET_DOCUMENT, [url], document_row)?
            .map(document)
            .transpose()
    }

    pub(super) fn list_documents(&self, limit: usize) -> Result<Vec<CachedDocument>, StoreError> {
        self.all(LIST_DOCUMENTS, [u64_to_i64(limit as u64)], document_row)?
            .into_iter()
            .map(document)
            .collect()
    }
}

fn iat_row(row: &Row<'_>) -> rusqlite::Result<crate::codec::IatRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

fn document_row(row: &Row<'_>) -> rusqlite::Result<crate::cimd_cache::DocumentRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

/// Never shows the cached metadata (it may hold client secrets).
impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("path", &self.path)
            .field("keep", &self.keep)
            .field("lent", &self.lent)
            .field("closed", &self.closed)
            .field("parsed", &self.parsed)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
