# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_amq2api_global_optspecs
    string join \n database= v/verbose h/help V/version
end

function __fish_amq2api_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_amq2api_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_amq2api_using_subcommand
    set -l cmd (__fish_amq2api_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c amq2api -n "__fish_amq2api_needs_command" -l database -d 'SQLite database shared by the CLI and the server (created with mode 0600)' -r -F
complete -c amq2api -n "__fish_amq2api_needs_command" -s v -l verbose -d 'Log more (-v debug, -vv trace); RUST_LOG overrides'
complete -c amq2api -n "__fish_amq2api_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c amq2api -n "__fish_amq2api_needs_command" -s V -l version -d 'Print version'
complete -c amq2api -n "__fish_amq2api_needs_command" -f -a "serve" -d 'Start the proxy (Claude Messages API)'
complete -c amq2api -n "__fish_amq2api_needs_command" -f -a "accounts" -d 'Manage the Amazon Q account pool'
complete -c amq2api -n "__fish_amq2api_needs_command" -f -a "keys" -d 'Manage client API keys'
complete -c amq2api -n "__fish_amq2api_needs_command" -f -a "stats" -d 'Usage totals (requests, errors, tokens, latency) from the usage log, optionally broken down'
complete -c amq2api -n "__fish_amq2api_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l host -d 'Address to listen on' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l port -d 'Port to listen on (0 picks a free one; the log says which)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l workers -d 'Worker threads [default: one per core]' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l default-model -d 'Amazon Q model for names of other vendors (gpt-4o, ...)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l ping-interval -d 'Seconds of upstream silence before a `ping` event keeps a stream alive' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l shutdown-timeout -d 'Seconds in-flight requests (long streams too) may take to finish after SIGTERM/SIGINT' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l request-timeout -d 'Seconds a client has for its request\'s headers, and again for its body; a slower request is answered 408 and its connection closed' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l model-map -d 'Extra model aliases, `from=to,from2=to2` (checked before the built-in table)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l max-body-bytes -d 'Largest request body in bytes; a larger one is answered 413 in the client\'s protocol (the default, 160 MiB, fits Claude Code\'s largest requests: many base64 images)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l api-endpoint -d 'Chat endpoint [default: https://q.{region}.amazonaws.com/, region from the profile ARN]' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l dialect -d 'Wire style of the chat call: a = AWS-JSON RPC (Amazon Q CLI), b = REST (Kiro)' -r -f -a "a\t'AWS-JSON RPC: `POST /` with `X-Amz-Target` (what the Amazon Q CLI sends)'
b\t'REST: `POST /generateAssistantResponse` (what Kiro sends)'"
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l token-endpoint -d 'AWS SSO-OIDC token endpoint [default: https://oidc.{account region}.amazonaws.com/token]' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l social-token-endpoint -d 'Kiro social refresh endpoint [default: https://prod.{region}.auth.desktop.kiro.dev/refreshToken]' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l user-agent -d 'User-Agent sent to Amazon Q' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l amz-user-agent -d 'X-Amz-User-Agent sent to Amazon Q' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l origin -d '`origin` of user messages (CLI, KIRO_CLI, AI_EDITOR)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l connect-timeout -d 'Seconds to wait for a connection to Amazon Q' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l idle-timeout -d 'Seconds to wait for the response and between two chunks of the stream' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l refresh-margin -d 'Refresh an access token this many seconds before it expires' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l strategy -d 'How requests are spread over the usable accounts' -r -f -a "round-robin\t'Each usable account in turn (weights give an account more turns)'
least-used\t'The account with the fewest requests in the last minute (per unit of weight)'
random\t'A random account (weights make one more likely)'"
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l max-accounts-per-request -d 'Most accounts one request is tried on before the last error goes to the client' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l throttle-backoff -d 'First cooldown of a throttled account, doubled for every throttle in a row (30s, 2m, ...)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l throttle-backoff-max -d 'Longest cooldown of a throttled account' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l failure-threshold -d 'Failures in a row (Amazon Q 5xx, network errors, timeouts) that make an account cool down' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l failure-window -d 'Time within which those failures must fall to count as in a row' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l failure-cooldown -d 'How long such an account cools down before it is tried again' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l denied-cooldown -d 'How long an account rests after a refusal that is neither a ban nor a bad token' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l key-rpm -d 'Requests per minute of keys created without --rpm [default: no limit]' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l key-concurrency -d 'Requests in flight of keys created without --concurrency [default: no limit]' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l database -d 'SQLite database shared by the CLI and the server (created with mode 0600)' -r -F
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -l metrics-public -d 'Serve `/metrics` without an admin key (for a Prometheus on a private network)'
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -s v -l verbose -d 'Log more (-v debug, -vv trace); RUST_LOG overrides'
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c amq2api -n "__fish_amq2api_using_subcommand serve" -s V -l version -d 'Print version'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and not __fish_seen_subcommand_from import list add enable disable remove refresh set help" -l database -d 'SQLite database shared by the CLI and the server (created with mode 0600)' -r -F
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and not __fish_seen_subcommand_from import list add enable disable remove refresh set help" -s v -l verbose -d 'Log more (-v debug, -vv trace); RUST_LOG overrides'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and not __fish_seen_subcommand_from import list add enable disable remove refresh set help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and not __fish_seen_subcommand_from import list add enable disable remove refresh set help" -s V -l version -d 'Print version'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and not __fish_seen_subcommand_from import list add enable disable remove refresh set help" -f -a "import" -d 'Import accounts from AWS SSO / Kiro / Amazon Q JSON files'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and not __fish_seen_subcommand_from import list add enable disable remove refresh set help" -f -a "list" -d 'List accounts (no secret is ever shown)'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and not __fish_seen_subcommand_from import list add enable disable remove refresh set help" -f -a "add" -d 'Add one account (asks for what the flags leave out when a terminal is attached)'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and not __fish_seen_subcommand_from import list add enable disable remove refresh set help" -f -a "enable" -d 'Let the pool use an account again (also clears a disabled or cooling state)'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and not __fish_seen_subcommand_from import list add enable disable remove refresh set help" -f -a "disable" -d 'Keep the pool from using an account'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and not __fish_seen_subcommand_from import list add enable disable remove refresh set help" -f -a "remove" -d 'Remove an account (its usage history is kept)'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and not __fish_seen_subcommand_from import list add enable disable remove refresh set help" -f -a "refresh" -d 'Refresh access tokens now and show the result of each'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and not __fish_seen_subcommand_from import list add enable disable remove refresh set help" -f -a "set" -d 'Change an account\'s limits and weight (a running server picks them up within a second)'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and not __fish_seen_subcommand_from import list add enable disable remove refresh set help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from import" -l name -d 'Name for the account (a prefix NAME-1, NAME-2, ... when several are imported)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from import" -l database -d 'SQLite database shared by the CLI and the server (created with mode 0600)' -r -F
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from import" -l skip-invalid -d 'Import the valid entries and report the invalid ones instead of failing'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from import" -s v -l verbose -d 'Log more (-v debug, -vv trace); RUST_LOG overrides'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from import" -s V -l version -d 'Print version'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from list" -l database -d 'SQLite database shared by the CLI and the server (created with mode 0600)' -r -F
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from list" -l json -d 'Print JSON instead of a table'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log more (-v debug, -vv trace); RUST_LOG overrides'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from add" -l name -d 'Account name (unique in the pool)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from add" -l kind -d 'How the account refreshes its token' -r -f -a "idc\t'Builder ID or IAM Identity Center (AWS SSO-OIDC)'
social\t'Kiro Google/GitHub login'"
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from add" -l client-id -d 'OIDC client id (idc accounts)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from add" -l client-secret -d 'OIDC client secret (idc accounts); prefer the prompt, which hides it' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from add" -l refresh-token -d 'Refresh token; prefer the prompt, which hides it' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from add" -l region -d 'AWS region the token was issued in' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from add" -l profile-arn -d 'CodeWhisperer profile ARN (IAM Identity Center / Pro and Kiro social accounts)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from add" -l rpm -d 'Requests per minute this account may serve' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from add" -l database -d 'SQLite database shared by the CLI and the server (created with mode 0600)' -r -F
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from add" -s v -l verbose -d 'Log more (-v debug, -vv trace); RUST_LOG overrides'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from enable" -l database -d 'SQLite database shared by the CLI and the server (created with mode 0600)' -r -F
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from enable" -s v -l verbose -d 'Log more (-v debug, -vv trace); RUST_LOG overrides'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from enable" -s V -l version -d 'Print version'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from disable" -l database -d 'SQLite database shared by the CLI and the server (created with mode 0600)' -r -F
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from disable" -s v -l verbose -d 'Log more (-v debug, -vv trace); RUST_LOG overrides'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from disable" -s V -l version -d 'Print version'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from remove" -l database -d 'SQLite database shared by the CLI and the server (created with mode 0600)' -r -F
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from remove" -s y -l yes -d 'Do not ask for confirmation'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from remove" -s v -l verbose -d 'Log more (-v debug, -vv trace); RUST_LOG overrides'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from refresh" -l api-endpoint -d 'Chat endpoint [default: https://q.{region}.amazonaws.com/, region from the profile ARN]' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from refresh" -l dialect -d 'Wire style of the chat call: a = AWS-JSON RPC (Amazon Q CLI), b = REST (Kiro)' -r -f -a "a\t'AWS-JSON RPC: `POST /` with `X-Amz-Target` (what the Amazon Q CLI sends)'
b\t'REST: `POST /generateAssistantResponse` (what Kiro sends)'"
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from refresh" -l token-endpoint -d 'AWS SSO-OIDC token endpoint [default: https://oidc.{account region}.amazonaws.com/token]' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from refresh" -l social-token-endpoint -d 'Kiro social refresh endpoint [default: https://prod.{region}.auth.desktop.kiro.dev/refreshToken]' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from refresh" -l user-agent -d 'User-Agent sent to Amazon Q' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from refresh" -l amz-user-agent -d 'X-Amz-User-Agent sent to Amazon Q' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from refresh" -l origin -d '`origin` of user messages (CLI, KIRO_CLI, AI_EDITOR)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from refresh" -l connect-timeout -d 'Seconds to wait for a connection to Amazon Q' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from refresh" -l idle-timeout -d 'Seconds to wait for the response and between two chunks of the stream' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from refresh" -l refresh-margin -d 'Refresh an access token this many seconds before it expires' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from refresh" -l database -d 'SQLite database shared by the CLI and the server (created with mode 0600)' -r -F
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from refresh" -l all -d 'Refresh every enabled account'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from refresh" -s v -l verbose -d 'Log more (-v debug, -vv trace); RUST_LOG overrides'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from refresh" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from refresh" -s V -l version -d 'Print version'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from set" -l rpm -d 'Requests per minute this account may serve (0 removes the limit)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from set" -l concurrency -d 'Requests this account may serve at once (0 removes the limit)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from set" -l weight -d 'Share of the traffic relative to the other accounts (1 = an equal share)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from set" -l database -d 'SQLite database shared by the CLI and the server (created with mode 0600)' -r -F
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from set" -s v -l verbose -d 'Log more (-v debug, -vv trace); RUST_LOG overrides'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from set" -s V -l version -d 'Print version'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from help" -f -a "import" -d 'Import accounts from AWS SSO / Kiro / Amazon Q JSON files'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from help" -f -a "list" -d 'List accounts (no secret is ever shown)'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add one account (asks for what the flags leave out when a terminal is attached)'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from help" -f -a "enable" -d 'Let the pool use an account again (also clears a disabled or cooling state)'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from help" -f -a "disable" -d 'Keep the pool from using an account'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove an account (its usage history is kept)'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from help" -f -a "refresh" -d 'Refresh access tokens now and show the result of each'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from help" -f -a "set" -d 'Change an account\'s limits and weight (a running server picks them up within a second)'
complete -c amq2api -n "__fish_amq2api_using_subcommand accounts; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke help" -l database -d 'SQLite database shared by the CLI and the server (created with mode 0600)' -r -F
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke help" -s v -l verbose -d 'Log more (-v debug, -vv trace); RUST_LOG overrides'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke help" -s V -l version -d 'Print version'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke help" -f -a "create" -d 'Create a key and print it (only it) on standard output'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke help" -f -a "list" -d 'List keys (never the keys themselves)'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke help" -f -a "revoke" -d 'Revoke a key'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and not __fish_seen_subcommand_from create list revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from create" -l name -d 'Name of the key (unique among keys that are not revoked)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from create" -l rpm -d 'Requests per minute allowed with this key' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from create" -l concurrency -d 'Requests this key may have in flight at once' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from create" -l expires -d 'Expiry: a duration (30d, 12h, 90min) or a date (2027-01-31, RFC 3339)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from create" -l database -d 'SQLite database shared by the CLI and the server (created with mode 0600)' -r -F
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from create" -l admin -d 'The key may read the monitoring page'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Log more (-v debug, -vv trace); RUST_LOG overrides'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from list" -l database -d 'SQLite database shared by the CLI and the server (created with mode 0600)' -r -F
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from list" -l json -d 'Print JSON instead of a table'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Log more (-v debug, -vv trace); RUST_LOG overrides'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from revoke" -l database -d 'SQLite database shared by the CLI and the server (created with mode 0600)' -r -F
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from revoke" -s y -l yes -d 'Do not ask for confirmation'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from revoke" -s v -l verbose -d 'Log more (-v debug, -vv trace); RUST_LOG overrides'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "create" -d 'Create a key and print it (only it) on standard output'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "list" -d 'List keys (never the keys themselves)'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke a key'
complete -c amq2api -n "__fish_amq2api_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c amq2api -n "__fish_amq2api_using_subcommand stats" -l by -d 'Also show one row per key, account, model, day or hour (UTC), or status [default: totals only]' -r -f -a "key\t'Key name; "(deleted)" for requests whose key no longer exists'
account\t'Account name when the request was served; "(none)" when no account took it'
model\t'Model name as the client requested it'
day\t'UTC day, oldest first'
hour\t'UTC hour, oldest first'
status\t'HTTP status and error class ("200", "429 throttled")'"
complete -c amq2api -n "__fish_amq2api_using_subcommand stats" -l since -d 'Start of the period: a duration back from now (24h, 7d, 90m) or a UTC date or time (2026-11-01, 2026-11-01T12:00:00Z)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand stats" -l key -d 'Only requests made with keys of this name (revoked ones included)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand stats" -l account -d 'Only requests served by the account of this name (removed ones included)' -r
complete -c amq2api -n "__fish_amq2api_using_subcommand stats" -l database -d 'SQLite database shared by the CLI and the server (created with mode 0600)' -r -F
complete -c amq2api -n "__fish_amq2api_using_subcommand stats" -l json -d 'Print JSON (raw integers) instead of tables'
complete -c amq2api -n "__fish_amq2api_using_subcommand stats" -s v -l verbose -d 'Log more (-v debug, -vv trace); RUST_LOG overrides'
complete -c amq2api -n "__fish_amq2api_using_subcommand stats" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c amq2api -n "__fish_amq2api_using_subcommand stats" -s V -l version -d 'Print version'
complete -c amq2api -n "__fish_amq2api_using_subcommand help; and not __fish_seen_subcommand_from serve accounts keys stats help" -f -a "serve" -d 'Start the proxy (Claude Messages API)'
complete -c amq2api -n "__fish_amq2api_using_subcommand help; and not __fish_seen_subcommand_from serve accounts keys stats help" -f -a "accounts" -d 'Manage the Amazon Q account pool'
complete -c amq2api -n "__fish_amq2api_using_subcommand help; and not __fish_seen_subcommand_from serve accounts keys stats help" -f -a "keys" -d 'Manage client API keys'
complete -c amq2api -n "__fish_amq2api_using_subcommand help; and not __fish_seen_subcommand_from serve accounts keys stats help" -f -a "stats" -d 'Usage totals (requests, errors, tokens, latency) from the usage log, optionally broken down'
complete -c amq2api -n "__fish_amq2api_using_subcommand help; and not __fish_seen_subcommand_from serve accounts keys stats help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c amq2api -n "__fish_amq2api_using_subcommand help; and __fish_seen_subcommand_from accounts" -f -a "import" -d 'Import accounts from AWS SSO / Kiro / Amazon Q JSON files'
complete -c amq2api -n "__fish_amq2api_using_subcommand help; and __fish_seen_subcommand_from accounts" -f -a "list" -d 'List accounts (no secret is ever shown)'
complete -c amq2api -n "__fish_amq2api_using_subcommand help; and __fish_seen_subcommand_from accounts" -f -a "add" -d 'Add one account (asks for what the flags leave out when a terminal is attached)'
complete -c amq2api -n "__fish_amq2api_using_subcommand help; and __fish_seen_subcommand_from accounts" -f -a "enable" -d 'Let the pool use an account again (also clears a disabled or cooling state)'
complete -c amq2api -n "__fish_amq2api_using_subcommand help; and __fish_seen_subcommand_from accounts" -f -a "disable" -d 'Keep the pool from using an account'
complete -c amq2api -n "__fish_amq2api_using_subcommand help; and __fish_seen_subcommand_from accounts" -f -a "remove" -d 'Remove an account (its usage history is kept)'
complete -c amq2api -n "__fish_amq2api_using_subcommand help; and __fish_seen_subcommand_from accounts" -f -a "refresh" -d 'Refresh access tokens now and show the result of each'
complete -c amq2api -n "__fish_amq2api_using_subcommand help; and __fish_seen_subcommand_from accounts" -f -a "set" -d 'Change an account\'s limits and weight (a running server picks them up within a second)'
complete -c amq2api -n "__fish_amq2api_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "create" -d 'Create a key and print it (only it) on standard output'
complete -c amq2api -n "__fish_amq2api_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "list" -d 'List keys (never the keys themselves)'
complete -c amq2api -n "__fish_amq2api_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "revoke" -d 'Revoke a key'
