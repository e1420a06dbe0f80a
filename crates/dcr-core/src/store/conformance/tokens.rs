//! Cases on initial access tokens and on which clients count as managed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use serde_json::json;

use super::fixtures::*;
use crate::store::{ClientDeletion, NewClient, Store, StoreError};
use crate::token::TokenHash;

/// Initial access tokens insert find list revoke.
pub async fn initial_access_tokens_insert_find_list_revoke(store: &Arc<dyn Store>) {
    let mut later = iat("b-later", "tok-later", None);
    later.created_at = 60;
    later.label = None;
    later.policies = vec![];
    later.expires_at = None;
    let mut early_b = iat("b", "tok-b", Some(3));
    early_b.uses = 1;
    let early_a = iat("a", "tok-a", Some(u64::from(u32::MAX)));
    for t in [&later, &early_b, &early_a] {
        store.insert_initial_access_token(t).await.unwrap();
    }
    assert_eq!(
        store
            .find_initial_access_token(&TokenHash::of("tok-b"))
            .await
            .unwrap(),
        Some(early_b.clone())
    );
    assert_eq!(
        store
            .find_initial_access_token(&TokenHash::of("nope"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.list_initial_access_tokens().await.unwrap(),
        vec![early_a.clone(), early_b.clone(), later.clone()],
        "by creation time, then id"
    );
    assert!(store.revoke_initial_access_token("b").await.unwrap());
    assert!(!store.revoke_initial_access_token("b").await.unwrap());
    assert!(!store.revoke_initial_access_token("never").await.unwrap());
    assert_eq!(
        store
            .find_initial_access_token(&TokenHash::of("tok-b"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.list_initial_access_tokens().await.unwrap(),
        vec![early_a, later]
    );
    // A revoked token cannot be spent.
    let c = client("after-revoke", 100);
    let err = store
        .insert_client(NewClient {
            client: &c,
            registration_access_token: None,
            spend_initial_access_token: Some(("b", 100)),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::InitialAccessTokenUnavailable),
        "{err:?}"
    );
}

/// Initial access token conflicts.
pub async fn initial_access_token_conflicts(store: &Arc<dyn Store>) {
    store
        .insert_initial_access_token(&iat("i1", "tok-1", None))
        .await
        .unwrap();
    let same_id = iat("i1", "tok-2", None);
    let err = store
        .insert_initial_access_token(&same_id)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TokenExists), "{err:?}");
    let same_hash = iat("i2", "tok-1", None);
    let err = store
        .insert_initial_access_token(&same_hash)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TokenExists), "{err:?}");
    assert_eq!(store.list_initial_access_tokens().await.unwrap().len(), 1);
}

/// Spending counts uses and stops at max uses.
pub async fn spending_counts_uses_and_stops_at_max_uses(store: &Arc<dyn Store>) {
    store
        .insert_initial_access_token(&iat("lim", "tok-lim", Some(2)))
        .await
        .unwrap();
    store
        .insert_initial_access_token(&iat("unl", "tok-unl", None))
        .await
        .unwrap();
    spend(store, "s1", "lim", 100).await.unwrap();
    assert_eq!(uses_of(store, "tok-lim").await, 1);
    spend(store, "s2", "lim", 100).await.unwrap();
    assert_eq!(uses_of(store, "tok-lim").await, 2);
    let err = spend(store, "s3", "lim", 100).await.unwrap_err();
    assert!(
        matches!(err, StoreError::InitialAccessTokenUnavailable),
        "{err:?}"
    );
    assert_eq!(uses_of(store, "tok-lim").await, 2, "no use spent");
    assert_eq!(
        store.get_client("s3").await.unwrap(),
        None,
        "nothing written"
    );
    assert_eq!(rat_of(store, "rat-s3").await, None);
    let s1 = store.get_client("s1").await.unwrap().unwrap();
    assert_eq!(s1.initial_access_token_id.as_deref(), Some("lim"));

    for i in 0..5 {
        spend(store, &format!("u{i}"), "unl", 100).await.unwrap();
    }
    assert_eq!(uses_of(store, "tok-unl").await, 5);

    // A client id conflict spends nothing.
    let err = spend(store, "u0", "unl", 100).await.unwrap_err();
    assert!(matches!(err, StoreError::ClientExists), "{err:?}");
    assert_eq!(uses_of(store, "tok-unl").await, 5);
}

/// Expired or unknown initial access token writes nothing.
pub async fn expired_or_unknown_initial_access_token_writes_nothing(store: &Arc<dyn Store>) {
    store
        .insert_initial_access_token(&iat("exp", "tok-exp", None)) // expires_at 1000
        .await
        .unwrap();
    spend(store, "before", "exp", 999).await.unwrap();
    for (client_id, now) in [("at", 1_000), ("after", 5_000)] {
        let err = spend(store, client_id, "exp", now).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InitialAccessTokenUnavailable),
            "{err:?}"
        );
        assert_eq!(store.get_client(client_id).await.unwrap(), None);
    }
    assert_eq!(uses_of(store, "tok-exp").await, 1);
    let err = spend(store, "ghost", "no-such-iat", 100).await.unwrap_err();
    assert!(
        matches!(err, StoreError::InitialAccessTokenUnavailable),
        "{err:?}"
    );
    assert_eq!(store.get_client("ghost").await.unwrap(), None);
    assert_eq!(rat_of(store, "rat-ghost").await, None);
}

