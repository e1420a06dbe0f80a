//! Interoperability with the `openidconnect` crate (a client nobody here wrote): it discovers
//! dcr, registers with `CoreClientRegistrationRequest::register_async`, and the client id,
//! secret and metadata it gets back fit its own types.

use std::net::SocketAddr;

use openidconnect::core::{
    CoreApplicationType, CoreClient, CoreClientAuthMethod, CoreClientRegistrationRequest,
    CoreClientRegistrationResponse, CoreGrantType, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreResponseType,
};
use openidconnect::registration::{ClientRegistrationError, EmptyAdditionalClientMetadata};
use openidconnect::{
    AccessToken, ClientContactEmail, ClientName, HttpRequest, HttpResponse, IssuerUrl,
    LocalizedClaim, RedirectUrl, ResponseTypes,
};
use reqwest::StatusCode;

use crate::helpers::{TestApp, spawn_as_issuer};

const IAT: &str = "interop-static-initial-access-token";

/// `openidconnect`'s async HTTP client, over the workspace's reqwest (no redirects followed).
async fn http_client(request: HttpRequest) -> Result<HttpResponse, reqwest::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut out = HttpResponse::new(Vec::new());
    *out.status_mut() = response.status();
    *out.headers_mut() = response.headers().clone();
    *out.body_mut() = response.bytes().await?.to_vec();
    Ok(out)
}

/// The host authorization server's JWKS, which `discover_async` fetches (dcr serves none).
async fn serve_empty_jwks() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("bound");
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(|| async { axum::Json(serde_json::json!({ "keys": [] })) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// dcr as the registration part of an OpenID provider whose other endpoints live elsewhere.
async fn spawn_provider(registration: &str) -> TestApp {
    let jwks = serve_empty_jwks().await;
    spawn_as_issuer(&format!(
        "[registration]\n{registration}\n\
         [discovery]\n\
         authorization_endpoint = \"https://as.example.test/authorize\"\n\
         token_endpoint = \"https://as.example.test/token\"\n\
         jwks_uri = \"http://{jwks}/jwks.json\"\n"
    ))
    .await
}

fn request() -> CoreClientRegistrationRequest {
    CoreClientRegistrationRequest::new(
        vec![RedirectUrl::new("https://rp.example.com/cb".into()).expect("url")],
        EmptyAdditionalClientMetadata::default(),
    )
    .set_client_name(Some(LocalizedClaim::from(ClientName::new(
        "Interop RP".into(),
    ))))
    .set_application_type(Some(CoreApplicationType::Web))
    .set_response_types(Some(vec![ResponseTypes::new(vec![CoreResponseType::Code])]))
    .set_grant_types(Some(vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::RefreshToken,
    ]))
    .set_token_endpoint_auth_method(Some(CoreClientAuthMethod::ClientSecretBasic))
    .set_id_token_signed_response_alg(Some(CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256))
    .set_contacts(Some(vec![ClientContactEmail::new(
        "ops@rp.example.com".into(),
    )]))
}

/// Discovers `app`, registers `request()` (with `token`) and checks what comes back.
async fn discover_and_register(
    app: &TestApp,
    token: Option<&str>,
) -> (CoreProviderMetadata, CoreClientRegistrationResponse) {
    let issuer = IssuerUrl::new(app.issuer.clone()).expect("issuer");
    let provider = CoreProviderMetadata::discover_async(issuer.clone(), &http_client)
        .await
        .expect("openidconnect discovers dcr");
    assert_eq!(provider.issuer(), &issuer);
    let endpoint = provider
        .registration_endpoint()
        .expect("discovery names the registration endpoint")
        .clone();
    assert_eq!(endpoint.as_str(), format!("{}/reg", app.issuer));

    let registered = request()
        .set_initial_access_token(token.map(|t| AccessToken::new(t.into())))
        .register_async(&endpoint, &http_client)
        .await
        .expect("openidconnect registers with dcr");

    assert!(!registered.client_id().as_str().is_empty());
    let secret = registered
        .client_secret()
        .expect("a secret for client_secret_basic");
    assert_eq!(secret.secret().len(), 86);
    assert!(registered.client_id_issued_at().is_some());
    // dcr sends `client_secret_expires_at: 0` ("never", RFC 7591 §3.2.1); this crate reads it
    // as the Unix epoch.
    assert_eq!(
        registered.client_secret_expires_at().map(|t| t.timestamp()),
        Some(0)
    );
    assert!(
        registered
            .registration_access_token()
            .is_some_and(|t| !t.secret().is_empty())
    );
    let uri = registered
        .registration_client_uri()
        .expect("registration_client_uri");
    assert_eq!(
        uri.as_str(),
        format!("{}/reg/{}", app.issuer, registered.client_id().as_str())
    );
    // The metadata round-trips into the crate's types.
    assert_eq!(
        registered.redirect_uris(),
        request().redirect_uris(),
        "redirect_uris"
    );
    assert_eq!(
        registered
            .client_name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str()),
        Some("Interop RP")
    );
    assert_eq!(
        registered.application_type(),
        Some(&CoreApplicationType::Web)
    );
    assert_eq!(
        registered.response_types(),
        Some(&vec![ResponseTypes::new(vec![CoreResponseType::Code])])
    );
    assert_eq!(
        registered.grant_types(),
        Some(&vec![
            CoreGrantType::AuthorizationCode,
            CoreGrantType::RefreshToken
        ])
    );
    assert_eq!(
        registered.token_endpoint_auth_method(),
        Some(&CoreClientAuthMethod::ClientSecretBasic)
    );
    assert_eq!(
        registered.id_token_signed_response_alg(),
        Some(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256)
    );
    assert_eq!(
        registered
            .contacts()
            .map(|c| c.iter().map(|e| e.as_str()).collect::<Vec<_>>()),
        Some(vec!["ops@rp.example.com"])
    );
    (provider, registered)
}

