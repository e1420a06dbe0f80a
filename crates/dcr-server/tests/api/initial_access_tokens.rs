//! Initial access tokens: static, stored (minted with `dcr iat`), expiry, revocation, use limits.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_error, dcr, spawn_with, web_client};

const STORED: &str =
    "[storage]\nurl = \"sqlite://dcr.db\"\n[registration]\ninitial_access_token = true\n";

#[tokio::test]
async fn a_static_token_guards_registration() {
    let app =
        spawn_with("[registration]\ninitial_access_token = \"static-token-0123456789\"\n").await;
    let res = app.register(&web_client(), None).await;
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(challenge, "Bearer realm=\"http://dcr.test\"");
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let res = app
        .register(&web_client(), Some("static-token-012345678"))
        .await;
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let res = app
        .register(&web_client(), Some("static-token-0123456789"))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // A static token is reusable.
    let res = app
        .register(&web_client(), Some("static-token-0123456789"))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn tokens_minted_by_the_cli_work_against_a_running_server() {
    let app = spawn_with(STORED).await;
    assert_error(
        app.register(&web_client(), None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_error(
        app.register(&web_client(), Some("made-up")).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    let token = app.mint(&["--label", "ci"]);
    assert_eq!(token.len(), 43);
    for _ in 0..3 {
        assert_eq!(
            app.register(&web_client(), Some(&token)).await.status(),
            StatusCode::CREATED,
            "reusable by default"
        );
    }

    // Listed without the token, with its label; then revoked.
    let config = app.config_path();
    let config = config.to_str().unwrap();
    let list = String::from_utf8(dcr(&["iat", "list", "--config", config]).stdout).unwrap();
    assert!(list.contains("ci") && list.contains("unlimited"), "{list}");
    assert!(!list.contains(&token), "the token itself is never listed");
    let id = list
        .lines()
        .find(|l| l.contains(" ci "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let out = dcr(&["iat", "revoke", "--config", config, &id]);
    assert!(out.status.success());
    assert_error(
        app.register(&web_client(), Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let out = dcr(&["iat", "revoke", "--config", config, &id]);
    assert!(!out.status.success(), "revoking twice fails");
}

#[tokio::test]
async fn tokens_expire() {
    let app = spawn_with(STORED).await;
    let token = app.mint(&["--expires-in", "1"]);
    assert_eq!(
        app.register(&web_client(), Some(&token)).await.status(),
        StatusCode::CREATED
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_error(
        app.register(&web_client(), Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn use_limits_hold_under_a_64_way_race() {
    let app = spawn_with(STORED).await;
    let token = app.mint(&["--max-uses", "3"]);
    let client = web_client();
    let attempts = (0..64).map(|_| app.register(&client, Some(&token)));
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!((created, refused), (3, 61), "{statuses:?}");
    let list = String::from_utf8(
        dcr(&[
            "iat",
            "list",
            "--config",
            app.config_path().to_str().unwrap(),
        ])
        .stdout,
    )
    .unwrap();
    assert!(
        list.lines().nth(1).unwrap().trim_end().ends_with(" 0"),
        "no uses left: {list}"
    );
}

#[tokio::test]
async fn the_cli_refuses_what_cannot_work() {
    // Memory storage: the token would vanish.
    let app = spawn_with("[registration]\ninitial_access_token = true\n").await;
    let out = dcr(&[
        "iat",
        "create",
        "--config",
        app.config_path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("memory"));
    // Tokens are not stored unless initial_access_token = true.
    let app = spawn_with("[storage]\nurl = \"sqlite://dcr.db\"\n").await;
    let out = dcr(&[
        "iat",
        "create",
        "--config",
        app.config_path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("initial_access_token = true"));
    // Unknown policies are refused at mint time.
    let app = spawn_with(STORED).await;
    let out = dcr(&[
        "iat",
        "create",
        "--config",
        app.config_path().to_str().unwrap(),
        "--policy",
        "nope",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[tokio::test]
async fn registrations_record_nothing_on_failure() {
    let app = spawn_with(STORED).await;
    let token = app.mint(&["--max-uses", "1"]);
    let bad = serde_json::json!({"redirect_uris": ["https://rp.example.com/cb#frag"]});
    assert_error(
        app.register(&bad, Some(&token)).await,
        StatusCode::BAD_REQUEST,
        "invalid_redirect_uri",
    )
    .await;
    // The failed request did not spend the only use.
    let res = app.register(&web_client(), Some(&token)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert!(body["client_id"].is_string());
    assert_error(
        app.register(&web_client(), Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}
