use std::collections::{BTreeMap, HashMap};
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
    iats: BTreeMap<String, InitialAccessTokenRecord>,
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
            inner.rats.insert(rat.hash, rat.clone());
        }
        inner
            .clients
            .insert(new.client.client_id.clone(), new.client.clone());
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
            inner.rats.remove(update.presented);
            inner.rats.insert(new.hash, new.clone());
        }
        let mut client = update.client.clone();
        // Like the SQL stores: `managed_at` keeps the first time.
        if let Some(first) = inner.clients.get(id).and_then(|c| c.managed_at) {
            client.managed_at = Some(first);
        }
        inner.clients.insert(id.clone(), client);
        Ok(())
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let existed = inner.clients.remove(client_id).is_some();
        inner.rats.retain(|_, r| r.client_id != client_id);
        Ok(existed)
    }

    async fn find_registration_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RegistrationAccessTokenRecord>, StoreError> {
        Ok(self.lock().rats.get(hash).cloned())
    }

    async fn revoke_registration_access_token(&self, hash: &TokenHash) -> Result<(), StoreError> {
        self.lock().rats.remove(hash);
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
        if let Some(c) = self.lock().clients.get_mut(client_id) {
            c.managed_at.get_or_insert(at);
        }
        Ok(())
    }

    async fn unmanaged_open_clients(&self, limit: usize) -> Result<Vec<(String, i64)>, StoreError> {
        let inner = self.lock();
        let mut found: Vec<(String, i64)> = inner
            .clients
            .values()
            .filter(|c| c.initial_access_token_id.is_none() && c.managed_at.is_none())
            .map(|c| (c.client_id.clone(), c.created_at))
            .collect();
        found.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        found.truncate(limit);
        Ok(found)
    }

    async fn count_unmanaged_open_clients(&self) -> Result<u64, StoreError> {
        let inner = self.lock();
        let n = inner
            .clients
            .values()
            .filter(|c| c.initial_access_token_id.is_none() && c.managed_at.is_none())
            .count();
        Ok(n as u64)
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
