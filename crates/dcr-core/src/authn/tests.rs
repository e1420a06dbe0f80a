//! Client authentication: every method, every refusal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;
use crate::clock::FixedClock;
use crate::metadata::FetchError;

pub(super) const NOW: i64 = 1_800_000_000;
pub(super) const AUD: &str = "https://as.example.com/token";

pub(super) struct TestKey {
    pub(super) pkcs8: Vec<u8>,
    pub(super) public: Vec<u8>,
}

pub(super) fn key() -> TestKey {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
    TestKey {
        pkcs8: doc.as_ref().to_vec(),
        public: pair.public_key().as_ref().to_vec(),
    }
}

pub(super) fn jwk(k: &TestKey, kid: &str) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": URL_SAFE_NO_PAD.encode(&k.public)})
}

/// Clients by id, full metadata (with secret).
#[derive(Debug, Default)]
pub(super) struct Clients(pub(super) Mutex<HashMap<String, Value>>);

#[async_trait::async_trait]
impl ClientLookup for Clients {
    async fn lookup(&self, client_id: &str) -> Result<ClientCredentials, AuthnError> {
        let m = self.0.lock().unwrap().get(client_id).cloned();
        let m = m.ok_or(AuthnError::UnknownClient)?;
        Ok(ClientCredentials::from_metadata(
            client_id,
            ClientSource::Registration,
            ClientMetadata::from_trusted(m.as_object().unwrap().clone()),
        ))
    }
}

/// A `jwks_uri` server: counts fetches.
#[derive(Debug, Default)]
struct FakeJwks {
    set: Mutex<Value>,
    fetches: Mutex<u32>,
}

#[async_trait::async_trait]
impl DocumentFetcher for FakeJwks {
    async fn fetch_json(&self, _url: &url::Url, _what: &str) -> Result<Value, FetchError> {
        *self.fetches.lock().unwrap() += 1;
        Ok(self.set.lock().unwrap().clone())
    }
}

pub(super) struct World {
    pub(super) authn: Authenticator,
    pub(super) clock: Arc<FixedClock>,
    pub(super) key: TestKey,
    other: TestKey,
    jwks: Arc<FakeJwks>,
}

pub(super) const SECRET: &str = "s3cret:%+é/x";

pub(super) fn world() -> World {
    let key = key();
    let other = key_other();
    let clients = Clients::default();
    {
        let mut c = clients.0.lock().unwrap();
        for (id, m) in [
            ("basic", json!({"client_secret": SECRET})),
            ("co:lon%+ü", json!({"client_secret": SECRET})),
            (
                "post",
                json!({"token_endpoint_auth_method": "client_secret_post", "client_secret": SECRET}),
            ),
            (
                "expired",
                json!({"client_secret": SECRET, "client_secret_expires_at": NOW - 1}),
            ),
            (
                "forever",
                json!({"client_secret": SECRET, "client_secret_expires_at": 0}),
            ),
            (
                "hs",
                json!({"token_endpoint_auth_method": "client_secret_jwt", "client_secret": SECRET}),
            ),
            (
                "hs384",
                json!({"token_endpoint_auth_method": "client_secret_jwt", "token_endpoint_auth_signing_alg": "HS384", "client_secret": SECRET}),
            ),
            (
                "pk",
                json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [jwk(&key, "k1")]}}),
            ),
            (
                "pkuri",
                json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://rp.example.com/jwks"}),
            ),
            (
                "pk-rs",
                json!({"token_endpoint_auth_method": "private_key_jwt", "token_endpoint_auth_signing_alg": "RS256", "jwks": {"keys": [jwk(&key, "k1")]}}),
            ),
            ("public", json!({"token_endpoint_auth_method": "none"})),
            (
                "weird",
                json!({"token_endpoint_auth_method": "tls_client_auth"}),
            ),
        ] {
            let mut m = m;
            m["client_id"] = json!(id);
            c.insert(id.to_owned(), m);
        }
    }
    let jwks = Arc::new(FakeJwks::default());
    *jwks.set.lock().unwrap() = json!({"keys": [jwk(&key, "k1")]});
    let clock = Arc::new(FixedClock::new(NOW));
    let authn = Authenticator::builder(Arc::new(clients), Arc::new(MemoryReplayStore::new()))
        .fetcher(jwks.clone())
        .clock(clock.clone())
        .build();
    World {
        authn,
        clock,
        key,
        other,
        jwks,
    }
}

fn key_other() -> TestKey {
    key()
}

