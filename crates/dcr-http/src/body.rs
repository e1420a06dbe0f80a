//! Reading the JSON object that a registration or update request carries.

use axum::http::{HeaderMap, header};
use dcr_core::RegistrationError;
use serde_json::{Map, Value};

/// Whether a `Content-Type` value is `application/json` (parameters allowed, case-insensitive).
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Parses a request body as a JSON object.
///
/// The body must come with `Content-Type: application/json` (an empty body without a
/// content type counts as `{}`); anything else is 400 `invalid_request` with a description
/// that says what is wrong. `what` names the request in messages ("registration request").
pub fn read_json_object(
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
) -> Result<Map<String, Value>, RegistrationError> {
    match headers.get(header::CONTENT_TYPE) {
        None if body.is_empty() => return Ok(Map::new()),
        None => {
            return Err(RegistrationError::InvalidRequest(format!(
                "the {what} must be sent with Content-Type: application/json"
            )));
        }
        Some(ct) if !ct.to_str().is_ok_and(is_json) => {
            return Err(RegistrationError::InvalidRequest(format!(
                "only application/json bodies are accepted (the {what} came as {:?})",
                String::from_utf8_lossy(ct.as_bytes())
            )));
        }
        Some(_) => {}
    }
    // Nesting is bounded before the body is parsed (the bound every stored value keeps).
    dcr_core::metadata::bounds::check_body_depth(body)?;
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        RegistrationError::InvalidRequest(format!("the {what} body is not valid JSON: {e}"))
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(RegistrationError::InvalidRequest(format!(
            "the {what} body must be a JSON object"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_ct(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    #[test]
    fn accepted_and_refused_bodies() {
        assert!(read_json_object(&with_ct("application/json"), b"{\"a\":1}", "x").is_ok());
        assert!(read_json_object(&with_ct("Application/JSON; charset=utf-8"), b"{}", "x").is_ok());
        assert!(
            read_json_object(&HeaderMap::new(), b"", "x")
                .unwrap()
                .is_empty()
        );
        for (ct, body) in [
            ("text/plain", &b"{}"[..]),
            ("application/json", b"[]"),
            ("application/json", b"null"),
            ("application/json", b"{"),
            ("application/merge-patch+json", b"{}"),
            ("application/json", b"\xff"),
        ] {
            let err = read_json_object(&with_ct(ct), body, "x").unwrap_err();
            assert_eq!(err.code(), "invalid_request", "{ct} {body:?}");
        }
        assert!(read_json_object(&HeaderMap::new(), b"{}", "x").is_err());
    }

    #[test]
    fn deep_members_are_refused_before_parsing() {
        let deep = format!("{{\"tenant\":{}1{}}}", "[".repeat(40), "]".repeat(40));
        let err = read_json_object(&with_ct("application/json"), deep.as_bytes(), "x").unwrap_err();
        assert_eq!(err.code(), "invalid_client_metadata");
        assert!(err.to_string().contains("tenant"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = read_json_object(&with_ct("application/json"), &body, "x");
        }
    }
}
