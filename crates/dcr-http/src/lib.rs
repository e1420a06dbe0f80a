//! The HTTP layer of dcr: an [`axum::Router`] for OAuth 2.0 Dynamic Client Registration
//! (RFC 7591), its management protocol (RFC 7592) and discovery, over a
//! [`dcr_core::Registrar`]. Mount it in any axum application.
//!
//! # Routes
//!
//! Relative to where the router is mounted:
//! - `POST {registration_path}`: RFC 7591 §3 client registration (201 with the registered
//!   metadata);
//! - `GET | PUT | DELETE {registration_path}/{client_id}`: RFC 7592 §2 read, update, delete,
//!   with the registration access token as a bearer token (PUT and DELETE only when
//!   [`RegistrarSettings::management`](dcr_core::settings::RegistrarSettings::management) is on);
//! - `/.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`:
//!   discovery (turn off with [`HttpOptions::discovery`] when the host serves its own, and add
//!   [`discovery_document`] to it).
//!
//! Errors are RFC 7591 / RFC 6750 JSON bodies (`error`, `error_description`), 401s carry a
//! `WWW-Authenticate: Bearer realm="<issuer>"` challenge, and every response is `no-store`.
//!
//! # Mount
//!
//! Build a [`Registrar`] and nest [`router`] where registration should live. Absolute URLs
//! (`registration_endpoint`, `registration_client_uri`) come from
//! [`RegistrarSettings`](dcr_core::settings::RegistrarSettings), never from request headers,
//! so the issuer must name the mount point:
//!
//! ```no_run
//! use std::sync::Arc;
//! use dcr_core::{Registrar, metadata::ServerMetadata, settings::RegistrarSettings};
//! use dcr_core::store::MemoryStore;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // dcr under https://as.example.com/oauth: registration at /oauth/reg.
//! let settings = RegistrarSettings::new("https://as.example.com/oauth");
//! let registrar = Registrar::builder(Arc::new(MemoryStore::new()), ServerMetadata::default(), settings)
//!     .build()?;
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "the host's own routes" }))
//!     .nest("/oauth", dcr_http::router(registrar, dcr_http::HttpOptions::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! // ConnectInfo lets policies and factories see the client address.
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Configure
//!
//! - [`RegistrarSettings`](dcr_core::settings::RegistrarSettings): issuer, registration
//!   endpoint URL, management on/off, token rotation on update, and how registration is
//!   authorised ([`InitialAccessTokenMode`](dcr_core::settings::InitialAccessTokenMode):
//!   open, one static token, or tokens minted with
//!   [`Registrar::mint_initial_access_token`] and kept in the store).
//! - [`ServerMetadata`](dcr_core::metadata::ServerMetadata): what registration accepts
//!   (grant types, response types, auth methods, algorithms, scopes, optional features). The
//!   same lists are advertised by discovery, so what is advertised is what is accepted.
//! - [`HttpOptions`]: path of the registration endpoint below the mount point, body limit,
//!   discovery on/off and extra discovery members (`authorization_endpoint`, `jwks_uri`, ...
//!   of the host authorization server), and [`RateLimits`]: in-process limits
//!   ([`Limit::in_memory`]), or, with the `redis` feature, limits shared by every instance
//!   through a `ratelimit::RedisBackend`.
//! - [`RegistrarBuilder`](dcr_core::registrar::RegistrarBuilder): client id and secret
//!   generators ([`Factory`](dcr_core::factory::Factory): nanoid, uuid, random bytes, or any
//!   sync or async closure that sees the request), whether a registration access token is
//!   issued ([`RatIssuance`](dcr_core::policy::RatIssuance): always, never, or a closure),
//!   policies, the clock, and the fetcher of `jwks_uri` / `sector_identifier_uri` documents
//!   (`dcr-fetch` provides an SSRF-guarded one).
//!
//! # Store
//!
//! The registrar keeps clients and tokens in any `Arc<dyn Store>`: a type that implements
//! [`ClientStore`](dcr_core::store::ClientStore) and
//! [`InitialAccessTokenStore`](dcr_core::store::InitialAccessTokenStore).
//! [`MemoryStore`](dcr_core::store::MemoryStore) is for tests and demos; `dcr-sql` has
//! SQLite and PostgreSQL stores. A host can bring its own (or wrap one): tokens reach the store
//! only as hashes, and each method that writes several records must do so atomically (see the
//! trait docs).
//!
//! # Policies
//!
//! A policy is a named hook that runs before validation on registration (POST) and update
//! (PUT): it may set defaults, force values or reject with `invalid_client_metadata`
//! ([`PolicyError::Reject`](dcr_core::policy::PolicyError::Reject)). Write one with
//! [`sync_policy`](dcr_core::policy::sync_policy) or
//! [`async_policy`](dcr_core::policy::async_policy) and add it with
//! [`RegistrarBuilder::policy`](dcr_core::registrar::RegistrarBuilder::policy). Policies are
//! attached to stored initial access tokens (so they need
//! [`InitialAccessTokenMode::Stored`](dcr_core::settings::InitialAccessTokenMode::Stored)):
//! the token's policies run, in order, on every registration made with it, and are carried by
//! the registration access token to later updates.
//!
//! # A complete example
//!
//! `crates/dcr-http/examples/embedded.rs` mounts dcr under `/oauth` of a host app with its own
//! routes and state, over a custom store, a custom id factory, a sync and an async policy and
//! an issuance closure. `cargo run -p dcr-http --example embedded -- --self-test` registers
//! and reads clients through HTTP and checks every custom piece ran (CI runs it).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod bearer;
mod body;
mod context;
mod discovery;
mod error;
mod handlers;
mod observe;
pub mod ratelimit;
mod route_layer;

