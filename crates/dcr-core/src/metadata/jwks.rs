//! Validation of a client's JSON Web Key Set (RFC 7517, RFC 7518, RFC 8037) from raw JSON,
//! before any JOSE crate sees it: such crates silently drop private members (engineering
//! notes §A.3), so "the client posted its private key" can only be detected here.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::members::{CLIENT_KEY_MEMBERS, ClientKey};

/// Members that only private or symmetric keys carry.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"];

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Operations a key may be used for, per `use` (RFC 7517 §4.3).
const SIG_OPS: &[&str] = &["sign", "verify"];
const ENC_OPS: &[&str] = &[
    "encrypt",
    "decrypt",
    "wrapKey",
    "unwrapKey",
    "deriveKey",
    "deriveBits",
];

/// The key type of an accepted key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `kty: RSA`.
    Rsa,
    /// `kty: EC` with its curve.
    Ec(&'static str),
    /// `kty: OKP` with its curve.
    Okp(&'static str),
    /// A `kty` this server does not know: kept, never used (RFC 7517 §5).
    Unknown,
}

/// What a validated key may be used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Index in `keys`.
    pub index: usize,
    /// Its type and curve.
    pub kty: KeyType,
    /// `alg`, if given.
    pub alg: Option<String>,
    /// `use`, if given.
    pub use_: Option<String>,
    /// `key_ops`, if given.
    pub key_ops: Option<Vec<String>>,
}

/// What a client wants a key for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Verifying the client's signatures.
    Verify,
    /// Encrypting to the client.
    Encrypt,
}

fn curve_of(alg: &str) -> Option<&'static str> {
    match alg {
        "ES256" => Some("P-256"),
        "ES384" => Some("P-384"),
        "ES512" => Some("P-521"),
        _ => None,
    }
}

/// Whether `alg` is a JWS algorithm that uses a public key.
pub fn is_asymmetric_jws(alg: &str) -> bool {
    matches!(
        alg,
        "RS256"
            | "RS384"
            | "RS512"
            | "PS256"
            | "PS384"
            | "PS512"
            | "ES256"
            | "ES384"
            | "ES512"
            | "EdDSA"
            | "Ed25519"
            | "Ed448"
    )
}

/// Whether `alg` is a JWE key-management algorithm that uses the client's public key.
pub fn is_asymmetric_jwe(alg: &str) -> bool {
    alg.starts_with("RSA") || alg.starts_with("ECDH")
}

impl KeyInfo {
    /// Whether this key can serve `purpose` with algorithm `alg`.
    pub fn usable(&self, purpose: Purpose, alg: &str) -> bool {
        if let Some(own) = &self.alg
            && own != alg
        {
            return false;
        }
        let (use_wanted, op_wanted) = match purpose {
            Purpose::Verify => ("sig", &["verify"][..]),
            Purpose::Encrypt => ("enc", &["encrypt", "wrapKey", "deriveKey"][..]),
        };
        if self.use_.as_deref().is_some_and(|u| u != use_wanted) {
            return false;
        }
        if let Some(ops) = &self.key_ops
            && !ops.iter().any(|o| op_wanted.contains(&o.as_str()))
        {
            return false;
        }
        alg_fits(self.kty, alg)
    }
}

/// Whether a key of type `kty` can be used with `alg` (JWS or JWE).
fn alg_fits(kty: KeyType, alg: &str) -> bool {
    match kty {
        KeyType::Rsa => alg.starts_with("RS") || alg.starts_with("PS") || alg.starts_with("RSA"),
        KeyType::Ec(crv) => curve_of(alg) == Some(crv) || alg.starts_with("ECDH-ES"),
        KeyType::Okp(crv) => match crv {
            "Ed25519" => matches!(alg, "EdDSA" | "Ed25519"),
            "Ed448" => matches!(alg, "EdDSA" | "Ed448"),
            "X25519" | "X448" => alg.starts_with("ECDH-ES"),
            _ => false,
        },
        KeyType::Unknown => false,
    }
}

fn b64(key: &Map<String, Value>, member: &str, at: KeyAt, kty: &str) -> Result<Vec<u8>, String> {
    match key.get(member) {
        Some(Value::String(s)) if !s.is_empty() => URL_SAFE_NO_PAD.decode(s).map_err(|_| {
            format!("{at}.{member} must be base64url-encoded without padding ({kty} key)")
        }),
        Some(_) => Err(format!(
            "{at}.{member} must be a non-empty base64url string for {kty} keys"
        )),
        None => Err(format!("{at} must contain \"{member}\" for {kty} keys")),
    }
}

fn opt_str<'a>(
    key: &'a Map<String, Value>,
    member: &str,
    at: KeyAt,
) -> Result<Option<&'a str>, String> {
    match key.get(member) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        Some(_) => Err(format!(
            "{at}.{member} must be a non-empty string if provided"
        )),
    }
}

