//! Usage accounting against the real server: one exact row per request (streamed,
//! non-streamed, failing, abandoned by the client mid-stream), rows written while another
//! process holds the database locked without slowing requests, and `/metrics` (admin-only unless
//! `--metrics-public`, every family with HELP and TYPE, counters moving by the expected amounts).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use serde_json::json;

use crate::support::fake_q::{FakeQ, QError, Reply, Script};
use crate::support::{account_and_key, http, Server, TestDir};

fn rows(t: &TestDir) -> Vec<amq2api::db::usage::UsageRecord> {
    amq2api::db::usage::list_since(&mut t.pool().get().unwrap(), 0).unwrap()
}

/// Polls until the usage log has `n` rows.
fn wait_rows(t: &TestDir, n: usize, within: Duration) -> Vec<amq2api::db::usage::UsageRecord> {
    let deadline = Instant::now() + within;
    loop {
        let got = rows(t);
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

const STREAM: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hello world"}]}"#;
const PLAIN: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hello world"}]}"#;

/// Sends a streaming request over a raw socket, reads until `until` shows up, then hangs up.
fn abandon_stream(url: &str, key: &str, until: &str) {
    let mut sock = std::net::TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    write!(
        sock,
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{STREAM}",
        STREAM.len()
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(until) {
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    drop(sock);
}

#[test]
fn one_exact_row_per_request_including_an_abandoned_stream() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let server = Server::start(&t, &fake);
    let post = |path: &str, body: &str| {
        http(
            "POST",
            &format!("{}{path}", server.url),
            &[("x-api-key", &key)],
            Some(body),
        )
    };
    fake.push_reply(Script::new().metadata().texts(&["Hel", "lo"]).end().reply());
    assert_eq!(post("/v1/messages", STREAM).status, 200);
    fake.push_reply(Script::new().texts(&["Hi"]).end().reply());
    assert_eq!(
        post(
            "/v1/chat/completions",
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello world"}]}"#
        )
        .status,
        200
    );
    fake.push_reply(Reply::Error(QError::InputTooLong));
    assert_eq!(post("/v1/messages", PLAIN).status, 400);
    assert_eq!(wait_rows(&t, 3, Duration::from_secs(5)).len(), 3);
    // The client hangs up after the first delta while Amazon Q is silent, and the answer goes
    // on: the row is written when a write finds the connection gone, with what was sent so far.
    let mut script = Script::new()
        .text("partial answer")
        .delay(Duration::from_millis(500));
    for _ in 0..100 {
        script = script.text(" more").delay(Duration::from_millis(20));
    }
    fake.push_reply(script.end().reply());
    abandon_stream(&server.url, &key, "partial answer");
    let all = wait_rows(&t, 4, Duration::from_secs(5));
    assert_eq!(all.len(), 4);
    let summary: Vec<_> = all
        .iter()
        .map(|r| {
            (
                r.endpoint.as_str(),
                r.model_requested.as_str(),
                r.model_upstream.as_deref(),
                r.stream,
                r.status,
                r.error_class.as_deref(),
                r.account_name.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "/v1/messages",
                "claude-sonnet-4-5",
                Some("claude-sonnet-4.5"),
                true,
                200,
                None,
                Some("one")
            ),
            (
                "/v1/chat/completions",
                "gpt-4o",
                Some("claude-sonnet-4.5"),
                false,
                200,
                None,
                Some("one")
            ),
            // No account served it.
            (
                "/v1/messages",
                "claude-sonnet-4-5",
                Some("claude-sonnet-4.5"),
                false,
                400,
                Some("input_too_long"),
                None
            ),
            (
                "/v1/messages",
                "claude-sonnet-4-5",
                Some("claude-sonnet-4.5"),
                true,
                200,
                Some("client_disconnected"),
                Some("one")
            ),
        ]
    );
    // Token figures: Amazon Q's own input figure when it sent one (metadata), the estimate
    // otherwise; output counted from what was sent.
    let tokens: Vec<(i64, i64)> = all
        .iter()
        .map(|r| (r.input_tokens, r.output_tokens))
        .collect();
    assert_eq!(tokens[0].1, 1, "{tokens:?}");
    assert_eq!(tokens[3].0, tokens[2].0, "{tokens:?}");
    assert!(tokens[3].1 >= 2 && tokens[3].1 < 100, "{tokens:?}");
    assert!(all
        .iter()
        .all(|r| r.api_key_id.is_some() && r.latency_ms >= 0));
    assert!(all[0].ttfb_ms.is_some() && all[2].ttfb_ms.is_none());
}

#[test]
fn requests_do_not_wait_for_a_locked_database() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let server = Server::start(&t, &fake);
    let post = || {
        http(
            "POST",
            &format!("{}/v1/messages", server.url),
            &[("x-api-key", &key)],
            Some(PLAIN),
        )
    };
    // Warm up: the access token is fetched and stored, the key's last use written.
    fake.set_default_reply(Script::new().texts(&["ok"]).end().reply());
    let warm = Instant::now();
    assert_eq!(post().status, 200);
    let warm = warm.elapsed();
    assert_eq!(wait_rows(&t, 1, Duration::from_secs(5)).len(), 1);
    // Another process (this one) holds the write lock for 3 s.
    let mut locker = diesel::SqliteConnection::establish(t.db_path().to_str().unwrap()).unwrap();
    diesel::sql_query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .unwrap();
    let locked = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(post().status, 200);
        slowest = slowest.max(started.elapsed());
    }
    let during = locked.elapsed();
    assert!(
        during < Duration::from_secs(2),
        "requests waited on the lock: {during:?}"
    );
    let written: i64 = amq2api::db::schema::usage_log::table
        .count()
        .get_result(&mut locker)
        .unwrap();
    assert_eq!(written, 1, "nothing can be written while the lock is held");
    std::thread::sleep(Duration::from_secs(3).saturating_sub(locked.elapsed()));
    diesel::sql_query("COMMIT").execute(&mut locker).unwrap();
    let all = wait_rows(&t, 6, Duration::from_secs(10));
    assert_eq!(all.len(), 6, "{}", server.log());
    eprintln!("first request {warm:?}; slowest while locked {slowest:?}");
}

/// `name{labels} value` samples of an exposition, and the families that have HELP and TYPE.
fn parse_metrics(text: &str) -> (HashMap<String, f64>, Vec<String>, Vec<String>) {
    let mut samples = HashMap::new();
    let (mut help, mut types) = (Vec::new(), Vec::new());
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help.push(rest.split(' ').next().unwrap().to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            types.push(rest.split(' ').next().unwrap().to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            let (name, value) = line.rsplit_once(' ').unwrap();
            samples.insert(name.to_owned(), value.parse().unwrap());
        }
    }
    (samples, help, types)
}

#[test]
fn metrics_are_admin_only_and_count_what_happened() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let admin = t
        .ok(&["keys", "create", "--name", "ops", "--admin"])
        .trim()
        .to_owned();
    let server = Server::start(&t, &fake);
    let url = format!("{}/metrics", server.url);
    let r = http("GET", &url, &[], None);
    assert_eq!(r.status, 401);
    let r = http("GET", &url, &[("x-api-key", &key)], None);
    assert_eq!(
        (r.status, r.json()),
        (
            403,
            json!({"type": "error", "error": {"type": "permission_error", "message": "/metrics needs an admin key (keys create --admin)"}})
        )
    );
    let post = |path: &str, body: &str| {
        http(
            "POST",
            &format!("{}{path}", server.url),
            &[("x-api-key", &key)],
            Some(body),
        )
    };
    fake.push_reply(Script::new().texts(&["a b c"]).end().reply());
    post("/v1/messages", STREAM);
    fake.push_reply(Script::new().texts(&["d"]).end().reply());
    post("/v1/messages", PLAIN);
    fake.push_reply(Reply::Error(QError::InputTooLong));
    post("/v1/messages", PLAIN);
    fake.push_reply(Script::new().texts(&["e"]).end().reply());
    post(
        "/v1/chat/completions",
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}"#,
    );
    wait_rows(&t, 4, Duration::from_secs(5));
    let bearer = format!("Bearer {admin}");
    let r = http("GET", &url, &[("authorization", &bearer)], None);
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let (samples, help, types) = parse_metrics(&r.body);
    // Every sample belongs to a family with HELP and TYPE.
    for name in samples.keys() {
        let base = name.split('{').next().unwrap();
        let family = ["_total", "_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| {
                base.strip_suffix(s)
                    .filter(|f| types.iter().any(|t| t == f))
            })
            .unwrap_or(base);
        assert!(types.iter().any(|t| t == family), "no TYPE for {name}");
        assert!(help.iter().any(|h| h == family), "no HELP for {name}");
    }
    let get = |k: &str| {
        samples
            .get(k)
            .copied()
            .unwrap_or_else(|| panic!("no sample {k} in\n{}", r.body))
    };
    assert_eq!(
        get(
            r#"amq2api_requests_total{endpoint="/v1/messages",model="claude-sonnet-4.5",status="200"}"#
        ),
        2.0
    );
    assert_eq!(
        get(
            r#"amq2api_requests_total{endpoint="/v1/messages",model="claude-sonnet-4.5",status="400"}"#
        ),
        1.0
    );
    assert_eq!(
        get(
            r#"amq2api_requests_total{endpoint="/v1/chat/completions",model="claude-sonnet-4.5",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        get(r#"amq2api_upstream_errors_total{class="input_too_long"}"#),
        1.0
    );
    assert_eq!(get(r#"amq2api_token_refreshes_total{result="ok"}"#), 1.0);
    assert_eq!(get(r#"amq2api_accounts{state="active"}"#), 1.0);
    assert_eq!(get(r#"amq2api_accounts{state="disabled"}"#), 0.0);
    assert_eq!(get(r#"amq2api_usage_rows_dropped_total"#), 0.0);
    assert_eq!(
        get(r#"amq2api_request_duration_seconds_count{endpoint="/v1/messages"}"#),
        3.0
    );
    assert_eq!(
        get(r#"amq2api_time_to_first_byte_seconds_count{endpoint="/v1/messages"}"#),
        2.0
    );
    let out = get(r#"amq2api_tokens_total{direction="output",model="claude-sonnet-4.5"}"#);
    let db_out: i64 = rows(&t).iter().map(|r| r.output_tokens).sum();
    assert_eq!(out, db_out as f64);
    // The metrics never carry a secret.
    for secret in [
        key.as_str(),
        admin.as_str(),
        "aorFAKE-refresh-1",
        "eyJFAKE-secret-1",
    ] {
        assert!(!r.body.contains(secret));
    }
    drop(server);
    // --metrics-public: no key needed.
    let server = Server::start_with(&t, &fake, &[("AMQ2API_METRICS_PUBLIC", "true")]);
    assert_eq!(
        http("GET", &format!("{}/metrics", server.url), &[], None).status,
        200
    );
}
