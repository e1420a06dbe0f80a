//! A stored client that cannot be decoded (issue 12, item 5): it breaks neither listing, nor
//! other clients, nor pruning; reading it is an error for that client only.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection as _;

use crate::helpers::*;

fn dcr_in(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcr"))
        .arg("--config")
        .arg(dir.join("dcr.toml"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_client_stored_too_deep_to_decode_is_contained() {
    let app = spawn_with(
        "[storage]\nurl = \"sqlite://dcr.db\"\n[registration.prune]\nmax_unmanaged_open_clients = 1\ninterval_seconds = 0\n",
    )
    .await;
    let managed = app.register_ok(&web_client()).await;
    let token = managed["registration_access_token"].as_str().unwrap();
    assert_eq!(app.read(&managed, token).await.status(), StatusCode::OK);
    let open = app.register_ok(&web_client()).await;
    let ids: Vec<&str> = [&managed, &open]
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();

    // The oldest client, unmanaged and open: metadata nested past the reader's limit (128).
    let deep = format!(
        r#"{{"client_id":"poison","tenant":{}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let url = format!("sqlite://{}", app.dir.path().join("dcr.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO clients (client_id, metadata, created_at, updated_at) VALUES ('poison', ?1, 0, 0)",
    )
    .bind(&deep)
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    // Other clients are served.
    let res = app.read(&managed, token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["client_id"], ids[0]);

    let dir = app.stop().await;
    let d = dir.path();
    let (ok, out, err) = dcr_in(d, &["clients", "list"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1 + 2, "{out}");
    assert!(ids.iter().all(|id| out.contains(id)), "{out}");
    assert!(!out.contains("poison"), "{out}");

    let (ok, _, err) = dcr_in(d, &["clients", "show", "poison"]);
    assert!(!ok);
    assert!(
        err.contains("poison") && err.contains("cannot be decoded"),
        "{err}"
    );

    // Pruning takes it (the oldest unmanaged open client) without decoding it.
    let (ok, out, err) = dcr_in(d, &["clients", "prune"]);
    assert!(ok, "{err}");
    assert!(out.contains("poison"), "{out}");
    let (ok, out, err) = dcr_in(d, &["clients", "show", "poison"]);
    assert!(!ok, "{out}");
    assert!(err.contains("no client with id poison"), "{err}");
    let (_, out, _) = dcr_in(d, &["clients", "list"]);
    assert!(ids.iter().all(|id| out.contains(id)), "{out}");
}
