//! Rate limits shared through Redis (`[rate_limit] backend = "redis://…"`): instances hold one
//! limit between them, and a Redis that stalls or fails mid-run is met by each
//! `on_backend_error` mode without a 5xx. The tests use the Redis named by
//! `DCR_TEST_REDIS_URL` (each with a key prefix of its own; keys expire by themselves), and a
//! TCP proxy in front of it that they stall and cut; without the variable they say so on
//! stderr and check nothing, with it and no Redis answering they fail (the last test needs no
//! Redis: it points at an address where none listens).

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::{TestApp, spawn_with, web_client};

const URL_VAR: &str = "DCR_TEST_REDIS_URL";

/// The Redis of `DCR_TEST_REDIS_URL` as (`host:port`, database path such as `/0`); `None`
/// (after saying so once) when the variable is unset. Panics when Redis does not answer.
pub(crate) async fn test_redis() -> Option<(String, String)> {
    let url = match std::env::var(URL_VAR) {
        Ok(u) if !u.trim().is_empty() => u,
        _ => {
            static SAID: Once = Once::new();
            SAID.call_once(|| {
                let message = format!(
                    "\n*** dcr-server shared-limit tests: Redis tests NOT RUN ({URL_VAR} is unset; \
                     they pass without checking anything).\n*** To run them: \
                     {URL_VAR}=redis://127.0.0.1:6379 cargo test -p dcr-server --test api shared_limits\n\n"
                );
                let _ = std::io::stderr().lock().write_all(message.as_bytes());
            });
            return None;
        }
    };
    let rest = url
        .strip_prefix("redis://")
        .unwrap_or_else(|| panic!("{URL_VAR} must be a redis:// URL, not {url}"));
    let (host_port, db) = match rest.find('/') {
        Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
        None => (rest.to_owned(), "/0".to_owned()),
    };
    let pong = tokio::time::timeout(Duration::from_secs(3), async {
        let mut s = TcpStream::connect(&host_port).await?;
        s.write_all(b"PING\r\n").await?;
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).await?;
        std::io::Result::Ok(buf)
    })
    .await;
    match pong {
        Ok(Ok(buf)) if &buf == b"+PONG\r\n" => Some((host_port, db)),
        other => {
            panic!("{URL_VAR} is set but Redis at {host_port} does not answer PING: {other:?}")
        }
    }
}

/// A key prefix no other test (or run) uses.
pub(crate) fn unique_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "dcr:test:{}:{nanos}:{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The `[rate_limit]` section of a server on `redis_url`, with only the limits of `limits`
/// tight enough to matter. The check timeout is generous (500 ms instead of 50) so that a
/// loaded test machine never turns a Redis that answers into a fallback.
fn shared_config(redis_url: &str, prefix: &str, limits: &str) -> String {
    format!(
        "trusted_proxies = [\"127.0.0.0/8\"]\n[rate_limit]\nbackend = \"{redis_url}\"\n\
         redis_key_prefix = \"{prefix}\"\nredis_timeout_ms = 500\n{limits}\n"
    )
}

/// POST /reg as `client` (behind the trusted proxy 127.0.0.1).
async fn register_as(app: &TestApp, client: &str) -> StatusCode {
    app.http
        .post(app.url("/reg"))
        .timeout(Duration::from_secs(5))
        .header("x-forwarded-for", client)
        .json(&web_client())
        .send()
        .await
        .expect("the server answers while Redis misbehaves")
        .status()
}

async fn statuses(app: &TestApp, client: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(register_as(app, client).await.as_u16());
    }
    out
}

