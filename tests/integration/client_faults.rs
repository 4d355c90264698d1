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
    let mut buf = [0u8; 64 * 1024];
    // Only the new bytes (and a needle's length before them) are searched: `got` may be large.
    let mut searched = 0;
    while !crate::support::contains(&got[searched..], needle.as_bytes()) {
        searched = got.len().saturating_sub(needle.len());
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
    eventually(
        "the gateway closing its upstream connection",
        within,
        || {
            let progress = fake.reply_progress();
            assert_eq!(progress.len(), 1, "{progress:?}");
            progress[0]
                .peer_closed
                .is_some()
                .then(|| progress[0].clone())
        },
    )
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
    leaving_during_a_silence(
        "/v1/chat/completions",
        OPENAI_STREAM,
        r#""content":"before""#,
    );
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

/// `VmRSS` and `VmHWM` (peak) of process `pid`, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A connection whose receive buffer is small and fixed, so that a client that stops reading
/// holds back the server after a few KiB (the kernel would otherwise let it grow to megabytes).
fn connect_small_window(server: &Server) -> TcpStream {
    let addr = server.url.trim_start_matches("http://").parse().unwrap();
    let stream = actix_web::rt::System::new().block_on(async move {
        let socket = actix_web::rt::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        socket.connect(addr).await.unwrap().into_std().unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream
}

/// Sets the receive buffer of `stream` (the kernel doubles it).
fn set_recv_buffer(stream: &TcpStream, bytes: u32) {
    let socket = actix_web::rt::net::TcpSocket::from_std_stream(stream.try_clone().unwrap());
    socket.set_recv_buffer_size(bytes).unwrap();
}

/// The body of a chunked HTTP/1.1 response (`raw` holds the whole response).
fn dechunk(raw: &[u8]) -> Vec<u8> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let mut rest = &raw[head_end..];
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
        rest = &rest[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Event `i` of the long reply: 4 KiB of text starting with its number.
fn long_text(i: usize) -> String {
    let mut text = format!("[{i:05}]");
    while text.len() < 4096 {
        text.push_str(" lorem ipsum dolor sit amet");
    }
    text.truncate(4096);
    text
}

/// CPU time used by process `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Reply `i`'s progress once the gateway (`pid`) has stopped working on it: neither its CPU time
/// nor the bytes the fake sent moved for a second.
fn stalled(fake: &FakeQ, i: usize, pid: u32) -> ReplyProgress {
    let mut last = None;
    let mut same = 0;
    eventually(
        "the upstream reply to stall",
        Duration::from_secs(90),
        || {
            std::thread::sleep(Duration::from_millis(250));
            let now = fake.reply_progress()[i].clone();
            // A tick is 10 ms; the gateway's timers and this probing cost less than that.
            let figures = (now.bytes_sent, cpu_ticks(pid) / 2);
            same = if last == Some(figures) { same + 1 } else { 0 };
            last = Some(figures);
            (same >= 4 || now.finished.is_some()).then_some(now)
        },
    )
}

/// The text of every `text_delta` in a Claude SSE body, and the last event's type.
fn claude_text(sse: &str) -> (String, String) {
    let mut text = String::new();
    let mut last = String::new();
    for event in sse.split("\n\n").filter(|e| !e.is_empty()) {
        let data = event
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap_or_else(|| panic!("no data in {event:?}"));
        let data: serde_json::Value = serde_json::from_str(data).unwrap();
        if data["delta"]["type"] == "text_delta" {
            text.push_str(data["delta"]["text"].as_str().unwrap());
        }
        last = data["type"].as_str().unwrap().to_owned();
    }
    (text, last)
}

/// A client that stops reading a long answer: the gateway's memory stays flat, backpressure
/// reaches Amazon Q (the fake cannot send the rest), and once the client reads on it gets every
/// byte.
#[test]
fn a_slow_reader_holds_back_amazon_q_with_bounded_memory() {
    // 16 MiB of text: well over what the kernel buffers on the way (about 5 MiB on loopback).
    const EVENTS: usize = 4096;
    // The gateway's own buffering is a 64-event channel and actix's and awc's buffers: well
    // under a megabyte. Buffering the reply would take more than 10 MiB.
    const MAX_GROWTH_KIB: u64 = 8 * 1024;
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let server = Server::start(&t, &fake);
    // Warm up (token tables, connection pools), then take the baseline.
    let r = crate::support::http(
        "POST",
        &format!("{}/v1/messages", server.url),
        &[("x-api-key", &key)],
        Some(CLAUDE_STREAM),
    );
    assert_eq!(r.status, 200);
    let (baseline, _) = memory_kib(server.pid());
    let script = (0..EVENTS).fold(Script::new().metadata(), |s, i| s.text(&long_text(i)));
    fake.push_reply(script.end().reply());

    let mut client = connect_small_window(&server);
    client
        .write_all(request("/v1/messages", &key, CLAUDE_STREAM).as_bytes())
        .unwrap();
    let mut got = Vec::new();
    read_until(&mut client, &mut got, "[00000]", Duration::from_secs(10));
    // The client pauses.
    let stalled = stalled(&fake, 1, server.pid());
    let (rss_stalled, _) = memory_kib(server.pid());
    std::thread::sleep(Duration::from_secs(2));
    let later = fake.reply_progress()[1].clone();
    let (rss_later, _) = memory_kib(server.pid());
    eprintln!(
        "slow reader: baseline {baseline} KiB; stalled: rss {rss_stalled} then {rss_later} KiB, \
         upstream sent {} then {} bytes",
        stalled.bytes_sent, later.bytes_sent,
    );
    assert!(
        stalled.finished.is_none() && later.finished.is_none(),
        "Amazon Q sent the whole reply to a client that does not read: {later:?}"
    );
    assert_eq!(later.bytes_sent, stalled.bytes_sent);
    assert!(
        rss_later < baseline + MAX_GROWTH_KIB,
        "{baseline} -> {rss_later} KiB"
    );

    // The client reads on, to the end.
    set_recv_buffer(&client, 1024 * 1024);
    read_until(
        &mut client,
        &mut got,
        "event: message_stop",
        Duration::from_secs(180),
    );
    read_until(
        &mut client,
        &mut got,
        "\r\n0\r\n\r\n",
        Duration::from_secs(10),
    );
    let (_, peak) = memory_kib(server.pid());
    eprintln!("slow reader: peak rss {peak} KiB");
    assert!(
        peak < baseline + MAX_GROWTH_KIB,
        "{baseline} -> peak {peak} KiB"
    );
    let body = String::from_utf8(dechunk(&got)).unwrap();
    let (text, last) = claude_text(&body);
    assert_eq!(last, "message_stop");
    assert_eq!(text.len(), EVENTS * 4096);
    assert!(text == (0..EVENTS).map(long_text).collect::<String>());
    assert!(fake.reply_progress()[1].finished.is_some());
    let rows = usage_rows(&t, 2);
    assert_eq!(
        (rows[1].status, rows[1].error_class.as_deref()),
        (200, None)
    );
}

/// Reads whatever `stream` sends until the server closes it; panics after `within`. Returns what
/// came and how long the close took.
fn read_to_close(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "not closed within {within:?} ({e}); got: {}",
                String::from_utf8_lossy(&got)
            ),
        }
        assert!(started.elapsed() < within, "not closed within {within:?}");
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

/// The JSON body of a complete HTTP/1.1 response with a content length.
fn json_body(response: &str) -> serde_json::Value {
    let body = response.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

const TIMEOUT: &str = "2";

#[test]
fn headers_that_never_complete_are_cut_off_after_the_request_timeout() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    account_and_key(&t, &fake);
    let server = Server::start_with(&t, &fake, &[("AMQ2API_REQUEST_TIMEOUT", TIMEOUT)]);
    let mut client = connect(&server);
    client
        .write_all(b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-")
        .unwrap();
    let (got, after) = read_to_close(&mut client, Duration::from_secs(10));
    assert!(got.starts_with("HTTP/1.1 408 "), "{got}");
    assert!(after >= Duration::from_millis(1500), "{after:?}");
}

#[test]
fn headers_that_never_complete_on_a_reused_connection_are_cut_off_too() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    account_and_key(&t, &fake);
    let server = Server::start_with(&t, &fake, &[("AMQ2API_REQUEST_TIMEOUT", TIMEOUT)]);
    let mut client = connect(&server);
    client
        .write_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    read_until(&mut client, &mut got, "}", Duration::from_secs(10));
    client
        .write_all(b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-")
        .unwrap();
    let (_, after) = read_to_close(&mut client, Duration::from_secs(10));
    assert!(after >= Duration::from_millis(1500), "{after:?}");
}

#[test]
fn answers_longer_than_the_request_timeout_are_not_cut_off() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let server = Server::start_with(&t, &fake, &[("AMQ2API_REQUEST_TIMEOUT", TIMEOUT)]);
    for (path, body, stream) in [
        ("/v1/messages", CLAUDE_STREAM.to_owned(), true),
        (
            "/v1/chat/completions",
            OPENAI_STREAM.replace(r#""stream":true"#, r#""stream":false"#),
            false,
        ),
    ] {
        fake.push_reply(
            Script::new()
                .metadata()
                .text("before")
                .delay(Duration::from_secs(3))
                .text(" after")
                .end()
                .reply(),
        );
        let mut client = connect(&server);
        client
            .write_all(request(path, &key, &body).as_bytes())
            .unwrap();
        let mut got = Vec::new();
        let end = if stream {
            "message_stop"
        } else {
            "before after"
        };
        read_until(&mut client, &mut got, end, Duration::from_secs(20));
        // The connection is still usable.
        client
            .write_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .unwrap();
        read_until(&mut client, &mut got, "\"status\"", Duration::from_secs(10));
    }
}

/// A body that stops after 10 of its 100 bytes: 408 in the endpoint's protocol, then the
/// connection is closed.
fn partial_body(path: &str) -> serde_json::Value {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let server = Server::start_with(&t, &fake, &[("AMQ2API_REQUEST_TIMEOUT", TIMEOUT)]);
    let mut client = connect(&server);
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: {key}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"model\":"
    );
    client.write_all(head.as_bytes()).unwrap();
    let (got, after) = read_to_close(&mut client, Duration::from_secs(10));
    assert!(got.starts_with("HTTP/1.1 408 "), "{got}");
    assert!(after >= Duration::from_millis(1500), "{after:?}");
    assert_eq!(fake.chat_calls(), 0);
    json_body(&got)
}

#[test]
fn a_body_that_never_completes_is_a_408_in_anthropic_shape() {
    assert_eq!(
        partial_body("/v1/messages"),
        serde_json::json!({"type":"error","error":{"type":"invalid_request_error","message":"the request body did not arrive within 2 s"}})
    );
}

#[test]
fn a_body_that_never_completes_is_a_408_in_openai_shape() {
    assert_eq!(
        partial_body("/v1/chat/completions"),
        serde_json::json!({"error":{"message":"the request body did not arrive within 2 s","type":"invalid_request_error","param":null,"code":"request_timeout"}})
    );
}

#[test]
fn a_chunked_body_that_never_completes_is_a_408_and_the_connection_closes() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let server = Server::start_with(&t, &fake, &[("AMQ2API_REQUEST_TIMEOUT", TIMEOUT)]);
    let mut client = connect(&server);
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: {key}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n9\r\n{{\"model\":\r\n"
    );
    client.write_all(head.as_bytes()).unwrap();
    // The client keeps trickling chunks after the answer.
    let mut trickle = client.try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(250));
            if trickle.write_all(b"1\r\n \r\n").is_err() {
                return;
            }
        }
    });
    let (got, _) = read_to_close(&mut client, Duration::from_secs(10));
    assert!(got.starts_with("HTTP/1.1 408 "), "{got}");
    trickler.join().unwrap();
}

#[test]
fn two_hundred_slow_loris_connections_do_not_hold_up_others() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let server = Server::start_with(&t, &fake, &[("AMQ2API_REQUEST_TIMEOUT", "5")]);
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|i| {
            let mut c = connect(&server);
            let partial = if i % 2 == 0 {
                "POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-".to_owned()
            } else {
                format!(
                    "POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: {key}\r\ncontent-length: 100\r\n\r\n{{"
                )
            };
            c.write_all(partial.as_bytes()).unwrap();
            c
        })
        .collect();
    let started = Instant::now();
    let r = crate::support::http(
        "POST",
        &format!("{}/v1/messages", server.url),
        &[("x-api-key", &key)],
        Some(&CLAUDE_STREAM.replace(r#""stream":true"#, r#""stream":false"#)),
    );
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["content"][0]["text"],
        "Hello! This is the fake Amazon Q."
    );
    // Well before the slow ones time out.
    assert!(took < Duration::from_secs(4), "{took:?}");
    for c in &mut slow {
        let (got, _) = read_to_close(c, Duration::from_secs(20));
        assert!(got.starts_with("HTTP/1.1 408 "), "{got}");
    }
}
