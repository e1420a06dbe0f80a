//! The four registration handlers: thin mappings from HTTP onto the registrar.

use std::net::SocketAddr;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dcr_core::RegistrationError;
use dcr_core::context::RequestContext;
use dcr_core::registrar::ClientResponse;
use serde_json::{Map, Value};

use crate::AppState;
use crate::bearer::bearer_token;
use crate::body::read_json_object;
use crate::error::ApiError;

/// Headers policies never see.
const HIDDEN_HEADERS: &[header::HeaderName] = &[
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
];

impl AppState {
    fn fail(&self, error: RegistrationError) -> ApiError {
        ApiError::new(error, &self.registrar.settings().issuer)
    }

    async fn body(
        &self,
        parts: &Parts,
        body: Body,
        what: &str,
    ) -> Result<Map<String, Value>, ApiError> {
        let limit = self.options.body_limit;
        let bytes = to_bytes(body, limit).await.map_err(|_| {
            self.fail(RegistrationError::InvalidRequest(format!(
                "the {what} body could not be read or is larger than {limit} bytes"
            )))
        })?;
        read_json_object(&parts.headers, &bytes, what).map_err(|e| self.fail(e))
    }
}

/// What policies and factories see of the request.
pub(crate) fn request_context(parts: &Parts) -> RequestContext {
    let mut headers: Vec<(String, String)> = Vec::new();
    for name in parts.headers.keys() {
        if HIDDEN_HEADERS.contains(name) {
            continue;
        }
        let joined = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        headers.push((name.as_str().to_owned(), joined));
    }
    RequestContext {
        method: parts.method.as_str().to_ascii_uppercase(),
        path: parts.uri.path().to_owned(),
        headers,
        client_addr: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip()),
        token_label: None,
    }
}

fn json(status: StatusCode, body: ClientResponse) -> Response {
    (status, Json(body)).into_response()
}

pub(crate) async fn register(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    // As node-oidc-provider: the body is checked before the initial access token.
    let body = state.body(&parts, body, "registration request").await?;
    let token = match state.registrar.settings().initial_access_token {
        dcr_core::settings::InitialAccessTokenMode::Open => None,
        _ => bearer_token(&parts.headers, parts.uri.query()).map_err(|e| state.fail(e))?,
    };
    let response = state
        .registrar
        .register(request_context(&parts), token, body)
        .await
        .map_err(|e| state.fail(e))?;
    Ok(json(StatusCode::CREATED, response))
}

async fn authorize(
    state: &AppState,
    parts: &Parts,
    client_id: &str,
) -> Result<dcr_core::registrar::AuthorizedClient, ApiError> {
    let token = bearer_token(&parts.headers, parts.uri.query()).map_err(|e| state.fail(e))?;
    state
        .registrar
        .authorize(client_id, token)
        .await
        .map_err(|e| state.fail(e))
}

pub(crate) async fn read(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    let authorized = authorize(&state, &parts, &client_id).await?;
    Ok(json(StatusCode::OK, state.registrar.read(authorized)))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    // As node-oidc-provider: the token is checked before the body.
    let authorized = authorize(&state, &parts, &client_id).await?;
    let body = state.body(&parts, body, "client update request").await?;
    let response = state
        .registrar
        .update(request_context(&parts), authorized, body)
        .await
        .map_err(|e| state.fail(e))?;
    Ok(json(StatusCode::OK, response))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    let authorized = authorize(&state, &parts, &client_id).await?;
    state
        .registrar
        .delete(authorized)
        .await
        .map_err(|e| state.fail(e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
