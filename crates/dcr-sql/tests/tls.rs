//! TLS to PostgreSQL, for real: a PostgreSQL cluster of the test's own (the machine's
//! `initdb`/`pg_ctl`, a free port, a temporary directory, stopped when the test ends, also when
//! it fails) with `ssl = on` and a certificate from a CA the test generates.
//!
//! One test function starts the cluster once (a few seconds) and goes through every `sslmode`
//! against it, including the whole store conformance suite over `verify-full`. Without the
//! PostgreSQL server binaries it says so on stderr and checks nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use dcr_core::store::conformance::{self, Backend, Maintenance};
use dcr_core::store::{ClientStore as _, StoreError};
use dcr_sql::testing::{TestDatabase, admin_url};
use dcr_sql::{PgStore, PgStoreOptions};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use sqlx::Connection as _;

/// A certificate authority made up for the test.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` and its key, in PEM.
    fn server(&self, names: &[&str]) -> (String, String) {
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// The directory of the installed PostgreSQL server binaries, if any.
fn server_bin_dir() -> Option<PathBuf> {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let mut candidates: Vec<PathBuf> = from_pg_config.into_iter().collect();
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut dirs: Vec<PathBuf> = versions.flatten().map(|e| e.path().join("bin")).collect();
        dirs.sort();
        candidates.extend(dirs.into_iter().rev());
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

/// A PostgreSQL cluster in a temporary directory, stopped (and removed) on drop.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// Runs the server binaries as `postgres` when the test runs as root (`initdb` refuses root).
    as_postgres: bool,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Initialises and starts a cluster on a free port of 127.0.0.1 with TLS on, serving
    /// `cert`/`key` (PEM).
    fn start(bin: PathBuf, cert: &str, key: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = is_root();
        let data = dir.path().join("data");
        let port = free_port();
        let cluster = Self {
            bin,
            data,
            port,
            as_postgres,
            dir,
        };
        if as_postgres {
            cluster.chown(cluster.dir.path());
        }
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&cluster.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        std::fs::write(cluster.data.join("server.crt"), cert).unwrap();
        std::fs::write(cluster.data.join("server.key"), key).unwrap();
        set_mode(&cluster.data.join("server.key"), 0o600);
        let socket_dir = cluster.dir.path().join("socket");
        std::fs::create_dir(&socket_dir).unwrap();
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
            path_str(&socket_dir)
        );
        let conf_path = cluster.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path).unwrap();
        text.push_str(&conf);
        std::fs::write(&conf_path, text).unwrap();
        if as_postgres {
            cluster.chown(cluster.dir.path());
        }
        let log = cluster.dir.path().join("server.log");
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&cluster.data),
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        cluster
    }

    /// `postgres://postgres@HOST:PORT/DB?QUERY`.
    fn url(&self, host: &str, db: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/{db}?{query}", self.port)
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", path_str(&path)]).args(args);
            c
        } else {
            let mut c = Command::new(path);
            c.args(args);
            c
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program, args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn chown(&self, path: &Path) {
        let out = Command::new("chown")
            .args(["-R", "postgres:", path_str(path)])
            .output()
            .unwrap();
        assert!(out.status.success(), "chown: {out:?}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Immediate: nothing in it is worth a checkpoint. Errors are ignored (the test may be
        // failing already); the directory goes with `dir`.
        let _ = self
            .command(
                "pg_ctl",
                &["-D", path_str(&self.data), "-m", "immediate", "-w", "stop"],
            )
            .output();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

fn options() -> PgStoreOptions {
    PgStoreOptions {
        max_connections: 16,
        connect_timeout: Duration::from_secs(10),
        ..PgStoreOptions::default()
    }
}

/// Whether the connections of `url` use TLS, as the server sees them.
async fn uses_tls(url: &str) -> bool {
    let mut conn = sqlx::PgConnection::connect_with(&dcr_sql::postgres::parse_url(url).unwrap())
        .await
        .unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    ssl
}

/// Opening a store at `url` fails; its message, which must say why.
async fn refused(url: &str) -> String {
    match PgStore::open(url, &options()).await {
        Ok(_) => panic!("{url} connected"),
        Err(StoreError::Backend(message)) => message.to_string(),
        Err(other) => panic!("{url}: unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_tls_modes_against_a_cluster_of_our_own() {
    let Some(bin) = server_bin_dir() else {
        eprintln!(
            "\n*** dcr-sql TLS tests NOT RUN: no PostgreSQL server binaries (initdb, pg_ctl) \
             found via pg_config or in /usr/lib/postgresql/*/bin.\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("dcr test CA");
    let other_ca = Ca::new("another CA");
    let (cert, key) = ca.server(&["127.0.0.1"]);
    let root = dir.path().join("root.pem");
    let wrong_root = dir.path().join("wrong-root.pem");
    std::fs::write(&root, &ca.pem).unwrap();
    std::fs::write(&wrong_root, &other_ca.pem).unwrap();
    let root = path_str(&root).to_owned();
    let wrong_root = path_str(&wrong_root).to_owned();
    let cluster = Cluster::start(bin, &cert, &key);

    // verify-full with the right root: TLS, and every conformance case passes over it.
    let full = format!("sslmode=verify-full&sslrootcert={root}");
    let admin = cluster.url("127.0.0.1", "postgres", &full);
    assert!(uses_tls(&admin).await);
    conformance::run_all(
        || async {
            let db = TestDatabase::create(&admin).await.unwrap();
            let store = PgStore::open(db.url(), &options()).await.unwrap();
            Backend::keeping(Arc::new(store), db)
        },
        Maintenance::Implemented,
    )
    .await;

    // A wrong root, or a name the certificate is not for: refused at start-up, saying why.
    let message = refused(&cluster.url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=verify-full&sslrootcert={wrong_root}"),
    ))
    .await;
    assert!(message.contains("TLS"), "{message}");
    assert!(message.contains("UnknownIssuer"), "{message}");
    assert!(message.contains("sslmode=verify-full"), "{message}");
    let message = refused(&cluster.url("localhost", "postgres", &full)).await;
    assert!(message.contains("not valid for name"), "{message}");
    // verify-ca checks the chain, not the name.
    let ca_only = format!("sslmode=verify-ca&sslrootcert={root}");
    assert!(uses_tls(&cluster.url("localhost", "postgres", &ca_only)).await);
    let message = refused(&cluster.url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=verify-ca&sslrootcert={wrong_root}"),
    ))
    .await;
    assert!(message.contains("UnknownIssuer"), "{message}");
    // require encrypts without verifying; with a root file it verifies the chain (as libpq).
    assert!(uses_tls(&cluster.url("localhost", "postgres", "sslmode=require")).await);
    let message = refused(&cluster.url(
        "127.0.0.1",
        "postgres",
        &format!("sslmode=require&sslrootcert={wrong_root}"),
    ))
    .await;
    assert!(message.contains("UnknownIssuer"), "{message}");
    // prefer (the default) takes TLS when offered; disable never does.
    assert!(uses_tls(&cluster.url("127.0.0.1", "postgres", "sslmode=prefer")).await);
    assert!(
        uses_tls(&format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            cluster.port
        ))
        .await
    );
    assert!(!uses_tls(&cluster.url("127.0.0.1", "postgres", "sslmode=disable")).await);

    // The same server without TLS: require (and stricter) is refused, prefer falls back.
    let plain = cluster.url("127.0.0.1", "postgres", "sslmode=disable");
    let mut conn = sqlx::PgConnection::connect_with(&dcr_sql::postgres::parse_url(&plain).unwrap())
        .await
        .unwrap();
    sqlx::query("ALTER SYSTEM SET ssl = off")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    // The reload is asynchronous: wait until new connections are refused TLS.
    for _ in 0..100 {
        if !uses_tls(&cluster.url("127.0.0.1", "postgres", "sslmode=prefer")).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!uses_tls(&cluster.url("127.0.0.1", "postgres", "sslmode=prefer")).await);
    for mode in ["require", "verify-full"] {
        let message = refused(&cluster.url(
            "127.0.0.1",
            "postgres",
            &format!("sslmode={mode}&sslrootcert={root}"),
        ))
        .await;
        assert!(
            message.contains("server does not support TLS"),
            "{mode}: {message}"
        );
    }
    drop(cluster);
}

/// The machine's own PostgreSQL (`DCR_TEST_POSTGRES_URL`, which runs with `ssl = on`) with
/// `sslmode=require`.
#[tokio::test]
async fn postgres_require_against_the_configured_server() {
    let Some(url) = admin_url("dcr-sql TLS tests", "cargo test -p dcr-sql --test tls") else {
        return;
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{separator}sslmode=require");
    assert!(uses_tls(&url).await, "{url} does not use TLS");
    let db = TestDatabase::create(&url).await.unwrap();
    let store = PgStore::open(db.url(), &PgStoreOptions::default())
        .await
        .unwrap();
    store.ping().await.unwrap();
    store.close().await;
}
