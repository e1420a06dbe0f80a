//! The group commit, job by job: what each job of a group gets, and what is stored.

use dcr_core::metadata::ClientMetadata;
use serde_json::json;

use dcr_core::store::{ClientStore as _, InitialAccessTokenRecord, InitialAccessTokenStore as _};

use super::*;
use crate::codec::{ClientRow, hash_from_bytes, metadata_to_text};
use crate::sqlite::SqliteStore;

/// A store, and a writer connection of its own to the same file for [`group`].
struct Open {
    store: SqliteStore,
    conn: Connection,
    _dir: tempfile::TempDir,
}

async fn open() -> Open {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dcr.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let conn = open_writer(&path).unwrap();
    Open {
        store,
        conn,
        _dir: dir,
    }
}

fn rat(token: &str, client_id: &str) -> NewRat {
    NewRat {
        hash: TokenHash::of(token),
        client_id: client_id.to_owned(),
        policies: r#"["tenant"]"#.to_owned(),
        created_at: 100,
    }
}

/// A registration of `client_id` with a token made from `token`, spending a use of the
/// initial access token `iat` if given.
fn insert(client_id: &str, token: &str, iat: Option<&str>) -> WriteOp {
    WriteOp::Insert {
        client_id: client_id.to_owned(),
        metadata: json!({ "client_id": client_id, "client_name": token }).to_string(),
        created_at: 100,
        updated_at: 100,
        initial_access_token_id: iat.map(str::to_owned),
        managed_at: None,
        rat: Some(rat(token, client_id)),
        spend: iat.map(|id| (id.to_owned(), 100)),
    }
}

/// An open registration: the fast path's kind of job.
fn register(client_id: &str, token: &str) -> WriteOp {
    insert(client_id, token, None)
}

fn update(client_id: &str, presented: &str, rotate_to: Option<&str>) -> WriteOp {
    WriteOp::Update {
        client_id: client_id.to_owned(),
        metadata: json!({ "client_id": client_id, "client_name": "updated" }).to_string(),
        updated_at: 200,
        managed_at: None,
        presented: *TokenHash::of(presented).as_bytes(),
        rotate_to: rotate_to.map(|t| rat(t, client_id)),
    }
}

fn jobs(ops: Vec<WriteOp>) -> Vec<Job> {
    ops.into_iter()
        .map(|op| Job {
            op,
            done: oneshot::channel().0,
        })
        .collect()
}

/// Commits `ops` as one group, as the writer thread does; the outcomes, as `Debug` text.
fn group(db: &mut Open, ops: Vec<WriteOp>) -> Vec<String> {
    commit_group(&mut db.conn, &jobs(ops))
        .iter()
        .map(|outcome| format!("{outcome:?}"))
        .collect()
}

async fn client_row(store: &SqliteStore, client_id: &str) -> Option<ClientRow> {
    sqlx::query_as(
        "SELECT client_id, metadata, created_at, updated_at, initial_access_token_id, managed_at FROM clients WHERE client_id = ?1",
    )
    .bind(client_id)
    .fetch_optional(&store.writer)
    .await
    .unwrap()
}

/// The client holding the registration access token made from `token`.
async fn owner(store: &SqliteStore, token: &str) -> Option<String> {
    store
        .find_registration_access_token(&TokenHash::of(token))
        .await
        .unwrap()
        .map(|rat| rat.client_id)
}

async fn count_clients(store: &SqliteStore) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM clients")
        .fetch_one(&store.writer)
        .await
        .unwrap()
}

const OK: &str = "Ok(true)";
const CLIENT_EXISTS: &str = "Err(ClientExists)";
const TOKEN_EXISTS: &str = "Err(TokenExists)";

