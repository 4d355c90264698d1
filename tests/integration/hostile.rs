//! Hostile input on every route: the corpus in `tests/fixtures/hostile/cases.json` (its README
//! says the format) replayed over raw TCP against a real `serve` and the fake Amazon Q, on both
//! protocols. Each case gets its exact status and the error JSON of the client's protocol,
//! nothing hostile reaches a response header, a rejected request never reaches Amazon Q and an
//! accepted one reaches it well formed; afterwards the server is alive and still quick, also
//! while the largest cases are being answered.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fake_q::{validate_chat_body, FakeQ};
use crate::support::{account_and_key, fixture, Server, TestDir};

/// The server's body limit in this test (`AMQ2API_MAX_BODY_BYTES`).
const LIMIT: usize = 32 * 1024 * 1024;
/// A normal request must be answered within this, even beside the largest hostile ones. Generous:
/// the point is "not stuck behind them", not speed on a loaded CI machine.
const QUICK: Duration = Duration::from_secs(20);

/// A raw HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(2000)])
            )
        })
    }
}

/// One request over a fresh TCP connection, bytes exactly as given (so invalid UTF-8, NUL bytes
/// and bare CRs reach the server). The body is written from another thread while the answer is
/// read, so an early answer (a 413) is seen even if the server stops reading.
fn send(addr: &str, method: &str, path: &str, head: &str, body: Vec<u8>) -> Answer {
    send_as(addr, method, path, head, body, Transfer::Length)
}

/// How the body is framed.
#[derive(Clone, Copy, PartialEq)]
enum Transfer {
    /// `Content-Length`.
    Length,
    /// `Transfer-Encoding: chunked`, 64 KiB chunks.
    Chunked,
    /// `Transfer-Encoding: chunked` announced, the body sent as given (to break the framing).
    RawChunked,
}

fn send_as(
    addr: &str,
    method: &str,
    path: &str,
    head: &str,
    body: Vec<u8>,
    transfer: Transfer,
) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let framing = match transfer {
        Transfer::Length => format!("Content-Length: {}", body.len()),
        Transfer::Chunked | Transfer::RawChunked => "Transfer-Encoding: chunked".to_owned(),
    };
    let body = if transfer == Transfer::Chunked {
        let mut framed = Vec::with_capacity(body.len() + body.len() / 1000 + 16);
        for piece in body.chunks(64 * 1024) {
            framed.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            framed.extend_from_slice(piece);
            framed.extend_from_slice(b"\r\n");
        }
        framed.extend_from_slice(b"0\r\n\r\n");
        framed
    } else {
        body
    };
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{framing}\r\n")
            .into_bytes();
    request.extend_from_slice(head.as_bytes());
    request.extend_from_slice(b"\r\n");
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&request);
        for piece in body.chunks(256 * 1024) {
            if writer.write_all(piece).is_err() {
                break;
            }
        }
    });
    let answer = read_answer(&mut stream);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    sender.join().unwrap();
    answer
}

fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).expect("reading the answer");
        assert!(n > 0, "connection closed before an answer: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, Vec<u8>)> = buf[..head_end]
        .split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':')?;
            Some((
                String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase(),
                line[colon + 1..].trim_ascii().to_vec(),
            ))
        })
        .collect();
    let mut body = buf[head_end + 4..].to_vec();
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| String::from_utf8_lossy(v).parse::<usize>().unwrap());
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case(b"chunked"));
    loop {
        if length.is_some_and(|l| body.len() >= l) {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if length.is_none() => panic!("reading the body: {e}"),
            Err(e) => panic!("reading the body ({} of {length:?}): {e}", body.len()),
        }
    }
    if chunked {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..eol]).trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 4 + size..];
    }
}

// ---------------------------------------------------------------------------------------------
// Generators for the large cases (parameters in the manifest)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Debug)]
enum Protocol {
    Claude,
    OpenAi,
}

fn hello(p: Protocol, messages: Value) -> Value {
    match p {
        Protocol::Claude => {
            json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": messages})
        }
        Protocol::OpenAi => json!({"model": "gpt-4o", "messages": messages}),
    }
}

