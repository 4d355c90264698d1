//! The security review, as tests that stand on their own (other modules check some of these
//! points in passing: cli_general for CLI output and the CLI-created file mode, dashboard for
//! the `/admin` pages, usage for `/metrics`):
//! * no API key or account secret in any output of a whole session run at `RUST_LOG=trace`
//!   (server log, every HTTP answer, every CLI command's stdout and stderr);
//! * the database file (and its WAL and shared-memory files) is created 0600, by `serve` and by
//!   the CLI;
//! * admin-only routes refuse non-admin keys, with the exact status and error;
//! * API keys are compared in constant time;
//! * `serve` listens on loopback only unless told otherwise;
//! * the dashboard's security headers, exactly;
//! * a request cannot choose the upstream URL or add, replace or inject upstream headers.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::json;

use crate::support::fake_q::{FakeQ, QError, Reply};
use crate::support::{http, Response, Server, TestDir};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// One request without following redirects.
fn call(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Response {
    crate::support::http_no_redirect(method, url, headers, body)
}

/// Sends `head` (request line and headers, CRLF-separated, without the blank line) and `body`
/// over a raw socket with `Connection: close`, and returns the status and the whole raw answer.
/// For what an HTTP client library would refuse to send.
fn raw(url: &str, head: &str, body: &str) -> (u16, String) {
    let mut sock = std::net::TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        sock,
        "{head}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    sock.read_to_end(&mut out).unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {out:?}"));
    (status, out)
}

/// A form-encoded key, as a browser sends it.
fn form(key: &str) -> String {
    let mut out = String::from("key=");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn login(server: &Server, key: &str) -> Response {
    call(
        "POST",
        &format!("{}/admin/login", server.url),
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(&form(key)),
    )
}

fn session_of(r: &Response) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, c)| c.strip_prefix("amq2api_admin="))
        .map(|rest| rest.split(';').next().unwrap().to_owned())
        .filter(|v| !v.is_empty())
}

/// Imports one IDC account from a JSON file with the CLI.
fn import(t: &TestDir, name: &str, client_id: &str, secret: &str, refresh: &str) -> String {
    let file = t.path().join(format!("{name}.json"));
    std::fs::write(
        &file,
        json!({"clientId": client_id, "clientSecret": secret, "refreshToken": refresh, "label": name})
            .to_string(),
    )
    .unwrap();
    file.display().to_string()
}

/// The file mode bits of `path`.
#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

// ---------------------------------------------------------------------------------------------
// No secret in any output
// ---------------------------------------------------------------------------------------------

const IDC_CLIENT: &str = "FAKECLIENTsec1";
const IDC_SECRET: &str = "SECRET-CS-4d1f0a9b7c2e8f36";
const IDC_REFRESH: &str = "aorSECRET-8c1e5a7f2b9d0e44-refresh";
const DEAD_CLIENT: &str = "FAKECLIENTsec2";
const DEAD_SECRET: &str = "SECRET-CS-dead-77aa11bb22cc";
const DEAD_REFRESH: &str = "aorSECRET-dead-5e3b9c1d7a2f-refresh";
const SEED_CLIENT: &str = "FAKECLIENTseed";
const SEED_SECRET: &str = "SECRET-CS-seed-0b9e3a5c7d1f";
const SEED_REFRESH: &str = "aorSECRET-seed-2a6c4e8f0b1d-refresh";
/// Secrets in files `accounts import` refuses: an error message must not quote them.
const BAD_SECRET: &str = "SECRET-CS-badfile-9a2d6e0f4b8c";
const BAD_REFRESH: &str = "aorSECRET-badfile-31f0c7e5a9b3";
/// A key a client presents that is not ours (maybe a real key for another server).
const WRONG_KEY: &str = "sk-amq-SECRETwrong0123456789abcdefABCDEF";

/// Collects every output of the session, labelled, to search at the end.
#[derive(Default)]
struct Outputs(Vec<(String, String)>);

impl Outputs {
    fn add(&mut self, what: impl Into<String>, text: impl Into<String>) {
        self.0.push((what.into(), text.into()));
    }

    fn response(&mut self, what: &str, r: &Response) -> u16 {
        let headers: String = r
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\n"))
            .collect();
        self.add(what, format!("{} {headers}\n{}", r.status, r.body));
        r.status
    }

