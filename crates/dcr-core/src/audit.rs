//! Audit events: one structured `tracing` record (target `dcr::audit`) per registration,
//! update, deletion or denial, for operators to ship to their audit trail.
//!
//! Fields: `action` (`register`, `update`, `delete`, `read`, `prune`), `outcome` (`created`,
//! `updated`, `deleted`, `denied`, `failed`), `client_addr`, `client_id`, `iat_id`,
//! `iat_label` and, when refused, `error` (the RFC error code). Never a token or a secret.

use std::net::IpAddr;

use crate::RegistrationError;

/// One audited operation.
#[derive(Debug, Clone, Copy)]
pub struct AuditEvent<'a> {
    /// What was attempted: `register`, `update`, `delete`, `read`.
    pub action: &'static str,
    /// Who asked (the client address as the HTTP layer resolved it).
    pub client_addr: Option<IpAddr>,
    /// The client concerned, when known.
    pub client_id: Option<&'a str>,
    /// The initial access token that authorised a registration (its public id).
    pub iat_id: Option<&'a str>,
    /// That token's label.
    pub iat_label: Option<&'a str>,
    /// Why it was refused, if it was.
    pub error: Option<&'a RegistrationError>,
}

impl AuditEvent<'_> {
    /// The outcome word of this event.
    pub fn outcome(&self) -> &'static str {
        match (self.error, self.action) {
            (Some(RegistrationError::Server(_)), _) => "failed",
            (Some(_), _) => "denied",
            (None, "register") => "created",
            (None, "update") => "updated",
            (None, "delete") => "deleted",
            (None, _) => "allowed",
        }
    }

    /// Writes the event as a `dcr::audit` record.
    pub fn emit(&self) {
        // Field values are only evaluated when the record is enabled.
        let addr = || self.client_addr.map(tracing::field::display);
        let outcome = self.outcome();
        let error = self.error.map(RegistrationError::code);
        if self.error.is_some() {
            tracing::warn!(target: "dcr::audit", action = self.action, outcome,
                client_addr = addr(), client_id = self.client_id, iat_id = self.iat_id,
                iat_label = self.iat_label, error, "registration {} {}", self.action, outcome);
        } else {
            tracing::info!(target: "dcr::audit", action = self.action, outcome,
                client_addr = addr(), client_id = self.client_id, iat_id = self.iat_id,
                iat_label = self.iat_label, "registration {} {}", self.action, outcome);
        }
    }
}
