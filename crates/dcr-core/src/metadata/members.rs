//! The member table: one row per client metadata member the server knows, saying everything
//! about it in one place — its JSON kind, the feature that makes it recognised, its default,
//! where its allowed values come from (and under which discovery member they are advertised),
//! its URI rule, whether it may be language-tagged, and whether it implies a client secret.
//!
//! The recognised set, the defaults, the discovery lists, the allowed-value checks, the
//! RP Metadata Choices lists and the secret rule are all derived from [`MEMBERS`].
//!
//! (Over 600 lines on purpose: the table is one list, one row per member, so that a member is
//! read and changed in one place.)
//!
//! Sources: RFC 7591 §2 (client metadata), OpenID Connect Dynamic Client Registration 1.0 §2,
//! RFC 8705 §2 (mTLS), RFC 9449 §5.2 (DPoP), RFC 9126 §6 (PAR), RFC 9101 §10.2 (request
//! objects), RFC 9396 §10 (RAR), OpenID Connect RP-Initiated Logout 1.0 §3.1, Back-Channel
//! Logout 1.0 §2.2, CIBA Core 1.0 §4, JWT Response for OAuth Token Introspection §6, JARM §3,
//! OpenID Connect RP Metadata Choices 1.0 §2.

use std::sync::LazyLock;

use super::server::{Features, ServerMetadata};

/// The JSON kind of a member's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A non-empty string.
    Str,
    /// An array of non-empty strings (de-duplicated).
    StrArray,
    /// A boolean.
    Bool,
    /// A non-negative integer no larger than 2^53 - 1.
    Int,
    /// A JSON object (checked by its own rule).
    Object,
    /// Server-managed: kept as given by the server.
    Any,
}

/// A member's built-in default (the operator's `client_defaults` come on top).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Default {
    /// None.
    None,
    /// A string.
    Str(&'static str),
    /// A boolean.
    Bool(bool),
    /// An array of strings (possibly empty).
    Strs(&'static [&'static str]),
    /// `subject_type`: `pairwise` when it is the only type the server supports, else `public`.
    SubjectType,
}

/// Which values of a server list a member may take.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Keep {
    /// Every listed value.
    All,
    /// Every listed value but `none` (signed responses are signed).
    NotNone,
    /// Asymmetric JWS algorithms only (CIBA Core §4: signed authentication requests).
    AsymmetricJws,
    /// `poll` and `ping` (the delivery modes this server implements).
    PollOrPing,
    /// By the client's `token_endpoint_auth_method` (OpenID Connect Core §9): `HS*` for
    /// `client_secret_jwt`, asymmetric for `private_key_jwt`, nothing for other methods.
    ByAuthMethod,
}

/// How the discovery document advertises a server list.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Advertise {
    /// As configured.
    Always,
    /// As configured, only when it is not empty.
    IfNonEmpty,
    /// Without symmetric (`HS*`) algorithms and `none`.
    Asymmetric,
}

/// The server list a member's values come from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Supported {
    /// The discovery member that advertises the list (RFC 8414 §2, OpenID Connect Discovery
    /// 1.0 §3); for a choice, also the client's preference list (RP Metadata Choices §2).
    pub key: &'static str,
    /// The list in [`ServerMetadata`].
    pub values: fn(&ServerMetadata) -> &[String],
    /// Which of its values the member may take.
    pub keep: Keep,
    /// How discovery shows it.
    pub advertise: Advertise,
    /// Whether a client may offer a preference list for the member (RP Metadata Choices).
    pub choice: bool,
}

/// The allowed-value rule of a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// None (or a rule of its own elsewhere).
    None,
    /// A string among the kept values of its [`Supported`] list.
    OneOf,
    /// An array whose strings are all in its [`Supported`] list.
    AllOf,
    /// One of these fixed values.
    Fixed(&'static [&'static str]),
    /// `response_types`: every value supported once normalised (OpenID Connect Registration §2).
    ResponseTypes,
    /// `token_endpoint_auth_method`: [`Rule::OneOf`], then the method a pairwise device or
    /// CIBA client needs.
    AuthMethod,
    /// `token_endpoint_auth_signing_alg`: only with a method that signs, then [`Rule::OneOf`].
    AuthSigningAlg,
}

