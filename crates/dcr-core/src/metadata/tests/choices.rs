//! OpenID Connect RP Metadata Choices (feature `rp_metadata_choices`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default
)]

use super::*;

pub(super) fn with_choices(mut server: ServerMetadata) -> ServerMetadata {
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
