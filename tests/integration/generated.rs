//! The committed `completions/` and `man/` are, byte for byte, what the real binary's hidden
//! `generate-files` writes now, and every man page renders without a groff warning.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use amq2api::cmd::generate::REGENERATE;

use crate::support::{stderr, tool_available, TestDir};

const DIRS: [&str; 2] = ["completions", "man"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `root`'s completions/ and man/, keyed `completions/NAME`.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for dir in DIRS {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy();
            files.insert(format!("{dir}/{name}"), std::fs::read(&path).unwrap());
        }
    }
    files
}

#[test]
fn committed_completions_and_man_pages_are_current() {
    let t = TestDir::new();
    let out_dir = t.path().join("out");
    let out = t.run(&["generate-files", "--out", out_dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "generate-files failed: {}",
        stderr(&out)
    );
    let fresh = tree(&out_dir);
    let committed = tree(repo());
    assert!(fresh.contains_key("man/amq2api.1"), "{:?}", fresh.keys());

    let differing: Vec<_> = fresh
        .iter()
        .filter(|(name, bytes)| committed.get(*name).is_some_and(|c| c != *bytes))
        .map(|(name, _)| name.as_str())
        .collect();
    let missing: Vec<_> = fresh
        .keys()
        .filter(|name| !committed.contains_key(*name))
        .map(String::as_str)
        .collect();
    let extra: Vec<_> = committed
        .keys()
        .filter(|name| !fresh.contains_key(*name))
        .map(String::as_str)
        .collect();
    assert!(
        differing.is_empty() && missing.is_empty() && extra.is_empty(),
        "completions/ and man/ do not match the command line: run `{REGENERATE}` in the \
         repository root and commit both folders\n  differing: {differing:?}\n  missing: \
         {missing:?}\n  extra (no longer generated): {extra:?}"
    );
}

#[test]
fn every_man_page_renders_without_warnings() {
    if !tool_available("man", "man-db") {
        return;
    }
    let pages: Vec<_> = tree(repo())
        .into_keys()
        .filter(|name| name.starts_with("man/"))
        .collect();
    assert!(pages.len() >= 10, "{pages:?}");
    for page in pages {
        let out = Command::new("man")
            .args(["--warnings=w", "-E", "UTF-8", "-l"])
            .arg(repo().join(&page))
            .env("MANWIDTH", "80")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "man -l {page}: {}", stderr(&out));
        assert!(
            stderr(&out).is_empty(),
            "man -l {page} warns:\n{}",
            stderr(&out)
        );
        for section in ["NAME", "SYNOPSIS", "EXAMPLES", "VERSION"] {
            assert!(
                text.lines().any(|l| l == section),
                "{page} has no {section}:\n{text}"
            );
        }
    }
}
