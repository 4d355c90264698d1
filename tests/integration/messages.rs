//! `amq2api serve` and `/v1/messages` over real HTTP against the fake Amazon Q: exact SSE
//! transcripts, the non-streamed message, authentication (also a key revoked with the CLI while
//! the server runs), errors in Anthropic's shape, failover, usage rows, and Claude Code-style
//! requests arriving upstream in a shape that satisfies every history rule.

use serde_json::{json, Value};

use crate::support::fake_q::{FakeQ, QError, Reply, Script};
use crate::support::{
    account_and_key, active_accounts, eventually, fixture, http, Response, Server, TestDir,
};

struct Setup {
    _fake_guard: (),
    t: TestDir,
    server: Server,
    key: String,
}

/// A database with one account the fake knows and one key, and a server on it.
fn setup(fake: &FakeQ) -> Setup {
    let t = TestDir::new();
    let key = account_and_key(&t, fake);
    let server = Server::start(&t, fake);
    Setup {
        _fake_guard: (),
        t,
        server,
        key,
    }
}

fn post(s: &Setup, path: &str, body: &Value) -> Response {
    http(
        "POST",
        &format!("{}{path}", s.server.url),
        &[
            ("x-api-key", &s.key),
            ("content-type", "application/json"),
            ("anthropic-version", "2023-06-01"),
        ],
        Some(&body.to_string()),
    )
}

/// The SSE transcript with the random message id replaced, as (event, data) pairs.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut lines = block.lines();
            let event = lines
                .next()
                .unwrap()
                .strip_prefix("event: ")
                .unwrap()
                .to_owned();
            let mut data: Value =
                serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap())
                    .unwrap();
            if let Some(id) = data.pointer_mut("/message/id") {
                assert!(id.as_str().unwrap().starts_with("msg_"));
                *id = json!("msg_ID");
            }
            (event, data)
        })
        .collect()
}

fn hello(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-5-20250929", "max_tokens": 100, "stream": stream,
           "messages": [{"role": "user", "content": "hello world"}]})
}

#[test]
fn streams_the_exact_transcript_with_sse_headers() {
    let fake = FakeQ::start();
    let s = setup(&fake);
    fake.push_reply(
        Script::new()
            .metadata()
            .texts(&["Hel", "lo"])
            .tool_use("tooluse_1", "run_shell", &["{\"cmd\":", "\"ls\"}"])
            .end()
            .reply(),
    );
    let r = post(&s, "/v1/messages?beta=true", &hello(true));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.header("x-accel-buffering"), Some("no"));
    let usage_start = json!({"input_tokens": 6, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0});
    assert_eq!(
        events(&r.body),
        vec![
            (
                "message_start".into(),
                json!({"type":"message_start","message":{"id":"msg_ID","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":usage_start}})
            ),
            ("ping".into(), json!({"type":"ping"})),
            (
                "content_block_start".into(),
                json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})
            ),
            (
                "content_block_delta".into(),
                json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}})
            ),
            (
                "content_block_delta".into(),
                json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}})
            ),
            (
                "content_block_stop".into(),
                json!({"type":"content_block_stop","index":0})
            ),
            (
                "content_block_start".into(),
                json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"tooluse_1","name":"run_shell","input":{}}})
            ),
            (
                "content_block_delta".into(),
                json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"cmd\":"}})
            ),
            (
                "content_block_delta".into(),
                json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"ls\"}"}})
            ),
            (
                "content_block_stop".into(),
                json!({"type":"content_block_stop","index":1})
            ),
            // 1.5 % of a 200k window from contextUsageEvent.
            (
                "message_delta".into(),
                json!({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":3000,"output_tokens":6,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}})
            ),
            ("message_stop".into(), json!({"type":"message_stop"})),
        ]
    );
    // What went upstream: the mapped model, the CLI origin, the text.
    let req = &fake.requests()[0];
    assert_eq!(req.model_id(), Some("claude-sonnet-4.5"));
    assert_eq!(req.user_content(), Some("hello world"));
    // The usage row.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let rows = amq2api::db::usage::list_since(&mut s.t.pool().get().unwrap(), 0).unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (
            row.endpoint.as_str(),
            row.model_requested.as_str(),
            row.model_upstream.as_deref()
        ),
        (
            "/v1/messages",
            "claude-sonnet-4-5-20250929",
            Some("claude-sonnet-4.5")
        )
    );
    assert_eq!(
        (row.stream, row.status, row.input_tokens, row.output_tokens),
        (true, 200, 3000, 6)
    );
    assert_eq!(row.account_name.as_deref(), Some("one"));
    assert_eq!(row.error_class, None);
    assert!(row.ttfb_ms.is_some());
}

