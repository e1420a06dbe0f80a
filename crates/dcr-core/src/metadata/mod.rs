//! Client metadata (RFC 7591 §2, OpenID Connect Dynamic Client Registration 1.0 §2):
//! the validated model, the server's supported values, and the validator.
//!
//! Where things live:
//! - `members.rs`: the member table, one row per member (kind, feature, default, allowed
//!   values and their discovery member, URI rule, language tagging, secret and key rules);
//! - `server.rs`: what the server supports (`ServerMetadata`, `Features`) and discovery;
//! - `validate.rs`: the pipeline, one named step per line, and `Validator`;
//! - the steps by concern: `defaults.rs`, `types.rs`, `choices.rs` (allowed values, RP
//!   Metadata Choices), `rules.rs` (rules between members), `uris.rs`, `keys.rs` (with
//!   `jwks.rs`), `lang.rs` (BCP 47), `bounds.rs` (what may be stored);
//! - `application_type.rs`: `application_type` inferred from the redirect URIs (an option);
//! - `statement.rs` (software statements, RFC 7591 §2.3) and `remote.rs` (documents at
//!   `jwks_uri` and `sector_identifier_uri`).

mod application_type;
/// Bounds on stored documents (nesting depth, size).
pub mod bounds;
mod choices;
mod defaults;
/// Validation of client JWK Sets from raw JSON.
pub mod jwks;
mod keys;
/// BCP 47 language tag well-formedness.
pub mod lang;
mod members;
mod remote;
mod rules;
mod server;
mod statement;
mod types;
mod uris;
mod validate;

#[cfg(test)]
mod statement_tests;
#[cfg(test)]
mod tests;

pub use remote::{DocumentFetcher, FetchError, check_sector_document, verify_remote};
pub use server::{Features, ServerMetadata, SoftwareStatementIssuer};
pub use statement::{apply_software_statement, verify_software_statement};
pub use validate::{Validator, needs_secret_after_defaults, validate};

use std::sync::{Arc, OnceLock};

use serde_json::{Map, Value};

use members::Secret;

/// Which RFC 7591 error a metadata rejection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataErrorKind {
    /// `invalid_client_metadata`.
    InvalidClientMetadata,
    /// `invalid_redirect_uri`.
    InvalidRedirectUri,
    /// `invalid_software_statement`: malformed, unsigned, badly signed or expired statement.
    InvalidSoftwareStatement,
    /// `unapproved_software_statement`: the statement's issuer is not trusted.
    UnapprovedSoftwareStatement,
}

/// A rejected metadata document: the error code and a description naming the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{description}")]
pub struct MetadataError {
    /// The error code.
    pub kind: MetadataErrorKind,
    /// What is wrong, for a person to fix.
    pub description: String,
}

impl MetadataError {
    /// An `invalid_client_metadata` error.
    pub fn metadata(description: impl Into<String>) -> Self {
        Self {
            kind: MetadataErrorKind::InvalidClientMetadata,
            description: description.into(),
        }
    }

    /// The error for a rule about the member `member`: `invalid_redirect_uri` when it is
    /// `redirect_uris` (RFC 7591 §3.2.2: "the value of one or more redirection URIs is
    /// invalid"), `invalid_client_metadata` for any other member.
    pub fn member(member: &str, description: impl Into<String>) -> Self {
        if member == "redirect_uris" {
            Self::redirect(description)
        } else {
            Self::metadata(description)
        }
    }

    /// An `invalid_redirect_uri` error.
    pub fn redirect(description: impl Into<String>) -> Self {
        Self {
            kind: MetadataErrorKind::InvalidRedirectUri,
            description: description.into(),
        }
    }
}

