//! Tests of the metadata validator, one group per rule.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default
)]

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
    with(&ServerMetadata::default(), v)
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

// ---------------------------------------------------------------------------------------
// Helpers for the rule tests below.

const CB: &str = "https://rp.example.com/cb";

/// Validates with [`validate`] and with a prepared [`Validator`] (used twice: it keeps no
/// state between documents), which must agree.
fn with(server: &ServerMetadata, v: Value) -> Result<ClientMetadata, MetadataError> {
    let mut m = v.as_object().cloned().unwrap_or_default();
    m.insert("client_id".into(), "abc".into());
    let validator = Validator::new(server.clone());
    let prepared = validator.validate(m.clone());
    assert_eq!(validator.validate(m.clone()), prepared);
    assert_eq!(
        validator.needs_secret_after_defaults(&m),
        needs_secret_after_defaults(&m, server)
    );
    let direct = validate(m, server);
    assert_eq!(direct, prepared);
    direct
}

fn ok(v: Value) -> ClientMetadata {
    run(v).expect("valid")
}

fn err(v: Value) -> MetadataError {
    run(v).expect_err("invalid")
}

fn all_features() -> ServerMetadata {
    let mut s = ServerMetadata::default();
    let f = &mut s.features;
    f.backchannel_logout = true;
    f.request_objects = true;
    f.jwt_userinfo = true;
    f.jwt_introspection = true;
    f.jwt_response_modes = true;
    f.encryption = true;
    f.mtls_client_auth = true;
    f.mtls_certificate_bound_access_tokens = true;
    f.ciba = true;
    f.rich_authorization_requests = true;
    s.authorization_details_types_supported = vec!["payment".into()];
    s.token_endpoint_auth_methods_supported.extend([
        "tls_client_auth".to_owned(),
        "self_signed_tls_client_auth".to_owned(),
    ]);
    s.grant_types_supported.extend([
        rules::CIBA_GRANT.to_owned(),
        rules::DEVICE_GRANT.to_owned(),
        "client_credentials".to_owned(),
    ]);
    s.subject_types_supported = vec!["public".into(), "pairwise".into()];
    s
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn rsa_key(bits: usize) -> Value {
    let mut n = vec![0u8; bits / 8];
    if let Some(first) = n.first_mut() {
        *first = 0x80;
    }
    json!({"kty": "RSA", "n": b64(&n), "e": "AQAB"})
}

fn ec_key(crv: &str, len: usize) -> Value {
    json!({"kty": "EC", "crv": crv, "x": b64(&vec![1; len]), "y": b64(&vec![2; len])})
}

fn okp_key(crv: &str, len: usize) -> Value {
    json!({"kty": "OKP", "crv": crv, "x": b64(&vec![3; len])})
}

// ---------------------------------------------------------------------------------------
// Types, defaults, features.

#[test]
fn type_errors_name_the_field() {
    for (member, value, expected) in [
        (
            "client_name",
            json!(""),
            "client_name must be a non-empty string if provided",
        ),
        (
            "client_uri",
            json!(["x"]),
            "client_uri must be a non-empty string if provided",
        ),
        ("contacts", json!("a@b.c"), "contacts must be an array"),
        (
            "contacts",
            json!(["a@b.c", 1]),
            "contacts must only contain non-empty strings",
        ),
        (
            "redirect_uris",
            json!([""]),
            "redirect_uris must only contain non-empty strings",
        ),
        (
            "require_auth_time",
            json!(1),
            "require_auth_time must be a boolean",
        ),
        (
            "default_max_age",
            json!(1.5),
            "default_max_age must be a non-negative integer",
        ),
        (
            "default_max_age",
            json!("5"),
            "default_max_age must be a non-negative integer",
        ),
        (
            "default_max_age",
            json!(9_007_199_254_740_992u64),
            "default_max_age must be a non-negative integer",
        ),
        ("jwks", json!("keys"), "jwks must be a JSON object"),
        (
            "client_secret_expires_at",
            json!(-1),
            "client_secret_expires_at must be a non-negative integer",
        ),
    ] {
        let e = err(json!({member: value, "redirect_uris": [CB]})
            .as_object()
            .map(|o| {
                let mut o = o.clone();
                o.insert(member.into(), value.clone());
                Value::Object(o)
            })
            .unwrap());
        assert_eq!(e.description, expected, "{member}");
    }
    assert_eq!(
        ok(json!({"default_max_age": 0, "redirect_uris": [CB]})).get("default_max_age"),
        Some(&json!(0))
    );
    let e = err(json!({"redirect_uris": "https://a"}));
    assert_eq!(e.kind, MetadataErrorKind::InvalidRedirectUri);
}

#[test]
fn arrays_are_deduplicated_in_order() {
    let md = ok(
        json!({"redirect_uris": [CB, "https://rp.example.com/b", CB], "contacts": ["b@x.io", "a@x.io", "b@x.io"]}),
    );
    assert_eq!(
        md.get("redirect_uris"),
        Some(&json!([CB, "https://rp.example.com/b"]))
    );
    assert_eq!(md.get("contacts"), Some(&json!(["b@x.io", "a@x.io"])));
}

#[test]
fn long_arrays_are_deduplicated_in_order() {
    let uri = |i: usize| format!("https://rp.example.com/cb/{i}");
    // 40 values (long enough to be checked by sorting), counting down with repeats.
    let given: Vec<String> = (0..40).map(|i| uri((40 - i) % 13)).collect();
    let md = ok(json!({ "redirect_uris": given }));
    let expected: Vec<String> = [1, 0, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2]
        .into_iter()
        .map(uri)
        .collect();
    assert_eq!(md.get("redirect_uris"), Some(&json!(expected)));
    let distinct: Vec<String> = (0..40).map(uri).collect();
    let md = ok(json!({ "redirect_uris": distinct }));
    assert_eq!(md.get("redirect_uris"), Some(&json!(distinct)));
}

#[test]
fn client_id_and_secret_must_be_printable_ascii() {
    let mut m = Map::new();
    m.insert("client_id".into(), "a\u{7}".into());
    let e = validate(m, &ServerMetadata::default()).unwrap_err();
    assert!(
        e.description
            .starts_with("client_id must only contain printable ASCII")
    );
    let e = err(json!({"client_secret": "sécret", "redirect_uris": [CB]}));
    assert!(
        e.description
            .starts_with("client_secret must only contain printable ASCII")
    );
    let e = validate(Map::new(), &ServerMetadata::default()).unwrap_err();
    assert_eq!(e.description, "client_id is mandatory property");
}

#[test]
fn members_of_disabled_features_are_dropped() {
    let md = ok(json!({
        "redirect_uris": [CB],
        "backchannel_logout_uri": "not a uri",
        "userinfo_signed_response_alg": "bogus",
        "id_token_encrypted_response_alg": "bogus",
        "tls_client_auth_subject_dn": "CN=x",
        "backchannel_token_delivery_mode": "push",
        "authorization_details_types": ["x"],
        "request_object_signing_alg": "none",
    }));
    for k in [
        "backchannel_logout_uri",
        "userinfo_signed_response_alg",
        "id_token_encrypted_response_alg",
        "tls_client_auth_subject_dn",
        "backchannel_token_delivery_mode",
        "authorization_details_types",
        "request_object_signing_alg",
    ] {
        assert!(md.get(k).is_none(), "{k}");
    }
    // Feature on: defaults appear.
    let md = with(&all_features(), json!({"redirect_uris": [CB]})).unwrap();
    assert_eq!(
        md.get("backchannel_logout_session_required"),
        Some(&json!(false))
    );
    assert_eq!(
        md.get("introspection_signed_response_alg"),
        Some(&json!("RS256"))
    );
    assert_eq!(
        md.get("authorization_signed_response_alg"),
        Some(&json!("RS256"))
    );
    assert_eq!(md.get("authorization_details_types"), Some(&json!([])));
    assert_eq!(
        md.get("backchannel_user_code_parameter"),
        Some(&json!(false))
    );
    assert_eq!(md.get("require_signed_request_object"), Some(&json!(false)));
}

#[test]
fn client_defaults_and_pairwise_default() {
    let mut s = ServerMetadata::default();
    s.client_defaults.insert(
        "token_endpoint_auth_method".into(),
        "client_secret_post".into(),
    );
    s.subject_types_supported = vec!["pairwise".into()];
    let md = with(&s, json!({"redirect_uris": [CB]})).unwrap();
    assert_eq!(
        md.str("token_endpoint_auth_method"),
        Some("client_secret_post")
    );
    assert_eq!(md.str("subject_type"), Some("pairwise"));
}

#[test]
fn forced_values_win_over_input() {
    let mut s = all_features();
    s.features.require_signed_request_object = true;
    s.features.require_pushed_authorization_requests = true;
    let md = with(&s, json!({"redirect_uris": [CB], "require_signed_request_object": false, "require_pushed_authorization_requests": false})).unwrap();
    assert_eq!(md.get("require_signed_request_object"), Some(&json!(true)));
    assert_eq!(
        md.get("require_pushed_authorization_requests"),
        Some(&json!(true))
    );
}

// ---------------------------------------------------------------------------------------
// Allowed values.

#[test]
fn enum_messages_list_the_allowed_values() {
    let e = err(json!({"response_types": ["token"], "redirect_uris": [CB]}));
    assert_eq!(
        e.description,
        "response_types can only contain 'code id_token', 'code', 'id_token', or 'none' (got 'token')"
    );
    let e = err(json!({"response_modes": ["jwt"], "redirect_uris": [CB]}));
    assert!(
        e.description
            .starts_with("response_modes can only contain 'query', 'fragment', or 'form_post'")
    );
    let e = err(json!({"grant_types": ["password"], "redirect_uris": [CB]}));
    assert!(e.description.starts_with("grant_types can only contain"));
    let e = err(json!({"subject_type": "pairwise", "redirect_uris": [CB]}));
    assert_eq!(
        e.description,
        "subject_type must be 'public' (got 'pairwise')"
    );
    let e = err(json!({"id_token_signed_response_alg": "none", "redirect_uris": [CB]}));
    assert!(
        e.description.starts_with(
            "id_token_signed_response_alg must be 'RS256', 'PS256', 'ES256', or 'EdDSA'"
        )
    );
    let e = err(json!({"token_endpoint_auth_method": "password", "redirect_uris": [CB]}));
    assert!(
        e.description
            .starts_with("token_endpoint_auth_method must be")
    );
    assert!(
        ok(json!({"response_types": ["id_token code"], "redirect_uris": [CB]}))
            .get("response_types")
            == Some(&json!(["code id_token"]))
    );
}

#[test]
fn token_endpoint_auth_signing_alg_depends_on_method() {
    let keys = json!({"keys": [ec_key("P-256", 32)]});
    assert!(run(json!({"token_endpoint_auth_method": "client_secret_jwt", "token_endpoint_auth_signing_alg": "HS256", "redirect_uris": [CB]})).is_ok());
    let e = err(
        json!({"token_endpoint_auth_method": "client_secret_jwt", "token_endpoint_auth_signing_alg": "RS256", "redirect_uris": [CB]}),
    );
    assert_eq!(
        e.description,
        "token_endpoint_auth_signing_alg must be 'HS256' (got 'RS256')"
    );
    assert!(run(json!({"token_endpoint_auth_method": "private_key_jwt", "token_endpoint_auth_signing_alg": "ES256", "jwks": keys, "redirect_uris": [CB]})).is_ok());
    let e = err(
        json!({"token_endpoint_auth_method": "private_key_jwt", "token_endpoint_auth_signing_alg": "HS256", "jwks": keys, "redirect_uris": [CB]}),
    );
    assert!(e.description.starts_with(
        "token_endpoint_auth_signing_alg must be 'RS256', 'PS256', 'ES256', or 'EdDSA'"
    ));
}

#[test]
fn encryption_dependencies() {
    let s = all_features();
    let md = with(
        &s,
        json!({"id_token_encrypted_response_alg": "A128KW", "redirect_uris": [CB]}),
    )
    .unwrap();
    assert_eq!(
        md.str("id_token_encrypted_response_enc"),
        Some("A128CBC-HS256")
    );
    let e = with(
        &s,
        json!({"id_token_encrypted_response_enc": "A128GCM", "redirect_uris": [CB]}),
    )
    .unwrap_err();
    assert_eq!(
        e.description,
        "id_token_encrypted_response_alg is mandatory property when id_token_encrypted_response_enc is provided"
    );
    let e = with(
        &s,
        json!({"userinfo_encrypted_response_alg": "A128KW", "redirect_uris": [CB]}),
    )
    .unwrap_err();
    assert_eq!(
        e.description,
        "userinfo_signed_response_alg is mandatory property when userinfo_encrypted_response_alg is provided"
    );
    assert!(with(&s, json!({"userinfo_signed_response_alg": "RS256", "userinfo_encrypted_response_alg": "A128KW", "redirect_uris": [CB]})).is_ok());
    let e = with(
        &s,
        json!({"request_object_encryption_enc": "A128GCM", "redirect_uris": [CB]}),
    )
    .unwrap_err();
    assert_eq!(
        e.description,
        "request_object_encryption_alg is mandatory property when request_object_encryption_enc is provided"
    );
    let e = with(&s, json!({"id_token_encrypted_response_alg": "RSA1_5", "jwks": {"keys": [rsa_key(2048)]}, "redirect_uris": [CB]})).unwrap_err();
    assert!(
        e.description
            .starts_with("id_token_encrypted_response_alg must be"),
        "{}",
        e.description
    );
    let e = with(
        &s,
        json!({"id_token_encrypted_response_alg": "RSA-OAEP", "redirect_uris": [CB]}),
    )
    .unwrap_err();
    assert!(e.description.starts_with("jwks or jwks_uri is mandatory for this client (id_token_encrypted_response_alg RSA-OAEP"), "{}", e.description);
    assert!(with(&s, json!({"id_token_encrypted_response_alg": "RSA-OAEP", "jwks": {"keys": [rsa_key(2048)]}, "redirect_uris": [CB]})).is_ok());
    let e = with(&s, json!({"id_token_encrypted_response_alg": "ECDH-ES", "jwks": {"keys": [rsa_key(2048)]}, "redirect_uris": [CB]})).unwrap_err();
    assert!(
        e.description
            .contains("no key usable for encryption with ECDH-ES"),
        "{}",
        e.description
    );
    assert!(with(&s, json!({"id_token_encrypted_response_alg": "ECDH-ES", "jwks": {"keys": [okp_key("X25519", 32)]}, "redirect_uris": [CB]})).is_ok());
}

#[test]
fn request_objects_and_ciba_rules() {
    let s = all_features();
    let e = with(
        &s,
        json!({"request_object_signing_alg": "RS256", "redirect_uris": [CB]}),
    )
    .unwrap_err();
    assert!(
        e.description.starts_with("jwks or jwks_uri is mandatory"),
        "{}",
        e.description
    );
    assert!(
        with(
            &s,
            json!({"request_object_signing_alg": "HS256", "redirect_uris": [CB]})
        )
        .is_ok()
    );
    let e = with(
        &s,
        json!({"request_object_signing_alg": "none", "redirect_uris": [CB]}),
    )
    .unwrap_err();
    assert!(
        e.description
            .starts_with("request_object_signing_alg must be")
    );
    let ciba = rules::CIBA_GRANT;
    let e = with(&s, json!({"grant_types": [ciba], "response_types": []})).unwrap_err();
    assert_eq!(
        e.description,
        "backchannel_token_delivery_mode is mandatory property for CIBA clients"
    );
    let e = with(&s, json!({"grant_types": [ciba], "response_types": [], "backchannel_token_delivery_mode": "ping"})).unwrap_err();
    assert!(
        e.description
            .starts_with("backchannel_client_notification_endpoint is mandatory property")
    );
    let e = with(&s, json!({"grant_types": [ciba], "response_types": [], "backchannel_token_delivery_mode": "push", "backchannel_client_notification_endpoint": "https://rp.example.com/n"})).unwrap_err();
    assert_eq!(
        e.description,
        "backchannel_token_delivery_mode must be 'poll' or 'ping' (got 'push')"
    );
    let e = with(&s, json!({"grant_types": [ciba], "response_types": [], "backchannel_token_delivery_mode": "ping", "backchannel_client_notification_endpoint": "http://rp.example.com/n"})).unwrap_err();
    assert!(
        e.description
            .starts_with("backchannel_client_notification_endpoint must be an https uri")
    );
    let md = with(&s, json!({"grant_types": [ciba], "response_types": [], "backchannel_token_delivery_mode": "poll"})).unwrap();
    assert_eq!(md.get("grant_types"), Some(&json!([ciba])));
    let e = with(&s, json!({"grant_types": [ciba], "response_types": [], "backchannel_token_delivery_mode": "poll", "backchannel_authentication_request_signing_alg": "HS256"})).unwrap_err();
    assert!(
        e.description
            .starts_with("backchannel_authentication_request_signing_alg must be")
    );
}

#[test]
fn pairwise_rules() {
    let s = all_features();
    let device = rules::DEVICE_GRANT;
    let e = with(
        &s,
        json!({"subject_type": "pairwise", "grant_types": [device], "response_types": []}),
    )
    .unwrap_err();
    assert_eq!(
        e.description,
        format!("jwks_uri is mandatory property for pairwise {device} clients")
    );
    let e = with(&s, json!({"subject_type": "pairwise", "grant_types": [device], "response_types": [], "jwks_uri": "https://rp.example.com/jwks"})).unwrap_err();
    assert_eq!(
        e.description,
        format!(
            "pairwise {device} clients must utilize private_key_jwt or self_signed_tls_client_auth token endpoint authentication methods"
        )
    );
    assert!(with(&s, json!({"subject_type": "pairwise", "grant_types": [device], "response_types": [], "jwks_uri": "https://rp.example.com/jwks", "token_endpoint_auth_method": "private_key_jwt"})).is_ok());
    // Redirect URIs on several hosts (ports count) need a sector identifier.
    let e = with(&s, json!({"subject_type": "pairwise", "redirect_uris": [CB, "https://rp.example.com:8443/cb"]})).unwrap_err();
    assert!(
        e.description
            .starts_with("sector_identifier_uri is mandatory property for pairwise clients"),
        "{}",
        e.description
    );
    assert!(with(&s, json!({"subject_type": "pairwise", "redirect_uris": [CB, "https://rp.example.com/other"]})).is_ok());
    assert!(with(&s, json!({"subject_type": "pairwise", "redirect_uris": [CB, "https://b.example.com/cb"], "sector_identifier_uri": "https://rp.example.com/sector"})).is_ok());
    // Defect 1 of the reference: a 400 invalid_redirect_uri, not a 500.
    let e = with(
        &s,
        json!({"subject_type": "pairwise", "redirect_uris": [CB, "not a url"]}),
    )
    .unwrap_err();
    assert_eq!(e.kind, MetadataErrorKind::InvalidRedirectUri);
    assert!(
        e.description
            .starts_with("redirect_uris must only contain valid absolute uris")
    );
}

#[test]
fn uri_members() {
    let e = err(json!({"client_uri": "ftp://rp.example.com", "redirect_uris": [CB]}));
    assert!(e.description.starts_with("client_uri must be a web uri"));
    for m in ["logo_uri", "policy_uri", "tos_uri"] {
        let mut v = json!({"redirect_uris": [CB]});
        v[m] = json!("javascript:alert(1)");
        assert!(
            err(v)
                .description
                .starts_with(&format!("{m} must be a web uri"))
        );
    }
    assert!(run(json!({"tos_uri": "http://rp.example.com/tos", "redirect_uris": [CB]})).is_ok());
    for m in ["initiate_login_uri", "sector_identifier_uri", "jwks_uri"] {
        let mut v = json!({"redirect_uris": [CB]});
        v[m] = json!("http://rp.example.com/x");
        assert!(
            err(v)
                .description
                .starts_with(&format!("{m} must be an https uri")),
            "{m}"
        );
    }
    let s = all_features();
    let e = with(
        &s,
        json!({"backchannel_logout_uri": "https://rp.example.com/logout#f", "redirect_uris": [CB]}),
    )
    .unwrap_err();
    assert!(
        e.description
            .starts_with("backchannel_logout_uri must not contain a fragment")
    );
    assert!(with(&s, json!({"backchannel_logout_uri": "https://rp.example.com/logout", "redirect_uris": [CB]})).is_ok());
}

#[test]
fn post_logout_redirect_uris_use_redirect_rules_but_metadata_error() {
    let e = err(
        json!({"post_logout_redirect_uris": ["https://rp.example.com/#x"], "redirect_uris": [CB]}),
    );
    assert_eq!(e.kind, MetadataErrorKind::InvalidClientMetadata);
    assert!(
        e.description
            .starts_with("post_logout_redirect_uris must not contain fragments")
    );
    let e = err(json!({"post_logout_redirect_uris": ["myapp:/x"], "redirect_uris": [CB]}));
    assert!(
        e.description
            .starts_with("post_logout_redirect_uris must only contain web uris")
    );
}

#[test]
fn more_redirect_rules() {
    let e = err(json!({"redirect_uris": ["https://rp.example.com#"]}));
    assert!(e.description.contains("fragments"));
    let e = err(json!({"application_type": "native", "redirect_uris": ["https://127.0.0.1/cb"]}));
    assert_eq!(
        e.description,
        "redirect_uris for native clients using claimed HTTPS URIs must not be using 127.0.0.1 as hostname"
    );
    for scheme in [
        "data:text/plain,x",
        "file:///etc/passwd",
        "vbscript:x",
        "about:blank",
        "blob:https://a/x",
    ] {
        let e = err(json!({"application_type": "native", "redirect_uris": [scheme]}));
        assert!(
            e.description.contains("must not use the"),
            "{scheme}: {}",
            e.description
        );
    }
    assert!(run(json!({"application_type": "native", "redirect_uris": ["http://[::1]:8080/cb", "com.example.app:/cb", "http://localhost/cb"]})).is_ok());
    // Web code-flow client: http and localhost are allowed.
    assert!(run(json!({"redirect_uris": ["http://localhost:3000/cb"]})).is_ok());
    let e = err(
        json!({"grant_types": ["implicit"], "response_types": ["id_token"], "redirect_uris": ["http://rp.example.com/cb"]}),
    );
    assert!(e.description.contains("https scheme"));
    // PAR exception for empty redirect_uris.
    let mut s = ServerMetadata::default();
    s.features.allow_unregistered_redirect_uris = true;
    assert!(
        with(
            &s,
            json!({"redirect_uris": [], "require_pushed_authorization_requests": true})
        )
        .is_ok()
    );
    assert!(with(&s, json!({"redirect_uris": [], "require_pushed_authorization_requests": true, "token_endpoint_auth_method": "none"})).is_err());
    assert!(with(&s, json!({"redirect_uris": []})).is_err());
    let e = err(json!({"response_modes": [], "redirect_uris": [CB]}));
    assert!(
        e.description
            .starts_with("response_modes must contain members")
    );
}

#[test]
fn derived_grant_types_must_be_supported() {
    let mut s = ServerMetadata::default();
    s.grant_types_supported = vec!["authorization_code".into()];
    let e = with(
        &s,
        json!({"response_types": ["code id_token"], "redirect_uris": [CB]}),
    )
    .unwrap_err();
    assert!(
        e.description
            .starts_with("grant_types must include implicit")
    );
    let md = ok(
        json!({"grant_types": ["authorization_code"], "response_types": ["id_token"], "redirect_uris": [CB]}),
    );
    assert_eq!(md.get("grant_types"), Some(&json!(["implicit"])));
    let md = ok(json!({"response_types": ["none"], "redirect_uris": [CB]}));
    assert_eq!(md.get("grant_types"), Some(&json!([])));
}

#[test]
fn proof_of_possession_and_mtls() {
    let s = all_features();
    let e = with(&s, json!({"dpop_bound_access_tokens": true, "tls_client_certificate_bound_access_tokens": true, "redirect_uris": [CB]})).unwrap_err();
    assert!(
        e.description
            .starts_with("only one proof of possession mechanism")
    );
    let mut s2 = s.clone();
    s2.response_types_supported.push("code token".into());
    let e = with(&s2, json!({"dpop_bound_access_tokens": true, "response_types": ["code token"], "redirect_uris": [CB]})).unwrap_err();
    assert_eq!(
        e.description,
        "response_types must not include \"token\" when dpop_bound_access_tokens is used"
    );
    let e = with(
        &s,
        json!({"token_endpoint_auth_method": "tls_client_auth", "redirect_uris": [CB]}),
    )
    .unwrap_err();
    assert!(
        e.description.starts_with(
            "tls_client_auth requires one of the certificate subject value parameters"
        )
    );
    let e = with(&s, json!({"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_dns": "a", "tls_client_auth_subject_dn": "CN=a", "redirect_uris": [CB]})).unwrap_err();
    assert!(
        e.description
            .starts_with("only one tls_client_auth certificate subject value must be provided")
    );
    let md = with(&s, json!({"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_dns": "rp.example.com", "redirect_uris": [CB]})).unwrap();
    assert_eq!(md.str("tls_client_auth_san_dns"), Some("rp.example.com"));
    let md = with(
        &s,
        json!({"tls_client_auth_san_dns": "rp.example.com", "redirect_uris": [CB]}),
    )
    .unwrap();
    assert!(md.get("tls_client_auth_san_dns").is_none());
    let e = with(
        &s,
        json!({"token_endpoint_auth_method": "self_signed_tls_client_auth", "redirect_uris": [CB]}),
    )
    .unwrap_err();
    assert!(e.description.starts_with("jwks or jwks_uri is mandatory"));
}

#[test]
fn rich_authorization_requests_and_acr() {
    let s = all_features();
    assert!(
        with(
            &s,
            json!({"authorization_details_types": ["payment"], "redirect_uris": [CB]})
        )
        .is_ok()
    );
    let e = with(
        &s,
        json!({"authorization_details_types": ["account"], "redirect_uris": [CB]}),
    )
    .unwrap_err();
    assert_eq!(
        e.description,
        "authorization_details_types can only contain 'payment' (got 'account')"
    );
    let mut s = ServerMetadata::default();
    s.acr_values_supported = vec!["0".into(), "1".into(), "2".into()];
    let e = with(
        &s,
        json!({"default_acr_values": ["3"], "redirect_uris": [CB]}),
    )
    .unwrap_err();
    assert_eq!(
        e.description,
        "default_acr_values can only contain '0', '1', or '2' (got '3')"
    );
}

// ---------------------------------------------------------------------------------------
// Localized members.

#[test]
fn language_tagged_members() {
    let md = ok(json!({
        "redirect_uris": [CB],
        "client_name#ja-Jpan-JP": "クライアント名",
        "tos_uri#de": "https://rp.example.com/agb",
        "logo_uri#fr": "https://rp.example.com/logo-fr.png",
        "policy_uri#en-GB": "https://rp.example.com/policy",
        "client_uri#es-419": "https://rp.example.com/es",
        "unknown#de": "dropped",
    }));
    assert_eq!(md.str("client_name#ja-Jpan-JP"), Some("クライアント名"));
    assert_eq!(md.str("tos_uri#de"), Some("https://rp.example.com/agb"));
    assert_eq!(
        md.str("client_uri#es-419"),
        Some("https://rp.example.com/es")
    );
    assert!(md.get("unknown#de").is_none());
    let e = err(json!({"redirect_uris": [CB], "client_name#en_US": "x"}));
    assert!(
        e.description
            .contains("not a well-formed BCP 47 language tag"),
        "{}",
        e.description
    );
    let e = err(json!({"redirect_uris": [CB], "tos_uri#de": "ftp://x"}));
    assert!(e.description.starts_with("tos_uri#de must be a web uri"));
    let e = err(json!({"redirect_uris": [CB], "client_name#de": ""}));
    assert_eq!(
        e.description,
        "client_name#de must be a non-empty string if provided"
    );
}

// ---------------------------------------------------------------------------------------
// JWK Sets.

fn jwks_err(set: Value) -> String {
    err(json!({"redirect_uris": [CB], "jwks": set})).description
}

#[test]
fn jwks_structure() {
    assert!(run(json!({"redirect_uris": [CB], "jwks": {"keys": []}})).is_ok());
    assert!(
        run(json!({"redirect_uris": [CB], "jwks": {"keys": [{"kty": "unrecognized"}]}})).is_ok()
    );
    assert!(jwks_err(json!({})).starts_with("jwks must be a JSON Web Key Set"));
    assert!(jwks_err(json!({"keys": {}})).starts_with("jwks must be a JSON Web Key Set"));
    assert_eq!(
        jwks_err(json!({"keys": [1]})),
        "jwks.keys[0] must be a JSON object"
    );
    assert_eq!(
        jwks_err(json!({"keys": [{}]})),
        "jwks.keys[0].kty must be a non-empty string"
    );
    assert!(
        jwks_err(json!({"keys": [{"kty": "oct", "k": "AAAA"}]}))
            .starts_with("jwks.keys[0] must not be a symmetric key")
    );
    for member in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
        let mut key = rsa_key(2048);
        key[member] = json!("AAAA");
        let e = jwks_err(json!({"keys": [ec_key("P-256", 32), key]}));
        assert!(
            e.starts_with(&format!(
                "jwks.keys[1] must not contain private key member \"{member}\""
            )),
            "{e}"
        );
    }
    let mut key = ec_key("P-256", 32);
    key["d"] = json!("AAAA");
    assert!(
        jwks_err(json!({"keys": [key]}))
            .starts_with("jwks.keys[0] must not contain private key member \"d\"")
    );
}

