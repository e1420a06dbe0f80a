//! Software statement tests: a test Ed25519 key generated at test time signs the statements.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default
)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

use super::*;

const NOW: i64 = 1_800_000_000;
const ISS: &str = "https://statements.example.com";

struct TestKey {
    pkcs8: Vec<u8>,
    public: Vec<u8>,
}

fn key() -> TestKey {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
    TestKey {
        pkcs8: doc.as_ref().to_vec(),
        public: pair.public_key().as_ref().to_vec(),
    }
}

fn server(k: &TestKey, max_age: u64) -> ServerMetadata {
    let mut s = ServerMetadata::default();
    s.software_statement_issuers = vec![SoftwareStatementIssuer {
        issuer: ISS.into(),
        jwks: Some(
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "ss1", "x": URL_SAFE_NO_PAD.encode(&k.public)}]}),
        ),
        jwks_uri: None,
        algorithms: vec!["EdDSA".into()],
    }];
    s.software_statement_max_age_seconds = max_age;
    s
}

fn sign(k: &TestKey, claims: Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("ss1".into());
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&k.pkcs8)).unwrap()
}

fn claims() -> Value {
    json!({
        "iss": ISS,
        "iat": NOW - 10,
        "exp": NOW + 3600,
        "software_id": "4NRB1-0XZABZI9E6-5SM3R",
        "client_name": "Example Statement-based Client",
        "client_uri": "https://client.example.net/",
        "token_endpoint_auth_method": "none",
        "client_id": "attacker-chosen",
    })
}

async fn apply(
    statement: Value,
    body: Value,
    s: &ServerMetadata,
) -> Result<Map<String, Value>, MetadataError> {
    let mut props = body.as_object().cloned().unwrap_or_default();
    props.insert("software_statement".into(), statement);
    apply_software_statement(&mut props, s, NOW, None).await?;
    Ok(props)
}

#[tokio::test]
async fn a_signed_statement_is_accepted_and_wins_over_the_body() {
    let k = key();
    let s = server(&k, 3600);
    let jwt = sign(&k, claims());
    let props = apply(
        json!(jwt),
        json!({"client_name": "from body", "redirect_uris": ["https://client.example.net/cb"]}),
        &s,
    )
    .await
    .unwrap();
    assert_eq!(
        props["client_name"],
        json!("Example Statement-based Client")
    );
    assert_eq!(props["software_id"], json!("4NRB1-0XZABZI9E6-5SM3R"));
    assert_eq!(props["software_statement"], json!(jwt));
    assert!(!props.contains_key("iss") && !props.contains_key("exp"));
    assert!(
        !props.contains_key("client_id"),
        "a statement cannot choose the client_id"
    );
    // The statement is returned unmodified by validate.
    let mut props = props;
    props.insert("client_id".into(), "c1".into());
    let md = validate(props, &s).unwrap();
    assert_eq!(md.str("software_statement"), Some(jwt.as_str()));
    assert_eq!(md.str("token_endpoint_auth_method"), Some("none"));
}

#[tokio::test]
async fn refused_statements() {
    let k = key();
    let s = server(&k, 3600);
    let jwt = sign(&k, claims());
    let code = |r: Result<Map<String, Value>, MetadataError>| r.unwrap_err().kind;

    // Tampered payload.
    let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
    let mut c = claims();
    c["client_name"] = json!("Evil");
    parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
    let tampered = parts.join(".");
    let e = apply(json!(tampered), json!({}), &s).await.unwrap_err();
    assert_eq!(e.kind, MetadataErrorKind::InvalidSoftwareStatement);
    assert!(
        e.description.contains("signature could not be verified"),
        "{}",
        e.description
    );

    // Signed by another key.
    let other = key();
    assert_eq!(
        code(apply(json!(sign(&other, claims())), json!({}), &s).await),
        MetadataErrorKind::InvalidSoftwareStatement
    );

    // Expired, too old, issued in the future.
    let mut c = claims();
    c["exp"] = json!(NOW - 1);
    let e = apply(json!(sign(&k, c)), json!({}), &s).await.unwrap_err();
    assert_eq!(e.kind, MetadataErrorKind::InvalidSoftwareStatement);
    assert!(e.description.contains("expired"));
    let mut c = claims();
    c["iat"] = json!(NOW - 7200);
    let e = apply(json!(sign(&k, c)), json!({}), &s).await.unwrap_err();
    assert!(e.description.contains("too old"), "{}", e.description);
    let mut c = claims();
    c["iat"] = json!(NOW + 3600);
    assert!(apply(json!(sign(&k, c)), json!({}), &s).await.is_err());

    // Untrusted issuer.
    let mut c = claims();
    c["iss"] = json!("https://evil.example.com");
    let e = apply(json!(sign(&k, c)), json!({}), &s).await.unwrap_err();
    assert_eq!(e.kind, MetadataErrorKind::UnapprovedSoftwareStatement);

    // alg none.
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    let e = apply(json!(format!("{header}.{payload}.")), json!({}), &s)
        .await
        .unwrap_err();
    assert_eq!(e.kind, MetadataErrorKind::InvalidSoftwareStatement);
    assert!(e.description.contains("\"none\""));

    // HS256 with the public key as secret (algorithm confusion) is refused.
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(&k.public),
    )
    .unwrap();
    assert_eq!(
        code(apply(json!(hs), json!({}), &s).await),
        MetadataErrorKind::InvalidSoftwareStatement
    );

    // Malformed.
    for bad in [json!("abc"), json!("a.b.c"), json!(42), json!("")] {
        assert_eq!(
            code(apply(bad, json!({}), &s).await),
            MetadataErrorKind::InvalidSoftwareStatement
        );
    }

    // No issuers configured: the statement is ignored (RFC 7591 §3.1.1), whatever it holds,
    // and dropped so it is neither stored nor echoed.
    for statement in [json!(jwt), json!("not a jwt"), json!(42)] {
        let mut props = Map::new();
        props.insert("software_statement".into(), statement);
        props.insert("client_name".into(), json!("Plain"));
        apply_software_statement(&mut props, &ServerMetadata::default(), NOW, None)
            .await
            .unwrap();
        assert_eq!(Value::Object(props), json!({"client_name": "Plain"}));
    }
    // Verifying one directly still says no issuer is trusted.
    let e = verify_software_statement(&jwt, &ServerMetadata::default(), NOW, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, MetadataErrorKind::UnapprovedSoftwareStatement);
    let err: crate::RegistrationError = e.into();
    assert_eq!(err.code(), "unapproved_software_statement");

    // No statement: nothing happens.
    let mut props = Map::new();
    apply_software_statement(&mut props, &ServerMetadata::default(), NOW, None)
        .await
        .unwrap();
    assert!(props.is_empty());
}
