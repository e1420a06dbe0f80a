use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::members::{Advertise, MEMBERS};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Optional protocol features. Metadata of a feature that is off is not recognised
/// (dropped from requests), as in node-oidc-provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Features {
    /// RP-initiated logout: `post_logout_redirect_uris`.
    pub rp_initiated_logout: bool,
    /// Pushed authorization requests: `require_pushed_authorization_requests`.
    pub pushed_authorization_requests: bool,
    /// Force `require_pushed_authorization_requests = true` on every client.
    pub require_pushed_authorization_requests: bool,
    /// DPoP: `dpop_bound_access_tokens`.
    pub dpop: bool,
    /// Back-channel logout: `backchannel_logout_uri`, `backchannel_logout_session_required`.
    pub backchannel_logout: bool,
    /// Request objects: `request_object_signing_alg`, `require_signed_request_object`.
    pub request_objects: bool,
    /// Force `require_signed_request_object = true` on every client.
    pub require_signed_request_object: bool,
    /// JWT user info responses: `userinfo_signed_response_alg`.
    pub jwt_userinfo: bool,
    /// JWT introspection responses: `introspection_signed_response_alg`.
    pub jwt_introspection: bool,
    /// JWT secured authorization responses (JARM): `authorization_signed_response_alg`.
    pub jwt_response_modes: bool,
    /// Encrypted responses and request objects: the `*_encrypted_*` members.
    pub encryption: bool,
    /// mTLS client authentication: `tls_client_auth_*` members.
    pub mtls_client_auth: bool,
    /// mTLS certificate-bound access tokens: `tls_client_certificate_bound_access_tokens`.
    pub mtls_certificate_bound_access_tokens: bool,
    /// Client-initiated back-channel authentication (CIBA): `backchannel_token_delivery_mode`,
    /// `backchannel_client_notification_endpoint`, `backchannel_user_code_parameter` and, with
    /// `request_objects`, `backchannel_authentication_request_signing_alg`.
    pub ciba: bool,
    /// Rich authorization requests (RFC 9396): `authorization_details_types`.
    pub rich_authorization_requests: bool,
    /// With pushed authorization requests: a client that requires PAR and authenticates at the
    /// token endpoint may register `"redirect_uris": []` (its redirect URIs come with each request).
    pub allow_unregistered_redirect_uris: bool,
    /// OpenID Connect RP Metadata Choices 1.0: a client may offer preference lists such as
    /// `token_endpoint_auth_methods_supported`; the first supported value becomes the target
    /// member (`token_endpoint_auth_method`) and the list itself is not stored.
    pub rp_metadata_choices: bool,
}

impl Default for Features {
    fn default() -> Self {
        Self {
            rp_initiated_logout: true,
            pushed_authorization_requests: true,
            require_pushed_authorization_requests: false,
            dpop: true,
            backchannel_logout: false,
            request_objects: false,
            require_signed_request_object: false,
            jwt_userinfo: false,
            jwt_introspection: false,
            jwt_response_modes: false,
            encryption: false,
            mtls_client_auth: false,
            mtls_certificate_bound_access_tokens: false,
            ciba: false,
            rich_authorization_requests: false,
            allow_unregistered_redirect_uris: false,
            rp_metadata_choices: false,
        }
    }
}

