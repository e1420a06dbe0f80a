//! Finding the client a token request names, with what its credentials are checked against.

use std::collections::HashMap;
use std::sync::Arc;

use super::AuthnError;
use super::usage::{ClientUsageStore, UsageRecorder};
use crate::cimd::is_document_url;
use crate::clock::{Clock, SystemClock};
use crate::metadata::ClientMetadata;
use crate::resolve::{ClientResolver, ClientSource, ResolveError, ResolvedClient};
use crate::store::Store;
use crate::token::Secret;

/// A client and its secret (when it has one), for authentication.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// The client (metadata without its secret).
    pub client: ResolvedClient,
    /// Its `client_secret`, if it has one.
    pub secret: Option<Secret>,
    /// Its `client_secret_expires_at` (0 or absent: never).
    pub secret_expires_at: Option<i64>,
}

impl ClientCredentials {
    /// Splits a full record's metadata into the client (without secret) and its secret.
    pub fn from_metadata(client_id: &str, source: ClientSource, metadata: ClientMetadata) -> Self {
        let secret = metadata.client_secret().map(Secret::new);
        let secret_expires_at = metadata
            .get("client_secret_expires_at")
            .and_then(|v| v.as_i64());
        Self {
            client: ResolvedClient {
                client_id: client_id.to_owned(),
                source,
                metadata: metadata.without_secret(),
            },
            secret,
            secret_expires_at,
        }
    }
}

/// Finds clients by id for the [`Authenticator`](super::Authenticator).
#[async_trait::async_trait]
pub trait ClientLookup: Send + Sync + std::fmt::Debug {
    /// The client `client_id` with its secret, or why there is none
    /// ([`AuthnError::UnknownClient`], [`AuthnError::RegistrationExpired`],
    /// [`AuthnError::Document`], [`AuthnError::Unavailable`]).
    async fn lookup(&self, client_id: &str) -> Result<ClientCredentials, AuthnError>;
}

/// The lookup of dcr's own clients: registered clients from the store (with their secret),
/// metadata documents through the [`ClientResolver`], and tombstones of pruned or deleted
/// registrations when a usage store is given.
#[derive(Clone)]
pub struct RegistryLookup {
    store: Arc<dyn Store>,
    resolver: ClientResolver,
    usage: Option<Arc<dyn ClientUsageStore>>,
    clock: Arc<dyn Clock>,
    configured: Arc<HashMap<String, ClientCredentials>>,
    recorder: Option<UsageRecorder>,
}

impl std::fmt::Debug for RegistryLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryLookup")
            .field("resolver", &self.resolver)
            .field("usage", &self.usage)
            .field("configured", &self.configured.len())
            .finish_non_exhaustive()
    }
}

impl RegistryLookup {
    /// Looks clients up in `store` (the store of the resolver's registrar) and `resolver`;
    /// with `usage`, an unknown id that was pruned or deleted is told apart.
    pub fn new(
        store: Arc<dyn Store>,
        resolver: ClientResolver,
        usage: Option<Arc<dyn ClientUsageStore>>,
    ) -> Self {
        Self {
            store,
            resolver,
            usage,
            clock: Arc::new(SystemClock),
            configured: Arc::default(),
            recorder: None,
        }
    }

    /// Adds the clients configured by the operator (looked up first; their
    /// [`ClientSource`] is [`ClientSource::Configured`]).
    pub fn configured(mut self, clients: impl IntoIterator<Item = ClientCredentials>) -> Self {
        self.configured = Arc::new(
            clients
                .into_iter()
                .map(|c| (c.client.client_id.clone(), c))
                .collect(),
        );
        self
    }

    /// Records every successful [`RegistryLookup::resolve`] with `recorder`.
    pub fn usage_recorder(mut self, recorder: UsageRecorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Resolves `client_id` for a host (its authorization endpoint, an admin API): the client
    /// without its secret, recorded as used; an id that was pruned or deleted is
    /// [`AuthnError::RegistrationExpired`].
    pub async fn resolve(&self, client_id: &str) -> Result<ResolvedClient, AuthnError> {
        let creds = self.lookup(client_id).await?;
        if let Some(recorder) = &self.recorder {
            recorder
                .record(client_id, creds.client.source, self.clock.now())
                .await;
        }
        Ok(creds.client)
    }

    /// `last_used_at` of `client_id`, when a usage store is configured and it has one.
    pub async fn last_used_at(&self, client_id: &str) -> Result<Option<i64>, AuthnError> {
        let Some(usage) = &self.usage else {
            return Ok(None);
        };
        usage
            .last_used_of(client_id)
            .await
            .map_err(|e| AuthnError::Unavailable(format!("store: {e}")))
    }

    /// Uses `clock` to tell whether a tombstone is still kept (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn unknown(&self, client_id: &str) -> AuthnError {
        let Some(usage) = &self.usage else {
            return AuthnError::UnknownClient;
        };
        match usage.tombstoned(client_id, self.clock.now()).await {
            Ok(true) => AuthnError::RegistrationExpired,
            Ok(false) => AuthnError::UnknownClient,
            Err(e) => AuthnError::Unavailable(format!("store: {e}")),
        }
    }
}

#[async_trait::async_trait]
impl ClientLookup for RegistryLookup {
    async fn lookup(&self, client_id: &str) -> Result<ClientCredentials, AuthnError> {
        if let Some(configured) = self.configured.get(client_id) {
            return Ok(configured.clone());
        }
        if self.resolver.documents().is_some() && is_document_url(client_id) {
            return match self.resolver.resolve(client_id).await {
                Ok(client) => Ok(ClientCredentials {
                    client,
                    secret: None,
                    secret_expires_at: None,
                }),
                Err(ResolveError::Unavailable(e)) => Err(AuthnError::Unavailable(e)),
                Err(ResolveError::UnknownClient) => Err(AuthnError::UnknownClient),
                Err(e) => Err(AuthnError::Document(e.to_string())),
            };
        }
        match self.store.get_client(client_id).await {
            Ok(Some(record)) => Ok(ClientCredentials::from_metadata(
                &record.client_id,
                ClientSource::Registration,
                record.metadata,
            )),
            Ok(None) => Err(self.unknown(client_id).await),
            Err(e) => Err(AuthnError::Unavailable(format!("store: {e}"))),
        }
    }
}
