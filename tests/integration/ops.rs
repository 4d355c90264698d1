//! Operating amq2api: the hidden `healthcheck` command, log lines fit for a pipe and for
//! journald, readiness for systemd's Type=notify, the systemd unit (`systemd-analyze`) and the
//! promises of the Dockerfile.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::fake_q::FakeQ;
use crate::support::{stderr, tool_available, Server, TestDir};

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn port_of(url: &str) -> String {
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned()
}

#[test]
fn healthcheck_passes_against_the_server_and_fails_fast_without_one() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let server = Server::start(&t, &fake);
    let port = port_of(&server.url);
    t.cmd()
        .args(["healthcheck", "--port", &port])
        .assert()
        .success();
    // PORT, as the Docker image sets it, and a full URL.
    t.cmd()
        .arg("healthcheck")
        .env("PORT", &port)
        .assert()
        .success();
    let url = format!("{}/health", server.url);
    t.cmd()
        .args(["healthcheck", "--url", &url])
        .env("PORT", "1")
        .assert()
        .success();
    // A 404 is not healthy.
    let url = format!("{}/nothing-here", server.url);
    let out = t.run(&["healthcheck", "--url", &url]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("HTTP status 404"), "{}", stderr(&out));

    // Nobody listening: exit 1 at once, one line naming the URL.
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port().to_string();
    drop(free);
    let started = Instant::now();
    let out = t.run(&["healthcheck", "--port", &port]);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(out.status.code(), Some(1));
    let want = format!("amq2api: health check of http://127.0.0.1:{port}/health failed: ");
    assert!(stderr(&out).starts_with(&want), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

/// `serve` on a port that is taken: it logs its set-up warnings, then fails to listen. Keep the
/// listener while running it.
fn serve_on_a_busy_port() -> (TcpListener, Vec<String>) {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let args = ["serve", "--port", &port].map(str::to_owned).to_vec();
    (busy, args)
}

#[test]
fn logs_are_plain_lines_without_colour_on_a_pipe_and_with_no_color() {
    let t = TestDir::new();
    let (_busy, args) = serve_on_a_busy_port();
    let out = t
        .cmd()
        .args(&args)
        .env("TERM", "xterm-256color")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let log = stderr(&out);
    assert!(
        log.contains("WARN") && log.contains("no API key exists"),
        "{log}"
    );
    assert!(
        !out.stderr.contains(&0x1b),
        "escape codes on a pipe: {log:?}"
    );
    assert!(
        log.lines()
            .all(|l| l.starts_with('[') || l.starts_with("amq2api: ")),
        "{log}"
    );

    // On a terminal (util-linux `script` gives one) colour is on, unless NO_COLOR is set.
    let on_terminal = |no_color: bool| -> Option<Output> {
        let command = format!("'{}' {}", env!("CARGO_BIN_EXE_amq2api"), args.join(" "));
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &command, "/dev/null"])
            .current_dir(t.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("TERM", "xterm-256color")
            .env("DATABASE_PATH", t.db_path())
            .stdin(Stdio::null());
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        cmd.output().ok().filter(|o| o.stdout.len() > 10)
    };
    let Some(coloured) = on_terminal(false) else {
        eprintln!("skipping the terminal half: no util-linux `script`");
        return;
    };
    assert!(
        coloured.stdout.contains(&0x1b),
        "no colour on a terminal: {coloured:?}"
    );
    let plain = on_terminal(true).unwrap();
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(text.contains("no API key exists"), "{text}");
    assert!(
        !plain.stdout.contains(&0x1b),
        "colour despite NO_COLOR: {text:?}"
    );
}

