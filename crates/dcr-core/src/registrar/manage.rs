//! RFC 7592 §2: reading (§2.1), updating (§2.2) and deleting (§2.3) a registration with its
//! registration access token; and an operator's deletion (the `dcr clients delete` command).

use serde_json::{Map, Value};

use super::pipeline::{Processed, Subject};
use super::{ClientResponse, Registrar};
use crate::audit::AuditEvent;
use crate::client::RegisteredClient;
use crate::context::RequestContext;
use crate::error::{RegistrationError, TokenProblem};
use crate::store::{ClientRecord, ClientUpdate, RegistrationAccessTokenRecord, StoreError};
use crate::token::{Secret, TokenHash, ct_str_eq, generate_token};

/// Members a client update request must not carry (RFC 7592 §2.2).
const FORBIDDEN_ON_UPDATE: &[&str] = &[
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
];

/// A client whose registration access token was checked: the subject of read, update and delete.
#[derive(Debug, Clone)]
pub struct AuthorizedClient {
    /// The client.
    pub client: ClientRecord,
    /// The presented token's record.
    pub token: RegistrationAccessTokenRecord,
    presented: Secret,
}

impl Registrar {
    /// Checks a registration access token presented for `client_id` (RFC 7592 §2).
    ///
    /// A token bound to another client, or presented for a client that does not exist,
    /// is revoked (RFC 7592 §2.1) and refused.
    pub async fn authorize(
        &self,
        client_id: &str,
        token: Option<&str>,
    ) -> Result<AuthorizedClient, RegistrationError> {
        let token = token.ok_or(RegistrationError::InvalidToken(TokenProblem::Missing))?;
        let hash = TokenHash::of(token);
        let store = &self.inner.store;
        let record = store
            .find_registration_access_token(&hash)
            .await?
            .filter(|r| r.hash.ct_eq(&hash))
            .ok_or(RegistrationError::InvalidToken(TokenProblem::Unknown))?;
        let client = match store.get_client(client_id).await? {
            Some(c) if c.client_id == record.client_id => c,
            _ => {
                store.revoke_registration_access_token(&hash).await?;
                tracing::warn!(token_client_id = %record.client_id, path_client_id = %client_id,
                    "registration access token presented for another client; revoked");
                return Err(RegistrationError::InvalidToken(
                    TokenProblem::ClientMismatch,
                ));
            }
        };
        if let Some(name) = self.inner.policies.first_unknown(&record.policies) {
            return Err(RegistrationError::server(format!(
                "registration access token of client {client_id} names policy {name:?}, which is not configured"
            )));
        }
        if client.managed_at.is_none() {
            // A client whose owner manages it is never pruned as abandoned.
            store
                .mark_managed(client_id, self.inner.clock.now())
                .await?;
        }
        Ok(AuthorizedClient {
            client,
            token: record,
            presented: Secret::new(token),
        })
    }

    /// RFC 7592 §2.1: the client's current registration, with the presented token.
    pub fn read(&self, authorized: AuthorizedClient) -> ClientResponse {
        let uri = self.registration_client_uri(&authorized.client.client_id);
        ClientResponse {
            metadata: authorized.client.metadata,
            registration_access_token: Some(authorized.presented),
            registration_client_uri: Some(uri),
        }
    }

    /// RFC 7592 §2.2: replaces the client's metadata with `body`. The outcome is recorded as a
    /// `dcr::audit` event.
    pub async fn update(
        &self,
        ctx: RequestContext,
        authorized: AuthorizedClient,
        body: Map<String, Value>,
    ) -> Result<ClientResponse, RegistrationError> {
        let addr = ctx.client_addr;
        let client_id = authorized.client.client_id.clone();
        let result = self.update_with(ctx, authorized, body).await;
        AuditEvent::new("update")
            .with_client_addr(addr)
            .with_client_id(Some(&client_id))
            .with_result(&result)
            .emit();
        result
    }

    async fn update_with(
        &self,
        ctx: RequestContext,
        authorized: AuthorizedClient,
        body: Map<String, Value>,
    ) -> Result<ClientResponse, RegistrationError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let current = &authorized.client;
        let typed = RegisteredClient::from_metadata(current.metadata.clone());
        check_update_request(&body, &typed)?;
        let properties: Map<String, Value> = body
            .into_iter()
            .filter(|(_, v)| !(v.is_null() || v.as_str() == Some("")))
            .collect();

        let rat_policies = authorized.token.policies.clone();
        let subject = Subject::Existing {
            record: current,
            client: &typed,
        };
        let Processed {
            request: _,
            client: updated,
            registration_access_token_policies,
        } = self
            .process(
                ctx,
                properties,
                subject,
                now,
                &rat_policies,
                Some(rat_policies.clone()),
            )
            .await?;

