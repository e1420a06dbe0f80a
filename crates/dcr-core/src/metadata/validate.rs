//! The validation pipeline: input members → [`ClientMetadata`] or the first rule broken.

use serde_json::{Map, Value};
use url::Url;

use super::{ClientMetadata, MetadataError, ServerMetadata};

/// How a member is typed.
#[derive(Clone, Copy, PartialEq, Eq)]
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
    }
    if f.jwt_userinfo {
        out.push(("userinfo_signed_response_alg", Kind::Str));
    }
    if f.jwt_introspection {
        out.push(("introspection_signed_response_alg", Kind::Str));
    }
    if f.jwt_response_modes {
        out.push(("authorization_signed_response_alg", Kind::Str));
    }
    if f.mtls_certificate_bound_access_tokens {
        out.push(("tls_client_certificate_bound_access_tokens", Kind::Bool));
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
    for (k, v) in &server.client_defaults {
        d.insert(k.clone(), v.clone());
    }
    d
}

/// Validates client metadata against what the server supports.
///
/// `input` holds the client's members plus the server-assigned ones (`client_id`,
/// `client_id_issued_at`, `client_secret`, `client_secret_expires_at`). Unknown members are
/// dropped (RFC 7591 §2) unless listed in [`ServerMetadata::extra_metadata`]. Returns the
/// metadata with defaults applied, or the first rule the input breaks.
pub fn validate(
    input: Map<String, Value>,
    server: &ServerMetadata,
) -> Result<ClientMetadata, MetadataError> {
    let mut recognised: Vec<(&str, Kind)> = ALWAYS.to_vec();
    recognised.extend(feature_members(server));
    let kind_of = |k: &str| {
        recognised
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, kind)| *kind)
    };

    // 1. Assign: defaults, then every recognised (or extra) member the client sent.
    //    `null` counts as absent, so the default applies.
    let mut m = Map::new();
    for (k, v) in defaults(server) {
        if kind_of(&k).is_some() {
            m.insert(k, v);
        }
    }
    let mut extra = Map::new();
    for (k, v) in input {
        if v.is_null() {
            continue;
        }
        if kind_of(&k).is_some() {
            m.insert(k, v);
        } else if server.extra_metadata.iter().any(|e| *e == k) {
            extra.insert(k, v);
        }
    }
    if !m.contains_key("response_types")
        || m.get("response_types")
            .is_some_and(|v| v.as_array().is_some_and(Vec::is_empty))
    {
        m.entry("redirect_uris")
            .or_insert_with(|| Value::Array(Vec::new()));
    }

    // 2. Types.
    for (name, kind) in &recognised {
        let Some(v) = m.get_mut(*name) else { continue };
        check_type(name, *kind, v)?;
    }

    // 3. Mandatory members.
    if m.get("client_id").is_none() {
        return Err(MetadataError::metadata("client_id is mandatory property"));
    }
    for field in ["client_id", "client_secret"] {
        if let Some(s) = m.get(field).and_then(Value::as_str) {
            if !s.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
                return Err(MetadataError::metadata(format!(
                    "{field} must only contain printable ASCII characters"
                )));
            }
        }
    }

    // 4. response_types: normalise each value (sorted tokens), then de-duplicate.
    if let Some(Value::Array(items)) = m.get_mut("response_types") {
        let mut out: Vec<Value> = Vec::new();
        for item in items.iter() {
            let normalised = normalise_response_type(item.as_str().unwrap_or_default());
            if !out.iter().any(|o| o.as_str() == Some(normalised.as_str())) {
                out.push(Value::String(normalised));
            }
        }
        *items = out;
    }
    let response_types = str_array(&m, "response_types");
    if response_types.len() > 0 && m.get("redirect_uris").is_none() {
        return Err(MetadataError::redirect(
            "redirect_uris is mandatory property",
        ));
    }

    // 5. Allowed values.
    check_one_of(
        &m,
        "application_type",
        &["native".to_owned(), "web".to_owned()],
    )?;
    check_all_of(&m, "default_acr_values", &server.acr_values_supported)?;
    check_all_of(&m, "grant_types", &server.grant_types_supported)?;
    check_one_of(
        &m,
        "id_token_signed_response_alg",
        &server.id_token_signing_alg_values_supported,
    )?;
    let supported_response_types: Vec<String> = server
        .response_types_supported
        .iter()
        .map(|r| normalise_response_type(r))
        .collect();
    check_all_of(&m, "response_types", &supported_response_types)?;
    check_all_of(&m, "response_modes", &server.response_modes_supported)?;
    check_one_of(&m, "subject_type", &server.subject_types_supported)?;
    check_one_of(
        &m,
        "token_endpoint_auth_method",
        &server.token_endpoint_auth_methods_supported,
    )?;
    let method = m
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let signing_algs: Vec<String> = server
        .token_endpoint_auth_signing_alg_values_supported
        .iter()
        .filter(|alg| match method.as_str() {
            "client_secret_jwt" => alg.starts_with("HS"),
            "private_key_jwt" => !alg.starts_with("HS"),
            _ => false,
        })
        .cloned()
        .collect();
    check_one_of(&m, "token_endpoint_auth_signing_alg", &signing_algs)?;
    for (member, supported) in [
        (
            "userinfo_signed_response_alg",
            &server.userinfo_signing_alg_values_supported,
        ),
        (
            "introspection_signed_response_alg",
            &server.introspection_signing_alg_values_supported,
        ),
        (
            "authorization_signed_response_alg",
            &server.authorization_signing_alg_values_supported,
        ),
        (
            "request_object_signing_alg",
            &server.request_object_signing_alg_values_supported,
        ),
    ] {
        check_one_of(&m, member, supported)?;
    }

    // 6. URIs that are not redirect URIs.
    for member in [
        "client_uri",
        "logo_uri",
        "policy_uri",
        "tos_uri",
        "jwks_uri",
        "backchannel_logout_uri",
    ] {
        if let Some(s) = m.get(member).and_then(Value::as_str) {
            if !matches!(
                parse_url(s).as_ref().map(Url::scheme),
                Some("http" | "https")
            ) {
                return Err(MetadataError::metadata(format!(
                    "{member} must be a web uri (http or https)"
                )));
            }
        }
    }
    for member in ["initiate_login_uri", "sector_identifier_uri"] {
        if let Some(s) = m.get(member).and_then(Value::as_str) {
            if parse_url(s).as_ref().map(Url::scheme) != Some("https") {
                return Err(MetadataError::metadata(format!(
                    "{member} must be an https uri"
                )));
            }
        }
    }

    // 7. scope.
    if let Some(scope) = m.get("scope").and_then(Value::as_str) {
        let mut seen: Vec<&str> = Vec::new();
        for token in scope.split(' ') {
            if token.is_empty() || !server.scopes_supported.iter().any(|s| s == token) {
                return Err(MetadataError::metadata(format!(
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
        let joined = seen.join(" ");
        m.insert("scope".into(), Value::String(joined));
    }

    // 8. contacts.
    for contact in str_array(&m, "contacts") {
        if !is_email(&contact) {
            return Err(MetadataError::metadata(format!(
                "contacts can only contain email addresses ({contact:?} is not one)"
            )));
        }
    }

    // 9. Forced values.
    let f = &server.features;
    if f.request_objects && f.require_signed_request_object {
        m.insert("require_signed_request_object".into(), true.into());
    }
    if f.pushed_authorization_requests && f.require_pushed_authorization_requests {
        m.insert("require_pushed_authorization_requests".into(), true.into());
    }

    // 10. grant_types follow response_types (never an error).
    let tokens: Vec<String> = response_types
        .iter()
        .flat_map(|r| r.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let has = |t: &str| tokens.iter().any(|x| x == t);
    let mut grants = str_array(&m, "grant_types");
    if has("code") && !grants.iter().any(|g| g == "authorization_code") {
        grants.push("authorization_code".into());
    }
    if (has("token") || has("id_token")) && !grants.iter().any(|g| g == "implicit") {
        grants.push("implicit".into());
    }
    if !(has("token") || has("id_token")) {
        grants.retain(|g| g != "implicit");
    }
    if !has("code") {
        grants.retain(|g| g != "authorization_code");
    }
    for g in &grants {
        if !server.grant_types_supported.iter().any(|s| s == g) {
            return Err(MetadataError::metadata(format!(
                "grant_types must include {g} for the registered response_types, and this server does not support it"
            )));
        }
    }
    m.insert("grant_types".into(), Value::from(grants.clone()));

    // 11. Redirect URIs, after grant types were derived (so implicit rules always apply).
    let implicit = grants.iter().any(|g| g == "implicit");
    let native = m.get("application_type").and_then(Value::as_str) == Some("native");
    if !response_types.is_empty() && str_array(&m, "redirect_uris").is_empty() {
        return Err(MetadataError::redirect(
            "redirect_uris must contain members",
        ));
    }
    for (label, redirect) in [
        ("redirect_uris", true),
        ("post_logout_redirect_uris", false),
    ] {
        for uri in str_array(&m, label) {
            check_redirect_uri(label, &uri, native, implicit).map_err(|d| {
                if redirect {
                    MetadataError::redirect(d)
                } else {
                    MetadataError::metadata(d)
                }
            })?;
        }
    }
    if !response_types.is_empty()
        && m.get("response_modes")
            .and_then(Value::as_array)
            .is_some_and(Vec::is_empty)
    {
        return Err(MetadataError::metadata(
            "response_modes must contain members",
        ));
    }

    // 12. Proof of possession.
    let flag = |k: &str| m.get(k).and_then(Value::as_bool).unwrap_or(false);
    let mtls_bound = flag("tls_client_certificate_bound_access_tokens");
    let dpop_bound = flag("dpop_bound_access_tokens");
    if mtls_bound && dpop_bound {
        return Err(MetadataError::metadata(
            "only one proof of possession mechanism can be made required at a time",
        ));
    }
    for (bound, name) in [
        (mtls_bound, "tls_client_certificate_bound_access_tokens"),
        (dpop_bound, "dpop_bound_access_tokens"),
    ] {
        if bound && has("token") {
            return Err(MetadataError::metadata(format!(
                "response_types must not include \"token\" when {name} is used"
            )));
        }
    }

    // 13. Keys.
    if m.contains_key("jwks") && m.contains_key("jwks_uri") {
        return Err(MetadataError::metadata(
            "jwks and jwks_uri must not be used at the same time",
        ));
    }
    if method == "private_key_jwt" && !m.contains_key("jwks") && !m.contains_key("jwks_uri") {
        return Err(MetadataError::metadata(
            "jwks or jwks_uri is mandatory for this client (private_key_jwt)",
        ));
    }
    if let Some(jwks) = m.get("jwks") {
        if !jwks.get("keys").is_some_and(Value::is_array) {
            return Err(MetadataError::metadata(
                "jwks must be a JSON Web Key Set: an object with a \"keys\" array",
            ));
        }
    }

    m.extend(extra);
    Ok(ClientMetadata(m))
}

fn check_type(name: &str, kind: Kind, v: &mut Value) -> Result<(), MetadataError> {
    let err = |what: &str| {
        let msg = format!("{name} {what}");
        if name == "redirect_uris" {
            MetadataError::redirect(msg)
        } else {
            MetadataError::metadata(msg)
        }
    };
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
            Some(n) if n <= (1u64 << 53) - 1 => Ok(()),
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
                .any(|i| !i.as_str().is_some_and(|s| !s.is_empty()))
            {
                return Err(err("must only contain non-empty strings"));
            }
            let mut seen: Vec<Value> = Vec::with_capacity(items.len());
            for i in items.drain(..) {
                if !seen.contains(&i) {
                    seen.push(i);
                }
            }
            *items = seen;
            Ok(())
        }
        Kind::Any => Ok(()),
    }
}

fn str_array(m: &Map<String, Value>, key: &str) -> Vec<String> {
    m.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Splits a response type on spaces, removes duplicate tokens and sorts them.
fn normalise_response_type(value: &str) -> String {
    let mut tokens: Vec<&str> = value.split(' ').filter(|t| !t.is_empty()).collect();
    tokens.sort_unstable();
    tokens.dedup();
    tokens.join(" ")
}

/// `'a'`, `'a' or 'b'`, `'a', 'b', or 'c'`.
fn or_list(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    match quoted.len() {
        0 => String::new(),
        1 => quoted[0].clone(),
        2 => format!("{} or {}", quoted[0], quoted[1]),
        n => format!("{}, or {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}

fn check_one_of(
    m: &Map<String, Value>,
    key: &str,
    allowed: &[String],
) -> Result<(), MetadataError> {
    let Some(value) = m.get(key).and_then(Value::as_str) else {
        return Ok(());
    };
    if allowed.iter().any(|a| a == value) {
        return Ok(());
    }
    if allowed.is_empty() {
        return Err(MetadataError::metadata(format!(
            "{key} must not be provided (no values are allowed)"
        )));
    }
    Err(MetadataError::metadata(format!(
        "{key} must be {} (got '{value}')",
        or_list(allowed)
    )))
}

fn check_all_of(
    m: &Map<String, Value>,
    key: &str,
    allowed: &[String],
) -> Result<(), MetadataError> {
    let values = str_array(m, key);
    let Some(bad) = values.iter().find(|v| !allowed.contains(v)) else {
        return Ok(());
    };
    let err = if allowed.is_empty() {
        format!("{key} must be empty (no values are allowed)")
    } else {
        format!("{key} can only contain {} (got '{bad}')", or_list(allowed))
    };
    Err(if key == "redirect_uris" {
        MetadataError::redirect(err)
    } else {
        MetadataError::metadata(err)
    })
}

fn parse_url(s: &str) -> Option<Url> {
    Url::parse(s).ok()
}

/// The redirect URI rules of OpenID Connect Registration §2 and RFC 8252 (native apps).
fn check_redirect_uri(label: &str, uri: &str, native: bool, implicit: bool) -> Result<(), String> {
    let url = parse_url(uri).ok_or_else(|| {
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
                "{label} for web clients using implicit flow MUST only register URLs using the https scheme"
            ));
        }
        if implicit && host == "localhost" {
            return Err(format!(
                "{label} for web clients using implicit flow must not be using localhost"
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
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c));
    let domain_ok = !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::MetadataErrorKind;
    use serde_json::json;

    fn run(v: Value) -> Result<ClientMetadata, MetadataError> {
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.insert("client_id".into(), "abc".into());
        validate(m, &ServerMetadata::default())
    }

    #[test]
    fn defaults_are_applied() {
        let md = run(json!({"redirect_uris": ["https://rp.example.com/cb"]})).unwrap();
        assert_eq!(md.str("application_type"), Some("web"));
        assert_eq!(md.get("grant_types"), Some(&json!(["authorization_code"])));
        assert_eq!(md.get("response_types"), Some(&json!(["code"])));
        assert_eq!(
            md.str("token_endpoint_auth_method"),
            Some("client_secret_basic")
        );
        assert_eq!(md.get("post_logout_redirect_uris"), Some(&json!([])));
    }

    #[test]
    fn unknown_members_are_dropped_and_extra_kept() {
        let mut server = ServerMetadata::default();
        server.extra_metadata = vec!["tenant".into()];
        let mut m = json!({"redirect_uris": ["https://a.example/cb"], "tenant": "t1", "foo": 1});
        m["client_id"] = json!("x");
        let md = validate(m.as_object().cloned().unwrap(), &server).unwrap();
        assert_eq!(md.str("tenant"), Some("t1"));
        assert!(md.get("foo").is_none());
    }

    #[test]
    fn redirect_uri_rules() {
        let e = run(json!({"redirect_uris": ["https://a.example/cb#x"]})).unwrap_err();
        assert_eq!(e.kind, MetadataErrorKind::InvalidRedirectUri);
        assert!(e.description.contains("fragments"));
        let e = run(json!({"redirect_uris": ["not a uri"]})).unwrap_err();
        assert_eq!(e.kind, MetadataErrorKind::InvalidRedirectUri);
        assert!(run(json!({"redirect_uris": ["myapp:/cb"]})).is_err());
        assert!(run(json!({"application_type": "native", "redirect_uris": ["myapp:/cb"]})).is_ok());
        assert!(
            run(
                json!({"application_type": "native", "redirect_uris": ["http://127.0.0.1:1234/cb"]})
            )
            .is_ok()
        );
        assert!(
            run(json!({"application_type": "native", "redirect_uris": ["http://example.com/cb"]}))
                .is_err()
        );
        assert!(
            run(json!({"application_type": "native", "redirect_uris": ["https://localhost/cb"]}))
                .is_err()
        );
        assert!(
            run(json!({"application_type": "native", "redirect_uris": ["javascript:alert(1)"]}))
                .is_err()
        );
        let e = run(json!({"response_types": ["code"]})).unwrap_err();
        assert_eq!(e.description, "redirect_uris is mandatory property");
        let e = run(json!({"redirect_uris": []})).unwrap_err();
        assert_eq!(e.description, "redirect_uris must contain members");
    }

    #[test]
    fn implicit_rules_apply_after_grant_types_are_derived() {
        // Defect 2 of the reference: the grant type is derived from response_types first.
        let e =
            run(json!({"response_types": ["id_token"], "redirect_uris": ["http://a.example/cb"]}))
                .unwrap_err();
        assert!(e.description.contains("https scheme"), "{}", e.description);
        let e =
            run(json!({"response_types": ["id_token"], "redirect_uris": ["https://localhost/cb"]}))
                .unwrap_err();
        assert!(e.description.contains("localhost"));
    }

    #[test]
    fn grant_types_follow_response_types() {
        let md = run(json!({"grant_types": ["implicit"], "response_types": ["id_token", "code"], "redirect_uris": ["https://a.example/cb"]})).unwrap();
        assert_eq!(
            md.get("grant_types"),
            Some(&json!(["implicit", "authorization_code"]))
        );
        let md = run(json!({"grant_types": ["authorization_code", "implicit"], "redirect_uris": ["https://a.example/cb"]})).unwrap();
        assert_eq!(md.get("grant_types"), Some(&json!(["authorization_code"])));
        let md = run(json!({"response_types": [], "grant_types": ["authorization_code"]})).unwrap();
        assert_eq!(md.get("grant_types"), Some(&json!([])));
        assert_eq!(md.get("redirect_uris"), Some(&json!([])));
    }

    #[test]
    fn response_types_are_normalised_before_deduplication() {
        let md = run(json!({"response_types": ["code id_token", "id_token code"], "redirect_uris": ["https://a.example/cb"]})).unwrap();
        assert_eq!(md.get("response_types"), Some(&json!(["code id_token"])));
    }

    #[test]
    fn types_and_enums() {
        assert_eq!(
            run(json!({"client_name": 5})).unwrap_err().description,
            "client_name must be a non-empty string if provided"
        );
        assert_eq!(
            run(json!({"grant_types": "x"})).unwrap_err().description,
            "grant_types must be an array"
        );
        assert_eq!(
            run(json!({"require_auth_time": "yes"}))
                .unwrap_err()
                .description,
            "require_auth_time must be a boolean"
        );
        assert_eq!(
            run(json!({"default_max_age": -1})).unwrap_err().description,
            "default_max_age must be a non-negative integer"
        );
        let e =
            run(json!({"application_type": "desktop", "redirect_uris": ["https://a.example/cb"]}))
                .unwrap_err();
        assert!(
            e.description
                .starts_with("application_type must be 'native' or 'web'")
        );
        let e = run(json!({"token_endpoint_auth_method": "client_secret_basic", "token_endpoint_auth_signing_alg": "HS256", "redirect_uris": ["https://a.example/cb"]})).unwrap_err();
        assert!(e.description.contains("no values are allowed"));
        let e =
            run(json!({"default_acr_values": ["1"], "redirect_uris": ["https://a.example/cb"]}))
                .unwrap_err();
        assert!(e.description.contains("must be empty"));
    }

    #[test]
    fn scope_and_contacts() {
        let md = run(json!({"scope": "openid openid offline_access", "redirect_uris": ["https://a.example/cb"]})).unwrap();
        assert_eq!(md.str("scope"), Some("openid offline_access"));
        assert!(run(json!({"scope": "openid  x"})).is_err());
        assert!(
            run(
                json!({"contacts": ["ops@example.com"], "redirect_uris": ["https://a.example/cb"]})
            )
            .is_ok()
        );
        assert!(run(json!({"contacts": ["Ops <ops@example.com>"]})).is_err());
    }

    #[test]
    fn keys_and_pop() {
        assert!(run(json!({"jwks": {"keys": []}, "jwks_uri": "https://a.example/jwks"})).is_err());
        assert!(run(json!({"token_endpoint_auth_method": "private_key_jwt", "redirect_uris": ["https://a.example/cb"]})).is_err());
        let e = run(
            json!({"dpop_bound_access_tokens": true, "response_types": ["code id_token"], "redirect_uris": ["https://a.example/cb"]}),
        );
        assert!(e.is_ok());
    }
}

/// Whether `properties` describe a client that needs a secret once the server's defaults
/// are applied (the reference decides this on the raw input; we decide it on what will be
/// registered).
pub fn needs_secret_after_defaults(
    properties: &Map<String, Value>,
    server: &ServerMetadata,
) -> bool {
    let mut merged = defaults(server);
    for (k, v) in properties {
        if !v.is_null() {
            merged.insert(k.clone(), v.clone());
        }
    }
    super::needs_secret(&merged)
}
