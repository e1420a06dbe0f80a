//! The client authentication records (`dcr_core::authn`) on every store: assertion `jti`
//! replay records (including two instances racing on one assertion: exactly one wins),
//! usage (`last_used_at`) and tombstones.
//!
//! PostgreSQL cases each get a fresh database and need `DCR_TEST_POSTGRES_URL`; without it
//! they say so on stderr and check nothing; with it and no server, they fail.
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::Arc;

use dcr_core::authn::{
    AssertionReplayStore, ClientUsageStore, MemoryReplayStore, MemoryUsageStore,
};
use dcr_core::metadata::ClientMetadata;
use dcr_core::store::{ClientRecord, MemoryStore, NewClient, Store};
use dcr_sql::testing::{TestDatabase, admin_url};
use dcr_sql::{PgStore, PgStoreOptions, SqliteStore};
use serde_json::json;

const RUN_PG: &str = "cargo test -p dcr-sql --test authn_conformance";

/// One store as two instances would see it (two handles on one database), with what keeps
/// its storage alive.
struct Backend {
    store: Arc<dyn Store>,
    replay: [Arc<dyn AssertionReplayStore>; 2],
    usage: Arc<dyn ClientUsageStore>,
    /// Whether usage records follow the clients table (SQL: unknown ids ignored, deleted
    /// clients' records gone).
    tracks_clients: bool,
    _keep: Box<dyn Any + Send>,
}

async fn open_memory() -> Option<Backend> {
    let replay = Arc::new(MemoryReplayStore::new());
    Some(Backend {
        store: Arc::new(MemoryStore::new()),
        replay: [replay.clone(), replay],
        usage: Arc::new(MemoryUsageStore::new()),
        tracks_clients: false,
        _keep: Box::new(()),
    })
}

async fn open_sqlite() -> Option<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcr.db");
    let a = Arc::new(SqliteStore::open(&path).await.unwrap());
    let b = Arc::new(SqliteStore::open(&path).await.unwrap());
    Some(Backend {
        store: a.clone(),
        replay: [a.clone(), b],
        usage: a,
        tracks_clients: true,
        _keep: Box::new(dir),
    })
}

async fn open_postgres() -> Option<Backend> {
    let admin = admin_url("dcr-sql client authentication records", RUN_PG)?;
    let db = TestDatabase::create(&admin)
        .await
        .unwrap_or_else(|e| panic!("DCR_TEST_POSTGRES_URL is set but unusable: {e}"));
    let options = PgStoreOptions {
        max_connections: 8,
        ..PgStoreOptions::default()
    };
    let a = Arc::new(PgStore::open(db.url(), &options).await.unwrap());
    let b = Arc::new(PgStore::open(db.url(), &options).await.unwrap());
    Some(Backend {
        store: a.clone(),
        replay: [a.clone(), b],
        usage: a,
        tracks_clients: true,
        _keep: Box::new(db),
    })
}

macro_rules! conformance {
    ($backend:ident, $open:path) => {
        mod $backend {
            conformance!(@cases $open;
                jti_is_single_use_until_it_expires,
                two_instances_racing_on_one_jti_let_exactly_one_win,
                last_used_only_moves_forward,
                tombstones_are_kept_until_they_end,
            );
        }
    };
    (@cases $open:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(backend) = $open().await else { return };
                super::$case(&backend).await;
            }
        )*
    };
}

conformance!(memory, super::open_memory);
conformance!(sqlite, super::open_sqlite);
conformance!(postgres, super::open_postgres);

async fn insert(store: &Arc<dyn Store>, client_id: &str) {
    let record = ClientRecord {
        client_id: client_id.to_owned(),
        metadata: ClientMetadata::from_trusted(
            json!({"client_id": client_id})
                .as_object()
                .cloned()
                .unwrap(),
        ),
        created_at: 100,
        updated_at: 100,
        initial_access_token_id: None,
        managed_at: None,
    };
    store
        .insert_client(NewClient {
            client: &record,
            registration_access_token: None,
            spend_initial_access_token: None,
        })
        .await
        .unwrap();
}

