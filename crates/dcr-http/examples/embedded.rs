//! dcr embedded in an existing axum application.
//!
//! The host app has its own routes and state; dcr's router is nested under `/oauth` and runs
//! over pieces the host provides:
//! - a custom store ([`CountingStore`]: `MemoryStore` plus call counters; a real app would use
//!   its own database). It implements only what a store must, and proves itself with dcr's
//!   store conformance suite (`dcr_core::store::conformance`, feature `test-util`) in the
//!   self-test;
//! - a custom client id factory (ids carry the label of the initial access token);
//! - a synchronous policy (`brand`) and an asynchronous one (`quota`);
//! - a closure that decides whether a registration access token is issued.
//!
//! ```sh
//! cargo run -p dcr-http --example embedded                 # serves on 127.0.0.1:3000
//! cargo run -p dcr-http --example embedded -- --self-test  # what CI runs: exits non-zero on failure
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use dcr_core::Registrar;
use dcr_core::factory::Factory;
use dcr_core::metadata::ServerMetadata;
use dcr_core::policy::{PolicyCall, PolicyError, RatIssuance, async_policy, sync_policy};
use dcr_core::registrar::MintInitialAccessToken;
use dcr_core::settings::{InitialAccessTokenMode, RegistrarSettings};
use dcr_core::store::conformance::{self, Backend, Maintenance};
use dcr_core::store::{
    ClientDeletion, ClientRecord, ClientStore, ClientUpdate, InitialAccessTokenRecord,
    InitialAccessTokenStore, MemoryStore, NewClient, RegistrationAccessTokenRecord, StoreError,
};
use dcr_core::token::TokenHash;
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A store of the host's: here the memory store, counting the calls dcr makes.
#[derive(Default)]
struct CountingStore {
    inner: MemoryStore,
    calls: AtomicU64,
    inserts: AtomicU64,
}

