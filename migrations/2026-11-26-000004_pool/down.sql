ALTER TABLE api_keys DROP COLUMN concurrency_limit;
ALTER TABLE accounts DROP COLUMN weight;
ALTER TABLE accounts DROP COLUMN concurrency_limit;
