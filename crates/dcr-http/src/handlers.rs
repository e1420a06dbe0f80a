//! The four registration handlers: thin mappings from HTTP onto the registrar.

use axum::body::{Body, to_bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dcr_core::RegistrationError;
use dcr_core::audit::AuditEvent;
use dcr_core::context::RequestContext;
use dcr_core::registrar::ClientResponse;
use dcr_core::token::TokenHash;
use serde_json::{Map, Value};

use crate::AppState;
use crate::bearer::bearer_token;
use crate::body::read_json_object;
use crate::error::ApiError;
use crate::ratelimit::{Limited, client_ip, enforce};

/// Why a management request was refused before reaching the registrar.
enum Refused {
    Limited(Limited),
    Api(ApiError),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Limited(l) => l.into_response(),
            Refused::Api(e) => e.into_response(),
        }
    }
}

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
pub(crate) fn request_context(state: &AppState, parts: &Parts) -> RequestContext {
    let mut headers: Vec<(String, String)> = Vec::new();
    // Copied only when something configured can read them.
    if state.registrar.reads_request_headers() {
        for name in parts.headers.keys() {
            if HIDDEN_HEADERS.contains(name) {
                continue;
            }
            let mut joined = String::new();
            for (i, value) in parts.headers.get_all(name).iter().enumerate() {
                if i > 0 {
                    joined.push_str(", ");
                }
                joined.push_str(&String::from_utf8_lossy(value.as_bytes()));
            }
            headers.push((name.as_str().to_owned(), joined));
        }
    }
    RequestContext {
        method: parts.method.as_str().to_ascii_uppercase(),
        path: parts.uri.path().to_owned(),
        headers,
        client_addr: client_ip(parts, &state.options.trusted_proxies),
        token_label: None,
    }
}

fn json(status: StatusCode, body: &ClientResponse) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_json_bytes(),
    )
        .into_response()
}

/// Applies the registration limits: per client address, per initial access token, global.
async fn limit_registration(state: &AppState, parts: &Parts) -> Result<(), Limited> {
    let limits = &state.options.rate_limits;
    if limits.registration_per_ip.is_some()
        && let Some(ip) = client_ip(parts, &state.options.trusted_proxies)
    {
        enforce(
            limits.registration_per_ip.as_ref(),
            "registration_per_ip",
            &limits.address_keying.key(ip),
        )
        .await?;
    }
    if limits.registration_per_token.is_some()
        && let Ok(Some(token)) = bearer_token(&parts.headers, None)
    {
        // Keyed by the hash: the limiter never holds a token.
        let key: String = TokenHash::of(token)
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        enforce(
            limits.registration_per_token.as_ref(),
            "registration_per_token",
            &key,
        )
        .await?;
    }
    enforce(
        limits.registration_global.as_ref(),
        "registration_global",
        "",
    )
    .await
}

