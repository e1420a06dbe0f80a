//! The generated clients that `dcr serve --seed-clients N` registers and that the
//! `memory_per_client` example measures: one home, so both register the same documents.

use serde_json::{Map, Value, json};

/// The registration document of generated client `n`: a confidential web client with two
/// redirect URIs, a name and a contact, each unique to `n` where it names the client.
pub fn client_metadata(n: u64) -> Map<String, Value> {
    let value = json!({
        "redirect_uris": [format!("https://app{n}.example.com/callback"), format!("https://app{n}.example.com/silent")],
        "client_name": format!("Seeded App {n}"),
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "contacts": ["ops@example.com"],
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::Registrar;
    use crate::context::RequestContext;
    use crate::metadata::ServerMetadata;
    use crate::settings::RegistrarSettings;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn documents_differ_by_client_and_register() {
        let registrar = Registrar::builder(
            Arc::new(MemoryStore::new()),
            ServerMetadata::default(),
            RegistrarSettings::new("http://127.0.0.1:8080"),
        )
        .build()
        .unwrap();
        assert_ne!(client_metadata(1), client_metadata(2));
        let r = registrar
            .register(RequestContext::default(), None, client_metadata(1))
            .await
            .unwrap();
        assert!(
            r.client().client_secret().is_some(),
            "a confidential client"
        );
    }
}
