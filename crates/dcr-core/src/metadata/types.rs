//! Types and syntax of member values: each member's JSON kind (RFC 7591 §2, OpenID Connect
//! Registration §2), language-tagged members (RFC 7591 §2.2), the identifiers the server
//! assigns, and `contacts`.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::MetadataError;
use super::lang;
use super::members::{Kind, localized_key};
use super::validate::Prepared;

/// Step 2: the type of every recognised member (only when a check failed as the members were
/// assigned: the error is reported for the first member in table order), then the language
/// tags and values of the language-tagged members.
pub(super) fn check_types(
    m: &mut Map<String, Value>,
    localized: &mut Map<String, Value>,
    all_typed: bool,
    prepared: &Prepared,
) -> Result<(), MetadataError> {
    if !all_typed {
        for member in &prepared.recognised {
            let Some(v) = m.get_mut(member.name) else {
                continue;
            };
            check_type(member.name, member.kind, v)?;
        }
    }
    for (key, value) in localized {
        let Some((base, tag)) = localized_key(key) else {
            continue;
        };
        let base = base.name;
        if !lang::is_well_formed(tag) {
            return Err(MetadataError::member(
                key,
                format!(
                    "{key}: \"{tag}\" is not a well-formed BCP 47 language tag (e.g. {base}#en or {base}#ja-Jpan-JP)"
                ),
            ));
        }
        check_type(key, Kind::Str, value)?;
    }
    Ok(())
}

/// Step 3: `client_id` is there, and it and `client_secret` are printable ASCII (RFC 6749
/// Appendix A.1 and A.2: VSCHAR).
pub(super) fn check_identifiers(m: &Map<String, Value>) -> Result<(), MetadataError> {
    if m.get("client_id").is_none() {
        return Err(MetadataError::member(
            "client_id",
            "client_id is mandatory property",
        ));
    }
    for field in ["client_id", "client_secret"] {
        if let Some(s) = str_of(m, field)
            && !s.bytes().all(|b| (0x20..=0x7e).contains(&b))
        {
            return Err(MetadataError::member(
                field,
                format!("{field} must only contain printable ASCII characters"),
            ));
        }
    }
    Ok(())
}

/// Step 11: `contacts` are e-mail addresses (RFC 7591 §2).
pub(super) fn check_contacts(m: &Map<String, Value>) -> Result<(), MetadataError> {
    for contact in str_items(m, "contacts") {
        if !is_email(contact) {
            return Err(MetadataError::member(
                "contacts",
                format!("contacts can only contain email addresses ({contact:?} is not one)"),
            ));
        }
    }
    Ok(())
}

pub(super) fn check_type(name: &str, kind: Kind, v: &mut Value) -> Result<(), MetadataError> {
    let err = |what: &str| MetadataError::member(name, format!("{name} {what}"));
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
pub(super) fn dedup_strings(items: &mut Vec<Value>) {
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

pub(super) fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

pub(super) fn flag(m: &Map<String, Value>, key: &str) -> bool {
    m.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The strings of an array member (none when it is absent or not an array).
pub(super) fn str_items<'a>(m: &'a Map<String, Value>, key: &str) -> impl Iterator<Item = &'a str> {
    m.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
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
