//! Allowed values, rules between members, URIs and redirect URIs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default
)]

use super::*;

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
    // An unparseable redirect URI is a 400 invalid_redirect_uri (RFC 7591 §3.2.2), not a 500.
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
