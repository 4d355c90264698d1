//! Runs a parsed command line: the single dispatch `match`, plus what every command shares
//! (`.env` loading, logging, opening the database, confirmations, error and exit-code policy).

pub mod accounts;
pub mod keys;
pub mod serve;
pub mod table;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};

use crate::cli::{AccountsCommand, Cli, Command, KeysCommand};
use crate::db;

/// Runs one command. `Ok` carries the exit code for commands that report partial failure.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let database = cli.database.as_path();
    match cli.command {
        Command::Serve(args) => serve::run(database, args),
        Command::Accounts(cmd) => match cmd {
            AccountsCommand::Import(args) => accounts::import(database, args),
            AccountsCommand::List(args) => accounts::list(database, args),
            AccountsCommand::Add(args) => accounts::add(database, args),
            AccountsCommand::Enable(args) => accounts::set_enabled(database, args, true),
            AccountsCommand::Disable(args) => accounts::set_enabled(database, args, false),
            AccountsCommand::Remove(args) => accounts::remove(database, args),
            AccountsCommand::Refresh(args) => accounts::refresh(database, args),
            AccountsCommand::Set(args) => accounts::set(database, args),
        },
        Command::Keys(cmd) => match cmd {
            KeysCommand::Create(args) => keys::create(database, args),
            KeysCommand::List(args) => keys::list(database, args),
            KeysCommand::Revoke(args) => keys::revoke(database, args),
        },
    }
}

/// Opens the database for a command, naming it in the error.
pub fn open_db(path: &Path) -> anyhow::Result<db::Pool> {
    db::open(path).with_context(|| format!("cannot open database {}", path.display()))
}

/// Loads `.env` from the working directory into the environment (variables already set win).
/// A missing file is fine; a malformed one is an error naming the line, never its content
/// (it may hold a secret).
pub fn load_dotenv() -> anyhow::Result<()> {
    let path = Path::new(".env");
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).context("cannot read .env"),
    };
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((key, value)) => {
                if std::env::var_os(&key).is_none() {
                    // Called from main before any thread starts.
                    std::env::set_var(key, value);
                }
            }
            Err(dotenvy::Error::LineParse(line, _)) => {
                let number = text
                    .lines()
                    .position(|l| l.trim_end() == line.trim_end() || l.starts_with(line.trim_end()))
                    .map_or_else(|| "?".to_owned(), |i| (i + 1).to_string());
                bail!("cannot load .env: line {number} is malformed");
            }
            Err(e) => bail!("cannot load .env: {}", describe_dotenv_error(&e)),
        }
    }
    Ok(())
}

fn describe_dotenv_error(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::Io(io) => io.to_string(),
        _ => "malformed file".into(),
    }
}

/// env_logger at `info` for `serve` and `warn` for the other commands (their output is the
/// table), raised by -v; `RUST_LOG` overrides both.
pub fn init_logging(verbose: u8, serving: bool) {
    let level = match (verbose, serving) {
        (0, true) => "info",
        (0, false) => "warn",
        (1, _) => "debug",
        _ => "trace",
    };
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp_secs()
        .try_init();
}

/// Asks a yes/no question on the terminal; without one, refuses (scripts must pass `--yes`).
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        bail!("refusing to ask for confirmation without a terminal: pass --yes");
    }
    dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact()
        .context("cannot read the answer")
}

/// Whether an error is only a closed standard output (`amq2api ... | head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Prints help and version as clap does; any other clap error as one `amq2api: ...` line, exit 2.
pub fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            let text = err.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("amq2api: invalid usage: {first} (see amq2api --help)");
            ExitCode::from(2)
        }
    }
}
