//! The readers: reused parsed metadata never outlives the stored text, and the close order.

use std::sync::Arc;

use dcr_core::store::ClientStore as _;
use serde_json::json;

use crate::sqlite::SqliteStore;

/// Registers `client_id` (named `name`) through the store's writer thread.
async fn register(store: &SqliteStore, client_id: &str, name: &str) {
    let client = dcr_core::store::ClientRecord {
        client_id: client_id.to_owned(),
        metadata: dcr_core::metadata::ClientMetadata::from_trusted(
            json!({ "client_id": client_id, "client_name": name })
                .as_object()
                .cloned()
                .unwrap(),
        ),
        created_at: 1,
        updated_at: 1,
        initial_access_token_id: None,
        managed_at: None,
    };
    store
        .insert_client(dcr_core::store::NewClient {
            client: &client,
            registration_access_token: None,
            spend_initial_access_token: None,
        })
        .await
        .unwrap();
}

async fn name(store: &SqliteStore, client_id: &str) -> String {
    let client = store.get_client(client_id).await.unwrap().unwrap();
    client.metadata.json().to_string()
}

#[tokio::test]
async fn parsed_metadata_is_reused_only_while_the_stored_text_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcr.db");
    let store = SqliteStore::open(&path).await.unwrap();
    register(&store, "a", "A").await;
    let first = store.get_client("a").await.unwrap().unwrap();
    let second = store.get_client("a").await.unwrap().unwrap();
    assert_eq!(first, second);
    assert!(
        Arc::ptr_eq(&first.metadata.json(), &second.metadata.json()),
        "the unchanged text is parsed once"
    );
    // Another process (here: another connection) changes the record behind the store's back.
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute(
            "UPDATE clients SET metadata = ?1 WHERE client_id = 'a'",
            [r#"{"client_id":"a","client_name":"B"}"#],
        )
        .unwrap();
    assert_eq!(
        name(&store, "a").await,
        r#"{"client_id":"a","client_name":"B"}"#
    );
    // And breaks it: an error for that client only, never the kept metadata.
    other
        .execute(
            "UPDATE clients SET metadata = '{not json' WHERE client_id = 'a'",
            [],
        )
        .unwrap();
    let err = store.get_client("a").await.unwrap_err();
    assert!(
        matches!(&err, dcr_core::store::StoreError::Undecodable { client_id, .. } if client_id == "a"),
        "{err:?}"
    );
    other
        .execute(
            "UPDATE clients SET metadata = CAST(X'7BFF7D' AS TEXT) WHERE client_id = 'a'",
            [],
        )
        .unwrap();
    // Text that is not UTF-8 (the table is `STRICT`: nothing but text is stored there).
    assert!(matches!(
        store.get_client("a").await,
        Err(dcr_core::store::StoreError::Undecodable { .. })
    ));
    drop(other);
    store.close().await;
}

#[tokio::test]
async fn closing_ends_with_the_writer_which_removes_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcr.db");
    let store = SqliteStore::open(&path).await.unwrap();
    register(&store, "a", "A").await;
    assert_eq!(
        name(&store, "a").await,
        r#"{"client_id":"a","client_name":"A"}"#
    );
    let wal = dir.path().join("dcr.db-wal");
    assert!(wal.exists());
    store.close().await;
    // Only a read-write connection closing last checkpoints the WAL and removes it.
    assert!(!wal.exists(), "the WAL outlived the store");
    assert!(
        store.get_client("a").await.is_err(),
        "reads after close fail"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_from_threads_outside_the_runtime_open_their_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("dcr.db")).await.unwrap();
    register(&store, "a", "A").await;
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                for _ in 0..50 {
                    assert!(runtime.block_on(store.get_client("a")).unwrap().is_some());
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(store.readers.idle().len() <= 2, "idle readers stay bounded");
    store.close().await;
}
