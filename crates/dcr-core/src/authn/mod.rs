//! Client authentication for the host authorization server's token endpoint (RFC 6749 §2.3,
//! RFC 7523 §2.2 and §3, OpenID Connect Core §9): one call from what a token request carried
//! (its `Authorization` header and form parameters) to the authenticated client, or a precise
//! `invalid_client` refusal. No HTTP types: the host passes the header value and the form.
//!
//! ```
//! # use std::{collections::HashMap, sync::Arc};
//! # use dcr_core::authn::{Authenticator, AuthnError, ClientCredentials, ClientLookup, MemoryReplayStore};
//! # use dcr_core::{metadata::ClientMetadata, resolve::ClientSource};
//! # #[derive(Debug)] struct One;
//! # #[async_trait::async_trait]
//! # impl ClientLookup for One {
//! #     async fn lookup(&self, id: &str) -> Result<ClientCredentials, AuthnError> {
//! #         let m = serde_json::json!({"client_id": id, "client_secret": "s3cret"});
//! #         Ok(ClientCredentials::from_metadata(id, ClientSource::Registration,
//! #             ClientMetadata::from_trusted(m.as_object().unwrap().clone())))
//! #     }
//! # }
//! # tokio_test(async {
//! let authn = Authenticator::builder(Arc::new(One), Arc::new(MemoryReplayStore::new())).build();
//! let audiences = ["https://as.example.com/token".to_owned()];
//! // "Basic " + base64("app:s3cret")
//! let client = authn
//!     .authenticate(Some("Basic YXBwOnMzY3JldA=="), &HashMap::new(), &audiences)
//!     .await
//!     .unwrap();
//! assert_eq!(client.method.as_str(), "client_secret_basic");
//! # });
//! # fn tokio_test(f: impl std::future::Future<Output = ()>) {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

mod assertion;
mod credentials;
mod error;
mod jwks;
mod lookup;
mod redirect;
mod replay;
mod usage;

#[cfg(test)]
mod lookup_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use credentials::JWT_BEARER_ASSERTION_TYPE;
pub use error::AuthnError;
pub use lookup::{ClientCredentials, ClientLookup, RegistryLookup};
pub use redirect::{redirect_uri_allowed, redirect_uri_matches};
pub use replay::{AssertionReplayStore, MemoryReplayStore};
pub use usage::{ClientUsageStore, MemoryUsageStore, UsageRecorder};

use assertion::{ClaimRules, JwtMethod};
use credentials::Presented;

use crate::clock::{Clock, SystemClock};
use crate::metadata::{ClientMetadata, DocumentFetcher};
use crate::resolve::ClientSource;
use crate::token::ct_str_eq;

/// A client authentication method (RFC 7591 §2 `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// RFC 6749 §2.3.1, HTTP Basic.
    ClientSecretBasic,
    /// RFC 6749 §2.3.1, in the form.
    ClientSecretPost,
    /// RFC 7523, HMAC with the client secret.
    ClientSecretJwt,
    /// RFC 7523, signed with the client's private key.
    PrivateKeyJwt,
    /// A public client: its id and no credentials.
    None,
}

impl AuthMethod {
    /// The registered name of the method.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::ClientSecretJwt => "client_secret_jwt",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }
}

/// An authenticated client.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthenticatedClient {
    /// Its client id.
    pub client_id: String,
    /// Where it comes from.
    pub source: ClientSource,
    /// How it authenticated (its registered `token_endpoint_auth_method`).
    pub method: AuthMethod,
    /// Its metadata, without `client_secret` and `client_secret_expires_at`.
    pub metadata: ClientMetadata,
}

/// Limits of client authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthnSettings {
    /// Longest `client_assertion` accepted, in bytes.
    pub max_assertion_bytes: usize,
    /// Latest `exp` accepted, in seconds from now.
    pub max_assertion_lifetime_seconds: i64,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub clock_skew_seconds: i64,
    /// How long keys fetched from a `jwks_uri` are kept.
    pub jwks_cache_seconds: u64,
    /// Shortest time between two fetches of a `jwks_uri` for an unknown `kid`.
    pub jwks_refetch_interval_seconds: u64,
}

impl Default for AuthnSettings {
    fn default() -> Self {
        Self {
            max_assertion_bytes: 8192,
            max_assertion_lifetime_seconds: 600,
            clock_skew_seconds: 30,
            jwks_cache_seconds: 300,
            jwks_refetch_interval_seconds: 60,
        }
    }
}

/// Builds an [`Authenticator`].
#[derive(Debug)]
pub struct AuthenticatorBuilder {
    lookup: Arc<dyn ClientLookup>,
    replay: Arc<dyn AssertionReplayStore>,
    fetcher: Option<Arc<dyn DocumentFetcher>>,
    settings: AuthnSettings,
    clock: Arc<dyn Clock>,
    usage: Option<UsageRecorder>,
}

