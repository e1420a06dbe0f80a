//! Allowed values (RFC 7591 §2: "the authorization server MAY reject or replace" values it
//! does not support), and OpenID Connect RP Metadata Choices 1.0: preference lists a client
//! offers, from which the server picks the member's value.

use serde_json::{Map, Value};

use super::members::{Keep, Member, Rule};
use super::rules::{CIBA_GRANT, DEVICE_GRANT};
use super::types::{str_items, str_of};
use super::validate::Prepared;
use super::{MetadataError, ServerMetadata, jwks};

/// The choice lists in `input` that count: the feature is on, the list is not `null` and its
/// target member is recognised.
pub(super) fn offered_choices(
    input: &Map<String, Value>,
    prepared: &Prepared,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (choice, _) in &prepared.choices {
        if let Some(list) = input.get(*choice).filter(|v| !v.is_null()) {
            out.insert((*choice).to_owned(), list.clone());
        }
    }
    out
}

/// Resolves the offered choice lists (OpenID Connect RP Metadata Choices 1.0): each list must
/// be an array of non-empty strings that includes the target's explicit value, if any; the
/// target becomes the explicit value or else the first listed value the server allows.
pub(super) fn resolve_choices(
    m: &mut Map<String, Value>,
    choices: &Map<String, Value>,
    server: &ServerMetadata,
    prepared: &Prepared,
) -> Result<(), MetadataError> {
    for &(choice, target_member) in &prepared.choices {
        let Some(list) = choices.get(choice) else {
            continue;
        };
        let target = target_member.name;
        let Value::Array(items) = list else {
            return Err(MetadataError::member(
                choice,
                format!(
                    "{choice} must be an array (the {target} values this client can use, most preferred first)"
                ),
            ));
        };
        let mut offered: Vec<&str> = Vec::with_capacity(items.len());
        for item in items {
            match item.as_str() {
                Some(s) if !s.is_empty() => offered.push(s),
                _ => {
                    return Err(MetadataError::member(
                        choice,
                        format!("{choice} must only contain non-empty strings (got {item})"),
                    ));
                }
            }
        }
        let explicit = match m.get(target) {
            None => None,
            Some(Value::String(s)) if offered.contains(&s.as_str()) => Some(s.clone()),
            Some(other) => {
                return Err(MetadataError::member(
                    choice,
                    format!("{choice} must include the value of provided {target} ({other})"),
                ));
            }
        };
        let allowed = allowed_values(target_member, m, server);
        let method_blocked = |candidate: &str| {
            (target_member.rule == Rule::AuthMethod)
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
            } else if allowed.is_empty() && target_member.rule == Rule::AuthSigningAlg {
                format!(
                    "token_endpoint_auth_method {} uses no signing algorithm",
                    str_of(m, "token_endpoint_auth_method").unwrap_or_default()
                )
            } else if allowed.is_empty() {
                format!("this server allows no {target}")
            } else {
                format!("{target} can be {}", or_list(allowed.iter()))
            };
            return Err(MetadataError::member(
                choice,
                format!("{choice} includes no supported values ({why})"),
            ));
        };
        m.insert(target.to_owned(), Value::String(pick));
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

/// The values the server allows for `member` (its [`Supported`](super::members::Supported)
/// list, kept by its rule); the signing algorithm of token endpoint authentication depends on
/// the client's `token_endpoint_auth_method`.
fn allowed_values<'s>(
    member: &Member,
    m: &Map<String, Value>,
    server: &'s ServerMetadata,
) -> Allowed<'s> {
    let Some(supported) = member.supported else {
        return Allowed::all(&[]);
    };
    let keep: fn(&str) -> bool = match supported.keep {
        Keep::All => |_| true,
        Keep::NotNone => |v| v != "none",
        Keep::AsymmetricJws => jwks::is_asymmetric_jws,
        Keep::PollOrPing => |v| matches!(v, "poll" | "ping"),
        Keep::ByAuthMethod => match str_of(m, "token_endpoint_auth_method").unwrap_or_default() {
            "client_secret_jwt" => |alg| alg.starts_with("HS"),
            "private_key_jwt" => |alg| !alg.starts_with("HS") && alg != "none",
            _ => |_| false,
        },
    };
    Allowed {
        values: (supported.values)(server),
        keep,
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

/// Step 7: the allowed-value checks of the recognised members (`m` has no other), in table order.
pub(super) fn check_allowed_values(
    m: &Map<String, Value>,
    server: &ServerMetadata,
    prepared: &Prepared,
) -> Result<(), MetadataError> {
    // Only a member that is there (as a string) is checked.
    let one_of = |member: &Member| match str_of(m, member.name) {
        Some(value) => check_one_of(member.name, value, allowed_values(member, m, server).iter()),
        None => Ok(()),
    };
    for member in &prepared.allowed_value_rules {
        let name = member.name;
        match member.rule {
            Rule::None => {}
            Rule::OneOf => one_of(member)?,
            Rule::AllOf => {
                let list = member.supported.map_or(&[][..], |s| (s.values)(server));
                check_all_of(m, name, list)?;
            }
            Rule::ResponseTypes => {
                check_all_of(m, name, &prepared.response_types_supported)?;
            }
            Rule::Fixed(values) => {
                if let Some(value) = str_of(m, name) {
                    check_one_of(name, value, values.iter().copied())?;
                }
            }
            Rule::AuthMethod => {
                one_of(member)?;
                let method = str_of(m, name).unwrap_or_default();
                if let Some(grant) = pairwise_grant_needing_key_auth(m, method) {
                    return Err(MetadataError::metadata(format!(
                        "pairwise {grant} clients must utilize private_key_jwt or self_signed_tls_client_auth token endpoint authentication methods"
                    )));
                }
            }
            Rule::AuthSigningAlg => {
                if m.contains_key(name) && allowed_values(member, m, server).is_empty() {
                    let method = str_of(m, "token_endpoint_auth_method").unwrap_or_default();
                    return Err(MetadataError::member(
                        name,
                        format!(
                            "{name} must not be provided with token_endpoint_auth_method {method} (only client_secret_jwt and private_key_jwt use it)"
                        ),
                    ));
                }
                one_of(member)?;
            }
        }
    }
    Ok(())
}

/// `'a'`, `'a' or 'b'`, `'a', 'b', or 'c'`.
pub(super) fn or_list<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> String {
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
        return Err(MetadataError::member(
            key,
            format!("{key} must not be provided (no values are allowed)"),
        ));
    }
    Err(MetadataError::member(
        key,
        format!("{key} must be {} (got '{value}')", or_list(allowed)),
    ))
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
    Err(MetadataError::member(
        key,
        if allowed.is_empty() {
            format!("{key} must be empty (no values are allowed)")
        } else {
            format!("{key} can only contain {} (got '{bad}')", or_list(allowed))
        },
    ))
}