/// Number of significant bits of a big-endian unsigned integer.
fn bit_len(bytes: &[u8]) -> usize {
    let mut iter = bytes.iter().skip_while(|b| **b == 0);
    match iter.next() {
        None => 0,
        Some(first) => {
            let rest = iter.count();
            rest * 8 + (8 - first.leading_zeros() as usize)
        }
    }
}

/// How a key is named in messages (`jwks.keys[0]`), written only into an error.
#[derive(Debug, Clone, Copy)]
struct KeyAt<'a> {
    label: &'a str,
    index: usize,
}

impl fmt::Display for KeyAt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.keys[{}]", self.label, self.index)
    }
}

/// Checks one key.
fn check_key(index: usize, key: &Value, at: KeyAt) -> Result<KeyInfo, String> {
    let Some(key) = key.as_object() else {
        return Err(format!("{at} must be a JSON object"));
    };
    let kty = match key.get("kty") {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        _ => return Err(format!("{at}.kty must be a non-empty string")),
    };
    if kty == "oct" {
        return Err(format!(
            "{at} must not be a symmetric key (kty \"oct\"): register public keys only"
        ));
    }
    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| key.contains_key(**m)) {
        return Err(format!(
            "{at} must not contain private key member \"{member}\": register public keys only"
        ));
    }
    let kty = match kty {
        "RSA" => {
            let n = b64(key, "n", at, "RSA")?;
            b64(key, "e", at, "RSA")?;
            let bits = bit_len(&n);
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "{at}.n is a {bits}-bit RSA modulus; at least {MIN_RSA_BITS} bits are required"
                ));
            }
            KeyType::Rsa
        }
        "EC" => {
            let (crv, len) = match key.get("crv").and_then(Value::as_str) {
                Some("P-256") => ("P-256", 32),
                Some("P-384") => ("P-384", 48),
                Some("P-521") => ("P-521", 66),
                Some(other) => {
                    return Err(format!(
                        "{at}.crv \"{other}\" is not an EC curve; use P-256, P-384 or P-521"
                    ));
                }
                None => return Err(format!("{at}.crv must be a non-empty string for EC keys")),
            };
            for member in ["x", "y"] {
                let bytes = b64(key, member, at, "EC")?;
                if bytes.len() != len {
                    return Err(format!(
                        "{at}.{member} must be {len} bytes long for curve {crv} (got {})",
                        bytes.len()
                    ));
                }
            }
            KeyType::Ec(crv)
        }
        "OKP" => {
            let (crv, len) = match key.get("crv").and_then(Value::as_str) {
                Some("Ed25519") => ("Ed25519", 32),
                Some("Ed448") => ("Ed448", 57),
                Some("X25519") => ("X25519", 32),
                Some("X448") => ("X448", 56),
                Some(other) => {
                    return Err(format!(
                        "{at}.crv \"{other}\" is not an OKP curve; use Ed25519, Ed448, X25519 or X448"
                    ));
                }
                None => return Err(format!("{at}.crv must be a non-empty string for OKP keys")),
            };
            let x = b64(key, "x", at, "OKP")?;
            if x.len() != len {
                return Err(format!(
                    "{at}.x must be {len} bytes long for curve {crv} (got {})",
                    x.len()
                ));
            }
            KeyType::Okp(crv)
        }
        _ => KeyType::Unknown,
    };

    opt_str(key, "kid", at)?;
    let alg = opt_str(key, "alg", at)?.map(str::to_owned);
    let use_ = opt_str(key, "use", at)?.map(str::to_owned);
    if let Some(u) = &use_
        && u != "sig"
        && u != "enc"
    {
        return Err(format!("{at}.use must be \"sig\" or \"enc\" (got \"{u}\")"));
    }
    let key_ops = match key.get("key_ops") {
        None => None,
        Some(Value::Array(items)) => {
            let mut ops: Vec<String> = Vec::new();
            for item in items {
                let Some(op) = item.as_str() else {
                    return Err(format!("{at}.key_ops must be an array of strings"));
                };
                if !SIG_OPS.contains(&op) && !ENC_OPS.contains(&op) {
                    return Err(format!("{at}.key_ops contains unknown operation \"{op}\""));
                }
                if ops.iter().any(|o| o == op) {
                    return Err(format!("{at}.key_ops must not repeat \"{op}\""));
                }
                ops.push(op.to_owned());
            }
            Some(ops)
        }
        Some(_) => return Err(format!("{at}.key_ops must be an array of strings")),
    };
    if let (Some(u), Some(ops)) = (&use_, &key_ops) {
        let allowed = if u == "sig" { SIG_OPS } else { ENC_OPS };
        if let Some(bad) = ops.iter().find(|o| !allowed.contains(&o.as_str())) {
            return Err(format!(
                "{at}.key_ops \"{bad}\" is inconsistent with use \"{u}\""
            ));
        }
    }
    if let Some(ops) = &key_ops {
        let sig = ops.iter().any(|o| SIG_OPS.contains(&o.as_str()));
        let enc = ops.iter().any(|o| ENC_OPS.contains(&o.as_str()));
        if sig && enc {
            return Err(format!(
                "{at}.key_ops must not mix signature and encryption operations"
            ));
        }
    }
    match key.get("x5c") {
        None => {}
        Some(Value::Array(items))
            if items
                .iter()
                .all(|i| i.as_str().is_some_and(|s| !s.is_empty())) => {}
        Some(_) => {
            return Err(format!(
                "{at}.x5c must be an array of non-empty strings if provided"
            ));
        }
    }
    if let (Some(alg), true) = (&alg, kty != KeyType::Unknown) {
        if !alg_fits(kty, alg) {
            return Err(format!(
                "{at}.alg \"{alg}\" cannot be used with this key type ({})",
                describe(kty)
            ));
        }
        let sig_alg = is_asymmetric_jws(alg);
        if let Some(u) = &use_
            && sig_alg != (u == "sig")
        {
            return Err(format!(
                "{at}.alg \"{alg}\" is inconsistent with use \"{u}\""
            ));
        }
    }
    Ok(KeyInfo {
        index,
        kty,
        alg,
        use_,
        key_ops,
    })
}

