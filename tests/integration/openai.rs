//! `/v1/chat/completions` and `/v1/models` over real HTTP against the fake Amazon Q: exact chunk
//! transcripts and completion bodies, OpenAI-shaped errors for every rejection (ours and
//! actix's), both model list shapes, usage rows, and pings while a slow failover keeps the client
//! waiting.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake_q::{FakeQ, QError, Reply, Script};
use crate::support::{account_and_key, http, Response, Server, TestDir};

struct Setup {
    t: TestDir,
    server: Server,
    key: String,
}

fn setup_with(fake: &FakeQ, env: &[(&str, &str)]) -> Setup {
    let t = TestDir::new();
    let key = account_and_key(&t, fake);
    let server = Server::start_with(&t, fake, env);
    Setup { t, server, key }
}

fn setup(fake: &FakeQ) -> Setup {
    setup_with(fake, &[])
}

fn post(s: &Setup, body: &str) -> Response {
    http(
        "POST",
        &format!("{}/v1/chat/completions", s.server.url),
        &[
            ("authorization", &format!("Bearer {}", s.key)),
            ("content-type", "application/json"),
        ],
        Some(body),
    )
}

/// The `data:` payloads of an SSE body, with the random id and the clock replaced.
fn chunks(body: &str) -> Vec<Value> {
    let mut id = None;
    body.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .filter(|b| !b.starts_with(':'))
        .map(|block| {
            let data = block.strip_prefix("data: ").expect("a data line");
            if data == "[DONE]" {
                return json!("[DONE]");
            }
            let mut v: Value = serde_json::from_str(data).unwrap();
            if let Some(got) = v.get("id").cloned() {
                let got = got.as_str().unwrap().to_owned();
                assert!(got.starts_with("chatcmpl-"), "{got}");
                assert_eq!(id.get_or_insert_with(|| got.clone()), &got, "one id");
                v["id"] = json!("ID");
                assert!(v["created"].as_i64().unwrap() > 1_700_000_000);
                v["created"] = json!(0);
            }
            v
        })
        .collect()
}

fn chunk(delta: Value, finish: Value) -> Value {
    json!({"id": "ID", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

#[test]
fn streams_text_and_two_tool_calls_as_exact_chunks() {
    let fake = FakeQ::start();
    let s = setup(&fake);
    fake.push_reply(
        Script::new()
            .text("Let me look.")
            .tool_use("tooluse_a", "read", &["{\"path\":", "\"a.txt\"}"])
            .tool_use("tooluse_b", "read", &["{\"path\":\"b.txt\"}"])
            .end()
            .reply(),
    );
    let r = post(
        &s,
        &json!({"model": "gpt-4o", "stream": true,
                "messages": [{"role": "user", "content": "read both"}],
                "tools": [{"type": "function", "function": {"name": "read", "parameters": {"type": "object"}}}]})
        .to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(
        chunks(&r.body),
        vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "Let me look."}), Value::Null),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "tooluse_a", "type": "function", "function": {"name": "read", "arguments": ""}}]}),
                Value::Null
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"path\":"}}]}),
                Value::Null
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"a.txt\"}"}}]}),
                Value::Null
            ),
            chunk(
                json!({"tool_calls": [{"index": 1, "id": "tooluse_b", "type": "function", "function": {"name": "read", "arguments": ""}}]}),
                Value::Null
            ),
            chunk(
                json!({"tool_calls": [{"index": 1, "function": {"arguments": "{\"path\":\"b.txt\"}"}}]}),
                Value::Null
            ),
            chunk(json!({}), json!("tool_calls")),
            json!("[DONE]"),
        ]
    );
    // The default model for a non-Claude name, and the usage row.
    assert_eq!(fake.requests()[0].model_id(), Some("claude-sonnet-4.5"));
    std::thread::sleep(Duration::from_millis(300));
    let rows = amq2api::db::usage::list_since(&mut s.t.pool().get().unwrap(), 0).unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (
            row.endpoint.as_str(),
            row.model_requested.as_str(),
            row.model_upstream.as_deref(),
            row.stream,
            row.status,
            row.error_class.as_deref(),
            row.account_name.as_deref()
        ),
        (
            "/v1/chat/completions",
            "gpt-4o",
            Some("claude-sonnet-4.5"),
            true,
            200,
            None,
            Some("one")
        )
    );
    assert!(row.input_tokens > 0 && row.output_tokens > 0);
    assert!(
        s.server
            .log()
            .contains("POST /v1/chat/completions 200 key=tester account=one model=gpt-4o"),
        "{}",
        s.server.log()
    );
}

