use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{
    ClientDeletion, ClientRecord, ClientStore, ClientUpdate, InitialAccessTokenRecord,
    InitialAccessTokenStore, NewClient, ParsedMetadataCache, RegistrationAccessTokenRecord,
    StoreError, list_decodable,
};
use crate::metadata::ClientMetadata;
use crate::token::TokenHash;

/// A store that keeps everything in process memory: for tests, demos and benchmarks.
/// Nothing survives a restart.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// The parsed metadata of the clients read last, so that repeated reads of the same
    /// clients do not parse again.
    parsed: ParsedMetadataCache,
}

/// A client id, shared by the map key, the token records and the index (stored once).
type Id = Arc<str>;

/// A client as kept in memory: compact, about 1 KB for a typical client (see
/// `bench/README.md`, "Memory per client"). The id is the map key.
#[derive(Debug)]
struct StoredClient {
    /// The metadata as compact JSON (what the SQL stores keep too), parsed on read (outside
    /// the lock: reads only clone the `Arc`) unless [`MemoryStore::parsed`] kept it.
    metadata: Arc<str>,
    created_at: i64,
    updated_at: i64,
    initial_access_token_id: Option<Box<str>>,
    managed_at: Option<i64>,
    /// Hashes of its registration access tokens (usually one), so deleting a client touches
    /// only its own tokens.
    rats: Vec<TokenHash>,
}

impl StoredClient {
    fn is_unmanaged_open(&self) -> bool {
        self.initial_access_token_id.is_none() && self.managed_at.is_none()
    }

    /// Its record, with `metadata` for its metadata.
    fn record(&self, id: &str, metadata: ClientMetadata) -> ClientRecord {
        ClientRecord {
            client_id: id.to_owned(),
            metadata,
            created_at: self.created_at,
            updated_at: self.updated_at,
            initial_access_token_id: self.initial_access_token_id.as_deref().map(str::to_owned),
            managed_at: self.managed_at,
        }
    }
}

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
            .map(|id| {
                let c = &inner.clients[id];
                let metadata = self.parsed.decode_unkept(id, c.metadata.clone())?;
                Ok(c.record(id, metadata))
            })
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
        // The record is copied under the lock; its metadata is parsed (or found parsed)
        // outside it.
        let (text, created_at, updated_at, initial_access_token_id, managed_at) = {
            let inner = self.lock();
            let Some(c) = inner.clients.get(client_id) else {
                return Ok(None);
            };
            (
                c.metadata.clone(),
                c.created_at,
                c.updated_at,
                c.initial_access_token_id.as_deref().map(str::to_owned),
                c.managed_at,
            )
        };
        Ok(Some(ClientRecord {
            client_id: client_id.to_owned(),
            metadata: self.parsed.decode(client_id, text)?,
            created_at,
            updated_at,
            initial_access_token_id,
            managed_at,
        }))
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
#[path = "memory_tests.rs"]
mod tests;
