//! Clients that misbehave: one that leaves mid-stream (we stop reading from Amazon Q at once and
//! record the usage so far), one that reads very slowly (bounded memory, backpressure reaches
//! Amazon Q), and slow-loris requests (headers or body that never complete time out).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::fake_q::{FakeQ, ReplyProgress, Script};
use crate::support::{account_and_key, eventually, Server, TestDir};

const CLAUDE_STREAM: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"x"}]}"#;
const OPENAI_STREAM: &str =
    r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"x"}]}"#;

/// `POST path` with `body` as raw HTTP/1.1 bytes.
fn request(path: &str, key: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.url.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// Reads into `got` until it contains `needle`; panics after `within`.
fn read_until(stream: &mut TcpStream, got: &mut Vec<u8>, needle: &str, within: Duration) {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 16 * 1024];
    while !crate::support::contains(got, needle.as_bytes()) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} within {within:?}; got: {}",
            String::from_utf8_lossy(got)
        );
        let n = stream.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed before {needle:?}: {}",
            String::from_utf8_lossy(got)
        );
        got.extend_from_slice(&buf[..n]);
    }
}

fn usage_rows(t: &TestDir, n: usize) -> Vec<amq2api::db::usage::UsageRecord> {
    eventually("the usage rows", Duration::from_secs(10), || {
        let rows = amq2api::db::usage::list_since(&mut t.pool().get().unwrap(), 0).unwrap();
        (rows.len() >= n).then_some(rows)
    })
}

/// The one reply the fake served, once the gateway has closed its connection.
fn upstream_closed(fake: &FakeQ, within: Duration) -> ReplyProgress {
    eventually("the gateway closing its upstream connection", within, || {
        let progress = fake.reply_progress();
        assert_eq!(progress.len(), 1, "{progress:?}");
        progress[0].peer_closed.is_some().then(|| progress[0].clone())
    })
}

/// A client that leaves while Amazon Q is silent: the gateway closes its upstream connection at
/// once (not at the next ping or event) and records the usage so far.
fn leaving_during_a_silence(path: &str, body: &str, first: &str) {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let server = Server::start(&t, &fake);
    fake.push_reply(
        Script::new()
            .metadata()
            .text("before")
            .delay(Duration::from_secs(10))
            .text(" after")
            .end()
            .reply(),
    );
    let mut client = connect(&server);
    client
        .write_all(request(path, &key, body).as_bytes())
        .unwrap();
    let mut got = Vec::new();
    read_until(&mut client, &mut got, first, Duration::from_secs(10));
    let left = Instant::now();
    drop(client);
    let reply = upstream_closed(&fake, Duration::from_secs(5));
    let after = reply.peer_closed.unwrap().duration_since(left);
    eprintln!("client close -> upstream close: {after:?}");
    assert!(after < Duration::from_secs(1), "{after:?}");
    assert!(reply.finished.is_none());
    let rows = usage_rows(&t, 1);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.endpoint.as_str(), row.stream, row.status),
        (path, true, 200)
    );
    assert_eq!(row.error_class.as_deref(), Some("client_disconnected"));
    assert_eq!(
        row.output_tokens,
        amq2api::tokens::count("before") as i64,
        "{row:?}"
    );
    // The server goes on serving.
    let r = crate::support::http(
        "POST",
        &format!("{}{path}", server.url),
        &[("x-api-key", &key)],
        Some(body),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn a_claude_client_leaving_during_a_silence_closes_the_upstream_at_once() {
    leaving_during_a_silence("/v1/messages", CLAUDE_STREAM, r#""text":"before""#);
}

#[test]
fn an_openai_client_leaving_during_a_silence_closes_the_upstream_at_once() {
    leaving_during_a_silence("/v1/chat/completions", OPENAI_STREAM, r#""content":"before""#);
}

#[test]
fn a_client_leaving_while_a_whole_answer_is_collected_closes_the_upstream_and_is_recorded() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let server = Server::start(&t, &fake);
    fake.push_reply(
        Script::new()
            .metadata()
            .text("before")
            .delay(Duration::from_secs(10))
            .text(" after")
            .end()
            .reply(),
    );
    let mut client = connect(&server);
    let body = CLAUDE_STREAM.replace(r#""stream":true"#, r#""stream":false"#);
    client
        .write_all(request("/v1/messages", &key, &body).as_bytes())
        .unwrap();
    eventually("the first event", Duration::from_secs(10), || {
        let progress = fake.reply_progress();
        (progress.len() == 1 && progress[0].bytes_sent > 0).then_some(())
    });
    let left = Instant::now();
    drop(client);
    let reply = upstream_closed(&fake, Duration::from_secs(5));
    let after = reply.peer_closed.unwrap().duration_since(left);
    assert!(after < Duration::from_secs(1), "{after:?}");
    let rows = usage_rows(&t, 1);
    let row = &rows[0];
    assert_eq!(
        (row.stream, row.status, row.error_class.as_deref()),
        (false, 499, Some("client_disconnected")),
        "{row:?}"
    );
    assert_eq!(row.account_name.as_deref(), Some("one"));
    assert_eq!(row.output_tokens, amq2api::tokens::count("before") as i64);
}

#[test]
fn a_client_leaving_before_amazon_q_answers_is_recorded() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let server = Server::start(&t, &fake);
    fake.push_reply(crate::support::fake_q::Reply::delayed(
        Duration::from_secs(5),
        crate::support::fake_q::Reply::default_text(),
    ));
    let mut client = connect(&server);
    client
        .write_all(request("/v1/messages", &key, CLAUDE_STREAM).as_bytes())
        .unwrap();
    eventually("the request at the fake", Duration::from_secs(10), || {
        (fake.chat_calls() == 1).then_some(())
    });
    drop(client);
    let rows = usage_rows(&t, 1);
    let row = &rows[0];
    assert_eq!(
        (row.stream, row.status, row.error_class.as_deref()),
        (true, 499, Some("client_disconnected")),
        "{row:?}"
    );
    assert_eq!(row.output_tokens, 0);
    assert!(row.input_tokens > 0, "{row:?}");
}
