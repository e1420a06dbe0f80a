//! The registration domain of dcr: OAuth 2.0 Dynamic Client Registration (RFC 7591),
//! its management protocol (RFC 7592) and OpenID Connect Dynamic Client Registration 1.0.
//!
//! This crate knows nothing of HTTP or SQL. It holds:
//! - [`metadata`]: the client metadata model and its validator;
//! - [`client`]: the registered client, typed (id, secret, issue and expiry times, metadata);
//! - [`token`]: opaque tokens, their hashes and redacted secret types;
//! - [`policy`]: named registration policies (sync or async closures) and the
//!   registration-access-token issuance decision;
//! - [`factory`]: pluggable generators of client ids and secrets;
//! - [`store`]: the storage traits and an in-memory implementation;
//! - [`registrar`]: the service that runs registration, read, update and delete.
//!
//! The HTTP layer (`dcr-http`) maps requests onto [`registrar::Registrar`] and its
//! [`error::RegistrationError`] onto RFC 7591 / RFC 6750 responses. Its crate documentation
//! is the guide to embedding dcr (mount, configure, store, policies), and
//! `crates/dcr-http/examples/embedded.rs` is a complete, tested host application.
//!
//! A registrar over the memory store, with open registration:
//!
//! ```
//! use std::sync::Arc;
//! use dcr_core::{Registrar, metadata::ServerMetadata, settings::RegistrarSettings};
//!
//! let registrar = Registrar::builder(
//!     Arc::new(dcr_core::store::MemoryStore::new()),
//!     ServerMetadata::default(),
//!     RegistrarSettings::new("https://as.example.com"),
//! )
//! .build()
//! .expect("no policies without stored initial access tokens");
//! assert_eq!(registrar.settings().registration_endpoint, "https://as.example.com/reg");
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

/// Audit events (`dcr::audit` log records) for registration changes and denials.
pub mod audit;
/// Client authentication at a host's token endpoint, redirect URI checks, usage signals.
pub mod authn;
/// OAuth Client ID Metadata Documents: URL client ids resolved to validated clients.
pub mod cimd;
/// The registered client, typed.
pub mod client;
/// Injectable time source.
pub mod clock;
/// What the registrar knows of the HTTP request that triggered an operation.
pub mod context;
/// Domain errors and their RFC error codes.
pub mod error;
/// Generators of client ids and client secrets.
pub mod factory;
/// Client metadata: the model and its validation.
pub mod metadata;
/// Registration policies and the registration access token issuance decision.
pub mod policy;
/// The registration service.
pub mod registrar;
/// One call from any client id to a validated client (registered or metadata document).
pub mod resolve;
/// Generated client documents for benchmarks and load tests.
pub mod seed;
/// Settings of the registrar that are not metadata rules.
pub mod settings;
/// Storage traits, records and the in-memory store.
pub mod store;
/// Opaque tokens, hashes and redacted secrets.
pub mod token;

pub use error::RegistrationError;

#[cfg(test)]
mod prune_tests;
#[cfg(test)]
mod redaction_tests;
pub use registrar::Registrar;
