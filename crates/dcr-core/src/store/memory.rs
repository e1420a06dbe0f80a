use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{
    ClientDeletion, ClientRecord, ClientStore, ClientUpdate, InitialAccessTokenRecord,
    InitialAccessTokenStore, NewClient, RegistrationAccessTokenRecord, StoreError, decode_metadata,
    list_decodable,
};
use crate::metadata::ClientMetadata;
use crate::token::TokenHash;

/// A store that keeps everything in process memory: for tests, demos and benchmarks.
/// Nothing survives a restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

/// A client id, shared by the map key, the token records and the index (stored once).
type Id = Arc<str>;

/// A client as kept in memory: compact, about 1 KB for a typical client (see
/// `bench/README.md`, "Memory per client"). The id is the map key.
#[derive(Debug)]
struct StoredClient {
    /// The metadata as compact JSON (what the SQL stores keep too), parsed on read (outside
    /// the lock: reads only clone the `Arc`).
    metadata: Arc<str>,
    created_at: i64,
    updated_at: i64,
    initial_access_token_id: Option<Box<str>>,
    managed_at: Option<i64>,
    /// The parsed metadata of a recently read client (at most [`PARSED_CACHE`] clients
    /// have one), so that repeated reads of the same clients do not parse again.
    parsed: Option<ClientMetadata>,
    /// Hashes of its registration access tokens (usually one), so deleting a client touches
    /// only its own tokens.
    rats: Vec<TokenHash>,
}

impl StoredClient {
    fn is_unmanaged_open(&self) -> bool {
        self.initial_access_token_id.is_none() && self.managed_at.is_none()
    }

    fn record(&self, id: &str) -> Result<ClientRecord, StoreError> {
        let metadata = match &self.parsed {
            Some(m) => m.clone(),
            None => decode_metadata(id, self.metadata.clone())?,
        };
        Ok(ClientRecord {
            client_id: id.to_owned(),
            metadata,
            created_at: self.created_at,
            updated_at: self.updated_at,
            initial_access_token_id: self.initial_access_token_id.as_deref().map(str::to_owned),
            managed_at: self.managed_at,
        })
    }
}

/// How many clients keep their parsed metadata (about 3 KB each) besides the compact JSON.
const PARSED_CACHE: usize = 8_192;

#[derive(Debug)]
struct StoredRat {
    client_id: Id,
    policies: Box<[String]>,
    created_at: i64,
}