pub(super) fn claims(id: &str) -> Value {
    json!({"iss": id, "sub": id, "aud": AUD, "exp": NOW + 60, "iat": NOW, "jti": format!("j-{}", rand::random::<u64>())})
}

pub(super) fn sign_ed(k: &TestKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&k.pkcs8)).unwrap()
}

pub(super) fn sign_hs(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

pub(super) fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub(super) fn jwt_form(assertion: &str) -> HashMap<String, String> {
    form(&[
        ("client_assertion_type", JWT_BEARER_ASSERTION_TYPE),
        ("client_assertion", assertion),
    ])
}

/// RFC 6749 §2.3.1: form-urlencode each part, then base64.
pub(super) fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded_byte_serialize(s);
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

fn form_urlencoded_byte_serialize(s: &str) -> String {
    // What the `form_urlencoded` crate produces: unreserved kept, space as '+', rest %XX.
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub(super) fn aud() -> Vec<String> {
    vec![AUD.to_owned(), "https://as.example.com".to_owned()]
}

impl World {
    pub(super) async fn run(
        &self,
        header: Option<&str>,
        params: &HashMap<String, String>,
    ) -> Result<AuthenticatedClient, AuthnError> {
        self.authn.authenticate(header, params, &aud()).await
    }
}

async fn refused(w: &World, header: Option<&str>, params: &HashMap<String, String>) -> String {
    let err = w.run(header, params).await.unwrap_err();
    assert_eq!(err.error_code(), "invalid_client", "{err}");
    let text = err.to_string();
    assert!(!text.contains(SECRET) && !text.contains("s3cret"), "{text}");
    if let Some(a) = params.get("client_assertion") {
        assert!(a.len() < 20 || !text.contains(a.as_str()), "{text}");
    }
    text
}

#[tokio::test]
async fn client_secret_basic_decodes_form_urlencoded_parts() {
    let w = world();
    let ok = w
        .run(Some(&basic("basic", SECRET)), &form(&[]))
        .await
        .unwrap();
    assert_eq!(
        (ok.client_id.as_str(), ok.method),
        ("basic", AuthMethod::ClientSecretBasic)
    );
    assert!(ok.metadata.get("client_secret").is_none());
    // An id with ':', '%', '+' and non-ASCII.
    let ok = w
        .run(Some(&basic("co:lon%+ü", SECRET)), &form(&[]))
        .await
        .unwrap();
    assert_eq!(ok.client_id, "co:lon%+ü");
    // The matching client_id in the form is fine; another is not.
    assert!(
        w.run(
            Some(&basic("basic", SECRET)),
            &form(&[("client_id", "basic")])
        )
        .await
        .is_ok()
    );
    let e = refused(
        &w,
        Some(&basic("basic", SECRET)),
        &form(&[("client_id", "post")]),
    )
    .await;
    assert!(e.contains("does not match"), "{e}");
    // Scheme is case-insensitive; padding optional.
    let raw = format!("basic:{}", form_urlencoded_byte_serialize(SECRET));
    let unpadded = STANDARD.encode(&raw).trim_end_matches('=').to_owned();
    assert!(
        w.run(Some(&format!("bAsIc {unpadded}")), &form(&[]))
            .await
            .is_ok()
    );
    // Unencoded secrets without special characters are the same either way.
    let e = refused(&w, Some(&basic("basic", "wrong")), &form(&[])).await;
    assert_eq!(e, "the client secret is wrong");
}

#[tokio::test]
async fn malformed_basic_headers_are_invalid_client() {
    let w = world();
    let cases: Vec<(String, &str)> = vec![
        ("Bearer abc".into(), "must use the Basic scheme"),
        ("Basic".into(), "no credentials"),
        ("Basic    ".into(), "no credentials"),
        ("Basic !!!notbase64".into(), "not valid base64"),
        (format!("Basic {}", STANDARD.encode("no-colon")), "no ':'"),
        (
            format!("Basic {}", STANDARD.encode(":secret")),
            "client id is empty",
        ),
        (
            format!("Basic {}", STANDARD.encode([0xff, 0xfe, b':', b'a'])),
            "not UTF-8",
        ),
        (
            format!("Basic {}", STANDARD.encode("basic:%FF%FE")),
            "secret is not valid form-urlencoded UTF-8",
        ),
        (
            format!("Basic {}", STANDARD.encode("%C3%28:x")),
            "client id is not valid",
        ),
        (format!("Basic {}", "A".repeat(10_000)), "too long"),
        ("".into(), "must use the Basic scheme"),
    ];
    for (header, want) in cases {
        let e = refused(&w, Some(&header), &form(&[])).await;
        assert!(e.contains(want), "{header:.40}: {e}");
    }
}

#[tokio::test]
async fn client_secret_post_and_method_must_be_the_registered_one() {
    let w = world();
    let ok = w
        .run(
            None,
            &form(&[("client_id", "post"), ("client_secret", SECRET)]),
        )
        .await
        .unwrap();
    assert_eq!(ok.method, AuthMethod::ClientSecretPost);
    // Basic for a post client and post for a basic (default) client.
    let e = refused(&w, Some(&basic("post", SECRET)), &form(&[])).await;
    assert!(e.contains("registered with token_endpoint_auth_method client_secret_post but authenticated with client_secret_basic"), "{e}");
    let e = refused(
        &w,
        None,
        &form(&[("client_id", "basic"), ("client_secret", SECRET)]),
    )
    .await;
    assert!(
        e.contains("client_secret_basic but authenticated with client_secret_post"),
        "{e}"
    );
    let e = refused(&w, None, &form(&[("client_secret", SECRET)])).await;
    assert!(e.contains("without client_id"), "{e}");
    let e = refused(
        &w,
        None,
        &form(&[("client_id", "post"), ("client_secret", "nope")]),
    )
    .await;
    assert_eq!(e, "the client secret is wrong");
    let e = refused(
        &w,
        None,
        &form(&[("client_id", ""), ("client_secret", "x")]),
    )
    .await;
    assert!(e.contains("client_id is empty"), "{e}");
}

#[tokio::test]
async fn two_methods_in_one_request_are_refused() {
    let w = world();
    let a = sign_hs(Algorithm::HS256, SECRET.as_bytes(), &claims("hs"));
    let mut both = jwt_form(&a);
    both.insert("client_secret".into(), SECRET.into());
    let e = refused(&w, None, &both).await;
    assert!(e.contains("more than one authentication method"), "{e}");
    let e = refused(
        &w,
        Some(&basic("post", SECRET)),
        &form(&[("client_id", "post"), ("client_secret", SECRET)]),
    )
    .await;
    assert!(e.contains("Authorization header and client_secret"), "{e}");
    let e = refused(&w, Some(&basic("hs", SECRET)), &jwt_form(&a)).await;
    assert!(e.contains("RFC 6749 section 2.3"), "{e}");
}

#[tokio::test]
async fn secrets_expire_unless_zero() {
    let w = world();
    let e = refused(&w, Some(&basic("expired", SECRET)), &form(&[])).await;
    assert!(e.contains("expired"), "{e}");
    assert!(
        w.run(Some(&basic("forever", SECRET)), &form(&[]))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn none_only_for_public_clients() {
    let w = world();
    let ok = w
        .run(None, &form(&[("client_id", "public")]))
        .await
        .unwrap();
    assert_eq!(ok.method, AuthMethod::None);
    let e = refused(&w, None, &form(&[("client_id", "basic")])).await;
    assert!(
        e.contains("client_secret_basic but authenticated with none"),
        "{e}"
    );
    let e = refused(&w, Some(&basic("public", "x")), &form(&[])).await;
    assert!(
        e.contains("registered with token_endpoint_auth_method none"),
        "{e}"
    );
    let e = refused(&w, None, &form(&[])).await;
    assert!(e.contains("no client authentication was presented"), "{e}");
    let e = refused(&w, None, &form(&[("client_id", "nobody")])).await;
    assert_eq!(e, "no client is registered with this client_id");
    let e = refused(&w, None, &form(&[("client_id", "nul\u{0}")])).await;
    assert_eq!(e, "no client is registered with this client_id");
    let e = refused(&w, None, &form(&[("client_id", "weird")])).await;
    assert!(e.contains("tls_client_auth is not supported"), "{e}");
}

#[tokio::test]
async fn client_secret_jwt_with_each_hmac_alg() {
    let w = world();
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let a = sign_hs(alg, SECRET.as_bytes(), &claims("hs"));
        let ok = w.run(None, &jwt_form(&a)).await.unwrap();
        assert_eq!(
            (ok.client_id.as_str(), ok.method),
            ("hs", AuthMethod::ClientSecretJwt)
        );
    }
    // With client_id in the form too.
    let a = sign_hs(Algorithm::HS256, SECRET.as_bytes(), &claims("hs"));
    let mut f = jwt_form(&a);
    f.insert("client_id".into(), "hs".into());
    assert!(w.run(None, &f).await.is_ok());
    // Registered alg: HS384 only.
    let a = sign_hs(Algorithm::HS256, SECRET.as_bytes(), &claims("hs384"));
    let e = refused(&w, None, &jwt_form(&a)).await;
    assert!(
        e.contains("does not match the client's token_endpoint_auth_signing_alg HS384"),
        "{e}"
    );
    let a = sign_hs(Algorithm::HS384, SECRET.as_bytes(), &claims("hs384"));
    assert!(w.run(None, &jwt_form(&a)).await.is_ok());
    // Wrong secret.
    let a = sign_hs(Algorithm::HS256, b"other secret", &claims("hs"));
    let e = refused(&w, None, &jwt_form(&a)).await;
    assert!(
        e.contains("does not verify with the client's secret"),
        "{e}"
    );
    // An asymmetric alg for a client_secret_jwt client.
    let a = sign_ed(&w.key, None, &claims("hs"));
    let e = refused(&w, None, &jwt_form(&a)).await;
    assert!(e.contains("client_secret_jwt accepts HS256"), "{e}");
}

#[tokio::test]
async fn private_key_jwt_with_inline_jwks() {
    let w = world();
    let ok = w
        .run(None, &jwt_form(&sign_ed(&w.key, Some("k1"), &claims("pk"))))
        .await
        .unwrap();
    assert_eq!(ok.method, AuthMethod::PrivateKeyJwt);
    // Without kid: every fitting key is tried.
    assert!(
        w.run(None, &jwt_form(&sign_ed(&w.key, None, &claims("pk"))))
            .await
            .is_ok()
    );
    // Unknown kid; a key that does not match.
    let e = refused(
        &w,
        None,
        &jwt_form(&sign_ed(&w.key, Some("k9"), &claims("pk"))),
    )
    .await;
    assert!(e.contains("no key of the client has its kid"), "{e}");
    let e = refused(
        &w,
        None,
        &jwt_form(&sign_ed(&w.other, Some("k1"), &claims("pk"))),
    )
    .await;
    assert!(e.contains("signature does not verify"), "{e}");
    // Registered RS256, presented EdDSA.
    let e = refused(
        &w,
        None,
        &jwt_form(&sign_ed(&w.key, Some("k1"), &claims("pk-rs"))),
    )
    .await;
    assert!(e.contains("token_endpoint_auth_signing_alg RS256"), "{e}");
}

/// The decoded keys of a client's `jwks` are kept only while its `jwks` is unchanged: after
/// the client replaces its key (RFC 7592 update), the old key no longer verifies.
#[tokio::test]
async fn inline_jwks_keys_follow_the_clients_current_jwks() {
    let (old, new) = (key(), key());
    let clients = Arc::new(Clients::default());
    let set = |k: &TestKey| json!({"client_id": "pk", "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [jwk(k, "k1")]}});
    clients.0.lock().unwrap().insert("pk".into(), set(&old));
    let authn = Authenticator::builder(clients.clone(), Arc::new(MemoryReplayStore::new()))
        .clock(Arc::new(FixedClock::new(NOW)))
        .build();
    let run = |k: &TestKey| {
        let form = jwt_form(&sign_ed(k, Some("k1"), &claims("pk")));
        let authn = authn.clone();
        async move { authn.authenticate(None, &form, &aud()).await }
    };
    assert!(run(&old).await.is_ok());
    assert!(run(&new).await.is_err());
    clients.0.lock().unwrap().insert("pk".into(), set(&new));
    assert!(run(&new).await.is_ok());
    let e = run(&old).await.unwrap_err().to_string();
    assert!(e.contains("signature does not verify"), "{e}");
}

#[tokio::test]
async fn hs_signed_with_the_public_key_is_refused_for_private_key_jwt() {
    let w = world();
    // The classic confusion: HMAC keyed by the client's public key bytes (or its JWK text).
    for secret in [
        w.key.public.clone(),
        serde_json::to_vec(&jwk(&w.key, "k1")).unwrap(),
    ] {
        let a = sign_hs(Algorithm::HS256, &secret, &claims("pk"));
        let e = refused(&w, None, &jwt_form(&a)).await;
        assert!(e.contains("private_key_jwt accepts"), "{e}");
    }
    // A client that lists an `oct` key still cannot use it for private_key_jwt.
    let keys: [jsonwebtoken::jwk::Jwk; 1] =
        [serde_json::from_value(json!({"kty": "oct", "k": "c2VjcmV0", "kid": "o"})).unwrap()];
    assert!(assertion::candidates(&keys, Algorithm::EdDSA, None).is_empty());
}

#[tokio::test]
async fn private_key_jwt_with_jwks_uri_refetches_on_unknown_kid_at_most_once_per_interval() {
    let w = world();
    assert!(
        w.run(
            None,
            &jwt_form(&sign_ed(&w.key, Some("k1"), &claims("pkuri")))
        )
        .await
        .is_ok()
    );
    assert!(
        w.run(
            None,
            &jwt_form(&sign_ed(&w.key, Some("k1"), &claims("pkuri")))
        )
        .await
        .is_ok()
    );
    assert_eq!(*w.jwks.fetches.lock().unwrap(), 1, "cached");
    // The client rotates to k2: the first assertion with k2 refetches.
    *w.jwks.set.lock().unwrap() = json!({"keys": [jwk(&w.other, "k2")]});
    assert!(
        w.run(
            None,
            &jwt_form(&sign_ed(&w.other, Some("k2"), &claims("pkuri")))
        )
        .await
        .is_ok()
    );
    assert_eq!(*w.jwks.fetches.lock().unwrap(), 2);
    // An unknown kid within the interval does not fetch again.
    let e = refused(
        &w,
        None,
        &jwt_form(&sign_ed(&w.other, Some("k3"), &claims("pkuri"))),
    )
    .await;
    assert!(e.contains("no key of the client has its kid"), "{e}");
    assert_eq!(*w.jwks.fetches.lock().unwrap(), 2);
}

#[tokio::test]
async fn assertion_claims_are_checked() {
    let w = world();
    let ok = |c: Value| sign_hs(Algorithm::HS256, SECRET.as_bytes(), &c);
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let with = |k: &str, v: Value| {
        let mut c = claims("hs");
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v;
        }
        c
    };
    cases.push((with("exp", json!(NOW - 31)), "it expired"));
    cases.push((with("exp", Value::Null), "it has no exp"));
    cases.push((with("exp", json!("soon")), "exp is not a NumericDate"));
    cases.push((with("exp", json!(NOW + 3600)), "too far in the future"));
    cases.push((with("nbf", json!(NOW + 120)), "not valid yet"));
    cases.push((with("iat", json!(NOW + 120)), "issued in the future"));
    cases.push((
        with("aud", json!("https://evil.example.com")),
        "its aud is not this server",
    ));
    cases.push((
        with("aud", json!(["https://evil.example.com"])),
        "its aud is not this server",
    ));
    cases.push((with("aud", Value::Null), "it has no aud"));
    cases.push((with("iss", json!("basic")), "its iss is not the client id"));
    cases.push((with("iss", Value::Null), "it has no iss"));
    cases.push((with("jti", Value::Null), "it has no jti"));
    cases.push((with("jti", json!("")), "jti must be 1 to"));
    cases.push((with("jti", json!("a\u{0}b")), "without control characters"));
    cases.push((with("jti", json!("j".repeat(257))), "jti must be 1 to 256"));
    for (c, want) in cases {
        let e = refused(&w, None, &jwt_form(&ok(c))).await;
        assert!(e.contains(want), "{want}: {e}");
    }
    // A sub naming another client: that client is checked, and its iss does not match.
    let e = refused(&w, None, &jwt_form(&ok(with("sub", json!("pk"))))).await;
    assert!(
        e.contains("client_secret_jwt") || e.contains("private_key_jwt"),
        "{e}"
    );
    // Skew tolerated; aud as an array with one accepted value.
    assert!(
        w.run(None, &jwt_form(&ok(with("exp", json!(NOW - 10)))))
            .await
            .is_ok()
    );
    assert!(
        w.run(None, &jwt_form(&ok(with("nbf", json!(NOW + 10)))))
            .await
            .is_ok()
    );
    assert!(
        w.run(
            None,
            &jwt_form(&ok(with("aud", json!(["x", "https://as.example.com"]))))
        )
        .await
        .is_ok()
    );
    // Clock moves: an assertion valid now expires later.
    let a = ok(claims("hs"));
    w.clock.advance(600);
    let e = refused(&w, None, &jwt_form(&a)).await;
    assert!(e.contains("it expired"), "{e}");
}

#[tokio::test]
async fn jti_is_single_use_until_exp() {
    let w = world();
    let a = sign_hs(Algorithm::HS256, SECRET.as_bytes(), &claims("hs"));
    assert!(w.run(None, &jwt_form(&a)).await.is_ok());
    let e = refused(&w, None, &jwt_form(&a)).await;
    assert!(e.contains("jti was already used"), "{e}");
    // The same jti from another client is that client's own.
    let mut c = claims("hs384");
    c["jti"] = claims("hs")["jti"].clone();
    let mut c2 = claims("hs");
    c2["jti"] = c["jti"].clone();
    assert!(
        w.run(
            None,
            &jwt_form(&sign_hs(Algorithm::HS384, SECRET.as_bytes(), &c))
        )
        .await
        .is_ok()
    );
    assert!(
        w.run(
            None,
            &jwt_form(&sign_hs(Algorithm::HS256, SECRET.as_bytes(), &c2))
        )
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn malformed_assertions_are_invalid_client() {
    let w = world();
    let h = |v: Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap());
    let body = h(claims("hs"));
    let cases: Vec<(String, &str)> = vec![
        ("not a jwt".into(), "three base64url parts"),
        ("a.b.c.d.e".into(), "three base64url parts"),
        (format!("!!.{body}.sig"), "header is not base64url"),
        (
            format!("{}.{body}.sig", h(json!([1]))),
            "header is not a JSON object",
        ),
        (
            format!("{}.{body}.sig", h(json!({"typ": "JWT"}))),
            "header has no alg",
        ),
        (
            format!("{}.{body}.", h(json!({"alg": "none"}))),
            "it has no signature",
        ),
        (
            format!("{}.{body}.x", h(json!({"alg": "none"}))),
            "alg none is never accepted",
        ),
        (
            format!("{}.{body}.x", h(json!({"alg": "NONE"}))),
            "alg none is never accepted",
        ),
        (
            format!("{}.{body}.x", h(json!({"alg": "HS256", "typ": "at+jwt"}))),
            "typ must be absent",
        ),
        (
            format!("{}.{body}.x", h(json!({"alg": "HS256", "kid": 5}))),
            "kid is not a string",
        ),
        (
            format!("{}.{body}.x", h(json!({"alg": "XX999"}))),
            "its alg is not accepted",
        ),
        (
            format!("{}.{}.x", h(json!({"alg": "HS256"})), h(json!("str"))),
            "payload is not a JSON object",
        ),
        (
            format!("{}.{body}.%%%", h(json!({"alg": "HS256"}))),
            "signed JWT",
        ),
        (
            format!("{}.{body}.AAAA", h(json!({"alg": "HS256"}))),
            "does not verify",
        ),
        (
            format!("{}.{}.AAAA", h(json!({"alg": "HS256"})), h(json!({}))),
            "no sub and the request has no client_id",
        ),
        ("x".repeat(9000), "longer than 8192 bytes"),
    ];
    for (a, want) in cases {
        let e = refused(&w, None, &jwt_form(&a)).await;
        assert!(e.contains(want), "{want}: {e}");
    }
    let e = refused(&w, None, &form(&[("client_assertion", "x")])).await;
    assert!(e.contains("without client_assertion_type"), "{e}");
    let e = refused(
        &w,
        None,
        &form(&[("client_assertion_type", JWT_BEARER_ASSERTION_TYPE)]),
    )
    .await;
    assert!(e.contains("without client_assertion"), "{e}");
    let e = refused(
        &w,
        None,
        &form(&[("client_assertion_type", "saml"), ("client_assertion", "x")]),
    )
    .await;
    assert!(
        e.contains("must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        "{e}"
    );
}

#[test]
fn keys_are_chosen_by_kid_use_kind_and_alg() {
    let k = key();
    let with = |extra: Value| {
        let mut j = jwk(&k, "k1");
        for (name, v) in extra.as_object().unwrap() {
            j[name] = v.clone();
        }
        serde_json::from_value::<jsonwebtoken::jwk::Jwk>(j).unwrap()
    };
    let fits = |j: jsonwebtoken::jwk::Jwk, kid: Option<&str>| {
        !assertion::candidates(&[j], Algorithm::EdDSA, kid).is_empty()
    };
    assert!(fits(with(json!({})), None));
    assert!(fits(
        with(json!({"alg": "EdDSA", "use": "sig"})),
        Some("k1")
    ));
    assert!(!fits(with(json!({})), Some("k2")));
    assert!(!fits(with(json!({"use": "enc"})), None));
    assert!(!fits(with(json!({"alg": "ES256"})), None));
    assert!(assertion::candidates(&[with(json!({}))], Algorithm::RS256, None).is_empty());
}