#[test]
fn non_streaming_message_and_bearer_auth() {
    let fake = FakeQ::start();
    let s = setup(&fake);
    fake.push_reply(Script::new().texts(&["Hi", " there"]).end().reply());
    let r = http(
        "POST",
        &format!("{}/v1/messages", s.server.url),
        &[("authorization", &format!("Bearer {}", s.key))],
        Some(&hello(false).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mut body = r.json();
    body["id"] = json!("msg_ID");
    assert_eq!(
        body,
        json!({"id":"msg_ID","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
               "content":[{"type":"text","text":"Hi there"}],"stop_reason":"end_turn","stop_sequence":null,
               "usage":{"input_tokens":3000,"output_tokens":2,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}})
    );
}

#[test]
fn authentication_failures_and_live_revocation() {
    let fake = FakeQ::start();
    let s = setup(&fake);
    let url = format!("{}/v1/messages", s.server.url);
    let body = hello(false).to_string();
    let err =
        |msg: &str| json!({"type":"error","error":{"type":"authentication_error","message":msg}});
    let r = http("POST", &url, &[], Some(&body));
    assert_eq!(
        (r.status, r.json()),
        (
            401,
            err("missing API key: send it as x-api-key or Authorization: Bearer")
        )
    );
    let r = http("POST", &url, &[("x-api-key", "sk-amq-wrong")], Some(&body));
    assert_eq!(
        (r.status, r.json()),
        (401, err("invalid, revoked or expired API key"))
    );
    // Works, then revoked with the CLI while the server runs: refused within 2 seconds.
    assert_eq!(post(&s, "/v1/messages", &hello(false)).status, 200);
    s.t.ok(&["keys", "revoke", "tester", "--yes"]);
    let r = eventually(
        "the revoked key is refused",
        std::time::Duration::from_secs(2),
        || Some(post(&s, "/v1/messages/count_tokens", &hello(false))).filter(|r| r.status == 401),
    );
    assert_eq!((r.status, r.json()), (401, err("no API key exists yet: create one on the server with `amq2api keys create --name NAME`")));
    let r = post(&s, "/v1/messages", &hello(false));
    assert_eq!(r.status, 401);
    // Nothing reached Amazon Q for the refused requests.
    assert_eq!(fake.chat_calls(), 1);
}

#[test]
fn no_key_at_all_starts_anyway_and_says_how_to_create_one() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let server = Server::start(&t, &fake);
    let r = http(
        "POST",
        &format!("{}/v1/messages", server.url),
        &[("x-api-key", "anything")],
        Some("{}"),
    );
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["error"]["message"],
        "no API key exists yet: create one on the server with `amq2api keys create --name NAME`"
    );
    assert!(server.log().contains("no API key exists: every request is refused with 401 until you create one with `amq2api keys create --name NAME`"));
    // Health needs no key and shows no secret.
    let r = http("GET", &format!("{}/health", server.url), &[], None);
    assert_eq!(
        r.json(),
        json!({"status":"degraded","active_accounts":0,"active_api_keys":0,"version":env!("CARGO_PKG_VERSION")})
    );
}

