//! Conversions between domain records and column values, shared by the SQL stores: the row
//! tuples both stores select, and their decoding.

use dcr_core::metadata::ClientMetadata;
use dcr_core::store::{
    ClientRecord, InitialAccessTokenRecord, RegistrationAccessTokenRecord, StoreError,
    decode_metadata,
};
use dcr_core::token::TokenHash;

pub(crate) fn backend(err: impl Into<dcr_core::error::BoxError>) -> StoreError {
    StoreError::backend(err)
}

/// Whether `err` is a unique-key violation.
fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// `err`, unless it is a unique-key violation, which is `conflict`.
pub(crate) fn or_conflict(err: sqlx::Error, conflict: StoreError) -> StoreError {
    if is_unique_violation(&err) {
        conflict
    } else {
        backend(err)
    }
}

/// The stored text of client metadata: its compact JSON ([`ClientMetadata::json`]).
pub(crate) fn metadata_to_text(md: &ClientMetadata) -> String {
    md.json().to_string()
}

pub(crate) fn policies_to_text(policies: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(policies).map_err(backend)
}

fn policies_from_text(text: &str) -> Result<Vec<String>, StoreError> {
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

/// The columns of a [`ClientRow`], in its order (a literal, for `concat!`).
macro_rules! client_columns {
    () => {
        "client_id, metadata, created_at, updated_at, initial_access_token_id, managed_at"
    };
}
pub(crate) use client_columns;

/// A `clients` row: [`client_columns!`].
pub(crate) type ClientRow = (String, String, i64, i64, Option<String>, Option<i64>);

/// The client of a row; [`StoreError::Undecodable`] if its metadata cannot be decoded.
pub(crate) fn client_from_row(row: ClientRow) -> Result<ClientRecord, StoreError> {
    let (client_id, metadata, created_at, updated_at, initial_access_token_id, managed_at) = row;
    Ok(ClientRecord {
        metadata: decode_metadata(&client_id, metadata.into())?,
        client_id,
        created_at,
        updated_at,
        initial_access_token_id,
        managed_at,
    })
}

/// The columns of a [`RatRow`], in its order (a literal, for `concat!`).
macro_rules! rat_columns {
    () => {
        "token_hash, client_id, policies, created_at"
    };
}
pub(crate) use rat_columns;

/// A `registration_access_tokens` row: [`rat_columns!`].
pub(crate) type RatRow = (Vec<u8>, String, String, i64);

pub(crate) fn rat_from_row(row: RatRow) -> Result<RegistrationAccessTokenRecord, StoreError> {
    let (hash, client_id, policies, created_at) = row;
    Ok(RegistrationAccessTokenRecord {
        hash: hash_from_bytes(&hash)?,
        client_id,
        policies: policies_from_text(&policies)?,
        created_at,
    })
}

/// The columns of an [`IatRow`], in its order (a literal, for `concat!`).
macro_rules! iat_columns {
    () => {
        "id, token_hash, label, policies, created_at, expires_at, max_uses, uses"
    };
}
pub(crate) use iat_columns;

/// An `initial_access_tokens` row: [`iat_columns!`].
pub(crate) type IatRow = (
    String,
    Vec<u8>,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    i64,
);

pub(crate) fn iat_from_row(row: IatRow) -> Result<InitialAccessTokenRecord, StoreError> {
    let (id, hash, label, policies, created_at, expires_at, max_uses, uses) = row;
    Ok(InitialAccessTokenRecord {
        id,
        hash: hash_from_bytes(&hash)?,
        label,
        policies: policies_from_text(&policies)?,
        created_at,
        expires_at,
        max_uses: max_uses.map(i64_to_u64),
        uses: i64_to_u64(uses),
    })
}