#[test]
fn under_journald_each_line_starts_with_its_syslog_priority() {
    use std::os::unix::fs::MetadataExt;
    let t = TestDir::new();
    let (_busy, args) = serve_on_a_busy_port();
    let run = |journal_stream: &dyn Fn(&std::fs::Metadata) -> String| -> String {
        let path = t.path().join("stderr.log");
        let file = std::fs::File::create(&path).unwrap();
        let stream = journal_stream(&file.metadata().unwrap());
        let out = t
            .std_cmd()
            .args(&args)
            .env("JOURNAL_STREAM", stream)
            .stderr(Stdio::from(file))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        std::fs::read_to_string(&path).unwrap()
    };
    // systemd names the stream stderr is connected to as DEVICE:INODE.
    let log = run(&|m| format!("{}:{}", m.dev(), m.ino()));
    assert!(
        log.lines()
            .any(|l| l.starts_with("<4>amq2api::cmd::serve: no API key exists")),
        "{log}"
    );
    assert!(!log.contains("WARN") && !log.contains("Z "), "{log}");
    // An inherited JOURNAL_STREAM that is not our stderr changes nothing.
    let log = run(&|m| format!("{}:{}", m.dev(), m.ino() + 1));
    assert!(
        log.lines()
            .any(|l| l.starts_with('[') && l.contains("WARN")),
        "{log}"
    );
}

#[test]
fn serve_tells_systemd_it_is_ready_once_listening() {
    use std::os::unix::net::UnixDatagram;
    let fake = FakeQ::start();
    let t = TestDir::new();
    let socket = t.path().join("notify.sock");
    let listener = UnixDatagram::bind(&socket).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let server = Server::start_with(&t, &fake, &[("NOTIFY_SOCKET", socket.to_str().unwrap())]);
    let mut buf = [0u8; 256];
    let n = listener.recv(&mut buf).expect("no READY=1 from serve");
    assert_eq!(&buf[..n], b"READY=1\n");
    t.cmd()
        .args(["healthcheck", "--port", &port_of(&server.url)])
        .assert()
        .success();
}

#[test]
fn systemd_unit_verifies_and_stays_hardened() {
    let unit = repo_file("systemd/amq2api.service");
    for line in [
        "Type=notify",
        "StateDirectory=amq2api",
        &format!(
            "Environment={}=/var/lib/amq2api/amq2api.db",
            amq2api::cli::env::DATABASE_PATH
        ),
        "EnvironmentFile=-/etc/amq2api/env",
        "ExecStart=/usr/local/bin/amq2api serve",
        "Restart=on-failure",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=35s",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "MemoryDenyWriteExecute=yes",
        "SystemCallFilter=@system-service",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lost `{line}`");
    }
    assert!(
        repo_file("README.md").contains(&format!("```ini\n{unit}```")),
        "README.md's \"Running under systemd\" must show systemd/amq2api.service as it is"
    );
    if !tool_available("systemd-analyze", "systemd") {
        return;
    }
    // verify insists that ExecStart's binary exists: point it at the one under test.
    let t = TestDir::new();
    let path = t.path().join("amq2api.service");
    let local = unit.replace(
        "ExecStart=/usr/local/bin/amq2api ",
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_amq2api")),
    );
    std::fs::write(&path, local).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    // verify exits 0 on unknown keys and bad values too, but says so on stderr.
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify:\n{}",
        stderr(&out)
    );
    // systemd's own exposure score (0 best, 10 worst); this unit scores 1.4.
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "exposure above 2.0:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The Dockerfile's instructions, continuation lines joined and comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in repo_file("Dockerfile").lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                let (op, args) = current.split_once(' ').unwrap_or((&current, ""));
                instructions.push((
                    op.to_uppercase(),
                    args.split_whitespace().collect::<Vec<_>>().join(" "),
                ));
                current.clear();
            }
        }
    }
    instructions
}

