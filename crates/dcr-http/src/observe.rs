//! Operations endpoints and hooks: request metrics, `/healthz`, `/readyz`, `/openapi.json`.
//!
//! Metrics go through the [`metrics`] facade: they cost nothing until the application installs
//! a recorder (the `dcr` server installs a Prometheus one and serves `/metrics`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram};
use serde_json::{Value, json};

use crate::AppState;

/// The OpenAPI 3.1 document of the router with default options (registration at `/reg`).
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// The `method` label of a request: one of a closed set, so that made-up methods cannot
/// create series without bound.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// The metric handles of the requests seen so far, by matched route, then method and status:
/// a request costs a map lookup under a read lock and two atomic updates, instead of a
/// registry lookup that allocates its labels. Handles are taken from the recorder installed
/// when a combination is first seen, so install the recorder before serving.
#[derive(Debug, Default)]
pub(crate) struct RequestMetrics {
    by_route: RwLock<HashMap<Arc<str>, Vec<RequestHandles>>>,
}

#[derive(Debug)]
struct RequestHandles {
    method: &'static str,
    status: StatusCode,
    requests: Counter,
    duration: Histogram,
}

impl RequestMetrics {
    /// Counts and times one request. `route` must be a matched route (a closed set) and the
    /// method is reduced to [`method_label`], so the number of series stays bounded.
    pub(crate) fn record(&self, method: &Method, route: &str, status: StatusCode, seconds: f64) {
        let method = method_label(method);
        let by_route = self.by_route.read().unwrap_or_else(PoisonError::into_inner);
        let seen = by_route
            .get(route)
            .and_then(|v| v.iter().find(|h| h.method == method && h.status == status));
        if let Some(h) = seen {
            h.requests.increment(1);
            h.duration.record(seconds);
            return;
        }
        drop(by_route);
        let h = RequestHandles {
            method,
            status,
            requests: metrics::counter!("dcr_http_requests_total",
                "method" => method, "route" => route.to_owned(),
                "status" => status.as_str().to_owned()),
            duration: metrics::histogram!("dcr_http_request_duration_seconds",
                "method" => method, "route" => route.to_owned()),
        };
        h.requests.increment(1);
        h.duration.record(seconds);
        let mut by_route = self
            .by_route
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let handles = by_route.entry(Arc::from(route)).or_default();
        if !handles
            .iter()
            .any(|x| x.method == h.method && x.status == h.status)
        {
            handles.push(h);
        }
    }
}

/// The `dcr_registrations_total` counter of each operation, taken from the recorder on its
/// first use (as [`RequestMetrics`]): a registration costs an atomic add instead of a registry
/// lookup.
#[derive(Debug, Default)]
pub(crate) struct OperationCounters {
    create: OnceLock<Counter>,
    update: OnceLock<Counter>,
    delete: OnceLock<Counter>,
}

impl OperationCounters {
    /// Counts one successful operation: `create`, `update` or `delete`.
    pub(crate) fn count(&self, operation: &'static str) {
        let cell = match operation {
            "create" => &self.create,
            "update" => &self.update,
            _ => &self.delete,
        };
        cell.get_or_init(|| metrics::counter!("dcr_registrations_total", "operation" => operation))
            .increment(1);
    }
}

/// `GET /healthz`: the process is up.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the store answers (503 when it does not). With a shared rate-limit backend,
/// its state is reported too; it fails readiness only when its failure mode is `deny`.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let (rate_limit, limits_ready) = rate_limit_readiness(&state.options.rate_limits).await;
    let mut body = match state.registrar.store().ping().await {
        Ok(()) => json!({ "status": "ok" }),
        Err(e) => {
            metrics::counter!("dcr_store_errors_total").increment(1);
            tracing::warn!(error = %e, "readiness check: store unreachable");
            json!({ "status": "unavailable", "store": "unreachable" })
        }
    };
    if !limits_ready {
        body["status"] = json!("unavailable");
    }
    if let Some(r) = rate_limit {
        body["rate_limit"] = r;
    }
    let status = if body["status"] == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// The shared rate-limit backend's state (probed now) and whether it leaves the instance ready.
#[cfg(feature = "redis")]
async fn rate_limit_readiness(limits: &crate::RateLimits) -> (Option<Value>, bool) {
    use crate::ratelimit::{BackendState, OnBackendError};
    let Some(backend) = &limits.backend else {
        return (None, true);
    };
    let state = backend.probe().await;
    let up = state == BackendState::Up;
    let report = json!({
        "backend": "redis",
        "state": if up { "up" } else { "down" },
        "on_backend_error": backend.on_error().as_str(),
    });
    (
        Some(report),
        up || backend.on_error() != OnBackendError::Deny,
    )
}

/// Without a shared backend, the limits never affect readiness.
#[cfg(not(feature = "redis"))]
async fn rate_limit_readiness(_: &crate::RateLimits) -> (Option<Value>, bool) {
    (None, true)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_series() {
        let m = RequestMetrics::default();
        for i in 0..1000 {
            let method = Method::from_bytes(format!("M{i:07}").as_bytes()).unwrap();
            m.record(&method, "/healthz", StatusCode::METHOD_NOT_ALLOWED, 0.0);
        }
        m.record(&Method::GET, "/healthz", StatusCode::OK, 0.0);
        m.record(
            &Method::PATCH,
            "/healthz",
            StatusCode::METHOD_NOT_ALLOWED,
            0.0,
        );
        let by_route = m.by_route.read().unwrap();
        let methods: Vec<&str> = by_route["/healthz"].iter().map(|h| h.method).collect();
        assert_eq!(methods, ["OTHER", "GET", "PATCH"]);
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "OTHER");
    }
}