    /// Runs the CLI at trace level; keeps stdout and stderr; returns stdout.
    fn cli(&mut self, t: &TestDir, args: &[&str], fake: &FakeQ) -> (bool, String) {
        let out = t
            .cmd()
            .env("RUST_LOG", "trace")
            .env("AMAZONQ_TOKEN_ENDPOINT", fake.token_url())
            .env("AMAZONQ_SOCIAL_TOKEN_ENDPOINT", fake.social_url())
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        self.add(format!("amq2api {args:?} stdout"), stdout.clone());
        self.add(
            format!("amq2api {args:?} stderr"),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        (out.status.success(), stdout)
    }
}

/// The whole secret, its first `head` characters and its last 12: a truncated secret in an
/// output is a leak too.
fn needles(secret: &str, head: usize) -> Vec<String> {
    let chars: Vec<char> = secret.chars().collect();
    assert!(
        chars.len() > head.max(12),
        "{secret:?} is too short to search for"
    );
    vec![
        secret.to_owned(),
        chars[..head].iter().collect(),
        chars[chars.len() - 12..].iter().collect(),
    ]
}

/// Set `AMQ2API_SECURITY_DUMP=FILE` to keep every collected output in FILE for reading.
#[test]
fn no_secret_in_any_output_of_a_whole_session_at_trace_level() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let mut outs = Outputs::default();

