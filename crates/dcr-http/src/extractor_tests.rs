//! The extractors the handlers take: what each accepts, and that each refusal is the RFC
//! error the handlers answered before they took extractors.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use dcr_core::Registrar;
use dcr_core::context::RequestContext;
use dcr_core::factory::Factory;
use dcr_core::metadata::ServerMetadata;
use dcr_core::settings::RegistrarSettings;
use dcr_core::store::MemoryStore;
use serde_json::Value;

use crate::bearer::BearerToken;
use crate::body::{ClientUpdate, JsonObject, Registration};
use crate::context::Context;
use crate::handlers::{Authorized, RegistrationAllowed};
use crate::{AppState, HttpOptions, Limit, Rate};

const ISSUER: &str = "http://dcr.test";

fn state_with(registrar: Registrar, options: HttpOptions) -> AppState {
    AppState {
        registrar,
        options: Arc::new(options),
        operations: Arc::default(),
    }
}

fn state() -> AppState {
    let registrar = Registrar::builder(
        Arc::new(MemoryStore::new()),
        ServerMetadata::default(),
        RegistrarSettings::new(ISSUER),
    )
    .build()
    .unwrap();
    state_with(registrar, HttpOptions::default())
}

fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
    request(method, uri, headers, "").into_parts().0
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Request {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::from(body.to_owned())).unwrap()
}

