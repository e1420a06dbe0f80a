//! [`ClientResolver`](crate::resolve::ClientResolver): one call from any `client_id` to a validated client, for the
//! authorization and token endpoints of a host authorization server: a registered client
//! from the store, or (when metadata documents are on) a Client ID Metadata Document.

use crate::Registrar;
use crate::cimd::{CimdError, DocumentResolver, is_document_url};
use crate::metadata::ClientMetadata;

/// Where a resolved client comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSource {
    /// Registered (RFC 7591) and kept in the store.
    Registration,
    /// Described by the metadata document its client id points at.
    MetadataDocument,
    /// Configured by the operator (`[[clients]]`); never pruned nor managed over RFC 7592.
    Configured,
}

impl ClientSource {
    /// `registration`, `metadata_document` or `configured`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientSource::Registration => "registration",
            ClientSource::MetadataDocument => "metadata_document",
            ClientSource::Configured => "configured",
        }
    }
}

/// A validated client.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedClient {
    /// Its client id.
    pub client_id: String,
    /// Where it comes from.
    pub source: ClientSource,
    /// Its metadata, without `client_secret` and `client_secret_expires_at`.
    pub metadata: ClientMetadata,
}

/// Why a client id did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No client is registered under this id (and it is not a metadata document URL, or
    /// documents are off).
    #[error("no client is registered with this client_id")]
    UnknownClient,
    /// The id is a metadata document URL that did not resolve.
    #[error("{0}")]
    Document(CimdError),
    /// The store (or a policy or decision) failed: retry later.
    #[error("client resolution is unavailable: {0}")]
    Unavailable(String),
}

impl From<CimdError> for ResolveError {
    fn from(err: CimdError) -> Self {
        match err {
            CimdError::Unavailable(detail) => ResolveError::Unavailable(detail),
            other => ResolveError::Document(other),
        }
    }
}

/// Resolves client ids. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ClientResolver {
    registrar: Registrar,
    documents: Option<DocumentResolver>,
}

impl ClientResolver {
    /// Resolves registered clients of `registrar` and, with `documents`, metadata documents.
    pub fn new(registrar: Registrar, documents: Option<DocumentResolver>) -> Self {
        Self {
            registrar,
            documents,
        }
    }

    /// The document resolver, when documents are on.
    pub fn documents(&self) -> Option<&DocumentResolver> {
        self.documents.as_ref()
    }

    /// Resolves `client_id`. With documents on, an id starting with `https://` is a
    /// document URL (draft -02 §3); every other id is looked up in the store.
    pub async fn resolve(&self, client_id: &str) -> Result<ResolvedClient, ResolveError> {
        if let Some(documents) = &self.documents
            && is_document_url(client_id)
        {
            let doc = documents.resolve(client_id).await?;
            return Ok(ResolvedClient {
                client_id: doc.client_id,
                source: ClientSource::MetadataDocument,
                metadata: doc.metadata.without_secret(),
            });
        }
        let record = self
            .registrar
            .store()
            .get_client(client_id)
            .await
            .map_err(|e| ResolveError::Unavailable(format!("store: {e}")))?
            .ok_or(ResolveError::UnknownClient)?;
        Ok(ResolvedClient {
            client_id: record.client_id,
            source: ClientSource::Registration,
            metadata: record.metadata.without_secret(),
        })
    }
}