    // Accounts: one that works, one whose refresh token the fake revoked, one seeded from the
    // environment at start-up; two keys.
    let live = fake.add_idc(IDC_CLIENT, IDC_SECRET, IDC_REFRESH);
    let dead = fake.add_idc(DEAD_CLIENT, DEAD_SECRET, DEAD_REFRESH);
    fake.revoke_refresh_token(dead);
    fake.add_idc(SEED_CLIENT, SEED_SECRET, SEED_REFRESH);
    let live_file = import(&t, "live", IDC_CLIENT, IDC_SECRET, IDC_REFRESH);
    assert!(
        outs.cli(&t, &["-vv", "accounts", "import", &live_file], &fake)
            .0
    );
    let dead_file = import(&t, "dead", DEAD_CLIENT, DEAD_SECRET, DEAD_REFRESH);
    assert!(outs.cli(&t, &["accounts", "import", &dead_file], &fake).0);
    // `keys create` prints the new key on stdout: the one place it may appear. Its stderr is
    // searched like everything else.
    let create = |outs: &mut Outputs, args: &[&str]| -> String {
        let out = t
            .cmd()
            .env("RUST_LOG", "trace")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        outs.add(
            format!("amq2api {args:?} stderr"),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let user = create(&mut outs, &["keys", "create", "--name", "user"]);
    let admin = create(&mut outs, &["keys", "create", "--name", "boss", "--admin"]);
    assert!(user.starts_with("sk-amq-") && admin.starts_with("sk-amq-"));

    // Files `accounts import` refuses, each holding secrets: malformed JSON, a secret where a
    // number is expected, a secret as an unknown kind, a token file without its client.
    let bad = [
        format!(r#"{{"clientId":"x","clientSecret":"{BAD_SECRET}","refreshToken":"{BAD_REFRESH}""#),
        format!(
            r#"{{"clientId":"x","clientSecret":"{BAD_SECRET}","refreshToken":"{BAD_REFRESH}","expiresAt":"{BAD_REFRESH}"}}"#
        ),
        format!(
            r#"{{"clientId":"x","clientSecret":"{BAD_SECRET}","refreshToken":"{BAD_REFRESH}","authMethod":"{BAD_SECRET}"}}"#
        ),
        format!(
            r#"{{"refreshToken":{{"value":"{BAD_REFRESH}"}},"clientSecret":["{BAD_SECRET}"]}}"#
        ),
        format!(r#"{{"accessToken":"{BAD_SECRET}","refreshToken":"{BAD_REFRESH}","region":7}}"#),
        format!("clientSecret={BAD_SECRET}\nrefreshToken={BAD_REFRESH}\n"),
    ];
    for (i, text) in bad.iter().enumerate() {
        let file = t.path().join(format!("bad{i}.json"));
        std::fs::write(&file, text).unwrap();
        let file = file.display().to_string();
        outs.cli(&t, &["-vv", "accounts", "import", &file], &fake);
        outs.cli(&t, &["accounts", "import", "--skip-invalid", &file], &fake);
    }

    // The server, at trace level, with the seed account from the environment.
    let server = Server::start_with(
        &t,
        &fake,
        &[
            ("RUST_LOG", "trace"),
            ("AMAZONQ_REFRESH_TOKEN", SEED_REFRESH),
            ("AMAZONQ_CLIENT_ID", SEED_CLIENT),
            ("AMAZONQ_CLIENT_SECRET", SEED_SECRET),
        ],
    );
    let url = |path: &str| format!("{}{path}", server.url);
    let claude = |stream: bool| {
        json!({"model": "claude-sonnet-4-5", "max_tokens": 20, "stream": stream,
               "messages": [{"role": "user", "content": "hello"}]})
        .to_string()
    };
    let openai = |stream: bool| {
        json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": "hello"}]})
            .to_string()
    };
    let bearer = format!("Bearer {user}");
    let as_user = [("x-api-key", user.as_str())];
    let as_user_bearer = [("authorization", bearer.as_str())];
    // Both APIs, streamed and not, with the key in either header.
    for (what, path, body, headers) in [
        ("claude stream", "/v1/messages", claude(true), &as_user),
        ("claude", "/v1/messages", claude(false), &as_user_bearer),
        (
            "openai stream",
            "/v1/chat/completions",
            openai(true),
            &as_user_bearer,
        ),
        ("openai", "/v1/chat/completions", openai(false), &as_user),
    ] {
        let r = http("POST", &url(path), headers, Some(&body));
        assert_eq!(outs.response(what, &r), 200, "{what}: {}", r.body);
    }
    // A refused access token: the server refreshes it and retries.
    let refreshes = fake.token_calls();
    fake.revoke_access_tokens();
    let r = http("POST", &url("/v1/messages"), &as_user, Some(&claude(false)));
    assert_eq!(
        outs.response("after revoking the access tokens", &r),
        200,
        "{}",
        r.body
    );
    assert!(fake.token_calls() > refreshes, "no token refresh happened");
    // Failing requests: upstream errors, streamed and not, and bad input.
    fake.push_reply(Reply::Error(QError::InputTooLong));
    let r = http("POST", &url("/v1/messages"), &as_user, Some(&claude(true)));
    assert_eq!(outs.response("input too long", &r), 400, "{}", r.body);
    fake.push_reply(Reply::Error(QError::InvalidCredential));
    let r = http(
        "POST",
        &url("/v1/chat/completions"),
        &as_user,
        Some(&openai(false)),
    );
    outs.response("invalid credential", &r);
    let r = http("POST", &url("/v1/messages"), &as_user, Some("{not json"));
    assert_eq!(outs.response("bad JSON", &r), 400);
    // Wrong keys, in both headers and on both APIs: never echoed.
    let wrong_bearer = format!("Bearer {WRONG_KEY}");
    for (path, headers) in [
        ("/v1/messages", [("x-api-key", WRONG_KEY)]),
        (
            "/v1/chat/completions",
            [("authorization", wrong_bearer.as_str())],
        ),
    ] {
        let r = http("POST", &url(path), &headers, Some(&claude(false)));
        assert_eq!(outs.response("wrong key", &r), 401);
    }
    let r = http(
        "POST",
        &url("/v1/messages/count_tokens"),
        &as_user,
        Some(&claude(false)),
    );
    assert_eq!(outs.response("count_tokens", &r), 200);
    let r = http("GET", &url("/v1/models"), &as_user, None);
    assert_eq!(outs.response("models", &r), 200);
    // /health, /metrics (admin, and refused for the user and a wrong key).
    let r = http("GET", &url("/health"), &[], None);
    assert_eq!(outs.response("health", &r), 200);
    let r = http("GET", &url("/metrics"), &[("x-api-key", &admin)], None);
    assert_eq!(outs.response("metrics", &r), 200);
    let r = http("GET", &url("/metrics"), &as_user, None);
    assert_eq!(outs.response("metrics as user", &r), 403);
    let r = http("GET", &url("/metrics"), &[("x-api-key", WRONG_KEY)], None);
    assert_eq!(outs.response("metrics with a wrong key", &r), 401);
    // The dashboard: refused logins, then the admin's session and pages.
    for key in [user.as_str(), WRONG_KEY] {
        let r = login(&server, key);
        outs.response("refused login", &r);
        assert!(session_of(&r).is_none());
    }
    let r = call("GET", &url("/admin/login"), &[], None);
    assert_eq!(outs.response("login form", &r), 200);
    let mut r = login(&server, &admin);
    let session = session_of(&r).unwrap();
    // Its own `Set-Cookie` is the one place the session id may appear.
    r.headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("set-cookie"));
    assert_eq!(outs.response("admin login", &r), 303);
    let cookie = format!("amq2api_admin={session}");
    let r = call(
        "GET",
        &url("/admin/dashboard"),
        &[("cookie", &cookie)],
        None,
    );
    assert_eq!(outs.response("dashboard", &r), 200);
    assert!(r.body.contains("boss"), "{}", r.body);

    // The CLI while the server runs.
    for args in [
        &["accounts", "list"][..],
        &["accounts", "list", "--json"],
        &["-vv", "accounts", "list"],
        &["keys", "list"],
        &["keys", "list", "--json"],
        &["stats"],
        &["stats", "--json"],
        &["-vv", "accounts", "refresh", "--all"],
        &["keys", "revoke", "user"],
    ] {
        outs.cli(&t, args, &fake);
    }
    // The help and a usage error with the seed account's secrets in the environment.
    for args in [&["serve", "--help"][..], &["serve", "--port", "not-a-port"]] {
        let out = t
            .cmd()
            .env("AMAZONQ_REFRESH_TOKEN", SEED_REFRESH)
            .env("AMAZONQ_CLIENT_SECRET", SEED_SECRET)
            .args(args)
            .output()
            .unwrap();
        outs.add(
            format!("amq2api {args:?} with the seed in the environment"),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        );
    }
    let health = format!("{}/health", server.url);
    outs.cli(&t, &["healthcheck", "--url", &health], &fake);

    // Every secret the session held, including what the fake issued on the way.
    let mut secrets: Vec<(String, usize)> = [
        IDC_SECRET,
        IDC_REFRESH,
        DEAD_SECRET,
        DEAD_REFRESH,
        SEED_SECRET,
        SEED_REFRESH,
        BAD_SECRET,
        BAD_REFRESH,
        WRONG_KEY,
    ]
    .iter()
    .map(|s| (s.to_string(), 12))
    .collect();
    // Keys: their first 12 characters are the prefix `keys list` shows on purpose.
    secrets.extend([
        (user.clone(), 13),
        (admin.clone(), 13),
        (session.clone(), 12),
    ]);
    for i in [live, dead] {
        secrets.push((fake.current_refresh_token(i), 12));
    }
    let mut access: Vec<String> = fake
        .all_requests()
        .iter()
        .filter_map(|r| r.bearer().map(str::to_owned))
        .collect();
    access.sort();
    access.dedup();
    assert!(
        access.len() >= 2,
        "the session used {} access tokens",
        access.len()
    );
    secrets.extend(access.into_iter().map(|a| (a, 12)));
    let mut needles: Vec<String> = secrets
        .iter()
        .flat_map(|(s, head)| needles(s, *head))
        .collect();
    // Every access token the fake mints starts so.
    needles.push("AAAAAGfake".into());

    let mut server = server;
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).is_some());
    let log = server.log();
    assert!(log.contains(" TRACE "), "not a trace-level log");
    assert!(log.contains("refresh"), "no refresh in the log");
    outs.add("server log", log);

    if let Some(dump) = std::env::var_os("AMQ2API_SECURITY_DUMP") {
        let text: String = outs
            .0
            .iter()
            .map(|(w, t)| format!("=== {w}\n{t}\n"))
            .collect();
        std::fs::write(dump, text).unwrap();
    }
    let mut leaks = Vec::new();
    for (what, text) in &outs.0 {
        for needle in &needles {
            if text.contains(needle.as_str()) {
                let at = text.find(needle.as_str()).unwrap();
                let from = text[..at]
                    .char_indices()
                    .rev()
                    .nth(150)
                    .map_or(0, |(i, _)| i);
                let context: String = text[from..].chars().take(300).collect();
                leaks.push(format!("{needle:?} in {what}: …{context}…"));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// The database file
// ---------------------------------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn the_database_is_created_0600_by_serve_and_by_the_cli() {
    let check = |t: &TestDir, by: &str| {
        let db = t.db_path();
        assert_eq!(mode(&db), 0o600, "{by}: {}", db.display());
        // SQLite gives its WAL and shared-memory files the database file's mode.
        for suffix in ["db-wal", "db-shm"] {
            let side = db.with_extension(suffix);
            if side.exists() {
                assert_eq!(mode(&side), 0o600, "{by}: {}", side.display());
            }
        }
    };
    // `serve` on a fresh folder creates it (while it runs, the WAL files exist).
    let fake = FakeQ::start();
    let t = TestDir::new();
    assert!(!t.db_path().exists());
    let server = Server::start(&t, &fake);
    assert!(t.db_path().with_extension("db-wal").exists());
    check(&t, "serve");
    drop(server);
    // A CLI command on a fresh folder, even a read-only one.
    let t = TestDir::new();
    t.ok(&["keys", "list"]);
    check(&t, "keys list");
    let t = TestDir::new();
    t.ok(&["keys", "create", "--name", "first"]);
    check(&t, "keys create");
}

// ---------------------------------------------------------------------------------------------
// Admin-only routes
// ---------------------------------------------------------------------------------------------

#[test]
fn admin_only_routes_refuse_non_admin_keys() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let user = t
        .ok(&["keys", "create", "--name", "user"])
        .trim()
        .to_owned();
    let admin = t
        .ok(&["keys", "create", "--name", "boss", "--admin"])
        .trim()
        .to_owned();
    let server = Server::start(&t, &fake);
    let metrics = format!("{}/metrics", server.url);
    let error = |kind: &str, message: &str| json!({"type": "error", "error": {"type": kind, "message": message}});
    // /metrics without --metrics-public: no key, a wrong key, a user key (either header).
    let r = http("GET", &metrics, &[], None);
    assert_eq!(
        (r.status, r.json()),
        (
            401,
            error(
                "authentication_error",
                "missing API key: send it as x-api-key or Authorization: Bearer"
            )
        )
    );
    let r = http("GET", &metrics, &[("x-api-key", "sk-amq-not-a-key")], None);
    assert_eq!(
        (r.status, r.json()),
        (
            401,
            error(
                "authentication_error",
                "invalid, revoked or expired API key"
            )
        )
    );
    let refused = error(
        "permission_error",
        "/metrics needs an admin key (keys create --admin)",
    );
    let bearer = format!("Bearer {user}");
    for headers in [
        [("x-api-key", user.as_str())],
        [("authorization", bearer.as_str())],
    ] {
        let r = http("GET", &metrics, &headers, None);
        assert_eq!((r.status, r.json()), (403, refused.clone()));
    }
    let r = http("GET", &metrics, &[("x-api-key", &admin)], None);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("# TYPE amq2api_"), "{}", r.body);
    // The dashboard: a user key cannot sign in; without a session every page sends to the form.
    let r = login(&server, &user);
    assert_eq!(r.status, 403);
    assert!(r
        .body
        .contains("That key works for the API but is not an admin key."));
    assert_eq!(session_of(&r), None);
    for cookie in [None, Some("amq2api_admin=made-up-session-id")] {
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("cookie", *c)).collect();
        let r = call(
            "GET",
            &format!("{}/admin/dashboard", server.url),
            &headers,
            None,
        );
        assert_eq!(
            (r.status, r.header("location")),
            (303, Some("/admin/login"))
        );
    }
    // A user key as an API key is not a session either.
    let r = call(
        "GET",
        &format!("{}/admin/dashboard", server.url),
        &[("x-api-key", &user), ("authorization", &bearer)],
        None,
    );
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/admin/login"))
    );
    // The admin key signs in.
    assert_eq!(login(&server, &admin).status, 303);
}

