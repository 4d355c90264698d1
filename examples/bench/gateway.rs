//! The gateway under test: building the release binary, seeding a fresh database (accounts
//! whose access tokens are valid for hours, so no refresh ever happens, and two API keys), and
//! running `amq2api serve` pinned to its own core, pointed at the bench's fake Amazon Q.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use diesel::prelude::*;

use amq2api::db::{self, accounts, api_keys};

/// `cargo build --release --bin amq2api` (quick when up to date). Returns how long it took.
pub fn build(manifest_dir: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(manifest_dir)
        .args(["build", "--release", "--bin", "amq2api"]);
    // `cargo run` sets these for the running example; left in, they make the crates that read
    // them at build time (ring: OUT_DIR, CARGO_MANIFEST_DIR) rebuild, here and again in the next
    // plain build.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                &*name,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE" | "OUT_DIR"
            )
        {
            cmd.env_remove(&*name);
        }
    }
    let status = cmd.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --release --bin amq2api failed");
    }
    Ok(started.elapsed())
}

/// The release binary next to this example (`target/release/examples/bench` →
/// `target/release/amq2api`), so a custom `CARGO_TARGET_DIR` works too.
pub fn default_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("amq2api"))
        .unwrap_or_else(|| PathBuf::from("target/release/amq2api"))
}

/// The gateway binary (`--gateway`, else [`default_binary`]) and the output folder (`--out`,
/// else `<target>/<folder>`), both made absolute: the gateway runs in the output folder and
/// takes its database path from it. The folder is created.
pub fn locate(
    gateway: Option<PathBuf>,
    out: Option<PathBuf>,
    folder: &str,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let binary = gateway.unwrap_or_else(default_binary);
    let binary = std::fs::canonicalize(&binary).with_context(|| {
        format!(
            "{} does not exist (build it, or pass --gateway)",
            binary.display()
        )
    })?;
    let out_dir = out.unwrap_or_else(|| {
        binary
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("target"))
            .join(folder)
    });
    std::fs::create_dir_all(&out_dir)?;
    let out_dir = std::fs::canonicalize(&out_dir)?;
    Ok((binary, out_dir))
}

/// The keys the bench uses: one for the traffic, an admin one for `/metrics`.
pub struct Keys {
    pub user: String,
    pub admin: String,
}

/// The access token of bench account `i`, as the fake would accept it.
pub fn access_token(i: usize) -> String {
    format!("bench-access-token-{i}")
}

/// A new database at `path` with `n` accounts (tokens valid for 12 hours) and two keys.
pub fn seed(path: &Path, n: usize) -> anyhow::Result<Keys> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    let pool = db::open(path)?;
    let mut conn = pool.get()?;
    let now = db::now();
    for i in 0..n {
        let input = accounts::AccountInput {
            kind: accounts::AuthKind::Idc,
            client_id: Some("bench-client".into()),
            client_secret: Some("bench-secret".into()),
            refresh_token: format!("bench-refresh-token-{i}"),
            access_token: Some(access_token(i)),
            access_token_expires_at: Some(now + 12 * 3600),
            region: "us-east-1".into(),
            profile_arn: None,
            start_url: None,
            rpm_limit: None,
        };
        conn.immediate_transaction(|c| {
            accounts::upsert(c, &input, &format!("bench-{i}"), true, now)
        })?;
    }
    let mut key = |name: &str, is_admin: bool| -> anyhow::Result<String> {
        let plain = api_keys::PlainKey::generate();
        api_keys::insert(
            &mut conn,
            &api_keys::NewApiKey {
                name,
                prefix: &plain.display_prefix(),
                key_hash: plain.hashed().as_str(),
                is_admin,
                rpm_limit: None,
                concurrency_limit: None,
                expires_at: None,
                created_at: now,
            },
        )?;
        Ok(plain.expose().to_owned())
    };
    Ok(Keys {
        user: key("bench", false)?,
        admin: key("bench-admin", true)?,
    })
}

/// Rows in the usage log now.
pub fn usage_rows(path: &Path) -> anyhow::Result<i64> {
    use amq2api::db::schema::usage_log;
    let pool = db::open(path)?;
    let mut conn = pool.get()?;
    Ok(usage_log::table.count().get_result(&mut conn)?)
}

/// How the gateway process is started.
pub struct Launch<'a> {
    pub binary: &'a Path,
    pub dir: &'a Path,
    pub db: &'a Path,
    pub fake_url: &'a str,
    /// `taskset -c CORE` in front, when set.
    pub core: Option<usize>,
    /// More words in front (a profiler such as `valgrind --tool=callgrind`).
    pub wrapper: &'a [String],
    pub workers: usize,
    /// Extra `NAME=VALUE` environment variables.
    pub env: &'a [String],
}

/// A running `amq2api serve`; killed when dropped.
pub struct Gateway {
    child: Child,
    pub url: String,
    pub pid: u32,
    log: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    pub fn start(l: &Launch) -> anyhow::Result<Gateway> {
        let mut words: Vec<String> = Vec::new();
        if let Some(core) = l.core {
            words.extend(["taskset".into(), "-c".into(), core.to_string()]);
        }
        words.extend(l.wrapper.iter().cloned());
        words.push(l.binary.display().to_string());
        words.extend(
            ["serve", "--port", "0", "--workers"]
                .map(str::to_owned)
                .into_iter()
                .chain([l.workers.to_string()]),
        );
        let mut cmd = Command::new(&words[0]);
        cmd.args(&words[1..])
            // Its own folder: no `.env` of the checkout is read.
            .current_dir(l.dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", l.dir)
            .env("DATABASE_PATH", l.db)
            .env("AMAZONQ_API_ENDPOINT", format!("{}/", l.fake_url))
            // Never called (the tokens are valid for hours); the fake answers 404 and counts it.
            .env("AMAZONQ_TOKEN_ENDPOINT", format!("{}/token", l.fake_url))
            .env(
                "AMAZONQ_SOCIAL_TOKEN_ENDPOINT",
                format!("{}/refreshToken", l.fake_url),
            )
            // Warnings only, plus the line that says where it listens.
            .env("RUST_LOG", "warn,amq2api::cmd::serve=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for pair in l.env {
            let (name, value) = pair
                .split_once('=')
                .with_context(|| format!("--gateway-env {pair:?} is not NAME=VALUE"))?;
            cmd.env(name, value);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", words.join(" ")))?;
        let stderr = child.stderr.take().expect("piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                bail!(
                    "amq2api serve did not start:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        let pid = child.id();
        Ok(Gateway {
            child,
            url,
            pid,
            log,
        })
    }

    /// Lines the gateway logged (warnings and errors, start and stop).
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, then waits up to `timeout` for a clean exit (usage rows flushed).
    pub fn stop(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("amq2api did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
