//! Several real `dcr serve` processes on one PostgreSQL database, as behind a load balancer:
//! whatever one instance writes, the other sees at once, and races between them resolve to
//! one winner. Each test has a database of its own; without `DCR_TEST_POSTGRES_URL` the
//! tests say so on stderr and check nothing.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use dcr_sql::testing::{TestDatabase, admin_url};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::helpers::{ISSUER, web_client};

const RUN_PG: &str = "cargo test -p dcr-server --test api multi_instance";

/// A database and a config file naming it, for the instances of one test.
struct Cluster {
    db: TestDatabase,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// `None` (after saying so) when `DCR_TEST_POSTGRES_URL` is unset.
    async fn new(extra_toml: &str) -> Option<Self> {
        let admin = admin_url("dcr-server multi-instance tests", RUN_PG)?;
        let db = TestDatabase::create(&admin)
            .await
            .unwrap_or_else(|e| panic!("DCR_TEST_POSTGRES_URL is set but unusable: {e}"));
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "issuer = \"{ISSUER}\"\nallow_insecure_issuer = true\nlisten = \"127.0.0.1:0\"\n[storage]\nurl = \"{}\"\nmax_connections = 8\n[log]\nfilter = \"info\"\n[rate_limit]\nenabled = false\n{extra_toml}\n",
            db.url()
        );
        std::fs::write(dir.path().join("dcr.toml"), text).unwrap();
        Some(Self { db, dir })
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("dcr.toml")
    }

    /// Starts `n` instances at the same time (they race to migrate the new database).
    fn start(&self, n: usize) -> Vec<Instance> {
        let spawned: Vec<_> = (0..n).map(|_| Instance::spawn(&self.config())).collect();
        spawned.into_iter().map(Instance::wait_listening).collect()
    }

    /// `dcr iat create --config F --max-uses N`: the token (last stdout line).
    fn mint_iat(&self, max_uses: u64) -> String {
        let out = dcr_command()
            .args([
                "iat",
                "create",
                "--max-uses",
                &max_uses.to_string(),
                "--config",
            ])
            .arg(self.config())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dcr iat create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        stdout.lines().last().unwrap().trim().to_owned()
    }

    /// A number from the database (`binds` fill `$1`, `$2`, ...).
    async fn sql_i64(&self, sql: &'static str, binds: &[&str]) -> i64 {
        let mut conn = sqlx::PgConnection::connect(self.db.url()).await.unwrap();
        let mut query = sqlx::query_as(sql);
        for b in binds {
            query = query.bind(*b);
        }
        let (n,): (i64,) = query.fetch_one(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        n
    }
}

/// `dcr ARGS`, with no `DCR_*` variable of the test environment: the binary reads them all as
/// configuration (and refuses `DCR_TEST_POSTGRES_URL` as an unknown key).
fn dcr_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dcr"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DCR_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1").env_remove("RUST_LOG");
    cmd
}

/// A `dcr serve` process, killed when dropped (also when the test panics).
struct Instance {
    child: Child,
    addr: SocketAddr,
    http: reqwest::Client,
    log: Arc<Mutex<Vec<String>>>,
}

