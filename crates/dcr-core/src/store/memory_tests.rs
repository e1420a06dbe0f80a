//! The memory store's own index and cache, against brute force.

use std::collections::BTreeMap;

use serde_json::{Map, json};

use super::*;
use crate::metadata::ClientMetadata;

/// A small deterministic generator (no timing, no seed from the environment).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn record(id: &str, created_at: i64, iat: bool) -> ClientRecord {
    ClientRecord {
        client_id: id.to_owned(),
        metadata: ClientMetadata::from_trusted(Map::new()),
        created_at,
        updated_at: created_at,
        initial_access_token_id: iat.then(|| "iat".to_owned()),
        managed_at: None,
    }
}

fn hash(n: u64) -> TokenHash {
    TokenHash::of(&format!("token-{n}"))
}

fn rat(n: u64, client_id: &str) -> RegistrationAccessTokenRecord {
    RegistrationAccessTokenRecord {
        hash: hash(n),
        client_id: client_id.to_owned(),
        policies: Vec::new(),
        created_at: 0,
    }
}

/// Brute force over the clients map, as the store computed it before it had an index.
fn brute_unmanaged(store: &MemoryStore) -> Vec<(String, i64)> {
    let inner = store.lock();
    let mut all: Vec<(String, i64)> = inner
        .clients
        .iter()
        .filter(|(_, c)| c.is_unmanaged_open())
        .map(|(id, c)| (id.to_string(), c.created_at))
        .collect();
    all.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    all
}

