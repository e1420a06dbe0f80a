//! RFC 7591 §3: client registration, authorised (§3, "initial access token") by nothing, one
//! static token or a token minted by an operator and kept in the store.

use serde_json::{Map, Value};

use super::pipeline::{Processed, Subject};
use super::{ClientResponse, Registrar};
use crate::audit::AuditEvent;
use crate::context::RequestContext;
use crate::error::{RegistrationError, TokenProblem};
use crate::settings::InitialAccessTokenMode;
use crate::store::{
    ClientRecord, InitialAccessTokenRecord, NewClient, RegistrationAccessTokenRecord, StoreError,
};
use crate::token::{TokenHash, generate_token};

/// How many times a registration retries when a generated client id is already taken.
const ID_COLLISION_RETRIES: usize = 3;

impl Registrar {
    /// RFC 7591 §3.1: registers a client.
    ///
    /// `token` is the bearer token presented, if any; it is only looked at when registration
    /// needs an initial access token. The outcome is recorded as a `dcr::audit` event.
    pub async fn register(
        &self,
        ctx: RequestContext,
        token: Option<&str>,
        body: Map<String, Value>,
    ) -> Result<ClientResponse, RegistrationError> {
        let addr = ctx.client_addr;
        let now = self.inner.clock.now();
        let (iat, result) = match self.initial_access_token(token, now).await {
            Ok(iat) => {
                let result = self.register_with(ctx, iat.as_ref(), body, now).await;
                (iat, result)
            }
            Err(e) => (None, Err(e)),
        };
        AuditEvent {
            iat_id: iat.as_ref().map(|r| r.id.as_str()),
            iat_label: iat.as_ref().and_then(|r| r.label.as_deref()),
            ..AuditEvent::new("register")
                .with_client_addr(addr)
                .with_client_id(result.as_ref().ok().map(|r| r.metadata.client_id()))
                .with_result(&result)
        }
        .emit();
        result
    }

    /// Checks the initial access token `token` at `now`: the stored token's record, if
    /// registration uses stored tokens.
    async fn initial_access_token(
        &self,
        token: Option<&str>,
        now: i64,
    ) -> Result<Option<InitialAccessTokenRecord>, RegistrationError> {
        let inner = &self.inner;
        match &inner.settings.initial_access_token {
            InitialAccessTokenMode::Open => Ok(None),
            InitialAccessTokenMode::Static(expected) => {
                let token = token.ok_or(RegistrationError::InvalidToken(TokenProblem::Missing))?;
                if !TokenHash::of(token).ct_eq(expected) {
                    return Err(RegistrationError::InvalidToken(TokenProblem::Unknown));
                }
                Ok(None)
            }
            InitialAccessTokenMode::Stored => {
                let token = token.ok_or(RegistrationError::InvalidToken(TokenProblem::Missing))?;
                let record = inner
                    .store
                    .find_initial_access_token(&TokenHash::of(token))
                    .await?
                    .filter(|r| r.usable_at(now))
                    .ok_or(RegistrationError::InvalidToken(TokenProblem::Unknown))?;
                if let Some(name) = inner.policies.first_unknown(&record.policies) {
                    return Err(RegistrationError::server(format!(
                        "initial access token {} names policy {name:?}, which is not configured",
                        record.id
                    )));
                }
                Ok(Some(record))
            }
        }
    }

    /// Registers a client authorised by `iat` (if registration needs one).
    async fn register_with(
        &self,
        mut ctx: RequestContext,
        iat: Option<&InitialAccessTokenRecord>,
        body: Map<String, Value>,
        now: i64,
    ) -> Result<ClientResponse, RegistrationError> {
        let inner = &self.inner;
        if let Some(record) = iat {
            ctx.token_label = record.label.clone();
        }
        let factory_id = inner.id_factory.generate(&ctx).await;
        let issue_rat = inner.rat_issuance.decide(&ctx).await.map_err(|e| {
            RegistrationError::server(format!("issue_registration_access_token: {e}"))
        })?;

        // Policies of the initial access token, in order.
        let iat_policies = iat.map(|r| r.policies.clone()).unwrap_or_default();
        let rat_policies = issue_rat.then(|| iat_policies.clone());
        let subject = Subject::New {
            client_id: factory_id.clone(),
        };
        let Processed {
            request: ctx,
            client: registered,
            registration_access_token_policies,
        } = self
            .process(ctx, body, subject, now, &iat_policies, rat_policies)
            .await?;

        let mut client = ClientRecord {
            client_id: registered.client_id().to_owned(),
            metadata: registered.into_metadata(),
            created_at: now,
            updated_at: now,
            initial_access_token_id: iat.map(|r| r.id.clone()),
            managed_at: None,
        };
        let id_from_factory = client.client_id == factory_id;
        let token_value = issue_rat.then(generate_token);
        for attempt in 0..=ID_COLLISION_RETRIES {
            let rat = token_value.as_ref().map(|t| RegistrationAccessTokenRecord {
                hash: t.hash(),
                client_id: client.client_id.clone(),
                policies: registration_access_token_policies
                    .clone()
                    .unwrap_or_default(),
                created_at: now,
            });
            let new = NewClient {
                client: &client,
                registration_access_token: rat.as_ref(),
                spend_initial_access_token: iat.map(|r| (r.id.as_str(), now)),
            };
            match inner.store.insert_client(new).await {
                Ok(()) => break,
                Err(StoreError::ClientExists)
                    if id_from_factory && attempt < ID_COLLISION_RETRIES =>
                {
                    let id = inner.id_factory.generate(&ctx).await;
                    client
                        .metadata
                        .set_server_member("client_id", Value::String(id.clone()));
                    client.client_id = id;
                }
                Err(StoreError::ClientExists) if !id_from_factory => {
                    return Err(RegistrationError::InvalidClientMetadata(
                        "client_id set by a policy is already registered".into(),
                    ));
                }
                Err(StoreError::InitialAccessTokenUnavailable) => {
                    return Err(RegistrationError::InvalidToken(TokenProblem::Unknown));
                }
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(client_id = %client.client_id, "client registered");
        let uri = token_value
            .as_ref()
            .map(|_| self.registration_client_uri(&client.client_id));
        Ok(ClientResponse {
            metadata: client.metadata,
            registration_access_token: token_value,
            registration_client_uri: uri,
        })
    }
}