// ===== managed / unmanaged =====

/// Mark managed and unmanaged open listing.
pub async fn mark_managed_and_unmanaged_open_listing(store: &Arc<dyn Store>) {
    for (id, created) in [("o3", 30), ("o1", 10), ("o2b", 20), ("o2a", 20)] {
        let c = client(id, created);
        store
            .insert_client(NewClient {
                client: &c,
                registration_access_token: None,
                spend_initial_access_token: None,
            })
            .await
            .unwrap();
    }
    store
        .insert_initial_access_token(&iat("iat", "tok", None))
        .await
        .unwrap();
    spend(store, "with-iat", "iat", 5).await.unwrap();

    assert_eq!(store.count_unmanaged_open_clients().await.unwrap(), 4);
    assert_eq!(
        store.unmanaged_open_clients(10).await.unwrap(),
        vec![
            ("o1".to_owned(), 10),
            ("o2a".to_owned(), 20),
            ("o2b".to_owned(), 20),
            ("o3".to_owned(), 30)
        ],
        "oldest first, then by id; registered with an IAT never listed"
    );
    assert_eq!(store.unmanaged_open_clients(2).await.unwrap().len(), 2);

    store.mark_managed("o2a", 500).await.unwrap();
    store.mark_managed("o2a", 900).await.unwrap();
    store.mark_managed("unknown", 500).await.unwrap();
    assert_eq!(
        store.get_client("o2a").await.unwrap().unwrap().managed_at,
        Some(500),
        "the first time is kept"
    );
    assert_eq!(store.count_unmanaged_open_clients().await.unwrap(), 3);
    let listed: Vec<String> = store
        .unmanaged_open_clients(10)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(listed, ["o1", "o2b", "o3"]);
    store.delete_client("o1", ANY).await.unwrap();
    assert_eq!(store.count_unmanaged_open_clients().await.unwrap(), 2);
    assert_eq!(store.unmanaged_open_clients(0).await.unwrap(), vec![]);
}

/// A store that keeps the defaults of the maintenance methods: nothing is ever listed as a
/// pruning candidate (so pruning never deletes a client it cannot tell is unmanaged), and
/// marking a client managed is accepted.
pub async fn default_maintenance_prunes_nothing(store: &Arc<dyn Store>) {
    register(store, "open", "rat-open").await;
    store.mark_managed("open", 500).await.unwrap();
    store.mark_managed("unknown", 500).await.unwrap();
    assert_eq!(store.count_unmanaged_open_clients().await.unwrap(), 0);
    assert_eq!(store.unmanaged_open_clients(10).await.unwrap(), vec![]);
    assert!(store.get_client("open").await.unwrap().is_some());
}

/// Pruning deletes a client only while it is an unmanaged open registration, without
/// decoding it.
pub async fn prune_deletion_takes_only_unmanaged_open_clients(store: &Arc<dyn Store>) {
    register(store, "open", "rat-open").await;
    register(store, "managed", "rat-managed").await;
    store.mark_managed("managed", 100).await.unwrap();
    store
        .insert_initial_access_token(&iat("iat", "tok", None))
        .await
        .unwrap();
    spend(store, "with-iat", "iat", 5).await.unwrap();
    let mut poison = client("poison", 100);
    poison.metadata = metadata("poison", json!({ "tenant": nested(200) }));
    store
        .insert_client(NewClient {
            client: &poison,
            registration_access_token: Some(&rat("rat-poison", "poison")),
            spend_initial_access_token: None,
        })
        .await
        .unwrap();

    let prune = ClientDeletion::IfUnmanagedOpen;
    for kept in ["managed", "with-iat", "never-was"] {
        assert!(
            !store.delete_client(kept, prune).await.unwrap(),
            "{kept} is not pruned"
        );
    }
    assert!(store.get_client("managed").await.unwrap().is_some());
    assert!(store.get_client("with-iat").await.unwrap().is_some());
    assert!(rat_of(store, "rat-managed").await.is_some());
    for pruned in ["open", "poison"] {
        assert!(
            store.delete_client(pruned, prune).await.unwrap(),
            "{pruned}"
        );
        assert_eq!(store.get_client(pruned).await.unwrap(), None);
    }
    assert_eq!(rat_of(store, "rat-open").await, None);
    assert_eq!(rat_of(store, "rat-poison").await, None);
    assert_eq!(store.count_unmanaged_open_clients().await.unwrap(), 0);
}
