//! The validation pipeline: input members → [`ClientMetadata`] or the first rule broken.
//!
//! Order (reference §4.1, with the fixes of §8): assign defaults and recognised members →
//! RP Metadata Choices (feature `rp_metadata_choices`) → types → `client_id`/`client_secret` syntax → normalise `response_types` → mandatory
//! members → encryption dependencies → allowed values → URIs → `scope` → redirect URIs →
//! `contacts` → forced values → non-empty lists → grant types derived from response types →
//! proof of possession → mTLS subject → keys → extra and localized members.

use std::collections::HashSet;

use serde_json::{Map, Value};
use url::Url;

use super::{ClientMetadata, MetadataError, ServerMetadata, jwks, lang};

/// The CIBA grant type.
pub(crate) const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";
/// The device authorization grant type.
pub(crate) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The `enc` used when a client names only the `alg` of an encrypted response.
const DEFAULT_ENC: &str = "A128CBC-HS256";

/// How a member is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
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

/// The members recognised whatever the features, with their types.
const ALWAYS: &[(&str, Kind)] = &[
    ("application_type", Kind::Str),
    ("client_id", Kind::Str),
    ("client_id_issued_at", Kind::Any),
    ("client_name", Kind::Str),
    ("client_secret", Kind::Str),
    ("client_secret_expires_at", Kind::Int),
    ("client_uri", Kind::Str),
    ("contacts", Kind::StrArray),
    ("default_acr_values", Kind::StrArray),
    ("default_max_age", Kind::Int),
    ("grant_types", Kind::StrArray),
    ("id_token_signed_response_alg", Kind::Str),
    ("initiate_login_uri", Kind::Str),
    ("jwks", Kind::Object),
    ("jwks_uri", Kind::Str),
    ("logo_uri", Kind::Str),
    ("policy_uri", Kind::Str),
    ("redirect_uris", Kind::StrArray),
    ("require_auth_time", Kind::Bool),
    ("response_types", Kind::StrArray),
    ("response_modes", Kind::StrArray),
    ("scope", Kind::Str),
    ("sector_identifier_uri", Kind::Str),
    ("subject_type", Kind::Str),
    ("token_endpoint_auth_method", Kind::Str),
    ("token_endpoint_auth_signing_alg", Kind::Str),
    ("tos_uri", Kind::Str),
    ("software_id", Kind::Str),
    ("software_version", Kind::Str),
    ("software_statement", Kind::Str),
];

/// Human-readable members that may carry a language tag (RFC 7591 §2.2).
const LOCALIZABLE: &[&str] = &[
    "client_name",
    "tos_uri",
    "logo_uri",
    "policy_uri",
    "client_uri",
];

/// URI members that must be `http` or `https`.
const WEB_URIS: &[&str] = &[
    "client_uri",
    "logo_uri",
    "policy_uri",
    "tos_uri",
    "backchannel_logout_uri",
];

/// URI members that must be `https`.
const HTTPS_URIS: &[&str] = &[
    "initiate_login_uri",
    "sector_identifier_uri",
    "jwks_uri",
    "backchannel_client_notification_endpoint",
];

/// The mTLS certificate subject members (RFC 8705 §2.1.2).
const TLS_SUBJECT_MEMBERS: &[&str] = &[
    "tls_client_auth_subject_dn",
    "tls_client_auth_san_dns",
    "tls_client_auth_san_uri",
    "tls_client_auth_san_ip",
    "tls_client_auth_san_email",
];

/// For each response that can be encrypted (ID token, userinfo, introspection, authorization):
/// its `_encrypted_response_alg`, `_encrypted_response_enc` and `_signed_response_alg` members.
const ENCRYPTED_RESPONSE_MEMBERS: [[&str; 3]; 4] = [
    [
        "id_token_encrypted_response_alg",
        "id_token_encrypted_response_enc",
        "id_token_signed_response_alg",
    ],
    [
        "userinfo_encrypted_response_alg",
        "userinfo_encrypted_response_enc",
        "userinfo_signed_response_alg",
    ],
    [
        "introspection_encrypted_response_alg",
        "introspection_encrypted_response_enc",
        "introspection_signed_response_alg",
    ],
    [
        "authorization_encrypted_response_alg",
        "authorization_encrypted_response_enc",
        "authorization_signed_response_alg",
    ],
];

/// OpenID Connect RP Metadata Choices 1.0: each input-only preference list and the member it
/// chooses, in resolution order (the method is chosen before its signing algorithm).
const CHOICES: &[(&str, &str)] = &[
    (
        "id_token_signing_alg_values_supported",
        "id_token_signed_response_alg",
    ),
    (
        "id_token_encryption_alg_values_supported",
        "id_token_encrypted_response_alg",
    ),
    (
        "id_token_encryption_enc_values_supported",
        "id_token_encrypted_response_enc",
    ),
    (
        "userinfo_signing_alg_values_supported",
        "userinfo_signed_response_alg",
    ),
    (
        "userinfo_encryption_alg_values_supported",
        "userinfo_encrypted_response_alg",
    ),
    (
        "userinfo_encryption_enc_values_supported",
        "userinfo_encrypted_response_enc",
    ),
    (
        "introspection_signing_alg_values_supported",
        "introspection_signed_response_alg",
    ),
    (
        "introspection_encryption_alg_values_supported",
        "introspection_encrypted_response_alg",
    ),
    (
        "introspection_encryption_enc_values_supported",
        "introspection_encrypted_response_enc",
    ),
    (
        "authorization_signing_alg_values_supported",
        "authorization_signed_response_alg",
    ),
    (
        "authorization_encryption_alg_values_supported",
        "authorization_encrypted_response_alg",
    ),
    (
        "authorization_encryption_enc_values_supported",
        "authorization_encrypted_response_enc",
    ),
    (
        "request_object_signing_alg_values_supported",
        "request_object_signing_alg",
    ),
    (
        "request_object_encryption_alg_values_supported",
        "request_object_encryption_alg",
    ),
    (
        "request_object_encryption_enc_values_supported",
        "request_object_encryption_enc",
    ),
    (
        "backchannel_authentication_request_signing_alg_values_supported",
        "backchannel_authentication_request_signing_alg",
    ),
    ("subject_types_supported", "subject_type"),
    (
        "token_endpoint_auth_methods_supported",
        "token_endpoint_auth_method",
    ),
    (
        "token_endpoint_auth_signing_alg_values_supported",
        "token_endpoint_auth_signing_alg",
    ),
];

