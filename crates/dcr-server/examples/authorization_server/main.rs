//! An OAuth 2.0 authorization server built on dcr: dcr's registration router (RFC 7591/7592,
//! discovery) plus a `client_credentials` token endpoint that authenticates every client
//! through the library ([`Authenticator`]) over the same store:
//! - clients registered over RFC 7591 (`client_secret_basic`, `client_secret_post`,
//!   `client_secret_jwt`, `private_key_jwt`; a public client (`none`) authenticates but may not
//!   use `client_credentials`: `400 unauthorized_client`);
//! - clients configured by the operator (`[[clients]]` in the TOML);
//! - Client ID Metadata Documents (`[cimd] enabled = true`) with `private_key_jwt`.
//!
//! The token endpoint answers RFC 6749 §5.1 (an opaque bearer token; this example keeps no
//! tokens) or §5.2 (`401 invalid_client` with `WWW-Authenticate: Basic`). Discovery gains
//! `token_endpoint` and `token_endpoint_auth_methods_supported`.
//!
//! ```sh
//! cargo run -p dcr-server --example authorization_server -- --config dcr.toml  # dcr's TOML
//! cargo run -p dcr-server --example authorization_server -- --self-test        # what CI runs
//! ```
//!
//! The self-test starts the server on `127.0.0.1:0` with a configured client and metadata
//! documents published over HTTPS on loopback (a CA made here), then gets tokens with the
//! `oauth2` crate (a client nobody here wrote) and with hand-signed assertions.

mod origin;
mod self_test;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use dcr_core::authn::{AuthMethod, Authenticator, AuthnError, RegistryLookup, UsageRecorder};
use dcr_server::config::Config;
use dcr_server::storage::OpenStore;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The methods the token endpoint accepts (all of the library's).
const AUTH_METHODS: [&str; 5] = [
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "none",
];

/// What the token endpoint needs.
#[derive(Clone)]
struct TokenEndpoint {
    authenticator: Authenticator,
    /// The accepted assertion audiences: the token endpoint URL and the issuer.
    audiences: Vec<String>,
}

/// A running authorization server.
pub struct Running {
    /// Its issuer (`http://127.0.0.1:PORT`).
    pub issuer: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Builds the server of `config` (its issuer must be the address of `listener`) and serves it.
pub async fn start(mut config: Config, listener: TcpListener) -> anyhow::Result<Running> {
    let token_endpoint = format!("{}/token", config.issuer.trim_end_matches('/'));
    config
        .discovery
        .insert("token_endpoint".into(), Value::from(token_endpoint.clone()));
    config.discovery.insert(
        "token_endpoint_auth_methods_supported".into(),
        json!(AUTH_METHODS),
    );
    // This server issues tokens for client_credentials: registration accepts that grant.
    let grants = &mut config.metadata.grant_types_supported;
    if !grants.iter().any(|g| g == "client_credentials") {
        grants.push("client_credentials".to_owned());
    }
    let store = OpenStore::open(&config).await?;
    let registrar = dcr_server::app::build_registrar(&config, &store)?;
    let resolver = dcr_server::cimd::client_resolver(&config, &store, &registrar)?;

    // Client authentication, as README "Using dcr's clients from your authorization server".
    let stores = store.authn_stores();
    let usage = UsageRecorder::new(
        store.store.clone(),
        stores.usage.clone(),
        Duration::from_secs(config.authn.usage_interval_seconds),
        100_000,
    );
    let lookup = RegistryLookup::new(store.store.clone(), resolver, Some(stores.usage.clone()))
        .configured(dcr_server::config_clients::configured_clients(&config)?);
    let authenticator = Authenticator::builder(Arc::new(lookup), stores.replay.clone())
        .fetcher(Arc::new(dcr_server::cimd::fetcher(&config)?))
        .settings(config.authn.settings())
        .usage(usage)
        .build();
    let endpoint = TokenEndpoint {
        authenticator,
        audiences: vec![token_endpoint, config.issuer.clone()],
    };

    let limits = dcr_server::app::rate_limits(&config)?;
    let app: Router = dcr_server::app::build_router(&config, registrar, limits).merge(
        Router::new()
            .route("/token", post(token))
            .with_state(endpoint),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("server stopped: {e}");
        }
    });
    Ok(Running {
        issuer: config.issuer,
        task,
    })
}

/// An RFC 6749 §5.2 error answer.
fn error(status: StatusCode, code: &str, description: &str) -> Response {
    let mut res = (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"error": code, "error_description": description})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"token\", charset=\"UTF-8\""),
        );
    }
    res
}

/// `POST /token`: `grant_type=client_credentials`, the client authenticated by the library.
async fn token(State(endpoint): State<TokenEndpoint>, headers: HeaderMap, body: Bytes) -> Response {
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(&body) {
        if params
            .insert(name.clone().into_owned(), value.into_owned())
            .is_some()
        {
            // RFC 6749 §3.2: parameters must not be repeated.
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the parameter {name} is repeated"),
            );
        }
    }
    let authorization = match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "the Authorization header is not visible ASCII",
            );
        }
    };
    let client = match endpoint
        .authenticator
        .authenticate(authorization, &params, &endpoint.audiences)
        .await
    {
        Ok(client) => client,
        Err(e @ AuthnError::Unavailable(_)) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                e.error_code(),
                "client authentication is unavailable; try again",
            );
        }
        Err(e) => return error(StatusCode::UNAUTHORIZED, e.error_code(), &e.to_string()),
    };
    match params.get("grant_type").map(String::as_str) {
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is missing",
            );
        }
        Some("client_credentials") => {}
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "this server issues tokens for grant_type client_credentials only",
            );
        }
    }
    if client.method == AuthMethod::None {
        // RFC 6749 §4.4: only confidential clients may use client_credentials.
        return error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "a public client (token_endpoint_auth_method none) may not use client_credentials",
        );
    }
    let grants = client.metadata.get("grant_types");
    let allowed = grants
        .and_then(Value::as_array)
        .is_some_and(|g| g.iter().any(|v| v == "client_credentials"));
    if !allowed {
        return error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "the client is not registered with grant_type client_credentials",
        );
    }
    let mut answer = json!({
        "access_token": dcr_core::token::generate_token().expose(),
        "token_type": "Bearer",
        "expires_in": 3600,
    });
    if let Some(scope) = params.get("scope") {
        answer["scope"] = Value::from(scope.as_str());
    }
    (
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        axum::Json(answer),
    )
        .into_response()
}

/// Serves dcr's TOML `config` (its `listen` and `issuer`) until interrupted.
async fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(config.as_deref())?;
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let running = start(config, listener).await?;
    eprintln!(
        "listening on http://{addr} (issuer {}, token endpoint {}/token)",
        running.issuer, running.issuer
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (Some("--self-test"), None) => self_test::run().await,
        (Some("--config"), Some(path)) => serve(Some(PathBuf::from(path))).await,
        (None, _) => serve(None).await,
        _ => anyhow::bail!("usage: authorization_server [--self-test | --config dcr.toml]"),
    }
}