#[tokio::test]
async fn two_instances_hold_one_limit() {
    let Some((redis, db)) = test_redis().await else {
        return;
    };
    let prefix = unique_prefix();
    // One store for both (as behind a load balancer), so that a client is known to both.
    let shared_dir = tempfile::tempdir().unwrap();
    let db_path = shared_dir.path().join("dcr.db");
    let config = format!(
        "{}[storage]\nurl = \"sqlite://{}\"\n",
        shared_config(
            &format!("redis://{redis}{db}"),
            &prefix,
            "registration_per_ip = { burst = 6, per_second = 0.05 }\n\
             management_per_client = { burst = 4, per_second = 0.05 }\n",
        ),
        db_path.display()
    );
    let a = spawn_with(&config).await;
    let b = spawn_with(&config).await;
    // A burst of 12 from one client, split across both instances: the single-instance 6 pass.
    let mut created = Vec::new();
    let mut limited = 0;
    for i in 0..12 {
        let app = if i % 2 == 0 { &a } else { &b };
        let res = app
            .http
            .post(app.url("/reg"))
            .header("x-forwarded-for", "192.0.2.10")
            .json(&web_client())
            .send()
            .await
            .unwrap();
        match res.status() {
            StatusCode::CREATED => created.push(res.json::<Value>().await.unwrap()),
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((created.len(), limited), (6, 6));
    // Management of one client: its budget of 4 is shared too.
    let client = &created[0];
    let token = client["registration_access_token"].as_str().unwrap();
    let mut reads = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { &a } else { &b };
        reads.push(app.read(client, token).await.status().as_u16());
    }
    assert_eq!(reads, [200, 200, 200, 200, 429, 429]);
    for app in [&a, &b] {
        let ready: Value = app
            .http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["status"], "ok");
        assert_eq!(ready["rate_limit"]["backend"], "redis");
        assert_eq!(ready["rate_limit"]["state"], "up");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    /// Connections stay open but nothing is passed on (a stalled Redis).
    Stall,
    /// Connections are cut and new ones closed at once (a failed Redis).
    Down,
}

/// A TCP proxy on 127.0.0.1:0 in front of Redis, that the test stalls and cuts.
struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, watcher) = watch::channel(Mode::Forward);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *watcher.borrow() == Mode::Down {
                    continue; // dropped: closed at once
                }
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, watcher.clone()));
                tokio::spawn(pipe(sr, cw, watcher.clone()));
            }
        });
        Self { addr, mode }
    }

    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