#[test]
fn jwks_key_types_and_curves() {
    for good in [
        rsa_key(2048),
        rsa_key(4096),
        ec_key("P-256", 32),
        ec_key("P-384", 48),
        ec_key("P-521", 66),
        okp_key("Ed25519", 32),
        okp_key("Ed448", 57),
        okp_key("X25519", 32),
        okp_key("X448", 56),
    ] {
        assert!(
            run(json!({"redirect_uris": [CB], "jwks": {"keys": [good]}})).is_ok(),
            "{good}"
        );
    }
    let e = jwks_err(json!({"keys": [rsa_key(1024)]}));
    assert_eq!(
        e,
        "jwks.keys[0].n is a 1024-bit RSA modulus; at least 2048 bits are required"
    );
    // Leading zero bytes do not count.
    let mut n = vec![0u8; 256];
    n[1] = 0x01;
    let e = jwks_err(json!({"keys": [{"kty": "RSA", "n": b64(&n), "e": "AQAB"}]}));
    assert!(e.contains("2033-bit"), "{e}");
    assert!(
        jwks_err(json!({"keys": [{"kty": "RSA", "e": "AQAB"}]})).contains("must contain \"n\"")
    );
    assert!(
        jwks_err(json!({"keys": [{"kty": "RSA", "n": "!!", "e": "AQAB"}]})).contains("base64url")
    );
    assert!(jwks_err(json!({"keys": [ec_key("Ed25519", 32)]})).contains("is not an EC curve"));
    assert!(jwks_err(json!({"keys": [okp_key("P-256", 32)]})).contains("is not an OKP curve"));
    assert!(jwks_err(json!({"keys": [ec_key("P-256", 31)]})).contains("must be 32 bytes long"));
    assert!(
        jwks_err(json!({"keys": [{"kty": "EC", "crv": "P-256", "x": b64(&[1; 32])}]}))
            .contains("must contain \"y\"")
    );
    assert!(jwks_err(json!({"keys": [okp_key("Ed25519", 31)]})).contains("must be 32 bytes long"));
}

