//! Initial access tokens (RFC 7591 §3, "initial access token"): minted by an operator, kept in
//! the store as hashes, listed and revoked.

use super::Registrar;
use crate::error::RegistrationError;
use crate::store::InitialAccessTokenRecord;
use crate::token::{Secret, generate_token};

/// What an operator asks for when minting an initial access token.
#[derive(Debug, Clone, Default)]
pub struct MintInitialAccessToken {
    /// Policies, run in this order on every registration made with the token.
    pub policies: Vec<String>,
    /// Lifetime in seconds; `None` for a token that does not expire.
    pub expires_in: Option<i64>,
    /// How many registrations it may authorise; `None` for unlimited.
    pub max_uses: Option<u64>,
    /// A label for operators (shown in listings and audit logs).
    pub label: Option<String>,
}

impl Registrar {
    /// Mints an initial access token. Every policy it names must be configured.
    pub async fn mint_initial_access_token(
        &self,
        request: MintInitialAccessToken,
    ) -> Result<(InitialAccessTokenRecord, Secret), RegistrationError> {
        if let Some(name) = self.inner.policies.first_unknown(&request.policies) {
            return Err(RegistrationError::InvalidRequest(format!(
                "policy {name:?} is not configured"
            )));
        }
        if request.expires_in.is_some_and(|s| s <= 0) {
            return Err(RegistrationError::InvalidRequest(
                "expires_in must be a positive number of seconds".into(),
            ));
        }
        if request.max_uses == Some(0) {
            return Err(RegistrationError::InvalidRequest(
                "max_uses must be at least 1".into(),
            ));
        }
        let now = self.inner.clock.now();
        let token = generate_token();
        let id_bytes: [u8; 8] = rand::random();
        let record = InitialAccessTokenRecord {
            id: hex::encode(id_bytes),
            hash: token.hash(),
            label: request.label,
            policies: request.policies,
            created_at: now,
            expires_at: request.expires_in.map(|s| now.saturating_add(s)),
            max_uses: request.max_uses,
            uses: 0,
        };
        self.inner
            .store
            .insert_initial_access_token(&record)
            .await?;
        tracing::info!(iat_id = %record.id, "initial access token minted");
        Ok((record, token))
    }

    /// Every stored initial access token (never the token values, which are not kept).
    pub async fn list_initial_access_tokens(
        &self,
    ) -> Result<Vec<InitialAccessTokenRecord>, RegistrationError> {
        Ok(self.inner.store.list_initial_access_tokens().await?)
    }

    /// Revokes the initial access token `id`; `false` if there was none.
    pub async fn revoke_initial_access_token(&self, id: &str) -> Result<bool, RegistrationError> {
        Ok(self.inner.store.revoke_initial_access_token(id).await?)
    }

    /// Stored initial access tokens that name a policy that is not configured, with that name.
    pub async fn tokens_with_unknown_policies(
        &self,
    ) -> Result<Vec<(InitialAccessTokenRecord, String)>, RegistrationError> {
        let all = self.list_initial_access_tokens().await?;
        Ok(all
            .into_iter()
            .filter_map(|t| {
                self.inner
                    .policies
                    .first_unknown(&t.policies)
                    .map(str::to_owned)
                    .map(|n| (t, n))
            })
            .collect())
    }
}