#[tokio::test]
async fn group_stores_every_column_exactly() {
    let mut db = open().await;
    let store = db.store.clone();
    let tricky = ClientMetadata::from_trusted(
        json!({
            "client_id": "exact",
            "client_name": "nul \u{0} tab \t quote \" backslash \\ emoji 🦀 é",
            "big": 18_446_744_073_709_551_615_u64,
            "ratio": 0.1,
            "nested": { "a": [1, { "b": null }], "empty": {} },
        })
        .as_object()
        .cloned()
        .unwrap(),
    );
    let metadata = metadata_to_text(&tricky);
    let bytes: [u8; 32] = std::array::from_fn(|i| [0, 0xff, 0x0a, 0x80][i % 4]);
    let hash = hash_from_bytes(&bytes).unwrap();
    let exact = WriteOp::Insert {
        client_id: "exact".into(),
        metadata: metadata.clone(),
        created_at: i64::MIN,
        updated_at: i64::MAX,
        initial_access_token_id: Some("iat-é".into()),
        managed_at: Some(-1),
        rat: Some(NewRat {
            hash,
            client_id: "exact".into(),
            policies: r#"["a","\"b\""]"#.into(),
            created_at: 1_700_000_000,
        }),
        spend: None,
    };
    let mut bare = register("bare", "unused");
    if let WriteOp::Insert { rat, .. } = &mut bare {
        *rat = None;
    }

    assert_eq!(group(&mut db, vec![exact, bare]), [OK, OK]);
    assert_eq!(
        client_row(&store, "exact").await,
        Some((
            "exact".into(),
            metadata,
            i64::MIN,
            i64::MAX,
            Some("iat-é".into()),
            Some(-1)
        ))
    );
    assert_eq!(
        store.find_registration_access_token(&hash).await.unwrap(),
        Some(RegistrationAccessTokenRecord {
            hash,
            client_id: "exact".into(),
            policies: vec!["a".into(), "\"b\"".into()],
            created_at: 1_700_000_000,
        })
    );
    assert_eq!(
        client_row(&store, "bare").await.map(|row| row.4),
        Some(None)
    );
    assert_eq!(owner(&store, "unused").await, None);
}

#[tokio::test]
async fn many_open_registrations_in_one_group() {
    let mut db = open().await;
    let store = db.store.clone();
    let ops = (0..200)
        .map(|i| register(&format!("c{i}"), &format!("tok-{i}")))
        .collect();
    let settled = group(&mut db, ops);
    assert!(settled.iter().all(|o| o == OK), "{settled:?}");
    assert_eq!(count_clients(&store).await, 200);
    for i in 0..200 {
        assert_eq!(
            owner(&store, &format!("tok-{i}")).await,
            Some(format!("c{i}"))
        );
    }
}

#[tokio::test]
async fn first_of_two_jobs_with_one_client_id_wins() {
    let mut db = open().await;
    let store = db.store.clone();
    let ops = vec![
        register("twice", "tok-first"),
        register("other", "tok-other"),
        register("twice", "tok-second"),
    ];
    assert_eq!(group(&mut db, ops), [OK, OK, CLIENT_EXISTS]);
    let stored = client_row(&store, "twice").await.unwrap();
    assert!(
        stored.1.contains("tok-first"),
        "the first job's record: {stored:?}"
    );
    assert_eq!(owner(&store, "tok-first").await.as_deref(), Some("twice"));
    assert_eq!(owner(&store, "tok-second").await, None);
    assert_eq!(owner(&store, "tok-other").await.as_deref(), Some("other"));
}

#[tokio::test]
async fn stored_client_id_is_a_conflict_in_a_group() {
    let mut db = open().await;
    let store = db.store.clone();
    assert_eq!(group(&mut db, vec![register("taken", "tok-old")]), [OK]);
    let before = client_row(&store, "taken").await;
    assert_eq!(
        group(
            &mut db,
            vec![register("taken", "tok-new"), register("free", "tok-free")]
        ),
        [CLIENT_EXISTS, OK]
    );
    assert_eq!(client_row(&store, "taken").await, before, "unchanged");
    assert_eq!(owner(&store, "tok-old").await.as_deref(), Some("taken"));
    assert_eq!(
        owner(&store, "tok-new").await,
        None,
        "its RAT was not written"
    );
    assert_eq!(owner(&store, "tok-free").await.as_deref(), Some("free"));
}

