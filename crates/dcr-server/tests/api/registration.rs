//! RFC 7591 registration, discovery and request handling.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ISSUER, assert_error, spawn_app, spawn_in, spawn_with, web_client};

#[tokio::test]
async fn discovery_advertises_what_registration_accepts() {
    let app = spawn_app().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let doc: Value = res.json().await.unwrap();
        assert_eq!(doc["issuer"], ISSUER);
        assert_eq!(doc["registration_endpoint"], format!("{ISSUER}/reg"));
        assert!(
            doc["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("none"))
        );
        assert_eq!(doc["subject_types_supported"], json!(["public"]));
        assert!(doc["grant_types_supported"].is_array());
        assert!(doc["response_types_supported"].is_array());
        assert!(doc["id_token_signing_alg_values_supported"].is_array());
        assert!(doc["scopes_supported"].is_array());
    }
}

#[tokio::test]
async fn discovery_lists_are_the_validation_lists() {
    let app = spawn_with("[metadata]\ntoken_endpoint_auth_methods_supported = [\"none\"]\n").await;
    let doc: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    // The default method is no longer supported: a client must pick "none".
    let res = app.register(&web_client(), None).await;
    assert_error(res, StatusCode::BAD_REQUEST, "invalid_client_metadata").await;
    let mut body = web_client();
    body["token_endpoint_auth_method"] = json!("none");
    app.register_ok(&body).await;
}

#[tokio::test]
async fn registration_returns_the_full_registered_metadata() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let res = app.register(&web_client(), None).await;
    // Assert
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = res.json().await.unwrap();
    let client_id = body["client_id"].as_str().unwrap();
    assert_eq!(client_id.len(), 21);
    assert_eq!(body["client_secret"].as_str().unwrap().len(), 86);
    assert_eq!(body["client_secret_expires_at"], 0);
    assert!(body["client_id_issued_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(
        body["registration_access_token"].as_str().unwrap().len(),
        43
    );
    assert_eq!(
        body["registration_client_uri"],
        format!("{ISSUER}/reg/{client_id}")
    );
    assert_eq!(body["redirect_uris"], json!(["https://rp.example.com/cb"]));
    assert_eq!(body["client_name"], "Test RP");
    assert_eq!(body["grant_types"], json!(["authorization_code"]));
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(body["application_type"], "web");
}

#[tokio::test]
async fn client_supplied_server_members_are_ignored_and_unknown_members_dropped() {
    let app = spawn_app().await;
    let mut body = web_client();
    body["client_id"] = json!("mine");
    body["client_secret"] = json!("mine");
    body["client_id_issued_at"] = json!(1);
    body["not_a_member"] = json!(true);
    let res = app.register_ok(&body).await;
    assert_ne!(res["client_id"], "mine");
    assert_ne!(res["client_secret"], "mine");
    assert_ne!(res["client_id_issued_at"], 1);
    assert!(res.get("not_a_member").is_none());
}

#[tokio::test]
async fn public_clients_get_no_secret() {
    let app = spawn_app().await;
    let mut body = web_client();
    body["token_endpoint_auth_method"] = json!("none");
    body["client_secret"] = json!("ignored");
    let res = app.register_ok(&body).await;
    assert!(res.get("client_secret").is_none());
    assert!(res.get("client_secret_expires_at").is_none());
}

#[tokio::test]
async fn the_secret_decision_follows_configured_defaults() {
    // Reference defect 3: with a default method of "none", no secret is issued.
    let app =
        spawn_with("[metadata.client_defaults]\ntoken_endpoint_auth_method = \"none\"\n").await;
    let res = app.register_ok(&web_client()).await;
    assert_eq!(res["token_endpoint_auth_method"], "none");
    assert!(res.get("client_secret").is_none());
}

#[tokio::test]
async fn rp_metadata_choices_pick_the_first_supported_value() {
    let app = spawn_with("[metadata.features]\nrp_metadata_choices = true\n").await;
    let mut body = web_client();
    body["token_endpoint_auth_methods_supported"] = json!(["private_key_jwt_unsupported", "none"]);
    let res = app.register_ok(&body).await;
    assert_eq!(res["token_endpoint_auth_method"], "none");
    assert!(res.get("token_endpoint_auth_methods_supported").is_none());
    assert!(res.get("client_secret").is_none());
}

#[tokio::test]
async fn bad_bodies_are_invalid_requests() {
    let app = spawn_app().await;
    let post = |ct: &'static str, body: Vec<u8>| {
        app.http
            .post(app.url("/reg"))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    for (ct, body) in [
        ("application/json", b"{".to_vec()),
        ("application/json", b"[]".to_vec()),
        ("application/json", b"null".to_vec()),
        ("application/json", b"\"x\"".to_vec()),
        (
            "application/x-www-form-urlencoded",
            b"redirect_uris=x".to_vec(),
        ),
        ("text/plain", b"{}".to_vec()),
        ("application/json", vec![b' '; 60 * 1024]),
    ] {
        let res = post(ct, body).await.unwrap();
        let d = assert_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(!d.contains("oops"));
    }
    // A charset parameter is fine.
    let res = app
        .http
        .post(app.url("/reg"))
        .header("content-type", "application/json; charset=utf-8")
        .body(web_client().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn metadata_errors_name_the_field() {
    let app = spawn_app().await;
    let res = app
        .register(
            &json!({"redirect_uris": ["https://rp.example.com/cb#frag"]}),
            None,
        )
        .await;
    let d = assert_error(res, StatusCode::BAD_REQUEST, "invalid_redirect_uri").await;
    assert!(d.contains("redirect_uris") && d.contains("fragment"), "{d}");
    let res = app
        .register(&json!({"redirect_uris": "https://rp.example.com/cb"}), None)
        .await;
    assert_error(res, StatusCode::BAD_REQUEST, "invalid_redirect_uri").await;
    let res = app
        .register(
            &json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["password"]}),
            None,
        )
        .await;
    let d = assert_error(res, StatusCode::BAD_REQUEST, "invalid_client_metadata").await;
    assert!(d.starts_with("grant_types"), "{d}");
    let res = app
        .register(
            &json!({"application_type": "native", "redirect_uris": ["http://example.com/cb"]}),
            None,
        )
        .await;
    assert_error(res, StatusCode::BAD_REQUEST, "invalid_redirect_uri").await;
}

#[tokio::test]
async fn open_registration_ignores_authorization_headers() {
    let app = spawn_app().await;
    let res = app
        .http
        .post(app.url("/reg"))
        .header("authorization", "Garbage !!")
        .json(&web_client())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn registration_can_be_disabled() {
    let app = spawn_with("[registration]\nenabled = false\n").await;
    let res = app.register(&web_client(), None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn clients_survive_a_restart_on_sqlite() {
    let config = "[storage]\nurl = \"sqlite://clients.db\"\n";
    let app = spawn_with(config).await;
    let registered = app.register_ok(&web_client()).await;
    let token = registered["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = app.stop().await;
    assert!(
        dir.path().join("clients.db").exists(),
        "relative sqlite path resolves against the config dir"
    );

    let app = spawn_in(dir, config).await;
    let res = app.read(&registered, &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let read: Value = res.json().await.unwrap();
    assert_eq!(read["client_id"], registered["client_id"]);
    assert_eq!(read["client_secret"], registered["client_secret"]);
}