#[test]
fn jwks_kid_use_key_ops_alg() {
    let mut a = ec_key("P-256", 32);
    a["kid"] = json!("k");
    let mut b = rsa_key(2048);
    b["kid"] = json!("k");
    assert_eq!(
        jwks_err(json!({"keys": [a, b.clone()]})),
        "jwks.keys[1].kid \"k\" is used by another key; kid values must be unique"
    );
    let mut k = rsa_key(2048);
    k["use"] = json!("sig");
    k["key_ops"] = json!(["encrypt"]);
    assert!(jwks_err(json!({"keys": [k]})).contains("inconsistent with use \"sig\""));
    let mut k = rsa_key(2048);
    k["use"] = json!("other");
    assert!(jwks_err(json!({"keys": [k]})).contains("use must be \"sig\" or \"enc\""));
    let mut k = rsa_key(2048);
    k["key_ops"] = json!(["verify", "verify"]);
    assert!(jwks_err(json!({"keys": [k]})).contains("must not repeat"));
    let mut k = rsa_key(2048);
    k["key_ops"] = json!(["verify", "encrypt"]);
    assert!(jwks_err(json!({"keys": [k]})).contains("must not mix"));
    let mut k = rsa_key(2048);
    k["alg"] = json!("ES256");
    assert!(jwks_err(json!({"keys": [k]})).contains("cannot be used with this key type (RSA)"));
    let mut k = ec_key("P-384", 48);
    k["alg"] = json!("ES256");
    assert!(
        jwks_err(json!({"keys": [k]})).contains("cannot be used with this key type (EC P-384)")
    );
    let mut k = rsa_key(2048);
    k["alg"] = json!("RSA-OAEP");
    k["use"] = json!("sig");
    assert!(jwks_err(json!({"keys": [k]})).contains("inconsistent with use"));
    let mut k = rsa_key(2048);
    k["x5c"] = json!([""]);
    assert!(jwks_err(json!({"keys": [k]})).contains("x5c must be an array of non-empty strings"));
    let mut k = rsa_key(2048);
    k["kid"] = json!(5);
    assert!(jwks_err(json!({"keys": [k]})).contains("kid must be a non-empty string"));
}

