//! `Registrar::prune`: which abandoned open registrations go, and which never do.

use std::sync::Arc;

use serde_json::json;

use crate::Registrar;
use crate::clock::FixedClock;
use crate::metadata::{ClientMetadata, ServerMetadata};
use crate::registrar::PruneRules;
use crate::settings::RegistrarSettings;
use crate::store::{ClientRecord, ClientStore, MemoryStore, NewClient};

async fn setup() -> (Registrar, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    // id, created_at, registered with an IAT, managed
    for (id, created, iat, managed) in [
        ("a", 100, false, false),
        ("b", 200, false, false),
        ("c", 300, true, false),
        ("d", 400, false, true),
        ("e", 500, false, false),
        ("f", 600, false, false),
    ] {
        let c = ClientRecord {
            client_id: id.into(),
            metadata: ClientMetadata::from_trusted(
                json!({"client_id": id}).as_object().cloned().unwrap(),
            ),
            created_at: created,
            updated_at: created,
            initial_access_token_id: iat.then(|| "iat1".into()),
            managed_at: managed.then_some(created),
        };
        store
            .insert_client(NewClient {
                client: &c,
                registration_access_token: None,
                spend_initial_access_token: None,
            })
            .await
            .unwrap();
    }
    let registrar = Registrar::builder(
        store.clone(),
        ServerMetadata::default(),
        RegistrarSettings::new("http://x"),
    )
    .clock(Arc::new(FixedClock::new(1_000)))
    .build()
    .unwrap();
    (registrar, store)
}

fn ids(v: &[(String, i64)]) -> Vec<&str> {
    v.iter().map(|(id, _)| id.as_str()).collect()
}

#[tokio::test]
async fn the_oldest_beyond_the_cap_go_and_iat_or_managed_clients_never() {
    let (r, store) = setup().await;
    let rules = PruneRules {
        max_clients: Some(2),
        max_age_seconds: None,
    };
    let dry = r.prune(rules, true).await.unwrap();
    assert_eq!(ids(&dry), ["a", "b"]);
    assert!(
        store.get_client("a").await.unwrap().is_some(),
        "dry run deleted"
    );
    let gone = r.prune(rules, false).await.unwrap();
    assert_eq!(ids(&gone), ["a", "b"]);
    for id in ["c", "d", "e", "f"] {
        assert!(store.get_client(id).await.unwrap().is_some(), "{id}");
    }
    assert!(r.prune(rules, false).await.unwrap().is_empty());
    // Even a cap of one never touches c (IAT) or d (managed).
    let one = PruneRules {
        max_clients: Some(1),
        max_age_seconds: None,
    };
    assert_eq!(ids(&r.prune(one, false).await.unwrap()), ["e"]);
}

#[tokio::test]
async fn clients_older_than_the_age_go() {
    let (r, _) = setup().await;
    let rules = PruneRules {
        max_clients: None,
        max_age_seconds: Some(600), // now = 1000: created before 400 goes
    };
    assert_eq!(ids(&r.prune(rules, false).await.unwrap()), ["a", "b"]);
    assert!(
        r.prune(PruneRules::default(), false)
            .await
            .unwrap()
            .is_empty()
    );
}

/// More clients than one prune batch: the batches together delete exactly the oldest beyond
/// the cap (by count and by age), and the result equals the dry run's list.
#[tokio::test]
async fn pruning_spans_several_batches() {
    let (r, store) = setup().await;
    // 1,300 more unmanaged open clients, created at 1..=1300 (older than a..f at 100..600
    // for the first hundred; ties are broken by id).
    for n in 1..=1_300i64 {
        let id = format!("n{n:05}");
        let c = ClientRecord {
            client_id: id.clone(),
            metadata: ClientMetadata::from_trusted(
                json!({"client_id": id}).as_object().cloned().unwrap(),
            ),
            created_at: n,
            updated_at: n,
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
    }
    let by_count = PruneRules {
        max_clients: Some(10),
        max_age_seconds: None,
    };
    let dry = r.prune(by_count, true).await.unwrap();
    // 1,304 unmanaged open clients (a, b, e, f and the new ones): 1,294 go.
    assert_eq!(dry.len(), 1_294);
    let gone = r.prune(by_count, false).await.unwrap();
    assert_eq!(gone, dry);
    assert_eq!(store.count_unmanaged_open_clients().await.unwrap(), 10);
    // By age, after putting the cap aside: everything created before 1,000 - 5 = 995 went.
    let (r, store) = setup().await;
    for n in 1..=1_300i64 {
        let id = format!("n{n:05}");
        let c = ClientRecord {
            client_id: id.clone(),
            metadata: ClientMetadata::from_trusted(
                json!({"client_id": id}).as_object().cloned().unwrap(),
            ),
            created_at: n,
            updated_at: n,
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
    }
    let by_age = PruneRules {
        max_clients: None,
        max_age_seconds: Some(5),
    };
    let dry = r.prune(by_age, true).await.unwrap();
    let gone = r.prune(by_age, false).await.unwrap();
    assert_eq!(gone, dry);
    // n00001..n00994 and a, b, e, f (all created before 995).
    assert_eq!(gone.len(), 994 + 4);
    assert!(gone.iter().all(|(_, created)| *created < 995));
    let left = store.unmanaged_open_clients(usize::MAX).await.unwrap();
    assert_eq!(left.len(), 1_300 - 994);
    assert!(left.iter().all(|(_, created)| *created >= 995));
}

#[tokio::test]
async fn an_operator_deletes_through_the_registrar() {
    let (registrar, store) = setup().await;
    assert!(registrar.delete_by_operator("a", "cli").await.unwrap());
    assert!(store.get_client("a").await.unwrap().is_none());
    assert!(!registrar.delete_by_operator("a", "cli").await.unwrap());
    assert!(store.get_client("b").await.unwrap().is_some());
}
