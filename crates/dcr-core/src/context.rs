use std::net::IpAddr;

/// The request that triggered a registration operation, as policies and hooks see it.
///
/// It carries no HTTP types: the HTTP layer fills it in.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// Upper-case request method (`POST`, `PUT`, ...).
    pub method: String,
    /// Request path without the query string.
    pub path: String,
    /// Request headers: lower-case names, repeated headers joined with `", "`.
    /// `authorization` and `cookie` are never included. Empty when nothing configured can
    /// read them (see [`crate::Registrar::reads_request_headers`]).
    pub headers: Vec<(String, String)>,
    /// Address of the client, when known.
    pub client_addr: Option<IpAddr>,
    /// Label of the initial access token that authorised the request, when there is one.
    pub token_label: Option<String>,
}

impl RequestContext {
    /// The value of the header `name` (lower-case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}
