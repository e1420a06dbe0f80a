//! The registration service: RFC 7591 §3 registration and RFC 7592 §2 read, update, delete.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::clock::{Clock, SystemClock};
use crate::context::RequestContext;
use crate::error::{RegistrationError, TokenProblem};
use crate::factory::Factory;
use crate::metadata::{self, ClientMetadata, DocumentFetcher, ServerMetadata};
use crate::policy::{Policy, PolicyCall, PolicyError, PolicySet, RatIssuance};
use crate::settings::{InitialAccessTokenMode, RegistrarSettings};
use crate::store::{
    ClientRecord, ClientUpdate, InitialAccessTokenRecord, NewClient, RegistrationAccessTokenRecord,
    Store, StoreError,
};
use crate::token::{Secret, TokenHash, ct_str_eq, generate_token};

/// Members a client update request must not carry (RFC 7592 §2.2).
const FORBIDDEN_ON_UPDATE: &[&str] = &[
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
];

/// How many times a registration retries when a generated client id is already taken.
const ID_COLLISION_RETRIES: usize = 3;

/// The outcome of a registration, read or update: what the client is told.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    /// The registered metadata (with `client_secret` when the client has one).
    pub metadata: ClientMetadata,
    /// The registration access token, when one is issued (or was presented, on read).
    pub registration_access_token: Option<Secret>,
    /// The client's configuration endpoint, when it has a registration access token.
    pub registration_client_uri: Option<String>,
}

impl ClientResponse {
    /// The JSON body of the response (RFC 7591 §3.2.1, RFC 7592 §3).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut body = self.metadata.as_map().clone();
        if let (Some(token), Some(uri)) = (
            &self.registration_access_token,
            &self.registration_client_uri,
        ) {
            body.insert(
                "registration_access_token".into(),
                Value::String(token.expose().to_owned()),
            );
            body.insert("registration_client_uri".into(), Value::String(uri.clone()));
        }
        body
    }

    /// The JSON body, with the same members as [`ClientResponse::to_json`]: the metadata's
    /// shared JSON ([`ClientMetadata::json`], usually already written for the store) with the
    /// two token members appended, instead of serialising the metadata again.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let metadata = self.metadata.json();
        let (Some(token), Some(uri)) = (
            &self.registration_access_token,
            &self.registration_client_uri,
        ) else {
            return metadata.as_bytes().to_vec();
        };
        // Server members the metadata never holds; if it did, they would be replaced.
        if self.metadata.get("registration_access_token").is_some()
            || self.metadata.get("registration_client_uri").is_some()
        {
            return Value::Object(self.to_json()).to_string().into_bytes();
        }
        let members = metadata.strip_suffix('}').unwrap_or("{");
        let mut out = Vec::with_capacity(metadata.len() + token.expose().len() + uri.len() + 64);
        out.extend_from_slice(members.as_bytes());
        if members.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(b"\"registration_access_token\":");
        write_json_string(&mut out, token.expose());
        out.extend_from_slice(b",\"registration_client_uri\":");
        write_json_string(&mut out, uri);
        out.push(b'}');
        out
    }
}

/// Appends `s` as a JSON string.
fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a `Vec` cannot fail.
    let _ = serde_json::to_writer(out, s);
}

/// A client whose registration access token was checked: the subject of read, update and delete.
#[derive(Debug, Clone)]
pub struct AuthorizedClient {
    /// The client.
    pub client: ClientRecord,
    /// The presented token's record.
    pub token: RegistrationAccessTokenRecord,
    presented: Secret,
}

/// What an operator asks for when minting an initial access token.
#[derive(Debug, Clone, Default)]
pub struct MintInitialAccessToken {
    /// Policies, run in this order on every registration made with the token.
    pub policies: Vec<String>,
    /// Lifetime in seconds; `None` for a token that does not expire.
    pub expires_in: Option<i64>,
    /// How many registrations it may authorise; `None` for unlimited.
    pub max_uses: Option<u64>,
    /// A label for operators (shown in listings and audit logs).
    pub label: Option<String>,
}

/// How many clients [`Registrar::prune`] deletes between two yields to the runtime.
const PRUNE_BATCH: usize = 512;

/// Returns `Pending` once (waking itself at once), so that other tasks get to run.
struct YieldNow(bool);

