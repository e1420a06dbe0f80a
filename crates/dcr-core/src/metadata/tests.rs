//! Tests of the metadata validator, one group per rule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use serde_json::json;

fn map(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn secret_rules() {
    assert!(needs_secret(&map(json!({}))));
    assert!(needs_secret(&map(
        json!({"token_endpoint_auth_method": "client_secret_basic"})
    )));
    assert!(!needs_secret(&map(
        json!({"token_endpoint_auth_method": "none"})
    )));
    assert!(needs_secret(&map(
        json!({"token_endpoint_auth_method": "none", "id_token_signed_response_alg": "HS256"})
    )));
    assert!(needs_secret(&map(
        json!({"token_endpoint_auth_method": "none", "id_token_encrypted_response_alg": "dir"})
    )));
    assert!(!needs_secret(&map(
        json!({"token_endpoint_auth_method": "private_key_jwt", "id_token_encrypted_response_alg": "RSA-OAEP"})
    )));
}

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
        run(json!({"application_type": "native", "redirect_uris": ["http://127.0.0.1:1234/cb"]}))
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
    assert!(
        e.description
            .starts_with("redirect_uris must contain members")
    );
}

#[test]
fn implicit_rules_apply_after_grant_types_are_derived() {
    // Defect 2 of the reference: the grant type is derived from response_types first.
    let e = run(json!({"response_types": ["id_token"], "redirect_uris": ["http://a.example/cb"]}))
        .unwrap_err();
    assert!(e.description.contains("https scheme"), "{}", e.description);
    let e = run(json!({"response_types": ["id_token"], "redirect_uris": ["https://localhost/cb"]}))
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
    let e = run(json!({"application_type": "desktop", "redirect_uris": ["https://a.example/cb"]}))
        .unwrap_err();
    assert!(
        e.description
            .starts_with("application_type must be 'native' or 'web'")
    );
    let e = run(json!({"token_endpoint_auth_method": "client_secret_basic", "token_endpoint_auth_signing_alg": "HS256", "redirect_uris": ["https://a.example/cb"]})).unwrap_err();
    assert!(
        e.description.contains("must not be provided"),
        "{}",
        e.description
    );
    let e = run(json!({"default_acr_values": ["1"], "redirect_uris": ["https://a.example/cb"]}))
        .unwrap_err();
    assert!(e.description.contains("must be empty"));
}

#[test]
fn scope_and_contacts() {
    let md = run(
        json!({"scope": "openid openid offline_access", "redirect_uris": ["https://a.example/cb"]}),
    )
    .unwrap();
    assert_eq!(md.str("scope"), Some("openid offline_access"));
    assert!(run(json!({"scope": "openid  x"})).is_err());
    assert!(
        run(json!({"contacts": ["ops@example.com"], "redirect_uris": ["https://a.example/cb"]}))
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
