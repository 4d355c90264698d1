
use builtin;
use str;

set edit:completion:arg-completer[amq2api] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'amq2api'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'amq2api'= {
            cand --database 'SQLite database shared by the CLI and the server (created with mode 0600)'
            cand -v 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Start the proxy (Claude Messages API)'
            cand accounts 'Manage the Amazon Q account pool'
            cand keys 'Manage client API keys'
            cand stats 'Usage totals (requests, errors, tokens, latency) from the usage log, optionally broken down'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'amq2api;serve'= {
            cand --host 'Address to listen on'
            cand --port 'Port to listen on (0 picks a free one; the log says which)'
            cand --workers 'Worker threads [default: one per core]'
            cand --default-model 'Amazon Q model for names of other vendors (gpt-4o, ...)'
            cand --ping-interval 'Seconds of upstream silence before a `ping` event keeps a stream alive'
            cand --shutdown-timeout 'Seconds in-flight requests (long streams too) may take to finish after SIGTERM/SIGINT'
            cand --request-timeout 'Seconds a client has for its request''s headers, and again for its body; a slower request is answered 408 and its connection closed'
            cand --model-map 'Extra model aliases, `from=to,from2=to2` (checked before the built-in table)'
            cand --max-body-bytes 'Largest request body in bytes; a larger one is answered 413 in the client''s protocol (the default, 160 MiB, fits Claude Code''s largest requests: many base64 images)'
            cand --api-endpoint 'Chat endpoint [default: https://q.{region}.amazonaws.com/, region from the profile ARN]'
            cand --dialect 'Wire style of the chat call: a = AWS-JSON RPC (Amazon Q CLI), b = REST (Kiro)'
            cand --token-endpoint 'AWS SSO-OIDC token endpoint [default: https://oidc.{account region}.amazonaws.com/token]'
            cand --social-token-endpoint 'Kiro social refresh endpoint [default: https://prod.{region}.auth.desktop.kiro.dev/refreshToken]'
            cand --user-agent 'User-Agent sent to Amazon Q'
            cand --amz-user-agent 'X-Amz-User-Agent sent to Amazon Q'
            cand --origin '`origin` of user messages (CLI, KIRO_CLI, AI_EDITOR)'
            cand --connect-timeout 'Seconds to wait for a connection to Amazon Q'
            cand --idle-timeout 'Seconds to wait for the response and between two chunks of the stream'
            cand --refresh-margin 'Refresh an access token this many seconds before it expires'
            cand --strategy 'How requests are spread over the usable accounts'
            cand --max-accounts-per-request 'Most accounts one request is tried on before the last error goes to the client'
            cand --throttle-backoff 'First cooldown of a throttled account, doubled for every throttle in a row (30s, 2m, ...)'
            cand --throttle-backoff-max 'Longest cooldown of a throttled account'
            cand --failure-threshold 'Failures in a row (Amazon Q 5xx, network errors, timeouts) that make an account cool down'
            cand --failure-window 'Time within which those failures must fall to count as in a row'
            cand --failure-cooldown 'How long such an account cools down before it is tried again'
            cand --denied-cooldown 'How long an account rests after a refusal that is neither a ban nor a bad token'
            cand --key-rpm 'Requests per minute of keys created without --rpm [default: no limit]'
            cand --key-concurrency 'Requests in flight of keys created without --concurrency [default: no limit]'
            cand --database 'SQLite database shared by the CLI and the server (created with mode 0600)'
            cand --metrics-public 'Serve `/metrics` without an admin key (for a Prometheus on a private network)'
            cand -v 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'amq2api;accounts'= {
            cand --database 'SQLite database shared by the CLI and the server (created with mode 0600)'
            cand -v 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand import 'Import accounts from AWS SSO / Kiro / Amazon Q JSON files'
            cand list 'List accounts (no secret is ever shown)'
            cand add 'Add one account (asks for what the flags leave out when a terminal is attached)'
            cand enable 'Let the pool use an account again (also clears a disabled or cooling state)'
            cand disable 'Keep the pool from using an account'
            cand remove 'Remove an account (its usage history is kept)'
            cand refresh 'Refresh access tokens now and show the result of each'
            cand set 'Change an account''s limits and weight (a running server picks them up within a second)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'amq2api;accounts;import'= {
            cand --name 'Name for the account (a prefix NAME-1, NAME-2, ... when several are imported)'
            cand --database 'SQLite database shared by the CLI and the server (created with mode 0600)'
            cand --skip-invalid 'Import the valid entries and report the invalid ones instead of failing'
            cand -v 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'amq2api;accounts;list'= {
            cand --database 'SQLite database shared by the CLI and the server (created with mode 0600)'
            cand --json 'Print JSON instead of a table'
            cand -v 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'amq2api;accounts;add'= {
            cand --name 'Account name (unique in the pool)'
            cand --kind 'How the account refreshes its token'
            cand --client-id 'OIDC client id (idc accounts)'
            cand --client-secret 'OIDC client secret (idc accounts); prefer the prompt, which hides it'
            cand --refresh-token 'Refresh token; prefer the prompt, which hides it'
            cand --region 'AWS region the token was issued in'
            cand --profile-arn 'CodeWhisperer profile ARN (IAM Identity Center / Pro and Kiro social accounts)'
            cand --rpm 'Requests per minute this account may serve'
            cand --database 'SQLite database shared by the CLI and the server (created with mode 0600)'
            cand -v 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'amq2api;accounts;enable'= {
            cand --database 'SQLite database shared by the CLI and the server (created with mode 0600)'
            cand -v 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'amq2api;accounts;disable'= {
            cand --database 'SQLite database shared by the CLI and the server (created with mode 0600)'
            cand -v 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'amq2api;accounts;remove'= {
            cand --database 'SQLite database shared by the CLI and the server (created with mode 0600)'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand -v 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'amq2api;accounts;refresh'= {
            cand --api-endpoint 'Chat endpoint [default: https://q.{region}.amazonaws.com/, region from the profile ARN]'
            cand --dialect 'Wire style of the chat call: a = AWS-JSON RPC (Amazon Q CLI), b = REST (Kiro)'
            cand --token-endpoint 'AWS SSO-OIDC token endpoint [default: https://oidc.{account region}.amazonaws.com/token]'
            cand --social-token-endpoint 'Kiro social refresh endpoint [default: https://prod.{region}.auth.desktop.kiro.dev/refreshToken]'
            cand --user-agent 'User-Agent sent to Amazon Q'
            cand --amz-user-agent 'X-Amz-User-Agent sent to Amazon Q'
            cand --origin '`origin` of user messages (CLI, KIRO_CLI, AI_EDITOR)'
            cand --connect-timeout 'Seconds to wait for a connection to Amazon Q'
            cand --idle-timeout 'Seconds to wait for the response and between two chunks of the stream'
            cand --refresh-margin 'Refresh an access token this many seconds before it expires'
            cand --database 'SQLite database shared by the CLI and the server (created with mode 0600)'
            cand --all 'Refresh every enabled account'
            cand -v 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'amq2api;accounts;set'= {
            cand --rpm 'Requests per minute this account may serve (0 removes the limit)'
            cand --concurrency 'Requests this account may serve at once (0 removes the limit)'
            cand --weight 'Share of the traffic relative to the other accounts (1 = an equal share)'
            cand --database 'SQLite database shared by the CLI and the server (created with mode 0600)'
            cand -v 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'amq2api;accounts;help'= {
            cand import 'Import accounts from AWS SSO / Kiro / Amazon Q JSON files'
            cand list 'List accounts (no secret is ever shown)'
            cand add 'Add one account (asks for what the flags leave out when a terminal is attached)'
            cand enable 'Let the pool use an account again (also clears a disabled or cooling state)'
            cand disable 'Keep the pool from using an account'
            cand remove 'Remove an account (its usage history is kept)'
            cand refresh 'Refresh access tokens now and show the result of each'
            cand set 'Change an account''s limits and weight (a running server picks them up within a second)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'amq2api;accounts;help;import'= {
        }
        &'amq2api;accounts;help;list'= {
        }
        &'amq2api;accounts;help;add'= {
        }
        &'amq2api;accounts;help;enable'= {
        }
        &'amq2api;accounts;help;disable'= {
        }
        &'amq2api;accounts;help;remove'= {
        }
        &'amq2api;accounts;help;refresh'= {
        }
        &'amq2api;accounts;help;set'= {
        }
        &'amq2api;accounts;help;help'= {
        }
        &'amq2api;keys'= {
            cand --database 'SQLite database shared by the CLI and the server (created with mode 0600)'
            cand -v 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand create 'Create a key and print it (only it) on standard output'
            cand list 'List keys (never the keys themselves)'
            cand revoke 'Revoke a key'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'amq2api;keys;create'= {
            cand --name 'Name of the key (unique among keys that are not revoked)'
            cand --rpm 'Requests per minute allowed with this key'
            cand --concurrency 'Requests this key may have in flight at once'
            cand --expires 'Expiry: a duration (30d, 12h, 90min) or a date (2027-01-31, RFC 3339)'
            cand --database 'SQLite database shared by the CLI and the server (created with mode 0600)'
            cand --admin 'The key may read the monitoring page'
            cand -v 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'amq2api;keys;list'= {
            cand --database 'SQLite database shared by the CLI and the server (created with mode 0600)'
            cand --json 'Print JSON instead of a table'
            cand -v 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'amq2api;keys;revoke'= {
            cand --database 'SQLite database shared by the CLI and the server (created with mode 0600)'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand -v 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'amq2api;keys;help'= {
            cand create 'Create a key and print it (only it) on standard output'
            cand list 'List keys (never the keys themselves)'
            cand revoke 'Revoke a key'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'amq2api;keys;help;create'= {
        }
        &'amq2api;keys;help;list'= {
        }
        &'amq2api;keys;help;revoke'= {
        }
        &'amq2api;keys;help;help'= {
        }
        &'amq2api;stats'= {
            cand --by 'Also show one row per key, account, model, day or hour (UTC), or status [default: totals only]'
            cand --since 'Start of the period: a duration back from now (24h, 7d, 90m) or a UTC date or time (2026-11-01, 2026-11-01T12:00:00Z)'
            cand --key 'Only requests made with keys of this name (revoked ones included)'
            cand --account 'Only requests served by the account of this name (removed ones included)'
            cand --database 'SQLite database shared by the CLI and the server (created with mode 0600)'
            cand --json 'Print JSON (raw integers) instead of tables'
            cand -v 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand --verbose 'Log more (-v debug, -vv trace); RUST_LOG overrides'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'amq2api;help'= {
            cand serve 'Start the proxy (Claude Messages API)'
            cand accounts 'Manage the Amazon Q account pool'
            cand keys 'Manage client API keys'
            cand stats 'Usage totals (requests, errors, tokens, latency) from the usage log, optionally broken down'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'amq2api;help;serve'= {
        }
        &'amq2api;help;accounts'= {
            cand import 'Import accounts from AWS SSO / Kiro / Amazon Q JSON files'
            cand list 'List accounts (no secret is ever shown)'
            cand add 'Add one account (asks for what the flags leave out when a terminal is attached)'
            cand enable 'Let the pool use an account again (also clears a disabled or cooling state)'
            cand disable 'Keep the pool from using an account'
            cand remove 'Remove an account (its usage history is kept)'
            cand refresh 'Refresh access tokens now and show the result of each'
            cand set 'Change an account''s limits and weight (a running server picks them up within a second)'
        }
        &'amq2api;help;accounts;import'= {
        }
        &'amq2api;help;accounts;list'= {
        }
        &'amq2api;help;accounts;add'= {
        }
        &'amq2api;help;accounts;enable'= {
        }
        &'amq2api;help;accounts;disable'= {
        }
        &'amq2api;help;accounts;remove'= {
        }
        &'amq2api;help;accounts;refresh'= {
        }
        &'amq2api;help;accounts;set'= {
        }
        &'amq2api;help;keys'= {
            cand create 'Create a key and print it (only it) on standard output'
            cand list 'List keys (never the keys themselves)'
            cand revoke 'Revoke a key'
        }
        &'amq2api;help;keys;create'= {
        }
        &'amq2api;help;keys;list'= {
        }
        &'amq2api;help;keys;revoke'= {
        }
        &'amq2api;help;stats'= {
        }
        &'amq2api;help;help'= {
        }
    ]
    $completions[$command]
}
