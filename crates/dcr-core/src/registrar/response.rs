//! What a client is told after registration (RFC 7591 §3.2.1), read or update (RFC 7592 §3).

use serde_json::{Map, Value};

use crate::client::RegisteredClient;
use crate::metadata::ClientMetadata;
use crate::token::Secret;

/// The outcome of a registration, read or update: what the client is told.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    /// The registered metadata (with `client_secret` when the client has one).
    pub metadata: ClientMetadata,
    /// The registration access token, when one is issued (or was presented, on read).
    pub registration_access_token: Option<Secret>,
    /// The client's configuration endpoint, when it has a registration access token.
    pub registration_client_uri: Option<String>,
}

impl ClientResponse {
    /// The registered client, typed.
    pub fn client(&self) -> RegisteredClient {
        RegisteredClient::from_metadata(self.metadata.clone())
    }

    /// The JSON body of the response (RFC 7591 §3.2.1, RFC 7592 §3).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut body = self.metadata.as_map().clone();
        if let (Some(token), Some(uri)) = (
            &self.registration_access_token,
            &self.registration_client_uri,
        ) {
            body.insert(
                "registration_access_token".into(),
                Value::String(token.expose().to_owned()),
            );
            body.insert("registration_client_uri".into(), Value::String(uri.clone()));
        }
        body
    }

    /// The JSON body, with the same members as [`ClientResponse::to_json`]: the metadata's
    /// shared JSON ([`ClientMetadata::json`], usually already written for the store) with the
    /// two token members appended, instead of serialising the metadata again.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        let metadata = self.metadata.json();
        let (Some(token), Some(uri)) = (
            &self.registration_access_token,
            &self.registration_client_uri,
        ) else {
            return metadata.as_bytes().to_vec();
        };
        // Server members the metadata never holds; if it did, they would be replaced.
        if self.metadata.get("registration_access_token").is_some()
            || self.metadata.get("registration_client_uri").is_some()
        {
            return Value::Object(self.to_json()).to_string().into_bytes();
        }
        let members = metadata.strip_suffix('}').unwrap_or("{");
        let mut out = Vec::with_capacity(metadata.len() + token.expose().len() + uri.len() + 64);
        out.extend_from_slice(members.as_bytes());
        if members.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(b"\"registration_access_token\":");
        write_json_string(&mut out, token.expose());
        out.extend_from_slice(b",\"registration_client_uri\":");
        write_json_string(&mut out, uri);
        out.push(b'}');
        out
    }
}

/// Appends `s` as a JSON string.
fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a `Vec` cannot fail.
    let _ = serde_json::to_writer(out, s);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn response(with_token: bool, extra: &[(&str, Value)]) -> ClientResponse {
        let mut map = Map::new();
        for (k, v) in [
            ("client_id", Value::from("abc")),
            ("redirect_uris", serde_json::json!(["https://a.example/cb"])),
            ("application_type", Value::from("web")),
            ("token_endpoint_auth_method", Value::from("none")),
        ] {
            map.insert(k.into(), v);
        }
        for (k, v) in extra {
            map.insert((*k).into(), v.clone());
        }
        ClientResponse {
            metadata: ClientMetadata::from_trusted(map),
            registration_access_token: with_token.then(|| Secret::new("tok")),
            registration_client_uri: with_token.then(|| "https://as.example/reg/abc".into()),
        }
    }

    #[test]
    fn json_bytes_have_the_members_of_to_json() {
        for r in [
            response(true, &[]),
            response(false, &[]),
            response(true, &[("registration_access_token", Value::from("stale"))]),
            response(true, &[("zzz", Value::from(1)), ("aaa", Value::from(2))]),
            response(true, &[("quote", Value::from("a\"b\\c"))]),
        ] {
            let bytes = r.to_json_bytes();
            let parsed: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(parsed, Value::Object(r.to_json()), "{parsed}");
        }
    }

    #[test]
    fn json_bytes_reuse_the_metadata_json() {
        let r = response(true, &[]);
        let metadata = r.metadata.json();
        let bytes = r.to_json_bytes();
        assert!(bytes.starts_with(metadata.strip_suffix('}').unwrap().as_bytes()));
        assert!(Arc::ptr_eq(&metadata, &r.metadata.json()));
        let empty = ClientResponse {
            metadata: ClientMetadata::default(),
            ..response(true, &[])
        };
        assert_eq!(
            serde_json::from_slice::<Value>(&empty.to_json_bytes()).unwrap(),
            Value::Object(empty.to_json())
        );
    }
}