pub(crate) async fn register(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Err(limited) = limit_registration(&state, &parts).await {
        return limited.into_response();
    }
    match register_inner(&state, parts, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn register_inner(state: &AppState, parts: Parts, body: Body) -> Result<Response, ApiError> {
    // As node-oidc-provider: the body is checked before the initial access token.
    let ctx = request_context(state, &parts);
    let body = match state.body(&parts, body, "registration request").await {
        Ok(b) => b,
        Err(e) => {
            audit_denied("register", &ctx, None, &e);
            return Err(e);
        }
    };
    let token = match state.registrar.settings().initial_access_token {
        dcr_core::settings::InitialAccessTokenMode::Open => None,
        _ => match bearer_token(&parts.headers, parts.uri.query()) {
            Ok(t) => t,
            Err(e) => {
                let e = state.fail(e);
                audit_denied("register", &ctx, None, &e);
                return Err(e);
            }
        },
    };
    let response = state
        .registrar
        .register(ctx, token, body)
        .await
        .map_err(|e| state.fail(e))?;
    metrics::counter!("dcr_registrations_total", "operation" => "create").increment(1);
    Ok(json(StatusCode::CREATED, &response))
}

/// The client id of the path; one that is not valid UTF-8 once decoded is decoded lossily,
/// which yields an id no client has (ids are printable ASCII), so the token check refuses it.
fn client_id(path: Result<Path<String>, PathRejection>, parts: &Parts) -> String {
    match path {
        Ok(Path(id)) => id,
        Err(_) => {
            let raw = parts.uri.path().rsplit('/').next().unwrap_or_default();
            percent_encoding::percent_decode_str(raw)
                .decode_utf8_lossy()
                .into_owned()
        }
    }
}

/// Audits a request refused before the registrar saw it.
fn audit_denied(action: &'static str, ctx: &RequestContext, client_id: Option<&str>, e: &ApiError) {
    AuditEvent::new(action)
        .with_client_addr(ctx.client_addr)
        .with_client_id(client_id)
        .with_error(&e.error)
        .emit();
}

/// Checks the registration access token, then applies the management limit of the client.
///
/// Only a valid token spends the client's budget: a request refused for its token spends the
/// budget of its sender's address instead (`management_invalid_token_per_ip`), and is answered
/// 429 rather than 401 once that is exhausted. Token refusals are audited.
async fn authorize(
    state: &AppState,
    parts: &Parts,
    client_id: &str,
    action: &'static str,
) -> Result<dcr_core::registrar::AuthorizedClient, Refused> {
    let limits = &state.options.rate_limits;
    let result = match bearer_token(&parts.headers, parts.uri.query()) {
        Ok(token) => state.registrar.authorize(client_id, token).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(authorized) => {
            enforce(
                limits.management_per_client.as_ref(),
                "management_per_client",
                client_id,
            )
            .await
            .map_err(Refused::Limited)?;
            Ok(authorized)
        }
        Err(e) => {
            let refused_token = matches!(
                e,
                RegistrationError::InvalidToken(_) | RegistrationError::InvalidRequest(_)
            );
            if refused_token
                && limits.management_invalid_token_per_ip.is_some()
                && let Some(ip) = client_ip(parts, &state.options.trusted_proxies)
            {
                enforce(
                    limits.management_invalid_token_per_ip.as_ref(),
                    "management_invalid_token_per_ip",
                    &limits.address_keying.key(ip),
                )
                .await
                .map_err(Refused::Limited)?;
            }
            let e = state.fail(e);
            audit_denied(action, &request_context(state, parts), Some(client_id), &e);
            Err(Refused::Api(e))
        }
    }
}

pub(crate) async fn read(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let client_id = client_id(path, &parts);
    match authorize(&state, &parts, &client_id, "read").await {
        Ok(authorized) => json(StatusCode::OK, &state.registrar.read(authorized)),
        Err(r) => r.into_response(),
    }
}

pub(crate) async fn update(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    // As node-oidc-provider: the token is checked before the body.
    let client_id = client_id(path, &parts);
    let authorized = match authorize(&state, &parts, &client_id, "update").await {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let ctx = request_context(&state, &parts);
    let body = match state.body(&parts, body, "client update request").await {
        Ok(b) => b,
        Err(e) => {
            audit_denied("update", &ctx, Some(&client_id), &e);
            return e.into_response();
        }
    };
    match state.registrar.update(ctx, authorized, body).await {
        Ok(response) => {
            metrics::counter!("dcr_registrations_total", "operation" => "update").increment(1);
            json(StatusCode::OK, &response)
        }
        Err(e) => state.fail(e).into_response(),
    }
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let client_id = client_id(path, &parts);
    let authorized = match authorize(&state, &parts, &client_id, "delete").await {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let ctx = request_context(&state, &parts);
    match state.registrar.delete_for(&ctx, authorized).await {
        Ok(()) => {
            metrics::counter!("dcr_registrations_total", "operation" => "delete").increment(1);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => state.fail(e).into_response(),
    }
}