/// RFC 7592 read through the registration client URI (the crate has no helper for it): the
/// body parses as the same registration response.
async fn read_back(app: &TestApp, registered: &CoreClientRegistrationResponse) {
    let uri = registered.registration_client_uri().expect("uri");
    let token = registered.registration_access_token().expect("token");
    let res = app
        .http
        .get(uri.as_str())
        .bearer_auth(token.secret())
        .send()
        .await
        .expect("read");
    assert_eq!(res.status(), StatusCode::OK);
    let read: CoreClientRegistrationResponse =
        res.json().await.expect("parses as the crate's type");
    assert_eq!(read.client_id(), registered.client_id());
    assert_eq!(
        read.client_secret().map(|s| s.secret()),
        registered.client_secret().map(|s| s.secret())
    );
    assert_eq!(read.redirect_uris(), registered.redirect_uris());
    assert_eq!(
        read.token_endpoint_auth_method(),
        registered.token_endpoint_auth_method()
    );
}

#[tokio::test]
async fn openidconnect_discovers_and_registers_openly() {
    let app = spawn_provider("").await;
    let (provider, registered) = discover_and_register(&app, None).await;
    read_back(&app, &registered).await;

    // The credentials make a working client of the crate's own.
    let client = CoreClient::from_provider_metadata(
        provider,
        registered.client_id().clone(),
        registered.client_secret().cloned(),
    )
    .set_redirect_uri(registered.redirect_uris()[0].clone());
    let (url, _, _) = client
        .authorize_url(
            openidconnect::AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            openidconnect::CsrfToken::new_random,
            openidconnect::Nonce::new_random,
        )
        .url();
    assert!(
        url.as_str()
            .starts_with("https://as.example.test/authorize?")
    );
    assert!(
        url.query_pairs()
            .any(|(k, v)| k == "client_id" && v == registered.client_id().as_str())
    );
}

#[tokio::test]
async fn openidconnect_registers_with_an_initial_access_token() {
    let app = spawn_provider(&format!("initial_access_token = \"{IAT}\"")).await;
    let (_, registered) = discover_and_register(&app, Some(IAT)).await;
    read_back(&app, &registered).await;

    // Without the token (or with a wrong one) the crate reports dcr's 401.
    let endpoint = openidconnect::RegistrationUrl::new(format!("{}/reg", app.issuer)).expect("url");
    for token in [None, Some("not-the-initial-access-token")] {
        let err = request()
            .set_initial_access_token(token.map(|t| AccessToken::new(t.into())))
            .register_async(&endpoint, &http_client)
            .await
            .expect_err("refused");
        match err {
            ClientRegistrationError::Response(status, _, _) => {
                assert_eq!(status, StatusCode::UNAUTHORIZED)
            }
            other => panic!("unexpected error: {other:?}"),
        }
    }
}

#[tokio::test]
async fn openidconnect_reads_registration_errors() {
    let app = spawn_provider("").await;
    let endpoint = openidconnect::RegistrationUrl::new(format!("{}/reg", app.issuer)).expect("url");
    // `token` is not a supported response type: dcr refuses, and the crate parses the RFC 7591 error.
    let err = request()
        .set_response_types(Some(vec![ResponseTypes::new(vec![
            CoreResponseType::Token,
        ])]))
        .register_async(&endpoint, &http_client)
        .await
        .expect_err("refused");
    match err {
        ClientRegistrationError::ServerResponse(e) => {
            assert_eq!(
                e.error(),
                &openidconnect::core::CoreRegisterErrorResponseType::InvalidClientMetadata
            );
            assert!(e.error_description().is_some_and(|d| !d.is_empty()));
        }
        other => panic!("unexpected error: {other:?}"),
    }
}
