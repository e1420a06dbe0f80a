//! Language-tagged members, JWK Sets, remote documents (pure part), the secret decision and
//! discovery.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default
)]

use super::*;

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
