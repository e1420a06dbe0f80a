//! Registration policies as Rhai scripts, and the registration access token issuance decision.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_in, spawn_with, spawn_with_files, web_client};

const SCRIPTS: &[(&str, &str)] = &[
    (
        "default.rhai",
        r#"if !("client_name" in properties) { properties.client_name = "Unnamed"; }"#,
    ),
    ("force.rhai", "properties.require_auth_time = true;"),
    (
        "reject.rhai",
        r#"if "logo_uri" in properties { throw "logo_uri is not allowed for this tenant"; }"#,
    ),
    ("a.rhai", r#"properties.client_name = "a";"#),
    (
        "b.rhai",
        r#"let before = if "client_name" in properties { properties.client_name } else { "" };
           properties.client_name = before + "b";"#,
    ),
    (
        "tenant.rhai",
        r#"properties.client_uri = "https://" + request.headers["x-tenant"] + ".example.com/";"#,
    ),
    (
        "handoff.rhai",
        r#"let registration_access_token_policies = ["frozen"];"#,
    ),
    (
        "frozen.rhai",
        r#"if request.method == "PUT" { throw "this registration can no longer be changed"; }"#,
    ),
    ("runaway.rhai", "loop { }"),
    (
        "rename.rhai",
        r#"properties.client_id = "renamed-" + properties.client_id;"#,
    ),
];

const CONFIG: &str = r#"
[storage]
url = "sqlite://dcr.db"
[registration]
initial_access_token = true
[registration.policies]
default = "default.rhai"
force = "force.rhai"
reject = "reject.rhai"
a = "a.rhai"
b = "b.rhai"
tenant = "tenant.rhai"
handoff = "handoff.rhai"
frozen = "frozen.rhai"
runaway = "runaway.rhai"
rename = "rename.rhai"
"#;

async fn app() -> TestApp {
    spawn_with_files(SCRIPTS, CONFIG).await
}

fn policies(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .flat_map(|n| ["--policy".to_owned(), (*n).to_owned()])
        .collect()
}

async fn mint(app: &TestApp, names: &[&str]) -> String {
    let args = policies(names);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    app.mint(&args)
}

fn rat(v: &Value) -> String {
    v["registration_access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_policy_sets_defaults() {
    let app = app().await;
    let token = mint(&app, &["default"]).await;
    let body: Value = app
        .register(
            &json!({"redirect_uris": ["https://rp.example.com/cb"]}),
            Some(&token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["client_name"], "Unnamed");
    let body: Value = app
        .register(&web_client(), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["client_name"], "Test RP");
}

#[tokio::test]
async fn a_policy_forces_values_and_runs_again_on_every_update() {
    let app = app().await;
    let token = mint(&app, &["force"]).await;
    let mut body = web_client();
    body["require_auth_time"] = json!(false);
    let reg: Value = app
        .register(&body, Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reg["require_auth_time"], true);
    // The RAT carries the IAT's policies: they run on PUT, and carry over to the rotated RAT.
    let mut update = json!({"client_id": reg["client_id"], "redirect_uris": ["https://rp.example.com/cb"], "require_auth_time": false});
    let updated: Value = app
        .update(&reg, &rat(&reg), &update)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(updated["require_auth_time"], true);
    update["client_name"] = json!("second");
    let again: Value = app
        .update(&reg, &rat(&updated), &update)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["require_auth_time"], true);
    assert_eq!(again["client_name"], "second");
}

#[tokio::test]
async fn a_policy_rejects_with_its_own_message() {
    let app = app().await;
    let token = mint(&app, &["reject"]).await;
    let mut body = web_client();
    body["logo_uri"] = json!("https://rp.example.com/logo.png");
    let d = assert_error(
        app.register(&body, Some(&token)).await,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    )
    .await;
    assert_eq!(d, "logo_uri is not allowed for this tenant");
    assert_eq!(
        app.register(&web_client(), Some(&token)).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn policies_run_in_the_order_they_were_minted() {
    let app = app().await;
    let ab = mint(&app, &["a", "b"]).await;
    let ba = mint(&app, &["b", "a"]).await;
    let body: Value = app
        .register(&web_client(), Some(&ab))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["client_name"], "ab");
    let body: Value = app
        .register(&web_client(), Some(&ba))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["client_name"], "a");
}

#[tokio::test]
async fn policies_see_request_headers() {
    let app = app().await;
    let token = mint(&app, &["tenant"]).await;
    let res = app
        .http
        .post(app.url("/reg"))
        .bearer_auth(&token)
        .header("x-tenant", "acme")
        .json(&web_client())
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["client_uri"], "https://acme.example.com/");
}

#[tokio::test]
async fn a_policy_can_give_the_rat_other_policies() {
    let app = app().await;
    let token = mint(&app, &["handoff"]).await;
    let reg: Value = app
        .register(&web_client(), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let update =
        json!({"client_id": reg["client_id"], "redirect_uris": ["https://rp.example.com/cb"]});
    let d = assert_error(
        app.update(&reg, &rat(&reg), &update).await,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
    )
    .await;
    assert_eq!(d, "this registration can no longer be changed");
}

#[tokio::test]
async fn a_runaway_script_is_stopped_with_a_server_error() {
    let app = app().await;
    let token = mint(&app, &["runaway"]).await;
    let started = std::time::Instant::now();
    let d = assert_error(
        app.register(&web_client(), Some(&token)).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
    )
    .await;
    assert!(
        !d.contains("runaway") && !d.contains("operations"),
        "no details leak: {d}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn a_token_naming_a_dropped_policy_fails_closed() {
    let app = app().await;
    let token = mint(&app, &["default"]).await;
    let dir = app.stop().await;
    // The operator removes the policy from the configuration; the stored token still names it.
    let config = CONFIG.replace("default = \"default.rhai\"\n", "");
    let app = spawn_in(dir, &config).await;
    let d = assert_error(
        app.register(&web_client(), Some(&token)).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
    )
    .await;
    assert!(!d.contains("default"), "no details leak: {d}");
}

#[tokio::test]
async fn syntax_errors_stop_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.rhai"), "let x = ;").unwrap();
    let text = "issuer = \"http://dcr.test\"\nallow_insecure_issuer = true\n[storage]\nurl = \"memory:\"\n[registration]\ninitial_access_token = true\n[registration.policies]\nbad = \"bad.rhai\"\n";
    let config = dcr_server::config::Config::from_toml(text, dir.path()).unwrap();
    let err = dcr_server::app::Application::build(&config)
        .await
        .err()
        .expect("start-up fails");
    let msg = format!("{err:#}");
    assert!(msg.contains("bad.rhai") && msg.contains("line 1"), "{msg}");
}

#[tokio::test]
async fn registration_access_tokens_can_be_withheld() {
    let app = spawn_with("[registration]\nissue_registration_access_token = false\n").await;
    let body: Value = app
        .register(&web_client(), None)
        .await
        .json()
        .await
        .unwrap();
    assert!(body.get("registration_access_token").is_none());
    assert!(body.get("registration_client_uri").is_none());
    assert!(body["client_id"].is_string());
}

#[tokio::test]
async fn registration_access_token_issuance_can_be_decided_per_request() {
    let app = spawn_with_files(
        &[("issue.rhai", r#"request.headers["x-manage"] == "yes""#)],
        "[registration]\nissue_registration_access_token = \"issue.rhai\"\n",
    )
    .await;
    let post = |manage: &'static str| {
        app.http
            .post(app.url("/reg"))
            .header("x-manage", manage)
            .json(&web_client())
            .send()
    };
    let yes: Value = post("yes").await.unwrap().json().await.unwrap();
    assert!(yes["registration_access_token"].is_string());
    let no: Value = post("no").await.unwrap().json().await.unwrap();
    assert!(no.get("registration_access_token").is_none());
}

#[tokio::test]
async fn a_policy_that_renames_the_client_keeps_the_token_bound() {
    // Reference defect 4: the token stayed bound to the factory id.
    let app = app().await;
    let token = mint(&app, &["rename"]).await;
    let reg: Value = app
        .register(&web_client(), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let id = reg["client_id"].as_str().unwrap();
    assert!(id.starts_with("renamed-"), "{id}");
    assert!(
        reg["registration_client_uri"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/reg/{id}"))
    );
    let res = app.read(&reg, &rat(&reg)).await;
    assert_eq!(res.status(), StatusCode::OK);
    // On update the policy runs again but cannot move the client.
    let update = json!({"client_id": id, "redirect_uris": ["https://rp.example.com/cb"]});
    let updated: Value = app
        .update(&reg, &rat(&reg), &update)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(updated["client_id"], id);
}
