//! Cases on clients and their registration access tokens, one request at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use serde_json::json;

use super::fixtures::*;
use crate::store::{
    ClientDeletion, ClientRecord, ClientUpdate, NewClient, RegistrationAccessTokenRecord, Store,
    StoreError,
};
use crate::token::TokenHash;

/// Insert then get round trips exactly.
pub async fn insert_then_get_round_trips_exactly(store: &Arc<dyn Store>) {
    let mut c = client("c1", 100);
    // Strings JSONB would refuse or normalise, numbers, nesting, non-ASCII.
    c.metadata = metadata(
        "c1",
        json!({
            "client_name": "nul \u{0} tab \t quote \" emoji 🦀 é",
            "client_name#ja-JP": "テスト",
            "default_max_age": 3600,
            "ratio": 0.1,
            "big": 18_446_744_073_709_551_615_u64,
            "tenant": { "id": [1, {"deep": null}], "empty": {} },
        }),
    );
    c.initial_access_token_id = None;
    let r = rat("rat-1", "c1");
    store
        .insert_client(NewClient {
            client: &c,
            registration_access_token: Some(&r),
            spend_initial_access_token: None,
        })
        .await
        .unwrap();

    assert_eq!(store.get_client("c1").await.unwrap(), Some(c.clone()));
    assert_eq!(rat_of(store, "rat-1").await, Some(r));
    assert_eq!(store.get_client("nope").await.unwrap(), None);
    assert_eq!(rat_of(store, "nope").await, None);

    // Without a RAT.
    let c2 = client("c2", 101);
    store
        .insert_client(NewClient {
            client: &c2,
            registration_access_token: None,
            spend_initial_access_token: None,
        })
        .await
        .unwrap();
    assert_eq!(store.get_client("c2").await.unwrap(), Some(c2));
}

/// Duplicate client id is a conflict and writes nothing.
pub async fn duplicate_client_id_is_a_conflict_and_writes_nothing(store: &Arc<dyn Store>) {
    let first = register(store, "dup", "rat-a").await;
    let second = ClientRecord {
        metadata: metadata("dup", json!({"client_name": "second"})),
        ..first.clone()
    };
    let r = rat("rat-b", "dup");
    let err = store
        .insert_client(NewClient {
            client: &second,
            registration_access_token: Some(&r),
            spend_initial_access_token: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ClientExists), "{err:?}");
    assert_eq!(store.get_client("dup").await.unwrap(), Some(first));
    assert_eq!(
        rat_of(store, "rat-b").await,
        None,
        "its RAT was not written"
    );
    assert!(rat_of(store, "rat-a").await.is_some());
}

/// Duplicate token hash is a conflict and writes nothing.
pub async fn duplicate_token_hash_is_a_conflict_and_writes_nothing(store: &Arc<dyn Store>) {
    register(store, "a", "same-token").await;
    let b = client("b", 100);
    let r = rat("same-token", "b");
    let err = store
        .insert_client(NewClient {
            client: &b,
            registration_access_token: Some(&r),
            spend_initial_access_token: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TokenExists), "{err:?}");
    assert_eq!(store.get_client("b").await.unwrap(), None, "all or nothing");
    assert_eq!(rat_of(store, "same-token").await.unwrap().client_id, "a");
}

/// Update without rotation replaces the record and keeps the token.
pub async fn update_without_rotation_replaces_the_record_and_keeps_the_token(
    store: &Arc<dyn Store>,
) {
    let c = register(store, "u", "rat-u").await;
    let mut new = updated(&c, "renamed", 200);
    new.managed_at = Some(200);
    store
        .update_client(ClientUpdate {
            client: &new,
            presented: &TokenHash::of("rat-u"),
            rotate_to: None,
        })
        .await
        .unwrap();
    assert_eq!(store.get_client("u").await.unwrap(), Some(new));
    assert!(rat_of(store, "rat-u").await.is_some(), "token still valid");
}

