-- Client ID Metadata Documents that passed validation, shared by every process on this file
-- and kept across restarts. Rows stay after `expires_at` (stale_if_error, change audit).
CREATE TABLE cimd_documents (
    url TEXT PRIMARY KEY NOT NULL,
    metadata TEXT NOT NULL,
    fetched_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
