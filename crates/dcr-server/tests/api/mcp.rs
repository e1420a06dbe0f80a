//! dcr for an MCP server: `application_type` inference over HTTP, discovery completeness
//! warnings (`dcr serve`, `dcr check-config`), `[discovery]` pass-through, and the repository's
//! `examples/mcp.toml` run as the README says.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_with};

const CURSOR: &str = "cursor://anysphere.cursor-mcp/oauth/callback";
const INFER: &str = "[metadata]\ninfer_application_type = true\n";

/// How the MCP SDKs register: no application_type, no secret.
fn mcp_client(redirect_uri: &str) -> Value {
    json!({
        "client_name": "MCP client",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

#[tokio::test]
async fn application_type_is_inferred_and_stated() {
    let app = spawn_with(INFER).await;
    for (uri, inferred) in [
        (CURSOR, "native"),
        ("http://127.0.0.1:33418/callback", "native"),
        ("http://localhost:6274/oauth/callback", "native"),
        ("https://claude.ai/api/mcp/auth_callback", "web"),
    ] {
        let res = app.register(&mcp_client(uri), None).await;
        assert_eq!(res.status(), StatusCode::CREATED, "{uri}");
        let reg: Value = res.json().await.unwrap();
        assert_eq!(reg["application_type"], inferred, "{uri}");
        let token = reg["registration_access_token"].as_str().unwrap();
        let read: Value = app.read(&reg, token).await.json().await.unwrap();
        assert_eq!(read["application_type"], inferred, "stored: {uri}");
    }
    // Off (the default), the OpenID Connect default applies and refuses the custom scheme.
    let app = spawn_with("").await;
    let d = assert_error(
        app.register(&mcp_client(CURSOR), None).await,
        StatusCode::BAD_REQUEST,
        "invalid_redirect_uri",
    )
    .await;
    assert!(d.contains("web clients"), "{d}");
}

/// Registers `uris` (as a native client when `native`), which must be refused; the description.
async fn refused(app: &TestApp, uris: Value, native: bool) -> String {
    let mut body = mcp_client("");
    body["redirect_uris"] = uris;
    if native {
        body["application_type"] = json!("native");
    }
    assert_error(
        app.register(&body, None).await,
        StatusCode::BAD_REQUEST,
        "invalid_redirect_uri",
    )
    .await
}

/// Inference never makes an invalid redirect URI valid, with the option on or off.
#[tokio::test]
async fn invalid_redirect_uris_stay_refused() {
    let on = spawn_with(INFER).await;
    let off = spawn_with("").await;
    // (redirect URIs, explicit native, with inference on, off)
    let cases = [
        (
            json!(["javascript:alert(1)"]),
            false,
            "must not use the javascript URI scheme",
            "javascript:alert(1)",
        ),
        (
            json!(["data:text/html,x"]),
            false,
            "must not use the data URI scheme",
            "data:text/html,x",
        ),
        (
            json!(["file:///etc/passwd"]),
            false,
            "must not use the file URI scheme",
            "file:///etc/passwd",
        ),
        (
            json!(["cursor://a.b/cb#x"]),
            false,
            "must not contain fragments",
            "must not contain fragments",
        ),
        (
            json!(["http://127.0.0.1/cb#x"]),
            false,
            "must not contain fragments",
            "must not contain fragments",
        ),
        (
            json!(["http://app.example.com/cb"]),
            true,
            "can only use loopback addresses",
            "can only use loopback addresses",
        ),
        (
            json!(["https://app.example.com/cb", CURSOR]),
            false,
            "cannot be inferred",
            "for web clients",
        ),
    ];
    for (uris, native, says_on, says_off) in cases {
        let d = refused(&on, uris.clone(), native).await;
        assert!(d.contains(says_on), "on {uris}: {d}");
        let d = refused(&off, uris.clone(), native).await;
        assert!(d.contains(says_off), "off {uris}: {d}");
    }
}

#[tokio::test]
async fn discovery_members_pass_through_unchanged() {
    let members = json!({
        "authorization_endpoint": "https://as.example.com/authorize?tenant=a%20b",
        "token_endpoint": "https://as.example.com/token",
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": ["ES256", "EdDSA"],
        "tls_client_certificate_bound_access_tokens": true,
        "authorization_response_iss_parameter_supported": false,
        "mtls_endpoint_aliases": {"token_endpoint": "https://mtls.as.example.com/token"},
        "x_custom_number": 42,
        "op_policy_uri": "https://as.example.com/policy#ünïcode",
    });
    let mut toml = String::from("[discovery]\n");
    for (k, v) in members.as_object().unwrap() {
        toml.push_str(&format!("{k} = {}\n", toml_value(v)));
    }
    let app = spawn_with(&toml).await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let doc: Value = app
            .http
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for (k, v) in members.as_object().unwrap() {
            assert_eq!(&doc[k], v, "{path} {k}");
        }
    }
}

/// A JSON value as TOML (inline tables for objects).
fn toml_value(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let items: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{k} = {}", toml_value(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/mcp.toml")
}

/// `dcr ARGS` with the environment the README's walk-through uses.
fn dcr(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dcr"));
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .env("DCR_LISTEN", "127.0.0.1:0")
        .env("DCR_STORAGE__URL", "memory:");
    cmd
}

fn check_config(config: &Path) -> String {
    let out = dcr(config, &["check-config"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A running `dcr serve`, its address and its log so far.
struct Served {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(config: &Path) -> Served {
    let mut child = dcr(config, &["serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '"')
                    .collect();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("dcr serve did not start: {}", log.lock().unwrap()));
    Served { child, addr, log }
}

const WARNED: [&str; 3] = [
    "[discovery] has no authorization_endpoint",
    "[discovery] has no token_endpoint",
    "[discovery] has no code_challenge_methods_supported",
];

#[tokio::test]
async fn missing_authorization_server_members_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dcr.toml");
    std::fs::write(&config, "issuer = \"http://127.0.0.1:8080\"\n").unwrap();
    let out = check_config(&config);
    for warning in WARNED {
        assert!(
            out.contains(&format!("warning: {warning}")),
            "{warning}: {out}"
        );
    }
    assert!(out.contains("MCP clients require S256"), "{out}");
    assert!(out.contains("RFC 8414"), "{out}");
    let served = serve(&config);
    let log = served.log.lock().unwrap().clone();
    for warning in WARNED {
        assert!(log.contains(warning), "{warning}: {log}");
    }

    // S256 missing from the list; a member dcr computes is named as ignored.
    std::fs::write(
        &config,
        "issuer = \"http://127.0.0.1:8080\"\n[discovery]\nauthorization_endpoint = \"https://as.example.com/a\"\n\
         token_endpoint = \"https://as.example.com/t\"\ncode_challenge_methods_supported = [\"plain\"]\n\
         scopes_supported = [\"mcp\"]\n",
    )
    .unwrap();
    let out = check_config(&config);
    assert!(
        !out.contains(WARNED[0]) && !out.contains(WARNED[1]),
        "{out}"
    );
    assert!(
        out.contains("code_challenge_methods_supported does not contain \"S256\""),
        "{out}"
    );
    assert!(
        out.contains("[discovery] scopes_supported is ignored"),
        "{out}"
    );
}

/// examples/mcp.toml, run as the README says: no warnings, discovery carries the authorization
/// server's members, and the clients MCP hosts register are accepted as native.
#[tokio::test]
async fn the_mcp_example_configuration_serves_mcp_clients() {
    let example = example();
    let out = check_config(&example);
    assert!(!out.contains("warning"), "{out}");
    assert!(out.contains("configuration is valid"), "{out}");

    let served = serve(&example);
    let http = reqwest::Client::new();
    let base = format!("http://{}", served.addr);
    let doc: Value = http
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], "https://auth.example.com");
    assert_eq!(doc["registration_endpoint"], "https://auth.example.com/reg");
    assert_eq!(
        doc["authorization_endpoint"],
        "https://auth.example.com/authorize"
    );
    assert_eq!(doc["token_endpoint"], "https://auth.example.com/token");
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    // The second registration door is open.
    assert_eq!(doc["client_id_metadata_document_supported"], true);
    assert!(
        doc["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("mcp:tools"))
    );

    for uri in [CURSOR, "http://127.0.0.1:45678/callback"] {
        let res = http
            .post(format!("{base}/reg"))
            .json(&mcp_client(uri))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED, "{uri}");
        let reg: Value = res.json().await.unwrap();
        assert_eq!(reg["application_type"], "native", "{uri}");
        assert!(reg.get("client_secret").is_none(), "{reg}");
    }
    let log = served.log.lock().unwrap().clone();
    assert!(!log.contains("[discovery]"), "{log}");
}
