//! Defaults and server-decided values: the built-in defaults of the member table and the
//! operator's `client_defaults` (RFC 7591 §2: the server "MAY provide default values"), the
//! default `enc` of an encryption (OpenID Connect Registration §2: "A128CBC-HS256"), and the
//! values the operator forces.

use serde_json::{Map, Value};

use super::members::{Default as MemberDefault, Member, localized_key};
use super::types::check_type;
use super::validate::Prepared;
use super::{MetadataError, ServerMetadata};

/// The `enc` used when a client names only the `alg` of an encryption.
const DEFAULT_ENC: &str = "A128CBC-HS256";

/// The built-in defaults of the recognised members, then the operator's `client_defaults`.
pub(super) fn defaults(
    server: &ServerMetadata,
    recognised: &[&'static Member],
) -> Map<String, Value> {
    let mut d = Map::new();
    for member in recognised {
        let value = match member.default {
            MemberDefault::None => continue,
            MemberDefault::Str(s) => Value::from(s),
            MemberDefault::Bool(b) => Value::from(b),
            MemberDefault::Strs(items) => Value::from(items.to_vec()),
            MemberDefault::SubjectType => {
                if server.subject_types_supported == ["pairwise"] {
                    "pairwise".into()
                } else {
                    "public".into()
                }
            }
        };
        d.insert(member.name.to_owned(), value);
    }
    for (k, v) in &server.client_defaults {
        d.insert(k.clone(), v.clone());
    }
    d
}

/// The input once assigned (step 1).
pub(super) struct Assigned {
    /// The recognised members: the client's, then the defaults of those still missing.
    pub m: Map<String, Value>,
    /// The language-tagged members, set aside.
    pub localized: Map<String, Value>,
    /// The operator's extra members, set aside.
    pub extra: Map<String, Value>,
    /// Whether every kept member passed its type check.
    pub all_typed: bool,
}

/// Step 1: every recognised member the client sent (the input map is kept, the rest of it
/// moved out or dropped), then the defaults of the members still missing (but not for a
/// member the client offers a choice list for). Localized and extra members are set aside;
/// choice lists are input only; unknown members are dropped (RFC 7591 §2).
///
/// Each recognised member is type-checked as it is kept: a failure is reported in step 2, in
/// table order (the checks only de-duplicate arrays, so running them again there is
/// harmless). The defaults were checked when the validator was prepared.
pub(super) fn assign(
    input: Map<String, Value>,
    choices: &Map<String, Value>,
    server: &ServerMetadata,
    prepared: &Prepared,
) -> Assigned {
    let chosen = |k: &str| {
        prepared
            .choices
            .iter()
            .any(|(c, t)| t.name == k && choices.contains_key(*c))
    };
    let mut all_typed = prepared.defaults_typed;
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
    Assigned {
        m,
        localized,
        extra,
        all_typed,
    }
}

/// Step 6: encryption dependencies (OpenID Connect Registration §2): `enc` needs `alg`, `alg`
/// alone gets the default `enc`, an encrypted response needs its signing member (only for
/// recognised members: `m` holds no others).
pub(super) fn apply_encryption(
    m: &mut Map<String, Value>,
    prepared: &Prepared,
) -> Result<(), MetadataError> {
    for &[alg, enc, signed] in &prepared.encrypted_responses {
        encryption_pair(m, alg, enc)?;
        if m.contains_key(alg) && !m.contains_key(signed) {
            return Err(MetadataError::member(
                signed,
                format!("{signed} is mandatory property when {alg} is provided"),
            ));
        }
    }
    for (alg, encryption) in &prepared.encryptions {
        if encryption.signed.is_none() {
            encryption_pair(m, alg, encryption.enc)?;
        }
    }
    Ok(())
}

/// `enc` needs `alg`; `alg` alone gets the default `enc`.
fn encryption_pair(m: &mut Map<String, Value>, alg: &str, enc: &str) -> Result<(), MetadataError> {
    match (m.contains_key(alg), m.contains_key(enc)) {
        (false, true) => Err(MetadataError::member(
            alg,
            format!("{alg} is mandatory property when {enc} is provided"),
        )),
        (true, false) => {
            m.insert(enc.to_owned(), Value::String(DEFAULT_ENC.to_owned()));
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Step 12: the values the operator forces on every client (RFC 9101 §10.5, RFC 9126 §6).
pub(super) fn force(m: &mut Map<String, Value>, server: &ServerMetadata) {
    let f = &server.features;
    if f.request_objects && f.require_signed_request_object {
        m.insert("require_signed_request_object".into(), true.into());
    }
    if f.pushed_authorization_requests && f.require_pushed_authorization_requests {
        m.insert("require_pushed_authorization_requests".into(), true.into());
    }
}
