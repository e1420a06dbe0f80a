//! `spawn_app()` and friends: boot the real application the way `dcr serve` does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use dcr_server::app::Application;
use dcr_server::config::Config;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The issuer every test server runs under: URLs in responses must be built from it,
/// whatever address the test reaches the server on.
pub const ISSUER: &str = "http://dcr.test";

/// A running server.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The issuer the server runs under ([`ISSUER`] unless spawned as its own issuer).
    pub issuer: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// A server with the default configuration (memory store).
pub async fn spawn_app() -> TestApp {
    spawn_with("").await
}

/// A server with extra configuration (TOML) on top of the test defaults; the store is
/// `memory:` unless the TOML names another.
pub async fn spawn_with(extra_toml: &str) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    spawn_in(dir, extra_toml).await
}

/// A server with extra files (e.g. policy scripts) written to its config directory first.
pub async fn spawn_with_files(files: &[(&str, &str)], extra_toml: &str) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write file");
    }
    spawn_in(dir, extra_toml).await
}

/// Runs the `dcr` binary with `args`, returning its output.
pub fn dcr(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_dcr"))
        .args(args)
        .env_remove("DCR_CONFIG")
        .output()
        .expect("dcr runs")
}

/// A server whose config file lives in `dir` (relative paths resolve there).
pub async fn spawn_in(dir: tempfile::TempDir, extra_toml: &str) -> TestApp {
    let config = test_config(dir.path(), extra_toml);
    let app = Application::build(&config)
        .await
        .expect("application builds");
    let addr = app.local_addr().expect("bound");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        issuer: ISSUER.to_owned(),
        http: reqwest::Client::new(),
        dir,
        stop: Some(stop),
        task: Some(task),
    }
}

/// A server whose issuer is its own address, `http://127.0.0.1:PORT`, so that third-party
/// clients can discover it and follow the URLs it returns. The store is `memory:`.
pub async fn spawn_as_issuer(extra_toml: &str) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("bound");
    let issuer = format!("http://{addr}");
    let text = format!(
        "issuer = \"{issuer}\"\nlisten = \"{addr}\"\n{extra_toml}\n[storage]\nurl = \"memory:\"\n"
    );
    std::fs::write(dir.path().join("dcr.toml"), &text).expect("write config");
    let config = Config::from_toml(&text, dir.path()).expect("test config is valid");
    let app = Application::build_with_listener(&config, listener)
        .await
        .expect("application builds");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        issuer,
        http: reqwest::Client::new(),
        dir,
        stop: Some(stop),
        task: Some(task),
    }
}

/// The configuration `spawn_in` uses, also written to `dir/dcr.toml` for CLI commands.
pub fn test_config(dir: &Path, extra_toml: &str) -> Config {
    let storage = if extra_toml.contains("[storage]") {
        ""
    } else {
        "[storage]\nurl = \"memory:\"\n"
    };
    // Rate limits are off unless a test turns them on (it then writes its own section).
    let rate_limit = if extra_toml.contains("[rate_limit]") {
        ""
    } else {
        "[rate_limit]\nenabled = false\n"
    };
    let text = format!(
        "issuer = \"{ISSUER}\"\nallow_insecure_issuer = true\nlisten = \"127.0.0.1:0\"\n{extra_toml}\n{storage}{rate_limit}"
    );
    std::fs::write(dir.join("dcr.toml"), &text).expect("write config");
    Config::from_toml(&text, dir).expect("test config is valid")
}

impl TestApp {
    /// The address the tests reach the server on.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Rewrites an absolute URL from a response (built from the issuer) to the test address.
    pub fn local(&self, absolute: &str) -> String {
        let path = absolute
            .strip_prefix(self.issuer.as_str())
            .unwrap_or_else(|| panic!("{absolute} does not start with {}", self.issuer));
        self.url(path)
    }

    /// The config file of this server.
    #[allow(dead_code)]
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("dcr.toml")
    }

    /// Mints an initial access token with `dcr iat create` against this server's store.
    pub fn mint(&self, extra_args: &[&str]) -> String {
        let config = self.config_path();
        let mut args = vec![
            "iat",
            "create",
            "--config",
            config.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(extra_args);
        let out = dcr(&args);
        assert!(
            out.status.success(),
            "dcr iat create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).expect("utf-8");
        stdout
            .lines()
            .last()
            .expect("a token line")
            .trim()
            .to_owned()
    }

    /// POST /reg with a JSON body and an optional bearer token.
    pub async fn register(&self, body: &Value, token: Option<&str>) -> Response {
        let mut req = self.http.post(self.url("/reg")).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    /// Registers a client that must succeed, returning the response body.
    pub async fn register_ok(&self, body: &Value) -> Value {
        let res = self.register(body, None).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.expect("json")
    }

    /// GET of a registration client URI with a token.
    pub async fn read(&self, body: &Value, token: &str) -> Response {
        let uri = self.local(body["registration_client_uri"].as_str().expect("uri"));
        self.http
            .get(uri)
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// PUT of a registration client URI with a token.
    pub async fn update(&self, registered: &Value, token: &str, body: &Value) -> Response {
        let uri = self.local(registered["registration_client_uri"].as_str().expect("uri"));
        self.http
            .put(uri)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// DELETE of a registration client URI with a token.
    pub async fn delete(&self, registered: &Value, token: &str) -> Response {
        let uri = self.local(registered["registration_client_uri"].as_str().expect("uri"));
        self.http
            .delete(uri)
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// Stops the server gracefully and waits for it (the store is closed).
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("server task").expect("server ran");
        }
        // Moving the directory out keeps the database files for a restart.
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A minimal valid registration.
pub fn web_client() -> Value {
    json!({ "redirect_uris": ["https://rp.example.com/cb"], "client_name": "Test RP" })
}

/// Asserts an RFC 7591 error response and returns its description.
pub async fn assert_error(res: Response, status: StatusCode, code: &str) -> String {
    assert_eq!(res.status(), status, "status");
    assert_eq!(
        res.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    let body: Value = res.json().await.expect("json error body");
    assert_eq!(body["error"], code, "error code in {body}");
    let description = body["error_description"]
        .as_str()
        .expect("error_description")
        .to_owned();
    assert!(!description.is_empty());
    description
}
