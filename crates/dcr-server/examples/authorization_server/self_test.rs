//! `--self-test`: the example server on `127.0.0.1:0`, exercised by the `oauth2` crate (a
//! client nobody here wrote) and by hand-signed `private_key_jwt` assertions, for a client
//! registered over RFC 7591, a configured client and a metadata-document client.

use std::collections::HashMap;

use anyhow::{Context, ensure};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dcr_server::config::Config;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, ClientId, ClientSecret, HttpRequest, HttpResponse, RequestTokenError, TokenResponse,
    TokenUrl,
};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::origin::Origin;

const CONFIGURED_SECRET: &str = "configured-client-secret-0123456789abcdef";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The `oauth2` crate's async HTTP client, over reqwest (no redirects followed).
async fn http_client(request: HttpRequest) -> Result<HttpResponse, reqwest::Error> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut out = HttpResponse::new(Vec::new());
    *out.status_mut() = response.status();
    *out.headers_mut() = response.headers().clone();
    *out.body_mut() = response.bytes().await?.to_vec();
    Ok(out)
}

/// An Ed25519 key: PKCS#8 for signing, its public JWK.
struct Key {
    pkcs8: Vec<u8>,
    jwk: Value,
}

fn key(kid: &str) -> anyhow::Result<Key> {
    let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("generating a key"))?;
    let pair =
        Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| anyhow::anyhow!("reading the key"))?;
    let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    Ok(Key {
        pkcs8: doc.as_ref().to_vec(),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig", "x": x}),
    })
}

/// A `private_key_jwt` assertion (RFC 7523 §3) of `client_id` for `aud`.
fn assertion(key: &Key, client_id: &str, aud: &str) -> anyhow::Result<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = key.jwk["kid"].as_str().map(str::to_owned);
    let claims = json!({
        "iss": client_id, "sub": client_id, "aud": aud,
        "iat": now, "exp": now + 60,
        "jti": dcr_core::token::generate_token().expose(),
    });
    Ok(jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_ed_der(&key.pkcs8),
    )?)
}

/// The checks made so far.
struct Run {
    issuer: String,
    http: reqwest::Client,
    passed: usize,
}

impl Run {
    fn check(&mut self, ok: bool, what: &str) -> anyhow::Result<()> {
        ensure!(ok, "self-test failed: {what}");
        self.passed += 1;
        println!("ok {} - {what}", self.passed);
        Ok(())
    }

    fn token_url(&self) -> String {
        format!("{}/token", self.issuer)
    }

    async fn register(&self, metadata: Value) -> anyhow::Result<Value> {
        let res = self
            .http
            .post(format!("{}/reg", self.issuer))
            .json(&metadata)
            .send()
            .await?;
        ensure!(res.status() == 201, "registration: {}", res.status());
        Ok(res.json().await?)
    }

    /// A token request made by hand: status, `WWW-Authenticate`, JSON body.
    async fn token_raw(&self, form: &[(&str, &str)]) -> anyhow::Result<(u16, bool, Value)> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let res = self
            .http
            .post(self.token_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await?;
        let status = res.status().as_u16();
        let challenge = res
            .headers()
            .get("www-authenticate")
            .is_some_and(|v| v.as_bytes().starts_with(b"Basic"));
        Ok((status, challenge, res.json().await?))
    }

    /// `client_credentials` with the `oauth2` crate: `Ok(access token)` or the error code.
    async fn oauth2_grant(
        &self,
        id: &str,
        secret: &str,
        auth: AuthType,
    ) -> anyhow::Result<Result<String, String>> {
        let client = BasicClient::new(ClientId::new(id.to_owned()))
            .set_client_secret(ClientSecret::new(secret.to_owned()))
            .set_token_uri(TokenUrl::new(self.token_url())?)
            .set_auth_type(auth);
        match client
            .exchange_client_credentials()
            .request_async(&http_client)
            .await
        {
            Ok(token) => Ok(Ok(token.access_token().secret().clone())),
            Err(RequestTokenError::ServerResponse(e)) => Ok(Err(match e.error() {
                BasicErrorResponseType::InvalidClient => "invalid_client".to_owned(),
                other => other.to_string(),
            })),
            Err(e) => anyhow::bail!("oauth2 request failed: {e}"),
        }
    }

    /// Both the right secret (a token) and a wrong one (`invalid_client`) through `oauth2`.
    async fn secret_client(
        &mut self,
        id: &str,
        secret: &str,
        auth: AuthType,
    ) -> anyhow::Result<()> {
        let name = format!("{auth:?}");
        let ok = self.oauth2_grant(id, secret, auth.clone()).await?;
        self.check(
            ok.as_ref().is_ok_and(|t| t.len() >= 32),
            &format!("oauth2 {name}: {id} gets an access token"),
        )?;
        let wrong = self.oauth2_grant(id, "not-the-secret", auth).await?;
        self.check(
            wrong.as_ref().err().map(String::as_str) == Some("invalid_client"),
            &format!("oauth2 {name}: a wrong secret is invalid_client"),
        )
    }
}

