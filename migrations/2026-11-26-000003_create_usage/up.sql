-- One row per proxied request. Rows outlive the account that served them: account_id is set to
-- NULL when the account is removed, and account_name keeps what it was called.
CREATE TABLE usage_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    created_at      BIGINT  NOT NULL,
    api_key_id      INTEGER REFERENCES api_keys (id) ON DELETE SET NULL,
    account_id      INTEGER REFERENCES accounts (id) ON DELETE SET NULL,
    account_name    TEXT,
    endpoint        TEXT    NOT NULL,
    model_requested TEXT    NOT NULL,
    model_upstream  TEXT,
    stream          BOOLEAN NOT NULL,
    input_tokens    BIGINT  NOT NULL DEFAULT 0,
    output_tokens   BIGINT  NOT NULL DEFAULT 0,
    status          INTEGER NOT NULL,
    error_class     TEXT,
    ttfb_ms         BIGINT,
    latency_ms      BIGINT  NOT NULL
);
CREATE INDEX usage_log_created_at ON usage_log (created_at);
CREATE INDEX usage_log_key_time ON usage_log (api_key_id, created_at);
CREATE INDEX usage_log_account_time ON usage_log (account_id, created_at);
CREATE INDEX usage_log_model_time ON usage_log (model_requested, created_at);
