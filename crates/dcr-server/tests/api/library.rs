//! The library face: a registrar built in Rust with custom factories, closures as policies and
//! issuance decision, mounted under a prefix of another axum app.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dcr_core::Registrar;
use dcr_core::factory::Factory;
use dcr_core::metadata::ServerMetadata;
use dcr_core::policy::{PolicyCall, PolicyError, RatIssuance, async_policy, sync_policy};
use dcr_core::registrar::MintInitialAccessToken;
use dcr_core::settings::{InitialAccessTokenMode, RegistrarSettings};
use dcr_core::store::MemoryStore;
use serde_json::{Value, json};

#[tokio::test]
async fn custom_factories_policies_and_issuance_through_the_library() {
    // Arrange: a registrar with everything plugged in by closures.
    let counter = Arc::new(AtomicUsize::new(0));
    let ids = counter.clone();
    let mut settings = RegistrarSettings::new("https://as.example.com/oauth");
    settings.initial_access_token = InitialAccessTokenMode::Stored;
    let registrar = Registrar::builder(
        Arc::new(MemoryStore::new()),
        ServerMetadata::default(),
        settings,
    )
    .id_factory(Factory::sync(move |_| {
        format!("lib-{}", ids.fetch_add(1, Ordering::SeqCst))
    }))
    .secret_factory(Factory::from_async(|ctx| async move {
        format!("secret-for-{}", ctx.method)
    }))
    .policy(
        "name",
        sync_policy(|call: &mut PolicyCall| {
            call.properties
                .insert("client_name".into(), json!("named by a sync policy"));
            Ok(())
        }),
    )
    .policy(
        "no-logo",
        async_policy(|call: PolicyCall| async move {
            if call.properties.contains_key("logo_uri") {
                return Err(PolicyError::Reject("no logos".into()));
            }
            Ok(call)
        }),
    )
    .issue_registration_access_token(RatIssuance::sync(|ctx| {
        Ok(ctx.header("x-manage") == Some("yes"))
    }))
    .build()
    .expect("registrar builds");
    let (_, token) = registrar
        .mint_initial_access_token(MintInitialAccessToken {
            policies: vec!["name".into(), "no-logo".into()],
            ..Default::default()
        })
        .await
        .expect("mint");
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "the host app" }))
        .nest(
            "/oauth",
            dcr_http::router(registrar, dcr_http::HttpOptions::default()),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();

    // Act
    let res = http
        .post(format!("http://{addr}/oauth/reg"))
        .bearer_auth(token.expose())
        .header("x-manage", "yes")
        .json(&json!({"redirect_uris": ["https://rp.example.com/cb"]}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["client_id"], "lib-0");
    assert_eq!(body["client_secret"], "secret-for-POST");
    assert_eq!(body["client_name"], "named by a sync policy");
    assert_eq!(
        body["registration_client_uri"],
        "https://as.example.com/oauth/reg/lib-0"
    );
    let rejected = http
        .post(format!("http://{addr}/oauth/reg"))
        .bearer_auth(token.expose())
        .json(&json!({"redirect_uris": ["https://rp.example.com/cb"], "logo_uri": "https://rp.example.com/l.png"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 400);
    let without_header: Value = http
        .post(format!("http://{addr}/oauth/reg"))
        .bearer_auth(token.expose())
        .json(&json!({"redirect_uris": ["https://rp.example.com/cb"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(without_header.get("registration_access_token").is_none());
    let host = http
        .get(format!("http://{addr}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(host, "the host app");
}

#[tokio::test]
async fn a_colliding_id_is_never_stored_over_an_existing_client() {
    let store = Arc::new(MemoryStore::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    // The first two ids collide, the third is fresh.
    let registrar = Registrar::builder(
        store,
        ServerMetadata::default(),
        RegistrarSettings::new("https://as.example.com"),
    )
    .id_factory(Factory::sync(move |_| {
        let n = seen.fetch_add(1, Ordering::SeqCst);
        if n < 3 {
            "same".to_owned()
        } else {
            format!("fresh-{n}")
        }
    }))
    .build()
    .unwrap();
    let body = json!({"redirect_uris": ["https://rp.example.com/cb"]})
        .as_object()
        .cloned()
        .unwrap();
    let first = registrar
        .register(Default::default(), None, body.clone())
        .await
        .unwrap();
    assert_eq!(first.metadata.client_id(), "same");
    let second = registrar
        .register(Default::default(), None, body.clone())
        .await
        .unwrap();
    assert!(
        second.metadata.client_id().starts_with("fresh-"),
        "{}",
        second.metadata.client_id()
    );
    assert_ne!(
        first.metadata.client_secret(),
        second.metadata.client_secret()
    );
}