#[test]
fn errors_are_in_anthropic_shape() {
    let fake = FakeQ::start();
    let s = setup(&fake);
    let base = &s.server.url;
    let auth = [("x-api-key", s.key.as_str())];
    let shape = |r: &Response, status: u16, kind: &str| {
        assert_eq!(r.status, status, "{}", r.body);
        assert_eq!(r.json()["type"], "error");
        assert_eq!(r.json()["error"]["type"], kind, "{}", r.body);
    };
    shape(
        &http(
            "POST",
            &format!("{base}/v1/messages"),
            &auth,
            Some("{not json"),
        ),
        400,
        "invalid_request_error",
    );
    shape(
        &http(
            "POST",
            &format!("{base}/v1/messages"),
            &auth,
            Some(r#"{"model":"x"}"#),
        ),
        400,
        "invalid_request_error",
    );
    shape(
        &http(
            "POST",
            &format!("{base}/v1/messages"),
            &auth,
            Some(r#"{"model":"","messages":[{"role":"user","content":"x"}]}"#),
        ),
        400,
        "invalid_request_error",
    );
    shape(
        &http("GET", &format!("{base}/v1/nothing"), &auth, None),
        404,
        "not_found_error",
    );
    shape(
        &http("GET", &format!("{base}/v1/messages"), &auth, None),
        405,
        "invalid_request_error",
    );
    // Upstream errors before the first byte keep a proper status.
    fake.push_reply(Reply::Error(QError::InputTooLong));
    let r = post(&s, "/v1/messages", &hello(true));
    shape(&r, 400, "invalid_request_error");
    assert_eq!(
        r.json()["error"]["message"],
        "The conversation is too long for Amazon Q (Input is too long). Start a new conversation or compact this one."
    );
    fake.push_reply(Reply::Error(QError::HighLoad));
    shape(
        &post(&s, "/v1/messages", &hello(true)),
        529,
        "overloaded_error",
    );
}

#[test]
fn in_stream_exception_after_text_is_an_error_event() {
    let fake = FakeQ::start();
    let s = setup(&fake);
    fake.push_reply(
        Script::new()
            .texts(&["partial"])
            .exception("ThrottlingException", json!({"message": "Rate exceeded"}))
            .reply(),
    );
    let r = post(&s, "/v1/messages", &hello(true));
    assert_eq!(r.status, 200);
    let ev = events(&r.body);
    assert_eq!(ev[3].1["delta"]["text"], "partial");
    let last = ev.last().unwrap();
    assert_eq!(last.0, "error");
    assert_eq!(last.1["type"], "error");
    assert_eq!(last.1["error"]["type"], "rate_limit_error");
    assert!(
        !ev.iter().any(|(e, _)| e == "message_stop"),
        "a broken answer must not look complete"
    );
}

#[test]
fn monthly_quota_fails_over_to_the_next_account_then_429() {
    let fake = FakeQ::start();
    let s = setup(&fake);
    let idx2 = fake.add_idc("FAKECLIENT2", "eyJFAKE-secret-2", "aorFAKE-refresh-2");
    let file = s.t.path().join("acc2.json");
    std::fs::write(&file, r#"{"clientId":"FAKECLIENT2","clientSecret":"eyJFAKE-secret-2","refreshToken":"aorFAKE-refresh-2","label":"two"}"#).unwrap();
    s.t.ok(&["accounts", "import", file.to_str().unwrap()]);
    eventually(
        "the imported account is in the pool",
        std::time::Duration::from_secs(2),
        || (active_accounts(&s.server) == 2).then_some(()),
    );
    fake.set_account_error(0, Some(QError::MonthlyQuota));
    let r = post(&s, "/v1/messages", &hello(false));
    assert_eq!(r.status, 200, "{}", r.body);
    // The server writes the new state back: `accounts list` shows it.
    let list = eventually(
        "the quota pause is in the database",
        std::time::Duration::from_secs(2),
        || Some(s.t.json(&["accounts", "list", "--json"])).filter(|l| l[0]["health"] == "quota"),
    );
    assert!(list[0]["health_until"]
        .as_str()
        .unwrap()
        .ends_with("-01T00:00:00Z"));
    assert_eq!(list[1]["health"], "active");
    // The second account runs out too: 429 in Anthropic's shape.
    fake.set_account_error(idx2, Some(QError::MonthlyQuota));
    let r = post(&s, "/v1/messages", &hello(false));
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"type":"error","error":{"type":"rate_limit_error","message":"Amazon Q rejected the request (ThrottlingException): Maximum Request reached for this month."}})
    );
    // Now every account is paused: 503, saying what to check.
    let r = post(&s, "/v1/messages", &hello(false));
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"]["type"], "overloaded_error");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("No available accounts in pool"));
}

