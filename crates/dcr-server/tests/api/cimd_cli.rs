//! `dcr cimd check | list | evict`, and `[cimd] policies` with open registration.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cimd_harness::{claude_code, spawn_cimd_with};
use crate::cimd_origin::{Origin, Served};
use crate::helpers::dcr;

/// Runs `dcr cimd ARGS --config CONFIG` off the runtime (the origin must keep serving).
async fn run(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["cimd".to_owned()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    all.extend(["--config".to_owned(), config.to_str().unwrap().to_owned()]);
    let out = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        dcr(&refs)
    })
    .await
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn check_prints_the_client_or_the_precise_refusal() {
    let origin = Origin::start().await;
    let good = origin.url("/good.json");
    origin.serve(
        "/good.json",
        Served::json(&claude_code(&good), Some("max-age=120")),
    );
    let bad = origin.url("/bad.json");
    let mut doc = claude_code(&bad);
    doc["token_endpoint_auth_method"] = json!("client_secret_post");
    origin.serve("/bad.json", Served::json(&doc, None));
    let app = spawn_cimd_with(&origin, "", "", &[], true).await;
    let config = app.config_path();

    let (ok, stdout, stderr) = run(&config, &["check", &good]).await;
    assert!(ok, "{stdout} {stderr}");
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed["client_id"], good);
    assert_eq!(printed["metadata"]["application_type"], "native");
    assert_eq!(printed["cache_seconds"], 120);

    let (ok, _, stderr) = run(&config, &["check", &bad]).await;
    assert!(!ok);
    assert!(
        stderr.contains("refused") && stderr.contains("shared secret"),
        "{stderr}"
    );
    let (ok, _, stderr) = run(&config, &["check", "https://a.example/x#y"]).await;
    assert!(!ok);
    assert!(stderr.contains("fragment"), "{stderr}");
    // check caches nothing: the server fetches on its own first use.
    assert_eq!(app.lookup(&good).await.0, StatusCode::OK);
    assert_eq!(origin.hits("/good.json"), 2);
}

#[tokio::test]
async fn list_and_evict_show_and_drop_stored_documents() {
    let origin = Origin::start().await;
    let url = origin.url("/listed.json");
    origin.serve(
        "/listed.json",
        Served::json(&claude_code(&url), Some("max-age=600")),
    );
    let app = spawn_cimd_with(
        &origin,
        "",
        "[storage]\nurl = \"sqlite://dcr.db\"\n",
        &[],
        true,
    )
    .await;
    assert_eq!(app.lookup(&url).await.0, StatusCode::OK);
    let config = app.config_path();
    let (ok, stdout, stderr) = run(&config, &["list"]).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&url) && stdout.contains("Claude Code"),
        "{stdout}"
    );
    let (ok, stdout, stderr) = run(&config, &["evict", &url]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("evicted"));
    let (ok, stdout, _) = run(&config, &["list"]).await;
    assert!(ok);
    assert!(!stdout.contains(&url), "{stdout}");
    let (ok, _, stderr) = run(&config, &["evict", &url]).await;
    assert!(!ok);
    assert!(stderr.contains("no document kept"), "{stderr}");
}

#[tokio::test]
async fn document_policies_work_with_open_registration() {
    let origin = Origin::start().await;
    let url = origin.url("/open.json");
    origin.serve("/open.json", Served::json(&claude_code(&url), None));
    let app = spawn_cimd_with(
        &origin,
        "policies = [\"nologo\"]",
        "[registration.policies]\nnologo = \"nologo.rhai\"\n",
        &[(
            "nologo.rhai",
            "if properties.client_uri == \"https://claude.ai\" { throw \"claude.ai documents are not accepted here\"; }",
        )],
        true,
    )
    .await;
    let (status, body) = app.lookup(&url).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let d = body["error_description"].as_str().unwrap();
    assert!(
        d.contains("nologo") && d.contains("not accepted here"),
        "{d}"
    );
    // Registration stays open, and the policy does not apply to it.
    let reg = app
        .http
        .post(format!("http://{}/reg", app.addr))
        .json(
            &json!({"redirect_uris": ["https://a.example/cb"], "client_uri": "https://claude.ai"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(reg.status(), StatusCode::CREATED);
}