/// Update keeps the first managed at.
pub async fn update_keeps_the_first_managed_at(store: &Arc<dyn Store>) {
    let c = register(store, "m", "rat-m").await;
    store.mark_managed("m", 150).await.unwrap();
    let mut new = updated(&c, "later", 300);
    new.managed_at = Some(300);
    store
        .update_client(ClientUpdate {
            client: &new,
            presented: &TokenHash::of("rat-m"),
            rotate_to: None,
        })
        .await
        .unwrap();
    let stored = store.get_client("m").await.unwrap().unwrap();
    assert_eq!(stored.managed_at, Some(150));
    assert_eq!(stored.metadata, new.metadata);
}

/// Update with rotation replaces the token.
pub async fn update_with_rotation_replaces_the_token(store: &Arc<dyn Store>) {
    let c = register(store, "r", "rat-old").await;
    let new = updated(&c, "rotated", 200);
    let next = RegistrationAccessTokenRecord {
        policies: vec!["p".into()],
        created_at: 200,
        ..rat("rat-new", "r")
    };
    store
        .update_client(ClientUpdate {
            client: &new,
            presented: &TokenHash::of("rat-old"),
            rotate_to: Some(&next),
        })
        .await
        .unwrap();
    assert_eq!(
        rat_of(store, "rat-old").await,
        None,
        "the old token is dead"
    );
    assert_eq!(rat_of(store, "rat-new").await, Some(next));
    assert_eq!(store.get_client("r").await.unwrap(), Some(new.clone()));

    // The old token no longer authorises anything.
    let again = updated(&c, "again", 300);
    let err = store
        .update_client(ClientUpdate {
            client: &again,
            presented: &TokenHash::of("rat-old"),
            rotate_to: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::RegistrationAccessTokenGone),
        "{err:?}"
    );
    assert_eq!(store.get_client("r").await.unwrap(), Some(new));
}

/// Update needs a token bound to that client.
pub async fn update_needs_a_token_bound_to_that_client(store: &Arc<dyn Store>) {
    let a = register(store, "a", "rat-of-a").await;
    let b = register(store, "b", "rat-of-b").await;
    for rotate in [false, true] {
        let next = rat("never", "b");
        let err = store
            .update_client(ClientUpdate {
                client: &updated(&b, "hijacked", 200),
                presented: &TokenHash::of("rat-of-a"),
                rotate_to: rotate.then_some(&next),
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::RegistrationAccessTokenGone),
            "{err:?}"
        );
    }
    assert_eq!(store.get_client("b").await.unwrap(), Some(b));
    assert_eq!(store.get_client("a").await.unwrap(), Some(a));
    assert!(rat_of(store, "rat-of-a").await.is_some());
    assert_eq!(rat_of(store, "never").await, None);

    // An unknown client.
    let ghost = client("ghost", 1);
    let err = store
        .update_client(ClientUpdate {
            client: &ghost,
            presented: &TokenHash::of("rat-of-a"),
            rotate_to: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::RegistrationAccessTokenGone),
        "{err:?}"
    );
    assert_eq!(store.get_client("ghost").await.unwrap(), None);
}

/// Rotation to an existing hash changes nothing.
pub async fn rotation_to_an_existing_hash_changes_nothing(store: &Arc<dyn Store>) {
    let c = register(store, "x", "rat-x").await;
    register(store, "y", "rat-y").await;
    let clash = rat("rat-y", "x");
    let err = store
        .update_client(ClientUpdate {
            client: &updated(&c, "changed", 200),
            presented: &TokenHash::of("rat-x"),
            rotate_to: Some(&clash),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TokenExists), "{err:?}");
    assert_eq!(store.get_client("x").await.unwrap(), Some(c), "unchanged");
    assert_eq!(rat_of(store, "rat-x").await.unwrap().client_id, "x");
    assert_eq!(rat_of(store, "rat-y").await.unwrap().client_id, "y");
}

