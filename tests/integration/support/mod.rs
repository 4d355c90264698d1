//! Shared test set-up: a temporary working folder with its own database, running the real
//! binary in it, reading the database back, and the fake Amazon Q.
#![allow(dead_code)]

pub mod fake_q;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// Every fake secret in tests/fixtures/accounts: none may ever appear in any output.
pub const FIXTURE_SECRETS: &[&str] = &["eyJFAKE-", "aorFAKE-", "aoaFAKE-", "FAKECLIENT"];

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A temporary working folder; the database is `db/amq2api.db` inside it.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_path(&self) -> PathBuf {
        self.path().join("db/amq2api.db")
    }

    /// The real binary, run in this folder against this database, with a clean environment
    /// (no inherited DATABASE_PATH, RUST_LOG or AMAZONQ_*).
    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// The same as a plain `std::process::Command`, for spawning with pipes.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_amq2api"));
        cmd.current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("DATABASE_PATH", self.db_path());
        cmd
    }

    /// Runs `amq2api ARGS` and returns its output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs it and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "amq2api {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    pub fn pool(&self) -> amq2api::db::Pool {
        amq2api::db::open(&self.db_path()).unwrap()
    }

    /// The database file and its WAL, as bytes (to prove a plaintext is not in them).
    pub fn db_bytes(&self) -> Vec<u8> {
        let mut bytes = std::fs::read(self.db_path()).unwrap_or_default();
        let wal = self.db_path().with_extension("db-wal");
        bytes.extend(std::fs::read(wal).unwrap_or_default());
        bytes
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The cells of one table row as the CLI prints it (comfy-table's condensed UTF-8 style).
pub fn cells(line: &str) -> Vec<String> {
    line.split(['│', '┆'])
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}
