//! Concurrent RFC 7592 requests with one registration access token, against the SQLite store.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn rat(body: &Value) -> String {
    body["registration_access_token"]
        .as_str()
        .expect("a registration access token")
        .to_owned()
}

/// A rotating PUT and a DELETE sent at once with the same token: exactly one of them
/// succeeds (issue 12, item 7), and what is stored agrees with the winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotating_update_and_delete_with_one_token_let_exactly_one_win() {
    let app = spawn_with("[storage]\nurl = \"sqlite://dcr.db\"\n").await;
    let mut put_wins = 0;
    let mut delete_wins = 0;
    for round in 0..40 {
        let reg = app.register_ok(&web_client()).await;
        let token = rat(&reg);
        let body = json!({
            "client_id": reg["client_id"],
            "redirect_uris": ["https://rp.example.com/cb"],
            "client_name": format!("round {round}"),
        });
        let (put, delete) = tokio::join!(app.update(&reg, &token, &body), app.delete(&reg, &token));
        match (put.status(), delete.status()) {
            (StatusCode::OK, StatusCode::UNAUTHORIZED) => {
                put_wins += 1;
                let updated: Value = put.json().await.unwrap();
                assert_eq!(
                    app.read(&reg, &rat(&updated)).await.status(),
                    StatusCode::OK,
                    "round {round}: the rotated token manages the client that was kept"
                );
            }
            (StatusCode::UNAUTHORIZED, StatusCode::NO_CONTENT) => delete_wins += 1,
            other => panic!("round {round}: PUT and DELETE answered {other:?}"),
        }
        // The old token is dead either way.
        assert_eq!(
            app.read(&reg, &token).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(put_wins + delete_wins, 40, "{put_wins} {delete_wins}");
}
