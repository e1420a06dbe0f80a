//! The registration service, one file per operation:
//! - registration — RFC 7591 §3 (`register.rs`);
//! - read, update, delete — RFC 7592 §2 (`manage.rs`);
//! - the document pipeline both registration and update run (`pipeline.rs`);
//! - pruning of abandoned open registrations (`prune.rs`);
//! - initial access token administration (`initial_access_tokens.rs`);
//! - the response a client gets (`response.rs`).
//!
//! Every outcome is recorded through [`crate::audit`].

mod initial_access_tokens;
mod manage;
mod pipeline;
mod prune;
mod register;
mod response;

pub use initial_access_tokens::MintInitialAccessToken;
pub use manage::AuthorizedClient;
pub use prune::PruneRules;
pub use response::ClientResponse;

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::factory::Factory;
use crate::metadata::{self, DocumentFetcher, ServerMetadata};
use crate::policy::{Policy, PolicySet, RatIssuance};
use crate::settings::{InitialAccessTokenMode, RegistrarSettings};
use crate::store::Store;

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
    /// headers into the [`RequestContext`](crate::context::RequestContext).
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

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
}