#[test]
fn include_usage_adds_the_usage_chunk_before_done() {
    let fake = FakeQ::start();
    let s = setup(&fake);
    fake.push_reply(Script::new().metadata().texts(&["Hi"]).end().reply());
    let r = post(
        &s,
        &json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": "hello"}]})
        .to_string(),
    );
    let got = chunks(&r.body);
    let with_usage_null = |mut c: Value| {
        c["usage"] = Value::Null;
        c
    };
    let usage = got[got.len() - 2].clone();
    assert_eq!(
        got,
        vec![
            with_usage_null(chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null
            )),
            with_usage_null(chunk(json!({"content": "Hi"}), Value::Null)),
            with_usage_null(chunk(json!({}), json!("stop"))),
            json!({"id": "ID", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o", "choices": [], "usage": usage["usage"]}),
            json!("[DONE]"),
        ]
    );
    let u = &usage["usage"];
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    );
    assert!(u["completion_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn non_streamed_completion_with_only_a_tool_call() {
    let fake = FakeQ::start();
    let s = setup(&fake);
    fake.push_reply(
        Script::new()
            .tool_use("tooluse_x", "lookup", &["{\"q\":", "\"rust\"}"])
            .end()
            .reply(),
    );
    let r = post(
        &s,
        &json!({"model": "claude-opus-4-5", "messages": [{"role": "user", "content": "find"}],
                "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]})
        .to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mut body = r.json();
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    body["id"] = json!("ID");
    body["created"] = json!(0);
    let usage = body["usage"].clone();
    assert_eq!(
        body,
        json!({"id": "ID", "object": "chat.completion", "created": 0, "model": "claude-opus-4-5",
               "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls",
                            "message": {"role": "assistant", "content": null, "tool_calls": [
                                {"id": "tooluse_x", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"rust\"}"}}]}}],
               "usage": usage})
    );
    assert_eq!(fake.requests()[0].model_id(), Some("claude-opus-4.5"));
}

#[test]
fn errors_are_in_openai_shape_with_the_right_status() {
    let fake = FakeQ::start();
    let s = setup(&fake);
    let base = &s.server.url;
    let err = |r: &Response| -> (u16, Value) { (r.status, r.json()) };
    let body = |message: &str, kind: &str, code: &str| json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    let hello = r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#;
    // No key, a wrong key.
    let url = format!("{base}/v1/chat/completions");
    assert_eq!(
        err(&http("POST", &url, &[], Some(hello))),
        (
            401,
            body(
                "missing API key: send it as x-api-key or Authorization: Bearer",
                "invalid_request_error",
                "invalid_api_key"
            )
        )
    );
    assert_eq!(
        err(&http(
            "POST",
            &url,
            &[("authorization", "Bearer sk-amq-wrong")],
            Some(hello)
        )),
        (
            401,
            body(
                "invalid, revoked or expired API key",
                "invalid_request_error",
                "invalid_api_key"
            )
        )
    );
    // Bad JSON, a bad request, n > 1, an empty body.
    let (status, v) = err(&post(&s, "{not json"));
    assert_eq!(
        (status, &v["error"]["type"], &v["error"]["code"]),
        (
            400,
            &json!("invalid_request_error"),
            &json!("invalid_request")
        )
    );
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("invalid request body: "));
    assert_eq!(
        err(&post(
            &s,
            r#"{"model":"m","n":3,"messages":[{"role":"user","content":"x"}]}"#
        )),
        (
            400,
            body(
                "n: only n = 1 is supported (Amazon Q returns one answer per request), got 3",
                "invalid_request_error",
                "invalid_request"
            )
        )
    );
    assert_eq!(
        err(&post(&s, "")),
        (
            400,
            body(
                "the request body is empty",
                "invalid_request_error",
                "invalid_request"
            )
        )
    );
    // actix's own rejections: wrong method, unknown model id.
    let auth = [("authorization", format!("Bearer {}", s.key))];
    let auth: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        err(&http("GET", &url, &auth, None)),
        (
            405,
            body(
                "method GET is not allowed on /v1/chat/completions",
                "invalid_request_error",
                "invalid_request"
            )
        )
    );
    assert_eq!(
        err(&http(
            "GET",
            &format!("{base}/v1/models/gpt-9"),
            &auth,
            None
        )),
        (
            404,
            body(
                "model \"gpt-9\" is not listed by this gateway (GET /v1/models lists them)",
                "invalid_request_error",
                "not_found"
            )
        )
    );
    // Upstream errors before the first byte: their status, OpenAI's codes.
    fake.push_reply(Reply::Error(QError::InputTooLong));
    assert_eq!(
        err(&post(&s, hello)),
        (400, body("The conversation is too long for Amazon Q (Input is too long). Start a new conversation or compact this one.", "invalid_request_error", "context_length_exceeded"))
    );
    fake.push_reply(Reply::Error(QError::HighLoad));
    let (status, v) = err(&post(&s, hello));
    assert_eq!((status, &v["error"]["type"]), (503, &json!("server_error")));
}

