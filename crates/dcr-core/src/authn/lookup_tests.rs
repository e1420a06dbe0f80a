//! The lookup side of client authentication: usage records, configured, registered,
//! tombstoned and metadata-document clients.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::tests::{AUD, Clients, NOW, SECRET, aud, basic, form, jwk, jwt_form, key, sign_ed};
use super::*;
use crate::clock::{Clock as _, FixedClock};
use crate::metadata::FetchError;

#[tokio::test]
async fn usage_is_recorded_once_per_interval_and_marks_the_client_managed() {
    use crate::store::{ClientRecord, ClientStore as _, MemoryStore, NewClient};
    let store = Arc::new(MemoryStore::new());
    let record = ClientRecord {
        client_id: "c1".into(),
        metadata: ClientMetadata::from_trusted(
            json!({"client_id": "c1", "token_endpoint_auth_method": "none"})
                .as_object()
                .unwrap()
                .clone(),
        ),
        created_at: NOW - 100,
        updated_at: NOW - 100,
        initial_access_token_id: None,
        managed_at: None,
    };
    store
        .insert_client(NewClient {
            client: &record,
            registration_access_token: None,
            spend_initial_access_token: None,
        })
        .await
        .unwrap();
    let usage = Arc::new(MemoryUsageStore::new());
    let clients = Clients::default();
    clients
        .0
        .lock()
        .unwrap()
        .insert("c1".into(), record.metadata.as_map().clone().into());
    let clock = Arc::new(FixedClock::new(NOW));
    let authn = Authenticator::builder(Arc::new(clients), Arc::new(MemoryReplayStore::new()))
        .clock(clock.clone())
        .usage(UsageRecorder::new(
            store.clone(),
            usage.clone(),
            std::time::Duration::from_secs(3600),
            1000,
        ))
        .build();
    authn
        .authenticate(None, &form(&[("client_id", "c1")]), &[])
        .await
        .unwrap();
    let ids = vec!["c1".to_owned()];
    assert_eq!(usage.last_used(&ids).await.unwrap().get("c1"), Some(&NOW));
    assert_eq!(
        store.get_client("c1").await.unwrap().unwrap().managed_at,
        Some(NOW)
    );
    clock.advance(10);
    authn
        .authenticate(None, &form(&[("client_id", "c1")]), &[])
        .await
        .unwrap();
    assert_eq!(
        usage.last_used(&ids).await.unwrap().get("c1"),
        Some(&NOW),
        "throttled"
    );
    assert!(store.unmanaged_open_clients(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn registry_lookup_finds_configured_registered_and_tombstoned_ids() {
    use crate::metadata::ServerMetadata;
    use crate::resolve::ClientResolver;
    use crate::settings::RegistrarSettings;
    use crate::store::{ClientRecord, ClientStore as _, MemoryStore, NewClient, Store};
    let store = Arc::new(MemoryStore::new());
    let record = ClientRecord {
        client_id: "r1".into(),
        metadata: ClientMetadata::from_trusted(
            json!({"client_id": "r1", "client_secret": SECRET, "client_secret_expires_at": 0})
                .as_object()
                .unwrap()
                .clone(),
        ),
        created_at: NOW,
        updated_at: NOW,
        initial_access_token_id: None,
        managed_at: None,
    };
    store
        .insert_client(NewClient {
            client: &record,
            registration_access_token: None,
            spend_initial_access_token: None,
        })
        .await
        .unwrap();
    let dyn_store: Arc<dyn Store> = store.clone();
    let registrar = crate::Registrar::builder(
        dyn_store.clone(),
        ServerMetadata::default(),
        RegistrarSettings::new("https://as.example.com"),
    )
    .build()
    .unwrap();
    let usage = Arc::new(MemoryUsageStore::new());
    let clock = Arc::new(FixedClock::new(NOW));
    let configured = ClientCredentials::from_metadata(
        "cfg",
        ClientSource::Configured,
        ClientMetadata::from_trusted(
            json!({"client_id": "cfg", "client_secret": "x"})
                .as_object()
                .unwrap()
                .clone(),
        ),
    );
    let lookup = RegistryLookup::new(
        dyn_store.clone(),
        ClientResolver::new(registrar, None),
        Some(usage.clone()),
    )
    .configured([configured])
    .usage_recorder(UsageRecorder::new(
        dyn_store,
        usage.clone(),
        std::time::Duration::from_secs(60),
        100,
    ))
    .clock(clock.clone());

    let r1 = lookup.lookup("r1").await.unwrap();
    assert_eq!(r1.secret.as_ref().map(|s| s.expose()), Some(SECRET));
    assert_eq!(r1.secret_expires_at, Some(0));
    assert!(r1.client.metadata.get("client_secret").is_none());
    assert!(
        !format!("{r1:?}").contains("s3cret"),
        "Debug redacts the secret"
    );
    assert_eq!(lookup.last_used_at("r1").await.unwrap(), None);
    let resolved = lookup.resolve("r1").await.unwrap();
    assert_eq!(resolved.source, ClientSource::Registration);
    assert_eq!(lookup.last_used_at("r1").await.unwrap(), Some(NOW));

    let cfg = lookup.resolve("cfg").await.unwrap();
    assert_eq!(cfg.source, ClientSource::Configured);
    assert!(cfg.metadata.get("client_secret").is_none());

    assert_eq!(
        lookup.resolve("gone").await.unwrap_err(),
        AuthnError::UnknownClient
    );
    usage.add_tombstone("gone", NOW + 100).await.unwrap();
    assert_eq!(
        lookup.resolve("gone").await.unwrap_err(),
        AuthnError::RegistrationExpired
    );
    clock.advance(100);
    assert_eq!(
        lookup.resolve("gone").await.unwrap_err(),
        AuthnError::UnknownClient
    );
}

#[derive(Debug)]
struct Documents(HashMap<String, Value>);

#[async_trait::async_trait]
impl crate::cimd::MetadataDocumentFetcher for Documents {
    async fn fetch_document(
        &self,
        url: &url::Url,
        _max_bytes: usize,
    ) -> Result<crate::cimd::FetchedDocument, FetchError> {
        let doc = self
            .0
            .get(url.as_str())
            .ok_or_else(|| FetchError("HTTP 404".into()))?;
        Ok(crate::cimd::FetchedDocument {
            body: doc.to_string().into_bytes(),
            freshness: Some(std::time::Duration::from_secs(600)),
        })
    }
}

#[tokio::test]
async fn metadata_document_clients_authenticate_with_none_and_private_key_jwt() {
    use crate::cimd::{CimdSettings, DocumentResolver};
    use crate::metadata::ServerMetadata;
    use crate::resolve::ClientResolver;
    use crate::settings::RegistrarSettings;
    use crate::store::{MemoryStore, Store};
    let k = key();
    let public = "https://app.example/public.json";
    let signed = "https://app.example/signed.json";
    let base = |id: &str| {
        json!({"client_id": id, "client_name": "Doc", "redirect_uris": ["http://127.0.0.1/cb"],
               "grant_types": ["authorization_code"], "response_types": ["code"]})
    };
    let mut p = base(public);
    p["token_endpoint_auth_method"] = json!("none");
    let mut s = base(signed);
    s["token_endpoint_auth_method"] = json!("private_key_jwt");
    s["jwks"] = json!({"keys": [jwk(&k, "d1")]});
    let docs = Documents(
        [(public.to_owned(), p), (signed.to_owned(), s)]
            .into_iter()
            .collect(),
    );
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let registrar = crate::Registrar::builder(
        store.clone(),
        ServerMetadata::default(),
        RegistrarSettings::new("https://as.example.com"),
    )
    .build()
    .unwrap();
    let documents =
        DocumentResolver::builder(registrar.clone(), Arc::new(docs), CimdSettings::default())
            .build()
            .unwrap();
    let lookup = RegistryLookup::new(store, ClientResolver::new(registrar, Some(documents)), None);
    // The real clock: the document resolver and the claims use it alike.
    let authn =
        Authenticator::builder(Arc::new(lookup), Arc::new(MemoryReplayStore::new())).build();
    let now = crate::clock::SystemClock.now();
    let ok = authn
        .authenticate(None, &form(&[("client_id", public)]), &aud())
        .await
        .unwrap();
    assert_eq!(
        (ok.source, ok.method),
        (ClientSource::MetadataDocument, AuthMethod::None)
    );
    let c = json!({"iss": signed, "sub": signed, "aud": AUD, "exp": now + 60, "jti": "d-1"});
    let ok = authn
        .authenticate(None, &jwt_form(&sign_ed(&k, Some("d1"), &c)), &aud())
        .await
        .unwrap();
    assert_eq!(
        (ok.client_id.as_str(), ok.method),
        (signed, AuthMethod::PrivateKeyJwt)
    );
    // A document client cannot use a secret, and the wrong method is refused.
    let e = authn
        .authenticate(Some(&basic(public, "x")), &form(&[]), &aud())
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("registered with token_endpoint_auth_method none"),
        "{e}"
    );
    let e = authn
        .authenticate(
            None,
            &form(&[("client_id", "https://app.example/missing.json")]),
            &aud(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, AuthnError::Document(_)), "{e:?}");
}
