//! Documents a client points at and the server fetches: `sector_identifier_uri` (a JSON array
//! of redirect URIs) at registration, `jwks_uri` (a JWK Set) at registration only when the
//! operator asks for it.
//!
//! The fetching itself (with its SSRF guard) lives behind [`DocumentFetcher`], implemented by
//! the `dcr-fetch` crate; this module only states what the documents must contain.

use serde_json::Value;
use url::Url;

use super::{ClientMetadata, MetadataError, ServerMetadata, jwks};

/// Why a document could not be fetched. The text is sent to the client, so it says what
/// failed without echoing internals (no resolved addresses, no TLS details).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// Fetches JSON documents on behalf of the registrar.
///
/// Implementations must refuse non-public destinations (loopback, private, link-local, ...),
/// follow no redirects, and bound time and size.
#[async_trait::async_trait]
pub trait DocumentFetcher: Send + Sync + std::fmt::Debug {
    /// GETs `url` and parses the body as JSON. `what` names the document in errors
    /// (`"jwks_uri"`, `"sector_identifier_uri"`).
    async fn fetch_json(&self, url: &Url, what: &str) -> Result<Value, FetchError>;

    /// Checks, without any request, that `url` is a destination [`fetch_json`] would try
    /// (scheme, credentials, a host that is not an internal address or name). Used where a
    /// URL is registered to be fetched later. The default accepts every URL: the fetch itself
    /// still guards.
    ///
    /// [`fetch_json`]: DocumentFetcher::fetch_json
    fn check_destination(&self, _url: &Url, _what: &str) -> Result<(), FetchError> {
        Ok(())
    }
}

/// Checks what validated metadata points at: the JWK Set at `jwks_uri` (same rules as inline
/// `jwks`, and usable for the client's algorithms) and the redirect URI list at
/// `sector_identifier_uri` (RFC: OpenID Connect Registration §5).
///
/// `jwks_uri` is fetched only with [`ServerMetadata::verify_jwks_uri_at_registration`];
/// otherwise its destination is checked ([`DocumentFetcher::check_destination`]) and its keys
/// are fetched when the client authenticates.
///
/// Without a fetcher (`None`), a client that registers either member is refused with
/// `invalid_client_metadata`: this server does not accept what it cannot check.
pub async fn verify_remote(
    metadata: &ClientMetadata,
    fetcher: Option<&dyn DocumentFetcher>,
    server: &ServerMetadata,
) -> Result<(), MetadataError> {
    let jwks_uri = metadata.str("jwks_uri");
    let sector_uri = metadata.str("sector_identifier_uri");
    if jwks_uri.is_none() && sector_uri.is_none() {
        return Ok(());
    }
    let Some(fetcher) = fetcher else {
        let member = if sector_uri.is_some() {
            "sector_identifier_uri"
        } else {
            "jwks_uri"
        };
        return Err(MetadataError::metadata(format!(
            "{member} cannot be used: this server is not configured to fetch remote documents"
        )));
    };
    if let Some(uri) = sector_uri {
        let url = Url::parse(uri).map_err(|_| {
            MetadataError::metadata("sector_identifier_uri must be a valid https uri")
        })?;
        let doc = fetcher
            .fetch_json(&url, "sector_identifier_uri")
            .await
            .map_err(|e| MetadataError::metadata(e.0))?;
        check_sector_document(metadata, &doc)?;
    }
    if let Some(uri) = jwks_uri {
        let url = Url::parse(uri)
            .map_err(|_| MetadataError::metadata("jwks_uri must be a valid https uri"))?;
        fetcher
            .check_destination(&url, "jwks_uri")
            .map_err(|e| MetadataError::metadata(e.0))?;
        if !server.verify_jwks_uri_at_registration {
            return Ok(());
        }
        let doc = fetcher
            .fetch_json(&url, "jwks_uri")
            .await
            .map_err(|e| MetadataError::metadata(e.0))?;
        let label = "the JWK Set at jwks_uri";
        let keys = jwks::check_set(&doc, label).map_err(MetadataError::metadata)?;
        jwks::check_usable(&keys, metadata.as_map(), label).map_err(MetadataError::metadata)?;
    }
    Ok(())
}

/// The rules for the document at `sector_identifier_uri`: a JSON array of strings that holds
/// every registered redirect URI (and `jwks_uri` for pairwise CIBA and device-flow clients).
pub fn check_sector_document(metadata: &ClientMetadata, doc: &Value) -> Result<(), MetadataError> {
    let Some(items) = doc.as_array() else {
        return Err(MetadataError::metadata(
            "sector_identifier_uri must return a single JSON array",
        ));
    };
    let mut listed: Vec<&str> = Vec::with_capacity(items.len());
    for item in items {
        let Some(s) = item.as_str() else {
            return Err(MetadataError::metadata(
                "sector_identifier_uri must return an array of redirect_uri strings",
            ));
        };
        listed.push(s);
    }
    let strings = |k: &str| -> Vec<&str> {
        metadata
            .get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    if !strings("response_types").is_empty()
        && let Some(missing) = strings("redirect_uris")
            .into_iter()
            .find(|r| !listed.contains(r))
    {
        return Err(MetadataError::metadata(format!(
            "all registered redirect_uris must be included in the sector_identifier_uri response ({missing} is missing)"
        )));
    }
    let grants = strings("grant_types");
    if grants
        .iter()
        .any(|g| *g == super::rules::CIBA_GRANT || *g == super::rules::DEVICE_GRANT)
        && let Some(jwks_uri) = metadata.str("jwks_uri")
        && !listed.contains(&jwks_uri)
    {
        return Err(MetadataError::metadata(
            "the client's jwks_uri must be included in the sector_identifier_uri response",
        ));
    }
    Ok(())
}
