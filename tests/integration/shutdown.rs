//! Graceful shutdown of the real `serve` process: on SIGTERM no new connections are accepted,
//! in-flight streams finish (or, past the grace period, end with an error event in their
//! protocol), their usage rows are written, and the process exits 0.

use std::time::{Duration, Instant};

use crate::support::fake_q::{FakeQ, Script};
use crate::support::{account_and_key, http, Response, Server, TestDir};

/// Starts a streaming request on a thread and waits until the fake has it.
fn stream_in_background(
    server: &Server,
    fake: &FakeQ,
    key: &str,
    path: &'static str,
    body: &'static str,
) -> std::thread::JoinHandle<Response> {
    let url = format!("{}{path}", server.url);
    let key = key.to_owned();
    let handle = std::thread::spawn(move || http("POST", &url, &[("x-api-key", &key)], Some(body)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.requests().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the request never reached the fake"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    handle
}

fn refuses_connections(url: &str) -> bool {
    let addr = url.trim_start_matches("http://");
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn sigterm_lets_a_stream_finish_then_exits_0() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let mut server = Server::start_with(&t, &fake, &[("AMQ2API_SHUTDOWN_TIMEOUT", "10")]);
    fake.push_reply(
        Script::new()
            .text("before")
            .delay(Duration::from_millis(1500))
            .text(" after")
            .end()
            .reply(),
    );
    let stream = stream_in_background(
        &server,
        &fake,
        &key,
        "/v1/messages",
        r#"{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"x"}]}"#,
    );
    let signalled = Instant::now();
    server.signal("TERM");
    assert!(
        refuses_connections(&server.url),
        "still accepting connections"
    );
    let r = stream.join().unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.contains(r#""text":" after""#), "{}", r.body);
    assert!(
        r.body
            .ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        "{}",
        r.body
    );
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("serve did not exit within the grace period");
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(signalled.elapsed() < Duration::from_secs(10));
    let rows = amq2api::db::usage::list_since(&mut t.pool().get().unwrap(), 0).unwrap();
    assert_eq!(rows.len(), 1, "{}", server.log());
    assert_eq!(
        (rows[0].status, rows[0].error_class.as_deref()),
        (200, None)
    );
    assert!(
        server.log().contains("SIGTERM: shutting down"),
        "{}",
        server.log()
    );
}

#[test]
fn a_stream_longer_than_the_grace_period_ends_with_an_error_event() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let mut server = Server::start_with(&t, &fake, &[("AMQ2API_SHUTDOWN_TIMEOUT", "1")]);
    fake.push_reply(
        Script::new()
            .text("before")
            .delay(Duration::from_secs(8))
            .text(" never")
            .end()
            .reply(),
    );
    let stream = stream_in_background(
        &server,
        &fake,
        &key,
        "/v1/chat/completions",
        r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"x"}]}"#,
    );
    std::thread::sleep(Duration::from_millis(200));
    server.signal("TERM");
    let r = stream.join().unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body.contains(r#""content":"before""#), "{}", r.body);
    assert!(
        r.body.ends_with("data: {\"error\":{\"code\":\"shutting_down\",\"message\":\"the server is shutting down; retry the request\",\"param\":null,\"type\":\"server_error\"}}\n\ndata: [DONE]\n\n"),
        "{}",
        r.body
    );
    let status = server
        .wait_exit(Duration::from_secs(8))
        .expect("serve did not exit");
    assert_eq!(status.code(), Some(0), "{}", server.log());
    let rows = amq2api::db::usage::list_since(&mut t.pool().get().unwrap(), 0).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].status, rows[0].error_class.as_deref()),
        (503, Some("shutting_down"))
    );
}
