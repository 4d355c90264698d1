//! The `amq2api` binary: load `.env`, parse the command line, run it, print any error once.

use std::process::ExitCode;

use clap::Parser;

use amq2api::{cli::Cli, cmd};

fn main() -> ExitCode {
    if let Err(e) = cmd::load_dotenv() {
        eprintln!("amq2api: {e:#}");
        return ExitCode::FAILURE;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cmd::usage_error(e),
    };
    let serving = matches!(cli.command, amq2api::cli::Command::Serve(_));
    cmd::init_logging(cli.verbose, serving);
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) if cmd::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("amq2api: {e:#}");
            ExitCode::FAILURE
        }
    }
}