        let client = ClientRecord {
            client_id: current.client_id.clone(),
            metadata: updated.into_metadata(),
            created_at: current.created_at,
            updated_at: now,
            initial_access_token_id: current.initial_access_token_id.clone(),
            managed_at: current.managed_at.or(Some(now)),
        };
        let rotated = inner
            .settings
            .rotate_registration_access_token
            .then(generate_token);
        let rotated_record = rotated.as_ref().map(|t| RegistrationAccessTokenRecord {
            hash: t.hash(),
            client_id: client.client_id.clone(),
            policies: registration_access_token_policies.unwrap_or(rat_policies),
            created_at: now,
        });
        let update = ClientUpdate {
            client: &client,
            presented: &authorized.token.hash,
            rotate_to: rotated_record.as_ref(),
        };
        match inner.store.update_client(update).await {
            Ok(()) => {}
            Err(StoreError::RegistrationAccessTokenGone) => {
                return Err(RegistrationError::InvalidToken(TokenProblem::Unknown));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(client_id = %client.client_id, rotated = rotated.is_some(), "client updated");
        let uri = self.registration_client_uri(&client.client_id);
        Ok(ClientResponse {
            metadata: client.metadata,
            registration_access_token: Some(rotated.unwrap_or(authorized.presented)),
            registration_client_uri: Some(uri),
        })
    }

    /// RFC 7592 §2.3: deletes the client and every registration access token bound to it.
    pub async fn delete(&self, authorized: AuthorizedClient) -> Result<(), RegistrationError> {
        self.delete_for(&RequestContext::default(), authorized)
            .await
    }

    /// [`Registrar::delete`], recording `ctx` (the requester) in the `dcr::audit` event.
    pub async fn delete_for(
        &self,
        ctx: &RequestContext,
        authorized: AuthorizedClient,
    ) -> Result<(), RegistrationError> {
        let client_id = authorized.client.client_id;
        // Only while the presented token is still bound to the client, checked in the
        // store's transaction: a rotation that won a race makes this delete a 401.
        let deletion = crate::store::ClientDeletion::ByToken(&authorized.token.hash);
        let result = match self.inner.store.delete_client(&client_id, deletion).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(RegistrationError::InvalidToken(TokenProblem::Unknown)),
            Err(e) => Err(e.into()),
        };
        AuditEvent::new("delete")
            .with_client_addr(ctx.client_addr)
            .with_client_id(Some(&client_id))
            .with_result(&result)
            .emit();
        result
    }

    /// Deletes `client_id` and its registration access tokens on an operator's request (no
    /// token needed), recording `by` (e.g. `cli`) in the `dcr::audit` event. `false` if there
    /// was no such client.
    pub async fn delete_by_operator(
        &self,
        client_id: &str,
        by: &'static str,
    ) -> Result<bool, RegistrationError> {
        let result = self
            .inner
            .store
            .delete_client(client_id, crate::store::ClientDeletion::Unconditional)
            .await
            .map_err(RegistrationError::from);
        if !matches!(result, Ok(false)) {
            AuditEvent {
                by: Some(by),
                ..AuditEvent::new("delete")
                    .with_client_id(Some(client_id))
                    .with_result(&result)
            }
            .emit();
        }
        result
    }
}

/// The RFC 7592 §2.2 rules of an update request: no server-assigned members, the client's own
/// `client_id`, and its `client_secret` if one is sent.
fn check_update_request(
    body: &Map<String, Value>,
    current: &RegisteredClient,
) -> Result<(), RegistrationError> {
    if let Some(field) = FORBIDDEN_ON_UPDATE.iter().find(|f| body.contains_key(**f)) {
        return Err(RegistrationError::InvalidRequest(format!(
            "the update request must not include {field}"
        )));
    }
    match body.get("client_id") {
        Some(Value::String(id)) if id == current.client_id() => {}
        Some(_) => {
            return Err(RegistrationError::InvalidRequest(
                "client_id in the request body must equal the client_id of the registration being updated".into(),
            ));
        }
        None => {
            return Err(RegistrationError::InvalidRequest(
                "the update request must include client_id (RFC 7592 §2.2)".into(),
            ));
        }
    }
    if let Some(sent) = body.get("client_secret") {
        // A client without a secret has the empty one: sending `""` (or a non-string) is
        // accepted for it.
        let sent = sent.as_str().unwrap_or_default();
        let stored = current.client_secret().map_or("", Secret::expose);
        if !ct_str_eq(sent, stored) {
            return Err(RegistrationError::InvalidRequest(
                "client_secret in the request body does not match the client's secret".into(),
            ));
        }
    }
    Ok(())
}