#[tokio::test]
async fn mixed_group_gives_each_job_its_outcome() {
    let mut db = open().await;
    let store = db.store.clone();
    for (id, max_uses) in [("once", Some(1)), ("unlimited", None)] {
        store
            .insert_initial_access_token(&InitialAccessTokenRecord {
                id: id.into(),
                hash: TokenHash::of(id),
                label: None,
                policies: vec![],
                created_at: 0,
                expires_at: None,
                max_uses,
                uses: 0,
            })
            .await
            .unwrap();
    }
    let setup = vec![register("u1", "tok-u1"), register("u2", "tok-u2")];
    assert_eq!(group(&mut db, setup), [OK, OK]);

    let ops = vec![
        register("n1", "tok-n1"),
        insert("s1", "tok-s1", Some("once")),
        update("u1", "tok-u1", None),
        insert("s2", "tok-s2", Some("once")),
        register("n2", "tok-n2"),
        update("u2", "tok-u2", Some("tok-u2b")),
        update("u1", "tok-u2", None),
        insert("n1", "tok-n1b", Some("unlimited")),
    ];
    assert_eq!(
        group(&mut db, ops),
        [
            OK,
            OK,
            OK,
            "Err(InitialAccessTokenUnavailable)",
            OK,
            OK,
            "Err(RegistrationAccessTokenGone)",
            CLIENT_EXISTS,
        ]
    );
    let uses = |id: &'static str| {
        let store = store.clone();
        async move {
            store
                .find_initial_access_token(&TokenHash::of(id))
                .await
                .unwrap()
                .unwrap()
                .uses
        }
    };
    assert_eq!(uses("once").await, 1);
    assert_eq!(
        uses("unlimited").await,
        0,
        "a conflicting insert spends nothing"
    );
    for (token, client) in [("tok-n1", "n1"), ("tok-n2", "n2"), ("tok-s1", "s1")] {
        assert_eq!(owner(&store, token).await.as_deref(), Some(client));
    }
    assert_eq!(client_row(&store, "s2").await, None);
    assert_eq!(owner(&store, "tok-n1b").await, None);
    let u1 = client_row(&store, "u1").await.unwrap();
    assert_eq!((u1.1.contains("updated"), u1.3), (true, 200));
    assert_eq!(owner(&store, "tok-u1").await.as_deref(), Some("u1"));
    assert_eq!(owner(&store, "tok-u2").await, None, "rotated away");
    assert_eq!(owner(&store, "tok-u2b").await.as_deref(), Some("u2"));
    assert_eq!(count_clients(&store).await, 5);
}

#[tokio::test]
async fn token_hash_collision_fails_only_its_own_job() {
    let mut db = open().await;
    let store = db.store.clone();
    assert_eq!(group(&mut db, vec![register("old", "tok-old")]), [OK]);
    let ops = || {
        vec![
            register("a", "tok-a"),
            register("b", "tok-a"),
            register("c", "tok-old"),
            register("d", "tok-d"),
            register("a", "tok-x"),
            register("e", "tok-e"),
        ]
    };
    assert_eq!(
        group(&mut db, ops()),
        [OK, TOKEN_EXISTS, TOKEN_EXISTS, OK, CLIENT_EXISTS, OK]
    );
    for (token, client) in [
        ("tok-a", "a"),
        ("tok-d", "d"),
        ("tok-e", "e"),
        ("tok-old", "old"),
    ] {
        assert_eq!(owner(&store, token).await.as_deref(), Some(client));
    }
    assert_eq!(client_row(&store, "b").await, None);
    assert_eq!(client_row(&store, "c").await, None);
    assert_eq!(owner(&store, "tok-x").await, None);
    assert_eq!(count_clients(&store).await, 4);
}

