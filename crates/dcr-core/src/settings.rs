use crate::token::TokenHash;

/// How the registration endpoint is protected (node-oidc-provider's `initialAccessToken`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum InitialAccessTokenMode {
    /// Open registration: no token needed.
    #[default]
    Open,
    /// One static bearer token, kept as its hash and compared in constant time.
    Static(TokenHash),
    /// Tokens minted by an operator and kept (as hashes) in the store.
    Stored,
}

impl InitialAccessTokenMode {
    /// A static token with this value.
    pub fn static_token(value: &str) -> Self {
        Self::Static(TokenHash::of(value))
    }
}

/// Registrar settings that are not metadata rules.
#[derive(Debug, Clone)]
pub struct RegistrarSettings {
    /// The issuer identifier (used as the `realm` of `WWW-Authenticate` challenges).
    pub issuer: String,
    /// The absolute URL of the registration endpoint; `registration_client_uri` is this
    /// URL followed by `/` and the percent-encoded client id.
    pub registration_endpoint: String,
    /// Whether clients may update (PUT) and delete (DELETE) their registration.
    pub management: bool,
    /// Whether a successful update replaces the registration access token.
    pub rotate_registration_access_token: bool,
    /// How registration is authorised.
    pub initial_access_token: InitialAccessTokenMode,
}

impl RegistrarSettings {
    /// Settings for `issuer` with the registration endpoint at `{issuer}/reg`, management on,
    /// rotation on and open registration.
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        let registration_endpoint = format!("{}/reg", issuer.trim_end_matches('/'));
        Self {
            issuer,
            registration_endpoint,
            management: true,
            rotate_registration_access_token: true,
            initial_access_token: InitialAccessTokenMode::Open,
        }
    }
}
