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
    /// 500 `server_error`: the detail is logged, never sent.
    #[error("server_error: {0}")]
    Server(String),
}

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
            RegistrationError::Server(_) => "server_error",
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
            RegistrationError::Server(_) => "the server could not complete the request",
        }
    }
}

impl From<StoreError> for RegistrationError {
    fn from(err: StoreError) -> Self {
        metrics::counter!("dcr_store_errors_total").increment(1);
        RegistrationError::Server(format!("store: {err}"))
    }
}
