//! Tests of the metadata validator, one group per rule: the basics and the helpers here,
//! the other groups in the files next to this one.
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
fn without_secret_drops_the_secret_members_and_shares_one_copy() {
    let full = ClientMetadata::from_trusted(map(json!({
        "client_id": "c", "client_secret": "s3cret", "client_secret_expires_at": 0,
        "client_name": "App",
    })));
    let expected = map(json!({"client_id": "c", "client_name": "App"}));
    // Shared members (a store's cached record): copied once, the copy shared by later calls.
    let first = full.clone().without_secret();
    assert_eq!(first.as_map(), &expected);
    assert!(!first.json().contains("s3cret"), "{}", first.json());
    let second = full.clone().without_secret();
    assert!(Arc::ptr_eq(&first.0, &second.0));
    assert!(Arc::ptr_eq(&first.json(), &second.json()));
    assert_eq!(
        full.client_secret(),
        Some("s3cret"),
        "the original keeps it"
    );
    // Members held by no one else: removed in place.
    let alone = ClientMetadata::from_trusted(full.as_map().clone()).without_secret();
    assert_eq!(alone.as_map(), &expected);
    // Without a secret: the same members.
    let public = ClientMetadata::from_trusted(expected.clone());
    assert!(Arc::ptr_eq(&public.0, &public.clone().without_secret().0));
    // A change forgets the copy made of the old members (here changed in place: `full` is
    // the only holder left).
    let mut changed = full;
    drop((first, second));
    changed.set_server_member("client_name", json!("Renamed"));
    assert_eq!(
        changed.clone().without_secret().str("client_name"),
        Some("Renamed")
    );
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
    // The grant types are derived from response_types before the implicit rules apply
    // (OpenID Connect Registration §2, grant_types).
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

mod allowed_values;
mod choices;
mod keys_and_documents;
mod never_panics;
