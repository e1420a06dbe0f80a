//! The `dcr` registration server: configuration, storage selection, Rhai policies, the CLI
//! and the wiring of the dcr library crates (`dcr-core`, `dcr-sql`, `dcr-http`).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

/// Wiring of configuration, store, registrar, router and socket.
pub mod app;
/// The command line.
pub mod cli;
/// The configuration file.
pub mod config;
/// Rhai scripts as policies and issuance decisions.
pub mod scripting;
/// Benchmark seeding: many registrations before the server starts.
pub mod seed;
/// Opening the configured store.
pub mod storage;
/// Log output.
pub mod telemetry;