/// What the server supports: the single source of truth for both discovery and validation,
/// so what is advertised is exactly what is accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerMetadata {
    /// `grant_types` a client may register.
    pub grant_types_supported: Vec<String>,
    /// `response_types` a client may register (space-separated combinations, any order).
    pub response_types_supported: Vec<String>,
    /// `response_modes` a client may register.
    pub response_modes_supported: Vec<String>,
    /// `token_endpoint_auth_method` values.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `token_endpoint_auth_signing_alg` values (HS* for `client_secret_jwt`, others for `private_key_jwt`).
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// `id_token_signed_response_alg` values.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// `userinfo_signed_response_alg` values (feature `jwt_userinfo`).
    pub userinfo_signing_alg_values_supported: Vec<String>,
    /// `introspection_signed_response_alg` values (feature `jwt_introspection`).
    pub introspection_signing_alg_values_supported: Vec<String>,
    /// `authorization_signed_response_alg` values (feature `jwt_response_modes`).
    pub authorization_signing_alg_values_supported: Vec<String>,
    /// `request_object_signing_alg` values (feature `request_objects`).
    pub request_object_signing_alg_values_supported: Vec<String>,
    /// Key-management algorithms for encrypted responses (feature `encryption`).
    pub encryption_alg_values_supported: Vec<String>,
    /// Content-encryption algorithms for encrypted responses (feature `encryption`).
    pub encryption_enc_values_supported: Vec<String>,
    /// `request_object_encryption_alg` values (features `request_objects` and `encryption`).
    pub request_object_encryption_alg_values_supported: Vec<String>,
    /// `request_object_encryption_enc` values (features `request_objects` and `encryption`).
    pub request_object_encryption_enc_values_supported: Vec<String>,
    /// `backchannel_token_delivery_mode` values (feature `ciba`; only `poll` and `ping` exist here).
    pub backchannel_token_delivery_modes_supported: Vec<String>,
    /// `backchannel_authentication_request_signing_alg` values (features `ciba` and
    /// `request_objects`; symmetric algorithms are never accepted).
    pub backchannel_authentication_request_signing_alg_values_supported: Vec<String>,
    /// `authorization_details_types` values (feature `rich_authorization_requests`).
    pub authorization_details_types_supported: Vec<String>,
    /// `subject_type` values.
    pub subject_types_supported: Vec<String>,
    /// Scope values a client may register in `scope`.
    pub scopes_supported: Vec<String>,
    /// `default_acr_values` members; empty means a client may not register any.
    pub acr_values_supported: Vec<String>,
    /// When a client sends no `application_type`, infer it from its redirect URIs: `native`
    /// when all are loopback `http` or private-use schemes (RFC 8252 §7), `web` otherwise.
    /// Off by default (OpenID Connect Registration §2: the default is `web`).
    pub infer_application_type: bool,
    /// Optional features.
    pub features: Features,
    /// Defaults applied to every client, over the built-in ones.
    pub client_defaults: Map<String, Value>,
    /// Extra metadata members kept verbatim (unknown members are otherwise dropped).
    pub extra_metadata: Vec<String>,
    /// Issuers whose software statements (RFC 7591 §2.3) are trusted. Empty: the server
    /// does not use software statements and ignores one a request carries (RFC 7591 §3.1.1).
    pub software_statement_issuers: Vec<SoftwareStatementIssuer>,
    /// The oldest software statement accepted, in seconds since its `iat`; 0 means no age limit
    /// (an `exp` in the past is refused either way).
    pub software_statement_max_age_seconds: u64,
    /// FOR TESTS ONLY: accept `http` in `jwks_uri` and `sector_identifier_uri` (the fetcher
    /// must also be told to allow it). Never read from configuration files.
    #[serde(skip)]
    pub allow_http_document_uris_for_tests: bool,
    /// Fetch the JWK Set at a client's `jwks_uri` at registration and refuse the client when
    /// it cannot be fetched or holds no usable key (the server's `[fetch]
    /// verify_jwks_uri_at_registration`). Off: only the URI's form and host are checked, and
    /// the keys are fetched when the client authenticates.
    #[serde(skip)]
    pub verify_jwks_uri_at_registration: bool,
}

/// A trusted issuer of software statements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SoftwareStatementIssuer {
    /// The `iss` claim of its statements.
    pub issuer: String,
    /// Its public keys, as an inline JWK Set.
    pub jwks: Option<Value>,
    /// Where its public keys are published (fetched through the registrar's fetcher).
    pub jwks_uri: Option<String>,
    /// The JWS algorithms it signs with (`RS256`, `PS256`, `ES256`, `EdDSA`, ...); never `none`
    /// and never a symmetric `HS*` one.
    pub algorithms: Vec<String>,
}

