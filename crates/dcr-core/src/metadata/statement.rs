//! Software statements (RFC 7591 §2.3): a JWT, signed by a party the operator trusts, whose
//! claims are client metadata that take precedence over the request's plain members.
//!
//! Verification is pure crypto (`jsonwebtoken` with aws-lc-rs); only an issuer configured
//! with a `jwks_uri` needs the [`DocumentFetcher`].

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use url::Url;

use super::server::SoftwareStatementIssuer;
use super::{DocumentFetcher, MetadataError, ServerMetadata};

/// Clock skew tolerated on `iat` and `nbf`, in seconds.
const LEEWAY: i64 = 60;

/// Claims of the statement that are about the JWT, not the client: never merged.
const JWT_CLAIMS: &[&str] = &["iss", "sub", "aud", "exp", "iat", "nbf", "jti"];

/// Members only the server sets: a statement cannot set them either.
const SERVER_MEMBERS: &[&str] = &[
    "client_id",
    "client_secret",
    "client_id_issued_at",
    "client_secret_expires_at",
    "registration_access_token",
    "registration_client_uri",
    "software_statement",
];

fn invalid(description: impl Into<String>) -> MetadataError {
    MetadataError {
        kind: super::MetadataErrorKind::InvalidSoftwareStatement,
        description: description.into(),
    }
}

fn unapproved(description: impl Into<String>) -> MetadataError {
    MetadataError {
        kind: super::MetadataErrorKind::UnapprovedSoftwareStatement,
        description: description.into(),
    }
}

/// Decodes one base64url JSON part of a compact JWS.
fn json_part(part: Option<&str>, what: &str) -> Result<Map<String, Value>, MetadataError> {
    part.and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| match v {
            Value::Object(o) => Some(o),
            _ => None,
        })
        .ok_or_else(|| {
            invalid(format!(
                "software_statement is not a JWT: its {what} is not base64url-encoded JSON object"
            ))
        })
}

async fn issuer_keys(
    issuer: &SoftwareStatementIssuer,
    fetcher: Option<&dyn DocumentFetcher>,
) -> Result<JwkSet, MetadataError> {
    let set = match (&issuer.jwks, &issuer.jwks_uri) {
        (Some(jwks), _) => jwks.clone(),
        (None, Some(uri)) => {
            let fetcher = fetcher.ok_or_else(|| {
                invalid(format!(
                    "the keys of software statement issuer {} cannot be loaded (no fetcher configured)",
                    issuer.issuer
                ))
            })?;
            let url = Url::parse(uri).map_err(|_| {
                invalid(format!(
                    "the jwks_uri of software statement issuer {} is not a valid URL",
                    issuer.issuer
                ))
            })?;
            fetcher
                .fetch_json(&url, "software statement issuer jwks_uri")
                .await
                .map_err(|e| invalid(e.0))?
        }
        (None, None) => Value::Null,
    };
    serde_json::from_value(set).map_err(|_| {
        invalid(format!(
            "software statement issuer {} has no usable JWK Set configured",
            issuer.issuer
        ))
    })
}

