-- Client ID Metadata Documents that passed validation, shared by every instance on this
-- database and kept across restarts. Rows stay after expires_at (stale_if_error, change audit).
CREATE TABLE cimd_documents (
    url TEXT PRIMARY KEY NOT NULL,
    metadata TEXT NOT NULL,
    fetched_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
