//! What policies, factories and audit records see of an HTTP request, as an extractor.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use dcr_core::context::RequestContext;

use crate::AppState;
use crate::ratelimit::client_ip;

/// Headers policies never see.
const HIDDEN_HEADERS: &[header::HeaderName] = &[
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
];

/// The [`RequestContext`] of a request: method, path, client address (through
/// [`HttpOptions::trusted_proxies`](crate::HttpOptions::trusted_proxies)) and, only when the
/// registrar has something that reads them
/// ([`Registrar::reads_request_headers`](dcr_core::Registrar::reads_request_headers)), the
/// headers other than credentials. Never refuses a request.
#[derive(Debug)]
pub(crate) struct Context(pub(crate) RequestContext);

impl FromRequestParts<AppState> for Context {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
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
        Ok(Self(RequestContext {
            method: parts.method.as_str().to_ascii_uppercase(),
            path: parts.uri.path().to_owned(),
            headers,
            client_addr: client_ip(parts, &state.options.trusted_proxies),
            token_label: None,
        }))
    }
}