#[test]
fn dockerfile_builds_locked_and_runs_unprivileged_with_a_volume_and_health_check() {
    let all = dockerfile();
    let froms: Vec<_> = all.iter().filter(|(op, _)| op == "FROM").collect();
    assert_eq!(froms.len(), 2, "{froms:?}");
    // The builder's toolchain is at least Cargo.toml's rust-version.
    let builder = froms[0].1.strip_prefix("rust:").expect("builder is rust:*");
    let (version, rest) = builder.split_once('-').unwrap();
    assert_eq!(rest, "slim-bookworm AS builder");
    let msrv = env!("CARGO_PKG_RUST_VERSION");
    let parse = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap()).collect() };
    assert!(
        parse(version) >= parse(msrv),
        "rust:{version} is older than {msrv}"
    );
    assert_eq!(froms[1].1, "debian:bookworm-slim");

    let split = all.iter().position(|i| i == froms[1]).unwrap();
    let (build, runtime) = all.split_at(split);
    assert!(build
        .iter()
        .any(|(op, a)| op == "RUN" && a.contains("cargo build --release --locked")));
    let has = |op: &str, args: &str| runtime.iter().any(|(o, a)| o == op && a == args);
    let users: Vec<_> = runtime.iter().filter(|(op, _)| op == "USER").collect();
    let user = &users
        .last()
        .expect("no USER: the server would run as root")
        .1;
    assert!(
        !["root", "0", "0:0"].contains(&user.as_str()),
        "USER {user}"
    );
    assert!(
        runtime.iter().any(|(op, a)| op == "HEALTHCHECK"
            && a.starts_with("--interval=30s --timeout=5s ")
            && a.ends_with(" CMD [\"amq2api\", \"healthcheck\"]")),
        "{runtime:?}"
    );
    assert!(has("VOLUME", "[\"/app/data\"]"), "{runtime:?}");
    let env = format!(
        "HOST=0.0.0.0 PORT=8080 {}=/app/data/amq2api.db",
        amq2api::cli::env::DATABASE_PATH
    );
    assert!(has("ENV", &env), "{runtime:?}");
    assert!(has("EXPOSE", "8080"));
    assert!(has("ENTRYPOINT", "[\"amq2api\"]"));
    assert!(has("CMD", "[\"serve\"]"));
    assert!(runtime
        .iter()
        .any(|(op, a)| op == "RUN" && a.contains("ca-certificates")));

    let ignore = repo_file(".dockerignore");
    for line in [".env", "target", "data", ".git"] {
        assert!(
            ignore.lines().any(|l| l == line),
            ".dockerignore lacks {line}"
        );
    }
}

/// Every command the Dockerfile's build stage runs, CI runs too (no Docker engine here), and CI
/// runs README.md's quick start as written: neither can rot unnoticed.
#[test]
fn ci_runs_the_dockerfile_build_command_and_the_readme_quick_start() {
    let all = dockerfile();
    let runtime_from = all
        .iter()
        .rposition(|(op, _)| op == "FROM")
        .expect("two stages");
    let build_runs: Vec<&String> = all[..runtime_from]
        .iter()
        .filter(|(op, _)| op == "RUN")
        .map(|(_, args)| args)
        .collect();
    assert_eq!(build_runs.len(), 1, "{build_runs:?}");
    // `--mount=...` options first, then `cargo build ... && install ...`.
    let cargo = build_runs[0]
        .split(" && ")
        .find_map(|part| part.find("cargo ").map(|at| part[at..].trim().to_owned()))
        .expect("the build stage runs cargo");
    assert_eq!(cargo, "cargo build --release --locked");
    let ci = repo_file(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == cargo),
        ".ci/run does not run the Dockerfile's `{cargo}`"
    );
    assert!(ci.lines().any(|l| l.starts_with("bash .ci/quickstart")));
    let readme = repo_file("README.md");
    let marked = readme
        .split("\n<!-- quickstart -->\n")
        .nth(1)
        .expect("README.md has the <!-- quickstart --> marker");
    assert!(
        marked.starts_with("```sh\n"),
        "the marker precedes a ```sh block"
    );
    let block = &marked[..marked.find("\n```\n").expect("the block ends")];
    // The block starts from a fresh clone: the same build as the Dockerfile's, then a streamed
    // answer through the fake Amazon Q.
    assert!(
        block.contains(&format!("\n{cargo}\n")) || block.starts_with(&format!("```sh\n{cargo}\n"))
    );
    assert!(block.contains("\"stream\": true"));
}
