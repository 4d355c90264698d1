//! Upstream faults on both client protocols (`/v1/messages`, `/v1/chat/completions`), streamed
//! and not: a frame cut in the middle, a bad CRC, garbage, silence before the first byte and in
//! the middle, a 200 that is empty or no event stream, an in-stream exception of every class,
//! a refused connection, a host that does not resolve, and an upstream that closes its
//! keep-alive connections after each reply without saying so.
//!
//! In every case: the client gets its protocol's error (an HTTP status while nothing was sent,
//! the in-band error event after text went out), the usage row names the error class, the
//! account's health changes only as the class says, the access log names the class and no
//! secret, and the next request on the same server is served.
//!
//! A failure before Amazon Q's first event is a failure of the call (the stream is handed out
//! only after its first event), so a streaming client gets an HTTP status for it too.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fake_q::{FakeQ, QError, Reply, Script, Step};
use crate::support::{eventually, http, Response, Server, TestDir, FIXTURE_SECRETS};

const WAIT: Duration = Duration::from_secs(10);
/// `AMAZONQ_IDLE_TIMEOUT` in the silence cases.
const IDLE_SECS: &str = "2";
/// Longer than the idle timeout: the fake stays silent this long.
const SILENCE: Duration = Duration::from_secs(6);
const DEFAULT_TEXT: &str = "Hello! This is the fake Amazon Q.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Claude,
    OpenAi,
}

/// Both protocols, streamed and not.
const VARIANTS: [(Proto, bool); 4] = [
    (Proto::Claude, false),
    (Proto::Claude, true),
    (Proto::OpenAi, false),
    (Proto::OpenAi, true),
];

/// A server with `n` accounts (`acc1`..), one key, one upstream attempt per request (no
/// failover, so each fault reaches the client as it is), and `env` on top.
struct Env {
    fake: FakeQ,
    t: TestDir,
    key: String,
    server: Server,
}

fn start(n: usize, env: &[(&str, &str)]) -> Env {
    let fake = FakeQ::start();
    let t = TestDir::new();
    let entries: Vec<Value> = (1..=n)
        .map(|i| {
            fake.add_idc(
                &format!("FAKECLIENT{i}"),
                &format!("eyJFAKE-secret-{i}"),
                &format!("aorFAKE-refresh-{i}"),
            );
            json!({"clientId": format!("FAKECLIENT{i}"), "clientSecret": format!("eyJFAKE-secret-{i}"),
                   "refreshToken": format!("aorFAKE-refresh-{i}"), "label": format!("acc{i}")})
        })
        .collect();
    let file = t.path().join("accounts.json");
    std::fs::write(&file, Value::Array(entries).to_string()).unwrap();
    t.ok(&["accounts", "import", file.to_str().unwrap()]);
    let key = t
        .ok(&["keys", "create", "--name", "tester"])
        .trim()
        .to_owned();
    let mut all = vec![("AMQ2API_MAX_ACCOUNTS_PER_REQUEST", "1")];
    all.extend_from_slice(env);
    let server = Server::start_with(&t, &fake, &all);
    Env {
        fake,
        t,
        key,
        server,
    }
}

fn request_body(proto: Proto, stream: bool) -> String {
    match proto {
        Proto::Claude => json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": stream,
                                "messages": [{"role": "user", "content": "hello"}]}),
        Proto::OpenAi => json!({"model": "gpt-4o", "stream": stream,
                                "messages": [{"role": "user", "content": "hello"}]}),
    }
    .to_string()
}

fn send(url: &str, key: &str, proto: Proto, stream: bool) -> Response {
    let bearer = format!("Bearer {key}");
    let (path, auth) = match proto {
        Proto::Claude => ("/v1/messages", ("x-api-key", key)),
        Proto::OpenAi => ("/v1/chat/completions", ("authorization", bearer.as_str())),
    };
    http(
        "POST",
        &format!("{url}{path}"),
        &[auth, ("content-type", "application/json")],
        Some(&request_body(proto, stream)),
    )
}

/// What the client got.
#[derive(Debug, PartialEq)]
enum Got {
    /// An HTTP error: status and body.
    Http { status: u16, error: Value },
    /// A 200 stream: the text before the error, and the in-band error.
    InBand { text: String, error: Value },
    /// A whole answer: its text and how it ended (`stop_reason` / `finish_reason`).
    Answer { text: String, stop: String },
}

