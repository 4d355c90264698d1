//! The command line, as clap definitions only (no logic): global options, every subcommand and
//! its arguments. `cmd` runs them; the hidden `generate-files` command turns this into
//! completions and man pages. Every argument has help and every command's long help ends with
//! examples (the tests below insist).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Environment variables read by the CLI, each declared once.
pub mod env {
    pub const DATABASE_PATH: &str = "DATABASE_PATH";
    pub const API_ENDPOINT: &str = "AMAZONQ_API_ENDPOINT";
    pub const DIALECT: &str = "AMAZONQ_DIALECT";
    pub const TOKEN_ENDPOINT: &str = "AMAZONQ_TOKEN_ENDPOINT";
    pub const SOCIAL_TOKEN_ENDPOINT: &str = "AMAZONQ_SOCIAL_TOKEN_ENDPOINT";
    pub const USER_AGENT: &str = "AMAZONQ_USER_AGENT";
    pub const AMZ_USER_AGENT: &str = "AMAZONQ_X_AMZ_USER_AGENT";
    pub const ORIGIN: &str = "AMAZONQ_ORIGIN";
    pub const CONNECT_TIMEOUT: &str = "AMAZONQ_CONNECT_TIMEOUT";
    pub const IDLE_TIMEOUT: &str = "AMAZONQ_IDLE_TIMEOUT";
    pub const REFRESH_MARGIN: &str = "AMAZONQ_REFRESH_MARGIN";
    pub const HOST: &str = "HOST";
    pub const PORT: &str = "PORT";
    pub const WORKERS: &str = "AMQ2API_WORKERS";
    pub const DEFAULT_MODEL: &str = "AMQ2API_DEFAULT_MODEL";
    pub const MODEL_MAP: &str = "AMQ2API_MODEL_MAP";
    pub const PING_INTERVAL: &str = "AMQ2API_PING_INTERVAL";
    pub const METRICS_PUBLIC: &str = "AMQ2API_METRICS_PUBLIC";
    pub const MAX_BODY_BYTES: &str = "AMQ2API_MAX_BODY_BYTES";
    pub const SHUTDOWN_TIMEOUT: &str = "AMQ2API_SHUTDOWN_TIMEOUT";
    pub const REQUEST_TIMEOUT: &str = "AMQ2API_REQUEST_TIMEOUT";
    pub const SEED_REFRESH_TOKEN: &str = "AMAZONQ_REFRESH_TOKEN";
    pub const SEED_CLIENT_ID: &str = "AMAZONQ_CLIENT_ID";
    pub const SEED_CLIENT_SECRET: &str = "AMAZONQ_CLIENT_SECRET";
    pub const SEED_PROFILE_ARN: &str = "AMAZONQ_PROFILE_ARN";
    pub const STRATEGY: &str = "AMQ2API_STRATEGY";
    pub const MAX_ACCOUNTS_PER_REQUEST: &str = "AMQ2API_MAX_ACCOUNTS_PER_REQUEST";
    pub const THROTTLE_BACKOFF: &str = "AMQ2API_THROTTLE_BACKOFF";
    pub const THROTTLE_BACKOFF_MAX: &str = "AMQ2API_THROTTLE_BACKOFF_MAX";
    pub const FAILURE_THRESHOLD: &str = "AMQ2API_FAILURE_THRESHOLD";
    pub const FAILURE_WINDOW: &str = "AMQ2API_FAILURE_WINDOW";
    pub const FAILURE_COOLDOWN: &str = "AMQ2API_FAILURE_COOLDOWN";
    pub const DENIED_COOLDOWN: &str = "AMQ2API_DENIED_COOLDOWN";
    pub const KEY_RPM: &str = "AMQ2API_KEY_RPM";
    pub const KEY_CONCURRENCY: &str = "AMQ2API_KEY_CONCURRENCY";
}

pub const DEFAULT_DATABASE: &str = "data/amq2api.db";

