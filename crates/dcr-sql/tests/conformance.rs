//! The store conformance suite: every store runs every case below.
//!
//! A backend is proven by one `conformance!(name, open_fn);` line at the end of this file
//! (the rustls test-per-provider pattern). PostgreSQL cases each get a fresh database and
//! need `DCR_TEST_POSTGRES_URL`; without it they say so on stderr and check nothing.
#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use dcr_core::metadata::ClientMetadata;
use dcr_core::store::{
    ClientRecord, ClientStore as _, ClientUpdate, InitialAccessTokenRecord, MemoryStore, NewClient,
    RegistrationAccessTokenRecord, Store, StoreError,
};
use dcr_core::token::TokenHash;
use dcr_sql::testing::{TestDatabase, admin_url};
use dcr_sql::{PgStore, PgStoreOptions, SqliteStore};
use serde_json::{Value, json};
use sqlx::Connection as _;

const RUN_PG: &str = "cargo test -p dcr-sql --test conformance";

/// A store under test, with what keeps its storage alive (a directory, a database).
struct Backend {
    store: Arc<dyn Store>,
    _keep: Box<dyn Any + Send>,
}

async fn open_memory() -> Option<Backend> {
    Some(Backend {
        store: Arc::new(MemoryStore::new()),
        _keep: Box::new(()),
    })
}

async fn open_sqlite() -> Option<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("dcr.db")).await.unwrap();
    Some(Backend {
        store: Arc::new(store),
        _keep: Box::new(dir),
    })
}

async fn open_postgres() -> Option<Backend> {
    let admin = admin_url("dcr-sql store conformance suite", RUN_PG)?;
    let db = TestDatabase::create(&admin)
        .await
        .unwrap_or_else(|e| panic!("DCR_TEST_POSTGRES_URL is set but unusable: {e}"));
    let options = PgStoreOptions {
        max_connections: 16,
        ..PgStoreOptions::default()
    };
    let store = PgStore::open(db.url(), &options).await.unwrap();
    Some(Backend {
        store: Arc::new(store),
        _keep: Box::new(db),
    })
}

/// Instantiates every case for one backend: `conformance!(module_name, async_open_fn);`.
macro_rules! conformance {
    ($backend:ident, $open:path) => {
        mod $backend {
            conformance!(@cases $open;
                insert_then_get_round_trips_exactly,
                duplicate_client_id_is_a_conflict_and_writes_nothing,
                duplicate_token_hash_is_a_conflict_and_writes_nothing,
                update_without_rotation_replaces_the_record_and_keeps_the_token,
                update_keeps_the_first_managed_at,
                update_with_rotation_replaces_the_token,
                update_needs_a_token_bound_to_that_client,
                rotation_to_an_existing_hash_changes_nothing,
                delete_removes_the_client_and_its_tokens,
                revoked_token_is_gone,
                list_pages_in_client_id_byte_order,
                initial_access_tokens_insert_find_list_revoke,
                initial_access_token_conflicts,
                spending_counts_uses_and_stops_at_max_uses,
                expired_or_unknown_initial_access_token_writes_nothing,
                mark_managed_and_unmanaged_open_listing,
                parallel_registrations_spend_exactly_max_uses,
                parallel_rotations_with_one_token_leave_one_valid_token,
                parallel_updates_leave_exactly_one_written_state,
                many_parallel_registrations_all_land,
                parallel_registrations_of_one_client_id_let_exactly_one_win,
                parallel_registrations_with_one_token_let_exactly_one_win,
                parallel_mixed_writes_each_get_their_outcome,
                ping_answers,
            );
        }
    };
    (@cases $open:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(backend) = $open().await else { return };
                super::$case(&backend.store).await;
            }
        )*
    };
}

conformance!(memory, super::open_memory);
conformance!(sqlite, super::open_sqlite);
conformance!(postgres, super::open_postgres);

// ===== fixtures =====