fn say(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

fn tool(p: Protocol, name: &str, description: &str, schema: Value) -> Value {
    match p {
        Protocol::Claude => {
            json!({"name": name, "description": description, "input_schema": schema})
        }
        Protocol::OpenAi => json!({"type": "function", "function":
            {"name": name, "description": description, "parameters": schema}}),
    }
}

fn image(p: Protocol, media_type: &str, data: &str) -> Value {
    match p {
        Protocol::Claude => json!({"type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data}}),
        Protocol::OpenAi => json!({"type": "image_url",
            "image_url": {"url": format!("data:{media_type};base64,{data}")}}),
    }
}

fn with_images(p: Protocol, images: Vec<Value>) -> Value {
    let mut content = vec![json!({"type": "text", "text": "look"})];
    content.extend(images);
    hello(p, json!([{"role": "user", "content": content}]))
}

fn generate(g: &Value, p: Protocol) -> Vec<u8> {
    let n = |k: &str| g[k].as_u64().unwrap_or_else(|| panic!("{g}: {k}")) as usize;
    let body = match g["kind"].as_str().unwrap() {
        "many_messages" => {
            let messages: Vec<Value> = (0..n("count"))
                .map(|i| {
                    let role = if i % 2 == 0 { "user" } else { "assistant" };
                    json!({"role": role, "content": format!("message {i}")})
                })
                .collect();
            hello(p, Value::Array(messages))
        }
        "many_tools" => {
            let mut body = hello(p, say("hi"));
            body["tools"] = (0..n("count"))
                .map(|i| {
                    tool(
                        p,
                        &format!("tool_{i}"),
                        &format!("Tool number {i}"),
                        json!({"type": "object", "properties": {"arg": {"type": "string"}}}),
                    )
                })
                .collect();
            body
        }
        "huge_schema" => {
            let description = "d".repeat(n("description"));
            let properties: serde_json::Map<String, Value> = (0..n("properties"))
                .map(|i| {
                    (
                        format!("p{i}"),
                        json!({"type": "string", "description": description}),
                    )
                })
                .collect();
            let mut body = hello(p, say("hi"));
            body["tools"] = json!([tool(
                p,
                "big",
                "Big schema",
                json!({"type": "object", "properties": properties})
            )]);
            body
        }
        "deep_schema" => {
            let mut schema = json!({"type": "string"});
            for _ in 0..n("depth") {
                schema = json!({"type": "object", "properties": {"a": schema}});
            }
            let mut body = hello(p, say("hi"));
            body["tools"] = json!([tool(p, "deep", "Deep schema", schema)]);
            body
        }
        "nested_tool_results" => {
            assert_eq!(
                p,
                Protocol::Claude,
                "nested tool results are a Claude shape"
            );
            let mut block = json!({"type": "text", "text": "innermost"});
            for i in 0..n("depth") {
                block = json!({"type": "tool_result", "tool_use_id": format!("t{i}"), "content": [block]});
            }
            hello(
                p,
                json!([
                    {"role": "user", "content": "run"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "t0", "name": "f", "input": {}}]},
                    {"role": "user", "content": [block]}
                ]),
            )
        }
        "deep_json" => {
            let depth = n("depth");
            let nest = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let text = match g["at"].as_str().unwrap() {
                "top" => nest,
                // A field the request types read as any JSON value.
                "known" => match p {
                    Protocol::Claude => format!(
                        r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],"metadata":{nest}}}"#
                    ),
                    Protocol::OpenAi => format!(
                        r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],"tool_choice":{nest}}}"#
                    ),
                },
                "unknown" => format!(
                    r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],"whatever":{nest}}}"#
                ),
                other => panic!("deep_json at {other}"),
            };
            return text.into_bytes();
        }
        "over_limit" => {
            let mut text = String::with_capacity(LIMIT + n("extra"));
            text.push_str(r#"{"model":"m","messages":[{"role":"user","content":""#);
            let pad = LIMIT + n("extra") - text.len() - 4;
            text.push_str(&"a".repeat(pad));
            text.push_str(r#""}]}"#);
            assert_eq!(text.len(), LIMIT + n("extra"));
            return text.into_bytes();
        }
        "image" => {
            let decoded = n("decoded_bytes");
            let data = match g["data"].as_str().unwrap() {
                "valid" => "A".repeat(decoded.div_ceil(3) * 4),
                _ => "%%% not base64 %%%".repeat(decoded / 18 + 1),
            };
            with_images(p, vec![image(p, g["media_type"].as_str().unwrap(), &data)])
        }
        "many_images" => with_images(
            p,
            (0..n("count"))
                .map(|_| image(p, "image/png", "iVBORw0KGgo="))
                .collect(),
        ),
        "form" => return format!("key={}", "k".repeat(n("bytes"))).into_bytes(),
        other => panic!("unknown generator {other}"),
    };
    serde_json::to_vec(&body).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Replaying the corpus
// ---------------------------------------------------------------------------------------------

struct Target {
    route: &'static str,
    path: String,
    method: String,
    protocol: Protocol,
}

fn targets(case: &Value) -> Vec<Target> {
    let routes = case["on"].as_array().unwrap();
    routes
        .iter()
        .map(|r| {
            let (route, path, protocol) = match r.as_str().unwrap() {
                "messages" => ("messages", "/v1/messages", Protocol::Claude),
                "messages_alias" => ("messages_alias", "/v1/v1/messages", Protocol::Claude),
                "count_tokens" => (
                    "count_tokens",
                    "/v1/messages/count_tokens",
                    Protocol::Claude,
                ),
                "chat" => ("chat", "/v1/chat/completions", Protocol::OpenAi),
                "chat_alias" => ("chat_alias", "/v1/v1/chat/completions", Protocol::OpenAi),
                "raw" => {
                    let path = case["path"].as_str().unwrap();
                    let openai = path.starts_with("/v1/models") || path.starts_with("/v1/chat");
                    let p = if openai {
                        Protocol::OpenAi
                    } else {
                        Protocol::Claude
                    };
                    return Target {
                        route: "raw",
                        path: path.to_owned(),
                        method: case["method"].as_str().unwrap().to_owned(),
                        protocol: p,
                    };
                }
                other => panic!("unknown route {other}"),
            };
            Target {
                route,
                path: path.to_owned(),
                method: "POST".to_owned(),
                protocol,
            }
        })
        .collect()
}

fn body_of(case: &Value, p: Protocol) -> Vec<u8> {
    let b = &case["body"];
    if let Some(t) = b.get("text") {
        return t.as_str().unwrap().as_bytes().to_vec();
    }
    if let Some(h) = b.get("hex") {
        return hex::decode(h.as_str().unwrap()).unwrap();
    }
    if let Some(j) = b.get("json") {
        return serde_json::to_vec(j).unwrap();
    }
    if let Some(g) = b.get("generate") {
        return generate(g, p);
    }
    let key = match p {
        Protocol::Claude => "claude",
        Protocol::OpenAi => "openai",
    };
    serde_json::to_vec(
        b.get(key)
            .unwrap_or_else(|| panic!("{case}: no {key} body")),
    )
    .unwrap()
}

fn expectation<'a>(case: &'a Value, route: &str) -> &'a Value {
    let e = &case["expect"];
    if e.get("status").is_some() {
        e
    } else {
        e.get(route)
            .unwrap_or_else(|| panic!("{}: no expectation for {route}", case["name"]))
    }
}

