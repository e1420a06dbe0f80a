//! The client authentication records of the SQLite store (`crate::authn_records`).

crate::authn_records::authn_records!(
    super::SqliteStore,
    read = reader,
    write = writer,
    last_used = crate::authn_records::LAST_USED_SQLITE
);