impl From<MetadataError> for crate::RegistrationError {
    fn from(err: MetadataError) -> Self {
        match err.kind {
            MetadataErrorKind::InvalidClientMetadata => {
                Self::InvalidClientMetadata(err.description)
            }
            MetadataErrorKind::InvalidRedirectUri => Self::InvalidRedirectUri(err.description),
            MetadataErrorKind::InvalidSoftwareStatement => {
                Self::InvalidSoftwareStatement(err.description)
            }
            MetadataErrorKind::UnapprovedSoftwareStatement => {
                Self::UnapprovedSoftwareStatement(err.description)
            }
        }
    }
}

/// Validated client metadata: every recognised member, defaults filled in, snake_case keys.
///
/// Only [`validate`] builds one from client input; [`ClientMetadata::from_trusted`] rebuilds one
/// from storage. The members are shared: cloning is cheap (stores hand out copies on every read),
/// and a change copies them first.
#[derive(Clone, PartialEq, Default)]
pub struct ClientMetadata(Arc<Shared>);

/// The members, their compact JSON once someone asked for it, and their copy without the
/// client secret once someone asked for it ([`ClientMetadata::without_secret`]).
#[derive(Default)]
struct Shared {
    members: Map<String, Value>,
    json: OnceLock<Arc<str>>,
    without_secret: OnceLock<ClientMetadata>,
}

impl Shared {
    fn new(members: Map<String, Value>) -> Self {
        Self {
            members,
            json: OnceLock::new(),
            without_secret: OnceLock::new(),
        }
    }
}

/// A copy is about to change: it starts without the JSON of the original.
impl Clone for Shared {
    fn clone(&self) -> Self {
        Self::new(self.members.clone())
    }
}

impl PartialEq for Shared {
    fn eq(&self, other: &Self) -> bool {
        self.members == other.members
    }
}

/// The server members [`ClientMetadata::without_secret`] leaves out.
const SECRET_SERVER_MEMBERS: [&str; 2] = ["client_secret", "client_secret_expires_at"];

/// Members whose value is a credential: `Debug` shows them as `[redacted]`.
const SECRET_MEMBERS: &[&str] = &["client_secret", "registration_access_token"];

/// Metadata members for `Debug`: every member, credentials (`client_secret`,
/// `registration_access_token`) shown as `[redacted]`.
pub(crate) struct RedactedMembers<'a>(pub(crate) &'a Map<String, Value>);

impl std::fmt::Debug for RedactedMembers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in self.0 {
            if SECRET_MEMBERS.contains(&key.as_str()) {
                map.entry(key, &format_args!("[redacted]"));
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

impl std::fmt::Debug for ClientMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ClientMetadata")
            .field(&RedactedMembers(&self.0.members))
            .finish()
    }
}

/// Authentication methods that work without a client secret.
const SECRETLESS_AUTH_METHODS: &[&str] = &[
    "private_key_jwt",
    "none",
    "tls_client_auth",
    "self_signed_tls_client_auth",
    "attest_jwt_client_auth",
    "attest_jwt_client_auth_dpop",
];

/// Whether a client described by `metadata` needs a client secret: its token endpoint
/// authentication method uses one, or one of its algorithms is keyed by it (`HS*`, `dir`, `A*KW`).
pub fn needs_secret(metadata: &Map<String, Value>) -> bool {
    needs_secret_by(|k| metadata.get(k))
}

/// [`needs_secret`] over any way of looking members up (e.g. input over defaults, uncopied).
pub(crate) fn needs_secret_by<'a>(get: impl Fn(&str) -> Option<&'a Value>) -> bool {
    members::SECRET_MEMBERS.iter().any(|&(name, rule)| {
        let value = get(name).and_then(Value::as_str);
        match rule {
            Secret::No => false,
            Secret::UnlessSecretless => {
                !value.is_some_and(|m| SECRETLESS_AUTH_METHODS.contains(&m))
            }
            Secret::HmacAlg => value.is_some_and(|alg| alg.starts_with("HS")),
            Secret::SymmetricEncryption => {
                value.is_some_and(|alg| alg == "dir" || alg.starts_with('A'))
            }
        }
    })
}