/// Reads a response the way a client would.
fn got(proto: Proto, stream: bool, r: &Response) -> Got {
    if r.status != 200 {
        return Got::Http {
            status: r.status,
            error: r.json(),
        };
    }
    if !stream {
        let v = r.json();
        return match proto {
            Proto::Claude => Got::Answer {
                text: v["content"][0]["text"].as_str().unwrap_or("").to_owned(),
                stop: v["stop_reason"].as_str().unwrap().to_owned(),
            },
            Proto::OpenAi => Got::Answer {
                text: v["choices"][0]["message"]["content"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                stop: v["choices"][0]["finish_reason"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            },
        };
    }
    let mut text = String::new();
    let mut stop = None;
    let mut error = None;
    let mut after_error = Vec::new();
    for block in r.body.split("\n\n").filter(|b| !b.trim().is_empty()) {
        // Pings: `event: ping` (Anthropic), an SSE comment (OpenAI).
        if block.starts_with(':') || block.starts_with("event: ping") {
            continue;
        }
        if error.is_some() {
            after_error.push(block.to_owned());
            continue;
        }
        let data = block
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap_or_else(|| panic!("no data line in {block:?}"));
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        match proto {
            Proto::Claude => match v["type"].as_str().unwrap() {
                "error" => {
                    assert!(block.starts_with("event: error\n"), "{block}");
                    error = Some(v);
                }
                "content_block_delta" => text.push_str(v["delta"]["text"].as_str().unwrap_or("")),
                "message_delta" => stop = v["delta"]["stop_reason"].as_str().map(str::to_owned),
                _ => {}
            },
            Proto::OpenAi => {
                if v.get("error").is_some() {
                    error = Some(v);
                } else if let Some(choice) = v["choices"].get(0) {
                    text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
                    if let Some(f) = choice["finish_reason"].as_str() {
                        stop = Some(f.to_owned());
                    }
                }
            }
        }
    }
    match error {
        Some(error) => {
            // Nothing after the error but OpenAI's `[DONE]`.
            let tail: Vec<&str> = after_error.iter().map(String::as_str).collect();
            match proto {
                Proto::Claude => assert!(tail.is_empty(), "after the error: {tail:?}"),
                Proto::OpenAi => assert_eq!(tail, ["data: [DONE]"]),
            }
            Got::InBand { text, error }
        }
        None => Got::Answer {
            text,
            stop: stop.expect("the stream ended with a stop reason"),
        },
    }
}

/// The error a client should get.
#[derive(Clone, Debug)]
struct Expect {
    /// `usage_log.error_class`.
    class: &'static str,
    /// Status on `/v1/messages` (OpenAI: the same, but 529 is 503).
    status: u16,
    anthropic_type: &'static str,
    /// OpenAI's `error.type` and `error.code`.
    openai: (&'static str, &'static str),
    /// The message, exactly; or its beginning when it ends with `…`.
    message: String,
    /// Text that reached a streaming client before the failure (then the error is in-band).
    partial: Option<&'static str>,
    /// The health of the account that served it, afterwards.
    health: &'static str,
}

impl Expect {
    fn new(class: &'static str, status: u16, message: &str) -> Expect {
        let (anthropic_type, openai_type) = match status {
            400 => ("invalid_request_error", "invalid_request_error"),
            429 => ("rate_limit_error", "requests"),
            529 => ("overloaded_error", "server_error"),
            _ => ("api_error", "server_error"),
        };
        Expect {
            class,
            status,
            anthropic_type,
            openai: (openai_type, class),
            message: message.to_owned(),
            partial: None,
            health: "active",
        }
    }

    fn after(mut self, partial: &'static str) -> Expect {
        self.partial = Some(partial);
        self
    }

    fn health(mut self, health: &'static str) -> Expect {
        self.health = health;
        self
    }

    fn openai(mut self, kind: &'static str, code: &'static str) -> Expect {
        self.openai = (kind, code);
        self
    }

    /// Checks what the client got on `proto`, streamed or not.
    fn check(&self, what: &str, proto: Proto, stream: bool, got: &Got) {
        let (error, message) = match got {
            Got::Http { status, error } => {
                assert!(
                    !stream || self.partial.is_none(),
                    "{what}: text went out first, the error must be in-band: {got:?}"
                );
                let want = match (proto, self.status) {
                    (Proto::OpenAi, 529) => 503,
                    (_, s) => s,
                };
                assert_eq!(*status, want, "{what}: {got:?}");
                (error, error_message(proto, error))
            }
            Got::InBand { text, error } => {
                assert!(
                    stream && self.partial.is_some(),
                    "{what}: nothing went out, the error must be an HTTP status: {got:?}"
                );
                assert_eq!(Some(text.as_str()), self.partial, "{what}");
                (error, error_message(proto, error))
            }
            Got::Answer { .. } => panic!("{what}: an answer instead of an error: {got:?}"),
        };
        match self.message.strip_suffix('…') {
            Some(prefix) => assert!(
                message.starts_with(prefix),
                "{what}: {message:?} does not start with {prefix:?}"
            ),
            None => assert_eq!(message, self.message, "{what}"),
        }
        let want = match proto {
            Proto::Claude => {
                json!({"type": "error", "error": {"type": self.anthropic_type, "message": message}})
            }
            Proto::OpenAi => json!({"error": {"message": message, "type": self.openai.0,
                                              "param": null, "code": self.openai.1}}),
        };
        assert_eq!(error, &want, "{what}");
    }
}

fn error_message(proto: Proto, error: &Value) -> String {
    match proto {
        Proto::Claude => &error["error"]["message"],
        Proto::OpenAi => &error["error"]["message"],
    }
    .as_str()
    .unwrap_or_else(|| panic!("no message in {error}"))
    .to_owned()
}

fn rows(t: &TestDir) -> Vec<amq2api::db::usage::UsageRecord> {
    amq2api::db::usage::list_since(&mut t.pool().get().unwrap(), 0).unwrap()
}

/// Waits for the `n`-th usage row and returns it.
fn row(t: &TestDir, n: usize) -> amq2api::db::usage::UsageRecord {
    eventually(&format!("usage row {n}"), WAIT, || {
        rows(t).into_iter().nth(n - 1)
    })
}

/// `(name, health)` of every account, sorted by name.
fn healths(t: &TestDir) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = t
        .json(&["accounts", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["health"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    all.sort();
    all
}

/// The log has the access line with the class, and no secret.
fn check_log(env: &Env, what: &str, class: &str) {
    let log = eventually(&format!("{what}: error={class} in the log"), WAIT, || {
        let log = env.server.log();
        log.contains(&format!(" error={class}")).then_some(log)
    });
    assert_no_secret(env, &log);
}

fn assert_no_secret(env: &Env, log: &str) {
    for secret in
        FIXTURE_SECRETS
            .iter()
            .copied()
            .chain([env.key.as_str(), "aoaAAAAAGfake", "Bearer "])
    {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

/// A normal request on the same server still works.
fn still_serving(env: &Env) {
    let r = send(&env.server.url, &env.key, Proto::Claude, false);
    assert_eq!(
        got(Proto::Claude, false, &r),
        Got::Answer {
            text: DEFAULT_TEXT.into(),
            stop: "end_turn".into()
        }
    );
}

/// One fault on all four variants, each served by another account (five accounts, the fifth
/// for the normal request at the end).
fn run_case(what: &str, reply: Reply, expect: &Expect, env_extra: &[(&str, &str)]) {
    let env = start(5, env_extra);
    for (i, (proto, stream)) in VARIANTS.into_iter().enumerate() {
        let what = format!("{what} on {proto:?}, stream {stream}");
        env.fake.push_reply(reply.clone());
        let r = send(&env.server.url, &env.key, proto, stream);
        expect.check(&what, proto, stream, &got(proto, stream, &r));
        let row = row(&env.t, i + 1);
        assert_eq!(row.error_class.as_deref(), Some(expect.class), "{what}");
        // The accounts that served so far (the fake knows them by their tokens), and only
        // they, are in the class's state. (A failure before the answer started leaves the
        // row's account empty.)
        let served: Vec<usize> = env
            .fake
            .requests()
            .iter()
            .map(|r| r.account.expect("a known token"))
            .collect();
        assert_eq!(served.len(), i + 1, "{what}: one upstream call");
        let want: Vec<(String, String)> = (0..5)
            .map(|a| {
                let changed = expect.health != "active" && served.contains(&a);
                let health = if changed { expect.health } else { "active" };
                (format!("acc{}", a + 1), health.to_owned())
            })
            .collect();
        eventually(&format!("{what}: {want:?}"), WAIT, || {
            (healths(&env.t) == want).then_some(())
        });
        check_log(&env, &what, expect.class);
    }
    assert_eq!(
        env.fake.pending_replies(),
        0,
        "{what}: one upstream call each"
    );
    still_serving(&env);
}

fn text_then(step: Step) -> Reply {
    Script::new().metadata().text("partial").step(step).reply()
}

fn content(text: &str) -> Value {
    json!({ "content": text })
}

// ---- broken streams -----------------------------------------------------------------------

#[test]
fn a_frame_cut_in_the_middle_after_some_text() {
    let step = Step::DropMidFrame {
        event_type: "assistantResponseEvent".into(),
        payload: content(" and more"),
    };
    let expect = Expect::new(
        "stream_corrupt",
        502,
        "Amazon Q sent an undecodable event stream: event stream ended inside a frame…",
    )
    .after("partial");
    run_case("drop mid-frame", text_then(step), &expect, &[]);
}

#[test]
fn a_connection_reset_after_some_text() {
    let expect = Expect::new(
        "network",
        502,
        "the connection to Amazon Q broke: the stream broke off: …",
    )
    .after("partial");
    run_case("reset mid-stream", text_then(Step::Abort), &expect, &[]);
}

#[test]
fn a_corrupt_crc_after_some_text_and_as_the_first_frame() {
    let corrupt = Step::CorruptCrc {
        event_type: "assistantResponseEvent".into(),
        payload: content(" and more"),
    };
    let expect = Expect::new(
        "stream_corrupt",
        502,
        "Amazon Q sent an undecodable event stream: …",
    );
    run_case(
        "corrupt CRC after text",
        text_then(corrupt.clone()),
        &expect.clone().after("partial"),
        &[],
    );
    run_case(
        "corrupt CRC first",
        Script::new().step(corrupt).reply(),
        &expect,
        &[],
    );
}

#[test]
fn garbage_bytes_after_some_text_and_instead_of_a_stream() {
    let garbage = Step::Raw(b"\x00\x00\x00\x10garbage garbage garbage".to_vec());
    let expect = Expect::new(
        "stream_corrupt",
        502,
        "Amazon Q sent an undecodable event stream: …",
    );
    run_case(
        "garbage after text",
        text_then(garbage.clone()),
        &expect.clone().after("partial"),
        &[],
    );
    run_case(
        "garbage first",
        Script::new().step(garbage).reply(),
        &expect,
        &[],
    );
}

// ---- odd 200s -----------------------------------------------------------------------------

#[test]
fn a_200_with_an_empty_body() {
    let expect = Expect::new(
        "server_error",
        502,
        "Amazon Q failed (HTTP 200): answered with an empty event stream",
    );
    run_case("empty 200", Reply::empty_stream(), &expect, &[]);
}

#[test]
fn a_200_that_is_no_event_stream() {
    let expect = Expect::new(
        "server_error",
        502,
        "Amazon Q failed (HTTP 200): answered with content type text/html; charset=utf-8 instead of an event stream",
    );
    let reply = Reply::with_content_type(
        200,
        "text/html; charset=utf-8",
        "<html><body>Sign in to continue</body></html>",
    );
    run_case("200 text/html", reply, &expect, &[]);
}

// ---- silence ------------------------------------------------------------------------------

#[test]
fn no_first_byte_within_the_idle_timeout() {
    let expect = Expect::new(
        "timeout",
        504,
        "Amazon Q timed out: no answer within the idle timeout (2 s)",
    );
    let reply = Reply::delayed(SILENCE, Reply::default_text());
    run_case(
        "no status line",
        reply,
        &expect,
        &[("AMAZONQ_IDLE_TIMEOUT", IDLE_SECS)],
    );
    // A 200 whose first event does not come: the same for the client.
    let expect = Expect::new(
        "timeout",
        504,
        "Amazon Q timed out: no data from Amazon Q for 2 s",
    );
    let reply = Script::new().delay(SILENCE).text("too late").end().reply();
    run_case(
        "200 then silence",
        reply,
        &expect,
        &[("AMAZONQ_IDLE_TIMEOUT", IDLE_SECS)],
    );
}

#[test]
fn silence_mid_stream_longer_than_the_idle_timeout() {
    let expect = Expect::new(
        "timeout",
        504,
        "Amazon Q timed out: no data from Amazon Q for 2 s",
    )
    .after("partial");
    let reply = text_then(Step::Delay(SILENCE));
    run_case(
        "silence mid-stream",
        reply,
        &expect,
        &[("AMAZONQ_IDLE_TIMEOUT", IDLE_SECS)],
    );
}

#[test]
fn pings_do_not_stretch_the_idle_timeout() {
    // Pings every second while Amazon Q says nothing for 3 s: the stream is committed after a
    // second, so a streaming client gets pings, then the timeout in-band (after no text); the
    // others a 504.
    let env = start(
        1,
        &[
            ("AMAZONQ_IDLE_TIMEOUT", "3"),
            ("AMQ2API_PING_INTERVAL", "1"),
        ],
    );
    for (i, (proto, stream)) in VARIANTS.into_iter().enumerate() {
        env.fake
            .push_reply(Reply::delayed(SILENCE, Reply::default_text()));
        let started = Instant::now();
        let r = send(&env.server.url, &env.key, proto, stream);
        let message = "Amazon Q timed out: no answer within the idle timeout (3 s)";
        let want = match (stream, proto) {
            (false, Proto::Claude) => Got::Http {
                status: 504,
                error: json!({"type": "error", "error": {"type": "api_error", "message": message}}),
            },
            (false, Proto::OpenAi) => Got::Http {
                status: 504,
                error: json!({"error": {"message": message, "type": "server_error", "param": null, "code": "timeout"}}),
            },
            (true, Proto::Claude) => Got::InBand {
                text: String::new(),
                error: json!({"type": "error", "error": {"type": "api_error", "message": message}}),
            },
            (true, Proto::OpenAi) => Got::InBand {
                text: String::new(),
                error: json!({"error": {"message": message, "type": "server_error", "param": null, "code": "timeout"}}),
            },
        };
        assert_eq!(got(proto, stream, &r), want, "{proto:?} stream {stream}");
        if stream {
            let ping = match proto {
                Proto::Claude => "event: ping\n",
                Proto::OpenAi => ": ping\n",
            };
            assert!(r.body.contains(ping), "{}", r.body);
        }
        assert!(started.elapsed() < SILENCE, "the idle timeout ended it");
        assert_eq!(row(&env.t, i + 1).error_class.as_deref(), Some("timeout"));
    }
    check_log(&env, "pings", "timeout");
    assert_eq!(healths(&env.t), [("acc1".into(), "active".into())]);
    still_serving(&env);
}

// ---- in-stream exceptions -----------------------------------------------------------------

/// Every class an exception frame can carry, with what it does to the account.
fn exception_cases() -> Vec<(Step, Expect)> {
    let q = |e: &QError| Step::exception_for(e);
    let rejected = |code: &str, message: &str| {
        format!("Amazon Q rejected the request mid-stream ({code}): {message}")
    };
    let failed =
        |code: &str, message: &str| format!("Amazon Q failed mid-stream ({code}): {message}");
    vec![
        (
            q(&QError::Throttled),
            Expect::new("throttled", 429, &rejected("ThrottlingException", "Rate exceeded"))
                .openai("requests", "rate_limit_exceeded")
                .health("cooling"),
        ),
        (
            q(&QError::DailyQuota),
            Expect::new(
                "daily_quota",
                429,
                &rejected("ThrottlingException", "Daily request limit reached."),
            )
            .openai("insufficient_quota", "insufficient_quota")
            .health("quota"),
        ),
        (
            q(&QError::MonthlyQuota),
            Expect::new(
                "monthly_quota",
                429,
                &rejected("ThrottlingException", "Maximum Request reached for this month."),
            )
            .openai("insufficient_quota", "insufficient_quota")
            .health("quota"),
        ),
        (
            q(&QError::TemporarilySuspended),
            Expect::new(
                "suspended",
                502,
                &rejected("AccessDeniedException", "Your User ID (…"),
            )
            .health("suspended"),
        ),
        (
            q(&QError::ProfileArnRequired),
            Expect::new(
                "profile_required",
                502,
                &rejected("ValidationException", "profileArn is required for this request."),
            )
            .health("disabled"),
        ),
        (
            q(&QError::InvalidCredential),
            Expect::new(
                "access_denied",
                502,
                &rejected("ValidationException", "The provided credential is invalid."),
            )
            .health("cooling"),
        ),
        (
            q(&QError::BearerInvalid),
            Expect::new(
                "access_token_invalid",
                502,
                &rejected(
                    "AccessDeniedException",
                    "The bearer token included in the request is invalid.",
                ),
            ),
        ),
        (
            q(&QError::InsufficientModelCapacity),
            Expect::new(
                "model_overloaded",
                529,
                &failed(
                    "ThrottlingException",
                    "I am experiencing high traffic, please try again shortly.",
                ),
            ),
        ),
        (
            q(&QError::ServiceUnavailable),
            Expect::new(
                "model_overloaded",
                529,
                &failed(
                    "ServiceUnavailableException",
                    "The service is temporarily unavailable. Please try again later.",
                ),
            ),
        ),
        (
            q(&QError::InternalError),
            Expect::new(
                "server_error",
                502,
                &failed("InternalServerException", "Encountered an unexpected error…"),
            ),
        ),
        (
            Step::error("InternalFailure", "boom"),
            Expect::new(
                "server_error",
                502,
                &failed("InternalFailure", "boom"),
            ),
        ),
        (
            q(&QError::ImproperlyFormed),
            Expect::new(
                "invalid_request",
                400,
                &rejected("ValidationException", "Improperly formed request."),
            ),
        ),
        (
            q(&QError::InputTooLong),
            Expect::new(
                "input_too_long",
                400,
                "The conversation is too long for Amazon Q (Input is too long). Start a new conversation or compact this one.",
            )
            .openai("invalid_request_error", "context_length_exceeded"),
        ),
        (
            q(&QError::InvalidModelId),
            Expect::new(
                "invalid_model",
                400,
                "Amazon Q does not accept this model: Invalid model. Please select a different model to continue.",
            )
            .openai("invalid_request_error", "model_not_found"),
        ),
    ]
}

#[test]
fn an_in_stream_exception_of_each_class_after_some_text() {
    for (step, expect) in exception_cases() {
        let what = format!("{} after text", expect.class);
        run_case(&what, text_then(step), &expect.after("partial"), &[]);
    }
}

#[test]
fn an_in_stream_exception_as_the_first_frame_is_an_http_status() {
    // Before the first event nothing went out: the status, as for an HTTP error.
    for (step, expect) in exception_cases().into_iter().filter(|(_, e)| {
        ["throttled", "suspended", "model_overloaded", "server_error"].contains(&e.class)
    }) {
        let what = format!("{} first", expect.class);
        run_case(&what, Script::new().step(step).reply(), &expect, &[]);
    }
}

#[test]
fn the_output_length_cap_mid_stream_is_a_normal_end() {
    let env = start(1, &[]);
    for (proto, stream) in VARIANTS {
        env.fake
            .push_reply(text_then(Step::content_length_exceeded()));
        let r = send(&env.server.url, &env.key, proto, stream);
        let stop = match proto {
            Proto::Claude => "max_tokens",
            Proto::OpenAi => "length",
        };
        assert_eq!(
            got(proto, stream, &r),
            Got::Answer {
                text: "partial".into(),
                stop: stop.into()
            },
            "{proto:?} stream {stream}"
        );
    }
    eventually("4 rows", WAIT, || (rows(&env.t).len() == 4).then_some(()));
    assert!(rows(&env.t).iter().all(|r| r.error_class.is_none()));
    assert_eq!(healths(&env.t), [("acc1".into(), "active".into())]);
}

// ---- Amazon Q unreachable -----------------------------------------------------------------

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn connection_refused_never_counts_against_the_account() {
    let port = closed_port();
    let endpoint = format!("http://127.0.0.1:{port}/");
    // Two failures in a row would cool an account down if they counted.
    let env = start(
        1,
        &[
            ("AMAZONQ_API_ENDPOINT", endpoint.as_str()),
            ("AMQ2API_FAILURE_THRESHOLD", "2"),
        ],
    );
    let expect = Expect::new(
        "unreachable",
        502,
        &format!("could not reach Amazon Q: cannot connect to 127.0.0.1:{port}: …"),
    );
    let mut n = 0;
    for _ in 0..2 {
        for (proto, stream) in VARIANTS {
            let r = send(&env.server.url, &env.key, proto, stream);
            let what = format!("refused on {proto:?}, stream {stream}");
            expect.check(&what, proto, stream, &got(proto, stream, &r));
            n += 1;
            assert_eq!(
                row(&env.t, n).error_class.as_deref(),
                Some("unreachable"),
                "{what}"
            );
        }
    }
    check_log(&env, "refused", "unreachable");
    assert!(env.server.log().contains("Connection refused"));
    assert_eq!(healths(&env.t), [("acc1".into(), "active".into())]);
    // Still serving: health, and a client error answered without Amazon Q.
    let health = http("GET", &format!("{}/health", env.server.url), &[], None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["active_accounts"], 1);
    let bad = http(
        "POST",
        &format!("{}/v1/messages", env.server.url),
        &[
            ("x-api-key", &env.key),
            ("content-type", "application/json"),
        ],
        Some(r#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}"#),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
}

/// Exactly one lookup of a reserved (RFC 6761) name per test: the resolver is off-machine.
fn dns_failure(proto: Proto, stream: bool) {
    let env = start(
        1,
        &[("AMAZONQ_API_ENDPOINT", "http://amazonq-upstream.invalid:9/")],
    );
    let r = send(&env.server.url, &env.key, proto, stream);
    let expect = Expect::new(
        "unreachable",
        502,
        "could not reach Amazon Q: cannot resolve the host amazonq-upstream.invalid:9 (…",
    );
    expect.check("DNS failure", proto, stream, &got(proto, stream, &r));
    assert_eq!(row(&env.t, 1).error_class.as_deref(), Some("unreachable"));
    check_log(&env, "DNS failure", "unreachable");
    assert_eq!(healths(&env.t), [("acc1".into(), "active".into())]);
    let health = http("GET", &format!("{}/health", env.server.url), &[], None);
    assert_eq!(health.json()["active_accounts"], 1);
}

#[test]
fn dns_failure_of_the_configured_host_on_messages() {
    dns_failure(Proto::Claude, false);
}

#[test]
fn dns_failure_of_the_configured_host_on_chat_completions() {
    dns_failure(Proto::OpenAi, true);
}

// ---- keep-alive connections closed without notice -----------------------------------------

fn check_answer(proto: Proto, stream: bool, r: &Response) -> Result<(), String> {
    let got = got(proto, stream, r);
    let stop = match proto {
        Proto::Claude => "end_turn",
        Proto::OpenAi => "stop",
    };
    let want = Got::Answer {
        text: DEFAULT_TEXT.into(),
        stop: stop.into(),
    };
    if got == want {
        Ok(())
    } else {
        Err(format!("{proto:?} stream {stream}: {got:?}"))
    }
}

#[test]
fn dead_keep_alive_connections_are_retried_invisibly_under_load() {
    let env = start(
        2,
        &[("RUST_LOG", "info,amq2api::q=debug,actix_server=warn")],
    );
    env.fake.set_close_reused_connections(true);
    let started = Instant::now();
    let mut failures = Vec::new();
    // 200 one after the other, on every variant.
    for i in 0..200 {
        let (proto, stream) = VARIANTS[i % 4];
        let r = send(&env.server.url, &env.key, proto, stream);
        failures.extend(check_answer(proto, stream, &r).err());
    }
    // 20 at a time, 5 each.
    let url = env.server.url.clone();
    let threads: Vec<_> = (0..20)
        .map(|t| {
            let (url, key) = (url.clone(), env.key.clone());
            std::thread::spawn(move || {
                (0..5)
                    .filter_map(|i| {
                        let (proto, stream) = VARIANTS[(t + i) % 4];
                        check_answer(proto, stream, &send(&url, &key, proto, stream)).err()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        failures.extend(t.join().unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} failed requests, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    // The fault happened, and often.
    let dropped = env.fake.dropped_reused_requests();
    eprintln!(
        "300 requests in {:.1} s, {dropped} found their pooled connection dead",
        started.elapsed().as_secs_f64()
    );
    assert!(
        dropped >= 50,
        "only {dropped} reused connections were found dead"
    );
    let all = eventually("300 usage rows", WAIT, || {
        let all = rows(&env.t);
        (all.len() == 300).then_some(all)
    });
    assert!(all
        .iter()
        .all(|r| r.error_class.is_none() && r.status == 200));
    assert_eq!(
        healths(&env.t),
        [
            ("acc1".into(), "active".into()),
            ("acc2".into(), "active".into())
        ]
    );
    let log = env.server.log();
    assert!(
        log.contains("retrying once on a fresh connection"),
        "the retry is logged at debug"
    );
    assert!(!log.contains(" error="), "{log}");
    assert_no_secret(&env, &log);
}
