//! RFC 7592 read, update and delete, and the registration access token rules.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_with, web_client};

fn rat(v: &Value) -> String {
    v["registration_access_token"].as_str().unwrap().to_owned()
}

async fn challenge(res: &reqwest::Response) -> String {
    res.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn read_returns_the_registration_with_the_presented_token() {
    let app = spawn_app().await;
    let reg = app.register_ok(&web_client()).await;
    let res = app.read(&reg, &rat(&reg)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, reg, "read returns exactly what registration returned");
}

#[tokio::test]
async fn token_problems_get_401_with_a_challenge() {
    let app = spawn_app().await;
    let reg = app.register_ok(&web_client()).await;
    let uri = app.local(reg["registration_client_uri"].as_str().unwrap());

    // No token: a challenge without an error code.
    let res = app.http.get(&uri).send().await.unwrap();
    assert_eq!(challenge(&res).await, "Bearer realm=\"http://dcr.test\"");
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;

    // Wrong token, other scheme, token in the query: invalid_token challenges.
    for req in [
        app.http.get(&uri).bearer_auth("wrong"),
        app.http
            .get(&uri)
            .header("authorization", format!("Basic {}", rat(&reg))),
        app.http.get(format!("{uri}?access_token={}", rat(&reg))),
    ] {
        let res = req.send().await.unwrap();
        let c = challenge(&res).await;
        assert!(
            c.starts_with("Bearer realm=\"http://dcr.test\", error=\"invalid_token\""),
            "{c}"
        );
        assert_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }

    // A malformed Bearer header is a bad request, without a challenge.
    let res = app
        .http
        .get(&uri)
        .header("authorization", "Bearer  two  spaces")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("www-authenticate").is_none());
    assert_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;

    // The token still works after all that.
    assert_eq!(app.read(&reg, &rat(&reg)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_token_presented_for_another_client_is_revoked() {
    let app = spawn_app().await;
    let a = app.register_ok(&web_client()).await;
    let b = app.register_ok(&web_client()).await;
    let res = app.read(&b, &rat(&a)).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // A's token is now dead, for A too.
    let res = app.read(&a, &rat(&a)).await;
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // Same for an unknown client id.
    let res = app
        .http
        .get(app.url("/reg/unknown"))
        .bearer_auth(rat(&b))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(
        app.read(&b, &rat(&b)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

fn update_body(reg: &Value) -> Value {
    json!({
        "client_id": reg["client_id"],
        "redirect_uris": ["https://rp.example.com/other"],
        "contacts": ["ops@rp.example.com"],
    })
}

#[tokio::test]
async fn update_replaces_the_metadata_and_rotates_the_token() {
    let app = spawn_app().await;
    let reg = app.register_ok(&web_client()).await;
    let res = app.update(&reg, &rat(&reg), &update_body(&reg)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let updated: Value = res.json().await.unwrap();
    assert_eq!(
        updated["redirect_uris"],
        json!(["https://rp.example.com/other"])
    );
    assert!(
        updated.get("client_name").is_none(),
        "omitted members are removed (full replacement)"
    );
    assert_eq!(
        updated["grant_types"],
        json!(["authorization_code"]),
        "defaults re-applied"
    );
    assert_eq!(
        updated["client_secret"], reg["client_secret"],
        "the secret is kept"
    );
    assert_eq!(updated["client_id_issued_at"], reg["client_id_issued_at"]);
    assert_ne!(rat(&updated), rat(&reg), "rotated");
    assert_error(
        app.read(&reg, &rat(&reg)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let res = app.read(&reg, &rat(&updated)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let read: Value = res.json().await.unwrap();
    assert_eq!(read["redirect_uris"], updated["redirect_uris"]);
}

#[tokio::test]
async fn null_and_empty_members_are_removed_on_update() {
    let app = spawn_app().await;
    let reg = app.register_ok(&json!({"redirect_uris": ["https://rp.example.com/cb"], "client_name": "x", "logo_uri": "https://rp.example.com/l.png"})).await;
    let body = json!({"client_id": reg["client_id"], "redirect_uris": ["https://rp.example.com/cb"], "client_name": null, "logo_uri": ""});
    let updated: Value = app
        .update(&reg, &rat(&reg), &body)
        .await
        .json()
        .await
        .unwrap();
    assert!(updated.get("client_name").is_none());
    assert!(updated.get("logo_uri").is_none());
}

#[tokio::test]
async fn update_request_rules() {
    let app = spawn_app().await;
    let reg = app.register_ok(&web_client()).await;
    let token = rat(&reg);
    for field in [
        "registration_access_token",
        "registration_client_uri",
        "client_secret_expires_at",
        "client_id_issued_at",
    ] {
        let mut body = update_body(&reg);
        body[field] = json!(null);
        let d = assert_error(
            app.update(&reg, &token, &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        assert!(d.contains(field), "{d}");
    }
    let mut body = update_body(&reg);
    body.as_object_mut().unwrap().remove("client_id");
    assert_error(
        app.update(&reg, &token, &body).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    body["client_id"] = json!("someone-else");
    assert_error(
        app.update(&reg, &token, &body).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let mut body = update_body(&reg);
    body["client_secret"] = json!("wrong");
    assert_error(
        app.update(&reg, &token, &body).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let mut body = update_body(&reg);
    body["redirect_uris"] = json!(["https://rp.example.com/cb#x"]);
    assert_error(
        app.update(&reg, &token, &body).await,
        StatusCode::BAD_REQUEST,
        "invalid_redirect_uri",
    )
    .await;
    // Nothing above changed anything, and the token was not rotated.
    let read: Value = app.read(&reg, &token).await.json().await.unwrap();
    assert_eq!(read, reg);
    // The right secret may be echoed.
    let mut body = update_body(&reg);
    body["client_secret"] = reg["client_secret"].clone();
    assert_eq!(
        app.update(&reg, &token, &body).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn update_checks_the_token_before_the_body() {
    let app = spawn_app().await;
    let reg = app.register_ok(&web_client()).await;
    let uri = app.local(reg["registration_client_uri"].as_str().unwrap());
    let res = app
        .http
        .put(&uri)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let res = app
        .http
        .put(&uri)
        .bearer_auth(rat(&reg))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn switching_to_a_public_client_drops_the_secret() {
    // Reference defect 5: secrets could never be dropped.
    let app = spawn_app().await;
    let reg = app.register_ok(&web_client()).await;
    let mut body = update_body(&reg);
    body["token_endpoint_auth_method"] = json!("none");
    let updated: Value = app
        .update(&reg, &rat(&reg), &body)
        .await
        .json()
        .await
        .unwrap();
    assert!(updated.get("client_secret").is_none());
    // And a secret is issued when one becomes needed.
    let mut body = update_body(&reg);
    body["token_endpoint_auth_method"] = json!("client_secret_post");
    let again: Value = app
        .update(&reg, &rat(&updated), &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["client_secret"].as_str().unwrap().len(), 86);
}

#[tokio::test]
async fn rotation_can_be_turned_off() {
    let app = spawn_with("[registration]\nrotate_registration_access_token = false\n").await;
    let reg = app.register_ok(&web_client()).await;
    let updated: Value = app
        .update(&reg, &rat(&reg), &update_body(&reg))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rat(&updated), rat(&reg));
    assert_eq!(app.read(&reg, &rat(&reg)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn delete_removes_the_client_and_its_tokens() {
    let app = spawn_app().await;
    let reg = app.register_ok(&web_client()).await;
    let res = app.delete(&reg, &rat(&reg)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(res.bytes().await.unwrap().is_empty());
    assert_error(
        app.read(&reg, &rat(&reg)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_error(
        app.delete(&reg, &rat(&reg)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn management_can_be_turned_off() {
    let app: TestApp = spawn_with("[registration]\nmanagement = false\n").await;
    let reg = app.register_ok(&web_client()).await;
    assert_eq!(
        app.update(&reg, &rat(&reg), &update_body(&reg))
            .await
            .status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        app.delete(&reg, &rat(&reg)).await.status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(app.read(&reg, &rat(&reg)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn client_ids_are_percent_encoded_in_the_client_uri() {
    let app =
        spawn_with("[registration]\nclient_id = { format = \"nanoid\", prefix = \"a b/\" }\n")
            .await;
    let reg = app.register_ok(&web_client()).await;
    let id = reg["client_id"].as_str().unwrap();
    assert!(id.starts_with("a b/"));
    let uri = reg["registration_client_uri"].as_str().unwrap();
    assert!(
        uri.ends_with(&format!("/reg/a%20b%2F{}", &id[4..])),
        "{uri}"
    );
    assert_eq!(app.read(&reg, &rat(&reg)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn undecodable_client_ids_get_a_json_error() {
    let app = spawn_app().await;
    let reg = app.register_ok(&web_client()).await;
    let res = app
        .http
        .get(app.url("/reg/%FF%FE"))
        .bearer_auth(rat(&reg))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
}
