//! Runs a parsed command line: the single dispatch `match`, plus what every command shares
//! (`.env` loading, logging, opening the database, confirmations, error and exit-code policy).

pub mod accounts;
pub mod generate;
pub mod healthcheck;
pub mod keys;
pub mod serve;
pub mod stats;
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
        Command::GenerateFiles(args) => generate::run(&args.out),
        Command::Healthcheck(args) => healthcheck::run(args),
        Command::Stats(args) => stats::run(database, args),
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
///
/// One plain line per record on stderr. Colour only when stderr is a terminal and `NO_COLOR` is
/// unset (env_logger's own detection, which also honours `RUST_LOG_STYLE` and `CLICOLOR`). When
/// stderr is the systemd journal (`JOURNAL_STREAM` names it), a line starts with its syslog
/// priority (`<4>` for a warning) instead of a timestamp: the journal keeps its own time, and
/// `journalctl -p warning` works.
pub fn init_logging(verbose: u8, serving: bool) {
    let level = match (verbose, serving) {
        (0, true) => "info",
        (0, false) => "warn",
        (1, _) => "debug",
        _ => "trace",
    };
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level));
    if stderr_is_journal() {
        builder
            .write_style(env_logger::WriteStyle::Never)
            .format(|buf, record| {
                use std::io::Write;
                let priority = syslog_priority(record.level());
                writeln!(buf, "<{priority}>{}: {}", record.target(), record.args())
            });
    } else {
        builder.format_timestamp_secs();
    }
    let _ = builder.try_init();
}

fn syslog_priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// Whether stderr is the journal stream systemd connected: `JOURNAL_STREAM` is its
/// `device:inode` (so a child whose stderr was redirected is not fooled by the inherited value).
fn stderr_is_journal() -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
            return false;
        };
        let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
            return false;
        };
        let Ok(meta) = std::fs::File::from(fd).metadata() else {
            return false;
        };
        stream.to_str() == Some(format!("{}:{}", meta.dev(), meta.ino()).as_str())
    }
    #[cfg(not(unix))]
    false
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
