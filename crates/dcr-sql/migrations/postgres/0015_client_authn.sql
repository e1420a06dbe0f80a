-- Client authentication for the host (issue 15).
-- The jti of every accepted client assertion, until it expires: the primary key makes two
-- instances unable to both accept one assertion.
CREATE TABLE assertion_jtis (
    client_id TEXT COLLATE "C" NOT NULL,
    jti TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX assertion_jtis_expires_at ON assertion_jtis (expires_at);

-- When each client was last authenticated or resolved for the host.
CREATE TABLE client_usage (
    client_id TEXT COLLATE "C" PRIMARY KEY NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    last_used_at BIGINT NOT NULL
);

-- Client ids pruned or deleted, kept (id only) until `until`.
CREATE TABLE client_tombstones (
    client_id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    until BIGINT NOT NULL
);
CREATE INDEX client_tombstones_until ON client_tombstones (until);
