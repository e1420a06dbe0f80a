-- Clients: the validated metadata document, with the columns the store queries on.
CREATE TABLE clients (
    client_id TEXT PRIMARY KEY NOT NULL,
    metadata TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    initial_access_token_id TEXT,
    managed_at INTEGER
) STRICT;
-- Openly registered clients never managed: the candidates for pruning, oldest first.
CREATE INDEX clients_unmanaged_open ON clients (created_at)
    WHERE initial_access_token_id IS NULL AND managed_at IS NULL;

-- Registration access tokens, by SHA-256 hash only.
CREATE TABLE registration_access_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    policies TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX registration_access_tokens_client_id ON registration_access_tokens (client_id);

-- Initial access tokens, by SHA-256 hash only.
CREATE TABLE initial_access_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    label TEXT,
    policies TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    max_uses INTEGER,
    uses INTEGER NOT NULL DEFAULT 0
) STRICT;
