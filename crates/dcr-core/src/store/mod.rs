//! What dcr keeps: clients, registration access tokens (RATs) and initial access tokens (IATs).
//!
//! Tokens are only ever stored as [`TokenHash`](crate::token::TokenHash)es. Every method that
//! changes more than one record does so atomically, so a crash or a concurrent request never
//! leaves a half-written state.

#[cfg(feature = "test-util")]
pub mod conformance;
mod decode;
mod memory;
mod parsed;

pub use decode::{decode_metadata, list_decodable};
pub use memory::MemoryStore;
pub use parsed::ParsedMetadataCache;

use crate::metadata::ClientMetadata;
use crate::token::TokenHash;

/// A registered client.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRecord {
    /// The client id (also inside `metadata`).
    pub client_id: String,
    /// The validated metadata, including `client_secret` when one was issued
    /// (RFC 7592 read must return it).
    pub metadata: ClientMetadata,
    /// When the client was registered (seconds since the epoch).
    pub created_at: i64,
    /// When the client was last changed.
    pub updated_at: i64,
    /// The id of the initial access token it was registered with, if any.
    pub initial_access_token_id: Option<String>,
    /// When the client was first managed (read, updated) over RFC 7592 or reported as used
    /// by the host authorization server; `None` while it never was.
    pub managed_at: Option<i64>,
}

/// A registration access token, bound to one client.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrationAccessTokenRecord {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// The client it manages.
    pub client_id: String,
    /// Policies that run on every update made with it.
    pub policies: Vec<String>,
    /// When it was issued.
    pub created_at: i64,
}

/// An initial access token minted by an operator.
#[derive(Debug, Clone, PartialEq)]
pub struct InitialAccessTokenRecord {
    /// A public identifier, safe to show and to log (never the token).
    pub id: String,
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// A label for operators.
    pub label: Option<String>,
    /// Policies that run, in this order, on every registration made with it.
    pub policies: Vec<String>,
    /// When it was minted.
    pub created_at: i64,
    /// When it stops working, if ever.
    pub expires_at: Option<i64>,
    /// How many registrations it may authorise, if limited.
    pub max_uses: Option<u64>,
    /// How many registrations it has authorised.
    pub uses: u64,
}

impl InitialAccessTokenRecord {
    /// Whether the token may authorise one more registration at `now`.
    pub fn usable_at(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|exp| now < exp)
            && self.max_uses.is_none_or(|max| self.uses < max)
    }

    /// Uses left, if limited.
    pub fn uses_left(&self) -> Option<u64> {
        self.max_uses.map(|max| max.saturating_sub(self.uses))
    }
}

/// A new client and what must be written with it, in one transaction.
#[derive(Debug, Clone)]
pub struct NewClient<'a> {
    /// The client.
    pub client: &'a ClientRecord,
    /// Its first registration access token, if one is issued.
    pub registration_access_token: Option<&'a RegistrationAccessTokenRecord>,
    /// The initial access token to spend one use of (by id), checked against its expiry
    /// and use limit at `now`; if it cannot be spent nothing is written.
    pub spend_initial_access_token: Option<(&'a str, i64)>,
}

/// A replacement of a client's metadata, in one transaction.
#[derive(Debug, Clone)]
pub struct ClientUpdate<'a> {
    /// The new state of the client.
    pub client: &'a ClientRecord,
    /// The token that authorised the update; it must still exist and be bound to the client.
    pub presented: &'a TokenHash,
    /// When rotating: the token that replaces `presented` (which is deleted).
    pub rotate_to: Option<&'a RegistrationAccessTokenRecord>,
}