/// How an allowed-value rule (§4.1 step 10) checks its member.
#[derive(Debug, Clone, Copy)]
enum AllowedRule {
    /// A string among [`allowed_values`].
    OneOf,
    /// An array whose strings are all in one of the server's lists.
    AllOf(fn(&ServerMetadata) -> &[String]),
    /// `response_types`: an array whose values are all supported (once normalised).
    ResponseTypes,
    /// `application_type`: `native` or `web`.
    ApplicationType,
    /// `backchannel_token_delivery_mode`: `poll` or `ping`, if the server supports it.
    DeliveryMode,
    /// `token_endpoint_auth_method`: [`AllowedRule::OneOf`], then, whether the member is there
    /// or not, the method a pairwise device or CIBA client needs.
    AuthMethod,
    /// `token_endpoint_auth_signing_alg`: only with a method that signs, then
    /// [`AllowedRule::OneOf`].
    AuthSigningAlg,
}

/// The allowed-value rules, in the reference's order (§4.1 step 10).
const ALLOWED_VALUE_RULES: &[(&str, AllowedRule)] = &[
    ("application_type", AllowedRule::ApplicationType),
    (
        "default_acr_values",
        AllowedRule::AllOf(|s| &s.acr_values_supported),
    ),
    (
        "grant_types",
        AllowedRule::AllOf(|s| &s.grant_types_supported),
    ),
    ("id_token_encrypted_response_alg", AllowedRule::OneOf),
    ("id_token_encrypted_response_enc", AllowedRule::OneOf),
    ("id_token_signed_response_alg", AllowedRule::OneOf),
    ("request_object_signing_alg", AllowedRule::OneOf),
    ("backchannel_token_delivery_mode", AllowedRule::DeliveryMode),
    (
        "backchannel_authentication_request_signing_alg",
        AllowedRule::OneOf,
    ),
    ("request_object_encryption_alg", AllowedRule::OneOf),
    ("request_object_encryption_enc", AllowedRule::OneOf),
    ("response_types", AllowedRule::ResponseTypes),
    (
        "response_modes",
        AllowedRule::AllOf(|s| &s.response_modes_supported),
    ),
    ("subject_type", AllowedRule::OneOf),
    (
        "authorization_details_types",
        AllowedRule::AllOf(|s| &s.authorization_details_types_supported),
    ),
    ("token_endpoint_auth_method", AllowedRule::AuthMethod),
    (
        "token_endpoint_auth_signing_alg",
        AllowedRule::AuthSigningAlg,
    ),
    ("userinfo_encrypted_response_alg", AllowedRule::OneOf),
    ("userinfo_encrypted_response_enc", AllowedRule::OneOf),
    ("userinfo_signed_response_alg", AllowedRule::OneOf),
    ("introspection_encrypted_response_alg", AllowedRule::OneOf),
    ("introspection_encrypted_response_enc", AllowedRule::OneOf),
    ("introspection_signed_response_alg", AllowedRule::OneOf),
    ("authorization_encrypted_response_alg", AllowedRule::OneOf),
    ("authorization_encrypted_response_enc", AllowedRule::OneOf),
    ("authorization_signed_response_alg", AllowedRule::OneOf),
];

/// The members a feature adds.
fn feature_members(server: &ServerMetadata) -> Vec<(&'static str, Kind)> {
    let f = &server.features;
    let mut out = Vec::new();
    if f.rp_initiated_logout {
        out.push(("post_logout_redirect_uris", Kind::StrArray));
    }
    if f.pushed_authorization_requests {
        out.push(("require_pushed_authorization_requests", Kind::Bool));
    }
    if f.dpop {
        out.push(("dpop_bound_access_tokens", Kind::Bool));
    }
    if f.backchannel_logout {
        out.push(("backchannel_logout_uri", Kind::Str));
        out.push(("backchannel_logout_session_required", Kind::Bool));
    }
    if f.request_objects {
        out.push(("request_object_signing_alg", Kind::Str));
        out.push(("require_signed_request_object", Kind::Bool));
        if f.encryption {
            out.push(("request_object_encryption_alg", Kind::Str));
            out.push(("request_object_encryption_enc", Kind::Str));
        }
    }
    if f.encryption {
        out.push(("id_token_encrypted_response_alg", Kind::Str));
        out.push(("id_token_encrypted_response_enc", Kind::Str));
    }
    if f.jwt_userinfo {
        out.push(("userinfo_signed_response_alg", Kind::Str));
        if f.encryption {
            out.push(("userinfo_encrypted_response_alg", Kind::Str));
            out.push(("userinfo_encrypted_response_enc", Kind::Str));
        }
    }
    if f.jwt_introspection {
        out.push(("introspection_signed_response_alg", Kind::Str));
        if f.encryption {
            out.push(("introspection_encrypted_response_alg", Kind::Str));
            out.push(("introspection_encrypted_response_enc", Kind::Str));
        }
    }
    if f.jwt_response_modes {
        out.push(("authorization_signed_response_alg", Kind::Str));
        if f.encryption {
            out.push(("authorization_encrypted_response_alg", Kind::Str));
            out.push(("authorization_encrypted_response_enc", Kind::Str));
        }
    }
    if f.mtls_client_auth {
        for m in TLS_SUBJECT_MEMBERS {
            out.push((m, Kind::Str));
        }
        out.push(("use_mtls_endpoint_aliases", Kind::Bool));
    }
    if f.mtls_certificate_bound_access_tokens {
        out.push(("tls_client_certificate_bound_access_tokens", Kind::Bool));
    }
    if f.ciba {
        out.push(("backchannel_token_delivery_mode", Kind::Str));
        out.push(("backchannel_client_notification_endpoint", Kind::Str));
        out.push(("backchannel_user_code_parameter", Kind::Bool));
        if f.request_objects {
            out.push(("backchannel_authentication_request_signing_alg", Kind::Str));
        }
    }
    if f.rich_authorization_requests {
        out.push(("authorization_details_types", Kind::StrArray));
    }
    out
}

/// Every member recognised with the server's features, with its type.
fn recognised_members(server: &ServerMetadata) -> Vec<(&'static str, Kind)> {
    let mut recognised: Vec<(&str, Kind)> = ALWAYS.to_vec();
    recognised.extend(feature_members(server));
    recognised
}

/// The choice lists in `input` that count: the feature is on, the list is not `null` and its
/// target member is recognised.
fn offered_choices(
    input: &Map<String, Value>,
    server: &ServerMetadata,
    recognised: &[(&str, Kind)],
) -> Map<String, Value> {
    let mut out = Map::new();
    if !server.features.rp_metadata_choices {
        return out;
    }
    for (choice, target) in CHOICES {
        if let Some(list) = input.get(*choice).filter(|v| !v.is_null())
            && recognised.iter().any(|(n, _)| n == target)
        {
            out.insert((*choice).to_owned(), list.clone());
        }
    }
    out
}