impl CountingStore {
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl ClientStore for CountingStore {
    async fn insert_client(&self, new: NewClient<'_>) -> Result<(), StoreError> {
        self.count();
        self.inner.insert_client(new).await?;
        self.inserts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        self.count();
        self.inner.get_client(client_id).await
    }
    async fn update_client(&self, update: ClientUpdate<'_>) -> Result<(), StoreError> {
        self.count();
        self.inner.update_client(update).await
    }
    async fn delete_client(
        &self,
        client_id: &str,
        deletion: ClientDeletion<'_>,
    ) -> Result<bool, StoreError> {
        self.count();
        self.inner.delete_client(client_id, deletion).await
    }
    async fn find_registration_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RegistrationAccessTokenRecord>, StoreError> {
        self.count();
        self.inner.find_registration_access_token(hash).await
    }
    async fn revoke_registration_access_token(&self, hash: &TokenHash) -> Result<(), StoreError> {
        self.count();
        self.inner.revoke_registration_access_token(hash).await
    }
    async fn list_clients(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        self.count();
        self.inner.list_clients(after, limit).await
    }
    // The maintenance methods (`mark_managed`, `unmanaged_open_clients`,
    // `count_unmanaged_open_clients`, `ping`, `close`) keep their defaults: pruning finds
    // nothing to prune in this store, and it is always ready.
}

#[async_trait::async_trait]
impl InitialAccessTokenStore for CountingStore {
    async fn insert_initial_access_token(
        &self,
        token: &InitialAccessTokenRecord,
    ) -> Result<(), StoreError> {
        self.count();
        self.inner.insert_initial_access_token(token).await
    }
    async fn find_initial_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<InitialAccessTokenRecord>, StoreError> {
        self.count();
        self.inner.find_initial_access_token(hash).await
    }
    async fn list_initial_access_tokens(
        &self,
    ) -> Result<Vec<InitialAccessTokenRecord>, StoreError> {
        self.count();
        self.inner.list_initial_access_tokens().await
    }
    async fn revoke_initial_access_token(&self, id: &str) -> Result<bool, StoreError> {
        self.count();
        self.inner.revoke_initial_access_token(id).await
    }
}

/// The host application's own state.
struct HostState {
    name: String,
    quota_checks: AtomicU64,
}

/// Most clients the `quota` policy lets register.
const QUOTA: u64 = 3;

/// The host app with dcr mounted under `/oauth`; `addr` is where it will listen.
/// Returns the router, the registrar (to mint tokens) and the pieces the self-test inspects.
fn build(
    addr: SocketAddr,
) -> Result<(Router, Registrar, Arc<CountingStore>, Arc<HostState>), Error> {
    let host = Arc::new(HostState {
        name: "Acme".into(),
        quota_checks: AtomicU64::new(0),
    });
    let store = Arc::new(CountingStore::default());

    // dcr lives below /oauth: the issuer and endpoint URLs say so.
    let mut settings = RegistrarSettings::new(format!("http://{addr}/oauth"));
    settings.initial_access_token = InitialAccessTokenMode::Stored;

    let next_id = Arc::new(AtomicU64::new(1));
    let brand_name = host.name.clone();
    let quota_store = store.clone();
    let quota_host = host.clone();
    let registrar = Registrar::builder(store.clone(), ServerMetadata::default(), settings)
        // Client ids: `<token label>-<sequence>`.
        .id_factory(Factory::sync(move |ctx| {
            let n = next_id.fetch_add(1, Ordering::Relaxed);
            format!("{}-{n:04}", ctx.token_label.as_deref().unwrap_or("open"))
        }))
        // A synchronous policy: every client name carries the host's brand.
        .policy(
            "brand",
            sync_policy(move |call: &mut PolicyCall| {
                let name = call
                    .properties
                    .get("client_name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| PolicyError::Reject("client_name is required".into()))?;
                let branded = format!("{name} (via {brand_name})");
                call.properties
                    .insert("client_name".into(), Value::String(branded));
                Ok(())
            }),
        )
        // An asynchronous policy: asks the store (as a real one would ask a database) how
        // many clients exist, and refuses beyond the quota.
        .policy(
            "quota",
            async_policy(move |call: PolicyCall| {
                let store = quota_store.clone();
                let host = quota_host.clone();
                async move {
                    host.quota_checks.fetch_add(1, Ordering::Relaxed);
                    let existing = store
                        .list_clients(None, QUOTA as usize)
                        .await
                        .map_err(|e| PolicyError::Failed(e.to_string()))?;
                    if existing.len() as u64 >= QUOTA {
                        return Err(PolicyError::Reject(format!(
                            "this tenant may register at most {QUOTA} clients"
                        )));
                    }
                    Ok(call)
                }
            }),
        )
        // No registration access token for clients that say they are ephemeral.
        .issue_registration_access_token(RatIssuance::sync(|ctx| {
            Ok(ctx.header("x-ephemeral-client") != Some("1"))
        }))
        .build()?;

    let app = Router::new()
        .route("/", get(home))
        .with_state(host.clone())
        .nest(
            "/oauth",
            dcr_http::router(registrar.clone(), dcr_http::HttpOptions::default()),
        );
    Ok((app, registrar, store, host))
}

async fn home(State(host): State<Arc<HostState>>) -> String {
    format!("{} authorization server", host.name)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let self_test = std::env::args().any(|a| a == "--self-test");
    let bind = if self_test {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:3000"
    };
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let (app, registrar, store, host) = build(addr)?;
    let (token_record, token) = registrar
        .mint_initial_access_token(MintInitialAccessToken {
            policies: vec!["brand".into(), "quota".into()],
            label: Some("acme".into()),
            ..Default::default()
        })
        .await
        .map_err(|e| e.description().to_owned())?;
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    if !self_test {
        println!("listening on http://{addr}; register at http://{addr}/oauth/reg");
        println!(
            "initial access token ({}): {}",
            token_record.id,
            token.expose()
        );
        server.await??;
        return Ok(());
    }
    let outcome = run_self_test(addr, token.expose(), &store, &host).await;
    server.abort();
    match outcome {
        Ok(()) => {
            // The custom store against every case of the store conformance suite (panics,
            // so exits non-zero, on the first failure).
            conformance::run_all(
                || async { Backend::new(Arc::new(CountingStore::default())) },
                Maintenance::Defaults,
            )
            .await;
            println!("embedded self-test: 2 passed (HTTP, store conformance), 0 failed");
            Ok(())
        }
        Err(e) => {
            eprintln!("embedded self-test failed: {e}");
            println!("embedded self-test: 0 passed, 1 failed");
            std::process::exit(1);
        }
    }
}

fn ensure(condition: bool, what: impl std::fmt::Display) -> Result<(), Error> {
    if condition {
        Ok(())
    } else {
        Err(format!("check failed: {what}").into())
    }
}

/// Registers and reads clients over HTTP and checks that every custom piece ran.
async fn run_self_test(
    addr: SocketAddr,
    iat: &str,
    store: &CountingStore,
    host: &HostState,
) -> Result<(), Error> {
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let client = json!({
        "redirect_uris": ["https://rp.example.com/cb"],
        "client_name": "Self-test RP",
    });

    // The host's own route still answers.
    let home = http.get(format!("{base}/")).send().await?.text().await?;
    ensure(
        home == "Acme authorization server",
        format!("home page: {home:?}"),
    )?;

    // Discovery is served under the mount point, with the mounted endpoint.
    let doc: Value = http
        .get(format!("{base}/oauth/.well-known/openid-configuration"))
        .send()
        .await?
        .json()
        .await?;
    ensure(
        doc["issuer"] == format!("{base}/oauth")
            && doc["registration_endpoint"] == format!("{base}/oauth/reg"),
        format!("discovery document: {doc}"),
    )?;

    // No initial access token: 401.
    let res = http
        .post(format!("{base}/oauth/reg"))
        .json(&client)
        .send()
        .await?;
    ensure(
        res.status() == 401,
        format!("without a token: {}", res.status()),
    )?;

    // Registration with the token: custom id, both policies, a registration access token.
    let res = http
        .post(format!("{base}/oauth/reg"))
        .bearer_auth(iat)
        .json(&client)
        .send()
        .await?;
    ensure(
        res.status() == 201,
        format!("registration: {}", res.status()),
    )?;
    let registered: Value = res.json().await?;
    let client_id = registered["client_id"].as_str().unwrap_or_default();
    ensure(
        client_id == "acme-0001",
        format!("id factory: {client_id:?}"),
    )?;
    ensure(
        registered["client_name"] == "Self-test RP (via Acme)",
        format!("sync policy: {}", registered["client_name"]),
    )?;
    ensure(
        host.quota_checks.load(Ordering::Relaxed) == 1,
        "async policy ran once",
    )?;
    let uri = registered["registration_client_uri"]
        .as_str()
        .unwrap_or_default();
    let rat = registered["registration_access_token"]
        .as_str()
        .unwrap_or_default();
    ensure(
        uri == format!("{base}/oauth/reg/acme-0001") && !rat.is_empty(),
        format!("management credentials: {registered}"),
    )?;

    // RFC 7592 read through the registration client URI.
    let res = http.get(uri).bearer_auth(rat).send().await?;
    ensure(res.status() == 200, format!("read: {}", res.status()))?;
    let read: Value = res.json().await?;
    ensure(
        read["client_id"] == "acme-0001" && read["client_secret"] == registered["client_secret"],
        format!("read body: {read}"),
    )?;

    // The issuance closure: an ephemeral client gets no registration access token.
    let res = http
        .post(format!("{base}/oauth/reg"))
        .bearer_auth(iat)
        .header("x-ephemeral-client", "1")
        .json(&client)
        .send()
        .await?;
    ensure(res.status() == 201, format!("ephemeral: {}", res.status()))?;
    let ephemeral: Value = res.json().await?;
    ensure(
        ephemeral.get("registration_access_token").is_none()
            && ephemeral["client_id"] == "acme-0002",
        format!("ephemeral registration: {ephemeral}"),
    )?;

    // A sync policy rejection and, past the quota, an async one: 400 invalid_client_metadata.
    let res = http
        .post(format!("{base}/oauth/reg"))
        .bearer_auth(iat)
        .json(&json!({ "redirect_uris": ["https://rp.example.com/cb"] }))
        .send()
        .await?;
    let body: Value = res.json().await?;
    ensure(
        body["error"] == "invalid_client_metadata"
            && body["error_description"] == "client_name is required",
        format!("sync policy rejection: {body}"),
    )?;
    for expected in [201, 400] {
        let res = http
            .post(format!("{base}/oauth/reg"))
            .bearer_auth(iat)
            .json(&client)
            .send()
            .await?;
        ensure(
            res.status() == expected,
            format!("quota: {} (expected {expected})", res.status()),
        )?;
    }

    // Every client went through the custom store.
    ensure(
        store.inserts.load(Ordering::Relaxed) == QUOTA,
        format!("store inserts: {}", store.inserts.load(Ordering::Relaxed)),
    )?;
    ensure(
        store.calls.load(Ordering::Relaxed) > QUOTA,
        "store calls counted",
    )?;
    Ok(())
}
