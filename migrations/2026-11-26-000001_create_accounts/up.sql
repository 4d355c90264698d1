-- The Amazon Q account pool. Secrets (client_secret, refresh_token, access_token) live only here;
-- the database file is created with mode 0600.
CREATE TABLE accounts (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name                    TEXT    NOT NULL UNIQUE,
    -- 'idc': Builder ID / IAM Identity Center, refreshed through AWS SSO-OIDC.
    -- 'social': Kiro Google/GitHub login, refreshed through the Kiro auth service.
    auth_kind               TEXT    NOT NULL CHECK (auth_kind IN ('idc', 'social')),
    client_id               TEXT,
    client_secret           TEXT,
    refresh_token           TEXT    NOT NULL,
    -- SHA-256 (hex) of the current refresh token, and of the one last imported: re-importing a
    -- file whose token has since been rotated still finds the account.
    refresh_token_hash      TEXT    NOT NULL UNIQUE,
    imported_token_hash     TEXT    NOT NULL,
    access_token            TEXT,
    access_token_expires_at BIGINT,
    region                  TEXT    NOT NULL DEFAULT 'us-east-1',
    profile_arn             TEXT,
    start_url               TEXT,
    enabled                 BOOLEAN NOT NULL DEFAULT 1,
    -- 'active' | 'cooling' (until health_until) | 'disabled' (health_reason says why) |
    -- 'suspended' | 'quota' (until health_until)
    health                  TEXT    NOT NULL DEFAULT 'active'
                            CHECK (health IN ('active', 'cooling', 'disabled', 'suspended', 'quota')),
    health_until            BIGINT,
    health_reason           TEXT,
    rpm_limit               INTEGER CHECK (rpm_limit IS NULL OR rpm_limit > 0),
    created_at              BIGINT  NOT NULL,
    updated_at              BIGINT  NOT NULL,
    last_used_at            BIGINT
);
CREATE INDEX accounts_imported_token_hash ON accounts (imported_token_hash);
