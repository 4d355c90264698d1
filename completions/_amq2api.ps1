
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'amq2api' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'amq2api'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'amq2api' {
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'SQLite database shared by the CLI and the server (created with mode 0600)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Start the proxy (Claude Messages API)')
            [CompletionResult]::new('accounts', 'accounts', [CompletionResultType]::ParameterValue, 'Manage the Amazon Q account pool')
            [CompletionResult]::new('keys', 'keys', [CompletionResultType]::ParameterValue, 'Manage client API keys')
            [CompletionResult]::new('stats', 'stats', [CompletionResultType]::ParameterValue, 'Usage totals (requests, errors, tokens, latency) from the usage log, optionally broken down')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'amq2api;serve' {
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Address to listen on')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port to listen on (0 picks a free one; the log says which)')
            [CompletionResult]::new('--workers', '--workers', [CompletionResultType]::ParameterName, 'Worker threads [default: one per core]')
            [CompletionResult]::new('--default-model', '--default-model', [CompletionResultType]::ParameterName, 'Amazon Q model for names of other vendors (gpt-4o, ...)')
            [CompletionResult]::new('--ping-interval', '--ping-interval', [CompletionResultType]::ParameterName, 'Seconds of upstream silence before a `ping` event keeps a stream alive')
            [CompletionResult]::new('--shutdown-timeout', '--shutdown-timeout', [CompletionResultType]::ParameterName, 'Seconds in-flight requests (long streams too) may take to finish after SIGTERM/SIGINT')
            [CompletionResult]::new('--request-timeout', '--request-timeout', [CompletionResultType]::ParameterName, 'Seconds a client has for its request''s headers, and again for its body; a slower request is answered 408 and its connection closed')
            [CompletionResult]::new('--model-map', '--model-map', [CompletionResultType]::ParameterName, 'Extra model aliases, `from=to,from2=to2` (checked before the built-in table)')
            [CompletionResult]::new('--max-body-bytes', '--max-body-bytes', [CompletionResultType]::ParameterName, 'Largest request body in bytes; a larger one is answered 413 in the client''s protocol (the default, 160 MiB, fits Claude Code''s largest requests: many base64 images)')
            [CompletionResult]::new('--api-endpoint', '--api-endpoint', [CompletionResultType]::ParameterName, 'Chat endpoint [default: https://q.{region}.amazonaws.com/, region from the profile ARN]')
            [CompletionResult]::new('--dialect', '--dialect', [CompletionResultType]::ParameterName, 'Wire style of the chat call: a = AWS-JSON RPC (Amazon Q CLI), b = REST (Kiro)')
            [CompletionResult]::new('--token-endpoint', '--token-endpoint', [CompletionResultType]::ParameterName, 'AWS SSO-OIDC token endpoint [default: https://oidc.{account region}.amazonaws.com/token]')
            [CompletionResult]::new('--social-token-endpoint', '--social-token-endpoint', [CompletionResultType]::ParameterName, 'Kiro social refresh endpoint [default: https://prod.{region}.auth.desktop.kiro.dev/refreshToken]')
            [CompletionResult]::new('--user-agent', '--user-agent', [CompletionResultType]::ParameterName, 'User-Agent sent to Amazon Q')
            [CompletionResult]::new('--amz-user-agent', '--amz-user-agent', [CompletionResultType]::ParameterName, 'X-Amz-User-Agent sent to Amazon Q')
            [CompletionResult]::new('--origin', '--origin', [CompletionResultType]::ParameterName, '`origin` of user messages (CLI, KIRO_CLI, AI_EDITOR)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for a connection to Amazon Q')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the response and between two chunks of the stream')
            [CompletionResult]::new('--refresh-margin', '--refresh-margin', [CompletionResultType]::ParameterName, 'Refresh an access token this many seconds before it expires')
            [CompletionResult]::new('--strategy', '--strategy', [CompletionResultType]::ParameterName, 'How requests are spread over the usable accounts')
            [CompletionResult]::new('--max-accounts-per-request', '--max-accounts-per-request', [CompletionResultType]::ParameterName, 'Most accounts one request is tried on before the last error goes to the client')
            [CompletionResult]::new('--throttle-backoff', '--throttle-backoff', [CompletionResultType]::ParameterName, 'First cooldown of a throttled account, doubled for every throttle in a row (30s, 2m, ...)')
            [CompletionResult]::new('--throttle-backoff-max', '--throttle-backoff-max', [CompletionResultType]::ParameterName, 'Longest cooldown of a throttled account')
            [CompletionResult]::new('--failure-threshold', '--failure-threshold', [CompletionResultType]::ParameterName, 'Failures in a row (Amazon Q 5xx, network errors, timeouts) that make an account cool down')
            [CompletionResult]::new('--failure-window', '--failure-window', [CompletionResultType]::ParameterName, 'Time within which those failures must fall to count as in a row')
            [CompletionResult]::new('--failure-cooldown', '--failure-cooldown', [CompletionResultType]::ParameterName, 'How long such an account cools down before it is tried again')
            [CompletionResult]::new('--denied-cooldown', '--denied-cooldown', [CompletionResultType]::ParameterName, 'How long an account rests after a refusal that is neither a ban nor a bad token')
            [CompletionResult]::new('--key-rpm', '--key-rpm', [CompletionResultType]::ParameterName, 'Requests per minute of keys created without --rpm [default: no limit]')
            [CompletionResult]::new('--key-concurrency', '--key-concurrency', [CompletionResultType]::ParameterName, 'Requests in flight of keys created without --concurrency [default: no limit]')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'SQLite database shared by the CLI and the server (created with mode 0600)')
            [CompletionResult]::new('--metrics-public', '--metrics-public', [CompletionResultType]::ParameterName, 'Serve `/metrics` without an admin key (for a Prometheus on a private network)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'amq2api;accounts' {
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'SQLite database shared by the CLI and the server (created with mode 0600)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Import accounts from AWS SSO / Kiro / Amazon Q JSON files')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List accounts (no secret is ever shown)')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add one account (asks for what the flags leave out when a terminal is attached)')
            [CompletionResult]::new('enable', 'enable', [CompletionResultType]::ParameterValue, 'Let the pool use an account again (also clears a disabled or cooling state)')
            [CompletionResult]::new('disable', 'disable', [CompletionResultType]::ParameterValue, 'Keep the pool from using an account')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove an account (its usage history is kept)')
            [CompletionResult]::new('refresh', 'refresh', [CompletionResultType]::ParameterValue, 'Refresh access tokens now and show the result of each')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Change an account''s limits and weight (a running server picks them up within a second)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'amq2api;accounts;import' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'Name for the account (a prefix NAME-1, NAME-2, ... when several are imported)')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'SQLite database shared by the CLI and the server (created with mode 0600)')
            [CompletionResult]::new('--skip-invalid', '--skip-invalid', [CompletionResultType]::ParameterName, 'Import the valid entries and report the invalid ones instead of failing')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'amq2api;accounts;list' {
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'SQLite database shared by the CLI and the server (created with mode 0600)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON instead of a table')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'amq2api;accounts;add' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'Account name (unique in the pool)')
            [CompletionResult]::new('--kind', '--kind', [CompletionResultType]::ParameterName, 'How the account refreshes its token')
            [CompletionResult]::new('--client-id', '--client-id', [CompletionResultType]::ParameterName, 'OIDC client id (idc accounts)')
            [CompletionResult]::new('--client-secret', '--client-secret', [CompletionResultType]::ParameterName, 'OIDC client secret (idc accounts); prefer the prompt, which hides it')
            [CompletionResult]::new('--refresh-token', '--refresh-token', [CompletionResultType]::ParameterName, 'Refresh token; prefer the prompt, which hides it')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region the token was issued in')
            [CompletionResult]::new('--profile-arn', '--profile-arn', [CompletionResultType]::ParameterName, 'CodeWhisperer profile ARN (IAM Identity Center / Pro and Kiro social accounts)')
            [CompletionResult]::new('--rpm', '--rpm', [CompletionResultType]::ParameterName, 'Requests per minute this account may serve')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'SQLite database shared by the CLI and the server (created with mode 0600)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'amq2api;accounts;enable' {
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'SQLite database shared by the CLI and the server (created with mode 0600)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'amq2api;accounts;disable' {
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'SQLite database shared by the CLI and the server (created with mode 0600)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'amq2api;accounts;remove' {
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'SQLite database shared by the CLI and the server (created with mode 0600)')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'amq2api;accounts;refresh' {
            [CompletionResult]::new('--api-endpoint', '--api-endpoint', [CompletionResultType]::ParameterName, 'Chat endpoint [default: https://q.{region}.amazonaws.com/, region from the profile ARN]')
            [CompletionResult]::new('--dialect', '--dialect', [CompletionResultType]::ParameterName, 'Wire style of the chat call: a = AWS-JSON RPC (Amazon Q CLI), b = REST (Kiro)')
            [CompletionResult]::new('--token-endpoint', '--token-endpoint', [CompletionResultType]::ParameterName, 'AWS SSO-OIDC token endpoint [default: https://oidc.{account region}.amazonaws.com/token]')
            [CompletionResult]::new('--social-token-endpoint', '--social-token-endpoint', [CompletionResultType]::ParameterName, 'Kiro social refresh endpoint [default: https://prod.{region}.auth.desktop.kiro.dev/refreshToken]')
            [CompletionResult]::new('--user-agent', '--user-agent', [CompletionResultType]::ParameterName, 'User-Agent sent to Amazon Q')
            [CompletionResult]::new('--amz-user-agent', '--amz-user-agent', [CompletionResultType]::ParameterName, 'X-Amz-User-Agent sent to Amazon Q')
            [CompletionResult]::new('--origin', '--origin', [CompletionResultType]::ParameterName, '`origin` of user messages (CLI, KIRO_CLI, AI_EDITOR)')
            [CompletionResult]::new('--connect-timeout', '--connect-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for a connection to Amazon Q')
            [CompletionResult]::new('--idle-timeout', '--idle-timeout', [CompletionResultType]::ParameterName, 'Seconds to wait for the response and between two chunks of the stream')
            [CompletionResult]::new('--refresh-margin', '--refresh-margin', [CompletionResultType]::ParameterName, 'Refresh an access token this many seconds before it expires')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'SQLite database shared by the CLI and the server (created with mode 0600)')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Refresh every enabled account')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'amq2api;accounts;set' {
            [CompletionResult]::new('--rpm', '--rpm', [CompletionResultType]::ParameterName, 'Requests per minute this account may serve (0 removes the limit)')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Requests this account may serve at once (0 removes the limit)')
            [CompletionResult]::new('--weight', '--weight', [CompletionResultType]::ParameterName, 'Share of the traffic relative to the other accounts (1 = an equal share)')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'SQLite database shared by the CLI and the server (created with mode 0600)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'amq2api;accounts;help' {
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Import accounts from AWS SSO / Kiro / Amazon Q JSON files')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List accounts (no secret is ever shown)')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add one account (asks for what the flags leave out when a terminal is attached)')
            [CompletionResult]::new('enable', 'enable', [CompletionResultType]::ParameterValue, 'Let the pool use an account again (also clears a disabled or cooling state)')
            [CompletionResult]::new('disable', 'disable', [CompletionResultType]::ParameterValue, 'Keep the pool from using an account')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove an account (its usage history is kept)')
            [CompletionResult]::new('refresh', 'refresh', [CompletionResultType]::ParameterValue, 'Refresh access tokens now and show the result of each')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Change an account''s limits and weight (a running server picks them up within a second)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'amq2api;accounts;help;import' {
            break
        }
        'amq2api;accounts;help;list' {
            break
        }
        'amq2api;accounts;help;add' {
            break
        }
        'amq2api;accounts;help;enable' {
            break
        }
        'amq2api;accounts;help;disable' {
            break
        }
        'amq2api;accounts;help;remove' {
            break
        }
        'amq2api;accounts;help;refresh' {
            break
        }
        'amq2api;accounts;help;set' {
            break
        }
        'amq2api;accounts;help;help' {
            break
        }
        'amq2api;keys' {
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'SQLite database shared by the CLI and the server (created with mode 0600)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a key and print it (only it) on standard output')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List keys (never the keys themselves)')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a key')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'amq2api;keys;create' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'Name of the key (unique among keys that are not revoked)')
            [CompletionResult]::new('--rpm', '--rpm', [CompletionResultType]::ParameterName, 'Requests per minute allowed with this key')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Requests this key may have in flight at once')
            [CompletionResult]::new('--expires', '--expires', [CompletionResultType]::ParameterName, 'Expiry: a duration (30d, 12h, 90min) or a date (2027-01-31, RFC 3339)')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'SQLite database shared by the CLI and the server (created with mode 0600)')
            [CompletionResult]::new('--admin', '--admin', [CompletionResultType]::ParameterName, 'The key may read the monitoring page')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'amq2api;keys;list' {
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'SQLite database shared by the CLI and the server (created with mode 0600)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON instead of a table')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'amq2api;keys;revoke' {
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'SQLite database shared by the CLI and the server (created with mode 0600)')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'amq2api;keys;help' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a key and print it (only it) on standard output')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List keys (never the keys themselves)')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a key')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'amq2api;keys;help;create' {
            break
        }
        'amq2api;keys;help;list' {
            break
        }
        'amq2api;keys;help;revoke' {
            break
        }
        'amq2api;keys;help;help' {
            break
        }
        'amq2api;stats' {
            [CompletionResult]::new('--by', '--by', [CompletionResultType]::ParameterName, 'Also show one row per key, account, model, day or hour (UTC), or status [default: totals only]')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Start of the period: a duration back from now (24h, 7d, 90m) or a UTC date or time (2026-11-01, 2026-11-01T12:00:00Z)')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Only requests made with keys of this name (revoked ones included)')
            [CompletionResult]::new('--account', '--account', [CompletionResultType]::ParameterName, 'Only requests served by the account of this name (removed ones included)')
            [CompletionResult]::new('--database', '--database', [CompletionResultType]::ParameterName, 'SQLite database shared by the CLI and the server (created with mode 0600)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON (raw integers) instead of tables')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Log more (-v debug, -vv trace); RUST_LOG overrides')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'amq2api;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Start the proxy (Claude Messages API)')
            [CompletionResult]::new('accounts', 'accounts', [CompletionResultType]::ParameterValue, 'Manage the Amazon Q account pool')
            [CompletionResult]::new('keys', 'keys', [CompletionResultType]::ParameterValue, 'Manage client API keys')
            [CompletionResult]::new('stats', 'stats', [CompletionResultType]::ParameterValue, 'Usage totals (requests, errors, tokens, latency) from the usage log, optionally broken down')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'amq2api;help;serve' {
            break
        }
        'amq2api;help;accounts' {
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Import accounts from AWS SSO / Kiro / Amazon Q JSON files')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List accounts (no secret is ever shown)')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add one account (asks for what the flags leave out when a terminal is attached)')
            [CompletionResult]::new('enable', 'enable', [CompletionResultType]::ParameterValue, 'Let the pool use an account again (also clears a disabled or cooling state)')
            [CompletionResult]::new('disable', 'disable', [CompletionResultType]::ParameterValue, 'Keep the pool from using an account')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Remove an account (its usage history is kept)')
            [CompletionResult]::new('refresh', 'refresh', [CompletionResultType]::ParameterValue, 'Refresh access tokens now and show the result of each')
            [CompletionResult]::new('set', 'set', [CompletionResultType]::ParameterValue, 'Change an account''s limits and weight (a running server picks them up within a second)')
            break
        }
        'amq2api;help;accounts;import' {
            break
        }
        'amq2api;help;accounts;list' {
            break
        }
        'amq2api;help;accounts;add' {
            break
        }
        'amq2api;help;accounts;enable' {
            break
        }
        'amq2api;help;accounts;disable' {
            break
        }
        'amq2api;help;accounts;remove' {
            break
        }
        'amq2api;help;accounts;refresh' {
            break
        }
        'amq2api;help;accounts;set' {
            break
        }
        'amq2api;help;keys' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Create a key and print it (only it) on standard output')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List keys (never the keys themselves)')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke a key')
            break
        }
        'amq2api;help;keys;create' {
            break
        }
        'amq2api;help;keys;list' {
            break
        }
        'amq2api;help;keys;revoke' {
            break
        }
        'amq2api;help;stats' {
            break
        }
        'amq2api;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
