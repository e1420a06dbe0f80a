//! Cases where requests race: each must get its outcome, and the store one consistent state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::fixtures::*;
use crate::store::{ClientRecord, ClientUpdate, NewClient, Store, StoreError};
use crate::token::TokenHash;

/// Parallel registrations spend exactly max uses.
pub async fn parallel_registrations_spend_exactly_max_uses(store: &Arc<dyn Store>) {
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

/// Parallel rotations with one token leave one valid token.
pub async fn parallel_rotations_with_one_token_leave_one_valid_token(store: &Arc<dyn Store>) {
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

/// Parallel updates leave exactly one written state.
pub async fn parallel_updates_leave_exactly_one_written_state(store: &Arc<dyn Store>) {
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
pub async fn register_at_once(
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

/// Many parallel registrations all land.
pub async fn many_parallel_registrations_all_land(store: &Arc<dyn Store>) {
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

/// Parallel registrations of one client id let exactly one win.
pub async fn parallel_registrations_of_one_client_id_let_exactly_one_win(store: &Arc<dyn Store>) {
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

/// Parallel registrations with one token let exactly one win.
pub async fn parallel_registrations_with_one_token_let_exactly_one_win(store: &Arc<dyn Store>) {
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

/// Parallel mixed writes each get their outcome.
pub async fn parallel_mixed_writes_each_get_their_outcome(store: &Arc<dyn Store>) {
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

/// Ping answers.
pub async fn ping_answers(store: &Arc<dyn Store>) {
    store.ping().await.unwrap();
}