impl ClientMetadata {
    /// Rebuilds metadata that was validated before (read back from a store).
    pub fn from_trusted(map: Map<String, Value>) -> Self {
        Self(Arc::new(Shared::new(map)))
    }

    /// Rebuilds metadata that was validated before from the JSON text a store kept (as
    /// [`ClientMetadata::json`] wrote it). That text becomes the one [`ClientMetadata::json`]
    /// returns, so a stored client is not serialised again to be answered.
    pub fn from_trusted_json(json: Arc<str>) -> Result<Self, serde_json::Error> {
        let members = serde_json::from_str(&json)?;
        Ok(Self(Arc::new(Shared {
            members,
            json: OnceLock::from(json),
            without_secret: OnceLock::new(),
        })))
    }

    /// The members as compact JSON (keys in order), serialised on the first call and shared by
    /// every clone: a store and the response to the same registration write it once.
    pub fn json(&self) -> Arc<str> {
        self.0
            .json
            .get_or_init(|| {
                // Serialising a map of JSON values cannot fail (keys are strings).
                let text = serde_json::to_string(&self.0.members).unwrap_or_default();
                Arc::from(text)
            })
            .clone()
    }

    /// The members.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0.members
    }

    /// The members, by value.
    pub fn into_map(self) -> Map<String, Value> {
        Arc::try_unwrap(self.0)
            .map(|shared| shared.members)
            .unwrap_or_else(|shared| shared.members.clone())
    }

    /// One member.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.members.get(key)
    }

    /// A string member.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.members.get(key).and_then(Value::as_str)
    }

    /// `client_id`.
    pub fn client_id(&self) -> &str {
        self.str("client_id").unwrap_or_default()
    }

    /// `client_secret`, if the client has one.
    pub fn client_secret(&self) -> Option<&str> {
        self.str("client_secret")
    }

    /// Whether this client needs a secret (see [`needs_secret`]).
    pub fn needs_secret(&self) -> bool {
        needs_secret(&self.0.members)
    }

    /// The members, to change: a shared copy is copied first, and the JSON of the old
    /// members is dropped.
    fn members_mut(&mut self) -> &mut Map<String, Value> {
        let shared = Arc::make_mut(&mut self.0);
        shared.json = OnceLock::new();
        shared.without_secret = OnceLock::new();
        &mut shared.members
    }

    /// These members without `client_secret` and `client_secret_expires_at`: what a host is
    /// shown of a client it resolves or authenticates. Members shared with other clones (a
    /// store's cached record) are copied once: the copy is kept with them, so every later call
    /// shares it (and its [`ClientMetadata::json`]) instead of copying the members again.
    pub fn without_secret(mut self) -> ClientMetadata {
        let members = &self.0.members;
        if !SECRET_SERVER_MEMBERS
            .iter()
            .any(|k| members.contains_key(*k))
        {
            return self;
        }
        if Arc::get_mut(&mut self.0).is_some() {
            // Nobody else holds these members: no copy to share.
            for key in SECRET_SERVER_MEMBERS {
                self.remove_server_member(key);
            }
            return self;
        }
        self.0
            .without_secret
            .get_or_init(|| {
                let mut members = self.0.members.clone();
                for key in SECRET_SERVER_MEMBERS {
                    members.remove(key);
                }
                ClientMetadata::from_trusted(members)
            })
            .clone()
    }

    /// Sets a server-managed member (`client_secret`, `client_secret_expires_at`, ...).
    pub fn set_server_member(&mut self, key: &str, value: Value) {
        self.members_mut().insert(key.to_owned(), value);
    }

    /// Removes a server-managed member.
    pub fn remove_server_member(&mut self, key: &str) -> Option<Value> {
        if self.0.members.contains_key(key) {
            self.members_mut().remove(key)
        } else {
            None
        }
    }
}
