//! Client assertions (RFC 7523 §3, RFC 7521 §4.2): `client_secret_jwt` (HMAC with the
//! client's secret) and `private_key_jwt` (the client's public keys). Each method has its own
//! algorithms and its own kind of key, so a public key can never serve as an HMAC secret.

use std::borrow::Borrow;
use std::str::FromStr as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use super::AuthnError;
use super::jwks::Key;

/// The longest `jti` accepted (it is stored).
const MAX_JTI: usize = 256;
/// The most keys tried for an assertion without a `kid`.
const MAX_KEYS_TRIED: usize = 8;

/// Which assertion method is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JwtMethod {
    ClientSecret,
    PrivateKey,
}

/// An assertion's header and claims, read before its signature is checked.
#[derive(Debug)]
pub(crate) struct Peeked {
    pub(crate) alg: String,
    pub(crate) typ: Option<String>,
    pub(crate) kid: Option<String>,
    pub(crate) claims: Map<String, Value>,
}

fn not_jwt(why: &str) -> AuthnError {
    AuthnError::Assertion(format!("it is not a signed JWT ({why})"))
}

/// Reads the header and claims of a compact JWS without verifying it.
pub(crate) fn peek(assertion: &str) -> Result<Peeked, AuthnError> {
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 {
        return Err(not_jwt(
            "expected three base64url parts separated by '.'; encrypted JWTs are not accepted",
        ));
    }
    let json = |part: &str, what: &'static str| -> Result<Map<String, Value>, AuthnError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| not_jwt(&format!("its {what} is not base64url")))?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(not_jwt(&format!("its {what} is not a JSON object"))),
        }
    };
    let header = json(parts[0], "header")?;
    let claims = json(parts[1], "payload")?;
    if parts[2].is_empty() {
        return Err(not_jwt("it has no signature"));
    }
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.clone(),
        _ => return Err(not_jwt("its header has no alg")),
    };
    let text = |key: &str| -> Result<Option<String>, AuthnError> {
        match header.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(AuthnError::Assertion(format!(
                "its header member {key} is not a string"
            ))),
        }
    };
    Ok(Peeked {
        typ: text("typ")?,
        kid: text("kid")?,
        alg,
        claims,
    })
}

/// The assertion's signing algorithm, if this method accepts it.
pub(crate) fn check_alg(
    method: JwtMethod,
    peeked: &Peeked,
    registered: Option<&str>,
) -> Result<Algorithm, AuthnError> {
    if peeked.alg.eq_ignore_ascii_case("none") {
        return Err(AuthnError::Assertion(
            "alg none is never accepted: the assertion must be signed".into(),
        ));
    }
    if let Some(typ) = &peeked.typ
        && !typ.eq_ignore_ascii_case("JWT")
        && !typ.eq_ignore_ascii_case("client-authentication+jwt")
    {
        return Err(AuthnError::Assertion(
            "its typ must be absent, JWT or client-authentication+jwt".into(),
        ));
    }
    let (allowed, names): (&[Algorithm], &str) = match method {
        JwtMethod::ClientSecret => (
            &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
            "client_secret_jwt accepts HS256, HS384 and HS512",
        ),
        JwtMethod::PrivateKey => (
            &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
                Algorithm::ES256,
                Algorithm::ES384,
                Algorithm::EdDSA,
            ],
            "private_key_jwt accepts RS256/384/512, PS256/384/512, ES256, ES384 and EdDSA",
        ),
    };
    let alg = Algorithm::from_str(&peeked.alg)
        .ok()
        .filter(|a| allowed.contains(a))
        .ok_or_else(|| {
            AuthnError::Assertion(format!("its alg is not accepted for this client ({names})"))
        })?;
    if let Some(registered) = registered
        && registered != peeked.alg
    {
        return Err(AuthnError::Assertion(format!(
            "its alg does not match the client's token_endpoint_auth_signing_alg {registered}"
        )));
    }
    Ok(alg)
}

/// Checks the signature alone: the header and claims were read by [`peek`] and are checked by
/// [`check_alg`] and [`check_claims`] (against the injected clock), so they are not decoded
/// again here.
fn verify_with(assertion: &str, key: &DecodingKey, alg: Algorithm) -> Result<(), AuthnError> {
    use jsonwebtoken::errors::ErrorKind;
    let Some((message, signature)) = assertion.rsplit_once('.') else {
        return Err(not_jwt("it could not be decoded"));
    };
    match jsonwebtoken::crypto::verify(signature, message.as_bytes(), key, alg) {
        Ok(true) => Ok(()),
        Ok(false) => Err(AuthnError::Key(
            "its signature does not verify with the client's key".into(),
        )),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature => {
                AuthnError::Key("its signature does not verify with the client's key".into())
            }
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidKeyFormat => {
                AuthnError::Key("the client's key does not fit the assertion's alg".into())
            }
            _ => not_jwt("it could not be decoded"),
        }),
    }
}

/// Checks an HMAC signature made with the client's secret.
pub(crate) fn verify_hmac(assertion: &str, alg: Algorithm, secret: &str) -> Result<(), AuthnError> {
    verify_with(assertion, &DecodingKey::from_secret(secret.as_bytes()), alg).map_err(|e| match e {
        AuthnError::Key(_) => {
            AuthnError::Key("its signature does not verify with the client's secret".into())
        }
        other => other,
    })
}