/// A spawned process whose address is not known yet.
struct Starting {
    child: Child,
    addr: mpsc::Receiver<SocketAddr>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Instance {
    fn spawn(config: &Path) -> Starting {
        let mut child = dcr_command()
            .arg("serve")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, addr) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&log);
        // Reads stderr until the process ends, so the pipe never fills up.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = listening_addr(&line) {
                    let _ = tx.send(addr);
                }
                keep.lock().unwrap().push(line);
            }
        });
        Starting { child, addr, log }
    }

    fn wait_listening(starting: Starting) -> Instance {
        let Starting {
            mut child,
            addr,
            log,
        } = starting;
        match addr.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => Instance {
                child,
                addr,
                http: reqwest::Client::new(),
                log,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "dcr serve did not start listening:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// An absolute URL from a response (built from the issuer), on this instance.
    fn local(&self, absolute: &str) -> String {
        self.url(absolute.strip_prefix(ISSUER).unwrap())
    }

    async fn register(&self, body: &Value, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.post(self.url("/reg")).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    async fn read(&self, reg: &Value, token: &str) -> reqwest::Response {
        self.http
            .get(self.local(reg["registration_client_uri"].as_str().unwrap()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn update(&self, reg: &Value, token: &str, body: &Value) -> reqwest::Response {
        self.http
            .put(self.local(reg["registration_client_uri"].as_str().unwrap()))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn delete(&self, reg: &Value, token: &str) -> reqwest::Response {
        self.http
            .delete(self.local(reg["registration_client_uri"].as_str().unwrap()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- log of dcr serve on {} ---\n{}",
                self.addr,
                self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
            );
        }
    }
}

/// `127.0.0.1:PORT` from the `listening on http://ADDR` log line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on http://")? + "listening on http://".len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn rat(v: &Value) -> String {
    v["registration_access_token"].as_str().unwrap().to_owned()
}

/// A full replacement of a registration (RFC 7592 §2.2), differing in several members.
fn replacement(reg: &Value, tag: &str) -> Value {
    json!({
        "client_id": reg["client_id"],
        "redirect_uris": [format!("https://{tag}.example.com/cb")],
        "client_name": format!("RP {tag}"),
        "contacts": [format!("ops@{tag}.example.com")],
    })
}

#[tokio::test]
async fn a_client_registered_on_one_instance_is_read_updated_and_deleted_through_another() {
    let Some(cluster) = Cluster::new("").await else {
        return;
    };
    let [a, b] = <[Instance; 2]>::try_from(cluster.start(2)).ok().unwrap();

    // Arrange: registered through A.
    let res = a.register(&web_client(), None).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let reg: Value = res.json().await.unwrap();

    // Read through B: exactly what A returned.
    let res = b.read(&reg, &rat(&reg)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), reg);

    // Update through B; A serves the new state at once.
    let res = b.update(&reg, &rat(&reg), &replacement(&reg, "b")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["client_name"], "RP b");
    let res = a.read(&reg, &rat(&updated)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), updated);

    // Delete through B; A knows neither the client nor its token any more.
    let res = b.delete(&reg, &rat(&updated)).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        a.read(&reg, &rat(&updated)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        b.read(&reg, &rat(&updated)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        cluster
            .sql_i64(
                "SELECT COUNT(*) FROM clients WHERE client_id = $1",
                &[reg["client_id"].as_str().unwrap()]
            )
            .await,
        0
    );
}

#[tokio::test]
async fn a_token_rotated_on_one_instance_is_dead_on_the_other_at_once() {
    let Some(cluster) = Cluster::new("").await else {
        return;
    };
    let [a, b] = <[Instance; 2]>::try_from(cluster.start(2)).ok().unwrap();
    let reg: Value = a.register(&web_client(), None).await.json().await.unwrap();
    let mut token = rat(&reg);
    for round in 0..5 {
        // Warm B with the current token, so any cache would hold it.
        assert_eq!(b.read(&reg, &token).await.status(), StatusCode::OK);
        let res = a
            .update(&reg, &token, &replacement(&reg, &format!("r{round}")))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let new = rat(&res.json::<Value>().await.unwrap());
        assert_ne!(new, token);
        assert_eq!(
            b.read(&reg, &token).await.status(),
            StatusCode::UNAUTHORIZED,
            "the rotated-away token is dead on B at once"
        );
        assert_eq!(
            b.update(&reg, &token, &replacement(&reg, "stale"))
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(b.read(&reg, &new).await.status(), StatusCode::OK);
        token = new;
    }
}

#[tokio::test]
async fn an_initial_access_token_spent_through_both_instances_creates_exactly_max_uses_clients() {
    let Some(cluster) = Cluster::new("[registration]\ninitial_access_token = true").await else {
        return;
    };
    let [a, b] = <[Instance; 2]>::try_from(cluster.start(2)).ok().unwrap();
    let iat = cluster.mint_iat(5);
    let a = Arc::new(a);
    let b = Arc::new(b);

    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let instance = Arc::clone(if i % 2 == 0 { &a } else { &b });
            let iat = iat.clone();
            tokio::spawn(async move { instance.register(&web_client(), Some(&iat)).await.status() })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::CREATED => created += 1,
            StatusCode::UNAUTHORIZED => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(created, 5, "exactly max_uses registrations succeed");
    assert_eq!(
        cluster.sql_i64("SELECT COUNT(*) FROM clients", &[]).await,
        5,
        "no client was written without spending a use"
    );
    assert_eq!(
        cluster
            .sql_i64("SELECT SUM(uses)::bigint FROM initial_access_tokens", &[])
            .await,
        5
    );
    // Used up on both instances.
    for instance in [&a, &b] {
        assert_eq!(
            instance.register(&web_client(), Some(&iat)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn concurrent_updates_through_two_instances_leave_one_of_the_written_states() {
    let Some(cluster) =
        Cluster::new("[registration]\nrotate_registration_access_token = false").await
    else {
        return;
    };
    let [a, b] = <[Instance; 2]>::try_from(cluster.start(2)).ok().unwrap();
    let reg: Value = a.register(&web_client(), None).await.json().await.unwrap();
    let token = rat(&reg);
    for round in 0..6 {
        let left = replacement(&reg, &format!("left{round}"));
        let right = replacement(&reg, &format!("right{round}"));
        let (l, r) = tokio::join!(
            a.update(&reg, &token, &left),
            b.update(&reg, &token, &right)
        );
        assert_eq!(l.status(), StatusCode::OK);
        assert_eq!(r.status(), StatusCode::OK);
        let written = [
            l.json::<Value>().await.unwrap(),
            r.json::<Value>().await.unwrap(),
        ];
        for instance in [&a, &b] {
            let stored: Value = instance.read(&reg, &token).await.json().await.unwrap();
            assert!(
                written.contains(&stored),
                "the state is one of the two written ones, never a mix: {stored}"
            );
        }
    }
}

#[tokio::test]
async fn a_rotation_race_between_instances_never_leaves_two_valid_tokens() {
    let Some(cluster) = Cluster::new("").await else {
        return;
    };
    let [a, b] = <[Instance; 2]>::try_from(cluster.start(2)).ok().unwrap();
    for round in 0..6 {
        let reg: Value = a.register(&web_client(), None).await.json().await.unwrap();
        let old = rat(&reg);
        let (to_a, to_b) = (
            replacement(&reg, &format!("a{round}")),
            replacement(&reg, &format!("b{round}")),
        );
        let (l, r) = tokio::join!(a.update(&reg, &old, &to_a), b.update(&reg, &old, &to_b));
        let mut winners = Vec::new();
        for res in [l, r] {
            match res.status() {
                StatusCode::OK => winners.push(res.json::<Value>().await.unwrap()),
                StatusCode::UNAUTHORIZED => {}
                other => panic!("unexpected status {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one rotation wins");
        let winner = &winners[0];
        let client_id = reg["client_id"].as_str().unwrap();
        assert_eq!(
            cluster
                .sql_i64(
                    "SELECT COUNT(*) FROM registration_access_tokens WHERE client_id = $1",
                    &[client_id]
                )
                .await,
            1,
            "exactly one valid registration access token"
        );
        for instance in [&a, &b] {
            assert_eq!(
                instance.read(&reg, &old).await.status(),
                StatusCode::UNAUTHORIZED
            );
            let res = instance.read(&reg, &rat(winner)).await;
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(&res.json::<Value>().await.unwrap(), winner);
        }
    }
}

#[test]
fn the_listening_line_is_parsed() {
    assert_eq!(
        listening_addr(
            "2026-11-26T12:00:00Z  INFO dcr_server::app: listening on http://127.0.0.1:41234"
        ),
        Some("127.0.0.1:41234".parse().unwrap())
    );
    assert_eq!(
        listening_addr("\u{1b}[32m INFO\u{1b}[0m listening on http://[::1]:80\u{1b}[0m"),
        Some("[::1]:80".parse().unwrap())
    );
    assert_eq!(listening_addr("starting"), None);
}

/// `DCR_CONFIG` (read by the CLI) and `DCR_TEST_POSTGRES_URL` (set wherever these tests run)
/// are not configuration keys: the binary must not refuse them as unknown.
#[test]
fn the_config_and_test_variables_are_not_configuration_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dcr.toml");
    std::fs::write(&config, "[storage]\nurl = \"memory:\"\n").unwrap();
    let out = dcr_command()
        .arg("check-config")
        .env("DCR_CONFIG", &config)
        .env(
            "DCR_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A variable that names no key is ignored, by name (an unknown key in the file is refused:
    // see `configuration.rs`).
    let out = dcr_command()
        .arg("check-config")
        .env("DCR_CONFIG", &config)
        .env("DCR_STORAGE__POOL", "3")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DCR_STORAGE__POOL"));
}