impl std::future::Future for YieldNow {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// Which abandoned open registrations [`Registrar::prune`] removes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneRules {
    /// Keep at most this many unmanaged open clients (the oldest go first).
    pub max_clients: Option<u64>,
    /// Remove unmanaged open clients registered longer ago than this.
    pub max_age_seconds: Option<i64>,
}

/// Why the registrar could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// Policies are attached to stored initial access tokens only.
    #[error(
        "registration policies are only used with stored initial access tokens (initial_access_token = true)"
    )]
    PoliciesWithoutStoredTokens,
}

/// Builds a [`Registrar`].
pub struct RegistrarBuilder {
    inner: Inner,
}

impl RegistrarBuilder {
    /// Sets the fetcher of `jwks_uri`, `sector_identifier_uri` and software statement issuer
    /// keys (default: none, and clients that register `jwks_uri` or `sector_identifier_uri`
    /// are refused with `invalid_client_metadata`).
    pub fn fetcher(mut self, fetcher: Arc<dyn DocumentFetcher>) -> Self {
        self.inner.fetcher = Some(fetcher);
        self
    }

    /// Adds the policy `name`.
    pub fn policy(mut self, name: impl Into<String>, policy: Arc<dyn Policy>) -> Self {
        self.inner.policies.insert(name, policy);
        self
    }

    /// Sets the client id generator (default: 21-character nanoid).
    pub fn id_factory(mut self, factory: Factory) -> Self {
        self.inner.id_factory = factory;
        self
    }

    /// Sets the client secret generator (default: 64 random bytes in base64url).
    pub fn secret_factory(mut self, factory: Factory) -> Self {
        self.inner.secret_factory = factory;
        self
    }

    /// Sets whether registration access tokens are issued (default: always).
    pub fn issue_registration_access_token(mut self, issuance: RatIssuance) -> Self {
        self.inner.rat_issuance = issuance;
        self
    }

    /// Sets the clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.inner.clock = clock;
        self
    }

    /// Builds the registrar.
    pub fn build(self) -> Result<Registrar, BuildError> {
        if self.inner.policies.names().next().is_some()
            && self.inner.settings.initial_access_token != InitialAccessTokenMode::Stored
        {
            return Err(BuildError::PoliciesWithoutStoredTokens);
        }
        Ok(Registrar {
            inner: Arc::new(self.inner),
        })
    }
}

struct Inner {
    store: Arc<dyn Store>,
    /// The server metadata, with the validation tables derived from it (built once).
    validator: metadata::Validator,
    settings: RegistrarSettings,
    policies: PolicySet,
    id_factory: Factory,
    secret_factory: Factory,
    rat_issuance: RatIssuance,
    clock: Arc<dyn Clock>,
    fetcher: Option<Arc<dyn DocumentFetcher>>,
}

/// The registration service. Cheap to clone; share one per server.
#[derive(Clone)]
pub struct Registrar {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("settings", &self.inner.settings)
            .field("policies", &self.inner.policies)
            .finish_non_exhaustive()
    }
}

fn policy_error(name: &str, err: PolicyError) -> RegistrationError {
    match err {
        PolicyError::Reject(msg) => {
            metrics::counter!("dcr_policy_rejections_total", "policy" => name.to_owned())
                .increment(1);
            RegistrationError::InvalidClientMetadata(msg)
        }
        PolicyError::Failed(detail) => {
            RegistrationError::Server(format!("policy {name}: {detail}"))
        }
    }
}

impl Registrar {
    /// Starts building a registrar over `store`, accepting what `server` supports.
    pub fn builder(
        store: Arc<dyn Store>,
        server: ServerMetadata,
        settings: RegistrarSettings,
    ) -> RegistrarBuilder {
        RegistrarBuilder {
            inner: Inner {
                store,
                validator: metadata::Validator::new(server),
                settings,
                policies: PolicySet::default(),
                id_factory: Factory::default_client_id(),
                secret_factory: Factory::default_client_secret(),
                rat_issuance: RatIssuance::Always,
                clock: Arc::new(SystemClock),
                fetcher: None,
            },
        }
    }

    /// What the server supports.
    pub fn server_metadata(&self) -> &ServerMetadata {
        self.inner.validator.server()
    }