impl AuthenticatorBuilder {
    /// Fetches `jwks_uri` with `fetcher` (the SSRF-guarded `dcr-fetch` fetcher); without one,
    /// clients with a `jwks_uri` cannot use `private_key_jwt`.
    pub fn fetcher(mut self, fetcher: Arc<dyn DocumentFetcher>) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// Replaces the default limits.
    pub fn settings(mut self, settings: AuthnSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Replaces the system clock (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Records every successful authentication with `usage`.
    pub fn usage(mut self, usage: UsageRecorder) -> Self {
        self.usage = Some(usage);
        self
    }

    /// The authenticator.
    pub fn build(self) -> Authenticator {
        let jwks = jwks::JwksCache::new(
            self.fetcher,
            Duration::from_secs(self.settings.jwks_cache_seconds),
            Duration::from_secs(self.settings.jwks_refetch_interval_seconds),
        );
        Authenticator {
            inner: Arc::new(Inner {
                lookup: self.lookup,
                replay: self.replay,
                jwks,
                inline_keys: jwks::InlineKeys::new(INLINE_KEY_SETS),
                settings: self.settings,
                clock: self.clock,
                usage: self.usage,
            }),
        }
    }
}

/// Authenticates clients at a token endpoint. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    lookup: Arc<dyn ClientLookup>,
    replay: Arc<dyn AssertionReplayStore>,
    jwks: jwks::JwksCache,
    /// The keys of clients' `jwks` members, decoded once.
    inline_keys: jwks::InlineKeys,
    settings: AuthnSettings,
    clock: Arc<dyn Clock>,
    usage: Option<UsageRecorder>,
}

impl Authenticator {
    /// An authenticator finding clients with `lookup` and keeping assertion `jti`s in `replay`.
    pub fn builder(
        lookup: Arc<dyn ClientLookup>,
        replay: Arc<dyn AssertionReplayStore>,
    ) -> AuthenticatorBuilder {
        AuthenticatorBuilder {
            lookup,
            replay,
            fetcher: None,
            settings: AuthnSettings::default(),
            clock: Arc::new(SystemClock),
            usage: None,
        }
    }

    /// The limits in force.
    pub fn settings(&self) -> &AuthnSettings {
        &self.inner.settings
    }

    /// Authenticates the client of a token request: `authorization` is its `Authorization`
    /// header value, `params` its form parameters (`client_id`, `client_secret`,
    /// `client_assertion_type`, `client_assertion`; others are ignored) and `audiences` the
    /// values this server accepts as an assertion's `aud` (its token endpoint URL and its
    /// issuer identifier).
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        params: &HashMap<String, String>,
        audiences: &[String],
    ) -> Result<AuthenticatedClient, AuthnError> {
        let inner = &self.inner;
        let presented =
            credentials::parse(authorization, params, inner.settings.max_assertion_bytes)?;
        let now = inner.clock.now();
        let (client_id, peeked) = match &presented {
            Presented::Basic { client_id, .. }
            | Presented::Post { client_id, .. }
            | Presented::None { client_id } => (client_id.clone(), None),
            Presented::Assertion {
                client_id,
                assertion,
            } => {
                let peeked = assertion::peek(assertion.expose())?;
                let id = match (client_id, peeked.claims.get("sub").and_then(|s| s.as_str())) {
                    (Some(id), _) => id.clone(),
                    (None, Some(sub)) if !sub.is_empty() => sub.to_owned(),
                    _ => {
                        return Err(AuthnError::Assertion(
                            "it has no sub and the request has no client_id".into(),
                        ));
                    }
                };
                (id, Some(peeked))
            }
        };
        if client_id.contains('\0') {
            // No store keeps such an id (and some cannot even be asked about it).
            return Err(AuthnError::UnknownClient);
        }
        let creds = inner.lookup.lookup(&client_id).await?;
        let metadata = &creds.client.metadata;
        let registered = metadata
            .str("token_endpoint_auth_method")
            .unwrap_or("client_secret_basic");
        let method = match (&presented, &peeked) {
            (Presented::Basic { .. }, _) => AuthMethod::ClientSecretBasic,
            (Presented::Post { .. }, _) => AuthMethod::ClientSecretPost,
            (Presented::None { .. }, _) => AuthMethod::None,
            (Presented::Assertion { .. }, _) if registered == "private_key_jwt" => {
                AuthMethod::PrivateKeyJwt
            }
            (Presented::Assertion { .. }, Some(p)) if registered != "client_secret_jwt" => {
                // Name the method the assertion looks like, for the refusal below.
                if p.alg.to_ascii_uppercase().starts_with("HS") {
                    AuthMethod::ClientSecretJwt
                } else {
                    AuthMethod::PrivateKeyJwt
                }
            }
            (Presented::Assertion { .. }, _) => AuthMethod::ClientSecretJwt,
        };
        if registered != method.as_str() {
            if !KNOWN_METHODS.contains(&registered) {
                return Err(AuthnError::UnsupportedMethod(
                    registered.chars().take(64).collect(),
                ));
            }
            return Err(AuthnError::WrongMethod {
                registered: registered.to_owned(),
                used: method.as_str(),
            });
        }
        match (&presented, peeked) {
            (Presented::Basic { secret, .. } | Presented::Post { secret, .. }, _) => {
                let expected = self.usable_secret(&creds, now)?;
                if !ct_str_eq(expected, secret.expose()) {
                    return Err(AuthnError::WrongSecret);
                }
            }
            (Presented::Assertion { assertion, .. }, Some(peeked)) => {
                self.check_assertion(&creds, method, assertion.expose(), &peeked, audiences, now)
                    .await?;
            }
            _ => {}
        }
        if let Some(usage) = &inner.usage {
            usage.record(&client_id, creds.client.source, now).await;
        }
        Ok(AuthenticatedClient {
            client_id: creds.client.client_id,
            source: creds.client.source,
            method,
            metadata: creds.client.metadata,
        })
    }

