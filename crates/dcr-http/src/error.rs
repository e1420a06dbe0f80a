use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dcr_core::RegistrationError;
use dcr_core::error::TokenProblem;
use serde_json::json;

/// A [`RegistrationError`] on its way to the wire, with the realm for `WWW-Authenticate`.
#[derive(Debug)]
pub struct ApiError {
    /// The error.
    pub error: RegistrationError,
    /// The issuer, used as the `realm` of 401 challenges.
    pub realm: String,
}

impl ApiError {
    /// Wraps `error` for the issuer `realm`.
    pub fn new(error: RegistrationError, realm: &str) -> Self {
        Self {
            error,
            realm: realm.to_owned(),
        }
    }

    /// The HTTP status of the error.
    pub fn status(&self) -> StatusCode {
        match self.error {
            RegistrationError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            _ if self.error.is_server_error() => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Quotes a value for an auth-param (RFC 9110 §5.6.4).
fn quoted(value: &str) -> String {
    let escaped: String = value
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| {
            if c == '"' || c == '\\' {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect();
    format!("\"{escaped}\"")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Only the response: the refusal was logged and counted where it was audited
        // (`dcr_core::audit`).
        let status = self.status();
        let body =
            json!({ "error": self.error.code(), "error_description": self.error.description() });
        let mut response = (status, Json(body)).into_response();
        if let RegistrationError::InvalidToken(problem) = &self.error {
            let challenge = match problem {
                TokenProblem::Missing => format!("Bearer realm={}", quoted(&self.realm)),
                other => format!(
                    "Bearer realm={}, error=\"invalid_token\", error_description={}",
                    quoted(&self.realm),
                    quoted(other.description())
                ),
            };
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turning_an_error_into_a_response_counts_nothing() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            for error in [
                RegistrationError::InvalidRedirectUri("x".into()),
                RegistrationError::server("db down"),
            ] {
                let status = ApiError::new(error, "r").into_response().status();
                assert_ne!(status, StatusCode::OK);
            }
        });
        let rendered = handle.render();
        assert!(!rendered.contains("dcr_rejections_total"), "{rendered}");
    }

    #[test]
    fn statuses_and_challenges() {
        let e = ApiError::new(
            RegistrationError::InvalidToken(TokenProblem::Missing),
            "http://x",
        );
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        let r = e.into_response();
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"http://x\""
        );
        let r = ApiError::new(
            RegistrationError::InvalidToken(TokenProblem::Unknown),
            "a\"b",
        )
        .into_response();
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"a\\\"b\", error=\"invalid_token\", error_description=\"invalid token provided\""
        );
        let r = ApiError::new(RegistrationError::InvalidClientMetadata("x".into()), "r")
            .into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(
            ApiError::new(RegistrationError::server("db down"), "r").status(),
            500
        );
    }
}
