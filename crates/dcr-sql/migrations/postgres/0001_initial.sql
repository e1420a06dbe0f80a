-- Clients: the validated metadata document, with the columns the store queries on.
-- The metadata is the JSON text the store wrote (not JSONB): it round-trips byte for byte,
-- including strings JSONB refuses (such as "\u0000"). Cast it (metadata::jsonb) to query it.
-- Ids use the "C" collation: byte order, the order of the other stores, whatever the
-- database's default collation (and the primary key index serves paging in that order).
CREATE TABLE clients (
    client_id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    initial_access_token_id TEXT,
    managed_at BIGINT
);
-- Openly registered clients never managed: the candidates for pruning, oldest first.
CREATE INDEX clients_unmanaged_open ON clients (created_at, client_id)
    WHERE initial_access_token_id IS NULL AND managed_at IS NULL;

-- Registration access tokens, by SHA-256 hash only.
CREATE TABLE registration_access_tokens (
    token_hash BYTEA PRIMARY KEY NOT NULL CHECK (octet_length(token_hash) = 32),
    client_id TEXT COLLATE "C" NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    policies TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX registration_access_tokens_client_id ON registration_access_tokens (client_id);

-- Initial access tokens, by SHA-256 hash only.
CREATE TABLE initial_access_tokens (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    label TEXT,
    policies TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    max_uses BIGINT,
    uses BIGINT NOT NULL DEFAULT 0
);