/// The error JSON of `p` for `status`, exactly: the keys, the type and code, and a message that
/// contains `contains`.
fn check_error(what: &str, p: Protocol, status: u16, body: &Value, contains: &str) {
    let message = match p {
        Protocol::Claude => {
            let kind = match status {
                400 | 405 => "invalid_request_error",
                401 => "authentication_error",
                404 => "not_found_error",
                413 => "request_too_large",
                s => panic!("{what}: no Anthropic type for {s}"),
            };
            assert_eq!(body["type"], "error", "{what}: {body}");
            assert_eq!(body["error"]["type"], kind, "{what}: {body}");
            assert_eq!(body.as_object().unwrap().len(), 2, "{what}: {body}");
            assert_eq!(
                body["error"].as_object().unwrap().len(),
                2,
                "{what}: {body}"
            );
            body["error"]["message"].as_str().unwrap()
        }
        Protocol::OpenAi => {
            let code = match status {
                400 | 405 => "invalid_request",
                401 => "invalid_api_key",
                404 => "not_found",
                413 => "too_large",
                s => panic!("{what}: no OpenAI code for {s}"),
            };
            let e = &body["error"];
            assert_eq!(body.as_object().unwrap().len(), 1, "{what}: {body}");
            assert_eq!(e["type"], "invalid_request_error", "{what}: {body}");
            assert_eq!(e["code"], code, "{what}: {body}");
            assert_eq!(e["param"], Value::Null, "{what}: {body}");
            assert_eq!(e.as_object().unwrap().len(), 4, "{what}: {body}");
            e["message"].as_str().unwrap()
        }
    };
    assert!(
        message.contains(contains),
        "{what}: message {message:?} does not contain {contains:?}"
    );
}

