use crate::store::StoreError;

/// Why a presented token was refused. Only used for logs: the wire says `invalid_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// No token was presented.
    Missing,
    /// The token is unknown, expired, revoked or used up.
    Unknown,
    /// The token belongs to another client or to no client (it has been revoked).
    ClientMismatch,
    /// The token came with a scheme other than `Bearer`.
    WrongScheme,
    /// The token came in the query string, which these endpoints do not accept.
    InQuery,
}

impl TokenProblem {
    /// The `error_description` sent for this problem.
    pub fn description(self) -> &'static str {
        match self {
            TokenProblem::Missing => "no access token provided",
            TokenProblem::Unknown | TokenProblem::ClientMismatch => "invalid token provided",
            TokenProblem::WrongScheme => "the access token must be sent with the Bearer scheme",
            TokenProblem::InQuery => {
                "access tokens are not accepted in the query string; send them in the Authorization header"
            }
        }
    }
}

/// Everything a registration operation can fail with.
///
/// Each variant maps to one RFC 7591 / RFC 7592 / RFC 6750 error code; the HTTP layer
/// decides status codes and headers from [`RegistrationError::code`].
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// 400 `invalid_request`: the request is malformed.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// 400 `invalid_client_metadata`.
    #[error("invalid_client_metadata: {0}")]
    InvalidClientMetadata(String),
    /// 400 `invalid_redirect_uri`.
    #[error("invalid_redirect_uri: {0}")]
    InvalidRedirectUri(String),
    /// 400 `invalid_software_statement`.
    #[error("invalid_software_statement: {0}")]
    InvalidSoftwareStatement(String),
    /// 400 `unapproved_software_statement`.
    #[error("unapproved_software_statement: {0}")]
    UnapprovedSoftwareStatement(String),
    /// 401 `invalid_token`.
    #[error("invalid_token: {0:?}")]
    InvalidToken(TokenProblem),
    /// 500 `server_error`: the detail (and its cause) is logged, never sent.
    #[error("server_error: {detail}")]
    Server {
        /// What failed, for operators.
        detail: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// 500 `server_error`: the store failed; the cause is logged, never sent.
    #[error("server_error: store: {0}")]
    Store(#[from] StoreError),
}

/// Any error, kept as the cause of another.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl RegistrationError {
    /// The RFC error code (`error` member of the response).
    pub fn code(&self) -> &'static str {
        match self {
            RegistrationError::InvalidRequest(_) => "invalid_request",
            RegistrationError::InvalidClientMetadata(_) => "invalid_client_metadata",
            RegistrationError::InvalidRedirectUri(_) => "invalid_redirect_uri",
            RegistrationError::InvalidSoftwareStatement(_) => "invalid_software_statement",
            RegistrationError::UnapprovedSoftwareStatement(_) => "unapproved_software_statement",
            RegistrationError::InvalidToken(_) => "invalid_token",
            RegistrationError::Server { .. } | RegistrationError::Store(_) => "server_error",
        }
    }

    /// The `error_description` a client may see.
    pub fn description(&self) -> &str {
        match self {
            RegistrationError::InvalidRequest(d)
            | RegistrationError::InvalidClientMetadata(d)
            | RegistrationError::InvalidRedirectUri(d)
            | RegistrationError::InvalidSoftwareStatement(d)
            | RegistrationError::UnapprovedSoftwareStatement(d) => d,
            RegistrationError::InvalidToken(p) => p.description(),
            RegistrationError::Server { .. } | RegistrationError::Store(_) => {
                "the server could not complete the request"
            }
        }
    }
}

impl RegistrationError {
    /// A `server_error` with no underlying error.
    pub fn server(detail: impl Into<String>) -> Self {
        RegistrationError::Server {
            detail: detail.into(),
            source: None,
        }
    }

    /// A `server_error` caused by `source`.
    pub fn server_caused_by(detail: impl Into<String>, source: impl Into<BoxError>) -> Self {
        RegistrationError::Server {
            detail: detail.into(),
            source: Some(source.into()),
        }
    }

    /// Whether this is a `server_error` (500): the server failed, the client did nothing wrong.
    pub fn is_server_error(&self) -> bool {
        matches!(
            self,
            RegistrationError::Server { .. } | RegistrationError::Store(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn store_errors_keep_their_cause() {
        let io = std::io::Error::other("disk on fire");
        let err = RegistrationError::from(StoreError::backend(io));
        assert_eq!(err.code(), "server_error");
        assert!(err.is_server_error());
        let store = err.source().expect("the store error is the source");
        let io = store.source().expect("the backend error is kept");
        assert!(io.downcast_ref::<std::io::Error>().is_some(), "{io:?}");
        assert_eq!(io.to_string(), "disk on fire");
        assert_eq!(
            err.description(),
            "the server could not complete the request"
        );
    }

    #[test]
    fn server_errors_keep_their_cause() {
        let err = RegistrationError::server_caused_by("policy p", std::io::Error::other("boom"));
        assert_eq!(err.to_string(), "server_error: policy p");
        assert_eq!(
            err.source().map(ToString::to_string).as_deref(),
            Some("boom")
        );
        assert!(RegistrationError::server("x").source().is_none());
    }
}