/// Delete removes the client and its tokens.
pub async fn delete_removes_the_client_and_its_tokens(store: &Arc<dyn Store>) {
    let c = register(store, "d", "rat-d1").await;
    // A second generation of token, through rotation.
    store
        .update_client(ClientUpdate {
            client: &updated(&c, "d2", 200),
            presented: &TokenHash::of("rat-d1"),
            rotate_to: Some(&rat("rat-d2", "d")),
        })
        .await
        .unwrap();
    register(store, "other", "rat-other").await;

    assert!(store.delete_client("d", ANY).await.unwrap());
    assert_eq!(store.get_client("d").await.unwrap(), None);
    assert_eq!(rat_of(store, "rat-d1").await, None);
    assert_eq!(rat_of(store, "rat-d2").await, None);
    assert!(
        !store.delete_client("d", ANY).await.unwrap(),
        "already gone"
    );
    assert!(!store.delete_client("never-was", ANY).await.unwrap());
    // Others untouched.
    assert!(store.get_client("other").await.unwrap().is_some());
    assert!(rat_of(store, "rat-other").await.is_some());

    // The id can be registered again, with a fresh token.
    register(store, "d", "rat-d3").await;
    assert_eq!(rat_of(store, "rat-d2").await, None);
}

/// Delete by token needs that token bound to the client.
pub async fn delete_by_token_needs_that_token_bound_to_the_client(store: &Arc<dyn Store>) {
    let a = register(store, "a", "rat-a").await;
    register(store, "b", "rat-b").await;
    let by = |token: &str| TokenHash::of(token);
    for (token, why) in [
        ("rat-b", "a token of another client"),
        ("rat-none", "an unknown token"),
    ] {
        let hash = by(token);
        assert!(
            !store
                .delete_client("a", ClientDeletion::ByToken(&hash))
                .await
                .unwrap(),
            "{why} deletes nothing"
        );
    }
    assert_eq!(store.get_client("a").await.unwrap(), Some(a));
    assert!(rat_of(store, "rat-a").await.is_some());
    assert!(rat_of(store, "rat-b").await.is_some());
    // Revoked, then presented: nothing.
    store
        .revoke_registration_access_token(&by("rat-a"))
        .await
        .unwrap();
    let hash = by("rat-a");
    assert!(
        !store
            .delete_client("a", ClientDeletion::ByToken(&hash))
            .await
            .unwrap()
    );
    assert!(store.get_client("a").await.unwrap().is_some());
    // Its own token deletes it, with its tokens.
    let hash = by("rat-b");
    assert!(
        store
            .delete_client("b", ClientDeletion::ByToken(&hash))
            .await
            .unwrap()
    );
    assert_eq!(store.get_client("b").await.unwrap(), None);
    assert_eq!(rat_of(store, "rat-b").await, None);
    assert!(
        !store
            .delete_client("b", ClientDeletion::ByToken(&hash))
            .await
            .unwrap(),
        "already gone"
    );
}

/// RFC 7592: a rotating update and a delete presented with one token at once. Exactly one
/// succeeds, and the stored state is the winner's.
pub async fn parallel_rotation_and_delete_with_one_token_let_exactly_one_win(
    store: &Arc<dyn Store>,
) {
    let (mut updates, mut deletes) = (0, 0);
    for round in 0..64 {
        let id = format!("rd{round}");
        let c = register(store, &id, &format!("old-{round}")).await;
        let update = {
            let store = Arc::clone(store);
            let new = updated(&c, "rotated", 200);
            let next = rat(&format!("new-{round}"), &id);
            let presented = TokenHash::of(&format!("old-{round}"));
            tokio::spawn(async move {
                store
                    .update_client(ClientUpdate {
                        client: &new,
                        presented: &presented,
                        rotate_to: Some(&next),
                    })
                    .await
            })
        };
        let delete = {
            let store = Arc::clone(store);
            let (id, presented) = (id.clone(), TokenHash::of(&format!("old-{round}")));
            tokio::spawn(async move {
                store
                    .delete_client(&id, ClientDeletion::ByToken(&presented))
                    .await
            })
        };
        let updated_ok = match update.await.unwrap() {
            Ok(()) => true,
            Err(StoreError::RegistrationAccessTokenGone) => false,
            Err(e) => panic!("unexpected {e:?}"),
        };
        let deleted = delete.await.unwrap().unwrap();
        assert!(
            updated_ok != deleted,
            "round {round}: exactly one succeeds (update {updated_ok}, delete {deleted})"
        );
        assert_eq!(rat_of(store, &format!("old-{round}")).await, None);
        let stored = store.get_client(&id).await.unwrap();
        if updated_ok {
            updates += 1;
            assert_eq!(stored.unwrap().metadata.str("client_name"), Some("rotated"));
            assert!(rat_of(store, &format!("new-{round}")).await.is_some());
        } else {
            deletes += 1;
            assert_eq!(stored, None);
            assert_eq!(rat_of(store, &format!("new-{round}")).await, None);
        }
    }
    assert_eq!(updates + deletes, 64);
}