impl StoredRat {
    fn record(&self, hash: TokenHash) -> RegistrationAccessTokenRecord {
        RegistrationAccessTokenRecord {
            hash,
            client_id: self.client_id.to_string(),
            policies: self.policies.to_vec(),
            created_at: self.created_at,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// The clients by id (hashed: a lookup or an insert among a million clients touches a
    /// few cache lines, where an ordered map compares a key at every level). Listing, an
    /// operator's command, sorts what it returns instead.
    clients: HashMap<Id, StoredClient>,
    rats: HashMap<TokenHash, StoredRat>,
    /// Index: the unmanaged open clients (no initial access token, never managed), ordered
    /// oldest first as `(created_at, client_id)`.
    unmanaged: BTreeSet<(i64, Id)>,
    /// Clients given parsed metadata, oldest first: the first is dropped beyond
    /// [`PARSED_CACHE`] (an entry may be stale; dropping it then only costs a parse).
    parsed: VecDeque<Id>,
    iats: BTreeMap<String, InitialAccessTokenRecord>,
}

impl Inner {
    /// The shared id of a stored client, or a new one.
    fn id(&self, client_id: &str) -> Id {
        self.clients
            .get_key_value(client_id)
            .map_or_else(|| Id::from(client_id), |(k, _)| k.clone())
    }

    /// Stores `client` (replacing any record with its id, whose tokens it keeps), keeping
    /// the index of unmanaged open clients in step.
    fn put_client(&mut self, client: &ClientRecord, metadata: Arc<str>) {
        let id = self.id(&client.client_id);
        let mut rats = Vec::new();
        if let Some(old) = self.clients.remove(&id) {
            if old.is_unmanaged_open() {
                self.unmanaged.remove(&(old.created_at, id.clone()));
            }
            rats = old.rats;
        }
        let stored = StoredClient {
            metadata,
            created_at: client.created_at,
            updated_at: client.updated_at,
            initial_access_token_id: client.initial_access_token_id.as_deref().map(Box::from),
            managed_at: client.managed_at,
            parsed: None,
            rats,
        };
        if stored.is_unmanaged_open() {
            self.unmanaged.insert((stored.created_at, id.clone()));
        }
        self.clients.insert(id, stored);
    }

    /// Stores a token; its client must be stored.
    fn put_rat(&mut self, rat: &RegistrationAccessTokenRecord) {
        let Some(c) = self.clients.get_mut(rat.client_id.as_str()) else {
            return;
        };
        c.rats.push(rat.hash);
        let client_id = self.id(&rat.client_id);
        self.rats.insert(
            rat.hash,
            StoredRat {
                client_id,
                policies: rat.policies.clone().into_boxed_slice(),
                created_at: rat.created_at,
            },
        );
    }

    fn remove_rat(&mut self, hash: &TokenHash) {
        let Some(rat) = self.rats.remove(hash) else {
            return;
        };
        if let Some(c) = self.clients.get_mut(&rat.client_id) {
            c.rats.retain(|h| h != hash);
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `limit` clients after `after`, in client id order, each decoded or not.
    fn page(&self, after: Option<&str>, limit: usize) -> Vec<Result<ClientRecord, StoreError>> {
        let inner = self.lock();
        // One pass: the `limit` smallest ids after `after`, then sorted.
        let mut ids: Vec<&Id> = inner
            .clients
            .keys()
            .filter(|id| after.is_none_or(|a| &***id > a))
            .collect();
        if ids.len() > limit {
            if limit == 0 {
                return Vec::new();
            }
            ids.select_nth_unstable(limit - 1);
            ids.truncate(limit);
        }
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| inner.clients[id].record(id))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied change: every
        // method checks all its conditions before it mutates anything.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl ClientStore for MemoryStore {
    async fn insert_client(&self, new: NewClient<'_>) -> Result<(), StoreError> {
        // Serialised before taking the lock (and shared with the response).
        let metadata = new.client.metadata.json();
        let mut inner = self.lock();
        if inner.clients.contains_key(new.client.client_id.as_str()) {
            return Err(StoreError::ClientExists);
        }
        if let Some(rat) = new.registration_access_token
            && inner.rats.contains_key(&rat.hash)
        {
            return Err(StoreError::TokenExists);
        }
        if let Some((id, now)) = new.spend_initial_access_token {
            let iat = inner
                .iats
                .get_mut(id)
                .ok_or(StoreError::InitialAccessTokenUnavailable)?;
            if !iat.usable_at(now) {
                return Err(StoreError::InitialAccessTokenUnavailable);
            }
            iat.uses += 1;
        }
        inner.put_client(new.client, metadata);
        if let Some(rat) = new.registration_access_token {
            inner.put_rat(rat);
        }
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let text = {
            let inner = self.lock();
            let Some(c) = inner.clients.get(client_id) else {
                return Ok(None);
            };
            if c.parsed.is_some() {
                return c.record(client_id).map(Some);
            }
            c.metadata.clone()
        };
        // Parsed outside the lock, then kept unless the client changed meanwhile.
        let metadata = decode_metadata(client_id, text.clone())?;
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some((id, c)) = inner.clients.get_key_value(client_id) else {
            return Ok(None);
        };
        if Arc::ptr_eq(&c.metadata, &text) && c.parsed.is_none() {
            let id = id.clone();
            if let Some(c) = inner.clients.get_mut(client_id) {
                c.parsed = Some(metadata);
            }
            inner.parsed.push_back(id);
            if inner.parsed.len() > PARSED_CACHE
                && let Some(old) = inner.parsed.pop_front()
                && let Some(c) = inner.clients.get_mut(&old)
            {
                c.parsed = None;
            }
        }
        inner.clients[client_id].record(client_id).map(Some)
    }

    async fn update_client(&self, update: ClientUpdate<'_>) -> Result<(), StoreError> {
        let metadata = update.client.metadata.json();
        let mut inner = self.lock();
        let id = update.client.client_id.as_str();
        let bound = inner
            .rats
            .get(update.presented)
            .is_some_and(|r| &*r.client_id == id);
        if !bound || !inner.clients.contains_key(id) {
            return Err(StoreError::RegistrationAccessTokenGone);
        }
        if let Some(new) = update.rotate_to
            && inner.rats.contains_key(&new.hash)
        {
            return Err(StoreError::TokenExists);
        }
        // Like the SQL stores: `managed_at` keeps the first time.
        let first = inner.clients.get(id).and_then(|c| c.managed_at);
        if let Some(first) = first
            && update.client.managed_at != Some(first)
        {
            let mut client = update.client.clone();
            client.managed_at = Some(first);
            inner.put_client(&client, metadata);
        } else {
            inner.put_client(update.client, metadata);
        }
        if let Some(new) = update.rotate_to {
            inner.remove_rat(update.presented);
            inner.put_rat(new);
        }
        Ok(())
    }

    async fn delete_client(
        &self,
        client_id: &str,
        deletion: ClientDeletion<'_>,
    ) -> Result<bool, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if let ClientDeletion::ByToken(hash) = deletion
            && inner
                .rats
                .get(hash)
                .is_none_or(|r| &*r.client_id != client_id)
        {
            return Ok(false);
        }
        if deletion == ClientDeletion::IfUnmanagedOpen
            && !inner
                .clients
                .get(client_id)
                .is_some_and(StoredClient::is_unmanaged_open)
        {
            return Ok(false);
        }
        let Some((id, old)) = inner.clients.remove_entry(client_id) else {
            return Ok(false);
        };
        if old.is_unmanaged_open() {
            inner.unmanaged.remove(&(old.created_at, id));
        }
        for hash in &old.rats {
            inner.rats.remove(hash);
        }
        Ok(true)
    }

    async fn find_registration_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RegistrationAccessTokenRecord>, StoreError> {
        Ok(self.lock().rats.get(hash).map(|r| r.record(*hash)))
    }

    async fn revoke_registration_access_token(&self, hash: &TokenHash) -> Result<(), StoreError> {
        self.lock().remove_rat(hash);
        Ok(())
    }

    async fn list_clients(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ClientRecord>, StoreError> {
        list_decodable(after, limit, |after, limit| {
            std::future::ready(Ok(self.page(after.as_deref(), limit)))
        })
        .await
    }

    async fn mark_managed(&self, client_id: &str, at: i64) -> Result<(), StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some((id, c)) = inner.clients.get_key_value(client_id) else {
            return Ok(());
        };
        if c.managed_at.is_some() {
            return Ok(());
        }
        let key = (c.created_at, id.clone());
        if c.initial_access_token_id.is_none() {
            inner.unmanaged.remove(&key);
        }
        if let Some(c) = inner.clients.get_mut(client_id) {
            c.managed_at = Some(at);
        }
        Ok(())
    }

    async fn unmanaged_open_clients(&self, limit: usize) -> Result<Vec<(String, i64)>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .unmanaged
            .iter()
            .take(limit)
            .map(|(created_at, id)| (id.to_string(), *created_at))
            .collect())
    }

    async fn count_unmanaged_open_clients(&self) -> Result<u64, StoreError> {
        Ok(self.lock().unmanaged.len() as u64)
    }
}

#[async_trait::async_trait]
impl InitialAccessTokenStore for MemoryStore {
    async fn insert_initial_access_token(
        &self,
        token: &InitialAccessTokenRecord,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.iats.contains_key(&token.id) || inner.iats.values().any(|t| t.hash == token.hash) {
            return Err(StoreError::TokenExists);
        }
        inner.iats.insert(token.id.clone(), token.clone());
        Ok(())
    }

    async fn find_initial_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<InitialAccessTokenRecord>, StoreError> {
        Ok(self
            .lock()
            .iats
            .values()
            .find(|t| t.hash.ct_eq(hash))
            .cloned())
    }

    async fn list_initial_access_tokens(
        &self,
    ) -> Result<Vec<InitialAccessTokenRecord>, StoreError> {
        let mut all: Vec<_> = self.lock().iats.values().cloned().collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(all)
    }

    async fn revoke_initial_access_token(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().iats.remove(id).is_some())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Map;

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
}

#[cfg(test)]
mod cache_tests {
    use serde_json::json;

    use super::*;

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
        assert!(store.lock().clients["a"].parsed.is_some());
        let second = store.get_client("a").await.unwrap().unwrap();
        assert_eq!(second, c);
    }
}