// ---------------------------------------------------------------------------------------------
// Constant-time key comparison
// ---------------------------------------------------------------------------------------------

/// Keys are never compared as plain text: a presented key is hashed (SHA-256) and looked up by
/// its hash (in the server's key table, or by the indexed `key_hash` column for the dashboard
/// login), and the found hash is compared again with `same_hash`, which is `subtle`'s
/// constant-time equality. A timing test would be flaky on a shared machine; instead this
/// checks the function's answers and, in the source, that it is `ct_eq` and that both places
/// that accept a key use it, and that no `key_hash` is compared with `==`.
#[test]
fn keys_are_compared_in_constant_time() {
    use amq2api::http::auth::same_hash;
    assert!(same_hash("ab12", "ab12"));
    assert!(!same_hash("ab12", "ab13"));
    assert!(!same_hash("ab12", "ab123"));
    assert!(!same_hash("", "a"));
    let src = |rel: &str| {
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
    };
    let auth = src("src/http/auth.rs");
    let body = auth
        .split("pub fn same_hash(a: &str, b: &str) -> bool {")
        .nth(1)
        .expect("same_hash in src/http/auth.rs")
        .split("\n}")
        .next()
        .unwrap();
    assert_eq!(body.trim(), "a.as_bytes().ct_eq(b.as_bytes()).into()");
    assert!(auth.contains("use subtle::ConstantTimeEq;"));
    assert!(auth.contains("Some(h) if same_hash(h.as_str(), &entry.key.key_hash) => {}"));
    assert!(src("src/http/admin/mod.rs")
        .contains("Ok(key.filter(|k| same_hash(hash.as_str(), &k.key_hash)))"));
    // Nowhere else is a key hash compared with `==` / `!=`.
    let mut stack = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text.lines().filter(|l| l.contains("key_hash")) {
                    assert!(
                        !line.contains("==") && !line.contains("!="),
                        "{}: {line}",
                        path.display()
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loopback by default
// ---------------------------------------------------------------------------------------------

/// The listening sockets on `port` in /proc/net/tcp or tcp6, as (local address hex, state).
fn listeners(table: &str, port: u16) -> Vec<String> {
    let text = std::fs::read_to_string(table).unwrap_or_default();
    let port = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            // sl, local_address, rem_address, st: 0A = LISTEN.
            (fields.get(1)?.ends_with(&port) && *fields.get(3)? == "0A")
                .then(|| fields[1].to_owned())
        })
        .collect()
}

#[test]
fn serve_listens_on_loopback_only_by_default() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    // `Server::start` passes no --host, and the environment is cleared (no HOST).
    let server = Server::start(&t, &fake);
    let port: u16 = server
        .url
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("listening on {}", server.url))
        .parse()
        .unwrap();
    // The reader thread hands over the address before it appends the line to the log.
    let line = format!("listening on http://127.0.0.1:{port}\n");
    crate::support::eventually("the listening line", Duration::from_secs(10), || {
        server.log().contains(&line).then_some(())
    });
    assert_eq!(server.log().matches("listening on ").count(), 1);
    if std::path::Path::new("/proc/net/tcp").exists() {
        assert_eq!(
            listeners("/proc/net/tcp", port),
            [format!("0100007F:{port:04X}")]
        );
        assert_eq!(listeners("/proc/net/tcp6", port), Vec::<String>::new());
    }
    // The documented default, in the help.
    let help = t.ok(&["serve", "--help"]);
    assert!(help.contains("[default: 127.0.0.1]"), "{help}");
}

