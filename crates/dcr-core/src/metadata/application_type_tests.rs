//! Tests of `application_type` inference, through the whole validation pipeline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use super::super::{ClientMetadata, MetadataError, MetadataErrorKind, ServerMetadata, validate};

fn server(infer: bool) -> ServerMetadata {
    ServerMetadata {
        infer_application_type: infer,
        ..ServerMetadata::default()
    }
}

fn run(infer: bool, mut doc: Value) -> Result<ClientMetadata, MetadataError> {
    doc["client_id"] = json!("c1");
    validate(doc.as_object().cloned().unwrap(), &server(infer))
}

fn with_uris(infer: bool, uris: &[&str]) -> Result<ClientMetadata, MetadataError> {
    run(
        infer,
        json!({"redirect_uris": uris, "token_endpoint_auth_method": "none"}),
    )
}

const CURSOR: &str = "cursor://anysphere.cursor-mcp/oauth/callback";

#[test]
fn private_use_and_loopback_uris_make_a_native_client() {
    for uris in [
        &[CURSOR][..],
        &["http://127.0.0.1:33418/callback"],
        &["http://[::1]:8080/cb", "http://localhost/cb"],
        // RFC 8252 §7.1 recommends a reverse-domain scheme; it does not require one.
        &["myapp:/callback", "http://127.0.0.1/cb"],
    ] {
        let md = with_uris(true, uris).unwrap();
        assert_eq!(md.str("application_type"), Some("native"), "{uris:?}");
    }
}

#[test]
fn web_uris_make_a_web_client() {
    for uris in [
        &["https://app.example.com/cb"][..],
        &["https://app.example.com/cb", "http://127.0.0.1/cb"],
        &["http://app.example.com/cb"],
    ] {
        let md = with_uris(true, uris).unwrap();
        assert_eq!(md.str("application_type"), Some("web"), "{uris:?}");
    }
}

#[test]
fn without_the_option_the_default_stays_web() {
    let err = with_uris(false, &[CURSOR]).unwrap_err();
    assert_eq!(err.kind, MetadataErrorKind::InvalidRedirectUri);
    assert!(err.description.contains("for web clients"), "{err:?}");
    let md = with_uris(false, &["http://127.0.0.1:8080/cb"]).unwrap();
    assert_eq!(md.str("application_type"), Some("web"));
}

#[test]
fn a_sent_application_type_is_kept() {
    let md = run(
        true,
        json!({"application_type": "web", "redirect_uris": ["http://127.0.0.1/cb"]}),
    )
    .unwrap();
    assert_eq!(md.str("application_type"), Some("web"));
    // And its rules apply: a web client cannot use a private-use scheme.
    let err = run(
        true,
        json!({"application_type": "web", "redirect_uris": [CURSOR]}),
    )
    .unwrap_err();
    assert_eq!(err.kind, MetadataErrorKind::InvalidRedirectUri);
    // A native client may mix claimed https and private-use schemes (RFC 8252 §7.2).
    let md = run(
        true,
        json!({"application_type": "native", "redirect_uris": [CURSOR, "https://app.example.com/cb"]}),
    )
    .unwrap();
    assert_eq!(md.str("application_type"), Some("native"));
}

#[test]
fn no_redirect_uris_means_no_inference() {
    // A client that uses no redirect (no response types): nothing to infer from, the
    // default applies.
    let md = run(true, json!({"response_types": [], "grant_types": []})).unwrap();
    assert_eq!(md.str("application_type"), Some("web"));
    // Nor from redirect URIs that are not strings: the type check refuses them.
    let err = run(true, json!({"redirect_uris": [42]})).unwrap_err();
    assert!(err.description.contains("redirect_uris"), "{err:?}");
}

/// Inference never turns an invalid redirect URI into a valid one, with the option on or off.
#[test]
fn invalid_redirect_uris_stay_invalid() {
    // (redirect URIs, what the description says with inference on, and off: off, the client
    // is `web` and the first URI that is not http(s) is named).
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["javascript:alert(1)"],
            "javascript URI scheme",
            "javascript:alert(1)",
        ),
        (
            &["data:text/html,hi"],
            "data URI scheme",
            "data:text/html,hi",
        ),
        (
            &["file:///etc/passwd"],
            "file URI scheme",
            "file:///etc/passwd",
        ),
        (
            &[CURSOR, "javascript:alert(1)"],
            "javascript URI scheme",
            CURSOR,
        ),
        (
            &["cursor://anysphere.cursor-mcp/cb#frag"],
            "must not contain fragments",
            "must not contain fragments",
        ),
        (
            &["http://127.0.0.1/cb#frag"],
            "must not contain fragments",
            "must not contain fragments",
        ),
        (&["not a uri"], "valid absolute uris", "valid absolute uris"),
    ];
    for infer in [true, false] {
        for (uris, on, off) in cases {
            let says = if infer { on } else { off };
            let err = with_uris(infer, uris).unwrap_err();
            assert_eq!(
                err.kind,
                MetadataErrorKind::InvalidRedirectUri,
                "{infer} {uris:?}"
            );
            assert!(
                err.description.contains(says),
                "infer={infer} {uris:?}: {}",
                err.description
            );
        }
    }
}

#[test]
fn mixed_web_and_private_use_sets_are_refused() {
    let err = with_uris(true, &["https://app.example.com/cb", CURSOR]).unwrap_err();
    assert_eq!(err.kind, MetadataErrorKind::InvalidRedirectUri);
    assert!(
        err.description.contains("cannot be inferred")
            && err.description.contains("https://app.example.com/cb")
            && err.description.contains(CURSOR),
        "{}",
        err.description
    );
    let err = with_uris(false, &["https://app.example.com/cb", CURSOR]).unwrap_err();
    assert_eq!(err.kind, MetadataErrorKind::InvalidRedirectUri);
    assert!(err.description.contains("for web clients"), "{err:?}");
}

#[test]
fn non_loopback_http_is_refused_for_native_clients() {
    for infer in [true, false] {
        let err = run(
            infer,
            json!({"application_type": "native", "redirect_uris": ["http://app.example.com/cb"]}),
        )
        .unwrap_err();
        assert_eq!(err.kind, MetadataErrorKind::InvalidRedirectUri);
        assert!(err.description.contains("loopback"), "{}", err.description);
    }
    // Inferred: non-loopback http next to a private-use scheme is a mixed set.
    let err = with_uris(true, &["http://app.example.com/cb", CURSOR]).unwrap_err();
    assert!(err.description.contains("cannot be inferred"), "{err:?}");
}