#[derive(Debug, Parser)]
#[command(
    name = "amq2api",
    version,
    about = "Amazon Q Developer accounts behind the Claude Messages and OpenAI Chat Completions APIs",
    propagate_version = true,
    after_long_help = "\
Examples:
  amq2api serve
  amq2api accounts import ~/.aws/sso/cache/*.json
  KEY=$(amq2api keys create --name me)
  amq2api --database /var/lib/amq2api/amq2api.db accounts list"
)]
pub struct Cli {
    /// SQLite database shared by the CLI and the server (created with mode 0600)
    #[arg(long, global = true, value_name = "PATH", env = env::DATABASE_PATH, default_value = DEFAULT_DATABASE)]
    pub database: PathBuf,

    /// Log more (-v debug, -vv trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the proxy (Claude Messages API)
    #[command(after_long_help = "\
Examples:
  amq2api serve
  amq2api serve --host 0.0.0.0 --port 8080 --workers 4
  RUST_LOG=amq2api::q=debug amq2api serve
  # the seed's single-account mode: the account `env` is added or updated at start-up
  AMAZONQ_REFRESH_TOKEN=aor... AMAZONQ_CLIENT_ID=... AMAZONQ_CLIENT_SECRET=... amq2api serve")]
    Serve(ServeArgs),
    /// Manage the Amazon Q account pool
    #[command(
        subcommand,
        after_long_help = "\
Examples:
  amq2api accounts import ~/.aws/sso/cache/*.json
  amq2api accounts list
  amq2api accounts refresh --all"
    )]
    Accounts(AccountsCommand),
    /// Manage client API keys
    #[command(
        subcommand,
        after_long_help = "\
Examples:
  amq2api keys create --name laptop
  amq2api keys list
  amq2api keys revoke laptop --yes"
    )]
    Keys(KeysCommand),
    /// Usage totals (requests, errors, tokens, latency) from the usage log, optionally broken down
    #[command(after_long_help = "\
Examples:
  amq2api stats
  amq2api stats --by model --since 7d
  amq2api stats --by day --since 2026-11-01 --key ci --json")]
    Stats(StatsArgs),
    /// Write shell completions and man pages into completions/ and man/ (for maintainers)
    #[command(
        name = "generate-files",
        hide = true,
        after_long_help = "\
Examples:
  cargo run -- generate-files --out .
  amq2api generate-files --out /tmp/amq2api-docs"
    )]
    GenerateFiles(GenerateArgs),
    /// Exit 0 if the server's /health answers 200 within 3 seconds (container health checks)
    #[command(
        hide = true,
        after_long_help = "\
Examples:
  amq2api healthcheck
  PORT=9000 amq2api healthcheck
  amq2api healthcheck --url http://[::1]:8080/health"
    )]
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = env::HOST, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one; the log says which)
    #[arg(long, env = env::PORT, default_value_t = 8080)]
    pub port: u16,
    /// Worker threads [default: one per core]
    #[arg(long, env = env::WORKERS)]
    pub workers: Option<usize>,
    /// Amazon Q model for names of other vendors (gpt-4o, ...)
    #[arg(long, env = env::DEFAULT_MODEL, default_value = "claude-sonnet-4.5")]
    pub default_model: String,
    /// Seconds of upstream silence before a `ping` event keeps a stream alive
    #[arg(long, value_name = "SECS", env = env::PING_INTERVAL, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..))]
    pub ping_interval: u64,
    /// Serve `/metrics` without an admin key (for a Prometheus on a private network)
    #[arg(long, env = env::METRICS_PUBLIC)]
    pub metrics_public: bool,
    /// Seconds in-flight requests (long streams too) may take to finish after SIGTERM/SIGINT
    #[arg(long, value_name = "SECS", env = env::SHUTDOWN_TIMEOUT, default_value_t = 30)]
    pub shutdown_timeout: u64,
    /// Seconds a client has for its request's headers, and again for its body; a slower request
    /// is answered 408 and its connection closed
    #[arg(long, value_name = "SECS", env = env::REQUEST_TIMEOUT, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,
    /// Extra model aliases, `from=to,from2=to2` (checked before the built-in table)
    #[arg(long, env = env::MODEL_MAP, default_value = "")]
    pub model_map: String,
    /// Largest request body in bytes; a larger one is answered 413 in the client's protocol
    /// (the default, 160 MiB, fits Claude Code's largest requests: many base64 images)
    #[arg(long, value_name = "BYTES", env = env::MAX_BODY_BYTES, default_value_t = crate::http::MAX_BODY as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_body_bytes: u64,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
    #[command(flatten)]
    pub seed: SeedAccountArgs,
    // Boxed: it would make `Command` large (clippy::large_enum_variant).
    #[command(flatten)]
    pub pool: Box<PoolArgs>,
}

/// How `serve` spreads requests over the accounts, reacts to their errors, and limits keys.
#[derive(Debug, Clone, Args)]
pub struct PoolArgs {
    /// How requests are spread over the usable accounts
    #[arg(long, value_enum, env = env::STRATEGY, default_value = "round-robin")]
    pub strategy: crate::pick::Strategy,
    /// Most accounts one request is tried on before the last error goes to the client
    #[arg(long, value_name = "N", env = env::MAX_ACCOUNTS_PER_REQUEST, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_accounts_per_request: u32,
    /// First cooldown of a throttled account, doubled for every throttle in a row (30s, 2m, ...)
    #[arg(long, value_name = "DURATION", env = env::THROTTLE_BACKOFF, default_value = "30s", value_parser = humantime::parse_duration)]
    pub throttle_backoff: std::time::Duration,
    /// Longest cooldown of a throttled account
    #[arg(long, value_name = "DURATION", env = env::THROTTLE_BACKOFF_MAX, default_value = "15m", value_parser = humantime::parse_duration)]
    pub throttle_backoff_max: std::time::Duration,
    /// Failures in a row (Amazon Q 5xx, network errors, timeouts) that make an account cool down
    #[arg(long, value_name = "N", env = env::FAILURE_THRESHOLD, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub failure_threshold: u32,
    /// Time within which those failures must fall to count as in a row
    #[arg(long, value_name = "DURATION", env = env::FAILURE_WINDOW, default_value = "10m", value_parser = humantime::parse_duration)]
    pub failure_window: std::time::Duration,
    /// How long such an account cools down before it is tried again
    #[arg(long, value_name = "DURATION", env = env::FAILURE_COOLDOWN, default_value = "30m", value_parser = humantime::parse_duration)]
    pub failure_cooldown: std::time::Duration,
    /// How long an account rests after a refusal that is neither a ban nor a bad token
    #[arg(long, value_name = "DURATION", env = env::DENIED_COOLDOWN, default_value = "5m", value_parser = humantime::parse_duration)]
    pub denied_cooldown: std::time::Duration,
    /// Requests per minute of keys created without --rpm [default: no limit]
    #[arg(long, value_name = "N", env = env::KEY_RPM, value_parser = clap::value_parser!(u32).range(1..))]
    pub key_rpm: Option<u32>,
    /// Requests in flight of keys created without --concurrency [default: no limit]
    #[arg(long, value_name = "N", env = env::KEY_CONCURRENCY, value_parser = clap::value_parser!(u32).range(1..))]
    pub key_concurrency: Option<u32>,
}

/// The seed's single-account variables: the account is added or updated at start-up.
#[derive(Debug, Clone, Args)]
pub struct SeedAccountArgs {
    /// Refresh token of an account to add or update at start-up
    #[arg(long, env = env::SEED_REFRESH_TOKEN, hide_env_values = true, hide = true)]
    pub seed_refresh_token: Option<String>,
    /// Its OIDC client id
    #[arg(long, env = env::SEED_CLIENT_ID, hide_env_values = true, hide = true)]
    pub seed_client_id: Option<String>,
    /// Its OIDC client secret
    #[arg(long, env = env::SEED_CLIENT_SECRET, hide_env_values = true, hide = true)]
    pub seed_client_secret: Option<String>,
    /// Its profile ARN (organisation accounts)
    #[arg(long, env = env::SEED_PROFILE_ARN, hide = true)]
    pub seed_profile_arn: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Import accounts from AWS SSO / Kiro / Amazon Q JSON files
    #[command(after_long_help = "\
Examples:
  amq2api accounts import ~/.aws/sso/cache/*.json
  amq2api accounts import --name work kiro-auth-token.json
  amq2api accounts import --skip-invalid exported-accounts.json
  cat accounts.json | amq2api accounts import -")]
    Import(ImportArgs),
    /// List accounts (no secret is ever shown)
    #[command(after_long_help = "\
Examples:
  amq2api accounts list
  amq2api accounts list --json | jq '.[] | select(.health != \"active\")'")]
    List(ListArgs),
    /// Add one account (asks for what the flags leave out when a terminal is attached)
    #[command(after_long_help = "\
Examples:
  amq2api accounts add
  amq2api accounts add --name kiro --kind social --profile-arn arn:aws:codewhisperer:us-east-1:111122223333:profile/ABC
  amq2api accounts add --name ci --kind idc --client-id ID --rpm 30")]
    Add(AddArgs),
    /// Let the pool use an account again (also clears a disabled or cooling state)
    #[command(after_long_help = "\
Examples:
  amq2api accounts enable work-1
  amq2api accounts enable 3")]
    Enable(AccountRef),
    /// Keep the pool from using an account
    #[command(after_long_help = "\
Examples:
  amq2api accounts disable work-1")]
    Disable(AccountRef),
    /// Remove an account (its usage history is kept)
    #[command(after_long_help = "\
Examples:
  amq2api accounts remove work-1
  amq2api accounts remove 3 --yes")]
    Remove(RemoveArgs),
    /// Refresh access tokens now and show the result of each
    #[command(after_long_help = "\
Examples:
  amq2api accounts refresh --all
  amq2api accounts refresh work-1 work-2")]
    Refresh(RefreshArgs),
    /// Change an account's limits and weight (a running server picks them up within a second)
    #[command(after_long_help = "\
Examples:
  amq2api accounts set work-1 --rpm 20 --concurrency 4
  amq2api accounts set work-2 --weight 3
  amq2api accounts set work-1 --rpm 0")]
    Set(SetArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("change").required(true).multiple(true))]
pub struct SetArgs {
    /// Account id or name
    #[arg(value_name = "ID-OR-NAME")]
    pub account: String,
    /// Requests per minute this account may serve (0 removes the limit)
    #[arg(long, value_name = "N", group = "change")]
    pub rpm: Option<u32>,
    /// Requests this account may serve at once (0 removes the limit)
    #[arg(long, value_name = "N", group = "change")]
    pub concurrency: Option<u32>,
    /// Share of the traffic relative to the other accounts (1 = an equal share)
    #[arg(long, value_name = "N", group = "change", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub weight: Option<u32>,
}

#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// Accounts to refresh (id or name)
    #[arg(
        value_name = "ID-OR-NAME",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub accounts: Vec<String>,
    /// Refresh every enabled account
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub upstream: UpstreamArgs,
}

/// How to reach Amazon Q; shared by `serve` and every command that calls it.
#[derive(Debug, Clone, Args)]
pub struct UpstreamArgs {
    /// Chat endpoint [default: https://q.{region}.amazonaws.com/, region from the profile ARN]
    #[arg(long, value_name = "URL", env = env::API_ENDPOINT)]
    pub api_endpoint: Option<String>,
    /// Wire style of the chat call: a = AWS-JSON RPC (Amazon Q CLI), b = REST (Kiro)
    #[arg(long, value_enum, env = env::DIALECT, default_value = "a")]
    pub dialect: crate::q::config::Dialect,
    /// AWS SSO-OIDC token endpoint [default: https://oidc.{account region}.amazonaws.com/token]
    #[arg(long, value_name = "URL", env = env::TOKEN_ENDPOINT)]
    pub token_endpoint: Option<String>,
    /// Kiro social refresh endpoint [default: https://prod.{region}.auth.desktop.kiro.dev/refreshToken]
    #[arg(long, value_name = "URL", env = env::SOCIAL_TOKEN_ENDPOINT)]
    pub social_token_endpoint: Option<String>,
    /// User-Agent sent to Amazon Q
    #[arg(long, value_name = "UA", env = env::USER_AGENT, default_value = crate::q::config::DEFAULT_USER_AGENT, hide_default_value = true)]
    pub user_agent: String,
    /// X-Amz-User-Agent sent to Amazon Q
    #[arg(long, value_name = "UA", env = env::AMZ_USER_AGENT, default_value = crate::q::config::DEFAULT_AMZ_USER_AGENT, hide_default_value = true)]
    pub amz_user_agent: String,
    /// `origin` of user messages (CLI, KIRO_CLI, AI_EDITOR)
    #[arg(long, env = env::ORIGIN, default_value = "CLI")]
    pub origin: String,
    /// Seconds to wait for a connection to Amazon Q
    #[arg(long, value_name = "SECS", env = env::CONNECT_TIMEOUT, default_value_t = 10)]
    pub connect_timeout: u64,
    /// Seconds to wait for the response and between two chunks of the stream
    #[arg(long, value_name = "SECS", env = env::IDLE_TIMEOUT, default_value_t = 300)]
    pub idle_timeout: u64,
    /// Refresh an access token this many seconds before it expires
    #[arg(long, value_name = "SECS", env = env::REFRESH_MARGIN, default_value_t = 300)]
    pub refresh_margin: u64,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// JSON files to read; `-` reads standard input
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Name for the account (a prefix NAME-1, NAME-2, ... when several are imported)
    #[arg(long)]
    pub name: Option<String>,
    /// Import the valid entries and report the invalid ones instead of failing
    #[arg(long)]
    pub skip_invalid: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Builder ID or IAM Identity Center (AWS SSO-OIDC)
    Idc,
    /// Kiro Google/GitHub login
    Social,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Account name (unique in the pool)
    #[arg(long)]
    pub name: Option<String>,
    /// How the account refreshes its token
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// OIDC client id (idc accounts)
    #[arg(long)]
    pub client_id: Option<String>,
    /// OIDC client secret (idc accounts); prefer the prompt, which hides it
    #[arg(long)]
    pub client_secret: Option<String>,
    /// Refresh token; prefer the prompt, which hides it
    #[arg(long)]
    pub refresh_token: Option<String>,
    /// AWS region the token was issued in
    #[arg(long)]
    pub region: Option<String>,
    /// CodeWhisperer profile ARN (IAM Identity Center / Pro and Kiro social accounts)
    #[arg(long)]
    pub profile_arn: Option<String>,
    /// Requests per minute this account may serve
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rpm: Option<u32>,
}

#[derive(Debug, Args)]
pub struct AccountRef {
    /// Account id or name
    #[arg(value_name = "ID-OR-NAME")]
    pub account: String,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Account id or name
    #[arg(value_name = "ID-OR-NAME")]
    pub account: String,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (only it) on standard output
    #[command(after_long_help = "\
Examples:
  KEY=$(amq2api keys create --name laptop)
  amq2api keys create --name ci --rpm 60 --expires 30d
  amq2api keys create --name ops --admin --expires 2027-01-31")]
    Create(CreateKeyArgs),
    /// List keys (never the keys themselves)
    #[command(after_long_help = "\
Examples:
  amq2api keys list
  amq2api keys list --json")]
    List(ListArgs),
    /// Revoke a key
    #[command(after_long_help = "\
Examples:
  amq2api keys revoke laptop
  amq2api keys revoke sk-amq-1a2b3 --yes")]
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct CreateKeyArgs {
    /// Name of the key (unique among keys that are not revoked)
    #[arg(long)]
    pub name: String,
    /// The key may read the monitoring page
    #[arg(long)]
    pub admin: bool,
    /// Requests per minute allowed with this key
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rpm: Option<u32>,
    /// Requests this key may have in flight at once
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: Option<u32>,
    /// Expiry: a duration (30d, 12h, 90min) or a date (2027-01-31, RFC 3339)
    #[arg(long, value_name = "DURATION-OR-DATE")]
    pub expires: Option<String>,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Key id, name, or displayed prefix
    #[arg(value_name = "ID-OR-NAME-OR-PREFIX")]
    pub key: String,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Folder that receives completions/ and man/ (the repository root when regenerating)
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Port of the local server, checked at http://127.0.0.1:PORT/health
    #[arg(long, env = env::PORT, default_value_t = 8080)]
    pub port: u16,
    /// Full URL to check instead of the port's (plain http only)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Also show one row per key, account, model, day or hour (UTC), or status [default: totals only]
    #[arg(long, value_enum, value_name = "GROUP")]
    pub by: Option<StatsBy>,
    /// Start of the period: a duration back from now (24h, 7d, 90m) or a UTC date or time
    /// (2026-11-01, 2026-11-01T12:00:00Z)
    #[arg(long, value_name = "DURATION-OR-DATE", default_value = "24h")]
    pub since: String,
    /// Only requests made with keys of this name (revoked ones included)
    #[arg(long, value_name = "NAME")]
    pub key: Option<String>,
    /// Only requests served by the account of this name (removed ones included)
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// Print JSON (raw integers) instead of tables
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatsBy {
    /// Key name; "(deleted)" for requests whose key no longer exists
    Key,
    /// Account name when the request was served; "(none)" when no account took it
    Account,
    /// Model name as the client requested it
    Model,
    /// UTC day, oldest first
    Day,
    /// UTC hour, oldest first
    Hour,
    /// HTTP status and error class ("200", "429 throttled")
    Status,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        super::Cli::command().debug_assert();
    }

    /// Every argument (and every value of an enum argument) has help, and every command's long
    /// help ends with an "Examples:" section that shows the command itself: a new flag or
    /// subcommand cannot forget either.
    #[test]
    fn every_argument_has_help_and_every_command_an_example() {
        fn walk(cmd: &clap::Command, path: &str, problems: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id();
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    problems.push(format!(
                        "`{path}`: argument `{id}` has no help (doc comment)"
                    ));
                }
                let values = arg.get_action().takes_values();
                for value in arg.get_possible_values().into_iter().filter(|_| values) {
                    if !value.is_hide_set() && value.get_help().is_none() {
                        let name = value.get_name();
                        problems.push(format!("`{path}`: value `{name}` of `{id}` has no help"));
                    }
                }
            }
            let examples = cmd
                .get_after_long_help()
                .map(ToString::to_string)
                .unwrap_or_default();
            let shows_itself = examples
                .lines()
                .skip(1)
                .any(|l| l.starts_with("  ") && l.contains(path));
            if !examples.starts_with("Examples:\n") || !shows_itself {
                problems.push(format!(
                    "`{path}`: no `after_long_help = \"Examples:\\n  {path} ...\"`"
                ));
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), problems);
            }
        }
        let mut problems = Vec::new();
        walk(&super::Cli::command(), "amq2api", &mut problems);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
