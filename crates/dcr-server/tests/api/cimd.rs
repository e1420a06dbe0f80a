//! Client ID Metadata Documents end to end: documents published by a real HTTPS server on
//! loopback (test CA, `[fetch] extra_root_certificates`), resolved through the admin
//! listener over HTTP and through the library.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cimd_harness::{ADMIN_TOKEN, claude_code, segment, spawn_cimd, spawn_cimd_with, vscode};
use crate::cimd_origin::{Origin, Served};

const CLAUDE: &str = "/oauth/claude-code-client-metadata";
const VSCODE: &str = "/oauth/client-metadata.json";

#[tokio::test]
async fn the_shapes_of_claude_code_and_vs_code_resolve_through_the_admin_api() {
    let origin = Origin::start().await;
    origin.serve(
        CLAUDE,
        Served::json(&claude_code(&origin.url(CLAUDE)), None),
    );
    origin.serve(VSCODE, Served::json(&vscode(&origin.url(VSCODE)), None));
    let app = spawn_cimd(&origin, "").await;

    let (status, body) = app.lookup(&origin.url(CLAUDE)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["client_id"], origin.url(CLAUDE));
    assert_eq!(body["source"], "metadata_document");
    let md = &body["metadata"];
    assert_eq!(md["client_name"], "Claude Code");
    assert_eq!(
        md["application_type"], "native",
        "loopback-only: a native client"
    );
    assert_eq!(md["token_endpoint_auth_method"], "none");
    assert!(md.get("client_secret").is_none());

    let (status, body) = app.lookup(&origin.url(VSCODE)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["metadata"]["client_name"], "Visual Studio Code");

    // Discovery says so; the admin API is not on the public listener.
    let disco: Value = app
        .http
        .get(format!(
            "http://{}/.well-known/oauth-authorization-server",
            app.addr
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(disco["client_id_metadata_document_supported"], true);
    let public = app
        .http
        .get(format!(
            "http://{}/clients/{}",
            app.addr,
            segment(&origin.url(CLAUDE))
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn discovery_is_silent_when_documents_are_off() {
    let app = crate::helpers::spawn_app().await;
    let disco: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(disco.get("client_id_metadata_document_supported").is_none());
}

#[tokio::test]
async fn registered_clients_resolve_without_their_secret() {
    let origin = Origin::start().await;
    let app = spawn_cimd(&origin, "").await;
    let reg: Value = app
        .http
        .post(format!("http://{}/reg", app.addr))
        .json(&json!({"redirect_uris": ["https://app.example/cb"], "client_name": "Reg"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = reg["client_id"].as_str().unwrap();
    assert!(reg["client_secret"].is_string());
    let (status, body) = app.lookup(id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["source"], "registration");
    assert_eq!(body["metadata"]["client_name"], "Reg");
    assert!(body["metadata"].get("client_secret").is_none());
    assert!(body["metadata"].get("client_secret_expires_at").is_none());
    let (status, body) = app.lookup("no-such-client").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "invalid_client");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("no client is registered")
    );
}

#[tokio::test]
async fn max_age_is_honoured_and_clamped() {
    let origin = Origin::start().await;
    let url = origin.url("/c.json");
    origin.serve(
        "/c.json",
        Served::json(&claude_code(&url), Some("max-age=2")),
    );
    let long = origin.url("/long.json");
    origin.serve(
        "/long.json",
        Served::json(&claude_code(&long), Some("max-age=999999")),
    );
    let nostore = origin.url("/nostore.json");
    origin.serve(
        "/nostore.json",
        Served::json(&claude_code(&nostore), Some("no-store")),
    );
    let app = spawn_cimd(&origin, "cache_min_seconds = 1\ncache_max_seconds = 3").await;

    for _ in 0..3 {
        assert_eq!(app.lookup(&url).await.0, StatusCode::OK);
        assert_eq!(app.lookup(&long).await.0, StatusCode::OK);
        assert_eq!(app.lookup(&nostore).await.0, StatusCode::OK);
    }
    assert_eq!(origin.hits("/c.json"), 1, "no second fetch inside max-age");
    assert_eq!(origin.hits("/long.json"), 1);
    assert_eq!(
        origin.hits("/nostore.json"),
        1,
        "cache_min_seconds is a floor"
    );
    tokio::time::sleep(Duration::from_millis(3_300)).await;
    assert_eq!(app.lookup(&url).await.0, StatusCode::OK);
    assert_eq!(app.lookup(&long).await.0, StatusCode::OK);
    assert_eq!(origin.hits("/c.json"), 2, "refetched after max-age");
    assert_eq!(
        origin.hits("/long.json"),
        2,
        "max-age clamped to cache_max_seconds"
    );
}

#[tokio::test]
async fn concurrent_resolutions_cause_one_fetch() {
    let origin = Origin::start().await;
    let url = origin.url("/slow.json");
    let mut served = Served::json(&claude_code(&url), Some("max-age=600"));
    served.delay = Some(Duration::from_millis(300));
    origin.serve("/slow.json", served);
    let app = Arc::new(spawn_cimd(&origin, "").await);
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let app = app.clone();
            let url = url.clone();
            tokio::spawn(async move { app.lookup(&url).await.0 })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(origin.hits("/slow.json"), 1);
}

/// Every bad document is a clean 404 naming the problem, and none is cached.
#[tokio::test]
async fn bad_documents_are_refused_precisely_and_never_cached() {
    let origin = Origin::start().await;
    let app = spawn_cimd(&origin, "max_document_bytes = 512\nhost_fetch_burst = 1000").await;
    let doc = |path: &str| claude_code(&origin.url(path));
    let with = |path: &str, k: &str, v: Value| {
        let mut d = doc(path);
        d[k] = v;
        Served::json(&d, Some("max-age=600"))
    };
    let raw = |status: u16, ctype: &str, body: &[u8]| Served {
        status,
        headers: vec![("content-type".into(), ctype.into())],
        body: body.to_vec(),
        delay: None,
    };
    let mut redirect = raw(302, "application/json", b"{}");
    redirect
        .headers
        .push(("location".into(), origin.url("/elsewhere")));
    let cases: Vec<(&str, Served, &str)> = vec![
        ("/s404", raw(404, "application/json", b"{}"), "HTTP 404"),
        ("/s500", raw(500, "application/json", b"{}"), "HTTP 500"),
        ("/s302", redirect, "redirects are not followed"),
        (
            "/big",
            raw(200, "application/json", &[b' '; 2048]),
            "larger than 512 bytes",
        ),
        (
            "/html",
            raw(200, "text/html", b"<html/>"),
            "expected application/json",
        ),
        (
            "/notjson",
            raw(200, "application/json", b"{nope"),
            "not valid JSON",
        ),
        (
            "/array",
            raw(200, "application/json", b"[1,2]"),
            "not a JSON object",
        ),
        (
            "/mismatch",
            Served::json(&claude_code("https://other.example/x"), None),
            "does not equal",
        ),
        (
            "/secret",
            with("/secret", "client_secret", json!("s3cret")),
            "client_secret",
        ),
        (
            "/basic",
            with(
                "/basic",
                "token_endpoint_auth_method",
                json!("client_secret_basic"),
            ),
            "shared secret",
        ),
        (
            "/badredirect",
            with(
                "/badredirect",
                "redirect_uris",
                json!(["javascript:alert(1)"]),
            ),
            "redirect_uris",
        ),
        (
            "/badgrant",
            with("/badgrant", "grant_types", json!(["password"])),
            "grant_types",
        ),
        (
            "/httplogo",
            with("/httplogo", "logo_uri", json!("http://a.example/l.png")),
            "logo_uri",
        ),
    ];
    for (path, served, words) in cases {
        origin.serve(path, served);
        for round in 1..=2 {
            let (status, body) = app.lookup(&origin.url(path)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
            assert_eq!(body["error"], "invalid_client", "{path}");
            let d = body["error_description"].as_str().unwrap();
            assert!(d.contains(words), "{path}: {d}");
            assert_eq!(origin.hits(path), round, "{path}: failures are not cached");
        }
    }
    // Unreachable: nothing listens there.
    let (status, body) = app.lookup("https://127.0.0.1:9/x.json").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("could not be fetched"),
        "{body}"
    );
    // Once fixed, the document resolves.
    origin.serve("/secret", Served::json(&doc("/secret"), None));
    assert_eq!(app.lookup(&origin.url("/secret")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn host_rules_policies_and_allow_client_scripts_are_applied() {
    let origin = Origin::start().await;
    let url = origin.url("/c.json");
    origin.serve("/c.json", Served::json(&claude_code(&url), None));
    let evil = origin.url("/evil.json");
    let mut evil_doc = claude_code(&evil);
    evil_doc["client_name"] = json!("Evil");
    origin.serve("/evil.json", Served::json(&evil_doc, None));

    let denied = spawn_cimd(&origin, "denied_hosts = [\"127.0.0.*\"]").await;
    let (status, body) = denied.lookup(&url).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("denied_hosts"),
        "{body}"
    );
    let allowed = spawn_cimd(&origin, "allowed_hosts = [\"*.example.com\"]").await;
    let (status, body) = allowed.lookup(&url).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("allowed_hosts"),
        "{body}"
    );
    assert_eq!(
        origin.hits("/c.json"),
        0,
        "hosts are checked before any fetch"
    );

    let app = spawn_cimd_with(
        &origin,
        "policies = [\"brand\"]\nallow_client = \"allow_client.rhai\"\nallow_fetch = \"allow_fetch.rhai\"",
        "[registration]\ninitial_access_token = true\n[registration.policies]\nbrand = \"brand.rhai\"\n",
        &[
            ("brand.rhai", "properties.client_name = properties.client_name + \" (via dcr)\";\nproperties.tos_uri = \"https://tos.example/\";"),
            ("allow_client.rhai", "!client.client_name.starts_with(\"Evil\")"),
            ("allow_fetch.rhai", "!url.ends_with(\"/never.json\")"),
        ],
        true,
    )
    .await;
    let (status, body) = app.lookup(&url).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["metadata"]["client_name"], "Claude Code (via dcr)");
    assert_eq!(body["metadata"]["tos_uri"], "https://tos.example/");
    let (status, body) = app.lookup(&evil).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("allow_client"),
        "{body}"
    );
    // allow_client runs on cache hits too.
    assert_eq!(app.lookup(&evil).await.0, StatusCode::NOT_FOUND);
    assert_eq!(origin.hits("/evil.json"), 1);
    let (status, body) = app.lookup(&origin.url("/never.json")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("allow_fetch"),
        "{body}"
    );
    assert_eq!(origin.hits("/never.json"), 0);
}

#[tokio::test]
async fn a_flood_of_urls_on_one_host_causes_a_bounded_number_of_fetches() {
    let origin = Origin::start().await;
    for i in 0..12 {
        let path = format!("/flood/{i}.json");
        origin.serve(&path, Served::json(&claude_code(&origin.url(&path)), None));
    }
    let app = spawn_cimd(
        &origin,
        "host_fetch_burst = 3\nhost_fetch_per_second = 0.001",
    )
    .await;
    let mut limited = 0;
    for i in 0..12 {
        let (status, body) = app.lookup(&origin.url(&format!("/flood/{i}.json"))).await;
        if status == StatusCode::NOT_FOUND {
            assert!(
                body["error_description"]
                    .as_str()
                    .unwrap()
                    .contains("too many"),
                "{body}"
            );
            limited += 1;
        }
    }
    let fetched: usize = (0..12)
        .map(|i| origin.hits(&format!("/flood/{i}.json")))
        .sum();
    assert_eq!(fetched, 3);
    assert_eq!(limited, 9);
}

#[tokio::test]
async fn a_changed_document_is_reported_once() {
    let origin = Origin::start().await;
    let url = origin.url("/changing.json");
    origin.serve(
        "/changing.json",
        Served::json(&claude_code(&url), Some("max-age=1")),
    );
    let app = spawn_cimd(&origin, "cache_min_seconds = 1").await;
    let metric = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("dcr_cimd_document_changes_total"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let scrape = || async {
        app.http
            .get(format!("http://{}/metrics", app.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(app.lookup(&url).await.0, StatusCode::OK);
    let before = metric(&scrape().await);
    let mut changed = claude_code(&url);
    changed["redirect_uris"] = json!(["http://127.0.0.1:7777/callback"]);
    origin.serve("/changing.json", Served::json(&changed, Some("max-age=1")));
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let (status, body) = app.lookup(&url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["metadata"]["redirect_uris"],
        json!(["http://127.0.0.1:7777/callback"])
    );
    assert_eq!(origin.hits("/changing.json"), 2);
    assert!(metric(&scrape().await) >= before + 1.0);
}

#[tokio::test]
async fn the_admin_api_refuses_without_its_token_and_survives_junk() {
    let origin = Origin::start().await;
    let app = spawn_cimd_with(&origin, "", "", &[], false).await;
    let id = segment("https://claude.ai/oauth/claude-code-client-metadata");
    for token in [None, Some("wrong"), Some(&ADMIN_TOKEN[1..])] {
        let (status, body) = app.lookup_raw(&id, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(body["error"], "invalid_token");
    }
    let basic = app
        .http
        .get(format!("http://{}/clients/{id}", app.admin))
        .basic_auth("admin", Some(ADMIN_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    for (raw, words) in [
        ("%FF%FE", "UTF-8"),
        (
            "https%3A%2F%2F169.254.169.254%2Flatest%2Fmeta-data",
            "not a public",
        ),
        ("https%3A%2F%2F127.0.0.1%2Fx.json", "not a public"),
        ("https%3A%2F%2F10.0.0.1%3A443%2Fx.json", "not a public"),
        ("https%3A%2F%2Fa.example%2Fx%00y", "control character"),
        ("https%3A%2F%2Fa.example%2Fx%0Ay", "control character"),
        ("https%3A%2F%2Fa.example%2F..%2Fx", ". or .."),
        ("https%3A%2F%2Fa.example%2Fx%23frag", "fragment"),
        ("https%3A%2F%2Fu%40a.example%2Fx", "user information"),
        ("https%3A%2F%2Fa.example", "path"),
        ("%20", "no client"),
        ("a%2Fb", "no client"),
    ] {
        let (status, body) = app.lookup_raw(raw, Some(ADMIN_TOKEN)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{raw}: {body}");
        assert_eq!(body["error"], "invalid_client", "{raw}");
        let d = body["error_description"].as_str().unwrap();
        assert!(d.contains(words), "{raw}: {d}");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let res = app
            .http
            .get(format!("http://{}{path}", app.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn the_library_resolves_through_the_guarded_fetcher() {
    use dcr_core::cimd::{CimdSettings, DocumentResolver};
    use dcr_core::resolve::{ClientResolver, ClientSource};

    let origin = Origin::start().await;
    let url = origin.url(CLAUDE);
    origin.serve(
        CLAUDE,
        Served::json(&claude_code(&url), Some("max-age=600")),
    );
    let fetcher = dcr_fetch::Fetcher::with_root_certificates(
        dcr_fetch::FetcherConfig {
            allow_loopback_for_tests: true,
            ..Default::default()
        },
        &[origin.ca_pem.clone().into_bytes()],
    )
    .unwrap();
    let registrar = dcr_core::Registrar::builder(
        Arc::new(dcr_core::store::MemoryStore::new()),
        dcr_core::metadata::ServerMetadata::default(),
        dcr_core::settings::RegistrarSettings::new("https://as.example"),
    )
    .build()
    .unwrap();
    let documents = DocumentResolver::builder(
        registrar.clone(),
        Arc::new(fetcher),
        CimdSettings::default(),
    )
    .build()
    .unwrap();
    let resolver = ClientResolver::new(registrar, Some(documents));
    let client = resolver.resolve(&url).await.unwrap();
    assert_eq!(client.source, ClientSource::MetadataDocument);
    assert_eq!(client.metadata.str("client_name"), Some("Claude Code"));
    resolver.resolve(&url).await.unwrap();
    assert_eq!(origin.hits(CLAUDE), 1);

    // Without the test CA, the origin's certificate is not trusted.
    let untrusting = dcr_fetch::Fetcher::new(dcr_fetch::FetcherConfig {
        allow_loopback_for_tests: true,
        ..Default::default()
    })
    .unwrap();
    let err = dcr_core::cimd::MetadataDocumentFetcher::fetch_document(
        &untrusting,
        &url::Url::parse(&url).unwrap(),
        5120,
    )
    .await
    .unwrap_err();
    assert!(err.0.contains("could not be fetched"), "{err}");
}
