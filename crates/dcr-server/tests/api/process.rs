//! The real `dcr` binary as a child process: crash safety (SIGKILL under load), logs without
//! secrets, and the `dcr clients` commands.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ISSUER, spawn_with, web_client};

/// A running `dcr serve`.
struct Dcr {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

/// Writes `dir/dcr.toml` (SQLite in `dir`, JSON logs, rate limits off unless given).
fn write_config(dir: &Path, extra: &str) {
    let rate = if extra.contains("[rate_limit]") {
        ""
    } else {
        "[rate_limit]\nenabled = false\n"
    };
    let text = format!(
        "issuer = \"{ISSUER}\"\nallow_insecure_issuer = true\nlisten = \"127.0.0.1:0\"\n{extra}\n[storage]\nurl = \"sqlite://dcr.db\"\n[log]\nformat = \"json\"\n{rate}"
    );
    std::fs::write(dir.join("dcr.toml"), text).unwrap();
}

/// Runs `dcr --config dir/dcr.toml ARGS` to completion: (success, stdout, stderr).
fn dcr(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dcr"))
        .arg("--config")
        .arg(dir.join("dcr.toml"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts `dcr serve` on the config in `dir` and waits for its address.
fn serve(dir: &Path, rust_log: &str) -> Dcr {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dcr"))
        .arg("--config")
        .arg(dir.join("dcr.toml"))
        .arg("serve")
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '"')
                    .collect();
                let _ = tx.send(addr);
            }
            let mut l = sink.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("dcr serve did not start: {}", log.lock().unwrap()));
    Dcr {
        child,
        addr: addr.parse().unwrap(),
        log,
    }
}

impl Dcr {
    fn url(&self, absolute: &str) -> String {
        format!(
            "http://{}{}",
            self.addr,
            absolute.strip_prefix(ISSUER).unwrap_or(absolute)
        )
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap(); // SIGKILL on unix
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit; returns the log.
    fn terminate(mut self) -> String {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "dcr exited with {status}");
                break;
            }
            assert!(Instant::now() < deadline, "dcr did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Dcr {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Clients in the SQLite file without a registration access token (must be none), and all clients.
async fn sqlite_counts(dir: &Path) -> (i64, i64) {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("dcr.db"))
        .read_only(true);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    let (orphans,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM clients c WHERE NOT EXISTS \
         (SELECT 1 FROM registration_access_tokens r WHERE r.client_id = c.client_id)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let (all,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM clients")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    (orphans, all)
}

/// Runs `work` on 8 tasks and SIGKILLs the server in the middle of it.
async fn load_then_kill<F, Fut>(server: &mut Dcr, work: F) -> Vec<Value>
where
    F: Fn(usize, reqwest::Client) -> Fut,
    Fut: std::future::Future<Output = Vec<Value>> + Send + 'static,
{
    let http = reqwest::Client::new();
    let tasks: Vec<_> = (0..8)
        .map(|i| tokio::spawn(work(i, http.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        tasks.iter().all(|t| !t.is_finished()),
        "the load stopped before the kill"
    );
    server.kill9();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

#[tokio::test]
async fn sigkill_under_load_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "");
    let mut server = serve(dir.path(), "warn,dcr_server=info");
    let base = format!("http://{}/reg", server.addr);

    // Registrations: every 201 the loader saw must survive.
    let registered = load_then_kill(&mut server, move |i, http| {
        let base = base.clone();
        async move {
            let mut acked = Vec::new();
            for n in 0..10_000 {
                let body = json!({ "redirect_uris": [format!("https://rp{i}.example.com/{n}")] });
                match http.post(&base).json(&body).send().await {
                    Ok(r) if r.status() == StatusCode::CREATED => match r.json::<Value>().await {
                        Ok(v) => acked.push(v),
                        Err(_) => break,
                    },
                    _ => break,
                }
            }
            acked
        }
    })
    .await;
    assert!(
        registered.len() >= 8,
        "too few registrations before the kill: {}",
        registered.len()
    );
    assert_eq!(
        sqlite_counts(dir.path()).await.0,
        0,
        "a client without its token"
    );

    let mut server = serve(dir.path(), "warn,dcr_server=info");
    let http = reqwest::Client::new();
    for c in &registered {
        let res = http
            .get(server.url(c["registration_client_uri"].as_str().unwrap()))
            .bearer_auth(c["registration_access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "client {} lost",
            c["client_id"]
        );
    }

    // Rotations: for every acknowledged PUT, the new token works and the old one does not.
    let clients = Arc::new(registered);
    let addr = server.addr;
    let cs = clients.clone();
    let rotated = load_then_kill(&mut server, move |i, http| {
        let cs = cs.clone();
        async move {
            let mut acked = Vec::new();
            // Each task owns every 8th client; rotates each one repeatedly.
            let mine: Vec<Value> = cs.iter().skip(i).step_by(8).cloned().collect();
            let mut current: Vec<String> = mine
                .iter()
                .map(|c| c["registration_access_token"].as_str().unwrap().to_owned())
                .collect();
            'outer: for round in 0..1000 {
                for (k, c) in mine.iter().enumerate() {
                    let uri = c["registration_client_uri"]
                        .as_str()
                        .unwrap()
                        .replace(ISSUER, &format!("http://{addr}"));
                    let body = json!({
                        "client_id": c["client_id"],
                        "redirect_uris": [format!("https://rp.example.com/r{round}")],
                    });
                    let res = http
                        .put(&uri)
                        .bearer_auth(&current[k])
                        .json(&body)
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status() == StatusCode::OK => match r.json::<Value>().await {
                            Ok(v) => {
                                let new =
                                    v["registration_access_token"].as_str().unwrap().to_owned();
                                acked.push(json!({
                                    "client_id": c["client_id"],
                                    "uri": c["registration_client_uri"],
                                    "old": current[k], "new": new,
                                }));
                                current[k] = new;
                            }
                            Err(_) => break 'outer,
                        },
                        _ => break 'outer,
                    }
                }
            }
            acked
        }
    })
    .await;
    assert!(!rotated.is_empty(), "no rotation before the kill");
    eprintln!(
        "acknowledged before SIGKILL: {} registrations, {} rotations",
        clients.len(),
        rotated.len()
    );

    let server = serve(dir.path(), "warn,dcr_server=info");
    // The last acknowledged rotation of each client.
    let mut last: std::collections::BTreeMap<String, &Value> = Default::default();
    for r in &rotated {
        last.insert(r["client_id"].as_str().unwrap().to_owned(), r);
    }
    let mut unacked_later = 0;
    for r in last.values() {
        let uri = server.url(r["uri"].as_str().unwrap());
        let status = |token: String| {
            let http = http.clone();
            let uri = uri.clone();
            async move {
                http.get(uri)
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        // A PUT in flight at the kill may have committed after our last acknowledgement:
        // then neither of these works, but never both.
        let new_ok = status(r["new"].as_str().unwrap().to_owned()).await == StatusCode::OK;
        let old_ok = status(r["old"].as_str().unwrap().to_owned()).await == StatusCode::OK;
        assert!(
            !old_ok,
            "an old token still works after rotation: {}",
            r["client_id"]
        );
        // Acknowledged means durable: the new token works unless a later, unacknowledged
        // rotation replaced it (then the client still has exactly one token, checked below).
        if !new_ok {
            unacked_later += 1;
        }
    }
    assert!(
        unacked_later <= 8,
        "{unacked_later} acknowledged rotations lost"
    );
    // Every acknowledged rotation is durable: the acknowledged new token works unless a later
    // (unacknowledged) rotation replaced it — in which case the client still has exactly one token.
    let (orphans, _) = sqlite_counts(dir.path()).await;
    assert_eq!(orphans, 0);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(dir.path().join("dcr.db"))
                .read_only(true),
        )
        .await
        .unwrap();
    let (multi,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM (SELECT client_id FROM registration_access_tokens \
         GROUP BY client_id HAVING COUNT(*) > 1)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(multi, 0, "a client with two live tokens");
    drop(server);
}

#[tokio::test]
async fn logs_carry_request_ids_and_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "[registration]\ninitial_access_token = true\n");
    let (ok, iat, err) = dcr(dir.path(), &["iat", "create", "--label", "ci"]);
    assert!(ok, "{err}");
    let iat = iat.lines().last().unwrap().trim().to_owned();
    assert!(iat.len() > 20);

    let server = serve(dir.path(), "debug");
    let http = reqwest::Client::new();
    let res = http
        .post(format!("http://{}/reg", server.addr))
        .bearer_auth(&iat)
        .json(&json!({
            "redirect_uris": ["https://rp.example.com/cb"],
            "token_endpoint_auth_method": "client_secret_basic"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let reg: Value = res.json().await.unwrap();
    let rat1 = reg["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = reg["client_secret"].as_str().unwrap().to_owned();
    let uri = server.url(reg["registration_client_uri"].as_str().unwrap());
    let res = http.get(&uri).bearer_auth(&rat1).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // A token in the query string is refused, and must not be logged either.
    let res = http
        .get(format!("{uri}?access_token={rat1}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = http
        .put(&uri)
        .bearer_auth(&rat1)
        .json(&json!({
            "client_id": reg["client_id"],
            "client_secret": secret,
            "redirect_uris": ["https://rp.example.com/cb2"]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let upd: Value = res.json().await.unwrap();
    let rat2 = upd["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = http
        .get(&uri)
        .bearer_auth("not-a-real-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = http.delete(&uri).bearer_auth(&rat2).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    let log = server.terminate();
    for (what, value) in [
        ("initial access token", &iat),
        ("first registration access token", &rat1),
        ("rotated registration access token", &rat2),
        ("client secret", &secret),
    ] {
        assert!(
            !log.contains(value.as_str()),
            "the {what} is in the log:\n{log}"
        );
    }
    assert!(!log.to_ascii_lowercase().contains("bearer "), "{log}");
    // Audit records, each inside a request span carrying its id.
    let audit: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "dcr::audit")
        .collect();
    let outcomes: Vec<(String, String)> = audit
        .iter()
        .map(|v| {
            (
                v["action"].as_str().unwrap_or_default().to_owned(),
                v["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("register", "created"),
        ("update", "updated"),
        ("read", "denied"),
        ("delete", "deleted"),
    ] {
        assert!(
            outcomes.contains(&(expected.0.into(), expected.1.into())),
            "missing audit {expected:?} in {outcomes:?}"
        );
    }
    for a in &audit {
        assert!(
            a["span"]["request_id"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "audit record without request id: {a}"
        );
        assert_eq!(a["client_addr"], "127.0.0.1", "{a}");
    }
    let created = audit.iter().find(|a| a["outcome"] == "created").unwrap();
    assert_eq!(created["iat_label"], "ci");
    assert!(created["iat_id"].as_str().is_some_and(|s| !s.is_empty()));
}

#[tokio::test]
async fn clients_commands_list_show_delete_and_prune() {
    let app = spawn_with(
        "[storage]\nurl = \"sqlite://dcr.db\"\n[registration.prune]\nmax_unmanaged_open_clients = 2\ninterval_seconds = 0\n",
    )
    .await;
    let mut ids = Vec::new();
    let mut first = Value::Null;
    for i in 0..5 {
        let c = app.register_ok(&web_client()).await;
        ids.push(c["client_id"].as_str().unwrap().to_owned());
        if i == 0 {
            first = c;
        }
    }
    // The first client is managed by its owner: it is never pruned.
    let rat = first["registration_access_token"].as_str().unwrap();
    assert_eq!(app.read(&first, rat).await.status(), StatusCode::OK);
    let secret = first["client_secret"].as_str().map(str::to_owned);
    let dir = app.stop().await;
    let d = dir.path();

    let (ok, out, err) = dcr(d, &["clients", "list"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1 + 5, "{out}");

    let (ok, out, err) = dcr(d, &["clients", "show", &ids[0]]);
    assert!(ok, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["client_id"], ids[0].as_str());
    assert!(shown["managed_at"].is_i64());
    if let Some(secret) = &secret {
        assert!(!out.contains(secret.as_str()));
        assert_eq!(shown["metadata"]["client_secret"], "[redacted]");
        let (_, out, _) = dcr(d, &["clients", "show", &ids[0], "--show-secret"]);
        assert!(out.contains(secret.as_str()));
    }

    let (ok, out, err) = dcr(d, &["clients", "prune", "--dry-run"]);
    assert!(ok, "{err}");
    let would: Vec<&str> = out.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(would.len(), 2, "{out}");
    assert!(!would.contains(&ids[0].as_str()));
    let (_, out, _) = dcr(d, &["clients", "list"]);
    assert_eq!(out.lines().count(), 1 + 5, "a dry run deleted something");

    let (ok, out, err) = dcr(d, &["clients", "prune"]);
    assert!(ok, "{err}");
    let gone: Vec<&str> = out.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(gone, would);
    let (_, out, _) = dcr(d, &["clients", "list"]);
    assert_eq!(out.lines().count(), 1 + 3, "{out}");
    assert!(out.contains(&ids[0]));

    let (ok, _, err) = dcr(d, &["clients", "delete", &ids[0]]);
    assert!(ok, "{err}");
    let (ok, _, _) = dcr(d, &["clients", "show", &ids[0]]);
    assert!(!ok);
}

#[tokio::test]
async fn serve_prunes_in_the_background() {
    let app = spawn_with(
        "[storage]\nurl = \"sqlite://dcr.db\"\n[registration.prune]\nmax_unmanaged_open_clients = 1\ninterval_seconds = 1\n",
    )
    .await;
    for _ in 0..3 {
        app.register_ok(&web_client()).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while sqlite_counts(app.dir.path()).await.1 > 1 {
        assert!(Instant::now() < deadline, "nothing was pruned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
