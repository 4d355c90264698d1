//! The one integration-test binary: every black-box test of amq2api, one module per area.

mod support;

/// Claude Code itself in `-p` mode against the real server.
mod claude_code;
/// `accounts import|list|add|enable|disable|remove` against the real binary.
mod cli_accounts;
/// What every command shares: .env, usage errors, broken pipes, concurrency, secrets.
mod cli_general;
/// `keys create|list|revoke` against the real binary.
mod cli_keys;
/// `stats` over usage rows seeded into the database.
mod cli_stats;
/// Clients that leave mid-stream, read slowly, or send requests that never complete.
mod client_faults;
/// The monitoring page: sign-in, sessions, headers, figures, no secrets; and in headless Chromium.
mod dashboard;
/// The database under pressure: requests while the CLI loops on the same file; `kill -9` under load.
mod db_pressure;
mod fake_q_selftest;
/// Upstream faults (broken streams, silence, odd 200s, exceptions, unreachable, dead keep-alive
/// connections) on both client protocols: what the client gets, the usage row, the account.
mod faults;
/// completions/ and man/ match what `amq2api generate-files` writes now; man pages render.
mod generated;
/// Hostile input on every route (the corpus in tests/fixtures/hostile): exact 4xx, no 5xx, no crash.
mod hostile;
/// `serve` and `/v1/messages` over real HTTP against the fake Amazon Q.
mod messages;
/// `/v1/chat/completions` and `/v1/models` over real HTTP against the fake Amazon Q.
mod openai;
/// Operating it: `healthcheck`, logs on pipes and journald, systemd readiness and unit, Dockerfile.
mod ops;
/// The account pool: selection, health, failover, refresh, limits, live CLI changes.
mod pool;
/// The official Anthropic Python SDK against the real server.
mod sdk_python;
/// The security review: no secret in any output at trace level, file mode, admin-only routes,
/// constant-time key comparison, loopback by default, dashboard headers, no upstream steering.
mod security;
/// SIGTERM: streams finish or end with an error event, usage is flushed, exit 0.
mod shutdown;
/// The chat call, stream decoding and error classification against the fake Amazon Q.
mod upstream_chat;
/// Token refresh and `accounts refresh` against the fake Amazon Q.
mod upstream_refresh;
/// Usage rows, the write queue under a locked database, and `/metrics`.
mod usage;
