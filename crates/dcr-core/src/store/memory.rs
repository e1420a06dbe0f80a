use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{
    ClientRecord, ClientStore, ClientUpdate, InitialAccessTokenRecord, InitialAccessTokenStore,
    NewClient, RegistrationAccessTokenRecord, StoreError,
};
use crate::token::TokenHash;

/// A store that keeps everything in process memory: for tests, demos and benchmarks.
/// Nothing survives a restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    clients: BTreeMap<String, ClientRecord>,
    rats: HashMap<TokenHash, RegistrationAccessTokenRecord>,
    /// Index: client id → hashes of its registration access tokens (usually one), so deleting
    /// a client touches only its own tokens.
    rats_by_client: HashMap<String, Vec<TokenHash>>,
    /// Index: the unmanaged open clients (no initial access token, never managed), ordered
    /// oldest first as `(created_at, client_id)`.
    unmanaged: BTreeSet<(i64, String)>,
    iats: BTreeMap<String, InitialAccessTokenRecord>,
}

fn is_unmanaged_open(c: &ClientRecord) -> bool {
    c.initial_access_token_id.is_none() && c.managed_at.is_none()
}

impl Inner {
    /// Stores `client` (replacing any record with its id), keeping the index of unmanaged
    /// open clients in step.
    fn put_client(&mut self, client: ClientRecord) {
        if let Some(old) = self.clients.get(&client.client_id)
            && is_unmanaged_open(old)
        {
            self.unmanaged
                .remove(&(old.created_at, old.client_id.clone()));
        }
        if is_unmanaged_open(&client) {
            self.unmanaged
                .insert((client.created_at, client.client_id.clone()));
        }
        self.clients.insert(client.client_id.clone(), client);
    }

    fn put_rat(&mut self, rat: RegistrationAccessTokenRecord) {
        self.rats_by_client
            .entry(rat.client_id.clone())
            .or_default()
            .push(rat.hash);
        self.rats.insert(rat.hash, rat);
    }

    fn remove_rat(&mut self, hash: &TokenHash) -> Option<RegistrationAccessTokenRecord> {
        let rat = self.rats.remove(hash)?;
        if let Some(hashes) = self.rats_by_client.get_mut(&rat.client_id) {
            hashes.retain(|h| h != hash);
            if hashes.is_empty() {
                self.rats_by_client.remove(&rat.client_id);
            }
        }
        Some(rat)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
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
        let mut inner = self.lock();
        if inner.clients.contains_key(&new.client.client_id) {
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
        if let Some(rat) = new.registration_access_token {
            inner.put_rat(rat.clone());
        }
        inner.put_client(new.client.clone());
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        Ok(self.lock().clients.get(client_id).cloned())
    }

    async fn update_client(&self, update: ClientUpdate<'_>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let id = &update.client.client_id;
        let bound = inner
            .rats
            .get(update.presented)
            .is_some_and(|r| &r.client_id == id);
        if !bound || !inner.clients.contains_key(id) {
            return Err(StoreError::RegistrationAccessTokenGone);
        }
        if let Some(new) = update.rotate_to {
            if inner.rats.contains_key(&new.hash) {
                return Err(StoreError::TokenExists);
            }
            inner.remove_rat(update.presented);
            inner.put_rat(new.clone());
        }
        let mut client = update.client.clone();
        // Like the SQL stores: `managed_at` keeps the first time.
        if let Some(first) = inner.clients.get(id).and_then(|c| c.managed_at) {
            client.managed_at = Some(first);
        }
        inner.put_client(client);
        Ok(())
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let removed = inner.clients.remove(client_id);
        if let Some(old) = &removed
            && is_unmanaged_open(old)
        {
            inner
                .unmanaged
                .remove(&(old.created_at, old.client_id.clone()));
        }
        if let Some(hashes) = inner.rats_by_client.remove(client_id) {
            for hash in hashes {
                inner.rats.remove(&hash);
            }
        }
        Ok(removed.is_some())
    }

    async fn find_registration_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RegistrationAccessTokenRecord>, StoreError> {
        Ok(self.lock().rats.get(hash).cloned())
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
        let inner = self.lock();
        let iter: Box<dyn Iterator<Item = &ClientRecord>> = match after {
            Some(a) => Box::new(
                inner
                    .clients
                    .range::<str, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
                    .map(|(_, c)| c),
            ),
            None => Box::new(inner.clients.values()),
        };
        Ok(iter.take(limit).cloned().collect())
    }

    async fn mark_managed(&self, client_id: &str, at: i64) -> Result<(), StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(c) = inner.clients.get_mut(client_id) else {
            return Ok(());
        };
        if c.managed_at.is_none() {
            c.managed_at = Some(at);
            if c.initial_access_token_id.is_none() {
                let key = (c.created_at, c.client_id.clone());
                inner.unmanaged.remove(&key);
            }
        }
        Ok(())
    }

    async fn unmanaged_open_clients(&self, limit: usize) -> Result<Vec<(String, i64)>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .unmanaged
            .iter()
            .take(limit)
            .map(|(created_at, id)| (id.clone(), *created_at))
            .collect())
    }

    async fn count_unmanaged_open_clients(&self) -> Result<u64, StoreError> {
        Ok(self.lock().unmanaged.len() as u64)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
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
            .values()
            .filter(|c| is_unmanaged_open(c))
            .map(|c| (c.client_id.clone(), c.created_at))
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
        // Exactly the live tokens exist, each bound to its client, and the per-client index
        // holds exactly them.
        let inner = store.lock();
        assert_eq!(inner.rats.len(), live_tokens.len());
        let indexed: usize = inner.rats_by_client.values().map(Vec::len).sum();
        assert_eq!(indexed, live_tokens.len());
        for (n, client) in live_tokens {
            let r = inner.rats.get(&hash(*n)).expect("live token stored");
            assert_eq!(&r.client_id, client);
            assert!(inner.rats_by_client[client].contains(&hash(*n)));
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
                    let existed = store.delete_client(&id).await.unwrap();
                    assert_eq!(existed, exists.is_some());
                    // Deleting removes exactly this client's tokens.
                    live.retain(|_, c| *c != id);
                    assert!(!store.lock().rats_by_client.contains_key(&id));
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
        store.lock().put_rat(rat(10, "b"));
        assert!(store.delete_client("b").await.unwrap());
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
        assert!(!store.delete_client("b").await.unwrap());
    }
}
