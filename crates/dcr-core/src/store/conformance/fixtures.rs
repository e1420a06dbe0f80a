//! Records and helpers the cases build on; also usable by a store's own extra tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use serde_json::{Value, json};

use crate::metadata::ClientMetadata;
use crate::store::{
    ClientDeletion, ClientRecord, InitialAccessTokenRecord, NewClient,
    RegistrationAccessTokenRecord, Store, StoreError,
};
use crate::token::TokenHash;

/// Metadata of a web client `client_id`, with the members of `extra` (an object) added.
pub fn metadata(client_id: &str, extra: Value) -> ClientMetadata {
    let mut map = json!({
        "client_id": client_id,
        "redirect_uris": ["https://rp.example.com/cb"],
        "client_name": "Test RP",
    })
    .as_object()
    .cloned()
    .unwrap();
    if let Value::Object(extra) = extra {
        map.extend(extra);
    }
    ClientMetadata::from_trusted(map)
}

/// A client record registered openly at `created_at`, never managed.
pub fn client(client_id: &str, created_at: i64) -> ClientRecord {
    ClientRecord {
        client_id: client_id.to_owned(),
        metadata: metadata(client_id, json!({})),
        created_at,
        updated_at: created_at,
        initial_access_token_id: None,
        managed_at: None,
    }
}

/// A registration access token made from `token`, bound to `client_id`.
pub fn rat(token: &str, client_id: &str) -> RegistrationAccessTokenRecord {
    RegistrationAccessTokenRecord {
        hash: TokenHash::of(token),
        client_id: client_id.to_owned(),
        policies: vec!["tenant".into(), "audit".into()],
        created_at: 100,
    }
}

/// An initial access token `id` made from `token`, expiring at 1,000, with `max_uses`.
pub fn iat(id: &str, token: &str, max_uses: Option<u64>) -> InitialAccessTokenRecord {
    InitialAccessTokenRecord {
        id: id.to_owned(),
        hash: TokenHash::of(token),
        label: Some("for CI".into()),
        policies: vec!["tenant".into()],
        created_at: 50,
        expires_at: Some(1_000),
        max_uses,
        uses: 0,
    }
}

/// Inserts a client with a RAT made from `token`.
pub async fn register(store: &Arc<dyn Store>, client_id: &str, token: &str) -> ClientRecord {
    let c = client(client_id, 100);
    let r = rat(token, client_id);
    store
        .insert_client(NewClient {
            client: &c,
            registration_access_token: Some(&r),
            spend_initial_access_token: None,
        })
        .await
        .unwrap();
    c
}

/// `c` with the client name `name`, updated at `at`.
pub fn updated(c: &ClientRecord, name: &str, at: i64) -> ClientRecord {
    ClientRecord {
        metadata: metadata(&c.client_id, json!({ "client_name": name })),
        updated_at: at,
        ..c.clone()
    }
}

/// The registration access token made from `token`, if stored.
pub async fn rat_of(store: &Arc<dyn Store>, token: &str) -> Option<RegistrationAccessTokenRecord> {
    store
        .find_registration_access_token(&TokenHash::of(token))
        .await
        .unwrap()
}

/// Every client, in one page.
pub async fn all_clients(store: &Arc<dyn Store>) -> Vec<ClientRecord> {
    store.list_clients(None, 10_000).await.unwrap()
}

/// Deletion by an operator.
pub const ANY: ClientDeletion<'static> = ClientDeletion::Unconditional;

/// `1` inside `depth` arrays.
pub fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!([inner]))
}

/// The client ids of `list`, in order.
pub fn ids(list: Vec<ClientRecord>) -> Vec<String> {
    list.into_iter().map(|c| c.client_id).collect()
}

/// Registers client `client_id` spending a use of the initial access token `iat_id` at `now`.
pub async fn spend(
    store: &Arc<dyn Store>,
    client_id: &str,
    iat_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let mut c = client(client_id, now);
    c.initial_access_token_id = Some(iat_id.to_owned());
    let r = rat(&format!("rat-{client_id}"), client_id);
    store
        .insert_client(NewClient {
            client: &c,
            registration_access_token: Some(&r),
            spend_initial_access_token: Some((iat_id, now)),
        })
        .await
}

/// How many uses the initial access token made from `token` has spent.
pub async fn uses_of(store: &Arc<dyn Store>, token: &str) -> u64 {
    store
        .find_initial_access_token(&TokenHash::of(token))
        .await
        .unwrap()
        .unwrap()
        .uses
}
