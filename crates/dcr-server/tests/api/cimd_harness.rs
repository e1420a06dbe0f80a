//! The cimd test harness: a server with `[cimd]` on, an admin listener and the test
//! origin's CA trusted; fixtures shaped like the documents of real clients.

use std::net::SocketAddr;

use dcr_server::app::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::cimd_origin::Origin;
use crate::helpers::test_config;

pub const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef-0123456789";

/// A server with `[cimd]` on, an admin listener, and the origin's CA trusted.
pub struct CimdApp {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Drop for CimdApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// `cimd_keys` go in `[cimd]` (which is on); `extra` is more TOML; `files` are written to
/// the config directory first. `loopback = false` leaves the SSRF guard whole.
pub async fn spawn_cimd_with(
    origin: &Origin,
    cimd_keys: &str,
    extra: &str,
    files: &[(&str, &str)],
    loopback: bool,
) -> CimdApp {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &origin.ca_pem).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let toml = format!(
        "[fetch]\nallow_loopback_for_tests = {loopback}\nextra_root_certificates = [\"ca.pem\"]\n\
         [admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{ADMIN_TOKEN}\"\n\
         [cimd]\nenabled = true\n{cimd_keys}\n{extra}\n"
    );
    let config = test_config(dir.path(), &toml);
    let app = Application::build(&config)
        .await
        .expect("application builds");
    let addr = app.local_addr().unwrap();
    let admin = app.admin_addr().expect("admin listener");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    CimdApp {
        addr,
        admin,
        http: reqwest::Client::new(),
        _dir: dir,
        stop: Some(stop),
        task: Some(task),
    }
}

pub async fn spawn_cimd(origin: &Origin, cimd_keys: &str) -> CimdApp {
    spawn_cimd_with(origin, cimd_keys, "", &[], true).await
}

/// Percent-encodes a client id as one path segment.
pub fn segment(client_id: &str) -> String {
    percent_encoding::utf8_percent_encode(client_id, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl CimdApp {
    /// The config file of this server (for `dcr` commands).
    pub fn config_path(&self) -> std::path::PathBuf {
        self._dir.path().join("dcr.toml")
    }

    /// `GET /clients/{id}` on the admin listener with the admin token; status and body.
    pub async fn lookup(&self, client_id: &str) -> (StatusCode, Value) {
        self.lookup_raw(&segment(client_id), Some(ADMIN_TOKEN))
            .await
    }

    /// `GET /clients/{raw}` with `raw` sent as is.
    pub async fn lookup_raw(&self, raw: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .get(format!("http://{}/clients/{raw}", self.admin));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

/// A document of the shape Claude Code publishes, at `url`.
pub fn claude_code(url: &str) -> Value {
    json!({
        "client_id": url,
        "client_name": "Claude Code",
        "client_uri": "https://claude.ai",
        "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

/// A document of the shape VS Code publishes, at `url`.
pub fn vscode(url: &str) -> Value {
    json!({
        "client_id": url,
        "client_name": "Visual Studio Code",
        "client_uri": "https://code.visualstudio.com",
        "redirect_uris": [
            "http://127.0.0.1:33418/",
            "http://localhost:33418/",
            "https://vscode.dev/redirect"
        ],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    })
}