/// The URI rule of a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Uri {
    /// Not a URI member.
    None,
    /// An `http` or `https` URI.
    Web,
    /// An `https` URI.
    Https,
    /// An `https` URI of a document the server fetches (`http` only when allowed for tests).
    Fetched,
    /// Redirect URIs (OpenID Connect Registration §2, RFC 8252 §7).
    Redirect,
}

/// Whether a member's value means the client needs a client secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Secret {
    /// Never.
    No,
    /// Unless it names an authentication method without a secret (RFC 7591 §2).
    UnlessSecretless,
    /// When it is an `HS*` algorithm: the secret is the MAC key (OpenID Connect Core §10.1).
    HmacAlg,
    /// When it is `dir` or an `A*KW` key wrap: the key derives from the secret (OpenID
    /// Connect Core §10.2).
    SymmetricEncryption,
}

/// Whether a member's algorithm needs one of the client's public keys (in `jwks` or at
/// `jwks_uri`, RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientKey {
    /// No.
    No,
    /// An asymmetric signature the server verifies with the client's key.
    Verify,
    /// As [`ClientKey::Verify`], for `private_key_jwt` authentication only (RFC 7523 §2.2).
    VerifyForPrivateKeyJwt,
    /// An asymmetric encryption to the client's key.
    Encrypt,
}

/// For the `alg` member of an encryption: its `enc` member and, for a response, the member
/// that must sign it (OpenID Connect Registration §2: "the response is signed then encrypted").
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encryption {
    /// The `enc` member.
    pub enc: &'static str,
    /// The signing member, for an encrypted response.
    pub signed: Option<&'static str>,
}

/// A test on the server's features.
pub(crate) type FeatureTest = fn(&Features) -> bool;

/// Everything the server knows about one member.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member {
    /// Its name.
    pub name: &'static str,
    /// Its JSON kind.
    pub kind: Kind,
    /// Whether the server's features make it recognised.
    pub on: FeatureTest,
    /// Its default.
    pub default: Default,
    /// Where its allowed values come from.
    pub supported: Option<Supported>,
    /// Its allowed-value rule.
    pub rule: Rule,
    /// Its URI rule.
    pub uri: Uri,
    /// Whether it may carry a language tag (`client_name#ja-Jpan-JP`, RFC 7591 §2.2).
    pub localizable: bool,
    /// Whether it implies a client secret.
    pub secret: Secret,
    /// Whether its algorithm needs one of the client's public keys.
    pub client_key: ClientKey,
    /// Whether it names the expected subject of the client's certificate (RFC 8705 §2.1.2).
    pub tls_subject: bool,
    /// For an encryption `alg` member: its `enc` and signing members.
    pub encryption: Option<Encryption>,
    /// A boolean discovery member advertising it, and when it is `true`.
    pub flag: Option<(&'static str, FeatureTest)>,
}

const fn always(_: &Features) -> bool {
    true
}

/// A row with no attributes but its kind.
const fn member(name: &'static str, kind: Kind) -> Member {
    Member {
        name,
        kind,
        on: always,
        default: Default::None,
        supported: None,
        rule: Rule::None,
        uri: Uri::None,
        localizable: false,
        secret: Secret::No,
        client_key: ClientKey::No,
        tls_subject: false,
        encryption: None,
        flag: None,
    }
}

