//! Property test: the validator never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::choices::with_choices;
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
        let mut m: Map<String, Value> = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
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
