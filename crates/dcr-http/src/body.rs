//! Reading the JSON object that a registration or update request carries.

use std::marker::PhantomData;

use axum::body::to_bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use dcr_core::RegistrationError;
use serde_json::{Map, Value};

use crate::AppState;
use crate::error::ApiError;

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
    // Text is checked as UTF-8 once, as a whole, rather than string by string by the parser;
    // other bytes go to the parser as they are, for its error.
    let parsed = match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    };
    let value: Value = parsed.map_err(|e| {
        RegistrationError::InvalidRequest(format!("the {what} body is not valid JSON: {e}"))
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(RegistrationError::InvalidRequest(format!(
            "the {what} body must be a JSON object"
        ))),
    }
}

/// Which request a [`JsonObject`] body belongs to, as its error messages name it.
pub(crate) trait BodyOf {
    /// The request, as messages name it ("registration request").
    const WHAT: &'static str;
}

/// The body of an RFC 7591 §3.1 registration request.
pub(crate) struct Registration;

impl BodyOf for Registration {
    const WHAT: &'static str = "registration request";
}

/// The body of an RFC 7592 §2.2 client update request.
pub(crate) struct ClientUpdate;

impl BodyOf for ClientUpdate {
    const WHAT: &'static str = "client update request";
}

/// The JSON object a request carries, read as [`read_json_object`] reads it, within
/// [`HttpOptions::body_limit`](crate::HttpOptions::body_limit).
///
/// A refusal is a 400 `invalid_request` (`invalid_client_metadata` for nesting too deep)
/// [`ApiError`]; handlers take `Result<JsonObject<_>, ApiError>` to audit it.
pub(crate) struct JsonObject<B>(pub(crate) Map<String, Value>, pub(crate) PhantomData<B>);

impl<B: BodyOf> FromRequest<AppState> for JsonObject<B> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let limit = state.options.body_limit;
        let bytes = to_bytes(body, limit).await.map_err(|_| {
            state.fail(RegistrationError::InvalidRequest(format!(
                "the {} body could not be read or is larger than {limit} bytes",
                B::WHAT
            )))
        })?;
        read_json_object(&parts.headers, &bytes, B::WHAT)
            .map(|map| Self(map, PhantomData))
            .map_err(|e| state.fail(e))
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
    fn parse_errors_are_the_parsers_errors() {
        for body in [
            &b"{"[..],
            b"{\"a\":}",
            b"{\"a\":\"\xff\"}",
            b"{\"a\":1,}",
            b"{\"a\":\"\\u12\"}",
            b"{} x",
        ] {
            let err = read_json_object(&with_ct("application/json"), body, "x").unwrap_err();
            let parser = serde_json::from_slice::<Value>(body).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid_request: the x body is not valid JSON: {parser}"),
                "{body:?}"
            );
        }
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