/// The keys that may have signed an assertion with `alg` and `kid`: public signing keys
/// only (never `oct`), of the right kind, with a matching `alg` when the key names one.
pub(crate) fn candidates<'a, K: Borrow<Jwk>>(
    keys: &'a [K],
    alg: Algorithm,
    kid: Option<&str>,
) -> Vec<&'a K> {
    keys.iter()
        .filter(|key| {
            let k: &Jwk = (*key).borrow();
            let kid_fits = kid.is_none_or(|kid| k.common.key_id.as_deref() == Some(kid));
            let use_fits = !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption));
            let kind_fits = match &k.algorithm {
                AlgorithmParameters::RSA(_) => matches!(
                    alg,
                    Algorithm::RS256
                        | Algorithm::RS384
                        | Algorithm::RS512
                        | Algorithm::PS256
                        | Algorithm::PS384
                        | Algorithm::PS512
                ),
                AlgorithmParameters::EllipticCurve(_) => {
                    matches!(alg, Algorithm::ES256 | Algorithm::ES384)
                }
                AlgorithmParameters::OctetKeyPair(_) => alg == Algorithm::EdDSA,
                _ => false,
            };
            // `KeyAlgorithm` and `Algorithm` name their variants alike.
            let alg_fits = k
                .common
                .key_algorithm
                .is_none_or(|ka| format!("{ka:?}") == format!("{alg:?}"));
            kid_fits && use_fits && kind_fits && alg_fits
        })
        .take(MAX_KEYS_TRIED)
        .collect()
}

/// Checks the signature against the client's public keys: `Ok(false)` when no key has the
/// assertion's `kid` (or fits its alg), so that the caller may fetch the keys again.
pub(crate) fn verify_public(
    assertion: &str,
    alg: Algorithm,
    keys: &[Key],
    kid: Option<&str>,
) -> Result<bool, AuthnError> {
    let candidates = candidates(keys, alg, kid);
    if candidates.is_empty() {
        return Ok(false);
    }
    let mut last = None;
    for candidate in candidates {
        let Some(key) = &candidate.decoding else {
            last = Some(AuthnError::Key("the client's key is not usable".into()));
            continue;
        };
        match verify_with(assertion, key, alg) {
            Ok(()) => return Ok(true),
            Err(e @ AuthnError::Key(_)) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        AuthnError::Key("its signature does not verify with the client's key".into())
    }))
}

/// What the claims checks need.
#[derive(Debug)]
pub(crate) struct ClaimRules<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) audiences: &'a [String],
    pub(crate) now: i64,
    pub(crate) skew: i64,
    pub(crate) max_lifetime: i64,
}

/// The checked `jti` and `exp`.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) jti: String,
    pub(crate) exp: i64,
}

fn numeric(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, AuthnError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or_else(|| AuthnError::Assertion(format!("its {name} is not a NumericDate"))),
    }
}

/// RFC 7523 §3: `iss` = `sub` = client id, an accepted `aud`, `exp` (not past, not too far),
/// `nbf` and `iat` not in the future, a `jti`.
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    rules: &ClaimRules<'_>,
) -> Result<Checked, AuthnError> {
    let refuse = |why: &str| Err(AuthnError::Assertion(why.to_owned()));
    for name in ["iss", "sub"] {
        match claims.get(name).and_then(Value::as_str) {
            None => return refuse(&format!("it has no {name} (it must be the client id)")),
            Some(v) if v != rules.client_id => {
                return refuse(&format!("its {name} is not the client id"));
            }
            Some(_) => {}
        }
    }
    let accepted = |a: &Value| {
        a.as_str()
            .is_some_and(|a| rules.audiences.iter().any(|x| x == a))
    };
    match claims.get("aud") {
        None => return refuse("it has no aud"),
        Some(Value::Array(auds)) if auds.iter().any(accepted) => {}
        Some(aud @ Value::String(_)) if accepted(aud) => {}
        Some(_) => {
            return refuse(
                "its aud is not this server (the token endpoint URL or the issuer identifier)",
            );
        }
    }
    let Some(exp) = numeric(claims, "exp")? else {
        return refuse("it has no exp");
    };
    if exp.saturating_add(rules.skew) <= rules.now {
        return refuse("it expired (exp)");
    }
    if exp.saturating_sub(rules.now) > rules.max_lifetime.saturating_add(rules.skew) {
        return refuse(&format!(
            "its exp is too far in the future (at most {} seconds from now)",
            rules.max_lifetime
        ));
    }
    if numeric(claims, "nbf")?.is_some_and(|nbf| nbf.saturating_sub(rules.skew) > rules.now) {
        return refuse("it is not valid yet (nbf)");
    }
    if numeric(claims, "iat")?.is_some_and(|iat| iat.saturating_sub(rules.skew) > rules.now) {
        return refuse("it was issued in the future (iat)");
    }
    let jti = match claims.get("jti") {
        Some(Value::String(jti))
            if !jti.is_empty() && jti.len() <= MAX_JTI && !jti.chars().any(char::is_control) =>
        {
            jti.clone()
        }
        Some(Value::String(_)) => {
            return refuse(&format!(
                "its jti must be 1 to {MAX_JTI} bytes without control characters"
            ));
        }
        _ => return refuse("it has no jti (assertions are single use)"),
    };
    Ok(Checked { jti, exp })
}