fn describe(kty: KeyType) -> String {
    match kty {
        KeyType::Rsa => "RSA".into(),
        KeyType::Ec(c) => format!("EC {c}"),
        KeyType::Okp(c) => format!("OKP {c}"),
        KeyType::Unknown => "unknown".into(),
    }
}

/// Validates a JWK Set given as raw JSON; `label` names it in messages (`jwks`, or
/// `the JWK Set at jwks_uri`). Returns what each key may be used for.
pub fn check_set(set: &Value, label: &str) -> Result<Vec<KeyInfo>, String> {
    let Some(keys) = set
        .as_object()
        .and_then(|o| o.get("keys"))
        .and_then(Value::as_array)
    else {
        return Err(format!(
            "{label} must be a JSON Web Key Set: an object with a \"keys\" array"
        ));
    };
    let mut infos = Vec::with_capacity(keys.len());
    let mut kids: Vec<&str> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let at = KeyAt { label, index: i };
        infos.push(check_key(i, key, at)?);
        if let Some(kid) = key.get("kid").and_then(Value::as_str) {
            if kids.contains(&kid) {
                return Err(format!(
                    "{at}.kid \"{kid}\" is used by another key; kid values must be unique"
                ));
            }
            kids.push(kid);
        }
    }
    Ok(infos)
}

/// The keys a client's metadata needs in its JWK Set: `(member, purpose, alg)`, signatures
/// first (the members of the member table whose algorithm needs a client key).
pub fn needed_keys(m: &Map<String, Value>) -> Vec<(&'static str, Purpose, String)> {
    let s = |k: &str| m.get(k).and_then(Value::as_str);
    let private_key_jwt = s("token_endpoint_auth_method") == Some("private_key_jwt");
    let mut out = Vec::new();
    for &(member, key) in CLIENT_KEY_MEMBERS.iter() {
        let Some(alg) = s(member) else { continue };
        let purpose = match key {
            ClientKey::VerifyForPrivateKeyJwt if private_key_jwt => Purpose::Verify,
            ClientKey::Verify if is_asymmetric_jws(alg) => Purpose::Verify,
            ClientKey::Encrypt if is_asymmetric_jwe(alg) => Purpose::Encrypt,
            _ => continue,
        };
        out.push((member, purpose, alg.to_owned()));
    }
    out
}

/// Checks that `keys` hold a usable key for everything in `m` that needs one.
pub fn check_usable(keys: &[KeyInfo], m: &Map<String, Value>, label: &str) -> Result<(), String> {
    for (member, purpose, alg) in needed_keys(m) {
        if !keys.iter().any(|k| k.usable(purpose, &alg)) {
            let what = match purpose {
                Purpose::Verify => "signature verification",
                Purpose::Encrypt => "encryption",
            };
            return Err(format!(
                "{label} has no key usable for {what} with {alg} ({member}); add a matching public key"
            ));
        }
    }
    if m.get("token_endpoint_auth_method").and_then(Value::as_str) == Some("private_key_jwt")
        && !keys.iter().any(|k| {
            k.kty != KeyType::Unknown
                && k.use_.as_deref() != Some("enc")
                && k.alg.as_deref().is_none_or(is_asymmetric_jws)
        })
    {
        return Err(format!(
            "{label} has no signature key, which token_endpoint_auth_method private_key_jwt needs"
        ));
    }
    Ok(())
}