async fn jti_is_single_use_until_it_expires(b: &Backend) {
    let [one, two] = &b.replay;
    assert!(one.record_jti("c1", "j1", 200, 100).await.unwrap());
    assert!(!one.record_jti("c1", "j1", 200, 150).await.unwrap());
    assert!(
        !two.record_jti("c1", "j1", 250, 199).await.unwrap(),
        "seen by the other instance"
    );
    // Per client: another client's jti of the same value is its own.
    assert!(two.record_jti("c2", "j1", 200, 150).await.unwrap());
    // Once expired, the record no longer counts (and may be purged).
    assert!(one.record_jti("c1", "j1", 400, 200).await.unwrap());
    assert!(!two.record_jti("c1", "j1", 400, 300).await.unwrap());
    // Ids and jtis are compared exactly.
    assert!(one.record_jti("c1", "J1", 400, 300).await.unwrap());
    assert!(one.record_jti("c1", "j1 ", 400, 300).await.unwrap());
    assert!(one.record_jti("c1", "é", 400, 300).await.unwrap());
    assert!(!one.record_jti("c1", "é", 400, 300).await.unwrap());
}

async fn two_instances_racing_on_one_jti_let_exactly_one_win(b: &Backend) {
    for round in 0..10 {
        let jti = format!("race-{round}");
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = b.replay[i % 2].clone();
            let jti = jti.clone();
            tasks.push(tokio::spawn(async move {
                store.record_jti("c1", &jti, 1_000, 10).await.unwrap()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "round {round}: exactly one first use");
    }
}

async fn last_used_only_moves_forward(b: &Backend) {
    insert(&b.store, "c1").await;
    insert(&b.store, "c2").await;
    let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert!(
        b.usage
            .last_used(&ids(&["c1", "c2"]))
            .await
            .unwrap()
            .is_empty()
    );
    b.usage.record_use("c1", 500).await.unwrap();
    b.usage.record_use("c1", 400).await.unwrap();
    b.usage.record_use("c2", 450).await.unwrap();
    b.usage.record_use("c2", 600).await.unwrap();
    let got = b
        .usage
        .last_used(&ids(&["c1", "c2", "nobody"]))
        .await
        .unwrap();
    assert_eq!(got.get("c1"), Some(&500));
    assert_eq!(got.get("c2"), Some(&600));
    assert_eq!(got.len(), 2);
    assert_eq!(b.usage.last_used_of("c1").await.unwrap(), Some(500));
    assert_eq!(b.usage.last_used_of("c2").await.unwrap(), Some(600));
    assert_eq!(b.usage.last_used_of("nobody").await.unwrap(), None);
    assert!(b.usage.last_used(&[]).await.unwrap().is_empty());
    if b.tracks_clients {
        b.usage.record_use("nobody", 500).await.unwrap();
        assert!(
            b.usage
                .last_used(&ids(&["nobody"]))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            b.store
                .delete_client("c2", dcr_core::store::ClientDeletion::Unconditional)
                .await
                .unwrap()
        );
        assert!(b.usage.last_used(&ids(&["c2"])).await.unwrap().is_empty());
        assert_eq!(b.usage.last_used_of("c2").await.unwrap(), None);
    }
}

async fn tombstones_are_kept_until_they_end(b: &Backend) {
    insert(&b.store, "gone").await;
    b.usage.record_use("gone", 50).await.unwrap();
    assert!(!b.usage.tombstoned("gone", 100).await.unwrap());
    b.usage.add_tombstone("gone", 200).await.unwrap();
    assert!(
        b.usage
            .last_used(&["gone".to_owned()])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(b.usage.last_used_of("gone").await.unwrap(), None);
    assert!(b.usage.tombstoned("gone", 100).await.unwrap());
    assert!(b.usage.tombstoned("gone", 199).await.unwrap());
    assert!(!b.usage.tombstoned("gone", 200).await.unwrap());
    assert!(!b.usage.tombstoned("other", 100).await.unwrap());
    // A second tombstone extends the first.
    b.usage.add_tombstone("gone", 300).await.unwrap();
    assert!(b.usage.tombstoned("gone", 250).await.unwrap());
    b.usage.remove_tombstone("gone").await.unwrap();
    assert!(!b.usage.tombstoned("gone", 250).await.unwrap());
}
