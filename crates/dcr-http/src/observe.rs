//! Operations endpoints and hooks: request metrics, `/healthz`, `/readyz`, `/openapi.json`.
//!
//! Metrics go through the [`metrics`] facade: they cost nothing until the application installs
//! a recorder (the `dcr` server installs a Prometheus one and serves `/metrics`).

use std::time::Instant;

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;

/// The OpenAPI 3.1 document of the router with default options (registration at `/reg`).
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// Counts requests by method, matched route and status, and times them.
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("dcr_http_requests_total", "method" => method.clone(),
        "route" => route.clone(), "status" => status)
    .increment(1);
    metrics::histogram!("dcr_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /healthz`: the process is up.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the store answers (503 when it does not).
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    match state.registrar.store().ping().await {
        Ok(()) => Json(json!({ "status": "ok" })).into_response(),
        Err(e) => {
            metrics::counter!("dcr_store_errors_total").increment(1);
            tracing::warn!(error = %e, "readiness check: store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "store": "unreachable" })),
            )
                .into_response()
        }
    }
}

/// `GET /openapi.json`: the committed document, with the configured registration path.
pub(crate) async fn openapi(State(state): State<AppState>) -> Response {
    match openapi_document(&state.options.registration_path) {
        Some(doc) => Json(doc).into_response(),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The OpenAPI document with `/reg` replaced by `registration_path`.
pub fn openapi_document(registration_path: &str) -> Option<Value> {
    let mut doc: Value = serde_json::from_str(OPENAPI_JSON).ok()?;
    let base = registration_path.trim_end_matches('/');
    if base != "/reg" {
        let paths = doc.get_mut("paths")?.as_object_mut()?;
        let moved: Vec<(String, Value)> = std::mem::take(paths)
            .into_iter()
            .map(|(k, v)| match k.strip_prefix("/reg") {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                    let p = format!("{base}{rest}");
                    (if p.is_empty() { "/".to_owned() } else { p }, v)
                }
                _ => (k, v),
            })
            .collect();
        paths.extend(moved);
    }
    Some(doc)
}
