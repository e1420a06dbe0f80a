//! Keys and proof of possession: when the client's public keys are needed (RFC 7591 §2,
//! OpenID Connect Registration §2), the JWK Set itself (RFC 7517 §5), the mTLS certificate
//! subject (RFC 8705 §2.1.2) and the token binding mechanisms (RFC 8705 §3.4, RFC 9449 §5.2).

use serde_json::{Map, Value};

use super::MetadataError;
use super::jwks;
#[cfg(doc)]
use super::members::CLIENT_KEY_MEMBERS;
use super::members::{ClientKey, TLS_SUBJECT_MEMBERS};
use super::types::{flag, str_of};

/// Part of step 5: `jwks` or `jwks_uri` is mandatory when a member needs the client's public
/// keys: an authentication method that signs or uses a certificate, an asymmetric request
/// signing algorithm, or an asymmetric encryption of a response.
///
/// `key_members` are the recognised members of
/// [`CLIENT_KEY_MEMBERS`](super::members::CLIENT_KEY_MEMBERS) with an asymmetric
/// signature or encryption (`m` holds no others).
pub(super) fn check_keys_present(
    m: &Map<String, Value>,
    key_members: &[(&'static str, ClientKey)],
) -> Result<(), MetadataError> {
    if m.contains_key("jwks") || m.contains_key("jwks_uri") {
        return Ok(());
    }
    // The first member (and its value) that needs the client's public keys, if any.
    let method = str_of(m, "token_endpoint_auth_method").unwrap_or_default();
    let needs_keys = matches!(method, "private_key_jwt" | "self_signed_tls_client_auth")
        .then_some(("token_endpoint_auth_method", method))
        .or_else(|| {
            key_members.iter().find_map(|&(member, key)| {
                let alg = str_of(m, member)?;
                let needed = match key {
                    ClientKey::Verify => jwks::is_asymmetric_jws(alg),
                    ClientKey::Encrypt => jwks::is_asymmetric_jwe(alg),
                    ClientKey::No | ClientKey::VerifyForPrivateKeyJwt => false,
                };
                needed.then_some((member, alg))
            })
        });
    if let Some((member, value)) = needs_keys {
        return Err(MetadataError::metadata(format!(
            "jwks or jwks_uri is mandatory for this client ({member} {value} needs the client's public keys)"
        )));
    }
    Ok(())
}

/// Step 15: at most one proof of possession mechanism, and no access token from the
/// authorization endpoint (`token`) with either (RFC 8705 §3.4, RFC 9449 §5.2).
pub(super) fn check_proof_of_possession(
    m: &Map<String, Value>,
    token: bool,
) -> Result<(), MetadataError> {
    let mtls_bound = flag(m, "tls_client_certificate_bound_access_tokens");
    let dpop_bound = flag(m, "dpop_bound_access_tokens");
    if mtls_bound && dpop_bound {
        return Err(MetadataError::metadata(
            "only one proof of possession mechanism can be made required at a time (tls_client_certificate_bound_access_tokens or dpop_bound_access_tokens)",
        ));
    }
    for (bound, name) in [
        (mtls_bound, "tls_client_certificate_bound_access_tokens"),
        (dpop_bound, "dpop_bound_access_tokens"),
    ] {
        if bound && token {
            return Err(MetadataError::member(
                "response_types",
                format!("response_types must not include \"token\" when {name} is used"),
            ));
        }
    }
    Ok(())
}

/// Step 16: a `tls_client_auth` client names exactly one certificate subject member (RFC 8705
/// §2.1.2); another client keeps none.
pub(super) fn check_tls_subject(
    m: &mut Map<String, Value>,
    mtls_client_auth: bool,
) -> Result<(), MetadataError> {
    if str_of(m, "token_endpoint_auth_method") == Some("tls_client_auth") {
        let given: Vec<&str> = TLS_SUBJECT_MEMBERS
            .iter()
            .copied()
            .filter(|k| m.contains_key(*k))
            .collect();
        match given.len() {
            0 => {
                return Err(MetadataError::metadata(format!(
                    "tls_client_auth requires one of the certificate subject value parameters ({})",
                    TLS_SUBJECT_MEMBERS.join(", ")
                )));
            }
            1 => {}
            _ => {
                return Err(MetadataError::metadata(format!(
                    "only one tls_client_auth certificate subject value must be provided (got {})",
                    given.join(", ")
                )));
            }
        }
    } else if mtls_client_auth {
        // Without the feature, these members are not recognised: `m` has none of them.
        for k in TLS_SUBJECT_MEMBERS.iter() {
            m.remove(*k);
        }
    }
    Ok(())
}

/// Step 17: `jwks` and `jwks_uri` are exclusive (RFC 7591 §2), and an inline JWK Set is
/// well-formed and usable for the client's algorithms.
pub(super) fn check_keys(m: &Map<String, Value>) -> Result<(), MetadataError> {
    if m.contains_key("jwks") && m.contains_key("jwks_uri") {
        return Err(MetadataError::metadata(
            "jwks and jwks_uri must not be used at the same time",
        ));
    }
    if let Some(set) = m.get("jwks") {
        let keys = jwks::check_set(set, "jwks").map_err(MetadataError::metadata)?;
        jwks::check_usable(&keys, m, "jwks").map_err(MetadataError::metadata)?;
    }
    Ok(())
}
