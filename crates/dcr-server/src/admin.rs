//! The admin listener (`[admin]`): client resolution for host authorization servers written
//! in any language, plus `/metrics`, `/healthz` and `/readyz`. Off unless `listen` is set;
//! nothing of it is served on the public listener.
//!
//! `GET /clients/{client_id}` (the id percent-encoded as one path segment) with
//! `Authorization: Bearer <admin token>`:
//! - 200 `{"client_id", "source": "registration" | "metadata_document", "metadata"}` (never
//!   a client secret);
//! - 404 `invalid_client` for an unknown id, a refused URL, a failed fetch or an invalid
//!   document, the description saying which;
//! - 401 `invalid_token` without the admin token (compared in constant time, never logged);
//! - 503 when the store (or a policy or decision script) fails.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use dcr_core::resolve::ClientResolver;
use dcr_core::token::TokenHash;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::config::{Config, LimitsConfig};
use crate::storage::OpenStore;

#[derive(Clone)]
struct AdminState {
    resolver: ClientResolver,
    token: Arc<TokenHash>,
    store: OpenStore,
}

/// The admin listener, bound but not yet serving.
pub struct AdminListener {
    listener: TcpListener,
    router: Router,
    limits: LimitsConfig,
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response()
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    json_response(
        status,
        json!({"error": code, "error_description": description}),
    )
}

/// Whether the request carries the admin token as a bearer token.
fn authorized(headers: &HeaderMap, expected: &TokenHash) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && TokenHash::of(token.trim()).ct_eq(expected)
}

fn unauthorized() -> Response {
    let mut res = error(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "the admin token is missing or wrong",
    );
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    res
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, json!({"status": "ok"}))
}

async fn readyz(State(state): State<AdminState>) -> Response {
    match state.store.store.ping().await {
        Ok(()) => json_response(StatusCode::OK, json!({"status": "ready"})),
        Err(_) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "store unavailable"}),
        ),
    }
}

async fn metrics() -> Response {
    match crate::app::prometheus() {
        Some(h) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            h.render(),
        )
            .into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn not_found(State(state): State<AdminState>, req: Request) -> Response {
    if req.uri().path().starts_with("/clients/") {
        // More than one segment: an id with an unencoded `/`.
        if !authorized(req.headers(), &state.token) {
            return unauthorized();
        }
        return error(
            StatusCode::NOT_FOUND,
            "invalid_client",
            "the client_id must be percent-encoded as one path segment (a / is %2F)",
        );
    }
    error(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint")
}

impl AdminListener {
    /// Binds `[admin] listen` and builds the admin API over `resolver`; `None` when no
    /// admin listener is configured.
    pub async fn bind(
        config: &Config,
        store: &OpenStore,
        resolver: ClientResolver,
    ) -> anyhow::Result<Option<Self>> {
        let Some(listen) = &config.admin.listen else {
            return Ok(None);
        };
        let token = config.admin.token(config)?;
        let state = AdminState {
            resolver,
            token: Arc::new(TokenHash::of(&token)),
            store: store.clone(),
        };
        // GET /clients/{client_id} and POST /clients/authenticate.
        let mut router = Router::new()
            .merge(crate::admin_authn::router(config, store, &state.resolver)?)
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz));
        if config.metrics.enabled {
            let _ = crate::app::prometheus();
            router = router.route("/metrics", get(metrics));
        }
        let router = router.fallback(not_found).with_state(state);
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding admin.listen {listen}"))?;
        Ok(Some(Self {
            listener,
            router,
            limits: config.limits.clone(),
        }))
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves in a background task (aborted when the server stops), with the public
    /// listener's request layers and connection limits.
    pub fn spawn(self) -> JoinHandle<()> {
        if let Ok(addr) = self.local_addr() {
            tracing::info!("admin listener on http://{addr}");
        }
        let limits = self.limits;
        let builder = crate::app::conn::connection_builder(&limits);
        // Never triggered: the admin listener is aborted at shutdown, not drained.
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let app = crate::app::with_layers(
            self.router,
            Duration::from_secs(limits.request_timeout_seconds),
        );
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let listener = self.listener;
        tokio::spawn(async move {
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    break;
                };
                let (stream, remote) = match listener.accept().await {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "admin accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // The public listener's deadlines: a connection without requests is closed.
                let connection = crate::app::conn::serve_connection(
                    &builder,
                    &graceful,
                    &limits,
                    stream,
                    remote,
                    app.clone(),
                );
                tokio::spawn(async move {
                    connection.await;
                    drop(permit);
                });
            }
        })
    }
}