// ---------------------------------------------------------------------------------------------
// Dashboard headers
// ---------------------------------------------------------------------------------------------

#[test]
fn dashboard_pages_carry_the_exact_security_headers() {
    use base64::Engine;
    use sha2::Digest;
    let fake = FakeQ::start();
    let t = TestDir::new();
    let admin = t
        .ok(&["keys", "create", "--name", "boss", "--admin"])
        .trim()
        .to_owned();
    let server = Server::start(&t, &fake);
    let page = call("GET", &format!("{}/admin/login", server.url), &[], None);
    assert_eq!(page.status, 200);
    // The CSP allows exactly the page's one inline stylesheet, by its hash.
    let style = page
        .body
        .split("<style>")
        .nth(1)
        .and_then(|s| s.split("</style>").next())
        .expect("an inline stylesheet");
    assert_eq!(page.body.matches("<style").count(), 1);
    assert!(!page.body.contains("<script"));
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(style));
    let csp = format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let session = session_of(&login(&server, &admin)).unwrap();
    let cookie = format!("amq2api_admin={session}");
    let url = |p: &str| format!("{}{p}", server.url);
    let pages = [
        ("GET /admin/login", page),
        (
            "GET /admin/dashboard",
            call(
                "GET",
                &url("/admin/dashboard"),
                &[("cookie", &cookie)],
                None,
            ),
        ),
        (
            "GET /admin (redirect)",
            call("GET", &url("/admin"), &[], None),
        ),
        (
            "GET /admin/dashboard without a session",
            call("GET", &url("/admin/dashboard"), &[], None),
        ),
        ("wrong key", login(&server, "sk-amq-wrong")),
        (
            "GET /admin/nothing",
            call("GET", &url("/admin/nothing"), &[], None),
        ),
        (
            "GET /admin/logout",
            call("GET", &url("/admin/logout"), &[], None),
        ),
    ];
    let statuses: Vec<u16> = pages.iter().map(|(_, r)| r.status).collect();
    assert_eq!(statuses, [200, 200, 303, 303, 401, 404, 405]);
    for (what, r) in &pages {
        let one = |name: &str| {
            let all: Vec<&str> = r
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(all.len(), 1, "{what}: {name}: {all:?}");
            all[0].to_owned()
        };
        assert_eq!(one("content-security-policy"), csp, "{what}");
        assert_eq!(one("x-frame-options"), "DENY", "{what}");
        assert_eq!(one("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(one("referrer-policy"), "no-referrer", "{what}");
        assert_eq!(one("cache-control"), "no-store", "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// Upstream injection
// ---------------------------------------------------------------------------------------------

/// Headers whose value differs per request by design.
const PER_REQUEST: &[&str] = &["amz-sdk-invocation-id", "content-length", "date"];

/// The fake's one recorded chat request since the last clear.
fn only_request(fake: &FakeQ) -> crate::support::fake_q::Recorded {
    let mut all = fake.all_requests();
    assert_eq!(all.len(), 1, "{all:#?}");
    all.pop().unwrap()
}

fn fixed_headers(r: &crate::support::fake_q::Recorded) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| !PER_REQUEST.contains(&k.as_str()))
        .cloned()
        .collect();
    h.sort();
    h
}

#[test]
fn a_request_cannot_steer_the_upstream_url_or_headers() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = crate::support::account_and_key(&t, &fake);
    let server = Server::start(&t, &fake);
    let upstream_host = fake.api_url();
    let upstream_host = upstream_host
        .trim_start_matches("http://")
        .trim_end_matches('/');

    // The baseline: a plain request, and what the fake received.
    let plain = json!({"model": "claude-sonnet-4-5", "max_tokens": 20,
                       "messages": [{"role": "user", "content": "hello"}]});
    let r = http(
        "POST",
        &format!("{}/v1/messages", server.url),
        &[("x-api-key", &key)],
        Some(&plain.to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let base = only_request(&fake);
    assert_eq!(
        (
            base.method.as_str(),
            base.path.as_str(),
            base.query.as_str()
        ),
        ("POST", "/", "")
    );
    assert_eq!(base.header("host"), Some(upstream_host));
    let ours = fixed_headers(&base);
    let names: Vec<&str> = ours.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "accept",
            "accept-encoding",
            "amz-sdk-request",
            "authorization",
            "content-type",
            "host",
            "user-agent",
            "x-amz-target",
            "x-amz-user-agent",
            "x-amzn-codewhisperer-optout"
        ],
        "upstream headers: {ours:?}"
    );
    assert_eq!(
        base.header("x-amz-target"),
        Some("AmazonCodeWhispererStreamingService.GenerateAssistantResponse")
    );
    assert_eq!(base.header("x-amzn-codewhisperer-optout"), Some("true"));
    assert!(base
        .bearer()
        .is_some_and(|b| b.starts_with("aoaAAAAAGfake")));

    // Headers a client might try: another host, Amazon's own headers, a second authorization,
    // header lines smuggled after a value (a raw CRLF is a new header line on the wire), and
    // forwarding headers.
    let evil_headers = [
        "host: evil.example",
        "x-forwarded-host: evil.example",
        "forwarded: host=evil.example;proto=http",
        "x-amz-target: AmazonCodeWhispererStreamingService.EvilOperation",
        "x-amzn-codewhisperer-optout: false",
        "x-amzn-codewhisperer-profile-arn: arn:aws:evil",
        "x-amzn-kiro-agent-mode: evil",
        "x-amz-user-agent: evil-agent",
        "x-amz-security-token: evil-token",
        "amz-sdk-request: attempt=9; max=9; evil",
        "authorization: AWS4-HMAC-SHA256 Credential=evil",
        "anthropic-beta: tools-2024-04-04\r\nx-evil-injected: 1",
        "user-agent: evil-agent\r\nx-amz-target: EvilOperation",
        "accept: text/evil",
        "anthropic-version: 2023-06-01",
    ]
    .join("\r\n");
    let metadata = json!({"user_id": "http://evil.example/\r\nx-evil-injected: 1"});
    let claude_bodies = [
        json!({"model": "claude-sonnet-4-5", "max_tokens": 20, "metadata": metadata,
               "base_url": "http://evil.example", "api_base": "http://evil.example",
               "endpoint": "http://evil.example", "url": "http://evil.example",
               "headers": {"x-amz-target": "evil"}, "extra_headers": {"x-evil-injected": "1"},
               "profileArn": "arn:aws:evil", "conversationState": {"evil": true},
               "messages": [{"role": "user", "content": "hello"}]}),
        json!({"model": "http://evil.example/v1", "max_tokens": 20,
               "messages": [{"role": "user", "content": "hello"}]}),
        json!({"model": "claude-sonnet-4-5\r\nx-evil-injected: 1", "max_tokens": 20,
               "messages": [{"role": "user", "content": "hello"}]}),
    ];
    let openai_bodies = [
        json!({"model": "gpt-4o", "user": "evil\r\nx-evil-injected: 1",
               "base_url": "http://evil.example", "api_base": "http://evil.example",
               "extra_headers": {"x-amz-target": "evil"}, "extra_body": {"profileArn": "arn:aws:evil"},
               "metadata": {"url": "http://evil.example"},
               "messages": [{"role": "user", "content": "hello"}]}),
        json!({"model": "http://evil.example/v1",
               "messages": [{"role": "user", "content": "hello"}]}),
    ];
    let mut cases: Vec<(String, String)> = Vec::new();
    for b in &claude_bodies {
        for target in [
            "/v1/messages",
            "/v1/messages?url=http://evil.example&endpoint=evil",
            "http://evil.example/v1/messages",
        ] {
            cases.push((target.to_owned(), b.to_string()));
        }
    }
    for b in &openai_bodies {
        cases.push((
            "/v1/chat/completions?base_url=http://evil.example".to_owned(),
            b.to_string(),
        ));
        cases.push(("/v1/chat/completions".to_owned(), b.to_string()));
    }
    for stream in [false, true] {
        for (target, body) in &cases {
            let mut body: serde_json::Value = serde_json::from_str(body).unwrap();
            body["stream"] = json!(stream);
            let body = body.to_string();
            fake.clear_requests();
            let head = format!("POST {target} HTTP/1.1\r\n{evil_headers}\r\nx-api-key: {key}\r\ncontent-type: application/json");
            let (status, answer) = raw(&server.url, &head, &body);
            let what = format!("{target} stream={stream} {body}");
            if body.contains("\\r\\n") && body.contains("claude-sonnet-4-5\\r") {
                // A control character in the model name is bad input: refused, nothing sent.
                assert_eq!(status, 400, "{what}\n{answer}");
                let error = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
                assert_eq!(
                    serde_json::from_str::<serde_json::Value>(error).ok(),
                    Some(
                        json!({"type": "error", "error": {"type": "invalid_request_error",
                        "message": "model: \"claude-sonnet-4-5\\r\\nx-evil-injected: 1\" is not a model name"}})
                    ),
                    "{what}\n{answer}"
                );
                assert!(fake.all_requests().is_empty(), "{what}");
                continue;
            }
            assert_eq!(status, 200, "{what}\n{answer}");
            let got = only_request(&fake);
            assert_eq!(
                (got.method.as_str(), got.path.as_str(), got.query.as_str()),
                ("POST", "/", ""),
                "{what}"
            );
            assert_eq!(fixed_headers(&got), ours, "{what}");
            assert_eq!(got.bearer(), base.bearer(), "{what}");
            let sent = String::from_utf8_lossy(&got.raw_body).to_ascii_lowercase();
            assert!(!sent.contains("evil"), "{what}: upstream body {sent}");
            assert!(
                got.model_id().is_some_and(|m| m.starts_with("claude-")),
                "{what}"
            );
        }
    }
}