#[tokio::test]
async fn second_job_with_one_client_id_wins_when_the_first_fails_on_its_token() {
    let mut db = open().await;
    let store = db.store.clone();
    assert_eq!(group(&mut db, vec![register("old", "tok-old")]), [OK]);
    assert_eq!(
        group(
            &mut db,
            vec![register("y", "tok-old"), register("y", "tok-y")]
        ),
        [TOKEN_EXISTS, OK]
    );
    assert_eq!(owner(&store, "tok-y").await.as_deref(), Some("y"));
    assert_eq!(owner(&store, "tok-old").await.as_deref(), Some("old"));
}

fn delete(client_id: &str, presented: Option<&str>, unmanaged_open_only: bool) -> WriteOp {
    WriteOp::Delete {
        client_id: client_id.to_owned(),
        presented: presented.map(|t| *TokenHash::of(t).as_bytes()),
        unmanaged_open_only,
    }
}

#[tokio::test]
async fn delete_in_a_group_sees_the_token_an_earlier_job_rotated() {
    let mut db = open().await;
    let store = db.store.clone();
    let setup = vec![register("a", "tok-a"), register("b", "tok-b")];
    assert_eq!(group(&mut db, setup), [OK, OK]);
    let ops = vec![
        update("a", "tok-a", Some("tok-a2")),
        delete("a", Some("tok-a"), false),
        delete("b", Some("tok-a2"), false),
        delete("b", None, false),
        delete("a", Some("tok-a2"), false),
        delete("gone", None, false),
    ];
    assert_eq!(
        group(&mut db, ops),
        [OK, "Ok(false)", "Ok(false)", OK, OK, "Ok(false)"]
    );
    assert_eq!(count_clients(&store).await, 0);
    assert_eq!(owner(&store, "tok-a2").await, None, "tokens go with it");
}

fn jti(client_id: &str, jti: &str, expires_at: i64, now: i64) -> WriteOp {
    WriteOp::RecordJti {
        client_id: client_id.to_owned(),
        jti: jti.to_owned(),
        expires_at,
        now,
    }
}

fn record_use(client_id: &str, at: i64) -> WriteOp {
    WriteOp::RecordUse {
        client_id: client_id.to_owned(),
        at,
    }
}

#[tokio::test]
async fn jtis_and_uses_commit_with_client_writes_one_first_use_each() {
    let mut db = open().await;
    let store = db.store.clone();
    assert_eq!(
        group(
            &mut db,
            vec![jti("c", "live", 150, 100), jti("c", "gone", 120, 100)]
        ),
        [OK, OK]
    );
    const REPLAY: &str = "Ok(false)";
    let ops = vec![
        register("c2", "tok"),
        // The group's purge uses its earliest `now` (140): "live" (until 150) is kept for the
        // job at 140, though a job at 200 comes first.
        jti("c", "j", 500, 200),
        jti("c", "j", 500, 200),
        jti("c", "live", 600, 140),
        jti("c", "gone", 600, 140),
        jti("other", "j", 500, 200),
        record_use("c2", 300),
        record_use("c2", 250),
        record_use("nobody", 300),
        register("c2", "tok-again"),
    ];
    assert_eq!(
        group(&mut db, ops),
        [OK, OK, REPLAY, REPLAY, OK, OK, OK, OK, OK, CLIENT_EXISTS]
    );
    let jtis: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT client_id, jti, expires_at FROM assertion_jtis ORDER BY client_id, jti",
    )
    .fetch_all(&store.writer)
    .await
    .unwrap();
    let jtis: Vec<_> = jtis
        .iter()
        .map(|(c, j, e)| (c.as_str(), j.as_str(), *e))
        .collect();
    assert_eq!(
        jtis,
        [
            ("c", "gone", 600),
            ("c", "j", 500),
            ("c", "live", 150),
            ("other", "j", 500)
        ]
    );
    let uses: Vec<(String, i64)> =
        sqlx::query_as("SELECT client_id, last_used_at FROM client_usage ORDER BY client_id")
            .fetch_all(&store.writer)
            .await
            .unwrap();
    assert_eq!(uses, [("c2".to_owned(), 300)]);
}
