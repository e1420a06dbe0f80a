//! Abuse limits, request limits, metrics and health, against the in-process server.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{assert_error, spawn_with, web_client};

const TIGHT_PER_IP: &str = "[rate_limit]\nregistration_per_ip = { burst = 3, per_second = 0.01 }\n";

#[tokio::test]
async fn a_burst_of_registrations_is_rate_limited_with_retry_after() {
    let app = spawn_with(TIGHT_PER_IP).await;
    for _ in 0..3 {
        app.register_ok(&web_client()).await;
    }
    let res = app.register(&web_client(), None).await;
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=100).contains(&retry_after), "{retry_after}");
    assert_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn rate_limits_are_on_by_default_and_a_real_client_never_meets_them() {
    // The default configuration (no [rate_limit] section written by the test) …
    let app = spawn_with("[rate_limit]\nenabled = true\n").await;
    // … lets a normal client through …
    for _ in 0..10 {
        app.register_ok(&web_client()).await;
    }
    // … and stops a flood.
    let mut limited = 0;
    for _ in 0..40 {
        if app.register(&web_client(), None).await.status() == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited > 0, "a flood of 50 registrations was never limited");
}

#[tokio::test]
async fn the_master_switch_turns_limits_off() {
    let app = spawn_with(&format!("{TIGHT_PER_IP}enabled = false\n")).await;
    for _ in 0..6 {
        app.register_ok(&web_client()).await;
    }
}

async fn register_from(app: &crate::helpers::TestApp, forwarded_for: &str) -> StatusCode {
    app.http
        .post(app.url("/reg"))
        .header("x-forwarded-for", forwarded_for)
        .json(&web_client())
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn spoofed_x_forwarded_for_is_ignored_without_trusted_proxies() {
    let app = spawn_with(TIGHT_PER_IP).await;
    for i in 0..3 {
        assert_eq!(
            register_from(&app, &format!("203.0.113.{i}")).await,
            StatusCode::CREATED
        );
    }
    // A new forged address each time does not buy a new bucket.
    assert_eq!(
        register_from(&app, "203.0.113.99").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn x_forwarded_for_is_honoured_from_trusted_proxies() {
    let app = spawn_with(&format!(
        "trusted_proxies = [\"127.0.0.0/8\"]\n{TIGHT_PER_IP}"
    ))
    .await;
    for i in 0..6 {
        assert_eq!(
            register_from(&app, &format!("203.0.113.{i}")).await,
            StatusCode::CREATED
        );
    }
    for _ in 0..3 {
        assert_eq!(
            register_from(&app, "198.51.100.7").await,
            StatusCode::CREATED
        );
    }
    assert_eq!(
        register_from(&app, "198.51.100.7").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn management_is_limited_per_client_id() {
    let app =
        spawn_with("[rate_limit]\nmanagement_per_client = { burst = 2, per_second = 0.01 }\n")
            .await;
    let a = app.register_ok(&web_client()).await;
    let b = app.register_ok(&web_client()).await;
    let rat = |v: &Value| v["registration_access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.read(&a, &rat(&a)).await.status(), StatusCode::OK);
    assert_eq!(app.read(&a, &rat(&a)).await.status(), StatusCode::OK);
    let res = app.read(&a, &rat(&a)).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another client has its own bucket.
    assert_eq!(app.read(&b, &rat(&b)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn initial_access_tokens_have_their_own_limit() {
    let app = spawn_with(
        "[registration]\ninitial_access_token = \"0123456789abcdef-static\"\n\
         [rate_limit]\nregistration_per_token = { burst = 2, per_second = 0.01 }\n",
    )
    .await;
    let token = Some("0123456789abcdef-static");
    for _ in 0..2 {
        assert_eq!(
            app.register(&web_client(), token).await.status(),
            StatusCode::CREATED
        );
    }
    let res = app.register(&web_client(), token).await;
    assert_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another token (here: a wrong one) is not limited by that bucket.
    let res = app.register(&web_client(), Some("another-token")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// The value of a Prometheus sample (0 when absent).
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == name_and_labels).then(|| v.parse::<f64>().ok())?
        })
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_counters_move() {
    let app = spawn_with(TIGHT_PER_IP).await;
    let metrics = || async {
        let res = app.http.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        res.text().await.unwrap()
    };
    // Counters are process-wide (other tests run in this process): compare deltas.
    let before = metrics().await;
    let created = "dcr_registrations_total{operation=\"create\"}";
    let limited = "dcr_rate_limited_total{limit=\"registration_per_ip\"}";
    let rejected = "dcr_rejections_total{error=\"invalid_redirect_uri\"}";
    for _ in 0..3 {
        app.register_ok(&web_client()).await;
    }
    let _ = app.register(&web_client(), None).await;
    let after = metrics().await;
    assert!(sample(&after, created) >= sample(&before, created) + 3.0);
    assert!(sample(&after, limited) >= sample(&before, limited) + 1.0);
    let app2 = spawn_with("").await;
    let res = app2
        .register(&json!({"redirect_uris": ["http://x.example/#frag"]}), None)
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let after2 = metrics().await;
    assert!(
        sample(&after2, rejected) >= sample(&before, rejected) + 1.0,
        "{after2}"
    );
    assert!(
        after2.contains("dcr_http_requests_total{method=\"POST\",route=\"/reg\",status=\"201\"}")
    );
    assert!(
        after2.contains("dcr_http_request_duration_seconds_bucket{method=\"POST\",route=\"/reg\"")
    );
}

#[tokio::test]
async fn health_endpoints_answer() {
    let app = spawn_with("").await;
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    let res = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let app = spawn_with("").await;
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert!(!res.headers()["x-request-id"].is_empty());
    let res = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-42");
}

/// Reads what the server sends until it closes the connection (or `limit` passes).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut buf = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let app = spawn_with("[limits]\nheader_read_timeout_seconds = 1\n").await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"POST /reg HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Never finishes its headers: the server must hang up by itself.
    let closed = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "the connection stayed open");
}

#[tokio::test]
async fn slow_bodies_get_408() {
    let app = spawn_with("[limits]\nrequest_timeout_seconds = 1\n").await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(
            b"POST /reg HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a",
        )
        .await
        .unwrap();
    let text = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered in time");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let app = spawn_with("").await;
    let res = app
        .http
        .get(app.url("/healthz"))
        .header("x-big", "a".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

#[tokio::test]
async fn graceful_shutdown_is_bounded_by_the_grace_period() {
    let app =
        spawn_with("[limits]\nshutdown_grace_seconds = 1\nrequest_timeout_seconds = 60\n").await;
    // A request that never finishes its body keeps a connection busy.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(
            b"POST /reg HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("shutdown finished");
    assert!(started.elapsed() < Duration::from_secs(5));
}
