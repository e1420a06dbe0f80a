//! What a Client ID Metadata Document must be before the registration validator sees it
//! (draft -02 §4), and what the validated client must still be after it.

use serde_json::{Map, Value};

use crate::metadata::ClientMetadata;

/// Token endpoint authentication methods that rely on a shared secret, which a document
/// cannot establish.
const SHARED_SECRET_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
];

/// Members that only a registration can issue.
const FORBIDDEN_MEMBERS: &[&str] = &["client_secret", "client_secret_expires_at"];

/// Members holding a URI that must be `https` in a document (redirect URIs follow the
/// registration rules instead, so native clients keep their loopback `http` URIs).
const HTTPS_MEMBERS: &[&str] = &[
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "jwks_uri",
    "sector_identifier_uri",
    "initiate_login_uri",
];

/// Parses and checks the fetched bytes of the document at `url`, returning the members to
/// run policies and validation on (`token_endpoint_auth_method` defaults to `none`; a client
/// listing only loopback `http` redirect URIs and no `application_type` is `native`).
pub(crate) fn check_document(url: &str, body: &[u8]) -> Result<Map<String, Value>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| "the document is not valid JSON".to_owned())?;
    let Value::Object(mut members) = value else {
        return Err("the document is not a JSON object".into());
    };
    match members.get("client_id") {
        Some(Value::String(id)) if id == url => {}
        Some(Value::String(_)) => {
            return Err(
                "the document's client_id does not equal the URL it was fetched from".into(),
            );
        }
        Some(_) => return Err("the document's client_id is not a string".into()),
        None => return Err("the document has no client_id".into()),
    }
    if let Some(m) = FORBIDDEN_MEMBERS.iter().find(|m| members.contains_key(**m)) {
        return Err(format!("the document must not contain {m}"));
    }
    for member in HTTPS_MEMBERS {
        if let Some(Value::String(uri)) = members.get(*member)
            && !uri.starts_with("https://")
        {
            return Err(format!("{member} in a document must be an https URI"));
        }
    }
    match members.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => {
            members.insert("token_endpoint_auth_method".into(), Value::from("none"));
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err("token_endpoint_auth_method must be a string".into()),
    }
    if !members.contains_key("application_type") && only_loopback_redirects(&members) {
        members.insert("application_type".into(), Value::from("native"));
    }
    check_auth_method(&members)?;
    Ok(members)
}

/// Whether `redirect_uris` is a non-empty list of `http` loopback URIs only.
fn only_loopback_redirects(members: &Map<String, Value>) -> bool {
    let Some(Value::Array(uris)) = members.get("redirect_uris") else {
        return false;
    };
    !uris.is_empty()
        && uris.iter().all(|u| {
            u.as_str()
                .and_then(|s| url::Url::parse(s).ok())
                .is_some_and(|u| {
                    u.scheme() == "http"
                        && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
                })
        })
}

/// `token_endpoint_auth_method` is `none`, or `private_key_jwt` with keys.
fn check_auth_method(members: &Map<String, Value>) -> Result<(), String> {
    let method = members
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        .unwrap_or("none");
    if SHARED_SECRET_METHODS.contains(&method) {
        return Err(format!(
            "token_endpoint_auth_method {method} needs a shared secret, which a client metadata document cannot have"
        ));
    }
    match method {
        "none" => Ok(()),
        "private_key_jwt" if members.contains_key("jwks") || members.contains_key("jwks_uri") => {
            Ok(())
        }
        "private_key_jwt" => {
            Err("token_endpoint_auth_method private_key_jwt needs jwks or jwks_uri".into())
        }
        other => Err(format!(
            "token_endpoint_auth_method must be none or private_key_jwt, not {other:?}"
        )),
    }
}

/// The validated client (after policies) still obeys the document rules: no shared-secret
/// method, nothing keyed by a client secret.
pub(crate) fn check_validated(metadata: &ClientMetadata) -> Result<(), String> {
    check_auth_method(metadata.as_map())?;
    if metadata.needs_secret() {
        return Err(
            "the document uses an algorithm keyed by a client secret (HS*, dir or A*KW), which it cannot have".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "https://app.example/client.json";

    fn check(v: Value) -> Result<Map<String, Value>, String> {
        check_document(URL, v.to_string().as_bytes())
    }

    #[test]
    fn refusals_name_the_rule() {
        let base = || json!({"client_id": URL, "redirect_uris": ["https://app.example/cb"]});
        assert!(
            check_document(URL, b"not json")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(check(json!([1])).unwrap_err().contains("not a JSON object"));
        assert!(check(json!({})).unwrap_err().contains("no client_id"));
        assert!(
            check(json!({"client_id": 3}))
                .unwrap_err()
                .contains("not a string")
        );
        let other = json!({"client_id": "https://app.example/client.json/"});
        assert!(check(other).unwrap_err().contains("does not equal"));
        for (k, v, words) in [
            ("client_secret", json!("s"), "client_secret"),
            (
                "client_secret_expires_at",
                json!(0),
                "client_secret_expires_at",
            ),
            (
                "token_endpoint_auth_method",
                json!("client_secret_basic"),
                "shared secret",
            ),
            (
                "token_endpoint_auth_method",
                json!("client_secret_post"),
                "shared secret",
            ),
            (
                "token_endpoint_auth_method",
                json!("client_secret_jwt"),
                "shared secret",
            ),
            (
                "token_endpoint_auth_method",
                json!("tls_client_auth"),
                "none or private_key_jwt",
            ),
            (
                "token_endpoint_auth_method",
                json!("private_key_jwt"),
                "jwks",
            ),
            ("token_endpoint_auth_method", json!(1), "string"),
            ("logo_uri", json!("http://app.example/logo.png"), "logo_uri"),
            ("jwks_uri", json!("http://app.example/jwks"), "jwks_uri"),
        ] {
            let mut doc = base();
            doc[k] = v;
            let err = check(doc).unwrap_err();
            assert!(err.contains(words), "{k}: {err}");
        }
    }

    #[test]
    fn defaults_none_and_native_for_loopback_only_clients() {
        let native = check(json!({"client_id": URL,
            "redirect_uris": ["http://127.0.0.1/callback", "http://localhost:33418/"]}))
        .unwrap();
        assert_eq!(native["token_endpoint_auth_method"], "none");
        assert_eq!(native["application_type"], "native");
        let web =
            check(json!({"client_id": URL, "redirect_uris": ["https://app.example/cb"]})).unwrap();
        assert!(!web.contains_key("application_type"));
        let keyed = check(
            json!({"client_id": URL, "redirect_uris": ["https://app.example/cb"],
            "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://app.example/jwks"}),
        );
        assert!(keyed.is_ok());
    }
}
