//! The memory store runs the store conformance suite, as any store does.

use std::sync::Arc;

use dcr_core::store::MemoryStore;
use dcr_core::store::conformance::Backend;

async fn open_memory() -> Option<Backend> {
    Some(Backend::new(Arc::new(MemoryStore::new())))
}

dcr_core::store_conformance!(memory, open_memory);