/// Starts the server and runs every check; fails on the first that does not hold.
pub async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let doc_key = key("doc-key")?;
    let doc_jwks = json!({"keys": [doc_key.jwk.clone()]});
    let origin = Origin::start(|base| {
        let client_id = format!("{base}/client.json");
        HashMap::from([
            (
                "/client.json".to_owned(),
                json!({
                    "client_id": client_id,
                    "client_name": "A metadata-document client",
                    "redirect_uris": ["https://doc-client.example/cb"],
                    "grant_types": ["client_credentials"],
                    "response_types": [],
                    "token_endpoint_auth_method": "private_key_jwt",
                    "jwks_uri": format!("{base}/jwks.json"),
                }),
            ),
            ("/jwks.json".to_owned(), doc_jwks),
        ])
    })
    .await?;
    std::fs::write(dir.path().join("ca.pem"), &origin.ca_pem)?;
    std::fs::write(dir.path().join("configured.secret"), CONFIGURED_SECRET)?;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let toml = format!(
        "issuer = \"http://127.0.0.1:{port}\"\nallow_insecure_issuer = true\n\
         listen = \"127.0.0.1:{port}\"\n\
         [storage]\nurl = \"memory:\"\n[rate_limit]\nenabled = false\n\
         [fetch]\nallow_loopback_for_tests = true\nextra_root_certificates = [\"ca.pem\"]\n\
         [cimd]\nenabled = true\n\
         [[clients]]\nclient_id = \"configured-reporting\"\nclient_secret_file = \"configured.secret\"\n\
         [clients.metadata]\nredirect_uris = [\"https://reports.example/cb\"]\n\
         grant_types = [\"client_credentials\"]\nresponse_types = []\n\
         token_endpoint_auth_method = \"client_secret_basic\"\n"
    );
    let config = Config::from_toml(&toml, dir.path()).context("self-test configuration")?;
    let running = crate::start(config, listener).await?;
    let mut t = Run {
        issuer: running.issuer.clone(),
        http: reqwest::Client::new(),
        passed: 0,
    };

    let discovery: Value = t
        .http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            t.issuer
        ))
        .send()
        .await?
        .json()
        .await?;
    t.check(
        discovery["token_endpoint"] == json!(t.token_url())
            && discovery["token_endpoint_auth_methods_supported"]
                .as_array()
                .is_some_and(|m| m.contains(&json!("private_key_jwt"))),
        "discovery names the token endpoint and its auth methods",
    )?;

    let client_credentials = |method: &str| {
        json!({
            "redirect_uris": ["https://service.example/cb"],
            "grant_types": ["client_credentials"],
            "response_types": [],
            "token_endpoint_auth_method": method,
        })
    };
    for (method, auth) in [
        ("client_secret_basic", AuthType::BasicAuth),
        ("client_secret_post", AuthType::RequestBody),
    ] {
        let reg = t.register(client_credentials(method)).await?;
        let id = reg["client_id"].as_str().context("client_id")?;
        let secret = reg["client_secret"].as_str().context("client_secret")?;
        t.secret_client(id, secret, auth).await?;
    }
    let basic = t
        .register(client_credentials("client_secret_basic"))
        .await?;
    let id = basic["client_id"].as_str().context("client_id")?;
    let (status, challenge, body) = t
        .token_raw(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", "wrong"),
        ])
        .await?;
    t.check(
        status == 401 && challenge && body["error"] == "invalid_client",
        "a refusal is 401 invalid_client with WWW-Authenticate: Basic",
    )?;

    t.secret_client(
        "configured-reporting",
        CONFIGURED_SECRET,
        AuthType::BasicAuth,
    )
    .await?;

    let reg_key = key("reg-key")?;
    let mut jwt_client = client_credentials("private_key_jwt");
    jwt_client["jwks"] = json!({"keys": [reg_key.jwk.clone()]});
    let reg = t.register(jwt_client).await?;
    let id = reg["client_id"].as_str().context("client_id")?.to_owned();
    let signed = assertion(&reg_key, &id, &t.token_url())?;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", signed.as_str()),
    ];
    let (status, _, body) = t.token_raw(&form).await?;
    t.check(
        status == 200 && body["token_type"] == "Bearer",
        "registered private_key_jwt client (jwks) gets an access token",
    )?;
    let (status, _, body) = t.token_raw(&form).await?;
    t.check(
        status == 401 && body["error"] == "invalid_client",
        "a replayed assertion is invalid_client",
    )?;

    let doc_id = format!("{}/client.json", origin.base);
    let signed = assertion(&doc_key, &doc_id, &t.issuer)?;
    let (status, _, body) = t
        .token_raw(&[
            ("grant_type", "client_credentials"),
            ("client_id", doc_id.as_str()),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", signed.as_str()),
        ])
        .await?;
    t.check(
        status == 200 && body["token_type"] == "Bearer",
        "metadata-document client (private_key_jwt, jwks_uri over HTTPS) gets an access token",
    )?;
    let other = key("doc-key")?;
    let forged = assertion(&other, &doc_id, &t.issuer)?;
    let (status, _, body) = t
        .token_raw(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", forged.as_str()),
        ])
        .await?;
    t.check(
        status == 401 && body["error"] == "invalid_client",
        "an assertion signed by another key is invalid_client",
    )?;

    let public = t.register(client_credentials("none")).await?;
    let id = public["client_id"].as_str().context("client_id")?;
    let (status, _, body) = t
        .token_raw(&[("grant_type", "client_credentials"), ("client_id", id)])
        .await?;
    t.check(
        status == 400 && body["error"] == "unauthorized_client",
        "a public client may not use client_credentials (unauthorized_client)",
    )?;

    println!("self-test passed: {} checks", t.passed);
    drop(running);
    drop(origin);
    Ok(())
}
