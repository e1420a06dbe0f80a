//! The SQL stores run the store conformance suite (`dcr_core::store::conformance`), as any
//! store does, plus what only SQL stores can meet: rows written by something other than dcr,
//! and several processes starting on one PostgreSQL database.
//!
//! PostgreSQL cases each get a fresh database and need `DCR_TEST_POSTGRES_URL`; without it
//! they say so on stderr and check nothing.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use dcr_core::store::conformance::Backend;
use dcr_core::store::conformance::fixtures::{all_clients, client, ids, register};
use dcr_core::store::{ClientStore as _, NewClient, Store, StoreError};
use dcr_sql::testing::{TestDatabase, admin_url};
use dcr_sql::{PgStore, PgStoreOptions, SqliteStore};
use sqlx::Connection as _;

const RUN_PG: &str = "cargo test -p dcr-sql --test conformance";

async fn open_sqlite() -> Option<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("dcr.db")).await.unwrap();
    Some(Backend::keeping(Arc::new(store), dir))
}

async fn open_postgres() -> Option<Backend> {
    let admin = admin_url("dcr-sql store conformance suite", RUN_PG)?;
    let db = TestDatabase::create(&admin)
        .await
        .unwrap_or_else(|e| panic!("DCR_TEST_POSTGRES_URL is set but unusable: {e}"));
    let options = PgStoreOptions {
        max_connections: 16,
        ..PgStoreOptions::default()
    };
    let store = PgStore::open(db.url(), &options).await.unwrap();
    Some(Backend::keeping(Arc::new(store), db))
}

dcr_core::store_conformance!(sqlite, open_sqlite);
dcr_core::store_conformance!(postgres, open_postgres);

// ===== SQL stores: rows written by something other than dcr =====

/// Rows whose metadata is not a JSON object, as raw SQL writes them.
const POISON_ROWS: &str = "INSERT INTO clients (client_id, metadata, created_at, updated_at) VALUES \
    ('b', '{not json', 1, 1), ('c', '\"a string, secret\"', 1, 1)";

/// With `a` and `d` registered and `b`, `c` poisoned: listing skips the poison, reading it is
/// an error that names the client and never repeats the stored text.
async fn check_poison_is_contained(store: &Arc<dyn Store>) {
    assert_eq!(ids(all_clients(store).await), ["a", "d"]);
    assert_eq!(ids(store.list_clients(Some("a"), 1).await.unwrap()), ["d"]);
    for id in ["b", "c"] {
        let err = store.get_client(id).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Undecodable { client_id, .. } if client_id == id),
            "{err:?}"
        );
        assert!(!err.to_string().contains("secret"), "{err}");
    }
    assert!(store.get_client("a").await.unwrap().is_some());
}

#[tokio::test]
async fn sqlite_rows_that_are_not_json_objects_are_contained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcr.db");
    let sqlite = SqliteStore::open(&path).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    register(&store, "a", "rat-a").await;
    register(&store, "d", "rat-d").await;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query(POISON_ROWS).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    check_poison_is_contained(&store).await;
    sqlite.close().await;
}

#[tokio::test]
async fn postgres_rows_that_are_not_json_objects_are_contained() {
    let Some(admin) = admin_url("dcr-sql store conformance suite", RUN_PG) else {
        return;
    };
    let db = TestDatabase::create(&admin).await.unwrap();
    let pg = PgStore::open(db.url(), &PgStoreOptions::default())
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    register(&store, "a", "rat-a").await;
    register(&store, "d", "rat-d").await;
    let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
    sqlx::query(POISON_ROWS).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    check_poison_is_contained(&store).await;
    pg.close().await;
}

// ===== PostgreSQL only =====

/// Several processes starting at once on a new database: the migration runs once, every
/// store opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_start_up_migrates_once() {
    let Some(admin) = admin_url("dcr-sql store conformance suite", RUN_PG) else {
        return;
    };
    let db = TestDatabase::create(&admin).await.unwrap();
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let url = db.url().to_owned();
            tokio::spawn(async move { PgStore::open(&url, &PgStoreOptions::default()).await })
        })
        .collect();
    let mut stores = Vec::new();
    for o in opens {
        stores.push(o.await.unwrap().unwrap());
    }
    let probe = PgStore::open(db.url(), &PgStoreOptions::default())
        .await
        .unwrap();
    let c = client("after-start", 1);
    stores[0]
        .insert_client(NewClient {
            client: &c,
            registration_access_token: None,
            spend_initial_access_token: None,
        })
        .await
        .unwrap();
    assert_eq!(probe.get_client("after-start").await.unwrap(), Some(c));
    for s in stores {
        s.close().await;
    }
    probe.close().await;

    // Each migration was applied exactly once.
    let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(applied, migration_versions("postgres"));
    conn.close().await.unwrap();
}

/// A server that does not answer is an error, never a panic or a hang.
#[tokio::test]
async fn postgres_unreachable_server_is_a_backend_error() {
    let options = PgStoreOptions {
        connect_timeout: Duration::from_secs(2),
        ..PgStoreOptions::default()
    };
    // Port 1 on loopback: nothing listens there.
    let err = PgStore::open("postgres://postgres@127.0.0.1:1/test", &options)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    let err = PgStore::open("postgres://u:secret@[bad", &options)
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("secret"), "{err}");
}

/// `(version, true)` for every migration file of `backend`, in version order.
fn migration_versions(backend: &str) -> Vec<(i64, bool)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut versions: Vec<(i64, bool)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            (name.split('_').next().unwrap().parse().unwrap(), true)
        })
        .collect();
    versions.sort_unstable();
    versions
}