impl Member {
    const fn on(self, on: fn(&Features) -> bool) -> Self {
        Self { on, ..self }
    }
    const fn default(self, default: Default) -> Self {
        Self { default, ..self }
    }
    const fn rule(self, rule: Rule) -> Self {
        Self { rule, ..self }
    }
    const fn uri(self, uri: Uri) -> Self {
        Self { uri, ..self }
    }
    const fn localizable(self) -> Self {
        Self {
            localizable: true,
            ..self
        }
    }
    const fn secret(self, secret: Secret) -> Self {
        Self { secret, ..self }
    }
    const fn client_key(self, client_key: ClientKey) -> Self {
        Self { client_key, ..self }
    }
    const fn tls_subject(self) -> Self {
        Self {
            tls_subject: true,
            ..self
        }
    }
    const fn encrypts(self, enc: &'static str, signed: Option<&'static str>) -> Self {
        Self {
            encryption: Some(Encryption { enc, signed }),
            ..self
        }
    }
    const fn flag(self, key: &'static str, when: fn(&Features) -> bool) -> Self {
        Self {
            flag: Some((key, when)),
            ..self
        }
    }
    /// Values from `values`, advertised as `key`.
    const fn from(
        self,
        key: &'static str,
        values: fn(&ServerMetadata) -> &[String],
        keep: Keep,
    ) -> Self {
        Self {
            supported: Some(Supported {
                key,
                values,
                keep,
                advertise: Advertise::Always,
                choice: false,
            }),
            ..self
        }
    }
    /// [`Member::from`], and a client may offer a preference list named `key`.
    const fn chosen_from(
        self,
        key: &'static str,
        values: fn(&ServerMetadata) -> &[String],
        keep: Keep,
    ) -> Self {
        Self {
            supported: Some(Supported {
                key,
                values,
                keep,
                advertise: Advertise::Always,
                choice: true,
            }),
            ..self
        }
    }
    const fn advertised(self, advertise: Advertise) -> Self {
        match self.supported {
            Some(s) => Self {
                supported: Some(Supported { advertise, ..s }),
                ..self
            },
            None => self,
        }
    }
}

use Kind::{Any, Bool, Int, Object, Str, StrArray};

