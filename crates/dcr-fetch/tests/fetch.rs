//! Fetcher tests. Only 127.0.0.1 / ::1 ever receive traffic.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dcr_core::metadata::{ClientMetadata, DocumentFetcher, ServerMetadata, verify_remote};
use dcr_fetch::{Fetcher, FetcherConfig, check_url, is_forbidden};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

/// A tiny HTTP/1.1 responder on 127.0.0.1: every request gets `status` and `body`.
/// Returns its address and a counter of accepted connections.
async fn serve(status: &'static str, body: String) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            seen.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (addr, count)
}

fn fetcher(loopback: bool) -> Fetcher {
    Fetcher::new(FetcherConfig {
        allow_loopback_for_tests: loopback,
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(3),
        max_body_bytes: 4096,
    })
    .unwrap()
}

fn rsa_n() -> String {
    use base64::Engine;
    let mut n = vec![0xc5u8; 256];
    n[255] = 0x01;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n)
}

#[tokio::test]
async fn serves_sector_document_and_jwks_with_loopback_switch_on() {
    let sector = json!(["https://rp.example.com/cb", "https://other.example.com/cb"]).to_string();
    let (addr, _) = serve("200 OK", sector).await;
    let f = fetcher(true);
    let url = Url::parse(&format!("http://{addr}/sector")).unwrap();
    let doc = f.fetch_json(&url, "sector_identifier_uri").await.unwrap();
    assert!(doc.is_array());

    // The same document through verify_remote.
    let md = ClientMetadata::from_trusted(
        json!({"client_id": "c1", "response_types": ["code"], "redirect_uris": ["https://rp.example.com/cb"], "sector_identifier_uri": url.as_str()})
            .as_object().cloned().unwrap(),
    );
    verify_remote(&md, Some(&f), &ServerMetadata::default())
        .await
        .unwrap();
    let md_missing = ClientMetadata::from_trusted(
        json!({"client_id": "c1", "response_types": ["code"], "redirect_uris": ["https://evil.example.com/cb"], "sector_identifier_uri": url.as_str()})
            .as_object().cloned().unwrap(),
    );
    let e = verify_remote(&md_missing, Some(&f), &ServerMetadata::default())
        .await
        .unwrap_err();
    assert!(
        e.description.contains("all registered redirect_uris"),
        "{}",
        e.description
    );

    let jwks =
        json!({"keys": [{"kty": "RSA", "n": rsa_n(), "e": "AQAB", "kid": "k1", "use": "sig"}]})
            .to_string();
    let (jaddr, _) = serve("200 OK", jwks).await;
    let jurl = format!("http://{jaddr}/jwks");
    // Fetched at registration only when the operator asks for it.
    let verifying = ServerMetadata {
        verify_jwks_uri_at_registration: true,
        ..ServerMetadata::default()
    };
    let md = ClientMetadata::from_trusted(
        json!({"client_id": "c1", "token_endpoint_auth_method": "private_key_jwt", "token_endpoint_auth_signing_alg": "RS256", "jwks_uri": jurl})
            .as_object().cloned().unwrap(),
    );
    verify_remote(&md, Some(&f), &verifying).await.unwrap();
    // ES256 needs an EC P-256 key, which the set lacks.
    let md = ClientMetadata::from_trusted(
        json!({"client_id": "c1", "token_endpoint_auth_method": "private_key_jwt", "token_endpoint_auth_signing_alg": "ES256", "jwks_uri": jurl})
            .as_object().cloned().unwrap(),
    );
    let e = verify_remote(&md, Some(&f), &verifying).await.unwrap_err();
    assert!(e.description.contains("ES256"), "{}", e.description);
    // By default the set is not fetched: its form and host only are checked.
    verify_remote(&md, Some(&f), &ServerMetadata::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn rejected_documents() {
    let f = fetcher(true);
    let server = ServerMetadata {
        verify_jwks_uri_at_registration: true,
        ..ServerMetadata::default()
    };
    let cases: Vec<(&'static str, String, &str)> = vec![
        (
            "200 OK",
            json!({"not": "an array"}).to_string(),
            "single JSON array",
        ),
        (
            "200 OK",
            json!([1, 2]).to_string(),
            "array of redirect_uri strings",
        ),
        (
            "200 OK",
            "not json".to_string(),
            "did not return valid JSON",
        ),
        ("500 Internal Server Error", "[]".to_string(), "HTTP 500"),
        ("302 Found", "[]".to_string(), "redirects are not followed"),
        (
            "200 OK",
            "[\"".to_string() + &"a".repeat(5000) + "\"]",
            "larger than 4096 bytes",
        ),
    ];
    for (status, body, expected) in cases {
        let (addr, _) = serve(status, body).await;
        let md = ClientMetadata::from_trusted(
            json!({"client_id": "c1", "response_types": ["code"], "redirect_uris": ["https://rp.example.com/cb"], "sector_identifier_uri": format!("http://{addr}/s")})
                .as_object().cloned().unwrap(),
        );
        let e = verify_remote(&md, Some(&f), &server).await.unwrap_err();
        assert!(
            e.description.contains(expected),
            "{status}: {}",
            e.description
        );
    }
    // A JWK Set with a private key is refused by the same validator as inline jwks.
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "y": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "d": "AAAA"}]}).to_string();
    let (addr, _) = serve("200 OK", jwks).await;
    let md = ClientMetadata::from_trusted(
        json!({"client_id": "c1", "jwks_uri": format!("http://{addr}/jwks")})
            .as_object()
            .cloned()
            .unwrap(),
    );
    let e = verify_remote(&md, Some(&f), &server).await.unwrap_err();
    assert!(
        e.description
            .contains("must not contain private key member \"d\""),
        "{}",
        e.description
    );
    // Without a fetcher, members that need one are refused.
    let e = verify_remote(&md, None, &server).await.unwrap_err();
    assert!(
        e.description.contains("not configured to fetch"),
        "{}",
        e.description
    );
}