#[test]
fn jwks_keys_must_fit_registered_algorithms() {
    let base = json!({"redirect_uris": [CB], "token_endpoint_auth_method": "private_key_jwt"});
    let mut v = base.clone();
    v["token_endpoint_auth_signing_alg"] = json!("ES256");
    v["jwks"] = json!({"keys": [rsa_key(2048)]});
    let e = err(v.clone());
    assert!(e.description.starts_with("jwks has no key usable for signature verification with ES256 (token_endpoint_auth_signing_alg)"), "{}", e.description);
    v["jwks"] = json!({"keys": [ec_key("P-256", 32)]});
    assert!(run(v.clone()).is_ok());
    let mut enc_only = ec_key("P-256", 32);
    enc_only["use"] = json!("enc");
    v["jwks"] = json!({"keys": [enc_only]});
    assert!(run(v).is_err());
    let mut v = base.clone();
    v["jwks"] = json!({"keys": []});
    assert!(err(v).description.contains("has no signature key"));
    let mut v = base;
    v["jwks"] = json!({"keys": [rsa_key(2048)]});
    v["jwks_uri"] = json!("https://rp.example.com/jwks");
    assert_eq!(
        err(v).description,
        "jwks and jwks_uri must not be used at the same time"
    );
    let e = err(json!({"redirect_uris": [CB], "token_endpoint_auth_method": "private_key_jwt"}));
    assert!(e.description.starts_with(
        "jwks or jwks_uri is mandatory for this client (token_endpoint_auth_method private_key_jwt"
    ));
}