fn defaults(server: &ServerMetadata) -> Map<String, Value> {
    let f = &server.features;
    let mut d = Map::new();
    d.insert("application_type".into(), "web".into());
    d.insert(
        "grant_types".into(),
        Value::from(vec!["authorization_code"]),
    );
    d.insert("response_types".into(), Value::from(vec!["code"]));
    d.insert("id_token_signed_response_alg".into(), "RS256".into());
    d.insert(
        "token_endpoint_auth_method".into(),
        "client_secret_basic".into(),
    );
    let subject = if server.subject_types_supported == ["pairwise"] {
        "pairwise"
    } else {
        "public"
    };
    d.insert("subject_type".into(), subject.into());
    d.insert("require_auth_time".into(), false.into());
    if f.rp_initiated_logout {
        d.insert("post_logout_redirect_uris".into(), Value::Array(Vec::new()));
    }
    if f.pushed_authorization_requests {
        d.insert("require_pushed_authorization_requests".into(), false.into());
    }
    if f.dpop {
        d.insert("dpop_bound_access_tokens".into(), false.into());
    }
    if f.backchannel_logout {
        d.insert("backchannel_logout_session_required".into(), false.into());
    }
    if f.request_objects {
        d.insert("require_signed_request_object".into(), false.into());
    }
    if f.jwt_introspection {
        d.insert("introspection_signed_response_alg".into(), "RS256".into());
    }
    if f.jwt_response_modes {
        d.insert("authorization_signed_response_alg".into(), "RS256".into());
    }
    if f.mtls_certificate_bound_access_tokens {
        d.insert(
            "tls_client_certificate_bound_access_tokens".into(),
            false.into(),
        );
    }
    if f.ciba {
        d.insert("backchannel_user_code_parameter".into(), false.into());
    }
    if f.rich_authorization_requests {
        d.insert(
            "authorization_details_types".into(),
            Value::Array(Vec::new()),
        );
    }
    for (k, v) in &server.client_defaults {
        d.insert(k.clone(), v.clone());
    }
    d
}

/// An error whose code follows the reference: `invalid_redirect_uri` when the description is
/// about `redirect_uris`, `invalid_client_metadata` otherwise.
fn fail(description: impl Into<String>) -> MetadataError {
    let description = description.into();
    if description.starts_with("redirect_uris") {
        MetadataError::redirect(description)
    } else {
        MetadataError::metadata(description)
    }
}

fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

