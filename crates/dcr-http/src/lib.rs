//! The HTTP layer of dcr: an [`axum::Router`] that serves
//! - `POST {registration_path}`: RFC 7591 §3 client registration;
//! - `GET | PUT | DELETE {registration_path}/{client_id}`: RFC 7592 §2 read, update, delete;
//! - `/.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`: discovery.
//!
//! It maps requests onto a [`dcr_core::Registrar`] and its errors onto RFC 7591 / RFC 6750
//! responses. Mount it in any axum application:
//!
//! ```no_run
//! # async fn demo(registrar: dcr_core::Registrar) {
//! let app = axum::Router::new()
//!     .nest("/oauth", dcr_http::router(registrar, dcr_http::HttpOptions::default()));
//! # let _: axum::Router = app;
//! # }
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod bearer;
mod body;
mod discovery;
mod error;
mod handlers;
mod observe;
pub mod ratelimit;

pub use bearer::bearer_token;
pub use body::read_json_object;
pub use discovery::discovery_document;
pub use error::ApiError;
pub use observe::{OPENAPI_JSON, openapi_document};
pub use ratelimit::{GovernorLimiter, Rate, RateLimiter, RateLimits};

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{MethodRouter, delete, get, post, put};
use dcr_core::Registrar;
use ipnet::IpNet;
use serde_json::{Map, Value};
use tower_http::set_header::SetResponseHeaderLayer;

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
    let registration = registration
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::PRAGMA,
            HeaderValue::from_static("no-cache"),
        ));
    let mut app = registration.merge(other);
    if track {
        app = app.layer(axum::middleware::from_fn(observe::track));
    }
    app.with_state(state)
}

#[cfg(test)]
mod router_tests;
