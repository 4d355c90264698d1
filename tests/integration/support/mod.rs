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

/// A running `amq2api serve` (the real binary) on 127.0.0.1 with a free port, against `dir`'s
/// database and the given fake Amazon Q. Killed when dropped.
pub struct Server {
    child: std::process::Child,
    pub url: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    pub fn start(dir: &TestDir, fake: &fake_q::FakeQ) -> Server {
        Server::start_with(dir, fake, &[])
    }

    pub fn start_with(dir: &TestDir, fake: &fake_q::FakeQ, env: &[(&str, &str)]) -> Server {
        use std::io::BufRead;
        let mut cmd = dir.std_cmd();
        cmd.args(["serve", "--port", "0", "--workers", "2"])
            .env("AMAZONQ_API_ENDPOINT", fake.api_url())
            .env("AMAZONQ_TOKEN_ENDPOINT", fake.token_url())
            .env("AMAZONQ_SOCIAL_TOKEN_ENDPOINT", fake.social_url())
            .env("RUST_LOG", "info,actix_server=warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                // Logged before the address is handed out: a test that reads the log right
                // after start sees the line.
                {
                    let mut log = sink.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = match rx.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("serve did not start:\n{}", log.lock().unwrap());
            }
        };
        Server { child, url, log }
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The server's process id (e.g. for its memory in `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `INT`, ...) to the server process.
    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP request with awc (a fresh actix System per call), following redirects.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Response {
    request(method, url, headers, body, true)
}

/// [`http`] without following redirects (sign-in and dashboard tests look at the 303 itself).
pub fn http_no_redirect(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Response {
    request(method, url, headers, body, false)
}

fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    follow_redirects: bool,
) -> Response {
    let (method, url) = (method.to_owned(), url.to_owned());
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let body = body.map(str::to_owned);
    actix_web::rt::System::new().block_on(async move {
        let mut client = awc::Client::builder().timeout(std::time::Duration::from_secs(30));
        if !follow_redirects {
            client = client.disable_redirects();
        }
        let client = client.finish();
        let mut req = client.request(method.parse().unwrap(), &url);
        for (k, v) in &headers {
            req = req.insert_header((k.as_str(), v.as_str()));
        }
        let mut resp = match body {
            Some(b) => req.send_body(b).await,
            None => req.send().await,
        }
        .unwrap();
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let bytes = resp.body().limit(64 * 1024 * 1024).await.unwrap();
        Response {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    })
}

/// Registers account FAKECLIENT1 with the fake, imports it (named `one`) with the CLI, and
/// creates a key; returns the key.
pub fn account_and_key(t: &TestDir, fake: &fake_q::FakeQ) -> String {
    fake.add_idc("FAKECLIENT1", "eyJFAKE-secret-1", "aorFAKE-refresh-1");
    let file = t.path().join("acc.json");
    std::fs::write(
        &file,
        r#"{"clientId":"FAKECLIENT1","clientSecret":"eyJFAKE-secret-1","refreshToken":"aorFAKE-refresh-1","label":"one"}"#,
    )
    .unwrap();
    t.ok(&["accounts", "import", file.to_str().unwrap()]);
    t.ok(&["keys", "create", "--name", "tester"])
        .trim()
        .to_owned()
}

/// Whether `program` runs here. Outside CI a missing one only skips the test (said on stderr);
/// in CI it is a failure, since .ci/run installs it (`package` names what provides it).
pub fn tool_available(program: &str, package: &str) -> bool {
    if std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok()
    {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide {program} (Debian's {package}, see .ci/run)"
    );
    eprintln!("skipping: no {program}; install Debian's {package}");
    false
}

/// Polls `check` every 25 ms until it returns `Some`, and panics naming `what` after `within`.
/// For changes the server picks up by itself (the CLI writing the database while `serve` runs).
pub fn eventually<T>(
    what: &str,
    within: std::time::Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// `/health`'s `active_accounts`.
pub fn active_accounts(server: &Server) -> u64 {
    http("GET", &format!("{}/health", server.url), &[], None).json()["active_accounts"]
        .as_u64()
        .unwrap()
}
