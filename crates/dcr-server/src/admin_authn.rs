//! Client authentication and resolution for host authorization servers in any language, on
//! the admin listener (`Authorization: Bearer <admin token>` on every request):
//!
//! - `POST /clients/authenticate` with `{"authorization": <the token request's Authorization
//!   header value or null>, "params": {<its form parameters>}, "audiences": [...]}` → 200
//!   `{"client_id", "source", "method", "metadata"}` or 401 `invalid_client` (the description
//!   says what is wrong, never echoing a secret or assertion); 400 for a body that is not
//!   that JSON; 503 when the store fails. Without `audiences`, the issuer and the discovery
//!   `token_endpoint` (if configured) are accepted.
//! - `GET /clients/{client_id}` → 200 `{"client_id", "source", "metadata", "last_used_at"}`,
//!   404 `invalid_client` (a pruned id says the registration expired), 503.
//!
//! Every success records the client as used (at most one write per client per
//! `[authn] usage_interval_seconds`), so that pruning never removes a client in use.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dcr_core::authn::{
    AssertionReplayStore, AuthMethod, Authenticator, AuthnError, ClientUsageStore,
    MemoryReplayStore, MemoryUsageStore, RegistryLookup, UsageRecorder,
};
use dcr_core::clock::{Clock as _, SystemClock};
use dcr_core::metadata::ClientMetadata;
use dcr_core::resolve::{ClientResolver, ClientSource};
use dcr_core::token::TokenHash;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Config;
use crate::storage::OpenStore;

/// Where client authentication keeps its records (assertion `jti`s, usage, tombstones).
#[derive(Clone, Debug)]
pub struct AuthnStores {
    /// Assertion `jti` replay records.
    pub replay: Arc<dyn AssertionReplayStore>,
    /// `last_used_at` and tombstones.
    pub usage: Arc<dyn ClientUsageStore>,
}

impl AuthnStores {
    /// Both records in one store.
    pub fn of<S: AssertionReplayStore + ClientUsageStore>(store: Arc<S>) -> Self {
        Self {
            replay: store.clone(),
            usage: store,
        }
    }
}

impl Default for AuthnStores {
    /// In memory.
    fn default() -> Self {
        Self {
            replay: Arc::new(MemoryReplayStore::new()),
            usage: Arc::new(MemoryUsageStore::new()),
        }
    }
}

/// Client authentication and resolution as the server runs them.
#[derive(Clone, Debug)]
pub struct HostAuthn {
    /// Authenticates token requests.
    pub authenticator: Authenticator,
    /// Resolves client ids (registered, metadata documents, configured).
    pub lookup: RegistryLookup,
    /// Default audiences: the issuer and the discovery `token_endpoint`.
    pub audiences: Vec<String>,
}

impl HostAuthn {
    /// Builds authentication over the server's store, resolver and `[[clients]]`.
    pub fn build(
        config: &Config,
        store: &OpenStore,
        resolver: &ClientResolver,
    ) -> anyhow::Result<Self> {
        let stores = store.authn_stores();
        let recorder = UsageRecorder::new(
            store.store.clone(),
            stores.usage.clone(),
            Duration::from_secs(config.authn.usage_interval_seconds),
            100_000,
        );
        let lookup = RegistryLookup::new(
            store.store.clone(),
            resolver.clone(),
            Some(stores.usage.clone()),
        )
        .configured(crate::config_clients::configured_clients(config)?)
        .usage_recorder(recorder.clone());
        let authenticator = Authenticator::builder(Arc::new(lookup.clone()), stores.replay.clone())
            .fetcher(Arc::new(crate::cimd::fetcher(config)?))
            .settings(config.authn.settings())
            .usage(recorder)
            .build();
        let mut audiences = vec![config.issuer.clone()];
        if let Some(Value::String(token)) = config.discovery.get("token_endpoint") {
            audiences.push(token.clone());
        }
        Ok(Self {
            authenticator,
            lookup,
            audiences,
        })
    }
}

/// Remembers pruned or deleted client ids for `[authn] tombstone_seconds` (id only), so that
/// resolution and authentication say "this registration expired; register again".
pub async fn record_removed(config: &Config, store: &OpenStore, pruned: &[(String, i64)]) {
    let ttl = i64::try_from(config.authn.tombstone_seconds).unwrap_or(i64::MAX);
    if ttl == 0 {
        return;
    }
    let until = SystemClock.now().saturating_add(ttl);
    let usage = store.authn_stores().usage;
    for (client_id, _) in pruned {
        if let Err(e) = usage.add_tombstone(client_id, until).await {
            tracing::warn!(client_id = %client_id, error = %e, "tombstone of a removed client could not be written");
        }
    }
}

