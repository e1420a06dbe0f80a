//! Hostile metadata: URIs the parser would silently change, values nested too deep to be read
//! back, and inputs that exceed a policy engine's size limits (issue 12, items 4 to 6).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, dcr, spawn_with, spawn_with_files};

/// The ids `dcr clients list` prints for the store of a stopped server.
async fn stored_ids(app: TestApp) -> Vec<String> {
    let dir = app.stop().await;
    let config = dir.path().join("dcr.toml");
    let out = dcr(&["clients", "list", "--config", config.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn uris_the_parser_would_change_are_refused_and_nothing_is_stored() {
    let app = spawn_with("[storage]\nurl = \"sqlite://dcr.db\"\n").await;
    let cases = [
        (
            json!({"redirect_uris": ["https://a.example/cb\r\nSet-Cookie: x=1"]}),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            json!({"application_type": "native", "redirect_uris": ["http://local\nhost:8080/cb"]}),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            json!({"redirect_uris": [" https://a.example/cb"]}),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "logo_uri": "https://a.example/l\t.png"}),
            "invalid_client_metadata",
            "logo_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "tos_uri#fr": "https://a.example/tos fr"}),
            "invalid_client_metadata",
            "tos_uri#fr",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "jwks_uri": "https://a.example/../jwks"}),
            "invalid_client_metadata",
            "jwks_uri",
        ),
    ];
    for (body, code, member) in cases {
        let res = app.register(&body, None).await;
        let description = assert_error(res, StatusCode::BAD_REQUEST, code).await;
        assert!(
            description.starts_with(member),
            "{body}: {description} does not name {member}"
        );
        assert!(
            !description.contains('\r') && !description.contains('\n'),
            "the description echoes no raw control character: {description:?}"
        );
    }
    // The same URIs with nothing the parser would change are registered.
    let ok = app
        .register(
            &json!({"redirect_uris": ["HTTPS://A.example/cb"], "logo_uri": "https://a.example/l.png"}),
            None,
        )
        .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let ok: Value = ok.json().await.unwrap();
    assert_eq!(ok["redirect_uris"], json!(["HTTPS://A.example/cb"]));
    let ids = stored_ids(app).await;
    assert_eq!(
        ids,
        [ok["client_id"].as_str().unwrap()],
        "only one client stored"
    );
}

/// A policy that wraps the extra member `tenant` one level deeper.
const WRAP: &[(&str, &str)] = &[(
    "wrap.rhai",
    r#"if "tenant" in properties { properties.tenant = [properties.tenant]; }"#,
)];

const WRAP_CONFIG: &str = r#"
[storage]
url = "sqlite://dcr.db"
[registration]
initial_access_token = true
extra_metadata = ["tenant"]
[registration.policies]
wrap = "wrap.rhai"
"#;

/// `levels` nested arrays around a string.
fn nested(levels: usize) -> Value {
    (0..levels).fold(json!("acme"), |v, _| json!([v]))
}

#[tokio::test]
async fn a_value_nested_too_deep_to_read_back_is_refused_when_written() {
    let app = spawn_with_files(WRAP, WRAP_CONFIG).await;
    let token = app.mint(&["--policy", "wrap", "--max-uses", "10"]);
    // The issue's scenario: 126 levels from the client, 127 after the policy.
    let body = json!({"redirect_uris": ["https://a.example/cb"], "tenant": nested(126)});
    let res = app.register(&body, Some(&token)).await;
    let description = assert_error(res, StatusCode::BAD_REQUEST, "invalid_client_metadata").await;
    assert!(description.contains("tenant"), "{description}");
    // At the bound from the client, one level over it after the policy: refused after policies.
    let body = json!({"redirect_uris": ["https://a.example/cb"], "tenant": nested(32)});
    let res = app.register(&body, Some(&token)).await;
    let description = assert_error(res, StatusCode::BAD_REQUEST, "invalid_client_metadata").await;
    assert!(description.starts_with("tenant"), "{description}");
    // Within the bound after the policy: registered, and can be read, updated and deleted.
    let body = json!({"redirect_uris": ["https://a.example/cb"], "tenant": nested(31)});
    let res = app.register(&body, Some(&token)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let reg: Value = res.json().await.unwrap();
    assert_eq!(reg["tenant"], nested(32));
    let rat = reg["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.read(&reg, &rat).await.status(), StatusCode::OK);
    // An update that the policy would push over the bound is refused; the client stays readable.
    let update = json!({"client_id": reg["client_id"], "redirect_uris": ["https://a.example/cb"], "tenant": nested(32)});
    let res = app.update(&reg, &rat, &update).await;
    let description = assert_error(res, StatusCode::BAD_REQUEST, "invalid_client_metadata").await;
    assert!(description.starts_with("tenant"), "{description}");
    assert_eq!(app.read(&reg, &rat).await.status(), StatusCode::OK);
    assert_eq!(
        app.delete(&reg, &rat).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_body_nested_beyond_the_bound_is_refused_naming_the_member() {
    let app = spawn_with("").await;
    let body = json!({"redirect_uris": ["https://a.example/cb"], "software_id": "x", "deep": {"a": nested(40)}});
    let res = app.register(&body, None).await;
    let description = assert_error(res, StatusCode::BAD_REQUEST, "invalid_client_metadata").await;
    assert!(description.starts_with("deep"), "{description}");
}

/// The `partner` policy exactly as README.md shows it.
fn readme_partner_policy() -> String {
    let readme = include_str!("../../../../README.md");
    let after = readme
        .split("`policies/partner.rhai`:")
        .nth(1)
        .expect("README shows policies/partner.rhai");
    let start = after.find("```rhai\n").expect("a rhai block") + "```rhai\n".len();
    let len = after[start..].find("```").expect("the block ends");
    after[start..start + len].to_owned()
}

#[tokio::test]
async fn large_inputs_within_the_body_limit_are_never_a_server_error_under_the_readme_policy() {
    let policy = readme_partner_policy();
    let app = spawn_with_files(
        &[("partner.rhai", policy.as_str())],
        "[storage]\nurl = \"sqlite://dcr.db\"\n[registration]\ninitial_access_token = true\n[registration.policies]\npartner = \"partner.rhai\"\n",
    )
    .await;
    let token = app.mint(&["--policy", "partner", "--max-uses", "10"]);
    let limit = 56 * 1024;

    // 4,100 unknown members.
    let mut unknown = json!({"redirect_uris": ["https://acme.example/cb"]});
    for i in 0..4100 {
        unknown[format!("x{i}")] = json!(1);
    }
    // 5,000 contacts.
    let contacts: Vec<String> = (0..5000).map(|i| format!("{i:x}@b.c")).collect();
    let many_contacts = json!({"redirect_uris": ["https://acme.example/cb"], "contacts": contacts});

    for body in [unknown, many_contacts] {
        assert!(serde_json::to_vec(&body).unwrap().len() < limit);
        let res = app.register(&body, Some(&token)).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let reg: Value = res.json().await.unwrap();
        assert_eq!(reg["client_name"], "Partner app");
        assert!(reg.get("x1").is_none());
        if let Some(contacts) = body.get("contacts") {
            assert_eq!(&reg["contacts"], contacts);
        }
    }
}
