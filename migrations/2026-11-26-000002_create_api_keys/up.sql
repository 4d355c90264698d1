-- Client API keys. Only the SHA-256 of a key is stored; `prefix` is a short, non-secret display
-- form ("sk-amq-AbCd…").
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    key_hash     TEXT    NOT NULL UNIQUE,
    is_admin     BOOLEAN NOT NULL DEFAULT 0,
    rpm_limit    INTEGER CHECK (rpm_limit IS NULL OR rpm_limit > 0),
    expires_at   BIGINT,
    revoked_at   BIGINT,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT
);
-- A name is unique among keys that are not revoked, so "ci" can be re-created after a revoke.
CREATE UNIQUE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;