    fn usable_secret<'a>(
        &self,
        creds: &'a ClientCredentials,
        now: i64,
    ) -> Result<&'a str, AuthnError> {
        let secret = creds.secret.as_ref().ok_or(AuthnError::NoSecret)?;
        if let Some(exp) = creds.secret_expires_at.filter(|e| *e > 0)
            && now >= exp
        {
            return Err(AuthnError::SecretExpired(exp));
        }
        Ok(secret.expose())
    }

    async fn check_assertion(
        &self,
        creds: &ClientCredentials,
        method: AuthMethod,
        assertion: &str,
        peeked: &assertion::Peeked,
        audiences: &[String],
        now: i64,
    ) -> Result<(), AuthnError> {
        let inner = &self.inner;
        let metadata = &creds.client.metadata;
        let jwt_method = if method == AuthMethod::PrivateKeyJwt {
            JwtMethod::PrivateKey
        } else {
            JwtMethod::ClientSecret
        };
        let alg = assertion::check_alg(
            jwt_method,
            peeked,
            metadata.str("token_endpoint_auth_signing_alg"),
        )?;
        match jwt_method {
            JwtMethod::ClientSecret => {
                let secret = self.usable_secret(creds, now)?;
                assertion::verify_hmac(assertion, alg, secret)?;
            }
            JwtMethod::PrivateKey => {
                self.verify_private_key(&creds.client.client_id, metadata, assertion, alg, peeked)
                    .await?
            }
        }
        let checked = assertion::check_claims(
            &peeked.claims,
            &ClaimRules {
                client_id: &creds.client.client_id,
                audiences,
                now,
                skew: inner.settings.clock_skew_seconds,
                max_lifetime: inner.settings.max_assertion_lifetime_seconds,
            },
        )?;
        let until = checked
            .exp
            .saturating_add(inner.settings.clock_skew_seconds);
        match inner
            .replay
            .record_jti(&creds.client.client_id, &checked.jti, until, now)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(AuthnError::Replayed),
            Err(e) => Err(AuthnError::Unavailable(format!("store: {e}"))),
        }
    }

    async fn verify_private_key(
        &self,
        client_id: &str,
        metadata: &ClientMetadata,
        assertion: &str,
        alg: jsonwebtoken::Algorithm,
        peeked: &assertion::Peeked,
    ) -> Result<(), AuthnError> {
        let kid = peeked.kid.as_deref();
        let unknown = || {
            AuthnError::Key(match kid {
                Some(_) => "no key of the client has its kid and fits its alg".to_owned(),
                None => "no key of the client fits its alg".to_owned(),
            })
        };
        if let Some(set) = metadata.get("jwks") {
            let keys = self.inner.inline_keys.get(client_id, set).await;
            return assertion::verify_public(assertion, alg, &keys, kid)?
                .then_some(())
                .ok_or_else(unknown);
        }
        let Some(uri) = metadata.str("jwks_uri") else {
            return Err(AuthnError::Key(
                "the client has neither jwks nor jwks_uri".into(),
            ));
        };
        let keys = self.inner.jwks.get(uri).await.map_err(AuthnError::Key)?;
        if assertion::verify_public(assertion, alg, &keys, kid)? {
            return Ok(());
        }
        // An unknown kid: the client may have rotated its keys.
        if self.inner.jwks.refresh(uri).await {
            let keys = self.inner.jwks.get(uri).await.map_err(AuthnError::Key)?;
            if assertion::verify_public(assertion, alg, &keys, kid)? {
                return Ok(());
            }
        }
        Err(unknown())
    }
}

/// The most clients whose `jwks` keys are kept decoded.
const INLINE_KEY_SETS: u64 = 10_000;

/// The methods [`Authenticator::authenticate`] checks.
const KNOWN_METHODS: [&str; 5] = [
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "none",
];
