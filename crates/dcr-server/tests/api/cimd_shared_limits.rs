//! The per-host limit on metadata-document fetches is one bucket for the fleet when the rate
//! limits are kept in Redis (`DCR_TEST_REDIS_URL`, as in `shared_limits`).

use reqwest::StatusCode;

use crate::cimd_harness::{CimdApp, claude_code, spawn_cimd_with};
use crate::cimd_origin::{Origin, Served};
use crate::shared_limits::{test_redis, unique_prefix};

const DOCUMENTS: usize = 6;

/// Two instances with `host_fetch_burst = 2` and `extra` (their `[rate_limit]`) resolve six
/// distinct documents on one host, alternately; the number of fetches the origin saw, after
/// checking that every refusal says the host was rate limited.
async fn fetches_through_two_instances(extra: &str) -> usize {
    let origin = Origin::start().await;
    let paths: Vec<String> = (0..DOCUMENTS).map(|i| format!("/fleet/{i}.json")).collect();
    for path in &paths {
        origin.serve(path, Served::json(&claude_code(&origin.url(path)), None));
    }
    let keys = "host_fetch_burst = 2\nhost_fetch_per_second = 0.001";
    let a = spawn_cimd_with(&origin, keys, extra, &[], true).await;
    let b = spawn_cimd_with(&origin, keys, extra, &[], true).await;
    let (mut resolved, mut limited) = (0, 0);
    for (i, path) in paths.iter().enumerate() {
        let app: &CimdApp = if i % 2 == 0 { &a } else { &b };
        let (status, body) = app.lookup(&origin.url(path)).await;
        match status {
            StatusCode::OK => resolved += 1,
            StatusCode::NOT_FOUND => {
                let description = body["error_description"].as_str().unwrap_or_default();
                assert!(description.contains("too many documents fetched"), "{body}");
                limited += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let fetched: usize = paths.iter().map(|p| origin.hits(p)).sum();
    assert_eq!(fetched, resolved, "every fetch resolved a client");
    assert_eq!(resolved + limited, DOCUMENTS);
    fetched
}

#[tokio::test]
async fn instances_on_one_redis_share_the_per_host_fetch_limit() {
    let Some((host_port, db)) = test_redis().await else {
        return;
    };
    let extra = format!(
        "[rate_limit]\nbackend = \"redis://{host_port}{db}\"\nredis_key_prefix = \"{}\"\n\
         redis_timeout_ms = 500\n",
        unique_prefix()
    );
    assert_eq!(fetches_through_two_instances(&extra).await, 2);
}

#[tokio::test]
async fn instances_without_redis_each_limit_their_own_fetches() {
    assert_eq!(fetches_through_two_instances("").await, 4);
}
