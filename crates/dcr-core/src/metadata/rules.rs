//! Rules between members: the mandatory members, response types and the grant types they
//! imply (OpenID Connect Registration §2), `scope` (RFC 7591 §2), and the lists that must not
//! be empty.

use serde_json::{Map, Value};

use super::choices::or_list;
use super::types::{dedup_strings, flag, str_items, str_of};
use super::uris::parse_uri;
use super::{MetadataError, ServerMetadata};

/// The CIBA grant type (CIBA Core §4).
pub(crate) const CIBA_GRANT: &str = "urn:openid:params:grant-type:ciba";
/// The device authorization grant type (RFC 8628 §3.4).
pub(crate) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What the registered `response_types` ask for.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ResponseTypes {
    /// At least one response type is registered.
    pub any: bool,
    /// A response type includes `code`.
    pub code: bool,
    /// A response type includes `token`.
    pub token: bool,
    /// A response type includes `id_token`.
    pub id_token: bool,
}

impl ResponseTypes {
    /// Whether a token is issued from the authorization endpoint: the grant types the client
    /// ends up with include `implicit` exactly then, so the implicit redirect rules apply.
    pub fn implicit(self) -> bool {
        self.token || self.id_token
    }
}

/// Step 4: normalises each response type (sorted tokens), de-duplicates them, and says what
/// they ask for.
pub(super) fn normalise_response_types(m: &mut Map<String, Value>) -> ResponseTypes {
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
    let mut types = ResponseTypes::default();
    for response_type in str_items(m, "response_types") {
        types.any = true;
        for t in response_type.split(' ') {
            match t {
                "code" => types.code = true,
                "token" => types.token = true,
                "id_token" => types.id_token = true,
                _ => {}
            }
        }
    }
    types
}

/// Step 5: the "is mandatory property" rules: `redirect_uris` with response types (RFC 7591
/// §2), the CIBA delivery members (CIBA Core §4), the keys and sector identifier of pairwise
/// device and CIBA clients, and a sector identifier for pairwise clients whose redirect URIs
/// use several hosts (OpenID Connect Core §8.1). The client secret is settled by the registrar.
pub(super) fn check_mandatory(
    m: &Map<String, Value>,
    any_response_type: bool,
) -> Result<(), MetadataError> {
    let mandatory = |name: &str, why: &str| {
        Err(MetadataError::member(
            name,
            format!("{name} is mandatory property{why}"),
        ))
    };
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
        // An unparseable URI here is a 400 (`invalid_redirect_uri`), like any other.
        let mut hosts: Vec<String> = Vec::new();
        for uri in str_items(m, "redirect_uris") {
            let url = parse_uri("redirect_uris", uri)?.ok_or_else(|| {
                MetadataError::member(
                    "redirect_uris",
                    format!(
                        "redirect_uris must only contain valid absolute uris ({uri:?} is not one)"
                    ),
                )
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
    Ok(())
}

/// Step 9: `scope` holds supported values separated by single spaces (RFC 6749 §3.3); a
/// repeated value is dropped.
pub(super) fn check_scope(
    m: &mut Map<String, Value>,
    server: &ServerMetadata,
) -> Result<(), MetadataError> {
    let Some(scope) = str_of(m, "scope") else {
        return Ok(());
    };
    let mut seen: Vec<&str> = Vec::new();
    for token in scope.split(' ') {
        if token.is_empty() || !server.scopes_supported.iter().any(|s| s == token) {
            return Err(MetadataError::member(
                "scope",
                format!(
                    "scope must only contain supported scope values separated by single spaces ({} is not one of {})",
                    if token.is_empty() {
                        "an empty value"
                    } else {
                        token
                    },
                    or_list(&server.scopes_supported)
                ),
            ));
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
    Ok(())
}

/// Step 13: lists that must not be empty when response types are registered; `redirect_uris`
/// may be empty for a client that must use PAR and authenticates (RFC 9126 §2.4), when the
/// operator allows it.
pub(super) fn check_non_empty(
    m: &Map<String, Value>,
    any_response_type: bool,
    server: &ServerMetadata,
) -> Result<(), MetadataError> {
    let f = &server.features;
    if any_response_type && str_items(m, "redirect_uris").next().is_none() {
        let par_exception = f.pushed_authorization_requests
            && f.allow_unregistered_redirect_uris
            && flag(m, "require_pushed_authorization_requests")
            && str_of(m, "token_endpoint_auth_method") != Some("none")
            && !m.contains_key("sector_identifier_uri");
        if !par_exception {
            return Err(MetadataError::member(
                "redirect_uris",
                "redirect_uris must contain members (at least one redirect URI is needed for the registered response_types)",
            ));
        }
    }
    if any_response_type
        && m.get("response_modes")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
    {
        return Err(MetadataError::member(
            "response_modes",
            "response_modes must contain members when provided (omit it to allow every mode)",
        ));
    }
    Ok(())
}

/// Step 14: `grant_types` follow `response_types` (OpenID Connect Registration §2: `code`
/// needs `authorization_code`, `id_token` and `token` need `implicit`); never an error by
/// itself, but the grant types must be supported. The member is there, an array of strings:
/// it has a default and passed its type check.
pub(super) fn derive_grant_types(
    m: &mut Map<String, Value>,
    types: ResponseTypes,
    server: &ServerMetadata,
) -> Result<(), MetadataError> {
    let (code, implicit) = (types.code, types.implicit());
    let Some(Value::Array(grants)) = m.get_mut("grant_types") else {
        return Ok(());
    };
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
            return Err(MetadataError::member(
                "grant_types",
                format!(
                    "grant_types must include {g} for the registered response_types, and this server does not support it"
                ),
            ));
        }
    }
    Ok(())
}

/// Splits a response type on spaces, removes duplicate tokens and sorts them.
pub(super) fn normalise_response_type(value: &str) -> String {
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
