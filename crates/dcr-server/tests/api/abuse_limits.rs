//! Hostile-client regressions (issue 12): bounded metric labels, management limits that
//! strangers cannot spend, and client addresses keyed by network prefix.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{assert_error, spawn_with, web_client};

/// The label values of `label` on the samples of `metric` in a Prometheus text.
fn label_values(text: &str, metric: &str, label: &str) -> Vec<String> {
    let prefix = format!("{metric}{{");
    let needle = format!("{label}=\"");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| {
            let rest = &l[l.find(&needle)? + needle.len()..];
            Some(rest[..rest.find('"')?].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn made_up_methods_and_paths_do_not_grow_metrics() {
    let app = spawn_with("").await;
    let registered = app.register_ok(&web_client()).await;
    let client_uri = app.local(registered["registration_client_uri"].as_str().unwrap());
    for i in 0..300 {
        let method = Method::from_bytes(format!("M{i:07}").as_bytes()).unwrap();
        let res = app
            .http
            .request(method.clone(), app.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{}", res.status());
        let res = app
            .http
            .request(method, format!("{client_uri}x{i}"))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{}", res.status());
        let res = app
            .http
            .get(app.url(&format!("/nowhere/{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The recorder is process-wide (other tests add their series too), so the bound is on
    // the label sets: a closed set of methods, matched routes only.
    let known: BTreeSet<&str> = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "OTHER",
    ]
    .into();
    for metric in [
        "dcr_http_requests_total",
        "dcr_http_request_duration_seconds_count",
    ] {
        let methods: BTreeSet<String> = label_values(&text, metric, "method").into_iter().collect();
        assert!(!methods.is_empty(), "no {metric} in /metrics");
        let unknown: Vec<&String> = methods
            .iter()
            .filter(|m| !known.contains(m.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "{metric} has {} method labels outside the closed set, e.g. {:?}",
            unknown.len(),
            unknown.iter().take(3).collect::<Vec<_>>()
        );
        let routes: BTreeSet<String> = label_values(&text, metric, "route").into_iter().collect();
        assert!(
            routes.iter().all(|r| !r.starts_with("/nowhere")),
            "unmatched paths became routes: {routes:?}"
        );
    }
    let series = label_values(&text, "dcr_http_requests_total", "method").len();
    assert!(
        series < 200,
        "{series} request series after 900 odd requests"
    );
    assert!(text.contains("method=\"OTHER\",route=\"/healthz\",status=\"405\""));
}

const OWNER_AND_STRANGERS: &str = "[rate_limit]\n\
     management_per_client = { burst = 5, per_second = 0.01 }\n\
     management_invalid_token_per_ip = { burst = 3, per_second = 0.01 }\n";

#[tokio::test]
async fn junk_tokens_cannot_lock_the_owner_out_of_management() {
    let app = spawn_with(OWNER_AND_STRANGERS).await;
    let registered = app.register_ok(&web_client()).await;
    let token = registered["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // 35 requests with junk tokens for the owner's (public) client id: the first few are
    // refused as invalid tokens, then the sender's address is rate limited.
    let mut statuses = Vec::new();
    for _ in 0..35 {
        statuses.push(app.read(&registered, "junk").await.status());
    }
    // The owner (even from the same address) keeps its own budget: read, update, delete.
    assert_eq!(app.read(&registered, &token).await.status(), StatusCode::OK);
    assert_eq!(
        statuses[..3],
        [StatusCode::UNAUTHORIZED; 3],
        "first junk attempts"
    );
    assert!(
        statuses[3..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "junk attempts beyond the limit: {statuses:?}"
    );
    let res = app.read(&registered, "junk").await;
    assert!(res.headers().contains_key("retry-after"));
    assert_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let mut body = web_client();
    body["client_id"] = registered["client_id"].clone();
    let res = app.update(&registered, &token, &body).await;
    assert_eq!(res.status(), StatusCode::OK);
    let updated: Value = res.json().await.unwrap();
    let token = updated["registration_access_token"].as_str().unwrap();
    assert_eq!(app.read(&updated, token).await.status(), StatusCode::OK);
    assert_eq!(
        app.delete(&updated, token).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn the_owner_still_has_a_per_client_budget() {
    let app = spawn_with(OWNER_AND_STRANGERS).await;
    let registered = app.register_ok(&web_client()).await;
    let token = registered["registration_access_token"].as_str().unwrap();
    for _ in 0..5 {
        assert_eq!(app.read(&registered, token).await.status(), StatusCode::OK);
    }
    let res = app.read(&registered, token).await;
    assert_error(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

/// POST /reg as `client` behind a trusted proxy on 127.0.0.1.
async fn register_as(app: &crate::helpers::TestApp, client: &str) -> StatusCode {
    app.http
        .post(app.url("/reg"))
        .header("x-forwarded-for", client)
        .json(&web_client())
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn ipv6_clients_share_a_bucket_per_64() {
    let app = spawn_with(
        "trusted_proxies = [\"127.0.0.0/8\"]\n\
         [rate_limit]\nregistration_per_ip = { burst = 2, per_second = 0.01 }\n",
    )
    .await;
    assert_eq!(
        register_as(&app, "2001:db8:1:2::1").await,
        StatusCode::CREATED
    );
    assert_eq!(
        register_as(&app, "2001:db8:1:2:ffff::9").await,
        StatusCode::CREATED
    );
    // A third address of the same /64 is the same client.
    assert_eq!(
        register_as(&app, "2001:db8:1:2:abcd:1:2:3").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The next /64 is another.
    assert_eq!(
        register_as(&app, "2001:db8:1:3::1").await,
        StatusCode::CREATED
    );
    // IPv4 clients are still keyed per address by default.
    assert_eq!(register_as(&app, "192.0.2.1").await, StatusCode::CREATED);
    assert_eq!(register_as(&app, "192.0.2.1").await, StatusCode::CREATED);
    assert_eq!(register_as(&app, "192.0.2.2").await, StatusCode::CREATED);
}

#[tokio::test]
async fn address_prefixes_are_configurable() {
    let app = spawn_with(
        "trusted_proxies = [\"127.0.0.0/8\"]\n\
         [rate_limit]\nregistration_per_ip = { burst = 1, per_second = 0.01 }\n\
         ipv4_prefix = 24\nipv6_prefix = 128\n",
    )
    .await;
    assert_eq!(register_as(&app, "192.0.2.1").await, StatusCode::CREATED);
    assert_eq!(
        register_as(&app, "192.0.2.200").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(register_as(&app, "192.0.3.1").await, StatusCode::CREATED);
    assert_eq!(register_as(&app, "2001:db8::1").await, StatusCode::CREATED);
    assert_eq!(register_as(&app, "2001:db8::2").await, StatusCode::CREATED);
}
