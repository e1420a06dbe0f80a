//! The store conformance suite: what every [`Store`] must do, as test cases any store can run.
//!
//! Behind the `test-util` feature. A store proves itself with one line in an integration test
//! of its crate (which needs `tokio` with `macros` and `rt-multi-thread` as a dev-dependency):
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use dcr_core::store::MemoryStore;
//! use dcr_core::store::conformance::Backend;
//!
//! async fn open() -> Option<Backend> {
//!     Some(Backend::new(Arc::new(MemoryStore::new()))) // your store here
//! }
//!
//! dcr_core::store_conformance!(my_store, open);
//! # fn main() {}
//! ```
//!
//! That makes one `#[tokio::test]` per case in a module `my_store`; each case gets a store of
//! its own from `open` (which answers `None` to skip, as when its database is not configured).
//! [`run_all`] runs the same cases one after the other from a single test or program. The
//! memory store, the SQLite and PostgreSQL stores and the embedding example's store all run it.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use super::Store;

mod clients;
mod concurrency;
#[doc(hidden)]
pub mod fixtures;
mod tokens;

/// The cases, each an `async fn(&Arc<dyn Store>)` (used by [`store_conformance!`](crate::store_conformance)).
#[doc(hidden)]
pub mod cases {
    pub use super::clients::*;
    pub use super::concurrency::*;
    pub use super::tokens::*;
}

/// A store under test, with what keeps its storage alive (a directory, a database) until the
/// case ends.
pub struct Backend {
    /// The store.
    pub store: Arc<dyn Store>,
    _keep: Box<dyn Any + Send>,
}

impl Backend {
    /// A store that needs nothing kept alive.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::keeping(store, ())
    }

    /// A store whose storage lives as long as `keep` (dropped after the case).
    pub fn keeping(store: Arc<dyn Store>, keep: impl Any + Send) -> Self {
        Self {
            store,
            _keep: Box::new(keep),
        }
    }
}

/// How much of [`ClientStore`](super::ClientStore) a store implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Maintenance {
    /// All of it, including the maintenance methods pruning relies on (`mark_managed`,
    /// `unmanaged_open_clients`, `count_unmanaged_open_clients`).
    Implemented,
    /// Only the required methods: the maintenance methods keep their defaults (pruning finds
    /// nothing to prune).
    Defaults,
}

/// Instantiates every case as a `#[tokio::test]` in module `$name`, each over a store from
/// `$open` (an `async fn() -> Option<Backend>`; `None` skips the case). With
/// `, without_maintenance`, the store keeps the defaults of the maintenance methods
/// ([`Maintenance::Defaults`]) and is held to those instead.
#[macro_export]
macro_rules! store_conformance {
    ($name:ident, $open:path) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__store_conformance_cases!([$crate::__store_conformance_tests] $open ;
                mark_managed_and_unmanaged_open_listing, update_keeps_the_first_managed_at,
                prune_deletion_takes_only_unmanaged_open_clients,);
        }
    };
    ($name:ident, $open:path, without_maintenance) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__store_conformance_cases!([$crate::__store_conformance_tests] $open ;
                default_maintenance_prunes_nothing,);
        }
    };
}

/// Calls `$callback!($($args)* case, case, ...)` (`$callback` given as `[path::to::macro]`)
/// with every case that does not depend on the maintenance methods: the one list of cases.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_cases {
    ([$($callback:tt)*] $($args:tt)*) => {
        $($callback)*! { $($args)*
            insert_then_get_round_trips_exactly,
            duplicate_client_id_is_a_conflict_and_writes_nothing,
            duplicate_token_hash_is_a_conflict_and_writes_nothing,
            update_without_rotation_replaces_the_record_and_keeps_the_token,
            update_with_rotation_replaces_the_token,
            update_needs_a_token_bound_to_that_client,
            rotation_to_an_existing_hash_changes_nothing,
            delete_removes_the_client_and_its_tokens,
            revoked_token_is_gone,
            list_pages_in_client_id_byte_order,
            undecodable_client_breaks_neither_listing_nor_other_clients,
            initial_access_tokens_insert_find_list_revoke,
            initial_access_token_conflicts,
            spending_counts_uses_and_stops_at_max_uses,
            expired_or_unknown_initial_access_token_writes_nothing,
            parallel_registrations_spend_exactly_max_uses,
            parallel_rotations_with_one_token_leave_one_valid_token,
            delete_by_token_needs_that_token_bound_to_the_client,
            parallel_rotation_and_delete_with_one_token_let_exactly_one_win,
            parallel_updates_leave_exactly_one_written_state,
            many_parallel_registrations_all_land,
            parallel_registrations_of_one_client_id_let_exactly_one_win,
            parallel_registrations_with_one_token_let_exactly_one_win,
            parallel_mixed_writes_each_get_their_outcome,
            ping_answers,
        }
    };
}

/// One `#[tokio::test]` per case.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_tests {
    ($open:path ; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(backend) = $open().await else { return };
                $crate::store::conformance::cases::$case(&backend.store).await;
            }
        )*
    };
}

/// The body of [`run_all`]: each case in turn over a store of its own.
macro_rules! run_each {
    ($open:ident ; $($case:ident,)*) => {{
        $({
            let backend = $open().await;
            cases::$case(&backend.store).await;
        })*
    }};
}

/// Runs every case, one after the other, each over a store from `open`; panics on the first
/// failure. For one test (or program) that opens its stores itself, such as one that starts
/// its own database server, or the embedding example's self-test.
pub async fn run_all<F, Fut>(mut open: F, maintenance: Maintenance)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Backend>,
{
    match maintenance {
        Maintenance::Implemented => {
            __store_conformance_cases!([run_each] open ; mark_managed_and_unmanaged_open_listing, update_keeps_the_first_managed_at,
                prune_deletion_takes_only_unmanaged_open_clients,)
        }
        Maintenance::Defaults => {
            __store_conformance_cases!([run_each] open ; default_maintenance_prunes_nothing,)
        }
    }
}
