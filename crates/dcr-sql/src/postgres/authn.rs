//! The client authentication records of the PostgreSQL store (`crate::authn_records`).

crate::authn_records::authn_records!(
    super::PgStore,
    read = pool,
    write = pool,
    last_used = crate::authn_records::LAST_USED_POSTGRES,
    jtis_and_uses = pool
);
