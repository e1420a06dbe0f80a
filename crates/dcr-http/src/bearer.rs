//! RFC 6750 bearer token extraction for the registration endpoints.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use dcr_core::RegistrationError;
use dcr_core::error::TokenProblem;

use crate::AppState;
use crate::error::ApiError;

/// Whether a query string carries an `access_token` parameter.
fn query_has_access_token(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some("access_token"))
    })
}

/// Whether `token` is an RFC 6750 `b64token`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// The bearer token of a request, from its `Authorization` header.
///
/// - no token anywhere: `Ok(None)`;
/// - `Authorization: Bearer <b64token>` (scheme case-insensitive): `Ok(Some(token))`;
/// - a malformed `Bearer` header, several `Authorization` headers, or a header and an
///   `access_token` query parameter together: 400 `invalid_request`;
/// - another scheme, or a token only in the query string (not accepted here): 401 `invalid_token`.
pub fn bearer_token<'a>(
    headers: &'a HeaderMap,
    query: Option<&str>,
) -> Result<Option<&'a str>, RegistrationError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(RegistrationError::InvalidRequest(
            "only one Authorization header may be sent".into(),
        ));
    }
    let in_query = query_has_access_token(query);
    let Some(value) = first else {
        return if in_query {
            Err(RegistrationError::InvalidToken(TokenProblem::InQuery))
        } else {
            Ok(None)
        };
    };
    if in_query {
        return Err(RegistrationError::InvalidRequest(
            "the access token must be sent in one place only (Authorization header or query string)".into(),
        ));
    }
    let value = value.to_str().map_err(|_| {
        RegistrationError::InvalidRequest("the Authorization header must be visible ASCII".into())
    })?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(RegistrationError::InvalidToken(TokenProblem::WrongScheme));
    }
    if !is_b64token(token) {
        return Err(RegistrationError::InvalidRequest(
            "the Authorization header must be \"Bearer\", one space, then the token".into(),
        ));
    }
    Ok(Some(token))
}

/// The bearer token of a registration request, checked as [`bearer_token`] checks it.
///
/// Extracting it has no side effect: a refusal is an [`ApiError`] (400 `invalid_request` or
/// 401 `invalid_token` with its challenge) that handlers take as `Result<BearerToken, ApiError>`
/// to audit it, rate-limit it or ignore it (open registration) before answering.
#[derive(Debug)]
pub(crate) struct BearerToken(Option<HeaderValue>);

impl BearerToken {
    /// The token, if the request carries one.
    pub(crate) fn token(&self) -> Option<&str> {
        // The value was checked to be `Bearer <b64token>` when extracted.
        let value = self.0.as_ref()?.to_str().ok()?;
        value.split_once(' ').map(|(_, token)| token)
    }
}

impl FromRequestParts<AppState> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer_token(&parts.headers, parts.uri.query()) {
            // A present token means exactly one `Authorization` header, the one checked.
            Ok(Some(_)) => Ok(Self(parts.headers.get(header::AUTHORIZATION).cloned())),
            Ok(None) => Ok(Self(None)),
            Err(e) => Err(state.fail(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(bearer_token(&headers(&[]), None).unwrap(), None);
        assert_eq!(
            bearer_token(&headers(&["Bearer abc"]), None).unwrap(),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&["bearer a-b_c.d~e+f/g=="]), None).unwrap(),
            Some("a-b_c.d~e+f/g==")
        );
    }

    #[test]
    fn refused_forms() {
        let code = |h: &[&str], q: Option<&str>| bearer_token(&headers(h), q).unwrap_err().code();
        assert_eq!(code(&["Bearer"], None), "invalid_request");
        assert_eq!(code(&["Bearer  x"], None), "invalid_request");
        assert_eq!(code(&["Bearer a b"], None), "invalid_request");
        assert_eq!(code(&["Bearer a", "Bearer b"], None), "invalid_request");
        assert_eq!(code(&["Basic dXNlcjpwYXNz"], None), "invalid_token");
        assert_eq!(code(&["DPoP abc"], None), "invalid_token");
        assert_eq!(code(&[], Some("access_token=abc")), "invalid_token");
        assert_eq!(
            code(&["Bearer a"], Some("x=1&access_token=abc")),
            "invalid_request"
        );
        assert!(
            bearer_token(&headers(&[]), Some("x=access_token"))
                .unwrap()
                .is_none()
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(value in "\\PC{0,64}", query in proptest::option::of("\\PC{0,32}")) {
            if let Ok(v) = HeaderValue::from_str(&value) {
                let mut h = HeaderMap::new();
                h.insert(header::AUTHORIZATION, v);
                let _ = bearer_token(&h, query.as_deref());
            }
        }
    }
}
