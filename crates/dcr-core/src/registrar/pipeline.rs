//! The document pipeline shared by registration (RFC 7591 §3.1) and update (RFC 7592 §2.2):
//! software statement (RFC 7591 §2.3) → server-assigned members → policies → validation →
//! remote documents (`jwks_uri`, `sector_identifier_uri`) → the client secret.

use serde_json::{Map, Value};

use super::Registrar;
use crate::client::RegisteredClient;
use crate::context::RequestContext;
use crate::error::RegistrationError;
use crate::metadata::{self, ClientMetadata};
use crate::policy::{PolicyCall, PolicyError};
use crate::store::ClientRecord;
use crate::token::Secret;

/// Whose document the pipeline processes.
pub(super) enum Subject<'a> {
    /// A client being registered, with the id the server assigned it.
    New {
        /// The assigned client id (policies may still change it).
        client_id: String,
    },
    /// A registered client being updated (its id, issue time and secret are kept).
    Existing {
        /// Its stored record.
        record: &'a ClientRecord,
        /// The same client, typed.
        client: &'a RegisteredClient,
    },
}

/// A document that went through the pipeline.
pub(super) struct Processed {
    /// The request, as the policies left it.
    pub(super) request: RequestContext,
    /// The validated client, its secret settled.
    pub(super) client: RegisteredClient,
    /// The policies the registration access token carries; `None` when none is issued.
    pub(super) registration_access_token_policies: Option<Vec<String>>,
}

impl Registrar {
    /// Runs the pipeline over a request body at `now`: `policies` in order, the registration
    /// access token starting with `registration_access_token_policies`.
    pub(super) async fn process(
        &self,
        request: RequestContext,
        mut properties: Map<String, Value>,
        subject: Subject<'_>,
        now: i64,
        policies: &[String],
        registration_access_token_policies: Option<Vec<String>>,
    ) -> Result<Processed, RegistrationError> {
        let inner = &self.inner;
        metadata::apply_software_statement(
            &mut properties,
            inner.validator.server(),
            now,
            inner.fetcher.as_deref(),
        )
        .await?;
        self.assign_server_members(&request, &mut properties, &subject, now)
            .await;

        let mut call = PolicyCall {
            request,
            properties,
            registration_access_token_policies,
        };
        self.run_policies(policies, &mut call).await?;
        let PolicyCall {
            request,
            mut properties,
            registration_access_token_policies,
        } = call;

        let previous_secret = match subject {
            Subject::New { .. } => None,
            Subject::Existing { record, client } => {
                // The client id is bound to the registration access token: policies cannot
                // move it.
                properties.insert("client_id".into(), Value::String(record.client_id.clone()));
                client.client_secret()
            }
        };
        let metadata = self.validate(properties).await?;
        let client = self
            .settle_secret(&request, metadata, previous_secret)
            .await;
        Ok(Processed {
            request,
            client,
            registration_access_token_policies,
        })
    }

    /// Sets the members the server assigns (RFC 7591 §3.2.1) before policies see the
    /// document: `client_id` and `client_id_issued_at`, and the client secret a client that
    /// needs one will get (a registered client keeps its own).
    async fn assign_server_members(
        &self,
        request: &RequestContext,
        properties: &mut Map<String, Value>,
        subject: &Subject<'_>,
        now: i64,
    ) {
        match subject {
            Subject::New { client_id } => {
                properties.insert("client_id".into(), Value::String(client_id.clone()));
                properties.insert("client_id_issued_at".into(), Value::from(now));
                properties.remove("client_secret");
                properties.remove("client_secret_expires_at");
            }
            Subject::Existing { client, .. } => {
                if let Some(issued) = client.client_id_issued_at() {
                    properties.insert("client_id_issued_at".into(), Value::from(issued));
                }
                if let Some(secret) = client.client_secret() {
                    properties.insert(
                        "client_secret".into(),
                        Value::String(secret.expose().to_owned()),
                    );
                    let expires = client.client_secret_expires_at().unwrap_or(0);
                    properties.insert("client_secret_expires_at".into(), Value::from(expires));
                    return;
                }
                properties.remove("client_secret");
            }
        }
        if self.inner.validator.needs_secret_after_defaults(properties) {
            let secret = self.inner.secret_factory.generate(request).await;
            properties.insert("client_secret".into(), Value::String(secret));
            properties.insert("client_secret_expires_at".into(), Value::from(0));
        }
    }

    async fn run_policies(
        &self,
        names: &[String],
        call: &mut PolicyCall,
    ) -> Result<(), RegistrationError> {
        for name in names {
            let policy = self.inner.policies.get(name).ok_or_else(|| {
                RegistrationError::server(format!("policy {name:?} is not configured"))
            })?;
            match policy.apply(call).await {
                Ok(()) => {}
                Err(PolicyError::Reject(msg)) => {
                    metrics::counter!("dcr_policy_rejections_total", "policy" => name.clone())
                        .increment(1);
                    return Err(RegistrationError::InvalidClientMetadata(msg));
                }
                Err(failed @ PolicyError::Failed(_)) => {
                    return Err(RegistrationError::server_caused_by(
                        format!("policy {name}"),
                        failed,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Validates a document and checks the remote documents it names (`jwks_uri`,
    /// `sector_identifier_uri`).
    pub(crate) async fn validate(
        &self,
        properties: Map<String, Value>,
    ) -> Result<ClientMetadata, RegistrationError> {
        let validator = &self.inner.validator;
        let validated = validator.validate(properties)?;
        metadata::verify_remote(
            &validated,
            self.inner.fetcher.as_deref(),
            validator.server(),
        )
        .await?;
        Ok(validated)
    }

    /// Settles the client secret, once, on the validated metadata, and types the client: a
    /// client that needs a secret has one (the one it had, one a policy set, or a new one), a
    /// client that does not has none.
    async fn settle_secret(
        &self,
        request: &RequestContext,
        mut md: ClientMetadata,
        previous: Option<&Secret>,
    ) -> RegisteredClient {
        if md.needs_secret() {
            if md.client_secret().is_none() {
                let secret = match previous {
                    Some(p) => p.expose().to_owned(),
                    None => self.inner.secret_factory.generate(request).await,
                };
                md.set_server_member("client_secret", Value::String(secret));
            }
            if md.get("client_secret_expires_at").is_none() {
                md.set_server_member("client_secret_expires_at", Value::from(0));
            }
        } else {
            md.remove_server_member("client_secret");
            md.remove_server_member("client_secret_expires_at");
        }
        RegisteredClient::from_metadata(md)
    }
}
