//! The shared document cache: instances on one PostgreSQL database (only with
//! `DCR_TEST_POSTGRES_URL`) and a restarted instance on one SQLite file reuse a document
//! without fetching it again.

use dcr_sql::testing::{TestDatabase, admin_url};
use reqwest::StatusCode;

use crate::cimd_harness::{claude_code, spawn_cimd_with};
use crate::cimd_origin::{Origin, Served};

#[tokio::test]
async fn a_document_resolved_on_one_instance_is_served_by_another_without_a_fetch() {
    let Some(admin) = admin_url(
        "dcr-server cimd shared cache",
        "cargo test -p dcr-server --test api cimd_shared",
    ) else {
        return;
    };
    let db = TestDatabase::create(&admin).await.unwrap();
    let origin = Origin::start().await;
    let url = origin.url("/shared.json");
    origin.serve(
        "/shared.json",
        Served::json(&claude_code(&url), Some("max-age=600")),
    );
    let storage = format!("[storage]\nurl = \"{}\"\nmax_connections = 4\n", db.url());
    let a = spawn_cimd_with(&origin, "", &storage, &[], true).await;
    let b = spawn_cimd_with(&origin, "", &storage, &[], true).await;
    let (status, body) = a.lookup(&url).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = b.lookup(&url).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["metadata"]["client_name"], "Claude Code");
    assert_eq!(
        origin.hits("/shared.json"),
        1,
        "instance B used A's document"
    );
}

#[tokio::test]
async fn a_restarted_instance_reuses_its_documents() {
    let origin = Origin::start().await;
    let url = origin.url("/kept.json");
    origin.serve(
        "/kept.json",
        Served::json(&claude_code(&url), Some("max-age=600")),
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dcr.db");
    let storage = format!("[storage]\nurl = \"sqlite://{}\"\n", db.display());
    {
        let first = spawn_cimd_with(&origin, "", &storage, &[], true).await;
        assert_eq!(first.lookup(&url).await.0, StatusCode::OK);
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let second = spawn_cimd_with(&origin, "", &storage, &[], true).await;
    let (status, body) = second.lookup(&url).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(origin.hits("/kept.json"), 1);
}

#[tokio::test]
async fn a_store_that_is_down_is_a_503_never_another_5xx() {
    let Some(admin) = admin_url(
        "dcr-server cimd shared cache",
        "cargo test -p dcr-server --test api cimd_shared",
    ) else {
        return;
    };
    let db = TestDatabase::create(&admin).await.unwrap();
    let origin = Origin::start().await;
    let url = origin.url("/up.json");
    origin.serve(
        "/up.json",
        Served::json(&claude_code(&url), Some("max-age=600")),
    );
    let storage = format!(
        "[storage]\nurl = \"{}\"\nmax_connections = 2\nacquire_timeout_ms = 300\n",
        db.url()
    );
    let app = spawn_cimd_with(&origin, "", &storage, &[], true).await;
    let reg: serde_json::Value = app
        .http
        .post(format!("http://{}/reg", app.addr))
        .json(&serde_json::json!({"redirect_uris": ["https://a.example/cb"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = reg["client_id"].as_str().unwrap().to_owned();
    assert_eq!(app.lookup(&id).await.0, StatusCode::OK);
    drop(db);
    let (status, body) = app.lookup(&id).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    let ready = app
        .http
        .get(format!("http://{}/readyz", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Documents still resolve: the shared cache is skipped, the document fetched.
    let (status, body) = app.lookup(&url).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