/// On what authority a client is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientDeletion<'a> {
    /// RFC 7592 §2.3: by the holder of this registration access token. The client is deleted
    /// only if, in the same transaction, the token still exists and is bound to it (a
    /// concurrent rotation or revocation wins over a delete that checked the token earlier).
    ByToken(&'a TokenHash),
    /// Pruning: only if, in the same transaction, the client is still an unmanaged open
    /// registration (no initial access token, never managed), so a client managed meanwhile
    /// stays. The record is not decoded: a client whose record cannot be decoded is pruned too.
    IfUnmanagedOpen,
    /// By an operator: whatever its tokens.
    Unconditional,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A client with that id already exists.
    #[error("client id already exists")]
    ClientExists,
    /// The initial access token cannot be spent (unknown, expired, revoked or used up).
    #[error("initial access token cannot be spent")]
    InitialAccessTokenUnavailable,
    /// The registration access token that authorised an update is no longer valid
    /// (rotated or revoked concurrently), or the client is gone.
    #[error("registration access token no longer valid")]
    RegistrationAccessTokenGone,
    /// A token hash collided with an existing one.
    #[error("token hash already exists")]
    TokenExists,
    /// The stored record of a client cannot be decoded (such as metadata that is not JSON, or
    /// JSON nested deeper than the reader accepts). Only that client is affected: listing
    /// leaves it out (logging an error that names it) and other clients are served.
    #[error("stored client {client_id} cannot be decoded: {reason}")]
    Undecodable {
        /// The client whose record cannot be decoded.
        client_id: String,
        /// What is wrong with it (never the stored text).
        reason: String,
    },
    /// The backend failed; the backend's error is kept as the source.
    #[error("backend: {0}")]
    Backend(#[source] crate::error::BoxError),
}

impl StoreError {
    /// A backend failure caused by `err` (an error, or a message).
    pub fn backend(err: impl Into<crate::error::BoxError>) -> Self {
        StoreError::Backend(err.into())
    }
}

/// Storage of clients and registration access tokens.
///
/// A store must implement the first seven methods. The others are maintenance with defaults:
/// pruning abandoned open registrations needs `mark_managed`, `unmanaged_open_clients` and
/// `count_unmanaged_open_clients` (by default nothing is ever a pruning candidate, so pruning
/// deletes nothing), readiness probes call `ping` (by default the store is always ready) and
/// shutdown calls `close` (by default nothing to close).
///
/// Prove an implementation with the conformance suite (`dcr_core::store::conformance`, feature
/// `test-util`).
#[async_trait::async_trait]
pub trait ClientStore: Send + Sync + 'static {
    /// Inserts a new client with its first RAT, spending an IAT use if asked; all or nothing.
    async fn insert_client(&self, new: NewClient<'_>) -> Result<(), StoreError>;

    /// The client `client_id`; [`StoreError::Undecodable`] if its record cannot be decoded.
    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError>;

    /// Replaces a client's record (and rotates its RAT if asked); all or nothing. A `managed_at`
    /// already stored is kept (it records the first time).
    async fn update_client(&self, update: ClientUpdate<'_>) -> Result<(), StoreError>;

    /// Deletes a client and every RAT bound to it, all or nothing. `false` if nothing was
    /// deleted: there was no such client or its condition ([`ClientDeletion`]) did not hold.
    async fn delete_client(
        &self,
        client_id: &str,
        deletion: ClientDeletion<'_>,
    ) -> Result<bool, StoreError>;

    /// The RAT with this hash.
    async fn find_registration_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RegistrationAccessTokenRecord>, StoreError>;

    /// Deletes the RAT with this hash (no error if it does not exist).
    async fn revoke_registration_access_token(&self, hash: &TokenHash) -> Result<(), StoreError>;

    /// Clients in client id order, starting after `after`, at most `limit`. A client whose
    /// record cannot be decoded is left out, with an error log naming it
    /// ([`list_decodable`]), so one bad record never breaks listing.
    async fn list_clients(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ClientRecord>, StoreError>;

    /// Maintenance: records that a client was managed or used, unless it already was
    /// (`managed_at` keeps the first time). Unknown clients are ignored. By default, nothing
    /// is recorded.
    async fn mark_managed(&self, client_id: &str, at: i64) -> Result<(), StoreError> {
        let _ = (client_id, at);
        Ok(())
    }

    /// Maintenance: clients registered without an initial access token and never managed or
    /// used, oldest first, at most `limit`: `(client_id, created_at)`. By default none: a
    /// store that does not track management never offers a client for pruning.
    async fn unmanaged_open_clients(&self, limit: usize) -> Result<Vec<(String, i64)>, StoreError> {
        let _ = limit;
        Ok(Vec::new())
    }

    /// Maintenance: how many clients [`ClientStore::unmanaged_open_clients`] would list
    /// without a limit. By default 0.
    async fn count_unmanaged_open_clients(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Checks that the store answers. By default it always does.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Closes connections and flushes what must be flushed, after in-flight operations finish.
    /// By default there is nothing to close.
    async fn close(&self) {}
}

/// Storage of initial access tokens.
#[async_trait::async_trait]
pub trait InitialAccessTokenStore: Send + Sync + 'static {
    /// Stores a new IAT.
    async fn insert_initial_access_token(
        &self,
        token: &InitialAccessTokenRecord,
    ) -> Result<(), StoreError>;

    /// The IAT with this hash.
    async fn find_initial_access_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<InitialAccessTokenRecord>, StoreError>;

    /// Every IAT, by creation time.
    async fn list_initial_access_tokens(&self)
    -> Result<Vec<InitialAccessTokenRecord>, StoreError>;

    /// Deletes the IAT `id`. `false` if there was none.
    async fn revoke_initial_access_token(&self, id: &str) -> Result<bool, StoreError>;
}

/// A store of everything dcr keeps.
pub trait Store: ClientStore + InitialAccessTokenStore {}

impl<T: ClientStore + InitialAccessTokenStore> Store for T {}
