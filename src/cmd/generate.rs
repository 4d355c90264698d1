//! `amq2api generate-files` (hidden): shell completions (`clap_complete`) and one man page per
//! visible command (`clap_mangen`), made from the clap definition alone and committed under
//! `completions/` and `man/`; `tests/integration/generated.rs` checks they are current.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::{Generator, Shell};

use crate::cli::Cli;

/// The command that rewrites the committed files from the repository root.
pub const REGENERATE: &str = "cargo run -- generate-files --out .";

const BIN: &str = "amq2api";
const SHELLS: [Shell; 5] = [
    Shell::Bash,
    Shell::Zsh,
    Shell::Fish,
    Shell::PowerShell,
    Shell::Elvish,
];

/// Writes every file under `out` and removes man pages of commands that no longer exist; prints
/// each path written.
pub fn run(out: &Path) -> anyhow::Result<ExitCode> {
    let files = files()?;
    for dir in ["completions", "man"] {
        std::fs::create_dir_all(out.join(dir))
            .with_context(|| format!("cannot create {}", out.join(dir).display()))?;
    }
    remove_stale_man_pages(&out.join("man"), &files)?;
    for (rel, bytes) in &files {
        let path = out.join(rel);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Every generated file, as (path relative to the repository root, contents). Deterministic:
/// no date, and the version is Cargo.toml's.
pub fn files() -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    for shell in SHELLS {
        let mut bytes = Vec::new();
        clap_complete::generate(shell, &mut visible(&Cli::command()), BIN, &mut bytes);
        files.push((Path::new("completions").join(shell.file_name(BIN)), bytes));
    }
    // As clap_mangen::generate_to does: no `help` subcommand, and names built
    // (amq2api-accounts-import).
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    man_pages(&root, &mut files)?;
    Ok(files)
}

/// The command tree without its hidden arguments and subcommands, which clap_complete would
/// otherwise offer (the seed's `--seed-refresh-token`, `healthcheck`, this generator).
fn visible(cmd: &clap::Command) -> clap::Command {
    let mut out = clap::Command::new(cmd.get_name().to_owned())
        .propagate_version(cmd.is_propagate_version_set())
        .subcommand_required(cmd.is_subcommand_required_set())
        .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned());
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    if let Some(examples) = cmd.get_after_long_help() {
        out = out.after_long_help(examples.clone());
    }
    if let Some(version) = cmd.get_version() {
        out = out.version(version.to_owned());
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        out = out.subcommand(visible(sub));
    }
    out
}

fn man_pages(cmd: &clap::Command, files: &mut Vec<(PathBuf, Vec<u8>)>) -> anyhow::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")))
        .manual("amq2api manual");
    let mut page = Vec::new();
    man.render(&mut page)?;
    let page = String::from_utf8(page).context("man page is not UTF-8")?;
    files.push((
        Path::new("man").join(man.get_filename()),
        examples_section(&page).into_bytes(),
    ));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, files)?;
    }
    Ok(())
}

/// clap_mangen puts `after_long_help` under `.SH EXTRA` as filled text; ours is always an
/// "Examples:" list, so it becomes `.SH EXAMPLES` with one example per line (`.nf`).
fn examples_section(page: &str) -> String {
    let Some((head, rest)) = page.split_once(".SH EXTRA\nExamples:\n") else {
        return page.to_owned();
    };
    let (body, tail) = match rest.find("\n.SH ") {
        Some(end) => (&rest[..=end], &rest[end + 1..]),
        None => (rest, ""),
    };
    format!("{head}.SH EXAMPLES\n.nf\n{body}.fi\n{tail}")
}

fn remove_stale_man_pages(dir: &Path, files: &[(PathBuf, Vec<u8>)]) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let generated: Vec<_> = files
        .iter()
        .filter_map(|(rel, _)| rel.file_name())
        .collect();
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default();
        let ours =
            name.to_string_lossy().starts_with(BIN) && path.extension() == Some("1".as_ref());
        if ours && !generated.contains(&name) {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
            eprintln!("removed {}", path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_visible_command_has_a_page_and_hidden_ones_none() {
        let files = files().unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|(p, _)| p.to_string_lossy().into_owned())
            .collect();
        for want in [
            "completions/amq2api.bash",
            "completions/_amq2api",
            "completions/amq2api.fish",
            "completions/_amq2api.ps1",
            "completions/amq2api.elv",
            "man/amq2api.1",
            "man/amq2api-serve.1",
            "man/amq2api-accounts.1",
            "man/amq2api-accounts-import.1",
            "man/amq2api-keys-revoke.1",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
        }
        assert!(!names
            .iter()
            .any(|n| n.contains("generate") || n.contains("healthcheck")));
        assert!(!names.iter().any(|n| n.contains("help")));
        for (name, bytes) in &files {
            let text = String::from_utf8_lossy(bytes);
            for hidden in ["healthcheck", "generate-files", "seed-refresh-token"] {
                assert!(!text.contains(hidden), "{hidden} in {}", name.display());
            }
        }
    }

    #[test]
    fn examples_become_a_no_fill_section() {
        let examples = "  amq2api serve\n  amq2api serve \\-\\-port 1\n";
        let page = format!(".SH SUBCOMMANDS\nx\n.SH EXTRA\nExamples:\n{examples}.SH VERSION\nv1\n");
        assert_eq!(
            examples_section(&page),
            format!(".SH SUBCOMMANDS\nx\n.SH EXAMPLES\n.nf\n{examples}.fi\n.SH VERSION\nv1\n")
        );
        let man = String::from_utf8(
            files()
                .unwrap()
                .into_iter()
                .find(|(p, _)| p.ends_with("amq2api-serve.1"))
                .unwrap()
                .1,
        )
        .unwrap();
        assert!(
            man.contains(".SH EXAMPLES\n.nf\n  amq2api serve\n"),
            "{man}"
        );
        assert!(!man.contains("EXTRA"));
    }
}
