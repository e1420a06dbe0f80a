//! The admin API of client authentication (`POST /clients/authenticate`) and resolution
//! (`GET /clients/{client_id}` with `last_used_at` and tombstones), over real HTTP: a real
//! server takes registrations; the admin routes run over the same SQLite file.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use dcr_server::config::Config;
use dcr_server::storage::OpenStore;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_with_files, web_client};

const ADMIN: &str = "admin-token-0123456789abcdef-0123456789";
const CONFIGURED_SECRET: &str = "configured:secret%+ü";

struct Admin {
    base: String,
    http: reqwest::Client,
    store: OpenStore,
    config: Config,
    app: TestApp,
}

async fn setup() -> Admin {
    let toml = format!(
        "[storage]\nurl = \"sqlite://dcr.db\"\n[admin]\ntoken = \"{ADMIN}\"\n\
         [[clients]]\nclient_id = \"svc\"\nclient_secret_file = \"svc.secret\"\n\
         [clients.metadata]\nredirect_uris = [\"https://svc.example.com/cb\"]\ntoken_endpoint_auth_method = \"client_secret_post\"\n"
    );
    let app = spawn_with_files(&[("svc.secret", &format!("{CONFIGURED_SECRET}\n"))], &toml).await;
    let config = Config::load(Some(&app.config_path())).unwrap();
    let store = OpenStore::open(&config).await.unwrap();
    let registrar = dcr_server::app::build_registrar(&config, &store).unwrap();
    let resolver = dcr_server::cimd::client_resolver(&config, &store, &registrar).unwrap();
    let router: axum::Router = dcr_server::admin_authn::router(&config, &store, &resolver).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Admin {
        base,
        http: reqwest::Client::new(),
        store,
        config,
        app,
    }
}

fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

