//! What a token request presents: parsing the `Authorization: Basic` header (RFC 6749
//! §2.3.1) and the form parameters into exactly one authentication method.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::AuthnError;
use crate::token::Secret;

/// `client_assertion_type` of RFC 7523 §2.2.
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest `Authorization` header value accepted (bytes).
const MAX_BASIC_HEADER: usize = 8192;

/// Standard base64, padding optional (some clients drop it).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The credentials of one token request, after parsing.
#[derive(Debug)]
pub(crate) enum Presented {
    /// `client_secret_basic`.
    Basic { client_id: String, secret: Secret },
    /// `client_secret_post`.
    Post { client_id: String, secret: Secret },
    /// `client_secret_jwt` or `private_key_jwt` (the key decides), with the form's client_id.
    Assertion {
        client_id: Option<String>,
        assertion: Secret,
    },
    /// `none`: a client id and nothing else.
    None { client_id: String },
}

/// Splits what the request carried into exactly one method.
pub(crate) fn parse(
    authorization: Option<&str>,
    params: &HashMap<String, String>,
    max_assertion_bytes: usize,
) -> Result<Presented, AuthnError> {
    let form_id = params.get("client_id").map(String::as_str);
    let form_secret = params.get("client_secret");
    let assertion = params.get("client_assertion");
    let assertion_type = params.get("client_assertion_type");
    let jwt = assertion.is_some() || assertion_type.is_some();
    let used: Vec<&str> = [
        (authorization.is_some(), "Authorization header"),
        (form_secret.is_some(), "client_secret parameter"),
        (jwt, "client_assertion parameter"),
    ]
    .into_iter()
    .filter_map(|(present, name)| present.then_some(name))
    .collect();
    if used.len() > 1 {
        return Err(AuthnError::MultipleMethods(used.join(" and ")));
    }
    if form_id.is_some_and(str::is_empty) {
        return Err(AuthnError::MalformedRequest("client_id is empty"));
    }
    if let Some(header) = authorization {
        let (client_id, secret) = parse_basic(header)?;
        if form_id.is_some_and(|id| id != client_id) {
            return Err(AuthnError::ClientIdMismatch);
        }
        return Ok(Presented::Basic { client_id, secret });
    }
    if let Some(secret) = form_secret {
        let client_id = form_id.ok_or(AuthnError::MalformedRequest(
            "client_secret was sent without client_id (client_secret_post needs both)",
        ))?;
        return Ok(Presented::Post {
            client_id: client_id.to_owned(),
            secret: Secret::new(secret.as_str()),
        });
    }
    if jwt {
        match assertion_type.map(String::as_str) {
            None => {
                return Err(AuthnError::MalformedRequest(
                    "client_assertion was sent without client_assertion_type",
                ));
            }
            Some(JWT_BEARER_ASSERTION_TYPE) => {}
            Some(_) => {
                return Err(AuthnError::MalformedRequest(
                    "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ));
            }
        }
        let assertion = assertion.ok_or(AuthnError::MalformedRequest(
            "client_assertion_type was sent without client_assertion",
        ))?;
        if assertion.len() > max_assertion_bytes {
            return Err(AuthnError::Assertion(format!(
                "it is longer than {max_assertion_bytes} bytes"
            )));
        }
        return Ok(Presented::Assertion {
            client_id: form_id.map(str::to_owned),
            assertion: Secret::new(assertion.as_str()),
        });
    }
    match form_id {
        Some(id) => Ok(Presented::None {
            client_id: id.to_owned(),
        }),
        None => Err(AuthnError::NoCredentials),
    }
}

/// RFC 6749 §2.3.1 and RFC 7617: `Basic base64(urlencode(id) ":" urlencode(secret))`.
pub(crate) fn parse_basic(header: &str) -> Result<(String, Secret), AuthnError> {
    if header.len() > MAX_BASIC_HEADER {
        return Err(AuthnError::MalformedBasic("the header is too long"));
    }
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthnError::UnsupportedScheme);
    }
    let encoded = rest.trim();
    if encoded.is_empty() {
        return Err(AuthnError::MalformedBasic("no credentials after Basic"));
    }
    let decoded = BASE64
        .decode(encoded)
        .map_err(|_| AuthnError::MalformedBasic("the credentials are not valid base64"))?;
    let decoded = String::from_utf8(decoded)
        .map_err(|_| AuthnError::MalformedBasic("the decoded credentials are not UTF-8"))?;
    let (id, secret) = decoded.split_once(':').ok_or(AuthnError::MalformedBasic(
        "the decoded credentials have no ':' between client id and secret",
    ))?;
    let id = form_decode(id).ok_or(AuthnError::MalformedBasic(
        "the client id is not valid form-urlencoded UTF-8",
    ))?;
    let secret = form_decode(secret).ok_or(AuthnError::MalformedBasic(
        "the client secret is not valid form-urlencoded UTF-8",
    ))?;
    if id.is_empty() {
        return Err(AuthnError::MalformedBasic("the client id is empty"));
    }
    Ok((id, Secret::new(secret)))
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a space, `%XX` a byte;
/// the bytes must be UTF-8. A `%` not followed by two hex digits stays as it is.
fn form_decode(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}
