//! Micro-benchmark of metadata validation (`cargo bench -p dcr-core --bench validate`):
//! a typical confidential web client, and a large document (many redirect URIs, contacts,
//! localized names, a JWK Set of several keys). The `validator_*` benches use a prepared
//! [`Validator`], as the registrar does; the others build the server tables on every call.

#![allow(missing_docs, clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dcr_core::metadata::{ServerMetadata, Validator, validate};
use serde_json::{Map, Value, json};

fn main() {
    divan::main();
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn typical() -> Map<String, Value> {
    object(json!({
        "client_id": "V1StGXR8_Z5jdHi6B-myT",
        "client_id_issued_at": 1_800_000_000,
        "redirect_uris": ["https://app.example.com/callback", "https://app.example.com/silent"],
        "client_name": "Benchmark App",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "contacts": ["ops@example.com"],
        "client_secret": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
        "client_secret_expires_at": 0,
    }))
}

fn large() -> Map<String, Value> {
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let mut n = vec![0xA5u8; 256];
    n[0] = 0xC1;
    let mut keys = Vec::new();
    for i in 0..4 {
        keys.push(json!({"kty": "RSA", "kid": format!("rsa-{i}"), "use": "sig", "alg": "RS256", "n": b64(&n), "e": "AQAB"}));
        keys.push(json!({"kty": "EC", "kid": format!("ec-{i}"), "use": "sig", "crv": "P-256", "x": b64(&[1; 32]), "y": b64(&[2; 32])}));
    }
    let mut doc = object(json!({
        "client_id": "V1StGXR8_Z5jdHi6B-myT",
        "client_id_issued_at": 1_800_000_000,
        "redirect_uris": (0..50).map(|i| format!("https://app{i}.example.com/oauth/callback?tenant={i}")).collect::<Vec<_>>(),
        "client_name": "Large Benchmark App",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "RS256",
        "contacts": (0..20).map(|i| format!("ops{i}@example.com")).collect::<Vec<_>>(),
        "logo_uri": "https://app.example.com/logo.png",
        "client_uri": "https://app.example.com/",
        "policy_uri": "https://app.example.com/policy",
        "tos_uri": "https://app.example.com/tos",
        "software_id": "4NRB1-0XZABZI9E6-5SM3R",
        "software_version": "2.3.1",
        "jwks": {"keys": keys},
    }));
    for tag in ["de", "fr", "es", "it", "ja", "pt-BR", "zh-Hans", "nl"] {
        doc.insert(format!("client_name#{tag}"), json!(format!("App ({tag})")));
        doc.insert(
            format!("tos_uri#{tag}"),
            json!(format!("https://app.example.com/{tag}/tos")),
        );
    }
    doc
}

#[divan::bench]
fn typical_client(bencher: divan::Bencher) {
    let server = ServerMetadata::default();
    let doc = typical();
    assert!(validate(doc.clone(), &server).is_ok());
    bencher
        .with_inputs(|| doc.clone())
        .bench_values(|d| validate(d, &server));
}

#[divan::bench]
fn large_client(bencher: divan::Bencher) {
    let server = ServerMetadata::default();
    let doc = large();
    if let Err(e) = validate(doc.clone(), &server) {
        panic!("large document must validate: {e}");
    }
    bencher
        .with_inputs(|| doc.clone())
        .bench_values(|d| validate(d, &server));
}

#[divan::bench]
fn validator_typical_client(bencher: divan::Bencher) {
    let validator = Validator::new(ServerMetadata::default());
    let doc = typical();
    assert!(validator.validate(doc.clone()).is_ok());
    bencher
        .with_inputs(|| doc.clone())
        .bench_values(|d| validator.validate(d));
}

#[divan::bench]
fn validator_large_client(bencher: divan::Bencher) {
    let validator = Validator::new(ServerMetadata::default());
    let doc = large();
    assert!(validator.validate(doc.clone()).is_ok());
    bencher
        .with_inputs(|| doc.clone())
        .bench_values(|d| validator.validate(d));
}

#[divan::bench]
fn validator_needs_secret(bencher: divan::Bencher) {
    let validator = Validator::new(ServerMetadata::default());
    let doc = typical();
    bencher.bench(|| validator.needs_secret_after_defaults(divan::black_box(&doc)));
}
