//! Documents fetched at registration (`sector_identifier_uri`, `jwks_uri`) and software
//! statements, end to end through the server.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_with, web_client};

/// Serves fixed JSON documents on 127.0.0.1; returns the base URL.
async fn document_server(docs: Vec<(&'static str, Value)>) -> String {
    let mut router = axum::Router::new();
    for (path, doc) in docs {
        router = router.route(
            path,
            axum::routing::get(move || async move { axum::Json(doc) }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn ec_jwk() -> Value {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    json!({"kty": "EC", "crv": "P-256", "use": "sig", "kid": "k1",
           "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])})
}

/// `LOOPBACK`, fetching `jwks_uri` at registration (off by default).
const LOOPBACK_VERIFYING_JWKS: &str =
    "[fetch]\nallow_loopback_for_tests = true\nverify_jwks_uri_at_registration = true\n";

const LOOPBACK: &str = "[fetch]\nallow_loopback_for_tests = true\n[metadata]\nsubject_types_supported = [\"public\", \"pairwise\"]\n";

#[tokio::test]
async fn sector_identifier_documents_are_fetched_and_checked() {
    let base = document_server(vec![
        (
            "/sector.json",
            json!(["https://a.example.com/cb", "https://b.example.com/cb"]),
        ),
        ("/partial.json", json!(["https://a.example.com/cb"])),
        ("/object.json", json!({"not": "an array"})),
    ])
    .await;
    let app = spawn_with(LOOPBACK).await;
    let body = |doc: &str| {
        json!({
            "redirect_uris": ["https://a.example.com/cb", "https://b.example.com/cb"],
            "subject_type": "pairwise",
            "sector_identifier_uri": format!("{base}/{doc}"),
        })
    };
    let res = app.register(&body("sector.json"), None).await;
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    for doc in ["partial.json", "object.json", "missing.json"] {
        let d = assert_error(
            app.register(&body(doc), None).await,
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        )
        .await;
        assert!(d.contains("sector_identifier_uri"), "{doc}: {d}");
    }
    // Pairwise clients on several hosts need a sector identifier.
    let mut no_sector = body("sector.json");
    no_sector
        .as_object_mut()
        .unwrap()
        .remove("sector_identifier_uri");
    let d = assert_error(
        app.register(&no_sector, None).await,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    )
    .await;
    assert!(d.contains("sector_identifier_uri"), "{d}");
}

#[tokio::test]
async fn jwks_uri_documents_are_fetched_and_checked() {
    let base = document_server(vec![
        ("/jwks.json", json!({"keys": [ec_jwk()]})),
        (
            "/private.json",
            json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
        ),
    ])
    .await;
    let app = spawn_with(LOOPBACK_VERIFYING_JWKS).await;
    let body = |doc: &str| {
        json!({
            "redirect_uris": ["https://a.example.com/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "ES256",
            "jwks_uri": format!("{base}/{doc}"),
        })
    };
    let res = app.register(&body("jwks.json"), None).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let reg: Value = res.json().await.unwrap();
    assert!(
        reg.get("client_secret").is_none(),
        "private_key_jwt clients get no secret"
    );
    let d = assert_error(
        app.register(&body("private.json"), None).await,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    )
    .await;
    assert!(d.contains("jwks"), "{d}");
}

/// By default `jwks_uri` is checked for form only: an unreachable key set does not stop the
/// registration; with `verify_jwks_uri_at_registration` it does.
#[tokio::test]
async fn jwks_uri_is_not_fetched_at_registration_unless_configured() {
    // A loopback port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let body = json!({
        "redirect_uris": ["https://a.example.com/cb"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "jwks_uri": format!("http://{closed}/jwks.json"),
    });
    let app = spawn_with("[fetch]\nallow_loopback_for_tests = true\n").await;
    let res = app.register(&body, None).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let reg: Value = res.json().await.unwrap();
    assert_eq!(reg["jwks_uri"], body["jwks_uri"]);

    let app = spawn_with(LOOPBACK_VERIFYING_JWKS).await;
    let d = assert_error(
        app.register(&body, None).await,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    )
    .await;
    assert!(d.contains("jwks_uri"), "{d}");
}

#[tokio::test]
async fn internal_addresses_are_refused_without_the_test_switch() {
    let app = spawn_with("").await;
    for uri in [
        "https://127.0.0.1/jwks.json",
        "https://[::1]/jwks.json",
        "https://[::ffff:127.0.0.1]/jwks.json",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/jwks.json",
        "https://localhost/jwks.json",
    ] {
        let body = json!({
            "redirect_uris": ["https://a.example.com/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": uri,
        });
        let d = assert_error(
            app.register(&body, None).await,
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
        )
        .await;
        assert!(d.contains("jwks_uri"), "{uri}: {d}");
    }
}

struct Signer {
    pkcs8: Vec<u8>,
    public_x: String,
}

fn signer() -> Signer {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
    Signer {
        pkcs8: doc.as_ref().to_vec(),
        public_x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
    }
}

fn sign(s: &Signer, claims: &Value) -> String {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_ed_der(&s.pkcs8),
    )
    .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn software_statements_are_verified_and_take_precedence() {
    let key = signer();
    let config = format!(
        "[[metadata.software_statement_issuers]]\nissuer = \"https://statements.example.com\"\nalgorithms = [\"EdDSA\"]\njwks = {{ keys = [{{ kty = \"OKP\", crv = \"Ed25519\", x = \"{}\" }}] }}\n",
        key.public_x
    );
    let app = spawn_with(&config).await;
    let claims = json!({"iss": "https://statements.example.com", "iat": now(), "exp": now() + 600,
                        "software_id": "app-1", "client_name": "From the statement"});
    let statement = sign(&key, &claims);
    let mut body = web_client();
    body["software_statement"] = json!(statement);
    let res = app.register(&body, None).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let reg: Value = res.json().await.unwrap();
    assert_eq!(
        reg["client_name"], "From the statement",
        "statement claims win over the body"
    );
    assert_eq!(reg["software_id"], "app-1");
    assert_eq!(
        reg["software_statement"],
        json!(statement),
        "returned unmodified"
    );

    // Tampered, expired, unsigned, and from an untrusted issuer.
    let mut tampered = statement.clone();
    tampered.pop();
    tampered.push(if statement.ends_with('A') { 'B' } else { 'A' });
    let expired = sign(
        &key,
        &json!({"iss": "https://statements.example.com", "iat": now() - 7200, "exp": now() - 3600}),
    );
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let unsigned = format!("{header}.{payload}.");
    let other = sign(
        &key,
        &json!({"iss": "https://evil.example.com", "iat": now(), "exp": now() + 600}),
    );
    for (statement, code) in [
        (tampered, "invalid_software_statement"),
        (expired, "invalid_software_statement"),
        (unsigned, "invalid_software_statement"),
        (other, "unapproved_software_statement"),
    ] {
        let mut body = web_client();
        body["software_statement"] = json!(statement);
        assert_error(
            app.register(&body, None).await,
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
    }
}

#[tokio::test]
async fn statements_are_ignored_when_no_issuer_is_trusted() {
    let key = signer();
    let app = spawn_with("").await;
    let mut body = web_client();
    body["client_name"] = json!("Plain");
    body["software_statement"] = json!(sign(
        &key,
        &json!({"iss": "https://x.example.com", "iat": now(), "client_name": "From the statement"})
    ));
    let res = app.register(&body, None).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let reg: Value = res.json().await.unwrap();
    assert_eq!(reg["client_name"], "Plain", "its claims are not applied");
    assert!(reg.get("software_statement").is_none(), "not echoed: {reg}");
    let read = app
        .read(&reg, reg["registration_access_token"].as_str().unwrap())
        .await;
    let stored: Value = read.json().await.unwrap();
    assert!(
        stored.get("software_statement").is_none(),
        "not stored: {stored}"
    );
}