fn flag(m: &Map<String, Value>, key: &str) -> bool {
    m.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Splits `client_name#ja-Jpan-JP` into its localizable base member and tag.
fn localized_key(key: &str) -> Option<(&'static str, &str)> {
    let (base, tag) = key.split_once('#')?;
    LOCALIZABLE.iter().find(|b| **b == base).map(|b| (*b, tag))
}

/// Validates client metadata against what the server supports.
///
/// `input` holds the client's members plus the server-assigned ones (`client_id`,
/// `client_id_issued_at`, `client_secret`, `client_secret_expires_at`). `null` members count
/// as absent. Unknown members are dropped (RFC 7591 §2) unless listed in
/// [`ServerMetadata::extra_metadata`]; members of features that are off are dropped too.
/// Language-tagged human-readable members (`client_name#de`) are kept when the tag is a
/// well-formed BCP 47 tag. With [`Features::rp_metadata_choices`](super::Features), choice
/// lists (`token_endpoint_auth_methods_supported`, ...) pick their target member and are not
/// kept. Returns the metadata with defaults applied, or the first rule the
/// input breaks. Never panics, whatever the input.
///
/// Builds the server-dependent tables on every call: a service validating many documents
/// against the same server keeps a [`Validator`] instead.
pub fn validate(
    input: Map<String, Value>,
    server: &ServerMetadata,
) -> Result<ClientMetadata, MetadataError> {
    validate_prepared(input, server, &Prepared::new(server))
}

/// What validation derives from the [`ServerMetadata`] alone, built once.
#[derive(Debug, Clone)]
struct Prepared {
    /// Every recognised member with its type, in checking order.
    recognised: Vec<(&'static str, Kind)>,
    /// The same, sorted by name length then name, for lookups (most comparisons are then
    /// settled by the length alone).
    by_name: Vec<(&'static str, Kind)>,
    /// Whether no name appears twice in `recognised` (so `by_name` has every entry).
    unique_names: bool,
    /// All the defaults (with the operator's `client_defaults`).
    defaults: Map<String, Value>,
    /// The defaults of recognised members, already through their type check.
    recognised_defaults: Vec<(String, Value)>,
    /// Whether every recognised default passes its type check.
    defaults_typed: bool,
    /// The rows of [`ENCRYPTED_RESPONSE_MEMBERS`] whose `alg` member is recognised.
    encrypted_responses: Vec<[&'static str; 3]>,
    /// Whether `request_object_encryption_alg` is recognised.
    request_object_encryption: bool,
    /// The rules of [`ALLOWED_VALUE_RULES`] whose member is recognised.
    allowed_value_rules: Vec<(&'static str, AllowedRule)>,
    /// `response_types_supported`, each normalised.
    response_types_supported: Vec<String>,
}

impl Prepared {
    fn new(server: &ServerMetadata) -> Self {
        let recognised = recognised_members(server);
        let mut by_name = recognised.clone();
        // The first entry of a name wins, as a linear search finds it.
        by_name.sort_by_key(|(n, _)| (n.len(), *n));
        by_name.dedup_by_key(|(n, _)| *n);
        let unique_names = by_name.len() == recognised.len();
        let mut prepared = Self {
            recognised,
            by_name,
            unique_names,
            defaults: defaults(server),
            recognised_defaults: Vec::new(),
            defaults_typed: true,
            encrypted_responses: Vec::new(),
            request_object_encryption: false,
            allowed_value_rules: Vec::new(),
            response_types_supported: server
                .response_types_supported
                .iter()
                .map(|r| normalise_response_type(r))
                .collect(),
        };
        for (k, v) in &prepared.defaults {
            let Some(kind) = prepared.kind_of(k) else {
                continue;
            };
            let mut v = v.clone();
            prepared.defaults_typed &= check_type(k, kind, &mut v).is_ok();
            prepared.recognised_defaults.push((k.clone(), v));
        }
        prepared.encrypted_responses = ENCRYPTED_RESPONSE_MEMBERS
            .into_iter()
            .filter(|[alg, _, _]| prepared.kind_of(alg).is_some())
            .collect();
        prepared.request_object_encryption =
            prepared.kind_of("request_object_encryption_alg").is_some();
        prepared.allowed_value_rules = ALLOWED_VALUE_RULES
            .iter()
            .copied()
            .filter(|(member, _)| prepared.kind_of(member).is_some())
            .collect();
        prepared
    }

    fn kind_of(&self, k: &str) -> Option<Kind> {
        self.by_name
            .binary_search_by(|(n, _)| (n.len(), *n).cmp(&(k.len(), k)))
            .ok()
            .map(|i| self.by_name[i].1)
    }
}

/// Validation against one [`ServerMetadata`], with the tables derived from it (recognised
/// members, defaults) built once instead of per document. [`Validator::validate`] gives the
/// same results as [`validate`].
#[derive(Debug, Clone)]
pub struct Validator {
    server: ServerMetadata,
    prepared: Prepared,
}

impl Validator {
    /// Prepares validation against `server`.
    pub fn new(server: ServerMetadata) -> Self {
        let prepared = Prepared::new(&server);
        Self { server, prepared }
    }

    /// The server metadata it validates against.
    pub fn server(&self) -> &ServerMetadata {
        &self.server
    }

    /// As [`validate`].
    pub fn validate(&self, input: Map<String, Value>) -> Result<ClientMetadata, MetadataError> {
        validate_prepared(input, &self.server, &self.prepared)
    }

    /// As [`needs_secret_after_defaults`].
    pub fn needs_secret_after_defaults(&self, properties: &Map<String, Value>) -> bool {
        needs_secret_prepared(properties, &self.server, &self.prepared)
    }
}

fn validate_prepared(
    input: Map<String, Value>,
    server: &ServerMetadata,
    prepared: &Prepared,
) -> Result<ClientMetadata, MetadataError> {
    // 1. Assign: every recognised member the client sent (the input map is kept, the rest
    //    of it moved out or dropped), then the defaults of the members still missing (but not
    //    for a member the client offers a choice list for). Localized and extra members are
    //    set aside; choice lists are input only.
    //    Each recognised member is type-checked as it is kept: a failure is reported in step
    //    2, in table order (the checks only de-duplicate arrays, so running them again there
    //    is harmless). The defaults were checked when the validator was prepared.
    let choices = offered_choices(&input, server, &prepared.recognised);
    let chosen = |k: &str| {
        CHOICES
            .iter()
            .any(|(c, t)| *t == k && choices.contains_key(*c))
    };
    let mut all_typed = prepared.unique_names && prepared.defaults_typed;
    let mut extra = Map::new();
    let mut localized = Map::new();
    let mut m = input;
    m.retain(|k, v| {
        if v.is_null() || choices.contains_key(k) {
            return false;
        }
        if let Some(kind) = prepared.kind_of(k) {
            all_typed &= check_type(k, kind, v).is_ok();
            return true;
        }
        if localized_key(k).is_some() {
            localized.insert(k.clone(), v.take());
        } else if server.extra_metadata.contains(k) {
            extra.insert(k.clone(), v.take());
        }
        false
    });
    super::application_type::infer(&mut m, server)?;
    for (k, v) in &prepared.recognised_defaults {
        if choices.is_empty() || !chosen(k) {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if m.get("response_types")
        .is_none_or(|v| v.as_array().is_some_and(Vec::is_empty))
    {
        m.entry("redirect_uris")
            .or_insert_with(|| Value::Array(Vec::new()));
    }

    // 1b. RP Metadata Choices: each list picks its target member (a non-empty string).
    resolve_choices(&mut m, &choices, server)?;

    // 2. Types, when a check failed in step 1.
    if !all_typed {
        for (name, kind) in &prepared.recognised {
            let Some(v) = m.get_mut(*name) else { continue };
            check_type(name, *kind, v)?;
        }
    }
    for (key, value) in &mut localized {
        let Some((base, tag)) = localized_key(key) else {
            continue;
        };
        if !lang::is_well_formed(tag) {
            return Err(fail(format!(
                "{key}: \"{tag}\" is not a well-formed BCP 47 language tag (e.g. {base}#en or {base}#ja-Jpan-JP)"
            )));
        }
        check_type(key, Kind::Str, value)?;
    }

    // 3. Syntax of the identifiers.
    if m.get("client_id").is_none() {
        return Err(fail("client_id is mandatory property"));
    }
    for field in ["client_id", "client_secret"] {
        if let Some(s) = str_of(&m, field)
            && !s.bytes().all(|b| (0x20..=0x7e).contains(&b))
        {
            return Err(fail(format!(
                "{field} must only contain printable ASCII characters"
            )));
        }
    }

    // 4. response_types: normalise each value (sorted tokens), then de-duplicate.
    if let Some(Value::Array(items)) = m.get_mut("response_types") {
        for item in items.iter_mut() {
            if let Value::String(s) = item
                && !is_normalised_response_type(s)
            {
                *s = normalise_response_type(s);
            }
        }
        dedup_strings(items);
    }
    let (mut any_response_type, mut code, mut token, mut id_token) = (false, false, false, false);
    for response_type in str_items(&m, "response_types") {
        any_response_type = true;
        for t in response_type.split(' ') {
            match t {
                "code" => code = true,
                "token" => token = true,
                "id_token" => id_token = true,
                _ => {}
            }
        }
    }
    // Implicit rules use the grant types the client ends up with, which include `implicit`
    // exactly when a response type issues a token from the authorization endpoint (defect 2
    // of the reference).
    let implicit = token || id_token;

    // 5. Mandatory members.
    check_mandatory(&m, any_response_type, &prepared.encrypted_responses)?;

    // 6. Encryption dependencies: enc needs alg, alg defaults enc, encrypted needs signed
    //    (only for recognised members: `m` holds no others).
    for &[alg, enc, signed] in &prepared.encrypted_responses {
        encryption_pair(&mut m, alg, enc)?;
        if m.contains_key(alg) && !m.contains_key(signed) {
            return Err(fail(format!(
                "{signed} is mandatory property when {alg} is provided"
            )));
        }
    }
    if prepared.request_object_encryption {
        encryption_pair(
            &mut m,
            "request_object_encryption_alg",
            "request_object_encryption_enc",
        )?;
    }

    // 7. Allowed values.
    check_enums(&m, server, prepared)?;

    // 8. URIs that are not redirect URIs (and their localized variants).
    for member in WEB_URIS {
        if let Some(s) = str_of(&m, member) {
            check_web_uri(member, s, false)?;
        }
    }
    for member in HTTPS_URIS {
        if let Some(s) = str_of(&m, member) {
            // Fetched documents may be plain http only where the operator allowed it for tests.
            let fetched = matches!(*member, "jwks_uri" | "sector_identifier_uri");
            check_web_uri(
                member,
                s,
                !(fetched && server.allow_http_document_uris_for_tests),
            )?;
        }
    }
    for (key, value) in &localized {
        if let (Some((base, _)), Some(s)) = (localized_key(key), value.as_str())
            && base != "client_name"
        {
            check_web_uri(key, s, false)?;
        }
    }

    // 9. scope.
    if let Some(scope) = str_of(&m, "scope") {
        let mut seen: Vec<&str> = Vec::new();
        for token in scope.split(' ') {
            if token.is_empty() || !server.scopes_supported.iter().any(|s| s == token) {
                return Err(fail(format!(
                    "scope must only contain supported scope values separated by single spaces ({} is not one of {})",
                    if token.is_empty() {
                        "an empty value"
                    } else {
                        token
                    },
                    or_list(&server.scopes_supported)
                )));
            }
            if !seen.contains(&token) {
                seen.push(token);
            }
        }
        // Rewritten only when a value was repeated.
        if seen.len() < scope.split(' ').count() {
            let joined = seen.join(" ");
            m.insert("scope".into(), Value::String(joined));
        }
    }

    // 10. Redirect URIs.
    let native = str_of(&m, "application_type") == Some("native");
    for label in ["post_logout_redirect_uris", "redirect_uris"] {
        for uri in str_items(&m, label) {
            check_redirect_uri(label, uri, native, implicit).map_err(fail)?;
        }
    }

    // 11. contacts.
    for contact in str_items(&m, "contacts") {
        if !is_email(contact) {
            return Err(fail(format!(
                "contacts can only contain email addresses ({contact:?} is not one)"
            )));
        }
    }

    // 12. Forced values.
    let f = &server.features;
    if f.request_objects && f.require_signed_request_object {
        m.insert("require_signed_request_object".into(), true.into());
    }
    if f.pushed_authorization_requests && f.require_pushed_authorization_requests {
        m.insert("require_pushed_authorization_requests".into(), true.into());
    }

    // 13. Lists that must not be empty when response types are registered.
    if any_response_type && str_items(&m, "redirect_uris").next().is_none() {
        let par_exception = f.pushed_authorization_requests
            && f.allow_unregistered_redirect_uris
            && flag(&m, "require_pushed_authorization_requests")
            && str_of(&m, "token_endpoint_auth_method") != Some("none")
            && !m.contains_key("sector_identifier_uri");
        if !par_exception {
            return Err(fail(
                "redirect_uris must contain members (at least one redirect URI is needed for the registered response_types)",
            ));
        }
    }
    if any_response_type
        && m.get("response_modes")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
    {
        return Err(fail(
            "response_modes must contain members when provided (omit it to allow every mode)",
        ));
    }

    // 14. grant_types follow response_types (never an error by itself). The member is there,
    //     an array of strings: it has a default and passed its type check.
    if let Some(Value::Array(grants)) = m.get_mut("grant_types") {
        let listed = |grants: &[Value], g: &str| grants.iter().any(|x| x.as_str() == Some(g));
        if code && !listed(grants, "authorization_code") {
            grants.push("authorization_code".into());
        }
        if implicit && !listed(grants, "implicit") {
            grants.push("implicit".into());
        }
        grants.retain(|g| match g.as_str() {
            Some("implicit") => implicit,
            Some("authorization_code") => code,
            _ => true,
        });
        for g in grants.iter().filter_map(Value::as_str) {
            if !server.grant_types_supported.iter().any(|s| s == g) {
                return Err(fail(format!(
                    "grant_types must include {g} for the registered response_types, and this server does not support it"
                )));
            }
        }
    }

    // 15. Proof of possession.
    let mtls_bound = flag(&m, "tls_client_certificate_bound_access_tokens");
    let dpop_bound = flag(&m, "dpop_bound_access_tokens");
    if mtls_bound && dpop_bound {
        return Err(fail(
            "only one proof of possession mechanism can be made required at a time (tls_client_certificate_bound_access_tokens or dpop_bound_access_tokens)",
        ));
    }
    for (bound, name) in [
        (mtls_bound, "tls_client_certificate_bound_access_tokens"),
        (dpop_bound, "dpop_bound_access_tokens"),
    ] {
        if bound && token {
            return Err(fail(format!(
                "response_types must not include \"token\" when {name} is used"
            )));
        }
    }

    // 16. mTLS certificate subject.
    if str_of(&m, "token_endpoint_auth_method") == Some("tls_client_auth") {
        let given: Vec<&str> = TLS_SUBJECT_MEMBERS
            .iter()
            .copied()
            .filter(|k| m.contains_key(*k))
            .collect();
        match given.len() {
            0 => {
                return Err(fail(format!(
                    "tls_client_auth requires one of the certificate subject value parameters ({})",
                    TLS_SUBJECT_MEMBERS.join(", ")
                )));
            }
            1 => {}
            _ => {
                return Err(fail(format!(
                    "only one tls_client_auth certificate subject value must be provided (got {})",
                    given.join(", ")
                )));
            }
        }
    } else if server.features.mtls_client_auth {
        // Without the feature, these members are not recognised: `m` has none of them.
        for k in TLS_SUBJECT_MEMBERS {
            m.remove(*k);
        }
    }

    // 17. Keys.
    if m.contains_key("jwks") && m.contains_key("jwks_uri") {
        return Err(fail("jwks and jwks_uri must not be used at the same time"));
    }
    if let Some(set) = m.get("jwks") {
        let keys = jwks::check_set(set, "jwks").map_err(fail)?;
        jwks::check_usable(&keys, &m, "jwks").map_err(fail)?;
    }

    // 18. Extra and localized members.
    m.extend(localized);
    for (k, v) in extra {
        m.entry(k).or_insert(v);
    }
    Ok(ClientMetadata::from_trusted(m))
}

/// The "is mandatory property" rules (reference §4.5.1, without the secret rule: the
/// registrar settles secrets itself).
///
/// `encrypted_responses` are the recognised rows of [`ENCRYPTED_RESPONSE_MEMBERS`].
fn check_mandatory(
    m: &Map<String, Value>,
    any_response_type: bool,
    encrypted_responses: &[[&str; 3]],
) -> Result<(), MetadataError> {
    let mandatory = |name: &str, why: &str| Err(fail(format!("{name} is mandatory property{why}")));
    if any_response_type && !m.contains_key("redirect_uris") {
        return mandatory("redirect_uris", "");
    }
    let has_grant = |grant: &str| str_items(m, "grant_types").any(|g| g == grant);
    let pairwise = str_of(m, "subject_type") == Some("pairwise");
    if has_grant(CIBA_GRANT) {
        let Some(mode) = str_of(m, "backchannel_token_delivery_mode") else {
            return mandatory("backchannel_token_delivery_mode", " for CIBA clients");
        };
        if mode != "poll" && !m.contains_key("backchannel_client_notification_endpoint") {
            return mandatory(
                "backchannel_client_notification_endpoint",
                &format!(" when backchannel_token_delivery_mode is {mode}"),
            );
        }
    }
    for grant in [CIBA_GRANT, DEVICE_GRANT] {
        if pairwise && has_grant(grant) {
            if !m.contains_key("jwks_uri") {
                return mandatory("jwks_uri", &format!(" for pairwise {grant} clients"));
            }
            if any_response_type && !m.contains_key("sector_identifier_uri") {
                return mandatory(
                    "sector_identifier_uri",
                    &format!(" for pairwise {grant} clients with response_types"),
                );
            }
        }
    }
    if pairwise && any_response_type && !m.contains_key("sector_identifier_uri") {
        // Defect 1 of the reference: an unparseable URI here is a 400, not a 500.
        let mut hosts: Vec<String> = Vec::new();
        for uri in str_items(m, "redirect_uris") {
            let url = Url::parse(uri).map_err(|_| {
                fail(format!(
                    "redirect_uris must only contain valid absolute uris ({uri:?} is not one)"
                ))
            })?;
            let host = format!(
                "{}:{}",
                url.host_str().unwrap_or_default(),
                url.port_or_known_default()
                    .map(|p| p.to_string())
                    .unwrap_or_default()
            );
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        if hosts.len() > 1 {
            return mandatory(
                "sector_identifier_uri",
                " for pairwise clients whose redirect_uris use more than one host",
            );
        }
    }
    if m.contains_key("jwks") || m.contains_key("jwks_uri") {
        return Ok(());
    }
    // The first member (and its value) that needs the client's public keys, if any.
    let method = str_of(m, "token_endpoint_auth_method").unwrap_or_default();
    let needs_keys = matches!(method, "private_key_jwt" | "self_signed_tls_client_auth")
        .then_some(("token_endpoint_auth_method", method))
        .or_else(|| {
            [
                "request_object_signing_alg",
                "backchannel_authentication_request_signing_alg",
            ]
            .into_iter()
            .find_map(|member| {
                let alg = str_of(m, member).filter(|a| jwks::is_asymmetric_jws(a))?;
                Some((member, alg))
            })
        })
        .or_else(|| {
            encrypted_responses.iter().find_map(|[member, _, _]| {
                let alg = str_of(m, member).filter(|a| jwks::is_asymmetric_jwe(a))?;
                Some((*member, alg))
            })
        });
    if let Some((member, value)) = needs_keys {
        return Err(fail(format!(
            "jwks or jwks_uri is mandatory for this client ({member} {value} needs the client's public keys)"
        )));
    }
    Ok(())
}

/// `enc` needs `alg`; `alg` alone gets the default `enc`.
fn encryption_pair(m: &mut Map<String, Value>, alg: &str, enc: &str) -> Result<(), MetadataError> {
    match (m.contains_key(alg), m.contains_key(enc)) {
        (false, true) => Err(fail(format!(
            "{alg} is mandatory property when {enc} is provided"
        ))),
        (true, false) => {
            m.insert(enc.to_owned(), Value::String(DEFAULT_ENC.to_owned()));
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Resolves the offered choice lists (OpenID Connect RP Metadata Choices 1.0): each list must
/// be an array of non-empty strings that includes the target's explicit value, if any; the
/// target becomes the explicit value or else the first listed value the server allows.
fn resolve_choices(
    m: &mut Map<String, Value>,
    choices: &Map<String, Value>,
    server: &ServerMetadata,
) -> Result<(), MetadataError> {
    for (choice, target) in CHOICES {
        let Some(list) = choices.get(*choice) else {
            continue;
        };
        let Value::Array(items) = list else {
            return Err(fail(format!(
                "{choice} must be an array (the {target} values this client can use, most preferred first)"
            )));
        };
        let mut offered: Vec<&str> = Vec::with_capacity(items.len());
        for item in items {
            match item.as_str() {
                Some(s) if !s.is_empty() => offered.push(s),
                _ => {
                    return Err(fail(format!(
                        "{choice} must only contain non-empty strings (got {item})"
                    )));
                }
            }
        }
        let explicit = match m.get(*target) {
            None => None,
            Some(Value::String(s)) if offered.contains(&s.as_str()) => Some(s.clone()),
            Some(other) => {
                return Err(fail(format!(
                    "{choice} must include the value of provided {target} ({other})"
                )));
            }
        };
        let allowed = allowed_values(target, m, server);
        let method_blocked = |candidate: &str| {
            (*target == "token_endpoint_auth_method")
                .then(|| pairwise_grant_needing_key_auth(m, candidate))
                .flatten()
        };
        let pick = explicit
            .as_deref()
            .into_iter()
            .chain(offered.iter().copied())
            .find(|c| allowed.contains(c) && method_blocked(c).is_none())
            .map(str::to_owned);
        let Some(pick) = pick else {
            let blocked = offered
                .iter()
                .filter(|c| allowed.contains(c))
                .find_map(|c| method_blocked(c));
            let why = if let Some(grant) = blocked {
                format!(
                    "pairwise {grant} clients must utilize private_key_jwt or self_signed_tls_client_auth"
                )
            } else if allowed.is_empty() && *target == "token_endpoint_auth_signing_alg" {
                format!(
                    "token_endpoint_auth_method {} uses no signing algorithm",
                    str_of(m, "token_endpoint_auth_method").unwrap_or_default()
                )
            } else if allowed.is_empty() {
                format!("this server allows no {target}")
            } else {
                format!("{target} can be {}", or_list(allowed.iter()))
            };
            return Err(fail(format!(
                "{choice} includes no supported values ({why})"
            )));
        };
        m.insert((*target).to_owned(), Value::String(pick));
    }
    Ok(())
}

/// Values the server allows for a member: one of its lists, filtered (no allocation).
#[derive(Clone, Copy)]
struct Allowed<'s> {
    values: &'s [String],
    keep: fn(&str) -> bool,
}

impl<'s> Allowed<'s> {
    /// All of `values`.
    fn all(values: &'s [String]) -> Self {
        Self {
            values,
            keep: |_| true,
        }
    }

    fn iter(self) -> impl Iterator<Item = &'s str> + Clone {
        self.values
            .iter()
            .map(String::as_str)
            .filter(move |v| (self.keep)(v))
    }

    fn contains(self, value: &str) -> bool {
        self.iter().any(|a| a == value)
    }

    fn is_empty(self) -> bool {
        self.iter().next().is_none()
    }
}

/// The values the server allows for a choice target (§4.4); the signing algorithm of token
/// endpoint authentication depends on the client's `token_endpoint_auth_method`.
fn allowed_values<'s>(
    target: &str,
    m: &Map<String, Value>,
    server: &'s ServerMetadata,
) -> Allowed<'s> {
    let s = server;
    let without_none = |values| Allowed {
        values,
        keep: |v| v != "none",
    };
    match target {
        "id_token_signed_response_alg" => without_none(&s.id_token_signing_alg_values_supported),
        "userinfo_signed_response_alg" => without_none(&s.userinfo_signing_alg_values_supported),
        "introspection_signed_response_alg" => {
            without_none(&s.introspection_signing_alg_values_supported)
        }
        "authorization_signed_response_alg" => {
            without_none(&s.authorization_signing_alg_values_supported)
        }
        "request_object_signing_alg" => {
            without_none(&s.request_object_signing_alg_values_supported)
        }
        "backchannel_authentication_request_signing_alg" => Allowed {
            values: &s.backchannel_authentication_request_signing_alg_values_supported,
            keep: jwks::is_asymmetric_jws,
        },
        "request_object_encryption_alg" => {
            Allowed::all(&s.request_object_encryption_alg_values_supported)
        }
        "request_object_encryption_enc" => {
            Allowed::all(&s.request_object_encryption_enc_values_supported)
        }
        "subject_type" => Allowed::all(&s.subject_types_supported),
        "token_endpoint_auth_method" => Allowed::all(&s.token_endpoint_auth_methods_supported),
        "token_endpoint_auth_signing_alg" => Allowed {
            values: &s.token_endpoint_auth_signing_alg_values_supported,
            keep: match str_of(m, "token_endpoint_auth_method").unwrap_or_default() {
                "client_secret_jwt" => |alg| alg.starts_with("HS"),
                "private_key_jwt" => |alg| !alg.starts_with("HS") && alg != "none",
                _ => |_| false,
            },
        },
        t if t.ends_with("_encrypted_response_alg") => {
            Allowed::all(&s.encryption_alg_values_supported)
        }
        t if t.ends_with("_encrypted_response_enc") => {
            Allowed::all(&s.encryption_enc_values_supported)
        }
        _ => Allowed::all(&[]),
    }
}

/// The device or CIBA grant that rules `method` out for a pairwise client (those must
/// authenticate with `private_key_jwt` or `self_signed_tls_client_auth`), if any.
fn pairwise_grant_needing_key_auth(m: &Map<String, Value>, method: &str) -> Option<&'static str> {
    if str_of(m, "subject_type") != Some("pairwise")
        || matches!(method, "private_key_jwt" | "self_signed_tls_client_auth")
    {
        return None;
    }
    [DEVICE_GRANT, CIBA_GRANT]
        .into_iter()
        .find(|g| str_items(m, "grant_types").any(|x| x == *g))
}

/// The allowed-value checks, in the reference's order (§4.1 step 10): the rules of
/// [`ALLOWED_VALUE_RULES`] whose member is recognised (`m` has no other).
fn check_enums(
    m: &Map<String, Value>,
    server: &ServerMetadata,
    prepared: &Prepared,
) -> Result<(), MetadataError> {
    // Only a member that is there (as a string) is checked.
    let one_of = |key: &str| match str_of(m, key) {
        Some(value) => check_one_of(key, value, allowed_values(key, m, server).iter()),
        None => Ok(()),
    };
    for &(member, rule) in &prepared.allowed_value_rules {
        match rule {
            AllowedRule::OneOf => one_of(member)?,
            AllowedRule::AllOf(list) => check_all_of(m, member, list(server))?,
            AllowedRule::ResponseTypes => {
                check_all_of(m, member, &prepared.response_types_supported)?;
            }
            AllowedRule::ApplicationType => {
                if let Some(value) = str_of(m, member) {
                    check_one_of(member, value, ["native", "web"])?;
                }
            }
            AllowedRule::DeliveryMode => {
                if let Some(mode) = str_of(m, member) {
                    let modes = server
                        .backchannel_token_delivery_modes_supported
                        .iter()
                        .map(String::as_str)
                        .filter(|x| matches!(*x, "poll" | "ping"));
                    check_one_of(member, mode, modes)?;
                }
            }
            AllowedRule::AuthMethod => {
                one_of(member)?;
                let method = str_of(m, member).unwrap_or_default();
                if let Some(grant) = pairwise_grant_needing_key_auth(m, method) {
                    return Err(fail(format!(
                        "pairwise {grant} clients must utilize private_key_jwt or self_signed_tls_client_auth token endpoint authentication methods"
                    )));
                }
            }
            AllowedRule::AuthSigningAlg => {
                if m.contains_key(member) && allowed_values(member, m, server).is_empty() {
                    let method = str_of(m, "token_endpoint_auth_method").unwrap_or_default();
                    return Err(fail(format!(
                        "{member} must not be provided with token_endpoint_auth_method {method} (only client_secret_jwt and private_key_jwt use it)"
                    )));
                }
                one_of(member)?;
            }
        }
    }
    Ok(())
}

fn check_type(name: &str, kind: Kind, v: &mut Value) -> Result<(), MetadataError> {
    let err = |what: &str| fail(format!("{name} {what}"));
    match kind {
        Kind::Str => match v {
            Value::String(s) if !s.is_empty() => Ok(()),
            _ => Err(err("must be a non-empty string if provided")),
        },
        Kind::Bool => v
            .is_boolean()
            .then_some(())
            .ok_or_else(|| err("must be a boolean")),
        Kind::Int => match v.as_u64() {
            Some(n) if n < (1u64 << 53) => Ok(()),
            _ => Err(err("must be a non-negative integer")),
        },
        Kind::Object => v
            .is_object()
            .then_some(())
            .ok_or_else(|| err("must be a JSON object")),
        Kind::StrArray => {
            let Value::Array(items) = v else {
                return Err(err("must be an array"));
            };
            if items
                .iter()
                .any(|i| i.as_str().is_none_or(|s| s.is_empty()))
            {
                return Err(err("must only contain non-empty strings"));
            }
            dedup_strings(items);
            Ok(())
        }
        Kind::Any => Ok(()),
    }
}

/// Removes repeated strings from `items`, keeping the first of each, in order.
fn dedup_strings(items: &mut Vec<Value>) {
    // Short arrays (the usual case) are compared pairwise, long ones sorted.
    let unique = if items.len() <= 16 {
        items
            .iter()
            .enumerate()
            .all(|(i, v)| !items[..i].contains(v))
    } else {
        let mut sorted: Vec<Option<&str>> = items.iter().map(Value::as_str).collect();
        sorted.sort_unstable();
        sorted.windows(2).all(|w| w[0] != w[1])
    };
    if unique {
        return;
    }
    // Repeats are rare: only then are the first occurrences marked and the others dropped.
    let mut seen = HashSet::with_capacity(items.len());
    let first: Vec<bool> = items.iter().map(|v| seen.insert(v.as_str())).collect();
    let mut first = first.into_iter();
    items.retain(|_| first.next().unwrap_or(true));
}

/// The strings of an array member (none when it is absent or not an array).
fn str_items<'a>(m: &'a Map<String, Value>, key: &str) -> impl Iterator<Item = &'a str> {
    m.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// Splits a response type on spaces, removes duplicate tokens and sorts them.
fn normalise_response_type(value: &str) -> String {
    let mut tokens: Vec<&str> = value.split(' ').filter(|t| !t.is_empty()).collect();
    tokens.sort_unstable();
    tokens.dedup();
    tokens.join(" ")
}

/// Whether [`normalise_response_type`] would return `value` unchanged: tokens in strictly
/// increasing order, separated by single spaces.
fn is_normalised_response_type(value: &str) -> bool {
    let mut previous = "";
    value.split(' ').all(|t| {
        let ordered = !t.is_empty() && t > previous;
        previous = t;
        ordered
    })
}

/// `'a'`, `'a' or 'b'`, `'a', 'b', or 'c'`.
fn or_list<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> String {
    let quoted: Vec<String> = values
        .into_iter()
        .map(|v| format!("'{}'", v.as_ref()))
        .collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        [init @ .., last] => format!("{}, or {last}", init.join(", ")),
    }
}

/// `value` of `key` must be one of `allowed`.
fn check_one_of<'a>(
    key: &str,
    value: &str,
    allowed: impl IntoIterator<Item = &'a str> + Clone,
) -> Result<(), MetadataError> {
    if allowed.clone().into_iter().any(|a| a == value) {
        return Ok(());
    }
    let allowed: Vec<&str> = allowed.into_iter().collect();
    if allowed.is_empty() {
        return Err(fail(format!(
            "{key} must not be provided (no values are allowed)"
        )));
    }
    Err(fail(format!(
        "{key} must be {} (got '{value}')",
        or_list(allowed)
    )))
}

fn check_all_of(
    m: &Map<String, Value>,
    key: &str,
    allowed: &[String],
) -> Result<(), MetadataError> {
    let Some(Value::Array(items)) = m.get(key) else {
        return Ok(());
    };
    let Some(bad) = items
        .iter()
        .filter_map(Value::as_str)
        .find(|v| !allowed.iter().any(|a| a == v))
    else {
        return Ok(());
    };
    Err(fail(if allowed.is_empty() {
        format!("{key} must be empty (no values are allowed)")
    } else {
        format!("{key} can only contain {} (got '{bad}')", or_list(allowed))
    }))
}

/// A URI member that is not a redirect URI: `http(s)` or `https` only, absolute, with a host.
fn check_web_uri(member: &str, value: &str, https_only: bool) -> Result<(), MetadataError> {
    let url = Url::parse(value).ok();
    let scheme = url.as_ref().map(Url::scheme);
    let ok = if https_only {
        scheme == Some("https")
    } else {
        matches!(scheme, Some("http" | "https"))
    };
    if !ok {
        return Err(fail(if https_only {
            format!("{member} must be an https uri (got {value:?})")
        } else {
            format!("{member} must be a web uri: http or https (got {value:?})")
        }));
    }
    if member == "backchannel_logout_uri" && value.contains('#') {
        return Err(fail(
            "backchannel_logout_uri must not contain a fragment (OpenID Connect Back-Channel Logout §2.2)",
        ));
    }
    Ok(())
}

/// The redirect URI rules of OpenID Connect Registration §2 and RFC 8252 (native apps).
fn check_redirect_uri(label: &str, uri: &str, native: bool, implicit: bool) -> Result<(), String> {
    let url = Url::parse(uri).map_err(|_| {
        format!("{label} must only contain valid absolute uris ({uri:?} is not one)")
    })?;
    if uri.contains('#') || url.fragment().is_some() {
        return Err(format!("{label} must not contain fragments ({uri:?})"));
    }
    let host = url.host_str().unwrap_or_default();
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    if native {
        match url.scheme() {
            "http" if !loopback => Err(format!(
                "{label} for native clients using http as a protocol can only use loopback addresses as hostnames ({uri:?})"
            )),
            "https" if loopback => Err(format!(
                "{label} for native clients using claimed HTTPS URIs must not be using {host} as hostname"
            )),
            "javascript" | "vbscript" | "data" | "blob" | "file" | "about" => Err(format!(
                "{label} must not use the {} URI scheme",
                url.scheme()
            )),
            _ => Ok(()),
        }
    } else {
        match url.scheme() {
            "http" | "https" => {}
            _ => {
                return Err(format!(
                    "{label} must only contain web uris (http or https) for web clients ({uri:?})"
                ));
            }
        }
        if implicit && url.scheme() == "http" {
            return Err(format!(
                "{label} for web clients using implicit flow MUST only register URLs using the https scheme ({uri:?})"
            ));
        }
        if implicit && host == "localhost" {
            return Err(format!(
                "{label} for web clients using implicit flow must not be using localhost ({uri:?})"
            ));
        }
        Ok(())
    }
}

/// A permissive `local@domain` check in the spirit of the W3C e-mail input type.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    // Byte by byte: every allowed character is ASCII, so no byte of another one passes.
    let local_ok = !local.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".!#$%&'*+/=?^_`{|}~-".contains(&b));
    let domain_ok = !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    local_ok && domain_ok
}

/// Whether `properties` describe a client that needs a secret once the server's defaults
/// are applied (the reference decides this on the raw input; we decide it on what will be
/// registered).
///
/// Choice lists (feature `rp_metadata_choices`) are resolved first, so a client offering only
/// `"token_endpoint_auth_methods_supported": ["none"]` needs no secret.
pub fn needs_secret_after_defaults(
    properties: &Map<String, Value>,
    server: &ServerMetadata,
) -> bool {
    needs_secret_prepared(properties, server, &Prepared::new(server))
}

fn needs_secret_prepared(
    properties: &Map<String, Value>,
    server: &ServerMetadata,
    prepared: &Prepared,
) -> bool {
    let choices = if server.features.rp_metadata_choices {
        offered_choices(properties, server, &prepared.recognised)
    } else {
        Map::new()
    };
    let defaults = &prepared.defaults;
    if choices.is_empty() {
        // The input over the defaults, looked up member by member rather than merged into a copy.
        return super::needs_secret_by(|k| {
            properties
                .get(k)
                .filter(|v| !v.is_null())
                .or_else(|| defaults.get(k))
        });
    }
    let mut merged = defaults.clone();
    for (choice, target) in CHOICES {
        if choices.contains_key(*choice) {
            merged.remove(*target);
        }
    }
    for (k, v) in properties {
        if !v.is_null() && !choices.contains_key(k) {
            merged.insert(k.clone(), v.clone());
        }
    }
    match resolve_choices(&mut merged, &choices, server) {
        Ok(()) => super::needs_secret(&merged),
        // Validation refuses these choices anyway; a secret does no harm meanwhile.
        Err(_) => true,
    }
}