async fn check(store: &MemoryStore, live_tokens: &BTreeMap<u64, String>) {
    let expected = brute_unmanaged(store);
    assert_eq!(
        store.count_unmanaged_open_clients().await.unwrap(),
        expected.len() as u64
    );
    assert_eq!(
        store.unmanaged_open_clients(usize::MAX).await.unwrap(),
        expected
    );
    for k in [0, 1, 3, 10] {
        let got = store.unmanaged_open_clients(k).await.unwrap();
        assert_eq!(got, expected[..k.min(expected.len())]);
    }
    // Listing: every client once, in id order, the same whole or in pages of 3.
    let mut ids: Vec<String> = store.lock().clients.keys().map(|k| k.to_string()).collect();
    ids.sort();
    let listed: Vec<String> = store
        .list_clients(None, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(listed, ids);
    let mut paged = Vec::new();
    loop {
        let page = store
            .list_clients(paged.last().map(String::as_str), 3)
            .await;
        let page: Vec<String> = page.unwrap().into_iter().map(|c| c.client_id).collect();
        if page.is_empty() {
            break;
        }
        paged.extend(page);
    }
    assert_eq!(paged, ids);
    // Exactly the live tokens exist, each bound to its client, and the per-client index
    // holds exactly them.
    let inner = store.lock();
    assert_eq!(inner.rats.len(), live_tokens.len());
    let indexed: usize = inner.clients.values().map(|c| c.rats.len()).sum();
    assert_eq!(indexed, live_tokens.len());
    for (n, client) in live_tokens {
        let r = inner.rats.get(&hash(*n)).expect("live token stored");
        assert_eq!(&*r.client_id, client.as_str());
        assert!(inner.clients[client.as_str()].rats.contains(&hash(*n)));
    }
}

#[tokio::test]
async fn indexes_match_brute_force_after_random_operations() {
    let store = MemoryStore::new();
    let mut rng = Lcg(7);
    // token number → client id, for the tokens that must still exist.
    let mut live: BTreeMap<u64, String> = BTreeMap::new();
    let mut next_token = 0u64;
    for step in 0..3_000u64 {
        let id = format!("c{}", rng.next(60));
        let exists = store.get_client(&id).await.unwrap();
        match rng.next(6) {
            0 | 1 => {
                next_token += 1;
                let r = rat(next_token, &id);
                // Few distinct creation times, so ties are ordered by id.
                let c = record(&id, rng.next(8) as i64, rng.next(4) == 0);
                let res = store
                    .insert_client(NewClient {
                        client: &c,
                        registration_access_token: Some(&r),
                        spend_initial_access_token: None,
                    })
                    .await;
                assert_eq!(res.is_ok(), exists.is_none());
                if res.is_ok() {
                    live.insert(next_token, id.clone());
                }
            }
            2 => {
                // Update, rotating or not, with one of the client's tokens.
                let presented = live.iter().find(|(_, c)| **c == id).map(|(n, _)| *n);
                if let (Some(old), Some(p)) = (exists, presented) {
                    let mut c = old.clone();
                    c.updated_at = step as i64;
                    // Updates may also change the fields the index depends on.
                    c.created_at = rng.next(8) as i64;
                    c.managed_at = (rng.next(3) == 0).then_some(step as i64);
                    next_token += 1;
                    let r = rat(next_token, &id);
                    let rotate = rng.next(2) == 0;
                    store
                        .update_client(ClientUpdate {
                            client: &c,
                            presented: &hash(p),
                            rotate_to: rotate.then_some(&r),
                        })
                        .await
                        .unwrap();
                    if rotate {
                        live.remove(&p);
                        live.insert(next_token, id.clone());
                    }
                }
            }
            3 => {
                store.mark_managed(&id, step as i64).await.unwrap();
            }
            4 => {
                let existed = store
                    .delete_client(&id, ClientDeletion::Unconditional)
                    .await
                    .unwrap();
                assert_eq!(existed, exists.is_some());
                // Deleting removes exactly this client's tokens.
                live.retain(|_, c| *c != id);
                assert!(!store.lock().rats.values().any(|r| *r.client_id == *id));
            }
            _ => {
                // Revoke one token of the client, if it has one.
                if let Some(n) = live.iter().find(|(_, c)| **c == id).map(|(n, _)| *n) {
                    store
                        .revoke_registration_access_token(&hash(n))
                        .await
                        .unwrap();
                    live.remove(&n);
                }
            }
        }
        check(&store, &live).await;
    }
}

#[tokio::test]
async fn deleting_a_client_removes_exactly_its_tokens() {
    let store = MemoryStore::new();
    for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
        let c = record(id, i as i64, false);
        let r = rat(i as u64, id);
        store
            .insert_client(NewClient {
                client: &c,
                registration_access_token: Some(&r),
                spend_initial_access_token: None,
            })
            .await
            .unwrap();
    }
    // A second token for "b" (rotation keeps one; insert a spare directly).
    store.lock().put_rat(&rat(10, "b"));
    assert!(
        store
            .delete_client("b", ClientDeletion::Unconditional)
            .await
            .unwrap()
    );
    for (n, present) in [(0, true), (1, false), (2, true), (10, false)] {
        assert_eq!(
            store
                .find_registration_access_token(&hash(n))
                .await
                .unwrap()
                .is_some(),
            present,
            "token {n}"
        );
    }
    assert_eq!(
        store.unmanaged_open_clients(10).await.unwrap(),
        vec![("a".to_owned(), 0), ("c".to_owned(), 2)]
    );
    assert!(
        !store
            .delete_client("b", ClientDeletion::Unconditional)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn reads_keep_the_parsed_metadata_until_the_client_changes() {
    let store = MemoryStore::new();
    let c = ClientRecord {
        client_id: "a".into(),
        metadata: ClientMetadata::from_trusted(
            json!({"client_id": "a", "client_name": "A"})
                .as_object()
                .cloned()
                .unwrap(),
        ),
        created_at: 1,
        updated_at: 1,
        initial_access_token_id: None,
        managed_at: None,
    };
    store
        .insert_client(NewClient {
            client: &c,
            registration_access_token: None,
            spend_initial_access_token: None,
        })
        .await
        .unwrap();
    let first = store.get_client("a").await.unwrap().unwrap();
    assert_eq!(first, c);
    assert_eq!(store.parsed.len(), 1);
    let second = store.get_client("a").await.unwrap().unwrap();
    assert_eq!(second, c);
    assert!(
        Arc::ptr_eq(&first.metadata.json(), &second.metadata.json()),
        "parsed once"
    );
}
