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

pub use bearer::bearer_token;
pub use body::read_json_object;
pub use discovery::discovery_document;
pub use error::ApiError;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use dcr_core::Registrar;
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
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            registration_path: "/reg".into(),
            body_limit: 56 * 1024,
            discovery: true,
            discovery_extra: Map::new(),
        }
    }
}

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) registrar: Registrar,
    pub(crate) options: Arc<HttpOptions>,
}

/// The registration router over `registrar`.
pub fn router(registrar: Registrar, options: HttpOptions) -> Router {
    let management = registrar.settings().management;
    let state = AppState {
        registrar,
        options: Arc::new(options),
    };
    let base = state
        .options
        .registration_path
        .trim_end_matches('/')
        .to_owned();
    let mut client_routes = get(handlers::read);
    if management {
        client_routes = client_routes.put(handlers::update).delete(handlers::delete);
    }
    let registration = Router::new()
        .route(
            &if base.is_empty() {
                "/".to_owned()
            } else {
                base.clone()
            },
            post(handlers::register),
        )
        .route(&format!("{base}/{{client_id}}"), client_routes)
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::PRAGMA,
            HeaderValue::from_static("no-cache"),
        ));
    let mut app = registration;
    if state.options.discovery {
        app = app
            .route("/.well-known/openid-configuration", get(discovery::serve))
            .route(
                "/.well-known/oauth-authorization-server",
                get(discovery::serve),
            );
    }
    app.with_state(state)
}