/// Every member the server knows, in checking order: type errors are reported for the first
/// member in this order, and preference lists are resolved in it (a method before its
/// signing algorithm).
pub(crate) static MEMBERS: &[Member] = &[
    // RFC 7591 §2 and OpenID Connect Registration §2, whatever the features.
    member("application_type", Str)
        .default(Default::Str("web"))
        .rule(Rule::Fixed(&["native", "web"])),
    member("client_id", Str),
    member("client_id_issued_at", Any),
    member("client_name", Str).localizable(),
    member("client_secret", Str),
    member("client_secret_expires_at", Int),
    member("client_uri", Str).uri(Uri::Web).localizable(),
    member("contacts", StrArray),
    member("default_acr_values", StrArray)
        .from(
            "acr_values_supported",
            |s| &s.acr_values_supported,
            Keep::All,
        )
        .advertised(Advertise::IfNonEmpty)
        .rule(Rule::AllOf),
    member("default_max_age", Int),
    member("grant_types", StrArray)
        .default(Default::Strs(&["authorization_code"]))
        .from(
            "grant_types_supported",
            |s| &s.grant_types_supported,
            Keep::All,
        )
        .rule(Rule::AllOf),
    member("id_token_signed_response_alg", Str)
        .default(Default::Str("RS256"))
        .chosen_from(
            "id_token_signing_alg_values_supported",
            |s| &s.id_token_signing_alg_values_supported,
            Keep::NotNone,
        )
        .rule(Rule::OneOf)
        .secret(Secret::HmacAlg),
    member("initiate_login_uri", Str).uri(Uri::Https),
    member("jwks", Object),
    member("jwks_uri", Str).uri(Uri::Fetched),
    member("logo_uri", Str).uri(Uri::Web).localizable(),
    member("policy_uri", Str).uri(Uri::Web).localizable(),
    member("redirect_uris", StrArray).uri(Uri::Redirect),
    member("require_auth_time", Bool).default(Default::Bool(false)),
    member("response_types", StrArray)
        .default(Default::Strs(&["code"]))
        .from(
            "response_types_supported",
            |s| &s.response_types_supported,
            Keep::All,
        )
        .rule(Rule::ResponseTypes),
    member("response_modes", StrArray)
        .from(
            "response_modes_supported",
            |s| &s.response_modes_supported,
            Keep::All,
        )
        .rule(Rule::AllOf),
    member("scope", Str).from("scopes_supported", |s| &s.scopes_supported, Keep::All),
    member("sector_identifier_uri", Str).uri(Uri::Fetched),
    member("subject_type", Str)
        .default(Default::SubjectType)
        .chosen_from(
            "subject_types_supported",
            |s| &s.subject_types_supported,
            Keep::All,
        )
        .rule(Rule::OneOf),
    member("token_endpoint_auth_method", Str)
        .default(Default::Str("client_secret_basic"))
        .chosen_from(
            "token_endpoint_auth_methods_supported",
            |s| &s.token_endpoint_auth_methods_supported,
            Keep::All,
        )
        .rule(Rule::AuthMethod)
        .secret(Secret::UnlessSecretless),
    member("token_endpoint_auth_signing_alg", Str)
        .chosen_from(
            "token_endpoint_auth_signing_alg_values_supported",
            |s| &s.token_endpoint_auth_signing_alg_values_supported,
            Keep::ByAuthMethod,
        )
        .rule(Rule::AuthSigningAlg)
        .secret(Secret::HmacAlg)
        .client_key(ClientKey::VerifyForPrivateKeyJwt),
    member("tos_uri", Str).uri(Uri::Web).localizable(),
    member("software_id", Str),
    member("software_version", Str),
    member("software_statement", Str),
    // OpenID Connect RP-Initiated Logout 1.0 §3.1.
    member("post_logout_redirect_uris", StrArray)
        .on(|f| f.rp_initiated_logout)
        .default(Default::Strs(&[]))
        .uri(Uri::Redirect),
    // RFC 9126 §6.
    member("require_pushed_authorization_requests", Bool)
        .on(|f| f.pushed_authorization_requests)
        .default(Default::Bool(false))
        .flag("require_pushed_authorization_requests", |f| {
            f.require_pushed_authorization_requests
        }),
    // RFC 9449 §5.2.
    member("dpop_bound_access_tokens", Bool)
        .on(|f| f.dpop)
        .default(Default::Bool(false)),
    // OpenID Connect Back-Channel Logout 1.0 §2.2 and §2.1.
    member("backchannel_logout_uri", Str)
        .on(|f| f.backchannel_logout)
        .uri(Uri::Web)
        .flag("backchannel_logout_supported", always),
    member("backchannel_logout_session_required", Bool)
        .on(|f| f.backchannel_logout)
        .default(Default::Bool(false))
        .flag("backchannel_logout_session_supported", always),
    // RFC 9101 §10.2 and OpenID Connect Registration §2.
    member("request_object_signing_alg", Str)
        .on(|f| f.request_objects)
        .chosen_from(
            "request_object_signing_alg_values_supported",
            |s| &s.request_object_signing_alg_values_supported,
            Keep::NotNone,
        )
        .rule(Rule::OneOf)
        .secret(Secret::HmacAlg)
        .client_key(ClientKey::Verify),
    member("require_signed_request_object", Bool)
        .on(|f| f.request_objects)
        .default(Default::Bool(false))
        .flag("require_signed_request_object", |f| {
            f.require_signed_request_object
        }),
    member("request_object_encryption_alg", Str)
        .on(|f| f.request_objects && f.encryption)
        .chosen_from(
            "request_object_encryption_alg_values_supported",
            |s| &s.request_object_encryption_alg_values_supported,
            Keep::All,
        )
        .rule(Rule::OneOf)
        .secret(Secret::SymmetricEncryption)
        .encrypts("request_object_encryption_enc", None),
    member("request_object_encryption_enc", Str)
        .on(|f| f.request_objects && f.encryption)
        .chosen_from(
            "request_object_encryption_enc_values_supported",
            |s| &s.request_object_encryption_enc_values_supported,
            Keep::All,
        )
        .rule(Rule::OneOf),
    // OpenID Connect Registration §2: encrypted ID tokens.
    member("id_token_encrypted_response_alg", Str)
        .on(|f| f.encryption)
        .chosen_from(
            "id_token_encryption_alg_values_supported",
            |s| &s.encryption_alg_values_supported,
            Keep::All,
        )
        .rule(Rule::OneOf)
        .secret(Secret::SymmetricEncryption)
        .client_key(ClientKey::Encrypt)
        .encrypts(
            "id_token_encrypted_response_enc",
            Some("id_token_signed_response_alg"),
        ),
    member("id_token_encrypted_response_enc", Str)
        .on(|f| f.encryption)
        .chosen_from(
            "id_token_encryption_enc_values_supported",
            |s| &s.encryption_enc_values_supported,
            Keep::All,
        )
        .rule(Rule::OneOf),
    // OpenID Connect Registration §2: JWT user info responses.
    member("userinfo_signed_response_alg", Str)
        .on(|f| f.jwt_userinfo)
        .chosen_from(
            "userinfo_signing_alg_values_supported",
            |s| &s.userinfo_signing_alg_values_supported,
            Keep::NotNone,
        )
        .rule(Rule::OneOf)
        .secret(Secret::HmacAlg),
    member("userinfo_encrypted_response_alg", Str)
        .on(|f| f.jwt_userinfo && f.encryption)
        .chosen_from(
            "userinfo_encryption_alg_values_supported",
            |s| &s.encryption_alg_values_supported,
            Keep::All,
        )
        .rule(Rule::OneOf)
        .secret(Secret::SymmetricEncryption)
        .client_key(ClientKey::Encrypt)
        .encrypts(
            "userinfo_encrypted_response_enc",
            Some("userinfo_signed_response_alg"),
        ),
    member("userinfo_encrypted_response_enc", Str)
        .on(|f| f.jwt_userinfo && f.encryption)
        .chosen_from(
            "userinfo_encryption_enc_values_supported",
            |s| &s.encryption_enc_values_supported,
            Keep::All,
        )
        .rule(Rule::OneOf),
    // JWT Response for OAuth Token Introspection §6.
    member("introspection_signed_response_alg", Str)
        .on(|f| f.jwt_introspection)
        .default(Default::Str("RS256"))
        .chosen_from(
            "introspection_signing_alg_values_supported",
            |s| &s.introspection_signing_alg_values_supported,
            Keep::NotNone,
        )
        .rule(Rule::OneOf)
        .secret(Secret::HmacAlg),
    member("introspection_encrypted_response_alg", Str)
        .on(|f| f.jwt_introspection && f.encryption)
        .chosen_from(
            "introspection_encryption_alg_values_supported",
            |s| &s.encryption_alg_values_supported,
            Keep::All,
        )
        .rule(Rule::OneOf)
        .secret(Secret::SymmetricEncryption)
        .client_key(ClientKey::Encrypt)
        .encrypts(
            "introspection_encrypted_response_enc",
            Some("introspection_signed_response_alg"),
        ),
    member("introspection_encrypted_response_enc", Str)
        .on(|f| f.jwt_introspection && f.encryption)
        .chosen_from(
            "introspection_encryption_enc_values_supported",
            |s| &s.encryption_enc_values_supported,
            Keep::All,
        )
        .rule(Rule::OneOf),
    // JWT Secured Authorization Response Mode (JARM) §3.
    member("authorization_signed_response_alg", Str)
        .on(|f| f.jwt_response_modes)
        .default(Default::Str("RS256"))
        .chosen_from(
            "authorization_signing_alg_values_supported",
            |s| &s.authorization_signing_alg_values_supported,
            Keep::NotNone,
        )
        .rule(Rule::OneOf)
        .secret(Secret::HmacAlg),
    member("authorization_encrypted_response_alg", Str)
        .on(|f| f.jwt_response_modes && f.encryption)
        .chosen_from(
            "authorization_encryption_alg_values_supported",
            |s| &s.encryption_alg_values_supported,
            Keep::All,
        )
        .rule(Rule::OneOf)
        .secret(Secret::SymmetricEncryption)
        .client_key(ClientKey::Encrypt)
        .encrypts(
            "authorization_encrypted_response_enc",
            Some("authorization_signed_response_alg"),
        ),
    member("authorization_encrypted_response_enc", Str)
        .on(|f| f.jwt_response_modes && f.encryption)
        .chosen_from(
            "authorization_encryption_enc_values_supported",
            |s| &s.encryption_enc_values_supported,
            Keep::All,
        )
        .rule(Rule::OneOf),
    // RFC 8705 §2.1.2 and §3.4.
    member("tls_client_auth_subject_dn", Str)
        .on(|f| f.mtls_client_auth)
        .tls_subject(),
    member("tls_client_auth_san_dns", Str)
        .on(|f| f.mtls_client_auth)
        .tls_subject(),
    member("tls_client_auth_san_uri", Str)
        .on(|f| f.mtls_client_auth)
        .tls_subject(),
    member("tls_client_auth_san_ip", Str)
        .on(|f| f.mtls_client_auth)
        .tls_subject(),
    member("tls_client_auth_san_email", Str)
        .on(|f| f.mtls_client_auth)
        .tls_subject(),
    member("use_mtls_endpoint_aliases", Bool).on(|f| f.mtls_client_auth),
    member("tls_client_certificate_bound_access_tokens", Bool)
        .on(|f| f.mtls_certificate_bound_access_tokens)
        .default(Default::Bool(false))
        .flag("tls_client_certificate_bound_access_tokens", always),
    // CIBA Core 1.0 §4.
    member("backchannel_token_delivery_mode", Str)
        .on(|f| f.ciba)
        .from(
            "backchannel_token_delivery_modes_supported",
            |s| &s.backchannel_token_delivery_modes_supported,
            Keep::PollOrPing,
        )
        .rule(Rule::OneOf),
    member("backchannel_client_notification_endpoint", Str)
        .on(|f| f.ciba)
        .uri(Uri::Https),
    member("backchannel_user_code_parameter", Bool)
        .on(|f| f.ciba)
        .default(Default::Bool(false))
        .flag("backchannel_user_code_parameter_supported", always),
    member("backchannel_authentication_request_signing_alg", Str)
        .on(|f| f.ciba && f.request_objects)
        .chosen_from(
            "backchannel_authentication_request_signing_alg_values_supported",
            |s| &s.backchannel_authentication_request_signing_alg_values_supported,
            Keep::AsymmetricJws,
        )
        .advertised(Advertise::Asymmetric)
        .rule(Rule::OneOf)
        .client_key(ClientKey::Verify),
    // RFC 9396 §10.
    member("authorization_details_types", StrArray)
        .on(|f| f.rich_authorization_requests)
        .default(Default::Strs(&[]))
        .from(
            "authorization_details_types_supported",
            |s| &s.authorization_details_types_supported,
            Keep::All,
        )
        .rule(Rule::AllOf),
];

