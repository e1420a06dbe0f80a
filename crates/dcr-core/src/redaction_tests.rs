//! No `Debug` of a type that can hold a client secret or a token shows it (issue 13.2).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::Registrar;
use crate::client::RegisteredClient;
use crate::context::RequestContext;
use crate::metadata::{ClientMetadata, ServerMetadata};
use crate::policy::PolicyCall;
use crate::registrar::ClientResponse;
use crate::settings::{InitialAccessTokenMode, RegistrarSettings};
use crate::store::{
    ClientRecord, ClientUpdate, InitialAccessTokenRecord, MemoryStore, NewClient,
    RegistrationAccessTokenRecord,
};
use crate::token::{Secret, TokenHash};

const SECRET: &str = "hunter2-client-secret";
const TOKEN: &str = "hunter2-access-token";

fn document() -> Map<String, Value> {
    json!({
        "client_id": "abc",
        "client_secret": SECRET,
        "client_secret_expires_at": 0,
        "redirect_uris": ["https://rp.example/cb"],
    })
    .as_object()
    .cloned()
    .unwrap()
}

#[track_caller]
fn assert_hidden(what: &str, printed: String) {
    assert!(
        !printed.contains(SECRET),
        "{what} shows the secret: {printed}"
    );
    assert!(
        !printed.contains(TOKEN),
        "{what} shows the token: {printed}"
    );
}

#[tokio::test]
async fn debug_never_shows_a_secret_or_a_token() {
    let metadata = ClientMetadata::from_trusted(document());
    assert_hidden("ClientMetadata", format!("{metadata:?}"));
    assert!(format!("{metadata:?}").contains("client_secret"));

    let client = RegisteredClient::from_metadata(metadata.clone());
    assert_hidden("RegisteredClient", format!("{client:?}"));
    assert_eq!(client.client_secret().map(Secret::expose), Some(SECRET));

    let response = ClientResponse {
        metadata: metadata.clone(),
        registration_access_token: Some(Secret::new(TOKEN)),
        registration_client_uri: Some("https://as.example/reg/abc".into()),
    };
    assert_hidden("ClientResponse", format!("{response:?}"));

    let record = ClientRecord {
        client_id: "abc".into(),
        metadata: metadata.clone(),
        created_at: 1,
        updated_at: 1,
        initial_access_token_id: None,
        managed_at: None,
    };
    assert_hidden("ClientRecord", format!("{record:?}"));
    let rat = RegistrationAccessTokenRecord {
        hash: TokenHash::of(TOKEN),
        client_id: "abc".into(),
        policies: vec![],
        created_at: 1,
    };
    assert_hidden("RegistrationAccessTokenRecord", format!("{rat:?}"));
    let new = NewClient {
        client: &record,
        registration_access_token: Some(&rat),
        spend_initial_access_token: None,
    };
    assert_hidden("NewClient", format!("{new:?}"));
    let presented = TokenHash::of(TOKEN);
    let update = ClientUpdate {
        client: &record,
        presented: &presented,
        rotate_to: Some(&rat),
    };
    assert_hidden("ClientUpdate", format!("{update:?}"));
    let iat = InitialAccessTokenRecord {
        id: "id".into(),
        hash: TokenHash::of(TOKEN),
        label: None,
        policies: vec![],
        created_at: 1,
        expires_at: None,
        max_uses: None,
        uses: 0,
    };
    assert_hidden("InitialAccessTokenRecord", format!("{iat:?}"));

    let call = PolicyCall {
        request: RequestContext::default(),
        properties: document(),
        registration_access_token_policies: None,
    };
    assert_hidden("PolicyCall", format!("{call:?}"));

    let mut settings = RegistrarSettings::new("https://as.example");
    settings.initial_access_token = InitialAccessTokenMode::static_token(TOKEN);
    assert_hidden("RegistrarSettings", format!("{settings:?}"));

    // A client registered and authorised through the registrar.
    let registrar = Registrar::builder(
        Arc::new(MemoryStore::new()),
        ServerMetadata::default(),
        RegistrarSettings::new("https://as.example"),
    )
    .build()
    .unwrap();
    let registered = registrar
        .register(
            RequestContext::default(),
            None,
            json!({"redirect_uris": ["https://rp.example/cb"]})
                .as_object()
                .cloned()
                .unwrap(),
        )
        .await
        .unwrap();
    let secret = registered.metadata.client_secret().unwrap().to_owned();
    let token = registered
        .registration_access_token
        .clone()
        .unwrap()
        .expose()
        .to_owned();
    for (what, printed) in [
        ("registered ClientResponse", format!("{registered:?}")),
        ("Registrar", format!("{registrar:?}")),
    ] {
        assert!(
            !printed.contains(&secret),
            "{what} shows the secret: {printed}"
        );
        assert!(
            !printed.contains(&token),
            "{what} shows the token: {printed}"
        );
    }
    let typed = registered.client();
    assert_eq!(
        typed.client_secret().map(Secret::expose),
        Some(secret.as_str())
    );
    assert!(!format!("{typed:?}").contains(&secret));
    let id = registered.metadata.client_id().to_owned();
    let authorized = registrar.authorize(&id, Some(&token)).await.unwrap();
    let printed = format!("{authorized:?}");
    assert!(
        !printed.contains(&secret),
        "AuthorizedClient shows the secret: {printed}"
    );
    assert!(
        !printed.contains(&token),
        "AuthorizedClient shows the token: {printed}"
    );
}
