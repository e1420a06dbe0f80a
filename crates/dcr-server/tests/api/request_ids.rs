//! `x-request-id`: a client's id is kept (and logged, and echoed) only when it is short and of
//! a safe alphabet; anything else is replaced by a generated id, so that it cannot forge log lines.

use reqwest::header::HeaderValue;

use crate::helpers::{TestApp, spawn_app};

/// The `x-request-id` the server answers a request carrying `id` with.
async fn echoed(app: &TestApp, id: HeaderValue) -> String {
    let res = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", id)
        .send()
        .await
        .unwrap();
    res.headers()
        .get("x-request-id")
        .expect("an x-request-id in the response")
        .to_str()
        .unwrap()
        .to_owned()
}

fn is_generated(id: &str) -> bool {
    id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

#[tokio::test]
async fn a_client_request_id_is_kept_only_when_short_and_safe() {
    let app = spawn_app().await;
    let longest = "a".repeat(64);
    for safe in ["abc-123", "req_2026.12.07:0001", longest.as_str()] {
        assert_eq!(
            echoed(&app, HeaderValue::from_str(safe).unwrap()).await,
            safe
        );
    }
    let too_long = "a".repeat(65);
    for forged in [
        "1 method=DELETE path=/reg/VICTIM}: dcr::audit: client deleted client_id=VICTIM",
        "{\"action\":\"delete\"}",
        "a\tb",
        "x=1",
        too_long.as_str(),
    ] {
        let got = echoed(&app, HeaderValue::from_str(forged).unwrap()).await;
        assert_ne!(got, forged, "a forged request id was kept");
        assert!(is_generated(&got), "not a generated id: {got:?}");
    }
    // Bytes that are not even text (obs-text) are replaced as well.
    let got = echoed(&app, HeaderValue::from_bytes(b"id\xff\xfe").unwrap()).await;
    assert!(is_generated(&got), "not a generated id: {got:?}");
}