// ---------------------------------------------------------------------------------------
// Remote documents (pure part) and the secret decision.

#[test]
fn sector_document_rules() {
    let md = ClientMetadata::from_trusted(map(
        json!({"response_types": ["code"], "redirect_uris": [CB], "grant_types": [rules::DEVICE_GRANT], "jwks_uri": "https://rp.example.com/jwks"}),
    ));
    assert!(check_sector_document(&md, &json!([CB, "https://rp.example.com/jwks"])).is_ok());
    assert!(
        check_sector_document(&md, &json!([CB]))
            .unwrap_err()
            .description
            .contains("jwks_uri must be included")
    );
    assert!(
        check_sector_document(&md, &json!(["https://other.example.com"]))
            .unwrap_err()
            .description
            .contains("all registered redirect_uris")
    );
    assert!(check_sector_document(&md, &json!({"a": 1})).is_err());
    assert!(check_sector_document(&md, &json!([null])).is_err());
}

#[test]
fn secret_is_decided_after_defaults() {
    let mut s = ServerMetadata::default();
    s.client_defaults
        .insert("token_endpoint_auth_method".into(), "none".into());
    assert!(!needs_secret_after_defaults(&map(json!({})), &s));
    assert!(needs_secret_after_defaults(
        &map(json!({})),
        &ServerMetadata::default()
    ));
    assert!(needs_secret_after_defaults(
        &map(json!({"id_token_signed_response_alg": "HS256"})),
        &s
    ));
}

