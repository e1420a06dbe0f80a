//! Router-level tests: the OpenAPI document cannot drift from the routes, and no request,
//! however malformed, gets a 5xx.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode};
use dcr_core::Registrar;
use dcr_core::metadata::ServerMetadata;
use dcr_core::settings::RegistrarSettings;
use dcr_core::store::MemoryStore;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::*;

fn registrar() -> Registrar {
    Registrar::builder(
        Arc::new(MemoryStore::new()),
        ServerMetadata::default(),
        RegistrarSettings::new("http://dcr.test"),
    )
    .build()
    .unwrap()
}

fn doc() -> Value {
    serde_json::from_str(OPENAPI_JSON).unwrap()
}

/// `(path, METHOD)` of every operation in the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if method != "parameters" {
                out.insert((path.clone(), method.to_ascii_uppercase()));
            }
        }
    }
    out
}

fn statuses(doc: &Value, path: &str, method: &Method) -> Vec<u16> {
    doc["paths"][path][method.as_str().to_ascii_lowercase()]["responses"]
        .as_object()
        .map(|r| r.keys().filter_map(|k| k.parse().ok()).collect())
        .unwrap_or_default()
}

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[test]
fn the_document_lists_exactly_the_routes_the_router_is_built_from() {
    let served: BTreeSet<(String, String)> = endpoints(&HttpOptions::default(), true)
        .into_iter()
        .map(|e| (e.path, e.method.as_str().to_owned()))
        .collect();
    assert_eq!(documented(&doc()), served);
    // The router is built from that table and nothing else.
    let code_lines = include_str!("lib.rs")
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"));
    assert_eq!(
        code_lines
            .map(|l| l.matches(".route(").count())
            .sum::<usize>(),
        2,
        "a route added outside table()"
    );
}

#[tokio::test]
async fn the_router_serves_each_documented_operation_with_documented_statuses() {
    let doc = doc();
    let app = router(registrar(), HttpOptions::default());
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ];
    for (path, _) in documented(&doc) {
        let uri = path.replace("{client_id}", "no-such-client");
        for m in &methods {
            let listed = statuses(&doc, &path, m);
            let (status, _) = send(&app, m.clone(), &uri, None, None).await;
            if listed.is_empty() {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{m} {path} is served but not documented"
                );
            } else {
                assert!(
                    listed.contains(&status.as_u16()),
                    "{m} {path} answered {status}, documented {listed:?}"
                );
            }
        }
    }
    let (status, _) = send(&app, Method::GET, "/not-documented", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The success paths.
    let (status, reg) = send(
        &app,
        Method::POST,
        "/reg",
        None,
        Some(json!({"redirect_uris": ["https://a.example/cb"]})),
    )
    .await;
    assert!(statuses(&doc, "/reg", &Method::POST).contains(&status.as_u16()));
    assert_eq!(status, StatusCode::CREATED);
    let uri = format!("/reg/{}", reg["client_id"].as_str().unwrap());
    let path = "/reg/{client_id}";
    let rat = reg["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = send(&app, Method::GET, &uri, Some(&rat), None).await;
    assert!(statuses(&doc, path, &Method::GET).contains(&status.as_u16()) && status == 200);
    let (status, upd) = send(
        &app,
        Method::PUT,
        &uri,
        Some(&rat),
        Some(json!({"client_id": reg["client_id"], "redirect_uris": ["https://a.example/cb"]})),
    )
    .await;
    assert!(statuses(&doc, path, &Method::PUT).contains(&status.as_u16()) && status == 200);
    let rat = upd["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = send(&app, Method::DELETE, &uri, Some(&rat), None).await;
    assert!(statuses(&doc, path, &Method::DELETE).contains(&status.as_u16()) && status == 204);
    let (status, _) = send(
        &app,
        Method::POST,
        "/reg",
        None,
        Some(json!({"redirect_uris": "nope"})),
    )
    .await;
    assert!(statuses(&doc, "/reg", &Method::POST).contains(&status.as_u16()) && status == 400);
}

#[tokio::test]
async fn over_the_limit_is_a_documented_429() {
    let limiter = GovernorLimiter::new(Rate {
        burst: 1,
        per_second: 0.01,
    })
    .unwrap();
    let options = HttpOptions {
        rate_limits: RateLimits {
            registration_global: Some(crate::Limit::local(Arc::new(limiter))),
            ..Default::default()
        },
        ..Default::default()
    };
    let app = router(registrar(), options);
    let body = json!({"redirect_uris": ["https://a.example/cb"]});
    assert_eq!(
        send(&app, Method::POST, "/reg", None, Some(body.clone()))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, err) = send(&app, Method::POST, "/reg", None, Some(body)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(err["error"], "rate_limited");
    assert!(statuses(&doc(), "/reg", &Method::POST).contains(&429));
}

#[test]
fn the_served_document_follows_the_registration_path() {
    let d = openapi_document("/oauth/register").unwrap();
    assert!(d["paths"]["/oauth/register"]["post"].is_object());
    assert!(d["paths"]["/oauth/register/{client_id}"]["get"].is_object());
    assert!(d["paths"]["/reg"].is_null());
}

fn arbitrary_request() -> impl proptest::strategy::Strategy<
    Value = (
        usize,
        usize,
        Vec<u8>,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
> {
    use proptest::prelude::*;
    (
        0usize..5,
        0usize..6,
        proptest::collection::vec(any::<u8>(), 0..512),
        proptest::option::of("\\PC{0,40}"),
        proptest::option::of(prop_oneof![
            "\\PC{0,60}",
            Just("application/json".to_owned())
        ]),
        proptest::option::of("[ -~]{0,40}"),
    )
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(300))]
    #[test]
    fn no_request_gets_a_server_error((m, p, body, auth, ct, query) in arbitrary_request()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let app = router(registrar(), HttpOptions::default());
        let method = [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH][m].clone();
        let path = ["/reg", "/reg/x", "/reg/%FF%00", "/healthz", "/.well-known/openid-configuration", "/reg/a/b"][p];
        let uri = match &query {
            Some(q) => format!("{path}?{}", q.replace(['#', ' '], "")),
            None => path.to_owned(),
        };
        let mut req = Request::builder().method(method).uri(&uri);
        if let Some(a) = auth.as_deref().and_then(|a| axum::http::HeaderValue::from_str(a).ok()) {
            req = req.header("authorization", a);
        }
        if let Some(c) = ct.as_deref().and_then(|c| axum::http::HeaderValue::from_str(c).ok()) {
            req = req.header("content-type", c);
        }
        if let Ok(req) = req.body(Body::from(body)) {
            let status = rt.block_on(app.oneshot(req)).unwrap().status();
            proptest::prop_assert!(status.as_u16() < 500, "{} {uri}: {status}", "request");
        }
    }
}
