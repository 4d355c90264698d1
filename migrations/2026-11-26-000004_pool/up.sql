-- The pool's own limits: how many requests an account may serve at once and its share of the
-- traffic, and how many requests a key may have in flight. NULL means no limit.
ALTER TABLE accounts ADD COLUMN concurrency_limit INTEGER
    CHECK (concurrency_limit IS NULL OR concurrency_limit > 0);
ALTER TABLE accounts ADD COLUMN weight INTEGER NOT NULL DEFAULT 1 CHECK (weight > 0);
ALTER TABLE api_keys ADD COLUMN concurrency_limit INTEGER
    CHECK (concurrency_limit IS NULL OR concurrency_limit > 0);
