//! The audit records of metadata documents, read from a real `dcr serve` process's log:
//! first use, change (naming the members), refusal; and the admin token is never logged.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::cimd_harness::{ADMIN_TOKEN, claude_code, segment};
use crate::cimd_origin::{Origin, Served};

#[tokio::test]
async fn first_use_change_and_refusal_are_audited_without_the_admin_token() {
    let origin = Origin::start().await;
    let url = origin.url("/audited.json");
    origin.serve(
        "/audited.json",
        Served::json(&claude_code(&url), Some("max-age=1")),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &origin.ca_pem).unwrap();
    std::fs::write(
        dir.path().join("dcr.toml"),
        format!(
            "issuer = \"http://dcr.test\"\nallow_insecure_issuer = true\nlisten = \"127.0.0.1:0\"\n[storage]\nurl = \"memory:\"\n\
             [fetch]\nallow_loopback_for_tests = true\nextra_root_certificates = [\"ca.pem\"]\n\
             [cimd]\nenabled = true\ncache_min_seconds = 1\n\
             [admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{ADMIN_TOKEN}\"\n"
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dcr"))
        .arg("--config")
        .arg(dir.path().join("dcr.toml"))
        .arg("serve")
        .env("RUST_LOG", "info")
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
            if let Some(rest) = line.split("admin listener on http://").nth(1) {
                let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                let _ = tx.send(addr);
            }
            sink.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let admin = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("dcr serve starts its admin listener");
    let http = reqwest::Client::new();
    let lookup = |id: String| {
        let http = http.clone();
        let admin = admin.clone();
        async move {
            http.get(format!("http://{admin}/clients/{}", segment(&id)))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(lookup(url.clone()).await, StatusCode::OK);
    let mut changed = claude_code(&url);
    changed["redirect_uris"] = json!(["http://127.0.0.1:4242/callback"]);
    changed["client_name"] = json!("Claude Code 2");
    origin.serve("/audited.json", Served::json(&changed, Some("max-age=1")));
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_eq!(lookup(url.clone()).await, StatusCode::OK);
    assert_eq!(
        lookup(origin.url("/missing.json")).await,
        StatusCode::NOT_FOUND
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = child.kill();
    let _ = child.wait();
    let log = log.lock().unwrap().clone();
    let audit: Vec<&str> = log.lines().filter(|l| l.contains("dcr::audit")).collect();
    let has = |words: &[&str]| audit.iter().any(|l| words.iter().all(|w| l.contains(w)));
    assert!(has(&["first_use", "audited.json"]), "{log}");
    assert!(
        has(&["changed", "changed_members", "client_name,redirect_uris"]),
        "{log}"
    );
    assert!(has(&["refused", "missing.json", "fetch_failed"]), "{log}");
    assert!(!log.contains(ADMIN_TOKEN), "the admin token was logged");
}