#[test]
fn discovery_advertises_what_is_accepted() {
    let s = all_features();
    let d = s.discovery_members();
    for k in [
        "userinfo_signing_alg_values_supported",
        "request_object_encryption_alg_values_supported",
        "backchannel_token_delivery_modes_supported",
        "authorization_details_types_supported",
        "userinfo_encryption_alg_values_supported",
        "backchannel_authentication_request_signing_alg_values_supported",
    ] {
        assert!(d.contains_key(k), "{k}");
    }
    let d = ServerMetadata::default().discovery_members();
    assert!(!d.contains_key("backchannel_token_delivery_modes_supported"));
    assert!(!d.contains_key("id_token_encryption_alg_values_supported"));
    // ServerMetadata still rejects unknown configuration keys.
    assert!(serde_json::from_value::<ServerMetadata>(json!({"nope": 1})).is_err());
    assert!(serde_json::from_value::<ServerMetadata>(json!({"features": {"ciba": true}})).is_ok());
}

// ---------------------------------------------------------------------------------------
// OpenID Connect RP Metadata Choices (feature `rp_metadata_choices`).

fn with_choices(mut server: ServerMetadata) -> ServerMetadata {
    server.features.rp_metadata_choices = true;
    server
}

fn choices(v: Value) -> Result<ClientMetadata, MetadataError> {
    with(&with_choices(ServerMetadata::default()), v)
}

fn choices_err(v: Value) -> String {
    choices(v).expect_err("invalid").description
}

#[test]
fn choice_lists_are_unknown_members_when_the_feature_is_off() {
    assert!(!ServerMetadata::default().features.rp_metadata_choices);
    let md = ok(json!({
        "redirect_uris": [CB],
        "token_endpoint_auth_methods_supported": ["none"],
        "subject_types_supported": 5,
        "id_token_signing_alg_values_supported": ["PS256"],
    }));
    assert_eq!(
        md.str("token_endpoint_auth_method"),
        Some("client_secret_basic")
    );
    assert_eq!(md.str("id_token_signed_response_alg"), Some("RS256"));
    assert!(md.get("token_endpoint_auth_methods_supported").is_none());
    assert!(md.get("subject_types_supported").is_none());
    // The configuration key is optional and still checked strictly.
    assert!(
        serde_json::from_value::<ServerMetadata>(
            json!({"features": {"rp_metadata_choices": true}})
        )
        .is_ok_and(|s| s.features.rp_metadata_choices)
    );
    assert!(
        serde_json::from_value::<ServerMetadata>(json!({"features": {"rp_metadata_choice": true}}))
            .is_err()
    );
}

#[test]
fn choice_picks_the_first_supported_value_and_is_not_stored() {
    let md = choices(json!({
        "redirect_uris": [CB],
        "token_endpoint_auth_methods_supported": ["private_key_jwt_unsupported", "none", "client_secret_post"],
    }))
    .unwrap();
    assert_eq!(md.str("token_endpoint_auth_method"), Some("none"));
    assert!(md.get("token_endpoint_auth_methods_supported").is_none());
    // The default is not applied (it would have been tried first otherwise).
    let md = choices(json!({
        "redirect_uris": [CB],
        "id_token_signing_alg_values_supported": ["none", "PS256", "RS256"],
    }))
    .unwrap();
    assert_eq!(md.str("id_token_signed_response_alg"), Some("PS256"));
    // Nor a configured default.
    let mut s = with_choices(ServerMetadata::default());
    s.client_defaults.insert(
        "token_endpoint_auth_method".into(),
        "client_secret_post".into(),
    );
    let md = with(
        &s,
        json!({"redirect_uris": [CB], "token_endpoint_auth_methods_supported": ["none"]}),
    )
    .unwrap();
    assert_eq!(md.str("token_endpoint_auth_method"), Some("none"));
    // A null list counts as absent.
    let md = choices(json!({"redirect_uris": [CB], "token_endpoint_auth_methods_supported": null}))
        .unwrap();
    assert_eq!(
        md.str("token_endpoint_auth_method"),
        Some("client_secret_basic")
    );
}

#[test]
fn choice_tries_the_explicit_value_first() {
    let md = choices(json!({
        "redirect_uris": [CB],
        "token_endpoint_auth_method": "client_secret_post",
        "token_endpoint_auth_methods_supported": ["none", "client_secret_post"],
    }))
    .unwrap();
    assert_eq!(
        md.str("token_endpoint_auth_method"),
        Some("client_secret_post")
    );
    // An explicit value the server does not allow gives way to the list.
    let md = choices(json!({
        "redirect_uris": [CB],
        "token_endpoint_auth_method": "bogus",
        "token_endpoint_auth_methods_supported": ["bogus", "none"],
    }))
    .unwrap();
    assert_eq!(md.str("token_endpoint_auth_method"), Some("none"));
}

#[test]
fn choice_must_include_the_explicit_value() {
    assert_eq!(
        choices_err(json!({
            "redirect_uris": [CB],
            "token_endpoint_auth_method": "client_secret_post",
            "token_endpoint_auth_methods_supported": ["none"],
        })),
        "token_endpoint_auth_methods_supported must include the value of provided token_endpoint_auth_method (\"client_secret_post\")"
    );
    assert_eq!(
        choices_err(json!({
            "redirect_uris": [CB],
            "subject_type": 5,
            "subject_types_supported": ["public"],
        })),
        "subject_types_supported must include the value of provided subject_type (5)"
    );
}