/// Copies `from` to `to` while forwarding; holds the bytes while stalled; ends when down.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = mode.wait_for(|m| *m == Mode::Down) => return,
        };
        match mode.wait_for(|m| *m != Mode::Stall).await {
            Ok(m) if *m == Mode::Forward => {}
            _ => return,
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The `/readyz` of `app`: (status, body).
async fn readyz(app: &TestApp) -> (u16, Value) {
    let res = app
        .http
        .get(app.url("/readyz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Redis up, stalled, down, back: what each phase answers in `mode`.
async fn redis_fails_mid_run(mode: &str, stalled: [u16; 4], down: [u16; 2], ready_when_down: u16) {
    let Some((redis, db)) = test_redis().await else {
        return;
    };
    let proxy = Proxy::start(redis).await;
    let config = shared_config(
        &format!("redis://{}{db}", proxy.addr),
        &unique_prefix(),
        &format!(
            "on_backend_error = \"{mode}\"\nregistration_per_ip = {{ burst = 2, per_second = 0.02 }}\n"
        ),
    );
    let app = spawn_with(&config).await;

    // Up: the shared bucket limits.
    assert_eq!(
        statuses(&app, "192.0.2.1", 3).await,
        [201, 201, 429],
        "{mode}: up"
    );
    assert_eq!(readyz(&app).await.1["rate_limit"]["state"], "up");

    // Stalled: every check gives up after the timeout and the mode decides.
    proxy.set(Mode::Stall);
    assert_eq!(
        statuses(&app, "192.0.2.2", 4).await,
        stalled,
        "{mode}: stalled"
    );
    let (status, body) = readyz(&app).await;
    assert_eq!(body["rate_limit"]["state"], "down", "{mode}: {body}");
    assert_eq!(body["rate_limit"]["on_backend_error"], mode);
    assert_eq!(
        status, ready_when_down,
        "{mode}: readyz while stalled: {body}"
    );

    // Down: connections cut and refused.
    proxy.set(Mode::Down);
    assert_eq!(statuses(&app, "192.0.2.2", 2).await, down, "{mode}: down");
    let (status, body) = readyz(&app).await;
    assert_eq!(body["rate_limit"]["state"], "down", "{mode}: {body}");
    assert_eq!(status, ready_when_down, "{mode}: readyz while down: {body}");

    // Back: the instance returns to Redis by itself, where 192.0.2.2 has a full bucket.
    proxy.set(Mode::Forward);
    let mut state = Value::Null;
    for _ in 0..100 {
        let (status, body) = readyz(&app).await;
        state = body["rate_limit"]["state"].clone();
        if state == "up" {
            assert_eq!(status, 200);
            break;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(
        state, "up",
        "{mode}: Redis is back but the instance does not use it"
    );
    assert_eq!(
        statuses(&app, "192.0.2.2", 3).await,
        [201, 201, 429],
        "{mode}: back on Redis"
    );
    // The first client's bucket in Redis is still spent.
    assert_eq!(
        statuses(&app, "192.0.2.1", 1).await,
        [429],
        "{mode}: shared state kept"
    );
}

#[tokio::test]
async fn redis_failing_mid_run_with_allow_lets_requests_through() {
    redis_fails_mid_run("allow", [201; 4], [201; 2], 200).await;
}

#[tokio::test]
async fn redis_failing_mid_run_with_local_falls_back_to_the_process_limiter() {
    redis_fails_mid_run("local", [201, 201, 429, 429], [429; 2], 200).await;
}

#[tokio::test]
async fn redis_failing_mid_run_with_deny_refuses_limited_requests() {
    redis_fails_mid_run("deny", [429; 4], [429; 2], 503).await;
}

#[tokio::test]
async fn an_instance_starts_and_limits_while_redis_is_unreachable() {
    // Nothing listens on the proxy's address once it is dropped: no Redis needed here.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let app = spawn_with(&shared_config(
        &format!("redis://{addr}/0"),
        &unique_prefix(),
        "registration_per_ip = { burst = 2, per_second = 0.02 }\n",
    ))
    .await;
    assert_eq!(statuses(&app, "192.0.2.9", 3).await, [201, 201, 429]);
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rate_limit"]["state"], "down");
    assert_eq!(body["rate_limit"]["on_backend_error"], "local");
}

#[tokio::test]
async fn a_tls_backend_that_fails_its_handshake_is_a_backend_failure() {
    // A plain TCP server that closes every connection: `rediss://` cannot complete TLS there.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    let app = spawn_with(&shared_config(
        &format!("rediss://{addr}/0"),
        &unique_prefix(),
        "on_backend_error = \"deny\"\nregistration_per_ip = { burst = 2, per_second = 0.02 }\n",
    ))
    .await;
    assert_eq!(statuses(&app, "192.0.2.9", 2).await, [429, 429]);
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["rate_limit"]["state"], "down");
}

#[tokio::test]
async fn a_shared_bucket_refills_at_its_rate() {
    let Some((redis, db)) = test_redis().await else {
        return;
    };
    let app = spawn_with(&shared_config(
        &format!("redis://{redis}{db}"),
        &unique_prefix(),
        "registration_per_ip = { burst = 2, per_second = 1.0 }\n",
    ))
    .await;
    assert_eq!(statuses(&app, "192.0.2.20", 3).await, [201, 201, 429]);
    let res = app
        .http
        .post(app.url("/reg"))
        .header("x-forwarded-for", "192.0.2.20")
        .json(&web_client())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["retry-after"], "1");
    // One request's worth comes back every second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(statuses(&app, "192.0.2.20", 1).await, [201]);
}
