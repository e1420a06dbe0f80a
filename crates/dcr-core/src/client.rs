//! The registered client, typed: what the server assigned it (RFC 7591 §3.2.1: `client_id`,
//! `client_secret`, `client_id_issued_at`, `client_secret_expires_at`) next to its metadata.

use serde_json::Value;

use crate::metadata::ClientMetadata;
use crate::token::{Secret, ct_str_eq};

/// A registered client. Its secret is a [`Secret`] (`Debug` never shows it), settled once by
/// the registrar after validation.
///
/// The typed members are read from, and agree with, [`RegisteredClient::metadata`]: the
/// document as it is stored and answered (RFC 7591 §3.2.1 returns the secret with the other
/// members; its compact JSON is written once and shared, see [`ClientMetadata::json`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredClient {
    client_id: String,
    client_secret: Option<Secret>,
    client_id_issued_at: Option<i64>,
    client_secret_expires_at: Option<i64>,
    metadata: ClientMetadata,
}

impl RegisteredClient {
    /// The client that `metadata` (validated, with its server-assigned members) describes.
    pub fn from_metadata(metadata: ClientMetadata) -> Self {
        let int = |key: &str| metadata.get(key).and_then(Value::as_i64);
        Self {
            client_id: metadata.client_id().to_owned(),
            client_secret: metadata.client_secret().map(Secret::new),
            client_id_issued_at: int("client_id_issued_at"),
            client_secret_expires_at: int("client_secret_expires_at"),
            metadata,
        }
    }

    /// `client_id`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// `client_secret`, if the client has one.
    pub fn client_secret(&self) -> Option<&Secret> {
        self.client_secret.as_ref()
    }

    /// `client_id_issued_at` (seconds since the epoch), if recorded.
    pub fn client_id_issued_at(&self) -> Option<i64> {
        self.client_id_issued_at
    }

    /// `client_secret_expires_at`: `Some(0)` for a secret that does not expire, `None` without
    /// a secret.
    pub fn client_secret_expires_at(&self) -> Option<i64> {
        self.client_secret_expires_at
    }

    /// Whether `presented` is the client's secret (compared in constant time); `false` for a
    /// client without one.
    pub fn secret_matches(&self, presented: &str) -> bool {
        self.client_secret
            .as_ref()
            .is_some_and(|s| ct_str_eq(presented, s.expose()))
    }

    /// The whole registered document (server-assigned members included).
    pub fn metadata(&self) -> &ClientMetadata {
        &self.metadata
    }

    /// The whole registered document, by value.
    pub fn into_metadata(self) -> ClientMetadata {
        self.metadata
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn typed_members_come_from_the_document() {
        let md = ClientMetadata::from_trusted(
            json!({"client_id": "c", "client_secret": "s3", "client_id_issued_at": 5,
                "client_secret_expires_at": 0})
            .as_object()
            .cloned()
            .unwrap(),
        );
        let c = RegisteredClient::from_metadata(md.clone());
        assert_eq!(c.client_id(), "c");
        assert_eq!(c.client_secret().map(Secret::expose), Some("s3"));
        assert_eq!(c.client_id_issued_at(), Some(5));
        assert_eq!(c.client_secret_expires_at(), Some(0));
        assert!(c.secret_matches("s3"));
        assert!(!c.secret_matches("s4"));
        assert_eq!(c.metadata(), &md);
        let public = RegisteredClient::from_metadata(ClientMetadata::from_trusted(
            json!({"client_id": "p"}).as_object().cloned().unwrap(),
        ));
        assert!(public.client_secret().is_none());
        assert!(!public.secret_matches(""));
        assert_eq!(public.client_secret_expires_at(), None);
    }
}