/// Asserts that `response` is the refusal `status` with the error `code`; returns its
/// `error_description` and `WWW-Authenticate` challenge.
async fn refused(
    response: impl IntoResponse,
    status: StatusCode,
    code: &str,
) -> (String, Option<String>) {
    let response = response.into_response();
    assert_eq!(response.status(), status);
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = to_bytes(response.into_body(), 1 << 16).await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_eq!(body["error"], code, "{body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    (description.to_owned(), challenge)
}

#[tokio::test]
async fn bearer_token_accepts_one_bearer_header_or_none() {
    let state = state();
    let mut p = parts("GET", "/reg/c", &[("authorization", "Bearer abc")]);
    let bearer = BearerToken::from_request_parts(&mut p, &state)
        .await
        .unwrap();
    assert_eq!(bearer.token(), Some("abc"));
    let mut p = parts("GET", "/reg/c", &[]);
    let bearer = BearerToken::from_request_parts(&mut p, &state)
        .await
        .unwrap();
    assert_eq!(bearer.token(), None);
}

#[tokio::test]
async fn bearer_token_refusals_are_rfc_6750_errors() {
    let state = state();
    /// URI, headers, then the refusal: status, error code, whether a challenge is sent.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], StatusCode, &'a str, bool);
    let cases: &[Case] = &[
        // Token only in the query string, or another scheme: 401 with an error challenge.
        (
            "/reg/c?access_token=x",
            &[],
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            true,
        ),
        (
            "/reg/c",
            &[("authorization", "Basic dXNlcjpwYXNz")],
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            true,
        ),
        // Malformed or ambiguous: 400 without a challenge.
        (
            "/reg/c",
            &[("authorization", "Bearer a b")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
            false,
        ),
        (
            "/reg/c?access_token=x",
            &[("authorization", "Bearer a")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
            false,
        ),
        (
            "/reg/c",
            &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
            false,
        ),
    ];
    for (uri, headers, status, code, challenged) in cases {
        let mut p = parts("GET", uri, headers);
        let e = BearerToken::from_request_parts(&mut p, &state)
            .await
            .unwrap_err();
        let (_, challenge) = refused(e, *status, code).await;
        assert_eq!(challenge.is_some(), *challenged, "{uri} {headers:?}");
        if let Some(challenge) = challenge {
            assert!(
                challenge.starts_with(&format!(
                    "Bearer realm=\"{ISSUER}\", error=\"invalid_token\""
                )),
                "{challenge}"
            );
        }
    }
}

#[tokio::test]
async fn json_object_reads_an_object_and_names_the_request_in_refusals() {
    let state = state();
    let json = [("content-type", "application/json")];
    let req = request("POST", "/reg", &json, r#"{"client_name":"x"}"#);
    let JsonObject(map, _) = JsonObject::<Registration>::from_request(req, &state)
        .await
        .ok()
        .unwrap();
    assert_eq!(map["client_name"], "x");
    let req = request("POST", "/reg", &[], "");
    assert!(
        JsonObject::<Registration>::from_request(req, &state)
            .await
            .is_ok(),
        "empty is {{}}"
    );

    for (headers, body, code, says) in [
        (
            &[("content-type", "text/plain")][..],
            "{}",
            "invalid_request",
            "came as \"text/plain\"",
        ),
        (
            &json[..],
            "[]",
            "invalid_request",
            "registration request body must be a JSON object",
        ),
        (
            &json[..],
            "{",
            "invalid_request",
            "registration request body is not valid JSON",
        ),
        (
            &[][..],
            "{}",
            "invalid_request",
            "registration request must be sent with Content-Type",
        ),
    ] {
        let req = request("POST", "/reg", headers, body);
        let Err(e) = JsonObject::<Registration>::from_request(req, &state).await else {
            panic!("{headers:?} {body} accepted");
        };
        let (description, challenge) = refused(e, StatusCode::BAD_REQUEST, code).await;
        assert!(description.contains(says), "{description}");
        assert!(challenge.is_none());
    }

    let deep = format!("{{\"tenant\":{}1{}}}", "[".repeat(40), "]".repeat(40));
    let req = request("PUT", "/reg/c", &json, &deep);
    let Err(e) = JsonObject::<ClientUpdate>::from_request(req, &state).await else {
        panic!("deep body accepted");
    };
    refused(e, StatusCode::BAD_REQUEST, "invalid_client_metadata").await;

    let limit = state.options.body_limit;
    let big = format!("{{\"client_name\":\"{}\"}}", "x".repeat(limit));
    let req = request("PUT", "/reg/c", &json, &big);
    let Err(e) = JsonObject::<ClientUpdate>::from_request(req, &state).await else {
        panic!("oversized body accepted");
    };
    let (description, _) = refused(e, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_eq!(
        description,
        format!("the client update request body could not be read or is larger than {limit} bytes")
    );
}

#[tokio::test]
async fn context_copies_headers_only_when_something_reads_them() {
    let headers = [
        ("x-tenant", "a"),
        ("x-tenant", "b"),
        ("authorization", "Bearer secret"),
        ("cookie", "s=1"),
    ];
    let mut p = parts("post", "/reg?x=1", &headers);
    let Context(ctx) = Context::from_request_parts(&mut p, &state()).await.unwrap();
    assert_eq!((ctx.method.as_str(), ctx.path.as_str()), ("POST", "/reg"));
    assert!(
        ctx.headers.is_empty(),
        "nothing reads headers: {:?}",
        ctx.headers
    );
    assert_eq!(ctx.client_addr, None, "no connection info");

    let reading = Registrar::builder(
        Arc::new(MemoryStore::new()),
        ServerMetadata::default(),
        RegistrarSettings::new(ISSUER),
    )
    .id_factory(Factory::sync(|ctx: &RequestContext| {
        ctx.header("x-tenant").unwrap_or("none").to_owned()
    }))
    .build()
    .unwrap();
    let state = state_with(reading, HttpOptions::default());
    let mut p = parts("POST", "/reg", &headers);
    let Context(ctx) = Context::from_request_parts(&mut p, &state).await.unwrap();
    assert_eq!(ctx.header("x-tenant"), Some("a, b"));
    assert_eq!(ctx.header("authorization"), None);
    assert_eq!(ctx.header("cookie"), None);
}

#[tokio::test]
async fn authorized_needs_the_token_of_the_client_of_the_path() {
    let state = state();
    let registered = state
        .registrar
        .register(
            RequestContext::default(),
            None,
            dcr_core::seed::client_metadata(1),
        )
        .await
        .unwrap();
    let id = registered.metadata.client_id().to_owned();
    let token = registered.registration_access_token.unwrap();
    let uri = format!("/reg/{id}");
    let auth = format!("Bearer {}", token.expose());

    let mut p = parts("GET", &uri, &[("authorization", &auth)]);
    assert!(Authorized::from_request_parts(&mut p, &state).await.is_ok());

    // No token: the bare challenge. A token of no client: invalid_token with its description.
    let mut p = parts("GET", &uri, &[]);
    let Err(e) = Authorized::from_request_parts(&mut p, &state).await else {
        panic!("no token accepted");
    };
    let (_, challenge) = refused(e, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(
        challenge.as_deref(),
        Some("Bearer realm=\"http://dcr.test\"")
    );
    for (uri, headers) in [
        (
            "/reg/other".to_owned(),
            vec![("authorization", auth.as_str())],
        ),
        (uri.clone(), vec![("authorization", "Bearer wrong")]),
    ] {
        let mut p = parts("PUT", &uri, &headers);
        let Err(e) = Authorized::from_request_parts(&mut p, &state).await else {
            panic!("{uri} {headers:?} accepted");
        };
        let (_, challenge) = refused(e, StatusCode::UNAUTHORIZED, "invalid_token").await;
        assert!(challenge.unwrap().contains("error=\"invalid_token\""));
    }
    // A malformed header is the 400 of RFC 6750 §3.1, before any lookup.
    let mut p = parts("DELETE", &uri, &[("authorization", "Bearer a b")]);
    let Err(e) = Authorized::from_request_parts(&mut p, &state).await else {
        panic!("malformed header accepted");
    };
    refused(e, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn registration_allowed_is_429_once_the_limit_is_spent() {
    let mut options = HttpOptions::default();
    options.rate_limits.registration_global = Limit::in_memory(Rate {
        burst: 1,
        per_second: 0.001,
    });
    let base = state();
    let state = state_with(base.registrar.clone(), options);
    let mut p = parts("POST", "/reg", &[]);
    assert!(
        RegistrationAllowed::from_request_parts(&mut p, &state)
            .await
            .is_ok()
    );
    let Err(limited) = RegistrationAllowed::from_request_parts(&mut p, &state).await else {
        panic!("second registration allowed");
    };
    assert_eq!(
        limited.into_response().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}