impl Default for ServerMetadata {
    fn default() -> Self {
        Self {
            grant_types_supported: strings(&["authorization_code", "implicit", "refresh_token"]),
            response_types_supported: strings(&["code id_token", "code", "id_token", "none"]),
            response_modes_supported: strings(&["query", "fragment", "form_post"]),
            token_endpoint_auth_methods_supported: strings(&[
                "client_secret_basic",
                "client_secret_jwt",
                "client_secret_post",
                "private_key_jwt",
                "none",
            ]),
            token_endpoint_auth_signing_alg_values_supported: strings(&[
                "HS256", "RS256", "PS256", "ES256", "EdDSA",
            ]),
            id_token_signing_alg_values_supported: strings(&["RS256", "PS256", "ES256", "EdDSA"]),
            userinfo_signing_alg_values_supported: strings(&["RS256", "PS256", "ES256", "EdDSA"]),
            introspection_signing_alg_values_supported: strings(&[
                "RS256", "PS256", "ES256", "EdDSA",
            ]),
            authorization_signing_alg_values_supported: strings(&[
                "RS256", "PS256", "ES256", "EdDSA",
            ]),
            request_object_signing_alg_values_supported: strings(&[
                "HS256", "RS256", "PS256", "ES256", "EdDSA",
            ]),
            encryption_alg_values_supported: strings(&[
                "A128KW",
                "A256KW",
                "ECDH-ES",
                "RSA-OAEP",
                "RSA-OAEP-256",
                "dir",
            ]),
            encryption_enc_values_supported: strings(&[
                "A128CBC-HS256",
                "A128GCM",
                "A256CBC-HS512",
                "A256GCM",
            ]),
            request_object_encryption_alg_values_supported: strings(&["A128KW", "A256KW", "dir"]),
            request_object_encryption_enc_values_supported: strings(&[
                "A128CBC-HS256",
                "A128GCM",
                "A256CBC-HS512",
                "A256GCM",
            ]),
            backchannel_token_delivery_modes_supported: strings(&["poll", "ping"]),
            backchannel_authentication_request_signing_alg_values_supported: strings(&[
                "RS256", "PS256", "ES256", "EdDSA",
            ]),
            authorization_details_types_supported: Vec::new(),
            subject_types_supported: strings(&["public"]),
            scopes_supported: strings(&["openid", "offline_access"]),
            acr_values_supported: Vec::new(),
            infer_application_type: false,
            features: Features::default(),
            client_defaults: Map::new(),
            extra_metadata: Vec::new(),
            software_statement_issuers: Vec::new(),
            software_statement_max_age_seconds: 0,
            allow_http_document_uris_for_tests: false,
            verify_jwks_uri_at_registration: false,
        }
    }
}

impl ServerMetadata {
    /// The discovery members (RFC 8414 §2 / OpenID Connect Discovery 1.0 §3) that describe
    /// what registration accepts: the supported-value list and the boolean flag of every
    /// recognised member of the member table.
    pub fn discovery_members(&self) -> Map<String, Value> {
        let mut m = Map::new();
        for member in MEMBERS.iter().filter(|x| (x.on)(&self.features)) {
            if let Some(supported) = member.supported {
                let values = (supported.values)(self);
                let advertised: Option<Vec<String>> = match supported.advertise {
                    Advertise::Always => Some(values.to_vec()),
                    Advertise::IfNonEmpty => (!values.is_empty()).then(|| values.to_vec()),
                    Advertise::Asymmetric => Some(
                        values
                            .iter()
                            .filter(|a| !a.starts_with("HS") && a.as_str() != "none")
                            .cloned()
                            .collect(),
                    ),
                };
                if let Some(advertised) = advertised {
                    m.insert(supported.key.to_owned(), Value::from(advertised));
                }
            }
            if let Some((key, when)) = member.flag
                && when(&self.features)
            {
                m.insert(key.to_owned(), Value::Bool(true));
            }
        }
        m
    }
}