pub use bearer::bearer_token;
pub use body::read_json_object;
pub use discovery::discovery_document;
pub use error::ApiError;
pub use observe::{OPENAPI_JSON, openapi_document};
pub use ratelimit::{AddressKeying, GovernorLimiter, Limit, Rate, RateLimiter, RateLimits};

use std::sync::Arc;

use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};
use dcr_core::Registrar;
use ipnet::IpNet;
use route_layer::RouteLayer;
use serde_json::{Map, Value};

/// How the router is laid out and what it accepts.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Path of the registration endpoint, relative to where the router is mounted (default `/reg`).
    pub registration_path: String,
    /// Largest request body accepted, in bytes (default 56 KiB, as node-oidc-provider).
    pub body_limit: usize,
    /// Serve the two discovery documents (default true).
    pub discovery: bool,
    /// Extra members of the discovery documents (for example `authorization_endpoint`).
    pub discovery_extra: Map<String, Value>,
    /// Rate limits (default: none).
    pub rate_limits: RateLimits,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` headers are believed (default: none).
    pub trusted_proxies: Vec<IpNet>,
    /// Record request metrics through the `metrics` facade (default true; free without a recorder).
    pub metrics: bool,
    /// Serve `/healthz` and `/readyz` (default true).
    pub health: bool,
    /// Serve `/openapi.json` (default true).
    pub openapi: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            registration_path: "/reg".into(),
            body_limit: 56 * 1024,
            discovery: true,
            discovery_extra: Map::new(),
            rate_limits: RateLimits::default(),
            trusted_proxies: Vec::new(),
            metrics: true,
            health: true,
            openapi: true,
        }
    }
}

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) registrar: Registrar,
    pub(crate) options: Arc<HttpOptions>,
    /// `dcr_registrations_total` by operation.
    pub(crate) operations: Arc<observe::OperationCounters>,
}

/// One route and method the router serves (`HEAD` is implied by `GET`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    /// The path, relative to where the router is mounted, in axum syntax (`/reg/{client_id}`).
    pub path: String,
    /// The method.
    pub method: Method,
}

struct Entry {
    endpoint: Endpoint,
    /// Registration responses are never cached (RFC 7591 §3.2).
    no_store: bool,
    handler: MethodRouter<AppState>,
}

/// The one table the router is built from (so [`endpoints`] cannot drift from [`router`]).
fn table(options: &HttpOptions, management: bool) -> Vec<Entry> {
    let base = options.registration_path.trim_end_matches('/').to_owned();
    let reg_path = if base.is_empty() {
        "/".to_owned()
    } else {
        base.clone()
    };
    let client_path = format!("{base}/{{client_id}}");
    let entry = |path: &str, method: Method, no_store: bool, handler| Entry {
        endpoint: Endpoint {
            path: path.to_owned(),
            method,
        },
        no_store,
        handler,
    };
    let mut t = vec![
        entry(&reg_path, Method::POST, true, post(handlers::register)),
        entry(&client_path, Method::GET, true, get(handlers::read)),
    ];
    if management {
        t.push(entry(
            &client_path,
            Method::PUT,
            true,
            put(handlers::update),
        ));
        t.push(entry(
            &client_path,
            Method::DELETE,
            true,
            delete(handlers::delete),
        ));
    }
    if options.discovery {
        for p in [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ] {
            t.push(entry(p, Method::GET, false, get(discovery::serve)));
        }
    }
    if options.health {
        t.push(entry("/healthz", Method::GET, false, get(observe::healthz)));
        t.push(entry("/readyz", Method::GET, false, get(observe::readyz)));
    }
    if options.openapi {
        t.push(entry(
            "/openapi.json",
            Method::GET,
            false,
            get(observe::openapi),
        ));
    }
    t
}

/// Every route and method [`router`] serves with these options.
pub fn endpoints(options: &HttpOptions, management: bool) -> Vec<Endpoint> {
    table(options, management)
        .into_iter()
        .map(|e| e.endpoint)
        .collect()
}

/// The registration router over `registrar`.
pub fn router(registrar: Registrar, options: HttpOptions) -> Router {
    let management = registrar.settings().management;
    let entries = table(&options, management);
    let track = options.metrics;
    let state = AppState {
        registrar,
        options: Arc::new(options),
        operations: Arc::default(),
    };
    let mut registration = Router::new();
    let mut other = Router::new();
    for e in entries {
        if e.no_store {
            registration = registration.route(&e.endpoint.path, e.handler);
        } else {
            other = other.route(&e.endpoint.path, e.handler);
        }
    }
    // One layer per route (see `route_layer`).
    let metrics = track.then(|| Arc::new(observe::RequestMetrics::default()));
    let registration = registration.layer(RouteLayer {
        no_store: true,
        metrics: metrics.clone(),
    });
    let other = other.layer(RouteLayer {
        no_store: false,
        metrics,
    });
    let app = registration.merge(other);
    app.with_state(state)
}

#[cfg(test)]
mod extractor_tests;
#[cfg(test)]
mod router_tests;