fn metadata(client_id: &str, extra: Value) -> ClientMetadata {
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

fn client(client_id: &str, created_at: i64) -> ClientRecord {
    ClientRecord {
        client_id: client_id.to_owned(),
        metadata: metadata(client_id, json!({})),
        created_at,
        updated_at: created_at,
        initial_access_token_id: None,
        managed_at: None,
    }
}

fn rat(token: &str, client_id: &str) -> RegistrationAccessTokenRecord {
    RegistrationAccessTokenRecord {
        hash: TokenHash::of(token),
        client_id: client_id.to_owned(),
        policies: vec!["tenant".into(), "audit".into()],
        created_at: 100,
    }
}

fn iat(id: &str, token: &str, max_uses: Option<u64>) -> InitialAccessTokenRecord {
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
async fn register(store: &Arc<dyn Store>, client_id: &str, token: &str) -> ClientRecord {
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

fn updated(c: &ClientRecord, name: &str, at: i64) -> ClientRecord {
    ClientRecord {
        metadata: metadata(&c.client_id, json!({ "client_name": name })),
        updated_at: at,
        ..c.clone()
    }
}

async fn rat_of(store: &Arc<dyn Store>, token: &str) -> Option<RegistrationAccessTokenRecord> {
    store
        .find_registration_access_token(&TokenHash::of(token))
        .await
        .unwrap()
}

async fn all_clients(store: &Arc<dyn Store>) -> Vec<ClientRecord> {
    store.list_clients(None, 10_000).await.unwrap()
}

// ===== clients =====

async fn insert_then_get_round_trips_exactly(store: &Arc<dyn Store>) {
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

async fn duplicate_client_id_is_a_conflict_and_writes_nothing(store: &Arc<dyn Store>) {
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

async fn duplicate_token_hash_is_a_conflict_and_writes_nothing(store: &Arc<dyn Store>) {
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

async fn update_without_rotation_replaces_the_record_and_keeps_the_token(store: &Arc<dyn Store>) {
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

async fn update_keeps_the_first_managed_at(store: &Arc<dyn Store>) {
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

async fn update_with_rotation_replaces_the_token(store: &Arc<dyn Store>) {
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

async fn update_needs_a_token_bound_to_that_client(store: &Arc<dyn Store>) {
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

async fn rotation_to_an_existing_hash_changes_nothing(store: &Arc<dyn Store>) {
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

async fn delete_removes_the_client_and_its_tokens(store: &Arc<dyn Store>) {
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

    assert!(store.delete_client("d").await.unwrap());
    assert_eq!(store.get_client("d").await.unwrap(), None);
    assert_eq!(rat_of(store, "rat-d1").await, None);
    assert_eq!(rat_of(store, "rat-d2").await, None);
    assert!(!store.delete_client("d").await.unwrap(), "already gone");
    assert!(!store.delete_client("never-was").await.unwrap());
    // Others untouched.
    assert!(store.get_client("other").await.unwrap().is_some());
    assert!(rat_of(store, "rat-other").await.is_some());

    // The id can be registered again, with a fresh token.
    register(store, "d", "rat-d3").await;
    assert_eq!(rat_of(store, "rat-d2").await, None);
}

async fn revoked_token_is_gone(store: &Arc<dyn Store>) {
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

async fn list_pages_in_client_id_byte_order(store: &Arc<dyn Store>) {
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

// ===== initial access tokens =====

async fn initial_access_tokens_insert_find_list_revoke(store: &Arc<dyn Store>) {
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

async fn initial_access_token_conflicts(store: &Arc<dyn Store>) {
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

async fn spend(
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

async fn uses_of(store: &Arc<dyn Store>, token: &str) -> u64 {
    store
        .find_initial_access_token(&TokenHash::of(token))
        .await
        .unwrap()
        .unwrap()
        .uses
}

async fn spending_counts_uses_and_stops_at_max_uses(store: &Arc<dyn Store>) {
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

async fn expired_or_unknown_initial_access_token_writes_nothing(store: &Arc<dyn Store>) {
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

async fn mark_managed_and_unmanaged_open_listing(store: &Arc<dyn Store>) {
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
    store.delete_client("o1").await.unwrap();
    assert_eq!(store.count_unmanaged_open_clients().await.unwrap(), 2);
    assert_eq!(store.unmanaged_open_clients(0).await.unwrap(), vec![]);
}

// ===== concurrency =====

async fn parallel_registrations_spend_exactly_max_uses(store: &Arc<dyn Store>) {
    store
        .insert_initial_access_token(&iat("shared", "tok-shared", Some(5)))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = Arc::clone(store);
            tokio::spawn(async move { spend(&store, &format!("p{i:02}"), "shared", 100).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::InitialAccessTokenUnavailable) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 5, "exactly max_uses registrations succeed");
    assert_eq!(uses_of(store, "tok-shared").await, 5);
    let clients = all_clients(store).await;
    assert_eq!(clients.len(), 5, "losers wrote nothing");
    for c in clients {
        assert!(
            rat_of(store, &format!("rat-{}", c.client_id))
                .await
                .is_some()
        );
    }
}

async fn parallel_rotations_with_one_token_leave_one_valid_token(store: &Arc<dyn Store>) {
    for round in 0..8 {
        let id = format!("race{round}");
        let c = register(store, &id, &format!("old-{round}")).await;
        let tasks: Vec<_> = ["left", "right"]
            .into_iter()
            .map(|side| {
                let store = Arc::clone(store);
                let new = updated(&c, side, 200);
                let next = rat(&format!("{side}-{round}"), &id);
                let presented = TokenHash::of(&format!("old-{round}"));
                tokio::spawn(async move {
                    store
                        .update_client(ClientUpdate {
                            client: &new,
                            presented: &presented,
                            rotate_to: Some(&next),
                        })
                        .await
                        .map(|()| side)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(side) => winners.push(side),
                Err(StoreError::RegistrationAccessTokenGone) => {}
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one rotation succeeds");
        let winner = winners[0];
        let loser = if winner == "left" { "right" } else { "left" };
        assert!(rat_of(store, &format!("{winner}-{round}")).await.is_some());
        assert_eq!(rat_of(store, &format!("{loser}-{round}")).await, None);
        assert_eq!(rat_of(store, &format!("old-{round}")).await, None);
        let stored = store.get_client(&id).await.unwrap().unwrap();
        assert_eq!(stored.metadata.str("client_name"), Some(winner));
    }
}

async fn parallel_updates_leave_exactly_one_written_state(store: &Arc<dyn Store>) {
    let c = register(store, "busy", "rat-busy").await;
    let versions: Vec<ClientRecord> = (0..12)
        .map(|i| ClientRecord {
            metadata: metadata(
                "busy",
                json!({
                    "client_name": format!("v{i}"),
                    "redirect_uris": [format!("https://rp{i}.example.com/cb")],
                    "contacts": [format!("ops{i}@example.com")],
                }),
            ),
            updated_at: 200 + i,
            ..c.clone()
        })
        .collect();
    let tasks: Vec<_> = versions
        .iter()
        .cloned()
        .map(|v| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                store
                    .update_client(ClientUpdate {
                        client: &v,
                        presented: &TokenHash::of("rat-busy"),
                        rotate_to: None,
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let stored = store.get_client("busy").await.unwrap().unwrap();
    assert!(
        versions.contains(&stored),
        "the stored state is one of the written ones, never a mix: {stored:?}"
    );
    assert!(rat_of(store, "rat-busy").await.is_some());
    let names: HashSet<_> = versions
        .iter()
        .map(|v| v.metadata.str("client_name").unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 12);
}

/// Runs every registration `(client, token)` at once (with a RAT made from `token`); their
/// outcomes, in order.
async fn register_at_once(
    store: &Arc<dyn Store>,
    registrations: Vec<(ClientRecord, String)>,
) -> Vec<Result<(), StoreError>> {
    let tasks: Vec<_> = registrations
        .into_iter()
        .map(|(c, token)| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                let r = rat(&token, &c.client_id);
                store
                    .insert_client(NewClient {
                        client: &c,
                        registration_access_token: Some(&r),
                        spend_initial_access_token: None,
                    })
                    .await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    outcomes
}

async fn many_parallel_registrations_all_land(store: &Arc<dyn Store>) {
    let registrations = (0..200)
        .map(|i| (client(&format!("c{i:03}"), i), format!("tok-{i}")))
        .collect();
    for outcome in register_at_once(store, registrations).await {
        outcome.unwrap();
    }
    let clients = all_clients(store).await;
    assert_eq!(clients.len(), 200);
    for (i, c) in clients.iter().enumerate() {
        assert_eq!(*c, client(&format!("c{i:03}"), i64::try_from(i).unwrap()));
        let r = rat_of(store, &format!("tok-{i}")).await;
        assert_eq!(r, Some(rat(&format!("tok-{i}"), &c.client_id)));
    }
}

async fn parallel_registrations_of_one_client_id_let_exactly_one_win(store: &Arc<dyn Store>) {
    let taken = register(store, "taken", "tok-taken").await;
    let contender = |i: usize| ClientRecord {
        metadata: metadata("contested", json!({ "client_name": format!("v{i}") })),
        ..client("contested", 100)
    };
    let mut registrations = Vec::new();
    for i in 0..8 {
        registrations.push((contender(i), format!("tok-v{i}")));
        registrations.push((client(&format!("free{i}"), 100), format!("tok-free{i}")));
        let again = ClientRecord {
            metadata: metadata("taken", json!({ "client_name": "again" })),
            ..taken.clone()
        };
        registrations.push((again, format!("tok-again{i}")));
    }
    let outcomes = register_at_once(store, registrations).await;
    let mut winners = Vec::new();
    for (i, chunk) in outcomes.chunks(3).enumerate() {
        match &chunk[0] {
            Ok(()) => winners.push(i),
            Err(StoreError::ClientExists) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
        assert!(chunk[1].is_ok(), "{:?}", chunk[1]);
        assert!(
            matches!(chunk[2], Err(StoreError::ClientExists)),
            "{:?}",
            chunk[2]
        );
        assert_eq!(rat_of(store, &format!("tok-again{i}")).await, None);
        assert!(rat_of(store, &format!("tok-free{i}")).await.is_some());
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one registration of the id succeeds"
    );
    let winner = winners[0];
    assert_eq!(
        store.get_client("contested").await.unwrap(),
        Some(contender(winner)),
        "the winner's record"
    );
    for i in 0..8 {
        let owner = rat_of(store, &format!("tok-v{i}"))
            .await
            .map(|r| r.client_id);
        assert_eq!(
            owner.is_some(),
            i == winner,
            "only the winner's RAT is stored"
        );
    }
    assert_eq!(store.get_client("taken").await.unwrap(), Some(taken));
    assert_eq!(all_clients(store).await.len(), 10);
}

async fn parallel_registrations_with_one_token_let_exactly_one_win(store: &Arc<dyn Store>) {
    let registrations = (0..8)
        .flat_map(|i| {
            [
                (client(&format!("shared{i}"), 100), "tok-shared".to_owned()),
                (client(&format!("own{i}"), 100), format!("tok-own{i}")),
            ]
        })
        .collect();
    let outcomes = register_at_once(store, registrations).await;
    let mut winners = Vec::new();
    for (i, chunk) in outcomes.chunks(2).enumerate() {
        match &chunk[0] {
            Ok(()) => winners.push(format!("shared{i}")),
            Err(StoreError::TokenExists) => {
                let id = format!("shared{i}");
                assert_eq!(store.get_client(&id).await.unwrap(), None, "all or nothing");
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
        assert!(chunk[1].is_ok(), "{:?}", chunk[1]);
        let own = rat_of(store, &format!("tok-own{i}")).await.unwrap();
        assert_eq!(own.client_id, format!("own{i}"));
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one registration with the token succeeds"
    );
    let holder = rat_of(store, "tok-shared").await.unwrap().client_id;
    assert_eq!(holder, winners[0]);
    assert_eq!(all_clients(store).await.len(), 9);
}

async fn parallel_mixed_writes_each_get_their_outcome(store: &Arc<dyn Store>) {
    store
        .insert_initial_access_token(&iat("few", "tok-few", Some(3)))
        .await
        .unwrap();
    let mut stored = Vec::new();
    for i in 0..8 {
        stored.push(register(store, &format!("s{i}"), &format!("rat-s{i}")).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let store = Arc::clone(store);
        tasks.spawn(async move {
            let id = format!("open{i}");
            let c = client(&id, 100);
            let r = rat(&format!("rat-{id}"), &id);
            let outcome = store
                .insert_client(NewClient {
                    client: &c,
                    registration_access_token: Some(&r),
                    spend_initial_access_token: None,
                })
                .await;
            ("open", outcome)
        });
    }
    for i in 0..6 {
        let store = Arc::clone(store);
        tasks.spawn(async move { ("spend", spend(&store, &format!("iat{i}"), "few", 100).await) });
    }
    for (i, c) in stored.iter().enumerate() {
        let store = Arc::clone(store);
        let new = updated(c, &format!("new{i}"), 200);
        let next = rat(&format!("rat-s{i}-next"), &c.client_id);
        tasks.spawn(async move {
            let outcome = store
                .update_client(ClientUpdate {
                    client: &new,
                    presented: &TokenHash::of(&format!("rat-s{i}")),
                    rotate_to: (i % 2 == 0).then_some(&next),
                })
                .await;
            ("update", outcome)
        });
    }
    {
        let store = Arc::clone(store);
        let wrong = updated(&stored[0], "hijacked", 300);
        tasks.spawn(async move {
            let outcome = store
                .update_client(ClientUpdate {
                    client: &wrong,
                    presented: &TokenHash::of("rat-s1"),
                    rotate_to: None,
                })
                .await;
            ("wrong token", outcome)
        });
    }
    let mut spent = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            ("spend", Ok(())) => spent += 1,
            ("spend", Err(StoreError::InitialAccessTokenUnavailable)) => {}
            ("wrong token", Err(StoreError::RegistrationAccessTokenGone)) => {}
            ("open" | "update", Ok(())) => {}
            (kind, outcome) => panic!("unexpected {kind}: {outcome:?}"),
        }
    }
    assert_eq!(spent, 3, "exactly max_uses registrations spend the token");
    assert_eq!(uses_of(store, "tok-few").await, 3);
    for i in 0..24 {
        let r = rat_of(store, &format!("rat-open{i}")).await.unwrap();
        assert_eq!(r.client_id, format!("open{i}"));
    }
    for (i, c) in stored.iter().enumerate() {
        let now = store.get_client(&c.client_id).await.unwrap().unwrap();
        assert_eq!(
            now.metadata.str("client_name"),
            Some(format!("new{i}").as_str())
        );
        let rotated = i % 2 == 0;
        assert_eq!(
            rat_of(store, &format!("rat-s{i}")).await.is_some(),
            !rotated
        );
        assert_eq!(
            rat_of(store, &format!("rat-s{i}-next")).await.is_some(),
            rotated
        );
    }
    assert_eq!(all_clients(store).await.len(), 8 + 24 + 3);
}

async fn ping_answers(store: &Arc<dyn Store>) {
    store.ping().await.unwrap();
}

// ===== PostgreSQL only =====

/// Several processes starting at once on a new database: the migration runs once, every
/// store opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_start_up_migrates_once() {
    let Some(admin) = admin_url("dcr-sql store conformance suite", RUN_PG) else {
        return;
    };
    let db = TestDatabase::create(&admin).await.unwrap();
    let opens: Vec<_> = (0..6)
        .map(|_| {
            let url = db.url().to_owned();
            tokio::spawn(async move { PgStore::open(&url, &PgStoreOptions::default()).await })
        })
        .collect();
    let mut stores = Vec::new();
    for o in opens {
        stores.push(o.await.unwrap().unwrap());
    }
    let probe = PgStore::open(db.url(), &PgStoreOptions::default())
        .await
        .unwrap();
    let c = client("after-start", 1);
    stores[0]
        .insert_client(NewClient {
            client: &c,
            registration_access_token: None,
            spend_initial_access_token: None,
        })
        .await
        .unwrap();
    assert_eq!(probe.get_client("after-start").await.unwrap(), Some(c));
    for s in stores {
        s.close().await;
    }
    probe.close().await;

    // Each migration was applied exactly once.
    let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(applied, migration_versions("postgres"));
    conn.close().await.unwrap();
}

/// A server that does not answer is an error, never a panic or a hang.
#[tokio::test]
async fn postgres_unreachable_server_is_a_backend_error() {
    let options = PgStoreOptions {
        connect_timeout: Duration::from_secs(2),
        ..PgStoreOptions::default()
    };
    // Port 1 on loopback: nothing listens there.
    let err = PgStore::open("postgres://postgres@127.0.0.1:1/test", &options)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    let err = PgStore::open("postgres://u:secret@[bad", &options)
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("secret"), "{err}");
}

/// `(version, true)` for every migration file of `backend`, in version order.
fn migration_versions(backend: &str) -> Vec<(i64, bool)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut versions: Vec<(i64, bool)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            (name.split('_').next().unwrap().parse().unwrap(), true)
        })
        .collect();
    versions.sort_unstable();
    versions
}
