//! Why a token request's client authentication was refused.

/// A refusal of client authentication. Every variant but [`AuthnError::Unavailable`] is an
/// RFC 6749 §5.2 `invalid_client`; the descriptions say precisely what is wrong without ever
/// echoing a secret or an assertion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthnError {
    /// Credentials were presented in more than one way (RFC 6749 §2.3).
    #[error(
        "client credentials were presented with more than one authentication method ({0}); use exactly one (RFC 6749 section 2.3)"
    )]
    MultipleMethods(String),
    /// The `Authorization` header uses another scheme than `Basic`.
    #[error("the Authorization header must use the Basic scheme for client authentication")]
    UnsupportedScheme,
    /// The `Authorization: Basic` header is malformed.
    #[error("the Authorization header is not valid Basic client authentication: {0}")]
    MalformedBasic(&'static str),
    /// A form parameter is malformed or missing.
    #[error("{0}")]
    MalformedRequest(&'static str),
    /// Nothing identifies the client.
    #[error(
        "no client authentication was presented (no Authorization header, client_id, client_secret or client_assertion)"
    )]
    NoCredentials,
    /// The form's `client_id` names another client than the credentials.
    #[error("client_id does not match the client that the credentials authenticate")]
    ClientIdMismatch,
    /// No such client.
    #[error("no client is registered with this client_id")]
    UnknownClient,
    /// The client id was registered once, then pruned or deleted.
    #[error("this client registration expired or was deleted; register again")]
    RegistrationExpired,
    /// The client id is a metadata document that did not resolve.
    #[error("{0}")]
    Document(String),
    /// The method used is not the client's registered `token_endpoint_auth_method`.
    #[error(
        "the client is registered with token_endpoint_auth_method {registered} but authenticated with {used}"
    )]
    WrongMethod {
        /// The registered method.
        registered: String,
        /// The method the request used.
        used: &'static str,
    },
    /// The client's registered method is not one this server can check.
    #[error("the client's token_endpoint_auth_method {0} is not supported")]
    UnsupportedMethod(String),
    /// The client has no secret to check.
    #[error("the client has no client_secret")]
    NoSecret,
    /// The secret is wrong.
    #[error("the client secret is wrong")]
    WrongSecret,
    /// The secret expired (`client_secret_expires_at`).
    #[error(
        "the client secret expired (client_secret_expires_at {0}); update or register the client again"
    )]
    SecretExpired(i64),
    /// The client assertion was refused.
    #[error("client_assertion refused: {0}")]
    Assertion(String),
    /// The assertion's `jti` was already used.
    #[error("client_assertion refused: its jti was already used (assertions are single use)")]
    Replayed,
    /// No key of the client verifies the assertion.
    #[error("client_assertion refused: {0}")]
    Key(String),
    /// A store, fetch or policy failed on the server side: retry later (not `invalid_client`).
    #[error("client authentication is unavailable: {0}")]
    Unavailable(String),
}

impl AuthnError {
    /// The RFC 6749 §5.2 error code: `invalid_client`, or `temporarily_unavailable` for
    /// [`AuthnError::Unavailable`].
    pub fn error_code(&self) -> &'static str {
        match self {
            AuthnError::Unavailable(_) => "temporarily_unavailable",
            _ => "invalid_client",
        }
    }

    /// Whether this is a refusal of the client (not a server-side failure).
    pub fn is_invalid_client(&self) -> bool {
        !matches!(self, AuthnError::Unavailable(_))
    }
}