/// Revoked token is gone.
pub async fn revoked_token_is_gone(store: &Arc<dyn Store>) {
    let c = register(store, "v", "rat-v").await;
    store
        .revoke_registration_access_token(&TokenHash::of("rat-v"))
        .await
        .unwrap();
    assert_eq!(rat_of(store, "rat-v").await, None);
    // Revoking an unknown token is not an error.
    store
        .revoke_registration_access_token(&TokenHash::of("rat-v"))
        .await
        .unwrap();
    let err = store
        .update_client(ClientUpdate {
            client: &updated(&c, "after revoke", 200),
            presented: &TokenHash::of("rat-v"),
            rotate_to: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::RegistrationAccessTokenGone),
        "{err:?}"
    );
    assert_eq!(store.get_client("v").await.unwrap(), Some(c), "client kept");
}

/// A client stored with metadata nested deeper than the JSON reader's recursion limit (128):
/// it is written, but cannot be read back (issue 12, item 5).
pub async fn undecodable_client_breaks_neither_listing_nor_other_clients(store: &Arc<dyn Store>) {
    register(store, "p1", "rat-p1").await;
    let mut poison = client("p2", 100);
    poison.metadata = metadata("p2", json!({ "tenant": nested(200) }));
    store
        .insert_client(NewClient {
            client: &poison,
            registration_access_token: Some(&rat("rat-p2", "p2")),
            spend_initial_access_token: None,
        })
        .await
        .unwrap();
    register(store, "p3", "rat-p3").await;

    assert_eq!(ids(all_clients(store).await), ["p1", "p3"]);
    // Pages stay full: what follows a skipped client fills its place.
    assert_eq!(
        ids(store.list_clients(None, 2).await.unwrap()),
        ["p1", "p3"]
    );
    assert_eq!(
        ids(store.list_clients(Some("p1"), 1).await.unwrap()),
        ["p3"]
    );
    assert!(store.list_clients(Some("p3"), 5).await.unwrap().is_empty());
    // Reading it is an error for that id only.
    let err = store.get_client("p2").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Undecodable { client_id, .. } if client_id == "p2"),
        "{err:?}"
    );
    assert!(store.get_client("p1").await.unwrap().is_some());
    assert!(store.get_client("p3").await.unwrap().is_some());
    // Its token still resolves, and an operator can delete it.
    assert!(rat_of(store, "rat-p2").await.is_some());
    assert!(store.delete_client("p2", ANY).await.unwrap());
    assert_eq!(store.get_client("p2").await.unwrap(), None);
    assert_eq!(ids(all_clients(store).await), ["p1", "p3"]);
}

/// List pages in client id byte order.
pub async fn list_pages_in_client_id_byte_order(store: &Arc<dyn Store>) {
    let ids = ["b", "a", "B", "_x", "0", "a-1", "aa", "Z", "é"];
    for (i, id) in ids.iter().enumerate() {
        register(store, id, &format!("rat-{i}")).await;
    }
    let mut expected: Vec<&str> = ids.to_vec();
    expected.sort(); // byte order
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list_clients(after.as_deref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        if page.is_empty() {
            break;
        }
        after = page.last().map(|c| c.client_id.clone());
        seen.extend(page.into_iter().map(|c| c.client_id));
    }
    assert_eq!(seen, expected);
    assert!(store.list_clients(None, 0).await.unwrap().is_empty());
    let all = all_clients(store).await;
    assert_eq!(all.len(), ids.len());
    assert_eq!(
        all[0],
        store.get_client(expected[0]).await.unwrap().unwrap()
    );
    assert!(store.list_clients(Some("é"), 10).await.unwrap().is_empty());
}