#[test]
fn an_error_mid_stream_is_an_error_object_then_done() {
    let fake = FakeQ::start();
    let s = setup(&fake);
    fake.push_reply(
        Script::new()
            .texts(&["partial"])
            .exception("ThrottlingException", json!({"message": "Rate exceeded"}))
            .reply(),
    );
    let r = post(
        &s,
        r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"x"}]}"#,
    );
    assert_eq!(r.status, 200);
    let got = chunks(&r.body);
    assert_eq!(got[1], chunk(json!({"content": "partial"}), Value::Null));
    assert_eq!(
        &got[2..],
        &[
            json!({"error": {"message": "Amazon Q rejected the request mid-stream (ThrottlingException): Rate exceeded", "type": "requests", "param": null, "code": "rate_limit_exceeded"}}),
            json!("[DONE]")
        ]
    );
}

#[test]
fn models_in_openai_and_anthropic_shapes() {
    let fake = FakeQ::start();
    let s = setup(&fake);
    let url = format!("{}/v1/models", s.server.url);
    let key = [("x-api-key", s.key.as_str())];
    let openai = http("GET", &url, &key, None).json();
    assert_eq!(openai["object"], "list");
    let data = openai["data"].as_array().unwrap();
    assert_eq!(data.len(), 10);
    assert_eq!(
        data[0],
        json!({"id": "claude-opus-4-6", "object": "model", "created": 1_770_249_600, "owned_by": "anthropic"})
    );
    let anthropic = http(
        "GET",
        &url,
        &[
            ("x-api-key", s.key.as_str()),
            ("anthropic-version", "2023-06-01"),
        ],
        None,
    )
    .json();
    assert_eq!(anthropic["has_more"], false);
    assert_eq!(anthropic["first_id"], "claude-opus-4-6");
    assert_eq!(anthropic["last_id"], "claude-sonnet-4-5-thinking");
    assert_eq!(
        anthropic["data"][8],
        json!({"type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"})
    );
    let one = http(
        "GET",
        &format!("{url}/claude-haiku-4-5-thinking"),
        &key,
        None,
    );
    assert_eq!(
        one.json(),
        json!({"id": "claude-haiku-4-5-thinking", "object": "model", "created": 1_760_486_400, "owned_by": "anthropic"})
    );
    // Authenticated like every /v1 route; Anthropic's shape for Anthropic callers.
    let r = http("GET", &url, &[("anthropic-version", "2023-06-01")], None);
    assert_eq!(
        (r.status, r.json()),
        (
            401,
            json!({"type": "error", "error": {"type": "authentication_error", "message": "missing API key: send it as x-api-key or Authorization: Bearer"}})
        )
    );
    assert_eq!(
        http("GET", &url, &[], None).json()["error"]["code"],
        "invalid_api_key"
    );
}

#[test]
fn a_slow_upstream_start_gets_pings_then_the_answer_or_an_in_band_error() {
    let fake = FakeQ::start();
    let s = setup_with(&fake, &[("AMQ2API_PING_INTERVAL", "1")]);
    fake.push_reply(Reply::delayed(
        Duration::from_millis(2500),
        Script::new().text("late").end().reply(),
    ));
    let r = post(
        &s,
        r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"x"}]}"#,
    );
    assert_eq!(r.status, 200);
    let blocks: Vec<&str> = r.body.split("\n\n").filter(|b| !b.is_empty()).collect();
    assert_eq!(
        blocks.iter().filter(|b| **b == ": ping").count(),
        1,
        "{}",
        r.body
    );
    assert!(blocks[0].contains(r#""role":"assistant""#), "{}", r.body);
    assert_eq!(blocks[1], ": ping");
    assert!(blocks[2].contains(r#""content":"late""#), "{}", r.body);
    // Claude: the same, with Anthropic's events; a failure after the pings is in-band.
    fake.push_reply(Reply::delayed(
        Duration::from_millis(2500),
        Reply::Error(QError::InputTooLong),
    ));
    let r = http(
        "POST",
        &format!("{}/v1/messages", s.server.url),
        &[("x-api-key", &s.key)],
        Some(
            r#"{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"x"}]}"#,
        ),
    );
    assert_eq!(r.status, 200);
    let names: Vec<&str> = r
        .body
        .split("\n\n")
        .filter(|b| !b.is_empty())
        .map(|b| b.lines().next().unwrap().trim_start_matches("event: "))
        .collect();
    assert_eq!(
        names,
        ["message_start", "ping", "ping", "error"],
        "{}",
        r.body
    );
    assert!(r.body.ends_with("event: error\ndata: {\"error\":{\"message\":\"The conversation is too long for Amazon Q (Input is too long). Start a new conversation or compact this one.\",\"type\":\"invalid_request_error\"},\"type\":\"error\"}\n\n"), "{}", r.body);
    std::thread::sleep(Duration::from_millis(300));
    let rows = amq2api::db::usage::list_since(&mut s.t.pool().get().unwrap(), 0).unwrap();
    assert_eq!(rows[1].error_class.as_deref(), Some("input_too_long"));
    assert_eq!(rows[1].status, 400);
}
