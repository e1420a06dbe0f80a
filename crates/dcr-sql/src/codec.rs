//! Conversions between domain records and column values, shared by the SQL stores.

use dcr_core::metadata::ClientMetadata;
use dcr_core::store::StoreError;
use dcr_core::token::TokenHash;

pub(crate) fn backend(err: impl Into<dcr_core::error::BoxError>) -> StoreError {
    StoreError::backend(err)
}

/// The stored text of client metadata: its compact JSON ([`ClientMetadata::json`]).
pub(crate) fn metadata_to_text(md: &ClientMetadata) -> String {
    md.json().to_string()
}

pub(crate) fn metadata_from_text(text: &str) -> Result<ClientMetadata, StoreError> {
    ClientMetadata::from_trusted_json(text.into()).map_err(backend)
}

pub(crate) fn policies_to_text(policies: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(policies).map_err(backend)
}

pub(crate) fn policies_from_text(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(backend)
}

pub(crate) fn hash_from_bytes(bytes: &[u8]) -> Result<TokenHash, StoreError> {
    TokenHash::from_bytes(bytes)
        .ok_or_else(|| StoreError::Backend("stored token hash is not 32 bytes".into()))
}

pub(crate) fn u64_to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn i64_to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