/// Adds tombstones for clients deleted over RFC 7592 (a `DELETE` on a registration client
/// URI answered 204) to the public `router`.
pub fn tombstone_deletes(router: Router, config: &Config, store: &OpenStore) -> Router {
    let prefix: Arc<str> = format!("{}{}/", config.issuer_path(), config.registration.path).into();
    let (config, store) = (Arc::new(config.clone()), store.clone());
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let (prefix, config, store) = (prefix.clone(), config.clone(), store.clone());
            async move {
                let deleted = (req.method() == Method::DELETE)
                    .then(|| req.uri().path().strip_prefix(&*prefix).map(str::to_owned))
                    .flatten()
                    .filter(|segment| !segment.is_empty() && !segment.contains('/'));
                let res = next.run(req).await;
                if res.status() == StatusCode::NO_CONTENT
                    && let Some(segment) = deleted
                    && let Ok(client_id) =
                        percent_encoding::percent_decode_str(&segment).decode_utf8()
                {
                    record_removed(&config, &store, &[(client_id.into_owned(), 0)]).await;
                }
                res
            }
        },
    ))
}

/// Cloned by axum for every request: shared, not copied.
#[derive(Clone)]
struct AuthnState {
    host: Arc<HostAuthn>,
    token: Arc<TokenHash>,
}

/// The admin routes of client authentication and resolution (`POST /clients/authenticate`,
/// `GET /clients/{client_id}`), with their own state, to merge into the admin router.
pub fn router<S: Clone + Send + Sync + 'static>(
    config: &Config,
    store: &OpenStore,
    resolver: &ClientResolver,
) -> anyhow::Result<Router<S>> {
    let state = AuthnState {
        host: Arc::new(HostAuthn::build(config, store, resolver)?),
        token: Arc::new(TokenHash::of(&config.admin.token(config)?)),
    };
    Ok(Router::new()
        .route("/clients/authenticate", post(authenticate))
        .route("/clients/{client_id}", get(get_client))
        .with_state(state))
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

/// The 401 answer when the request lacks the admin token (compared in constant time, never logged).
fn check_admin(headers: &HeaderMap, expected: &TokenHash) -> Option<Response> {
    let ok = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer") && TokenHash::of(token.trim()).ct_eq(expected)
        });
    if ok {
        return None;
    }
    let mut res = error(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "the admin token is missing or wrong",
    );
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    Some(res)
}

/// `what` names the operation in a 503 (`client authentication`, `client resolution`).
fn refusal(err: &AuthnError, status: StatusCode, what: &str) -> Response {
    if let AuthnError::Unavailable(detail) = err {
        tracing::warn!(error = %detail, "{what} unavailable");
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            &format!("{what} is temporarily unavailable; retry later"),
        );
    }
    error(status, "invalid_client", &err.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthenticateBody {
    #[serde(default)]
    authorization: Option<String>,
    #[serde(default)]
    params: HashMap<String, String>,
    #[serde(default)]
    audiences: Vec<String>,
}

async fn authenticate(
    State(state): State<AuthnState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(res) = check_admin(&headers, &state.token) {
        return res;
    }
    let body: AuthenticateBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!(
                    "the body must be {{\"authorization\": string or null, \"params\": {{string: string}}, \"audiences\": [string]}} ({})",
                    json_problem(&e)
                ),
            );
        }
    };
    let audiences = if body.audiences.is_empty() {
        &state.host.audiences
    } else {
        &body.audiences
    };
    match state
        .host
        .authenticator
        .authenticate(body.authorization.as_deref(), &body.params, audiences)
        .await
    {
        Ok(client) => client_response(client_body(
            &client.client_id,
            client.source,
            Extra::Method(client.method),
            &client.metadata,
        )),
        Err(e) => refusal(&e, StatusCode::UNAUTHORIZED, "client authentication"),
    }
}

