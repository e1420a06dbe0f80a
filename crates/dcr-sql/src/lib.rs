//! SQL stores for dcr, implementing the `dcr_core::store` traits:
//! [`SqliteStore`] (embedded, the default) and [`PgStore`] (PostgreSQL, shared by several
//! `dcr` processes).
//!
//! Schema migrations are embedded in the binary and applied when a store is opened.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod authn_records;
mod cimd_cache;
mod codec;
/// The PostgreSQL store.
pub mod postgres;
mod shared;
/// The SQLite store.
pub mod sqlite;
/// Helpers for tests that need a PostgreSQL database of their own.
#[cfg(feature = "test-util")]
pub mod testing;

pub use postgres::{PgStore, PgStoreOptions};
pub use sqlite::SqliteStore;