/// A well-formed answer for a 200.
fn check_success(what: &str, route: &str, body: &Value) {
    match route {
        "messages" | "messages_alias" => assert_eq!(body["type"], "message", "{what}: {body}"),
        "count_tokens" => assert!(body["input_tokens"].as_u64().unwrap() > 0, "{what}: {body}"),
        "chat" | "chat_alias" => assert_eq!(body["object"], "chat.completion", "{what}: {body}"),
        "raw" => {}
        other => panic!("{other}"),
    }
}

/// Nothing we answer may carry a header a client did not get from us: no injected name, and no
/// control character or hostile marker in any value.
fn check_headers(what: &str, a: &Answer) {
    for (name, value) in &a.headers {
        assert_ne!(name, "x-injected", "{what}: injected header");
        assert!(
            !value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
            "{what}: control character in header {name}"
        );
        assert!(
            !String::from_utf8_lossy(value)
                .to_ascii_lowercase()
                .contains("injected"),
            "{what}: hostile text echoed in header {name}: {:?}",
            String::from_utf8_lossy(value)
        );
    }
}

struct Setup {
    fake: FakeQ,
    _t: TestDir,
    server: Server,
    addr: String,
    key: String,
}

fn setup() -> Setup {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let limit = LIMIT.to_string();
    let server = Server::start_with(&t, &fake, &[("AMQ2API_MAX_BODY_BYTES", &limit)]);
    let addr = server.url.trim_start_matches("http://").to_owned();
    Setup {
        fake,
        _t: t,
        server,
        addr,
        key,
    }
}

fn auth_head(s: &Setup, p: Protocol) -> String {
    match p {
        Protocol::Claude => format!(
            "x-api-key: {}\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n",
            s.key
        ),
        Protocol::OpenAi => format!(
            "authorization: Bearer {}\r\ncontent-type: application/json\r\n",
            s.key
        ),
    }
}

/// Runs one case on one route and checks everything the README promises.
fn run_case(s: &Setup, case: &Value, t: &Target) {
    let name = case["name"].as_str().unwrap();
    let what = format!("{name} on {} {}", t.method, t.path);
    let expect = expectation(case, t.route);
    let mut head = String::new();
    if !case["no_auth"].as_bool().unwrap_or(false) {
        head.push_str(&auth_head(s, t.protocol));
    }
    for h in case["headers"].as_array().into_iter().flatten() {
        head.push_str(&format!(
            "{}: {}\r\n",
            h[0].as_str().unwrap(),
            h[1].as_str().unwrap()
        ));
    }
    if let Some(raw) = case["raw_headers"].as_str() {
        head.push_str(raw);
    }
    let before = s.fake.chat_calls();
    let started = Instant::now();
    let transfer = match case["transfer"].as_str() {
        None => Transfer::Length,
        Some("chunked") => Transfer::Chunked,
        Some("raw_chunked") => Transfer::RawChunked,
        Some(other) => panic!("{what}: transfer {other}"),
    };
    let answer = send_as(
        &s.addr,
        &t.method,
        &t.path,
        &head,
        body_of(case, t.protocol),
        transfer,
    );
    let took = started.elapsed();
    let status = expect["status"].as_u64().unwrap() as u16;
    assert_eq!(
        answer.status,
        status,
        "{what}: {}",
        String::from_utf8_lossy(&answer.body[..answer.body.len().min(2000)])
    );
    assert!(took < Duration::from_secs(60), "{what} took {took:?}");
    if took > Duration::from_secs(1) {
        eprintln!("{what}: {took:?}");
    }
    check_headers(&what, &answer);
    let contains = expect["contains"].as_str().unwrap_or("");
    if expect["bare"].as_bool().unwrap_or(false) {
        // Rejected by the HTTP parser before any route: no body to shape.
    } else if expect["html"].as_bool().unwrap_or(false) {
        let body = String::from_utf8_lossy(&answer.body);
        assert!(
            body.starts_with("<!doctype html>") || body.starts_with("<!DOCTYPE html>"),
            "{what}: {body}"
        );
    } else if status >= 400 {
        check_error(&what, t.protocol, status, &answer.json(), contains);
    } else {
        check_success(&what, t.route, &answer.json());
    }
    let calls = s.fake.chat_calls() - before;
    let upstream = status == 200
        && matches!(
            t.route,
            "messages" | "messages_alias" | "chat" | "chat_alias"
        );
    if !upstream {
        assert_eq!(calls, 0, "{what}: reached Amazon Q");
        return;
    }
    assert_eq!(calls, 1, "{what}: expected exactly one upstream call");
    let sent = s.fake.requests().pop().unwrap();
    assert_eq!(sent.status, 200, "{what}: the fake rejected the body");
    validate_chat_body(&sent.body).unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let request: amq2api::q::types::GenerateAssistantResponseRequest =
        serde_json::from_value(sent.body.clone()).unwrap();
    amq2api::claude::request::check_history_rules(&request)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    if let Some(text) = case["upstream_contains"].as_str() {
        assert!(
            String::from_utf8_lossy(&sent.raw_body).contains(text),
            "{what}: the upstream body lacks {text:?}"
        );
    }
}