#[test]
fn choice_must_be_an_array_of_non_empty_strings() {
    let e = choices_err(json!({"redirect_uris": [CB], "subject_types_supported": "public"}));
    assert!(
        e.starts_with("subject_types_supported must be an array"),
        "{e}"
    );
    let e = choices_err(json!({"redirect_uris": [CB], "subject_types_supported": {"a": 1}}));
    assert!(
        e.starts_with("subject_types_supported must be an array"),
        "{e}"
    );
    assert_eq!(
        choices_err(json!({"redirect_uris": [CB], "subject_types_supported": ["public", 1]})),
        "subject_types_supported must only contain non-empty strings (got 1)"
    );
    assert_eq!(
        choices_err(json!({"redirect_uris": [CB], "subject_types_supported": [""]})),
        "subject_types_supported must only contain non-empty strings (got \"\")"
    );
    assert_eq!(
        choices_err(json!({"redirect_uris": [CB], "subject_types_supported": [null]})),
        "subject_types_supported must only contain non-empty strings (got null)"
    );
    // The error code is invalid_client_metadata.
    let e = choices(json!({"redirect_uris": [CB], "subject_types_supported": 1})).unwrap_err();
    assert_eq!(e.kind, MetadataErrorKind::InvalidClientMetadata);
}

#[test]
fn choice_with_no_supported_value_is_refused() {
    assert_eq!(
        choices_err(json!({"redirect_uris": [CB], "subject_types_supported": ["pairwise"]})),
        "subject_types_supported includes no supported values (subject_type can be 'public')"
    );
    assert_eq!(
        choices_err(json!({"redirect_uris": [CB], "subject_types_supported": []})),
        "subject_types_supported includes no supported values (subject_type can be 'public')"
    );
    // `none` is never a signing algorithm.
    let e = choices_err(
        json!({"redirect_uris": [CB], "id_token_signing_alg_values_supported": ["none"]}),
    );
    assert!(
        e.starts_with("id_token_signing_alg_values_supported includes no supported values"),
        "{e}"
    );
}