impl Admin {
    async fn authenticate(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/clients/authenticate", self.base))
            .bearer_auth(ADMIN)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, client_id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/clients/{client_id}", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn admin_authenticates_registered_and_configured_clients() {
    let a = setup().await;
    let reg = a.app.register_ok(&web_client()).await;
    let id = reg["client_id"].as_str().unwrap();
    let secret = reg["client_secret"].as_str().unwrap();
    let res = a
        .authenticate(&json!({"authorization": basic(id, secret), "params": {"grant_type": "client_credentials"}, "audiences": ["https://as.example.com/token"]}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["client_id"], id);
    assert_eq!(body["source"], "registration");
    assert_eq!(body["method"], "client_secret_basic");
    assert_eq!(body["metadata"]["client_name"], "Test RP");
    assert!(body["metadata"].get("client_secret").is_none(), "{body}");
    // Exactly these members: the metadata is the registration without its credentials.
    let mut metadata = reg.as_object().unwrap().clone();
    for member in [
        "client_secret",
        "client_secret_expires_at",
        "registration_access_token",
        "registration_client_uri",
    ] {
        metadata.remove(member);
    }
    assert_eq!(
        body,
        json!({"client_id": id, "source": "registration", "method": "client_secret_basic", "metadata": metadata})
    );
    let resolved: Value = a.get(id).await.json().await.unwrap();
    let used_at = resolved["last_used_at"].as_i64().unwrap();
    assert_eq!(
        resolved,
        json!({"client_id": id, "source": "registration", "metadata": metadata, "last_used_at": used_at})
    );

    // A configured client (secret from a file, client_secret_post).
    let res = a
        .authenticate(&json!({"authorization": null, "params": {"client_id": "svc", "client_secret": CONFIGURED_SECRET}}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (body["source"].as_str(), body["method"].as_str()),
        (Some("configured"), Some("client_secret_post"))
    );

    // Refusals: 401 invalid_client, never echoing what was presented.
    let res = a
        .authenticate(&json!({"authorization": basic(id, "wrong-secret-value"), "params": {}}))
        .await;
    let d = assert_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert_eq!(d, "the client secret is wrong");
    let res = a
        .authenticate(&json!({"authorization": "Basic %%%", "params": {}}))
        .await;
    let d = assert_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert!(d.contains("not valid base64"), "{d}");
    let res = a
        .authenticate(&json!({"params": {"client_id": id, "client_secret": secret}}))
        .await;
    let d = assert_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert!(
        d.contains("client_secret_basic but authenticated with client_secret_post")
            && !d.contains(secret),
        "{d}"
    );
    let res = a
        .authenticate(&json!({"authorization": basic(id, secret), "params": {"client_id": id, "client_secret": secret}}))
        .await;
    let d = assert_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert!(d.contains("more than one"), "{d}");
    let assertion = format!(
        "{}.{}.sig",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"{id}"}}"#))
    );
    let res = a
        .authenticate(&json!({"params": {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion": assertion}}))
        .await;
    let d = assert_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert!(!d.contains(&assertion), "{d}");
    let res = a
        .authenticate(&json!({"params": {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion": "x".repeat(100_000)}}))
        .await;
    let d = assert_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert!(d.contains("longer than 8192 bytes"), "{d}");

    // Bad bodies are 400; no admin token is 401 invalid_token.
    for body in [
        json!({"params": {"client_id": 5}}),
        json!({"params": [], "x": 1}),
        json!([1]),
    ] {
        let res = a.authenticate(&body).await;
        assert_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let res = a
        .http
        .post(format!("{}/clients/authenticate", a.base))
        .bearer_auth("not-the-admin-token")
        .json(&json!({"params": {"client_id": "svc"}}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn use_is_recorded_and_pruned_ids_are_tombstoned() {
    let a = setup().await;
    let reg = a.app.register_ok(&web_client()).await;
    let id = reg["client_id"].as_str().unwrap().to_owned();
    let secret = reg["client_secret"].as_str().unwrap();

    // Never used: no last_used_at; unmanaged, so a prune candidate.
    let res = a.get(&id).await;
    assert_eq!(
        res.headers()["content-type"],
        "application/json",
        "{:?}",
        res.headers()
    );
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["source"], "registration");
    assert!(
        body["last_used_at"].is_i64(),
        "resolution counts as use: {body}"
    );
    let used_at = body["last_used_at"].as_i64().unwrap();
    assert!(
        a.store
            .store
            .get_client(&id)
            .await
            .unwrap()
            .unwrap()
            .managed_at
            .is_some()
    );
    let res = a
        .authenticate(&json!({"authorization": basic(&id, secret), "params": {}}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = a.get(&id).await.json().await.unwrap();
    assert_eq!(
        body["last_used_at"].as_i64(),
        Some(used_at),
        "one write per interval"
    );

    // A configured client resolves (no usage record: it is never pruned).
    let body: Value = a.get("svc").await.json().await.unwrap();
    assert_eq!(body["source"], "configured");
    assert!(body["metadata"].get("client_secret").is_none());

    // Unknown vs pruned.
    let d = assert_error(
        a.get("nobody").await,
        StatusCode::NOT_FOUND,
        "invalid_client",
    )
    .await;
    assert_eq!(d, "no client is registered with this client_id");
    assert!(
        a.store
            .store
            .delete_client(&id, dcr_core::store::ClientDeletion::Unconditional)
            .await
            .unwrap()
    );
    dcr_server::admin_authn::record_removed(&a.config, &a.store, &[(id.clone(), 0)]).await;
    let d = assert_error(a.get(&id).await, StatusCode::NOT_FOUND, "invalid_client").await;
    assert!(d.contains("expired or was deleted; register again"), "{d}");
    let res = a
        .authenticate(&json!({"authorization": basic(&id, secret), "params": {}}))
        .await;
    let d = assert_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    assert!(d.contains("register again"), "{d}");
}

/// The MCP scenario: SDK clients never read their registration back (they drop the
/// registration access token), so only the host's use tells that they are alive.
#[tokio::test]
async fn a_client_the_host_authenticates_is_never_pruned_an_abandoned_one_is() {
    let a = setup().await;
    let used = a.app.register_ok(&web_client()).await;
    let abandoned = a.app.register_ok(&web_client()).await;
    let used_id = used["client_id"].as_str().unwrap();
    let abandoned_id = abandoned["client_id"].as_str().unwrap().to_owned();
    let res = a
        .authenticate(&json!({"authorization": basic(used_id, used["client_secret"].as_str().unwrap()), "params": {}}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // The strictest rules: no unmanaged open client may stay, whatever its age.
    let registrar = dcr_server::app::build_registrar(&a.config, &a.store).unwrap();
    let rules = dcr_core::registrar::PruneRules {
        max_clients: Some(0),
        max_age_seconds: Some(0),
    };
    let gone = registrar.prune(rules, false).await.unwrap();
    assert_eq!(
        gone.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        [abandoned_id.as_str()]
    );
    dcr_server::admin_authn::record_removed(&a.config, &a.store, &gone).await;
    assert_eq!(a.get(used_id).await.status(), StatusCode::OK);
    let d = assert_error(
        a.get(&abandoned_id).await,
        StatusCode::NOT_FOUND,
        "invalid_client",
    )
    .await;
    assert!(d.contains("register again"), "{d}");
}

#[tokio::test]
async fn a_bad_configured_client_stops_start_up_naming_entry_and_member() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "client_id = \"a\"\nclient_secret_env = \"DCR_TEST_NO_SUCH_VARIABLE_15\"\n",
            "clients[0] (client_id \"a\")",
            "DCR_TEST_NO_SUCH_VARIABLE_15 is not set",
        ),
        (
            "client_id = \"b\"\n[clients.metadata]\nclient_secret = \"inline\"\n",
            "clients[0] (client_id \"b\")",
            "metadata.client_secret: not allowed",
        ),
        (
            "client_id = \"c\"\n[clients.metadata]\ntoken_endpoint_auth_method = \"none\"\nredirect_uris = [\"not a uri\"]\n",
            "clients[0] (client_id \"c\")",
            "redirect_uris",
        ),
        (
            "client_id = \"d\"\n[clients.metadata]\nredirect_uris = [\"https://d.example.com/cb\"]\n",
            "clients[0] (client_id \"d\")",
            "needs a secret",
        ),
    ];
    for (entry, name, member) in cases {
        let text = format!(
            "issuer = \"http://dcr.test\"\nallow_insecure_issuer = true\nlisten = \"127.0.0.1:0\"\n[storage]\nurl = \"memory:\"\n[[clients]]\n{entry}"
        );
        let config = Config::from_toml(&text, dir.path()).unwrap();
        let err = match dcr_server::app::Application::build(&config).await {
            Ok(_) => panic!("{entry}: started"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(name) && err.contains(member), "{err}");
    }
}

#[tokio::test]
async fn a_client_deleted_over_rfc_7592_is_tombstoned() {
    let a = setup().await;
    let reg = a.app.register_ok(&web_client()).await;
    let id = reg["client_id"].as_str().unwrap();
    let rat = reg["registration_access_token"].as_str().unwrap();
    assert_eq!(a.get(id).await.status(), StatusCode::OK);
    assert_eq!(
        a.app.delete(&reg, rat).await.status(),
        StatusCode::NO_CONTENT
    );
    let d = assert_error(a.get(id).await, StatusCode::NOT_FOUND, "invalid_client").await;
    assert!(d.contains("expired or was deleted; register again"), "{d}");
    // A refused delete (wrong token) leaves no tombstone.
    let other = a.app.register_ok(&web_client()).await;
    let other_id = other["client_id"].as_str().unwrap();
    assert_eq!(
        a.app.delete(&other, "not-its-token").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(a.get(other_id).await.status(), StatusCode::OK);
}