/// The members whose value may imply a client secret, with their rule; the authentication
/// method first (it settles most clients with one look-up).
pub(crate) static SECRET_MEMBERS: LazyLock<Vec<(&'static str, Secret)>> = LazyLock::new(|| {
    let mut members: Vec<(&'static str, Secret)> = MEMBERS
        .iter()
        .filter(|m| m.secret != Secret::No)
        .map(|m| (m.name, m.secret))
        .collect();
    members.sort_by_key(|(_, rule)| *rule != Secret::UnlessSecretless);
    members
});

/// The members whose algorithm may need one of the client's public keys: the signatures
/// first, then the encryptions.
pub(crate) static CLIENT_KEY_MEMBERS: LazyLock<Vec<(&'static str, ClientKey)>> =
    LazyLock::new(|| {
        let mut members: Vec<(&'static str, ClientKey)> = MEMBERS
            .iter()
            .filter(|m| m.client_key != ClientKey::No)
            .map(|m| (m.name, m.client_key))
            .collect();
        members.sort_by_key(|(_, key)| *key == ClientKey::Encrypt);
        members
    });

/// The certificate subject members (RFC 8705 §2.1.2), in table order.
pub(crate) static TLS_SUBJECT_MEMBERS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    MEMBERS
        .iter()
        .filter(|m| m.tls_subject)
        .map(|m| m.name)
        .collect()
});

/// The member named `name`, if the server knows it (whatever its features).
pub(crate) fn find(name: &str) -> Option<&'static Member> {
    MEMBERS.iter().find(|m| m.name == name)
}

/// The base member of a language-tagged member (`client_name#ja-Jpan-JP` → `client_name`,
/// `ja-Jpan-JP`), if the base may carry a tag.
pub(crate) fn localized_key(key: &str) -> Option<(&'static Member, &str)> {
    let (base, tag) = key.split_once('#')?;
    find(base).filter(|m| m.localizable).map(|m| (m, tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_member() {
        let mut names: Vec<&str> = MEMBERS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before);
    }

    #[test]
    fn rules_have_their_lists() {
        for m in MEMBERS {
            if matches!(
                m.rule,
                Rule::OneOf | Rule::AllOf | Rule::AuthMethod | Rule::AuthSigningAlg
            ) {
                assert!(m.supported.is_some(), "{}", m.name);
            }
            if m.encryption.is_some() {
                assert_eq!(m.secret, Secret::SymmetricEncryption, "{}", m.name);
            }
        }
    }
}
