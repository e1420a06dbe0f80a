//! The `dcr` registration server: configuration, storage selection, Rhai policies, the CLI
//! and the wiring of the dcr library crates (`dcr-core`, `dcr-sql`, `dcr-http`).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

/// The admin listener: client resolution for host authorization servers.
pub mod admin;
/// The admin API of client authentication (`POST /clients/authenticate`) and resolution.
pub mod admin_authn;
/// Wiring of configuration, store, registrar, router and socket.
pub mod app;
/// Wiring of Client ID Metadata Documents.
pub mod cimd;
/// The command line.
pub mod cli;
/// `dcr cimd` commands.
pub mod cli_cimd;
/// The configuration file.
pub mod config;
/// The `[cimd]` and `[admin]` configuration sections.
pub mod config_cimd;
/// The `[authn]` and `[[clients]]` configuration sections.
pub mod config_clients;
/// Rhai scripts as policies and issuance decisions.
pub mod scripting;
/// Benchmark seeding: many registrations before the server starts.
pub mod seed;
/// Opening the configured store.
pub mod storage;
/// Log output.
pub mod telemetry;