#[test]
fn choice_of_signing_alg_follows_the_chosen_method() {
    let jwks_uri = "https://rp.example.com/jwks";
    let md = choices(json!({
        "redirect_uris": [CB],
        "jwks_uri": jwks_uri,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["HS256", "ES256"],
    }))
    .unwrap();
    assert_eq!(
        md.str("token_endpoint_auth_method"),
        Some("private_key_jwt")
    );
    assert_eq!(md.str("token_endpoint_auth_signing_alg"), Some("ES256"));
    let md = choices(json!({
        "redirect_uris": [CB],
        "token_endpoint_auth_methods_supported": ["client_secret_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "HS256"],
    }))
    .unwrap();
    assert_eq!(md.str("token_endpoint_auth_signing_alg"), Some("HS256"));
    assert_eq!(
        choices_err(json!({
            "redirect_uris": [CB],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
        })),
        "token_endpoint_auth_signing_alg_values_supported includes no supported values (token_endpoint_auth_method client_secret_basic uses no signing algorithm)"
    );
}

#[test]
fn choice_of_method_respects_the_pairwise_device_rule() {
    let mut s = with_choices(all_features());
    s.features.ciba = false;
    let base = json!({
        "response_types": [],
        "jwks_uri": "https://rp.example.com/jwks",
        "grant_types": [rules::DEVICE_GRANT],
        "subject_types_supported": ["pairwise"],
    });
    let mut v = base.clone();
    v["token_endpoint_auth_methods_supported"] = json!(["client_secret_basic", "private_key_jwt"]);
    let md = with(&s, v).unwrap();
    assert_eq!(md.str("subject_type"), Some("pairwise"));
    assert_eq!(
        md.str("token_endpoint_auth_method"),
        Some("private_key_jwt")
    );
    let mut v = base;
    v["token_endpoint_auth_methods_supported"] = json!(["none"]);
    assert_eq!(
        with(&s, v).unwrap_err().description,
        format!(
            "token_endpoint_auth_methods_supported includes no supported values (pairwise {} clients must utilize private_key_jwt or self_signed_tls_client_auth)",
            rules::DEVICE_GRANT
        )
    );
}

#[test]
fn choice_of_encryption_keeps_the_encryption_rules() {
    let s = with_choices(all_features());
    let md = with(
        &s,
        json!({
            "redirect_uris": [CB],
            "id_token_encryption_alg_values_supported": ["RSA-OAEP-512", "dir"],
            "id_token_encryption_enc_values_supported": ["A192GCM", "A256GCM"],
        }),
    )
    .unwrap();
    assert_eq!(md.str("id_token_encrypted_response_alg"), Some("dir"));
    assert_eq!(md.str("id_token_encrypted_response_enc"), Some("A256GCM"));
    assert_eq!(
        with(
            &s,
            json!({"redirect_uris": [CB], "id_token_encryption_enc_values_supported": ["A256GCM"]})
        )
        .unwrap_err()
        .description,
        "id_token_encrypted_response_alg is mandatory property when id_token_encrypted_response_enc is provided"
    );
}

#[test]
fn choice_lists_need_their_target_to_be_recognised() {
    // jwt_userinfo is off: the list is an unknown member, whatever it holds.
    let md = choices(json!({
        "redirect_uris": [CB],
        "userinfo_signing_alg_values_supported": "not even an array",
        "request_object_signing_alg_values_supported": ["bogus"],
    }))
    .unwrap();
    assert!(md.get("userinfo_signed_response_alg").is_none());
    assert!(md.get("request_object_signing_alg").is_none());
    assert!(md.get("userinfo_signing_alg_values_supported").is_none());
}

/// Every choice list, its target and a value the server allows (with what else it needs).
const CHOICE_TABLE: &[(&str, &str, &str, &str)] = &[
    (
        "id_token_signing_alg_values_supported",
        "id_token_signed_response_alg",
        "PS256",
        "",
    ),
    (
        "id_token_encryption_alg_values_supported",
        "id_token_encrypted_response_alg",
        "A256KW",
        "",
    ),
    (
        "id_token_encryption_enc_values_supported",
        "id_token_encrypted_response_enc",
        "A256GCM",
        "id_token_encrypted_response_alg",
    ),
    (
        "userinfo_signing_alg_values_supported",
        "userinfo_signed_response_alg",
        "ES256",
        "",
    ),
    (
        "userinfo_encryption_alg_values_supported",
        "userinfo_encrypted_response_alg",
        "A256KW",
        "userinfo_signed_response_alg",
    ),
    (
        "userinfo_encryption_enc_values_supported",
        "userinfo_encrypted_response_enc",
        "A256GCM",
        "userinfo_encrypted_response_alg",
    ),
    (
        "introspection_signing_alg_values_supported",
        "introspection_signed_response_alg",
        "ES256",
        "",
    ),
    (
        "introspection_encryption_alg_values_supported",
        "introspection_encrypted_response_alg",
        "A256KW",
        "",
    ),
    (
        "introspection_encryption_enc_values_supported",
        "introspection_encrypted_response_enc",
        "A256GCM",
        "introspection_encrypted_response_alg",
    ),
    (
        "authorization_signing_alg_values_supported",
        "authorization_signed_response_alg",
        "ES256",
        "",
    ),
    (
        "authorization_encryption_alg_values_supported",
        "authorization_encrypted_response_alg",
        "A256KW",
        "",
    ),
    (
        "authorization_encryption_enc_values_supported",
        "authorization_encrypted_response_enc",
        "A256GCM",
        "authorization_encrypted_response_alg",
    ),
    (
        "request_object_signing_alg_values_supported",
        "request_object_signing_alg",
        "PS256",
        "",
    ),
    (
        "request_object_encryption_alg_values_supported",
        "request_object_encryption_alg",
        "A256KW",
        "",
    ),
    (
        "request_object_encryption_enc_values_supported",
        "request_object_encryption_enc",
        "A256GCM",
        "request_object_encryption_alg",
    ),
    (
        "backchannel_authentication_request_signing_alg_values_supported",
        "backchannel_authentication_request_signing_alg",
        "ES256",
        "",
    ),
    ("subject_types_supported", "subject_type", "pairwise", ""),
    (
        "token_endpoint_auth_methods_supported",
        "token_endpoint_auth_method",
        "private_key_jwt",
        "",
    ),
    (
        "token_endpoint_auth_signing_alg_values_supported",
        "token_endpoint_auth_signing_alg",
        "ES256",
        "token_endpoint_auth_method",
    ),
];

#[test]
fn every_choice_list_resolves_its_target() {
    let on = with_choices(all_features());
    let off = all_features();
    for (choice, target, value, needs) in CHOICE_TABLE {
        let mut v = json!({"redirect_uris": [CB], "jwks_uri": "https://rp.example.com/jwks"});
        match *needs {
            "" => {}
            "token_endpoint_auth_method" => v[needs] = json!("private_key_jwt"),
            "userinfo_signed_response_alg" => v[needs] = json!("RS256"),
            _ => v[needs] = json!("A128KW"),
        }
        if choice.starts_with("userinfo_encryption") {
            v["userinfo_signed_response_alg"] = json!("RS256");
        }
        v[choice] = json!(["bogus", value]);
        let md = with(&on, v.clone()).unwrap_or_else(|e| panic!("{choice}: {}", e.description));
        assert_eq!(md.str(target), Some(*value), "{choice}");
        assert!(md.get(choice).is_none(), "{choice}");
        // Off: the list is dropped and does not set the target.
        let md = with(&off, v.clone()).unwrap_or_else(|e| panic!("{choice}: {}", e.description));
        assert_ne!(md.str(target), Some(*value), "{choice}");
        assert!(md.get(choice).is_none(), "{choice}");
        // Nothing supported.
        v[choice] = json!(["bogus"]);
        let e = with(&on, v).unwrap_err().description;
        assert!(
            e.starts_with(&format!("{choice} includes no supported values (")),
            "{choice}: {e}"
        );
    }
}

#[test]
fn secret_is_decided_after_choices() {
    let on = with_choices(ServerMetadata::default());
    let only_none = map(json!({"token_endpoint_auth_methods_supported": ["none"]}));
    assert!(!needs_secret_after_defaults(&only_none, &on));
    assert!(needs_secret_after_defaults(
        &only_none,
        &ServerMetadata::default()
    ));
    assert!(!needs_secret_after_defaults(
        &map(
            json!({"token_endpoint_auth_methods_supported": ["private_key_jwt_unsupported", "none"]})
        ),
        &on
    ));
    assert!(needs_secret_after_defaults(
        &map(json!({"token_endpoint_auth_methods_supported": ["client_secret_post", "none"]})),
        &on
    ));
    // A list the validator will refuse: a secret is harmless.
    assert!(needs_secret_after_defaults(
        &map(json!({"token_endpoint_auth_methods_supported": "none"})),
        &on
    ));
    // The validator agrees.
    let md = with(
        &on,
        json!({"redirect_uris": [CB], "token_endpoint_auth_methods_supported": ["none"]}),
    )
    .unwrap();
    assert!(!md.needs_secret());
}

// ---------------------------------------------------------------------------------------
// Property test: the validator never panics.

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    const KEYS: &[&str] = &[
        "application_type",
        "client_name",
        "client_uri",
        "contacts",
        "default_acr_values",
        "default_max_age",
        "grant_types",
        "id_token_signed_response_alg",
        "initiate_login_uri",
        "jwks",
        "jwks_uri",
        "logo_uri",
        "policy_uri",
        "redirect_uris",
        "require_auth_time",
        "response_types",
        "response_modes",
        "scope",
        "sector_identifier_uri",
        "subject_type",
        "token_endpoint_auth_method",
        "token_endpoint_auth_signing_alg",
        "tos_uri",
        "post_logout_redirect_uris",
        "backchannel_logout_uri",
        "request_object_signing_alg",
        "id_token_encrypted_response_alg",
        "id_token_encrypted_response_enc",
        "userinfo_encrypted_response_alg",
        "tls_client_auth_san_dns",
        "dpop_bound_access_tokens",
        "tls_client_certificate_bound_access_tokens",
        "backchannel_token_delivery_mode",
        "authorization_details_types",
        "client_name#de",
        "tos_uri#x-y",
        "client_secret",
        "client_secret_expires_at",
        "software_statement",
        "unknown",
        "client_name#!!",
        "token_endpoint_auth_methods_supported",
        "token_endpoint_auth_signing_alg_values_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "id_token_encryption_enc_values_supported",
        "userinfo_signing_alg_values_supported",
    ];

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            prop_oneof![
                Just("code".to_owned()),
                Just("id_token token".to_owned()),
                Just(CB.to_owned()),
                Just("http://localhost/cb".to_owned()),
                Just("native".to_owned()),
                Just("private_key_jwt".to_owned()),
                Just("pairwise".to_owned()),
                Just("none".to_owned()),
                Just("RS256".to_owned()),
                Just("RSA-OAEP".to_owned()),
                Just("myapp:/x#f".to_owned()),
                Just("".to_owned()),
                ".{0,12}",
            ]
            .prop_map(Value::String),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("keys".to_owned()),
                        Just("kty".to_owned()),
                        Just("crv".to_owned()),
                        Just("n".to_owned()),
                        Just("x".to_owned()),
                        Just("d".to_owned()),
                        ".{0,4}"
                    ],
                    inner,
                    0..5,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn document() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::vec((prop::sample::select(KEYS), value()), 0..12).prop_map(|pairs| {
            let mut m: Map<String, Value> =
                pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            m.insert("client_id".into(), "abc".into());
            m
        })
    }

    fn valid_document() -> Map<String, Value> {
        map(json!({
            "client_id": "abc",
            "redirect_uris": [CB],
            "response_types": ["code"],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "ES256",
            "jwks": {"keys": [ec_key("P-256", 32)]},
            "contacts": ["ops@rp.example.com"],
            "scope": "openid",
            "client_name#de": "Name",
        }))
    }

    fn check(doc: Map<String, Value>) {
        for server in [
            ServerMetadata::default(),
            all_features(),
            with_choices(all_features()),
        ] {
            match validate(doc.clone(), &server) {
                Ok(md) => {
                    // What was accepted validates again to the same result.
                    assert_eq!(validate(md.as_map().clone(), &server).as_ref(), Ok(&md));
                }
                Err(e) => assert!(!e.description.is_empty()),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_documents_never_panic(doc in document()) {
            check(doc);
        }

        #[test]
        fn mutations_of_a_valid_document_never_panic(
            key in prop::sample::select(KEYS),
            v in value(),
            remove in prop::sample::select(KEYS),
        ) {
            let mut doc = valid_document();
            prop_assert!(validate(doc.clone(), &ServerMetadata::default()).is_ok());
            doc.remove(remove);
            doc.insert(key.to_owned(), v);
            check(doc);
        }
    }
}