    /// The registrar's settings.
    pub fn settings(&self) -> &RegistrarSettings {
        &self.inner.settings
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Whether a configured policy, id or secret factory, or registration access token
    /// decision can see the request. When none can, the HTTP layer need not copy the request
    /// headers into the [`RequestContext`].
    pub fn reads_request_headers(&self) -> bool {
        let inner = &self.inner;
        inner.policies.names().next().is_some()
            || inner.id_factory.reads_request()
            || inner.secret_factory.reads_request()
            || inner.rat_issuance.reads_request()
    }

    /// The configured policies.
    pub fn policies(&self) -> &PolicySet {
        &self.inner.policies
    }

    /// The configuration endpoint of `client_id`.
    pub fn registration_client_uri(&self, client_id: &str) -> String {
        // Everything but unreserved characters (RFC 3986 §2.3) is percent-encoded.
        const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        let base = self
            .inner
            .settings
            .registration_endpoint
            .trim_end_matches('/');
        let mut uri = String::with_capacity(base.len() + 1 + client_id.len());
        uri.push_str(base);
        uri.push('/');
        uri.extend(percent_encoding::utf8_percent_encode(
            client_id,
            PATH_SEGMENT,
        ));
        uri
    }

    /// RFC 7591 §3.1: registers a client.
    ///
    /// `token` is the bearer token presented, if any; it is only looked at when registration
    /// needs an initial access token. The outcome is recorded as a `dcr::audit` event.
    pub async fn register(
        &self,
        ctx: RequestContext,
        token: Option<&str>,
        body: Map<String, Value>,
    ) -> Result<ClientResponse, RegistrationError> {
        let addr = ctx.client_addr;
        let mut iat = None;
        let result = self.register_inner(ctx, token, body, &mut iat).await;
        let (iat_id, iat_label) = iat.unwrap_or_default();
        let audit = crate::audit::AuditEvent {
            action: "register",
            client_addr: addr,
            client_id: result.as_ref().ok().map(|r| r.metadata.client_id()),
            iat_id: iat_id.as_deref(),
            iat_label: iat_label.as_deref(),
            error: result.as_ref().err(),
        };
        audit.emit();
        result
    }

    async fn register_inner(
        &self,
        mut ctx: RequestContext,
        token: Option<&str>,
        body: Map<String, Value>,
        seen_iat: &mut Option<(Option<String>, Option<String>)>,
    ) -> Result<ClientResponse, RegistrationError> {
        let inner = &self.inner;
        let now = inner.clock.now();

        // Initial access token.
        let iat = match &inner.settings.initial_access_token {
            InitialAccessTokenMode::Open => None,
            InitialAccessTokenMode::Static(expected) => {
                let token = token.ok_or(RegistrationError::InvalidToken(TokenProblem::Missing))?;
                if !TokenHash::of(token).ct_eq(expected) {
                    return Err(RegistrationError::InvalidToken(TokenProblem::Unknown));
                }
                None
            }
            InitialAccessTokenMode::Stored => {
                let token = token.ok_or(RegistrationError::InvalidToken(TokenProblem::Missing))?;
                let record = inner
                    .store
                    .find_initial_access_token(&TokenHash::of(token))
                    .await?
                    .filter(|r| r.usable_at(now))
                    .ok_or(RegistrationError::InvalidToken(TokenProblem::Unknown))?;
                if let Some(name) = inner.policies.first_unknown(&record.policies) {
                    return Err(RegistrationError::Server(format!(
                        "initial access token {} names policy {name:?}, which is not configured",
                        record.id
                    )));
                }
                ctx.token_label = record.label.clone();
                *seen_iat = Some((Some(record.id.clone()), record.label.clone()));
                Some(record)
            }
        };

        let factory_id = inner.id_factory.generate(&ctx).await;
        let issue_rat = inner.rat_issuance.decide(&ctx).await.map_err(|e| {
            RegistrationError::Server(format!("issue_registration_access_token: {e}"))
        })?;

        let mut properties = body;
        metadata::apply_software_statement(
            &mut properties,
            inner.validator.server(),
            now,
            inner.fetcher.as_deref(),
        )
        .await?;
        properties.insert("client_id".into(), Value::String(factory_id.clone()));
        properties.insert("client_id_issued_at".into(), Value::from(now));
        properties.remove("client_secret");
        properties.remove("client_secret_expires_at");
        if inner.validator.needs_secret_after_defaults(&properties) {
            let secret = inner.secret_factory.generate(&ctx).await;
            properties.insert("client_secret".into(), Value::String(secret));
            properties.insert("client_secret_expires_at".into(), Value::from(0));
        }

        // Policies of the initial access token, in order.
        let iat_policies = iat.as_ref().map(|r| r.policies.clone()).unwrap_or_default();
        let mut call = PolicyCall {
            request: ctx,
            properties,
            registration_access_token_policies: issue_rat.then(|| iat_policies.clone()),
        };
        self.run_policies(&iat_policies, &mut call).await?;
        let PolicyCall {
            request: ctx,
            properties,
            registration_access_token_policies,
        } = call;

        let mut validated = self.validate(properties).await?;
        self.settle_secret(&ctx, &mut validated, None).await;

        let mut client = ClientRecord {
            client_id: validated.client_id().to_owned(),
            metadata: validated,
            created_at: now,
            updated_at: now,
            initial_access_token_id: iat.as_ref().map(|r| r.id.clone()),
            managed_at: None,
        };
        let id_from_factory = client.client_id == factory_id;
        let token_value = issue_rat.then(generate_token);
        for attempt in 0..=ID_COLLISION_RETRIES {
            let rat = token_value.as_ref().map(|t| RegistrationAccessTokenRecord {
                hash: t.hash(),
                client_id: client.client_id.clone(),
                policies: registration_access_token_policies
                    .clone()
                    .unwrap_or_default(),
                created_at: now,
            });
            let new = NewClient {
                client: &client,
                registration_access_token: rat.as_ref(),
                spend_initial_access_token: iat.as_ref().map(|r| (r.id.as_str(), now)),
            };
            match inner.store.insert_client(new).await {
                Ok(()) => break,
                Err(StoreError::ClientExists)
                    if id_from_factory && attempt < ID_COLLISION_RETRIES =>
                {
                    let id = inner.id_factory.generate(&ctx).await;
                    client
                        .metadata
                        .set_server_member("client_id", Value::String(id.clone()));
                    client.client_id = id;
                }
                Err(StoreError::ClientExists) if !id_from_factory => {
                    return Err(RegistrationError::InvalidClientMetadata(
                        "client_id set by a policy is already registered".into(),
                    ));
                }
                Err(StoreError::InitialAccessTokenUnavailable) => {
                    return Err(RegistrationError::InvalidToken(TokenProblem::Unknown));
                }
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(client_id = %client.client_id, "client registered");
        let uri = token_value
            .as_ref()
            .map(|_| self.registration_client_uri(&client.client_id));
        Ok(ClientResponse {
            metadata: client.metadata,
            registration_access_token: token_value,
            registration_client_uri: uri,
        })
    }

    /// Checks a registration access token presented for `client_id` (RFC 7592 §2).
    ///
    /// A token bound to another client, or presented for a client that does not exist,
    /// is revoked (RFC 7592 §2.1) and refused.
    pub async fn authorize(
        &self,
        client_id: &str,
        token: Option<&str>,
    ) -> Result<AuthorizedClient, RegistrationError> {
        let token = token.ok_or(RegistrationError::InvalidToken(TokenProblem::Missing))?;
        let hash = TokenHash::of(token);
        let store = &self.inner.store;
        let record = store
            .find_registration_access_token(&hash)
            .await?
            .filter(|r| r.hash.ct_eq(&hash))
            .ok_or(RegistrationError::InvalidToken(TokenProblem::Unknown))?;
        let client = match store.get_client(client_id).await? {
            Some(c) if c.client_id == record.client_id => c,
            _ => {
                store.revoke_registration_access_token(&hash).await?;
                tracing::warn!(token_client_id = %record.client_id, path_client_id = %client_id,
                    "registration access token presented for another client; revoked");
                return Err(RegistrationError::InvalidToken(
                    TokenProblem::ClientMismatch,
                ));
            }
        };
        if let Some(name) = self.inner.policies.first_unknown(&record.policies) {
            return Err(RegistrationError::Server(format!(
                "registration access token of client {client_id} names policy {name:?}, which is not configured"
            )));
        }
        if client.managed_at.is_none() {
            // A client whose owner manages it is never pruned as abandoned.
            store
                .mark_managed(client_id, self.inner.clock.now())
                .await?;
        }
        Ok(AuthorizedClient {
            client,
            token: record,
            presented: Secret::new(token),
        })
    }

    /// RFC 7592 §2.1: the client's current registration, with the presented token.
    pub fn read(&self, authorized: AuthorizedClient) -> ClientResponse {
        let uri = self.registration_client_uri(&authorized.client.client_id);
        ClientResponse {
            metadata: authorized.client.metadata,
            registration_access_token: Some(authorized.presented),
            registration_client_uri: Some(uri),
        }
    }

    /// RFC 7592 §2.2: replaces the client's metadata with `body`. The outcome is recorded as a
    /// `dcr::audit` event.
    pub async fn update(
        &self,
        ctx: RequestContext,
        authorized: AuthorizedClient,
        body: Map<String, Value>,
    ) -> Result<ClientResponse, RegistrationError> {
        let addr = ctx.client_addr;
        let client_id = authorized.client.client_id.clone();
        let result = self.update_inner(ctx, authorized, body).await;
        crate::audit::AuditEvent {
            action: "update",
            client_addr: addr,
            client_id: Some(&client_id),
            iat_id: None,
            iat_label: None,
            error: result.as_ref().err(),
        }
        .emit();
        result
    }

    async fn update_inner(
        &self,
        ctx: RequestContext,
        authorized: AuthorizedClient,
        body: Map<String, Value>,
    ) -> Result<ClientResponse, RegistrationError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        if let Some(field) = FORBIDDEN_ON_UPDATE.iter().find(|f| body.contains_key(**f)) {
            return Err(RegistrationError::InvalidRequest(format!(
                "the update request must not include {field}"
            )));
        }
        let current = &authorized.client;
        match body.get("client_id") {
            Some(Value::String(id)) if *id == current.client_id => {}
            Some(_) => {
                return Err(RegistrationError::InvalidRequest(
                    "client_id in the request body must equal the client_id of the registration being updated".into(),
                ));
            }
            None => {
                return Err(RegistrationError::InvalidRequest(
                    "the update request must include client_id (RFC 7592 §2.2)".into(),
                ));
            }
        }
        if let Some(sent) = body.get("client_secret") {
            let sent = sent.as_str().unwrap_or_default();
            let stored = current.metadata.client_secret().unwrap_or_default();
            if !ct_str_eq(sent, stored) {
                return Err(RegistrationError::InvalidRequest(
                    "client_secret in the request body does not match the client's secret".into(),
                ));
            }
        }

        let mut properties: Map<String, Value> = body
            .into_iter()
            .filter(|(_, v)| !(v.is_null() || v.as_str() == Some("")))
            .collect();
        metadata::apply_software_statement(
            &mut properties,
            inner.validator.server(),
            now,
            inner.fetcher.as_deref(),
        )
        .await?;
        if let Some(issued) = current.metadata.get("client_id_issued_at") {
            properties.insert("client_id_issued_at".into(), issued.clone());
        }
        match current.metadata.client_secret() {
            Some(secret) => {
                properties.insert("client_secret".into(), Value::String(secret.to_owned()));
                let expires = current
                    .metadata
                    .get("client_secret_expires_at")
                    .cloned()
                    .unwrap_or(Value::from(0));
                properties.insert("client_secret_expires_at".into(), expires);
            }
            None => {
                properties.remove("client_secret");
                if inner.validator.needs_secret_after_defaults(&properties) {
                    let secret = inner.secret_factory.generate(&ctx).await;
                    properties.insert("client_secret".into(), Value::String(secret));
                    properties.insert("client_secret_expires_at".into(), Value::from(0));
                }
            }
        }

        let rat_policies = authorized.token.policies.clone();
        let mut call = PolicyCall {
            request: ctx,
            properties,
            registration_access_token_policies: Some(rat_policies.clone()),
        };
        self.run_policies(&rat_policies, &mut call).await?;
        let PolicyCall {
            request: ctx,
            mut properties,
            registration_access_token_policies,
        } = call;
        // The client id is bound to the registration access token: policies cannot move it.
        properties.insert("client_id".into(), Value::String(current.client_id.clone()));

        let mut validated = self.validate(properties).await?;
        self.settle_secret(&ctx, &mut validated, current.metadata.client_secret())
            .await;

        let client = ClientRecord {
            client_id: current.client_id.clone(),
            metadata: validated,
            created_at: current.created_at,
            updated_at: now,
            initial_access_token_id: current.initial_access_token_id.clone(),
            managed_at: current.managed_at.or(Some(now)),
        };
        let rotated = inner
            .settings
            .rotate_registration_access_token
            .then(generate_token);
        let rotated_record = rotated.as_ref().map(|t| RegistrationAccessTokenRecord {
            hash: t.hash(),
            client_id: client.client_id.clone(),
            policies: registration_access_token_policies.unwrap_or(rat_policies),
            created_at: now,
        });
        let update = ClientUpdate {
            client: &client,
            presented: &authorized.token.hash,
            rotate_to: rotated_record.as_ref(),
        };
        match inner.store.update_client(update).await {
            Ok(()) => {}
            Err(StoreError::RegistrationAccessTokenGone) => {
                return Err(RegistrationError::InvalidToken(TokenProblem::Unknown));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(client_id = %client.client_id, rotated = rotated.is_some(), "client updated");
        let uri = self.registration_client_uri(&client.client_id);
        Ok(ClientResponse {
            metadata: client.metadata,
            registration_access_token: Some(rotated.unwrap_or(authorized.presented)),
            registration_client_uri: Some(uri),
        })
    }

    /// RFC 7592 §2.3: deletes the client and every registration access token bound to it.
    pub async fn delete(&self, authorized: AuthorizedClient) -> Result<(), RegistrationError> {
        self.delete_for(&RequestContext::default(), authorized)
            .await
    }

    /// [`Registrar::delete`], recording `ctx` (the requester) in the `dcr::audit` event.
    pub async fn delete_for(
        &self,
        ctx: &RequestContext,
        authorized: AuthorizedClient,
    ) -> Result<(), RegistrationError> {
        let client_id = authorized.client.client_id;
        let result = match self.inner.store.delete_client(&client_id).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(RegistrationError::InvalidToken(TokenProblem::Unknown)),
            Err(e) => Err(e.into()),
        };
        crate::audit::AuditEvent {
            action: "delete",
            client_addr: ctx.client_addr,
            client_id: Some(&client_id),
            iat_id: None,
            iat_label: None,
            error: result.as_ref().err(),
        }
        .emit();
        result
    }

    /// Removes clients registered without an initial access token and never managed or used:
    /// the oldest beyond `rules.max_clients`, and those older than `rules.max_age_seconds`.
    /// With `dry_run`, only lists them. Returns `(client_id, created_at)`, oldest first.
    pub async fn prune(
        &self,
        rules: PruneRules,
        dry_run: bool,
    ) -> Result<Vec<(String, i64)>, RegistrationError> {
        let store = &self.inner.store;
        let now = self.inner.clock.now();
        let total = store.count_unmanaged_open_clients().await?;
        let excess = rules.max_clients.map_or(0, |max| total.saturating_sub(max));
        let excess = usize::try_from(excess).unwrap_or(usize::MAX);
        let cutoff = rules.max_age_seconds.map(|age| now.saturating_sub(age));
        let goes = |index: usize, created_at: i64| {
            index < excess || cutoff.is_some_and(|c| created_at < c)
        };
        if dry_run {
            // Both rules select a prefix of the oldest-first list: fetch until it ends.
            let mut limit = excess.saturating_add(256);
            return Ok(loop {
                let batch = store.unmanaged_open_clients(limit).await?;
                let full = batch.len() == limit;
                let chosen: Vec<(String, i64)> = batch
                    .into_iter()
                    .enumerate()
                    .take_while(|(i, (_, created))| goes(*i, *created))
                    .map(|(_, c)| c)
                    .collect();
                if chosen.len() < limit || !full {
                    break chosen;
                }
                limit = limit.saturating_mul(2);
            });
        }
        // Deleting: take the oldest in bounded batches and yield to the runtime between them,
        // so that pruning a huge backlog never holds the store (or the worker thread) for long.
        let mut pruned = Vec::new();
        // Position in the oldest-first list of the next candidate (what `goes` counts).
        let mut index = 0usize;
        loop {
            let batch = store.unmanaged_open_clients(PRUNE_BATCH).await?;
            let fetched = batch.len();
            let mut progressed = false;
            let mut stop = false;
            for (client_id, created_at) in batch {
                if !goes(index, created_at) {
                    stop = true;
                    break;
                }
                index += 1;
                // Re-checked just before deleting: a client managed meanwhile stays.
                let still = store
                    .get_client(&client_id)
                    .await?
                    .is_some_and(|c| c.managed_at.is_none() && c.initial_access_token_id.is_none());
                // A client managed or deleted meanwhile leaves the list too: progress.
                progressed = true;
                if still && store.delete_client(&client_id).await? {
                    tracing::info!(target: "dcr::audit", action = "prune", outcome = "deleted",
                        client_id = %client_id, created_at, "client pruned");
                    pruned.push((client_id, created_at));
                }
            }
            if stop || !progressed || fetched < PRUNE_BATCH {
                break;
            }
            YieldNow(false).await;
        }
        if !pruned.is_empty() {
            metrics::counter!("dcr_clients_pruned_total").increment(pruned.len() as u64);
        }
        Ok(pruned)
    }

    /// Mints an initial access token. Every policy it names must be configured.
    pub async fn mint_initial_access_token(
        &self,
        request: MintInitialAccessToken,
    ) -> Result<(InitialAccessTokenRecord, Secret), RegistrationError> {
        if let Some(name) = self.inner.policies.first_unknown(&request.policies) {
            return Err(RegistrationError::InvalidRequest(format!(
                "policy {name:?} is not configured"
            )));
        }
        if request.expires_in.is_some_and(|s| s <= 0) {
            return Err(RegistrationError::InvalidRequest(
                "expires_in must be a positive number of seconds".into(),
            ));
        }
        if request.max_uses == Some(0) {
            return Err(RegistrationError::InvalidRequest(
                "max_uses must be at least 1".into(),
            ));
        }
        let now = self.inner.clock.now();
        let token = generate_token();
        let id_bytes: [u8; 8] = rand::random();
        let record = InitialAccessTokenRecord {
            id: id_bytes.iter().map(|b| format!("{b:02x}")).collect(),
            hash: token.hash(),
            label: request.label,
            policies: request.policies,
            created_at: now,
            expires_at: request.expires_in.map(|s| now.saturating_add(s)),
            max_uses: request.max_uses,
            uses: 0,
        };
        self.inner
            .store
            .insert_initial_access_token(&record)
            .await?;
        tracing::info!(iat_id = %record.id, "initial access token minted");
        Ok((record, token))
    }

    /// Every stored initial access token (never the token values, which are not kept).
    pub async fn list_initial_access_tokens(
        &self,
    ) -> Result<Vec<InitialAccessTokenRecord>, RegistrationError> {
        Ok(self.inner.store.list_initial_access_tokens().await?)
    }

    /// Revokes the initial access token `id`; `false` if there was none.
    pub async fn revoke_initial_access_token(&self, id: &str) -> Result<bool, RegistrationError> {
        Ok(self.inner.store.revoke_initial_access_token(id).await?)
    }

    /// Stored initial access tokens that name a policy that is not configured, with that name.
    pub async fn tokens_with_unknown_policies(
        &self,
    ) -> Result<Vec<(InitialAccessTokenRecord, String)>, RegistrationError> {
        let all = self.list_initial_access_tokens().await?;
        Ok(all
            .into_iter()
            .filter_map(|t| {
                self.inner
                    .policies
                    .first_unknown(&t.policies)
                    .map(str::to_owned)
                    .map(|n| (t, n))
            })
            .collect())
    }

    async fn run_policies(
        &self,
        names: &[String],
        call: &mut PolicyCall,
    ) -> Result<(), RegistrationError> {
        for name in names {
            let policy = self.inner.policies.get(name).ok_or_else(|| {
                RegistrationError::Server(format!("policy {name:?} is not configured"))
            })?;
            policy
                .apply(call)
                .await
                .map_err(|e| policy_error(name, e))?;
        }
        Ok(())
    }

    /// Validates a document and checks the remote documents it names (`jwks_uri`,
    /// `sector_identifier_uri`).
    pub(crate) async fn validate(
        &self,
        properties: Map<String, Value>,
    ) -> Result<ClientMetadata, RegistrationError> {
        let validator = &self.inner.validator;
        let validated = validator.validate(properties)?;
        metadata::verify_remote(
            &validated,
            self.inner.fetcher.as_deref(),
            validator.server(),
        )
        .await?;
        Ok(validated)
    }

    /// Makes the secret agree with the validated metadata: a client that needs one has one
    /// (kept if it had one), a client that does not has none.
    async fn settle_secret(
        &self,
        ctx: &RequestContext,
        md: &mut ClientMetadata,
        previous: Option<&str>,
    ) {
        if md.needs_secret() {
            if md.client_secret().is_none() {
                let secret = match previous {
                    Some(p) => p.to_owned(),
                    None => self.inner.secret_factory.generate(ctx).await,
                };
                md.set_server_member("client_secret", Value::String(secret));
            }
            if md.get("client_secret_expires_at").is_none() {
                md.set_server_member("client_secret_expires_at", Value::from(0));
            }
        } else {
            md.remove_server_member("client_secret");
            md.remove_server_member("client_secret_expires_at");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn response(with_token: bool, extra: &[(&str, Value)]) -> ClientResponse {
        let mut map = Map::new();
        for (k, v) in [
            ("client_id", Value::from("abc")),
            ("redirect_uris", serde_json::json!(["https://a.example/cb"])),
            ("application_type", Value::from("web")),
            ("token_endpoint_auth_method", Value::from("none")),
        ] {
            map.insert(k.into(), v);
        }
        for (k, v) in extra {
            map.insert((*k).into(), v.clone());
        }
        ClientResponse {
            metadata: ClientMetadata::from_trusted(map),
            registration_access_token: with_token.then(|| Secret::new("tok")),
            registration_client_uri: with_token.then(|| "https://as.example/reg/abc".into()),
        }
    }

    #[test]
    fn json_bytes_have_the_members_of_to_json() {
        for r in [
            response(true, &[]),
            response(false, &[]),
            response(true, &[("registration_access_token", Value::from("stale"))]),
            response(true, &[("zzz", Value::from(1)), ("aaa", Value::from(2))]),
            response(true, &[("quote", Value::from("a\"b\\c"))]),
        ] {
            let bytes = r.to_json_bytes();
            let parsed: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(parsed, Value::Object(r.to_json()), "{parsed}");
        }
    }

    #[test]
    fn request_headers_are_needed_only_by_closures_and_policies() {
        let builder = || {
            Registrar::builder(
                Arc::new(crate::store::MemoryStore::new()),
                metadata::ServerMetadata::default(),
                crate::settings::RegistrarSettings::new("https://as.example"),
            )
        };
        assert!(!builder().build().unwrap().reads_request_headers());
        let with_id_factory = builder().id_factory(Factory::sync(|_| "id".into()));
        assert!(with_id_factory.build().unwrap().reads_request_headers());
        let with_decision =
            builder().issue_registration_access_token(RatIssuance::sync(|_| Ok(true)));
        assert!(with_decision.build().unwrap().reads_request_headers());
        let mut settings = crate::settings::RegistrarSettings::new("https://as.example");
        settings.initial_access_token = InitialAccessTokenMode::Stored;
        let with_policy = Registrar::builder(
            Arc::new(crate::store::MemoryStore::new()),
            metadata::ServerMetadata::default(),
            settings,
        )
        .policy("p", crate::policy::sync_policy(|_| Ok(())));
        assert!(with_policy.build().unwrap().reads_request_headers());
    }

    #[test]
    fn json_bytes_reuse_the_metadata_json() {
        let r = response(true, &[]);
        let metadata = r.metadata.json();
        let bytes = r.to_json_bytes();
        assert!(bytes.starts_with(metadata.strip_suffix('}').unwrap().as_bytes()));
        assert!(Arc::ptr_eq(&metadata, &r.metadata.json()));
        let empty = ClientResponse {
            metadata: ClientMetadata::default(),
            ..response(true, &[])
        };
        assert_eq!(
            serde_json::from_slice::<Value>(&empty.to_json_bytes()).unwrap(),
            Value::Object(empty.to_json())
        );
    }
}