async fn get_client(State(state): State<AuthnState>, req: Request) -> Response {
    if let Some(res) = check_admin(req.headers(), &state.token) {
        return res;
    }
    let raw = req
        .uri()
        .path()
        .strip_prefix("/clients/")
        .unwrap_or_default();
    let Ok(client_id) = percent_encoding::percent_decode_str(raw).decode_utf8() else {
        return error(
            StatusCode::NOT_FOUND,
            "invalid_client",
            "the client_id is not valid UTF-8",
        );
    };
    let lookup = &state.host.lookup;
    let client = match lookup.resolve(&client_id).await {
        Ok(c) => c,
        Err(e) => return refusal(&e, StatusCode::NOT_FOUND, "client resolution"),
    };
    // Only registrations have usage records (documents and configured clients are never
    // pruned), and documents must resolve while the store is down.
    let last_used_at = if client.source == ClientSource::Registration {
        match lookup.last_used_at(&client.client_id).await {
            Ok(at) => at,
            Err(e) => return refusal(&e, StatusCode::NOT_FOUND, "client resolution"),
        }
    } else {
        None
    };
    client_response(client_body(
        &client.client_id,
        client.source,
        Extra::LastUsedAt(last_used_at),
        &client.metadata,
    ))
}

/// The member of a client body besides `client_id`, `source` and `metadata`.
#[derive(Debug, Clone, Copy)]
enum Extra {
    /// `method`, after authentication.
    Method(AuthMethod),
    /// `last_used_at` (a number or `null`), after resolution.
    LastUsedAt(Option<i64>),
}

/// `{"client_id", "source", "method" | "last_used_at", "metadata"}`: the metadata written from
/// its shared compact JSON ([`ClientMetadata::json`], kept with a store's cached record)
/// rather than copied member by member into a `Value` and serialised again.
fn client_body(
    client_id: &str,
    source: ClientSource,
    extra: Extra,
    metadata: &ClientMetadata,
) -> Vec<u8> {
    let metadata = metadata.json();
    let mut out = Vec::with_capacity(metadata.len() + client_id.len() + 96);
    out.extend_from_slice(b"{\"client_id\":");
    // Writing a string into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut out, client_id);
    out.extend_from_slice(b",\"source\":\"");
    out.extend_from_slice(source.as_str().as_bytes());
    match extra {
        Extra::Method(method) => {
            out.extend_from_slice(b"\",\"method\":\"");
            out.extend_from_slice(method.as_str().as_bytes());
            out.push(b'"');
        }
        Extra::LastUsedAt(Some(at)) => {
            out.extend_from_slice(b"\",\"last_used_at\":");
            out.extend_from_slice(at.to_string().as_bytes());
        }
        Extra::LastUsedAt(None) => out.extend_from_slice(b"\",\"last_used_at\":null"),
    }
    out.extend_from_slice(b",\"metadata\":");
    out.extend_from_slice(metadata.as_bytes());
    out.push(b'}');
    out
}

fn client_response(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            ),
        ],
        body,
    )
        .into_response()
}

fn json_problem(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not valid JSON",
        serde_json::error::Category::Data => "a member has the wrong type or is unknown",
        serde_json::error::Category::Io => "unreadable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_bodies_are_the_json_of_their_members() {
        let members = json!({
            "client_id": "a\"b\\c é\u{1}",
            "redirect_uris": ["https://a.example/cb?x=\"y\""],
            "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "abc"}]},
            "client_id_issued_at": 1_700_000_000,
        });
        let metadata =
            ClientMetadata::from_trusted(members.as_object().cloned().unwrap_or_default());
        let id = "a\"b\\c é\u{1}";
        let cases = [
            (
                Extra::Method(AuthMethod::PrivateKeyJwt),
                json!({"client_id": id, "source": "registration", "method": "private_key_jwt", "metadata": members}),
            ),
            (
                Extra::LastUsedAt(Some(-5)),
                json!({"client_id": id, "source": "registration", "last_used_at": -5, "metadata": members}),
            ),
            (
                Extra::LastUsedAt(None),
                json!({"client_id": id, "source": "registration", "last_used_at": null, "metadata": members}),
            ),
        ];
        for (extra, expected) in cases {
            let body = client_body(id, ClientSource::Registration, extra, &metadata);
            let parsed: Value = serde_json::from_slice(&body).unwrap_or_default();
            assert_eq!(parsed, expected, "{}", String::from_utf8_lossy(&body));
        }
        let empty = client_body(
            "x",
            ClientSource::Configured,
            Extra::LastUsedAt(None),
            &ClientMetadata::default(),
        );
        let parsed: Value = serde_json::from_slice(&empty).unwrap_or_default();
        assert_eq!(
            parsed,
            json!({"client_id": "x", "source": "configured", "last_used_at": null, "metadata": {}})
        );
    }
}