fn corpus() -> Vec<Value> {
    let text = std::fs::read_to_string(fixture("hostile/cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A normal request, answered quickly.
fn normal_request(s: &Setup) -> Duration {
    let started = Instant::now();
    let body = serde_json::to_vec(&hello(Protocol::Claude, say("still there?"))).unwrap();
    let answer = send(
        &s.addr,
        "POST",
        "/v1/messages",
        &auth_head(s, Protocol::Claude),
        body,
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(answer.json()["type"], "message");
    started.elapsed()
}

#[test]
fn every_hostile_case_gets_its_documented_answer_and_the_server_stays_well() {
    let s = setup();
    let cases = corpus();
    assert!(cases.len() >= 100, "the corpus shrank: {}", cases.len());
    let mut names = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for case in &cases {
        assert!(
            names.insert(case["name"].as_str().unwrap()),
            "duplicate {}",
            case["name"]
        );
        for t in targets(case) {
            // Every case runs, and all failures are reported together.
            let run =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(&s, case, &t)));
            if let Err(e) = run {
                let message = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(message);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let took = normal_request(&s);
    assert!(
        took < QUICK,
        "a normal request took {took:?} after the corpus"
    );
    assert!(
        s.server.log().lines().all(|l| !l.contains("panicked")),
        "{}",
        s.server.log()
    );
    let health = send(&s.addr, "GET", "/health", "", Vec::new());
    assert_eq!(health.status, 200);
}

/// The largest cases, sent at once from several threads, do not hold up a normal request.
#[test]
fn large_hostile_requests_do_not_hold_up_a_normal_one() {
    let s = setup();
    let cases = corpus();
    let heavy = [
        "ten_thousand_messages",
        "thousand_tools",
        "huge_tool_schema",
        "over_the_limit",
        "deep_array_top",
    ];
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for name in heavy {
            let case = cases.iter().find(|c| c["name"] == name).unwrap();
            let (addr, head) = (&s.addr, auth_head(&s, Protocol::Claude));
            let body = body_of(case, Protocol::Claude);
            handles
                .push(scope.spawn(move || send(addr, "POST", "/v1/messages", &head, body).status));
        }
        // While they are in flight.
        std::thread::sleep(Duration::from_millis(50));
        let took = normal_request(&s);
        assert!(
            took < QUICK,
            "a normal request took {took:?} beside the large ones"
        );
        let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(statuses, [200, 200, 200, 413, 400]);
    });
    assert!(normal_request(&s) < QUICK);
}

/// Every committed fuzz input (hand-written seeds, the minimized corpora, crash reproducers)
/// replayed through the fuzz targets' own checks, so what fuzzing found stays fixed.
#[test]
fn fuzz_corpora_and_crash_reproducers_replay_cleanly() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    type Check = fn(&[u8]);
    let targets: [(&str, Check); 3] = [
        ("eventstream", amq2api::q::eventstream::fuzz_one),
        ("claude_request", amq2api::claude::request::fuzz_one),
        ("openai_request", amq2api::openai::request::fuzz_one),
    ];
    for (target, check) in targets {
        let mut replayed = 0;
        for dir in ["seeds", "corpus", "artifacts"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let run = std::panic::catch_unwind(|| check(&data));
                assert!(run.is_ok(), "{target}: {} fails", path.display());
                replayed += 1;
            }
        }
        assert!(replayed >= 3, "{target}: only {replayed} inputs");
    }
}
