//! Client ID Metadata Documents: the fetch the resolver needs (headers for freshness, a JSON
//! content type, a small size cap), and trust roots added to the system's.

use std::time::SystemTime;

use dcr_core::cimd::{FetchedDocument, MetadataDocumentFetcher};
use dcr_core::metadata::FetchError;
use http_cache_semantics::{CacheOptions, CachePolicy};
use url::Url;

use crate::{BuildError, Fetcher, FetcherConfig};

/// How the document is named in errors.
const WHAT: &str = "the document";

impl Fetcher {
    /// A fetcher that also trusts the certificates in `pem_bundles` (each one PEM text with
    /// one or more certificates), in addition to the system's roots, for every fetch.
    pub fn with_root_certificates(
        config: FetcherConfig,
        pem_bundles: &[Vec<u8>],
    ) -> Result<Self, BuildError> {
        let mut certs = Vec::new();
        for pem in pem_bundles {
            certs.extend(reqwest::Certificate::from_pem_bundle(pem)?);
        }
        Self::build(config, certs)
    }
}

/// Whether a `Content-Type` value is JSON: `application/json` or `application/*+json`.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// The freshness lifetime RFC 9111 gives the response (a private cache: `private` is fine,
/// `s-maxage` is not ours; `no-store` / `no-cache` give none).
fn freshness(url: &Url, response: &reqwest::Response) -> Option<std::time::Duration> {
    let request = http::Request::get(url.as_str()).body(()).ok()?;
    let mut head = http::Response::builder().status(response.status().as_u16());
    for name in ["cache-control", "expires", "date", "age", "pragma"] {
        for value in response.headers().get_all(name) {
            head = head.header(name, value.as_bytes());
        }
    }
    let head = head.body(()).ok()?;
    let options = CacheOptions {
        shared: false,
        cache_heuristic: 0.0,
        immutable_min_time_to_live: std::time::Duration::ZERO,
        ..CacheOptions::default()
    };
    let now = SystemTime::now();
    let policy = CachePolicy::new_options(&request, &head, now, options);
    if !policy.is_storable() {
        return None;
    }
    Some(policy.time_to_live(now))
}

#[async_trait::async_trait]
impl MetadataDocumentFetcher for Fetcher {
    async fn fetch_document(
        &self,
        url: &Url,
        max_bytes: usize,
    ) -> Result<FetchedDocument, FetchError> {
        let response = self.get_ok(url, WHAT).await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !is_json(content_type) {
            return Err(FetchError(format!(
                "{WHAT} was served as {content_type:?}, expected application/json"
            )));
        }
        let freshness = freshness(url, &response);
        let body = Self::read_body(response, WHAT, max_bytes, || {
            FetchError(format!("{WHAT} is larger than {max_bytes} bytes"))
        })
        .await?;
        Ok(FetchedDocument { body, freshness })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/oauth-client+json",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in ["text/html", "", "application/jsonp", "text/json"] {
            assert!(!is_json(bad), "{bad}");
        }
    }

    #[test]
    fn bad_pem_is_a_build_error() {
        let err = Fetcher::with_root_certificates(
            FetcherConfig::default(),
            &[b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".to_vec()],
        );
        assert!(err.is_err());
    }
}