#[tokio::test]
async fn refuses_non_public_targets_before_connecting() {
    let (addr, count) = serve("200 OK", "[]".into()).await;
    let port = addr.port();
    let f = fetcher(false);
    for target in [
        format!("https://127.0.0.1:{port}/x"),
        format!("https://[::1]:{port}/x"),
        format!("https://[::ffff:127.0.0.1]:{port}/x"),
        "https://169.254.169.254/latest/meta-data".to_string(),
        "https://10.0.0.1/x".to_string(),
        format!("https://localhost:{port}/x"),
        format!("http://127.0.0.1:{port}/x"),
    ] {
        let url = Url::parse(&target).unwrap();
        let e = f.fetch_json(&url, "jwks_uri").await.unwrap_err();
        assert!(
            e.0.contains("not a public internet address") || e.0.contains("must use https"),
            "{target}: {}",
            e.0
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "a refused target was connected to"
    );
}

#[test]
fn deny_list() {
    for ip in [
        "127.0.0.1",
        "127.1.2.3",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "100.127.255.255",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "240.0.0.1",
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.1",
        "198.18.0.1",
        "192.0.0.8",
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a00:1",
        "2002:7f00:1::",
        "2001::1",
        "2001:db8::1",
    ] {
        let ip: IpAddr = ip.parse().unwrap();
        assert!(is_forbidden(ip), "{ip} should be refused");
    }
    for ip in [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
    ] {
        let ip: IpAddr = ip.parse().unwrap();
        assert!(!is_forbidden(ip), "{ip} should be allowed");
    }
}

#[test]
fn url_checks() {
    let u = |s: &str| Url::parse(s).unwrap();
    assert!(check_url(&u("https://example.com/jwks"), "jwks_uri", false).is_ok());
    assert!(check_url(&u("http://example.com/jwks"), "jwks_uri", false).is_err());
    assert!(check_url(&u("https://user:pw@example.com/jwks"), "jwks_uri", false).is_err());
    assert!(check_url(&u("https://127.0.0.1/jwks"), "jwks_uri", true).is_ok());
    assert!(check_url(&u("https://10.0.0.1/jwks"), "jwks_uri", true).is_err());
    assert!(check_url(&u("https://[::ffff:a9fe:a9fe]/"), "jwks_uri", false).is_err());
}