/// Verifies `statement` against the trusted issuers and returns its claims.
///
/// Errors: `invalid_software_statement` when it is malformed, unsigned (`alg: none`), signed
/// with an algorithm the issuer does not use, badly signed, expired, not yet valid or too
/// old; `unapproved_software_statement` when its issuer is not trusted (or none is).
pub async fn verify_software_statement(
    statement: &str,
    server: &ServerMetadata,
    now: i64,
    fetcher: Option<&dyn DocumentFetcher>,
) -> Result<Map<String, Value>, MetadataError> {
    if server.software_statement_issuers.is_empty() {
        return Err(unapproved(
            "software statements are not accepted: this server trusts no software statement issuer",
        ));
    }
    let mut parts = statement.split('.');
    let header = json_part(parts.next(), "header")?;
    let unverified = json_part(parts.next(), "payload")?;
    if parts.next().is_none() || parts.next().is_some() {
        return Err(invalid(
            "software_statement must be a compact JWS with three parts (header.payload.signature)",
        ));
    }
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if alg_name.is_empty() || alg_name.eq_ignore_ascii_case("none") {
        return Err(invalid(
            "software_statement must be signed: alg \"none\" (or no alg) is refused",
        ));
    }
    let Some(iss) = unverified.get("iss").and_then(Value::as_str) else {
        return Err(invalid("software_statement must contain an iss claim"));
    };
    let Some(issuer) = server
        .software_statement_issuers
        .iter()
        .find(|i| i.issuer == iss)
    else {
        return Err(unapproved(format!(
            "software_statement issuer {iss:?} is not trusted by this server"
        )));
    };
    if alg_name.starts_with("HS") || !issuer.algorithms.iter().any(|a| a == alg_name) {
        return Err(invalid(format!(
            "software_statement alg {alg_name:?} is not accepted for issuer {iss:?} (accepted: {})",
            issuer.algorithms.join(", ")
        )));
    }
    let alg = Algorithm::from_str(alg_name).map_err(|_| {
        invalid(format!(
            "software_statement alg {alg_name:?} is not supported"
        ))
    })?;
    let keys = issuer_keys(issuer, fetcher).await?;
    let kid = header.get("kid").and_then(Value::as_str);

    // Make sure a crypto provider is selected even if feature unification enabled a second one.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let mut validation = Validation::new(alg);
    validation.set_required_spec_claims(&["iss"]);
    validation.set_issuer(&[iss]);
    validation.validate_aud = false;
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let mut verified = None;
    for jwk in keys
        .keys
        .iter()
        .filter(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
    {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        if let Ok(data) = jsonwebtoken::decode::<Map<String, Value>>(statement, &key, &validation) {
            verified = Some(data.claims);
            break;
        }
    }
    let Some(claims) = verified else {
        return Err(invalid(format!(
            "software_statement signature could not be verified with the keys of issuer {iss:?}"
        )));
    };

    let time = |name: &str| -> Result<Option<i64>, MetadataError> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| invalid(format!("software_statement {name} must be a number"))),
        }
    };
    if let Some(exp) = time("exp")?
        && exp <= now
    {
        return Err(invalid(
            "software_statement has expired (exp is in the past)",
        ));
    }
    if let Some(nbf) = time("nbf")?
        && nbf > now.saturating_add(LEEWAY)
    {
        return Err(invalid(
            "software_statement is not valid yet (nbf is in the future)",
        ));
    }
    let iat = time("iat")?;
    if let Some(iat) = iat
        && iat > now.saturating_add(LEEWAY)
    {
        return Err(invalid("software_statement iat is in the future"));
    }
    let max_age = i64::try_from(server.software_statement_max_age_seconds).unwrap_or(i64::MAX);
    if max_age > 0 {
        match iat {
            None => {
                return Err(invalid(
                    "software_statement must contain an iat claim (this server limits its age)",
                ));
            }
            Some(iat) if now.saturating_sub(iat) > max_age => {
                return Err(invalid(format!(
                    "software_statement is too old: issued more than {max_age} seconds ago"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(claims)
}

/// RFC 7591 §2.3: if `properties` carry a `software_statement`, verifies it and merges its
/// claims over the plain members (the statement wins). The statement itself stays in
/// `properties` and is returned unmodified in the response.
///
/// A server that trusts no issuer does not use software statements: it ignores one (RFC 7591
/// §3.1.1), dropping it so that it is neither stored nor echoed.
///
/// Call it on the raw request members, before secrets are decided and before policies.
pub async fn apply_software_statement(
    properties: &mut Map<String, Value>,
    server: &ServerMetadata,
    now: i64,
    fetcher: Option<&dyn DocumentFetcher>,
) -> Result<(), MetadataError> {
    if server.software_statement_issuers.is_empty() {
        properties.remove("software_statement");
        return Ok(());
    }
    let statement = match properties.get("software_statement") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => {
            return Err(invalid(
                "software_statement must be a JWT in compact serialization (a non-empty string)",
            ));
        }
    };
    let claims = verify_software_statement(&statement, server, now, fetcher).await?;
    for (k, v) in claims {
        if JWT_CLAIMS.contains(&k.as_str()) || SERVER_MEMBERS.contains(&k.as_str()) {
            continue;
        }
        properties.insert(k, v);
    }
    Ok(())
}
