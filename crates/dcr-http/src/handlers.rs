//! The four registration handlers: thin mappings from HTTP onto the registrar.
//!
//! What they take is read by extractors, in the order the checks are made: for registration
//! (RFC 7591 §3) the rate limits ([`RegistrationAllowed`]), then the [`Context`], the body
//! ([`JsonObject`]), then the initial access token ([`BearerToken`]); for read, update and
//! delete (RFC 7592 §2) the registration access token and the client's limit
//! ([`Authorized`]), then the context and the body. Every refusal other than a rate limit is
//! audited (`dcr_core::audit`, where it is also counted).

use std::net::IpAddr;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dcr_core::RegistrationError;
use dcr_core::audit::AuditEvent;
use dcr_core::registrar::{AuthorizedClient, ClientResponse};
use dcr_core::settings::InitialAccessTokenMode;
use dcr_core::token::TokenHash;

use crate::AppState;
use crate::bearer::{BearerToken, bearer_token};
use crate::body::{ClientUpdate, JsonObject, Registration};
use crate::context::Context;
use crate::error::ApiError;
use crate::ratelimit::{Limited, client_ip, enforce};

impl AppState {
    /// `error` on its way to the wire, with this issuer as the challenge realm.
    pub(crate) fn fail(&self, error: RegistrationError) -> ApiError {
        ApiError::new(error, &self.registrar.settings().issuer)
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

/// Audits a request refused before the registrar saw it.
fn audit_denied(
    action: &'static str,
    client_addr: Option<IpAddr>,
    client_id: Option<&str>,
    e: &ApiError,
) {
    AuditEvent::new(action)
        .with_client_addr(client_addr)
        .with_client_id(client_id)
        .with_error(&e.error)
        .emit();
}

/// A registration request within the registration limits: per client address, per initial
/// access token (keyed by its hash: the limiter never holds a token), global. Refused with
/// 429 before the body is read.
pub(crate) struct RegistrationAllowed;

impl FromRequestParts<AppState> for RegistrationAllowed {
    type Rejection = Limited;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Limited> {
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
            enforce(
                limits.registration_per_token.as_ref(),
                "registration_per_token",
                &TokenHash::of(token).to_hex(),
            )
            .await?;
        }
        enforce(
            limits.registration_global.as_ref(),
            "registration_global",
            "",
        )
        .await?;
        Ok(Self)
    }
}

pub(crate) async fn register(
    State(state): State<AppState>,
    _: RegistrationAllowed,
    Context(ctx): Context,
    bearer: Result<BearerToken, ApiError>,
    body: Result<JsonObject<Registration>, ApiError>,
) -> Result<Response, ApiError> {
    // As node-oidc-provider: the body is checked before the initial access token.
    let JsonObject(body, _) =
        body.inspect_err(|e| audit_denied("register", ctx.client_addr, None, e))?;
    let bearer = match state.registrar.settings().initial_access_token {
        InitialAccessTokenMode::Open => None,
        _ => Some(bearer.inspect_err(|e| audit_denied("register", ctx.client_addr, None, e))?),
    };
    let token = bearer.as_ref().and_then(BearerToken::token);
    let response = state
        .registrar
        .register(ctx, token, body)
        .await
        .map_err(|e| state.fail(e))?;
    state.operations.count("create");
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

/// Why a management request was refused before reaching the registrar.
pub(crate) enum Refused {
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

/// A management request (RFC 7592 §2) whose registration access token is the one of the
/// client of its path, within that client's management limit.
///
/// The token is checked first, then the client's limit: only a valid token spends the
/// client's budget. A request refused for its token spends the budget of its sender's address
/// instead (`management_invalid_token_per_ip`), and is answered 429 rather than 401 once that
/// is exhausted. Token refusals are audited, as the action of the method (GET and HEAD read,
/// PUT updates, DELETE deletes).
pub(crate) struct Authorized {
    client_id: String,
    client: AuthorizedClient,
}

impl FromRequestParts<AppState> for Authorized {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refused> {
        let client_id = client_id(Path::from_request_parts(parts, state).await, parts);
        let limits = &state.options.rate_limits;
        let result = match BearerToken::from_request_parts(parts, state).await {
            Ok(bearer) => state.registrar.authorize(&client_id, bearer.token()).await,
            Err(e) => Err(e.error),
        };
        match result {
            Ok(client) => {
                enforce(
                    limits.management_per_client.as_ref(),
                    "management_per_client",
                    &client_id,
                )
                .await
                .map_err(Refused::Limited)?;
                Ok(Self { client_id, client })
            }
            Err(e) => {
                let refused_token = matches!(
                    e,
                    RegistrationError::InvalidToken(_) | RegistrationError::InvalidRequest(_)
                );
                let client_addr = client_ip(parts, &state.options.trusted_proxies);
                if refused_token
                    && limits.management_invalid_token_per_ip.is_some()
                    && let Some(ip) = client_addr
                {
                    enforce(
                        limits.management_invalid_token_per_ip.as_ref(),
                        "management_invalid_token_per_ip",
                        &limits.address_keying.key(ip),
                    )
                    .await
                    .map_err(Refused::Limited)?;
                }
                let action = match parts.method {
                    Method::PUT => "update",
                    Method::DELETE => "delete",
                    _ => "read",
                };
                let e = state.fail(e);
                audit_denied(action, client_addr, Some(&client_id), &e);
                Err(Refused::Api(e))
            }
        }
    }
}

pub(crate) async fn read(State(state): State<AppState>, authorized: Authorized) -> Response {
    json(StatusCode::OK, &state.registrar.read(authorized.client))
}

pub(crate) async fn update(
    State(state): State<AppState>,
    // As node-oidc-provider: the token is checked before the body.
    authorized: Authorized,
    Context(ctx): Context,
    body: Result<JsonObject<ClientUpdate>, ApiError>,
) -> Result<Response, ApiError> {
    let JsonObject(body, _) = body.inspect_err(|e| {
        audit_denied("update", ctx.client_addr, Some(&authorized.client_id), e);
    })?;
    let response = state
        .registrar
        .update(ctx, authorized.client, body)
        .await
        .map_err(|e| state.fail(e))?;
    state.operations.count("update");
    Ok(json(StatusCode::OK, &response))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    authorized: Authorized,
    Context(ctx): Context,
) -> Result<StatusCode, ApiError> {
    state
        .registrar
        .delete_for(&ctx, authorized.client)
        .await
        .map_err(|e| state.fail(e))?;
    state.operations.count("delete");
    Ok(StatusCode::NO_CONTENT)
}