#[test]
fn count_tokens_is_answered_locally() {
    let fake = FakeQ::start();
    let s = setup(&fake);
    let r = post(
        &s,
        "/v1/messages/count_tokens",
        &json!({"model": "claude-opus-4-5", "messages": [{"role": "user", "content": "hello world"}]}),
    );
    assert_eq!((r.status, r.json()), (200, json!({"input_tokens": 6})));
    assert_eq!(fake.chat_calls(), 0);
}

#[test]
fn claude_code_requests_arrive_upstream_satisfying_every_history_rule() {
    let fake = FakeQ::start();
    let s = setup(&fake);
    for name in [
        "a_sonnet_many_tools.json",
        "b_compacted_no_tools.json",
        "c_consecutive_assistants.json",
        "d_tool_result_with_text.json",
        "e_default_model_adaptive.json",
    ] {
        let body: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(&format!("claude/{name}"))).unwrap(),
        )
        .unwrap();
        let r = post(&s, "/v1/messages", &body);
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        let sent = fake.requests().last().unwrap().body.clone();
        let typed: amq2api::q::types::GenerateAssistantResponseRequest =
            serde_json::from_value(sent).unwrap();
        amq2api::claude::request::check_history_rules(&typed)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // No secret in the server's log.
    let log = s.server.log();
    for secret in ["aorFAKE", "eyJFAKE", &s.key] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

#[test]
fn seed_account_from_the_environment_is_added_then_updated() {
    let fake = FakeQ::start();
    fake.add_idc("FAKECLIENTenv", "eyJFAKE-env-secret", "aorFAKE-env-refresh");
    let t = TestDir::new();
    let key = t.ok(&["keys", "create", "--name", "k"]).trim().to_owned();
    let env = [
        ("AMAZONQ_REFRESH_TOKEN", "aorFAKE-env-refresh"),
        ("AMAZONQ_CLIENT_ID", "FAKECLIENTenv"),
        ("AMAZONQ_CLIENT_SECRET", "eyJFAKE-env-secret"),
    ];
    let server = Server::start_with(&t, &fake, &env);
    let r = http(
        "POST",
        &format!("{}/v1/messages", server.url),
        &[("x-api-key", &key)],
        Some(&hello(false).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    drop(server);
    // A restart with the same variables updates the account instead of adding a second one.
    let server = Server::start_with(&t, &fake, &env);
    let list = t.json(&["accounts", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "env");
    for secret in ["aorFAKE", "eyJFAKE", "FAKECLIENTenv"] {
        assert!(!server.log().contains(secret), "{secret} in the log");
    }
}

#[test]
fn pings_keep_a_silent_stream_alive() {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let key = account_and_key(&t, &fake);
    let server = Server::start_with(&t, &fake, &[("AMQ2API_PING_INTERVAL", "1")]);
    fake.push_reply(
        Script::new()
            .text("a")
            .delay(std::time::Duration::from_millis(2500))
            .text("b")
            .end()
            .reply(),
    );
    let r = http(
        "POST",
        &format!("{}/v1/messages", server.url),
        &[("x-api-key", &key)],
        Some(&hello(true).to_string()),
    );
    let names: Vec<String> = events(&r.body).into_iter().map(|(e, _)| e).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "ping",
            "ping",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
}
