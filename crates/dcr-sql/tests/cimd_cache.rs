//! The shared cache of metadata documents on SQLite and PostgreSQL (PostgreSQL only with
//! `DCR_TEST_POSTGRES_URL`): what one handle keeps, another handle on the same store reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dcr_core::cimd::{CachedDocument, MetadataDocumentCache};
use dcr_core::metadata::ClientMetadata;
use dcr_sql::testing::{TestDatabase, admin_url};
use dcr_sql::{PgStore, PgStoreOptions, SqliteStore};
use serde_json::json;

fn doc(url: &str, name: &str, expires_at: i64) -> CachedDocument {
    CachedDocument {
        url: url.into(),
        metadata: ClientMetadata::from_trusted(
            json!({"client_id": url, "client_name": name})
                .as_object()
                .unwrap()
                .clone(),
        ),
        fetched_at: 100,
        expires_at,
    }
}

async fn exercise(a: &dyn MetadataDocumentCache, b: &dyn MetadataDocumentCache) {
    let x = "https://a.example/x.json";
    assert_eq!(b.get_document(x).await.unwrap(), None);
    a.put_document(&doc(x, "one", 200)).await.unwrap();
    assert_eq!(b.get_document(x).await.unwrap(), Some(doc(x, "one", 200)));
    a.put_document(&doc(x, "two", 300)).await.unwrap();
    let got = b.get_document(x).await.unwrap().unwrap();
    assert_eq!(got.metadata.str("client_name"), Some("two"));
    assert_eq!(got.expires_at, 300);
    a.put_document(&doc("https://a.example/a.json", "a", 1))
        .await
        .unwrap();
    let urls: Vec<String> = b
        .list_documents(10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.url)
        .collect();
    assert_eq!(urls, ["https://a.example/a.json", x]);
    assert_eq!(b.list_documents(1).await.unwrap().len(), 1);
    assert!(b.evict_document(x).await.unwrap());
    assert!(!a.evict_document(x).await.unwrap());
    assert_eq!(a.get_document(x).await.unwrap(), None);
}

#[tokio::test]
async fn sqlite_keeps_documents_across_handles_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcr.db");
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    exercise(&a, &b).await;
    a.put_document(&doc("https://k.example/k", "kept", 9))
        .await
        .unwrap();
    a.close().await;
    b.close().await;
    let reopened = SqliteStore::open(&path).await.unwrap();
    let kept = reopened.get_document("https://k.example/k").await.unwrap();
    assert_eq!(kept.unwrap().metadata.str("client_name"), Some("kept"));
    reopened.close().await;
}

#[tokio::test]
async fn postgres_shares_documents_between_pools() {
    let Some(admin) = admin_url(
        "dcr-sql cimd cache",
        "cargo test -p dcr-sql --test cimd_cache",
    ) else {
        return;
    };
    let db = TestDatabase::create(&admin).await.unwrap();
    let options = PgStoreOptions {
        max_connections: 2,
        connect_timeout: std::time::Duration::from_secs(5),
        acquire_timeout: std::time::Duration::from_secs(5),
    };
    let a = PgStore::open(db.url(), &options).await.unwrap();
    let b = PgStore::open(db.url(), &options).await.unwrap();
    exercise(&a, &b).await;
    a.close().await;
    b.close().await;
}
