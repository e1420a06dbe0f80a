//! SQL stores for dcr, implementing the `dcr_core::store` traits:
//! [`SqliteStore`] (embedded, the default) and, in its own module, PostgreSQL.
//!
//! Schema migrations are embedded in the binary and applied when a store is opened.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod codec;
/// The SQLite store.
pub mod sqlite;

pub use sqlite::SqliteStore;
