//! A fake Amazon Q (CodeWhisperer streaming service + AWS SSO-OIDC + Kiro social auth) for tests.
//!
//! Amazon Q is never reachable from the test machines, so every test talks to this fake instead.
//! It follows `docs/amazon-q-protocol.md` (§0, §1, §3.1–3.2, §5, §6), including its failures.
//! Event-stream frames are encoded with `aws_smithy_eventstream::frame::write_message_to`, never
//! with the crate's own code (the crate's decoder is the code under test).
//!
//! # Running it
//!
//! [`FakeQ::start`] spawns a std thread with its own `actix_web::rt::System` and a one-worker
//! actix-web server on `127.0.0.1:0`, and returns once it is listening, so sync tests and async
//! tests can both use it. Dropping the [`FakeQ`] stops the server (`ServerHandle::stop(false)`,
//! open connections are cut) and joins the thread. [`FakeQ::start_on`] picks the port.
//! All state lives behind an `Arc<Mutex<..>>` shared by the handle and the server.
//!
//! # Endpoints
//!
//! | URL helper | request | answers |
//! |---|---|---|
//! | [`FakeQ::api_url`] `POST /` | dialect A: `Content-Type: application/x-amz-json-1.0`, `X-Amz-Target: AmazonCodeWhispererStreamingService.GenerateAssistantResponse` (also `AmazonCodeWhispererService.ListAvailableModels`) | event stream or JSON error |
//! | [`FakeQ::rest_url`] `POST /generateAssistantResponse` | dialect B: `Content-Type: application/json` | event stream or JSON error |
//! | [`FakeQ::token_url`] `POST /token` | SSO-OIDC `CreateToken`, camelCase `{"clientId","clientSecret","grantType":"refresh_token","refreshToken"}` | §1.1 token JSON / `{"error","error_description"}` |
//! | [`FakeQ::social_url`] `POST /refreshToken` | Kiro social refresh `{"refreshToken"}` | `{"accessToken","expiresIn","profileArn","refreshToken"}` |
//!
//! # Chat request checks, in order (the first failing one answers)
//!
//! 1. Dialect A: content type `application/x-amz-json-1.0` and a known `X-Amz-Target`, else
//!    400 `{"__type":"com.amazon.coral.service#UnknownOperationException","message":null}`.
//!    Dialect B: content type `application/json`, else 415 `{"message":"Unsupported Media Type","reason":null}`.
//! 2. `Authorization: Bearer <t>` where `t` was issued by this fake, is not revoked and not past
//!    its `expiresIn`, else 403 [`QError::BearerInvalid`].
//! 3. The body is JSON and well formed (see [`validate_chat_body`]), else 400
//!    [`QError::ImproperlyFormed`] (`Improperly formed request.`).
//! 4. A social account's token must come with a top-level `profileArn` (on by default, see
//!    [`FakeQ::set_enforce_profile_arn`]), else 400 [`QError::ProfileArnRequired`].
//! 5. When [`FakeQ::set_valid_models`] is set, `currentMessage.userInputMessage.modelId` (if any)
//!    must be listed, else 400 [`QError::InvalidModelId`].
//!
//! Only then is a reply consumed: a sticky per-account error ([`FakeQ::set_account_error`]), else
//! the account's own queue ([`FakeQ::push_reply_for`]), else the global queue
//! ([`FakeQ::push_reply`]), else the default reply ([`FakeQ::set_default_reply`], initially
//! [`Reply::default_text`]). Every request to `/` or `/generateAssistantResponse` is recorded,
//! rejected ones included ([`FakeQ::requests`] for chats, [`FakeQ::all_requests`] for all).
//!
//! # Replies
//!
//! * [`Reply::Events`]: `200`, `application/vnd.amazon.eventstream`, a streaming body; each
//!   [`Step`] is written to the socket separately (the stream yields between steps, and pieces
//!   of a [`Step::Split`] are [`SPLIT_GAP`] apart), so [`Step::Delay`]s are real.
//!   Broken streams: [`Step::CorruptCrc`], [`Step::Raw`], [`Step::DropMidFrame`] (half a frame,
//!   then [`Step::Close`]: FIN without the terminating chunk, which awc 3 reports as a normal
//!   end of body) and [`Step::Abort`] (TCP reset: the client's read fails with `ECONNRESET`).
//! * [`Reply::Http`]: any status, headers and body.
//! * [`Reply::Error`]: a §6.2 catalogue error ([`QError`]), body in the request's dialect.
//! * [`Reply::Delay`]: wait before sending anything (status line included).
//!
//! Helpers: [`Reply::text`], [`Reply::tool_call`], [`Reply::thinking`], [`Reply::text_in_chunks`],
//! [`Reply::error`], and the [`Script`] builder for anything else.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use aws_smithy_types::str_bytes::StrBytes;
use bytes::Bytes;
use serde_json::{json, Value};

/// `X-Amz-Target` of the chat operation (dialect A).
pub const TARGET_GENERATE: &str = "AmazonCodeWhispererStreamingService.GenerateAssistantResponse";
/// `X-Amz-Target` of the model listing (§4.3).
pub const TARGET_LIST_MODELS: &str = "AmazonCodeWhispererService.ListAvailableModels";
/// Dialect A content type.
pub const AMZ_JSON: &str = "application/x-amz-json-1.0";
/// Content type of a successful chat response.
pub const EVENTSTREAM: &str = "application/vnd.amazon.eventstream";
/// `conversationId` in the `messageMetadataEvent` of the scripted helpers.
pub const FAKE_CONVERSATION_ID: &str = "3d0c8c52-6a3e-4a8f-9d0e-0d6f1b7f2a11";
/// `utteranceId` in the `messageMetadataEvent` of the scripted helpers.
pub const FAKE_UTTERANCE_ID: &str = "b7e1c0de-0000-4000-8000-000000000001";
/// Pause between the pieces of a [`Step::Split`], so a client sees them as separate reads.
pub const SPLIT_GAP: Duration = Duration::from_millis(2);
/// Pause before a [`Step::Abort`] resets a connection that already carried data.
pub const ABORT_GRACE: Duration = Duration::from_millis(20);
/// `profileArn` used by the example binary for social accounts.
pub const FAKE_PROFILE_ARN: &str =
    "arn:aws:codewhisperer:us-east-1:123456789012:profile/FAKEPROFILE1";

const OIDC_ERROR_NS: &str = "http://internal.amazon.com/coral/com.amazonaws.sso.oidc/";
const CW_NS: &str = "com.amazon.aws.codewhisperer#";
const MAX_BODY: usize = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Frame encoding (smithy)
// ---------------------------------------------------------------------------------------------

/// Encodes one event-stream message whose headers are all strings (type 7), in the given order.
pub fn encode_frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let headers = headers
        .iter()
        .map(|(name, value)| {
            Header::new(
                StrBytes::from(name.to_string()),
                HeaderValue::String(StrBytes::from(value.to_string())),
            )
        })
        .collect();
    let message = Message::new_from_parts(headers, Bytes::copy_from_slice(payload));
    let mut out = Vec::new();
    write_message_to(&message, &mut out).expect("smithy encodes the frame");
    out
}

/// An `event` frame: headers `:event-type`, `:content-type: application/json`, `:message-type: event`.
pub fn encode_event(event_type: &str, payload: &[u8]) -> Vec<u8> {
    encode_frame(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// An `exception` frame: `:exception-type`, `:content-type: application/json`, `:message-type: exception`.
pub fn encode_exception(exception_type: &str, payload: &[u8]) -> Vec<u8> {
    encode_frame(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload,
    )
}

/// An `error` frame (unmodeled error): `:error-code`, `:error-message`, `:message-type: error`, empty payload.
pub fn encode_error(code: &str, message: &str) -> Vec<u8> {
    encode_frame(
        &[
            (":error-code", code),
            (":error-message", message),
            (":message-type", "error"),
        ],
        b"",
    )
}

fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON serializes")
}

// ---------------------------------------------------------------------------------------------
// Scripts
// ---------------------------------------------------------------------------------------------

/// One piece of a scripted event stream.
#[derive(Clone, Debug)]
pub enum Step {
    /// An event frame; the payload is serialized with `serde_json::to_vec`.
    Event { event_type: String, payload: Value },
    /// An event frame with an arbitrary payload (e.g. invalid JSON, exact key order).
    EventBytes {
        event_type: String,
        payload: Vec<u8>,
    },
    /// An exception frame (`:message-type: exception`).
    Exception {
        exception_type: String,
        payload: Value,
    },
    /// An unmodeled error frame (`:message-type: error`), empty payload.
    Error { code: String, message: String },
    /// Sleep before the next step.
    Delay(Duration),
    /// Arbitrary bytes, written as they are.
    Raw(Vec<u8>),
    /// An event frame whose message CRC (its last byte) is wrong.
    CorruptCrc { event_type: String, payload: Value },
    /// The first half of an event frame, then the connection is closed ([`Step::Close`]).
    DropMidFrame { event_type: String, payload: Value },
    /// One event frame, written in several pieces split at the byte offsets `at`
    /// (out-of-range or unsorted offsets are clamped/sorted), [`SPLIT_GAP`] apart.
    Split {
        event_type: String,
        payload: Value,
        at: Vec<usize>,
    },
    /// Close the connection now (FIN) without the terminating zero-length chunk. Later steps
    /// are not sent. Note: awc 3 cannot tell this from a normal end of body (it ends the body
    /// quietly on EOF), so a client sees whatever bytes came before, e.g. half a frame.
    Close,
    /// Reset the connection now (TCP RST via `SO_LINGER` 0), after a [`ABORT_GRACE`] pause if
    /// anything was written, so the client has read it. The client's next read fails
    /// (`ECONNRESET`). Later steps are not sent.
    Abort,
}

impl Step {
    pub fn event(event_type: &str, payload: Value) -> Step {
        Step::Event {
            event_type: event_type.to_string(),
            payload,
        }
    }

    /// `assistantResponseEvent {"content": text}`.
    pub fn text(text: &str) -> Step {
        Step::event("assistantResponseEvent", json!({ "content": text }))
    }

    pub fn exception(exception_type: &str, payload: Value) -> Step {
        Step::Exception {
            exception_type: exception_type.to_string(),
            payload,
        }
    }

    pub fn error(code: &str, message: &str) -> Step {
        Step::Error {
            code: code.to_string(),
            message: message.to_string(),
        }
    }

    /// The in-stream form of a catalogue error: `:exception-type` = the short type name
    /// (e.g. `ThrottlingException`), payload `{"message":…,"reason":…}`.
    pub fn exception_for(error: &QError) -> Step {
        let short = error.type_name().unwrap_or("InternalServerException");
        let short = short.rsplit('#').next().unwrap_or(short).to_string();
        Step::Exception {
            exception_type: short,
            payload: json!({ "message": error.message(), "reason": error.reason() }),
        }
    }

    /// Kiro's mid-stream "output hit the length cap" exception (§5.2).
    pub fn content_length_exceeded() -> Step {
        Step::exception(
            "ContentLengthExceededException",
            json!({ "message": "The response exceeded the maximum content length.", "reason": null }),
        )
    }

    /// The bytes this step puts on the wire (all pieces of a split, the half frame of a
    /// drop, nothing for delays and aborts).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Step::Event {
                event_type,
                payload,
            } => encode_event(event_type, &json_bytes(payload)),
            Step::EventBytes {
                event_type,
                payload,
            } => encode_event(event_type, payload),
            Step::Exception {
                exception_type,
                payload,
            } => encode_exception(exception_type, &json_bytes(payload)),
            Step::Error { code, message } => encode_error(code, message),
            Step::Delay(_) | Step::Close | Step::Abort => Vec::new(),
            Step::Raw(bytes) => bytes.clone(),
            Step::CorruptCrc {
                event_type,
                payload,
            } => {
                let mut frame = encode_event(event_type, &json_bytes(payload));
                let last = frame.len() - 1;
                frame[last] ^= 0xFF;
                frame
            }
            Step::DropMidFrame {
                event_type,
                payload,
            } => {
                let frame = encode_event(event_type, &json_bytes(payload));
                frame[..frame.len() / 2].to_vec()
            }
            Step::Split {
                event_type,
                payload,
                ..
            } => encode_event(event_type, &json_bytes(payload)),
        }
    }
}

/// What the fake answers to one chat request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// `200 application/vnd.amazon.eventstream`, streamed step by step.
    Events(Vec<Step>),
    /// Any HTTP answer. Without a `content-type` header the dialect's JSON type is used.
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// A §6.2 catalogue error, with the body in the request's dialect ([`QError::body`]).
    Error(QError),
    /// Wait, then answer with the inner reply (nothing, not even the status line, is sent before).
    Delay(Duration, Box<Reply>),
}

impl Reply {
    /// messageMetadataEvent, one assistantResponseEvent per chunk, meteringEvent, contextUsageEvent.
    pub fn text(chunks: &[&str]) -> Reply {
        Script::new().metadata().texts(chunks).end().reply()
    }

    /// The default reply: `Hello! This is the fake Amazon Q.` in three events.
    pub fn default_text() -> Reply {
        Reply::text(&["Hello! ", "This is the fake ", "Amazon Q."])
    }

    /// [`Reply::text`] of `full`, cut every `chunk_chars` characters.
    pub fn text_in_chunks(full: &str, chunk_chars: usize) -> Reply {
        let chunks = chunk_chars_of(full, chunk_chars.max(1));
        let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
        Reply::text(&refs)
    }

    /// `<thinking>{thinking}</thinking>\n\n{answer}` as text events of 5 characters each, so
    /// both tags straddle event boundaries (§7.6).
    pub fn thinking(thinking: &str, answer: &str) -> Reply {
        Reply::text_in_chunks(&format!("<thinking>{thinking}</thinking>\n\n{answer}"), 5)
    }

    /// messageMetadataEvent, a tool call (start event without input, one event per input
    /// fragment, a `stop: true` event), meteringEvent, contextUsageEvent.
    pub fn tool_call(tool_use_id: &str, name: &str, input_fragments: &[&str]) -> Reply {
        Script::new()
            .metadata()
            .tool_use(tool_use_id, name, input_fragments)
            .end()
            .reply()
    }

    /// A catalogue error (see [`QError`]).
    pub fn error(error: QError) -> Reply {
        Reply::Error(error)
    }

    /// An HTTP answer with a JSON body.
    pub fn http(status: u16, body: &str) -> Reply {
        Reply::Http {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    pub fn delayed(delay: Duration, reply: Reply) -> Reply {
        Reply::Delay(delay, Box::new(reply))
    }

    /// The HTTP status this reply answers with.
    pub fn status(&self) -> u16 {
        match self {
            Reply::Events(_) => 200,
            Reply::Http { status, .. } => *status,
            Reply::Error(error) => error.status(),
            Reply::Delay(_, inner) => inner.status(),
        }
    }

    /// For [`Reply::Events`]: the exact body bytes a client receives (empty for other replies).
    pub fn expected_body(&self) -> Vec<u8> {
        match self {
            Reply::Events(steps) => steps.iter().flat_map(Step::encode).collect(),
            Reply::Delay(_, inner) => inner.expected_body(),
            _ => Vec::new(),
        }
    }
}

fn chunk_chars_of(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(n).map(|c| c.iter().collect()).collect()
}

/// Builder for [`Reply::Events`].
#[derive(Clone, Debug, Default)]
pub struct Script {
    steps: Vec<Step>,
}

impl Script {
    pub fn new() -> Script {
        Script::default()
    }

    pub fn step(mut self, step: Step) -> Script {
        self.steps.push(step);
        self
    }

    pub fn event(self, event_type: &str, payload: Value) -> Script {
        self.step(Step::event(event_type, payload))
    }

    /// `initial-response {}` (the AWS-JSON RPC initial message, §5.2).
    pub fn initial_response(self) -> Script {
        self.event("initial-response", json!({}))
    }

    /// `messageMetadataEvent {"conversationId","utteranceId"}` with the fixed fake ids.
    pub fn metadata(self) -> Script {
        self.event(
            "messageMetadataEvent",
            json!({ "conversationId": FAKE_CONVERSATION_ID, "utteranceId": FAKE_UTTERANCE_ID }),
        )
    }

    pub fn text(self, text: &str) -> Script {
        self.step(Step::text(text))
    }

    pub fn texts(self, chunks: &[&str]) -> Script {
        chunks.iter().fold(self, |script, chunk| script.text(chunk))
    }

    /// `toolUseEvent`s: start (no input), one per fragment, then `stop: true`.
    pub fn tool_use(self, tool_use_id: &str, name: &str, input_fragments: &[&str]) -> Script {
        let mut script = self.event(
            "toolUseEvent",
            json!({ "toolUseId": tool_use_id, "name": name }),
        );
        for fragment in input_fragments {
            script = script.event(
                "toolUseEvent",
                json!({ "toolUseId": tool_use_id, "name": name, "input": fragment }),
            );
        }
        script.event(
            "toolUseEvent",
            json!({ "toolUseId": tool_use_id, "name": name, "stop": true }),
        )
    }

    /// `reasoningContentEvent {"text": text}` (native reasoning, rare).
    pub fn reasoning(self, text: &str) -> Script {
        self.event("reasoningContentEvent", json!({ "text": text }))
    }

    /// `meteringEvent {"unit":"credit","unitPlural":"credits","usage":0.0148}`.
    pub fn metering(self) -> Script {
        self.event(
            "meteringEvent",
            json!({ "unit": "credit", "unitPlural": "credits", "usage": 0.0148 }),
        )
    }

    /// `contextUsageEvent {"contextUsagePercentage": percent}`.
    pub fn context_usage(self, percent: f64) -> Script {
        self.event(
            "contextUsageEvent",
            json!({ "contextUsagePercentage": percent }),
        )
    }

    /// The usual Kiro/Q stream ending: [`Script::metering`] then [`Script::context_usage`] (1.5 %).
    pub fn end(self) -> Script {
        self.metering().context_usage(1.5)
    }

    pub fn exception(self, exception_type: &str, payload: Value) -> Script {
        self.step(Step::exception(exception_type, payload))
    }

    pub fn error_frame(self, code: &str, message: &str) -> Script {
        self.step(Step::error(code, message))
    }

    pub fn delay(self, delay: Duration) -> Script {
        self.step(Step::Delay(delay))
    }

    pub fn raw(self, bytes: &[u8]) -> Script {
        self.step(Step::Raw(bytes.to_vec()))
    }

    /// [`Step::Abort`]: connection reset.
    pub fn abort(self) -> Script {
        self.step(Step::Abort)
    }

    /// [`Step::Close`]: connection closed without ending the chunked body.
    pub fn close(self) -> Script {
        self.step(Step::Close)
    }

    pub fn steps(self) -> Vec<Step> {
        self.steps
    }

    pub fn reply(self) -> Reply {
        Reply::Events(self.steps)
    }
}

// ---------------------------------------------------------------------------------------------
// Errors (§6)
// ---------------------------------------------------------------------------------------------

/// The two wire styles (§0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// A: `POST /`, AWS-JSON 1.0, `X-Amz-Target`. Error bodies carry `__type`.
    AwsJson,
    /// B: `POST /generateAssistantResponse`, REST JSON. Error bodies are `{"message","reason"}`.
    Rest,
}

impl Dialect {
    fn content_type(self) -> &'static str {
        match self {
            Dialect::AwsJson => AMZ_JSON,
            Dialect::Rest => "application/json",
        }
    }
}

/// The §6.2 catalogue. Dialect A body: `{"__type":"com.amazon.aws.codewhisperer#<Type>","message":…,"reason":…}`;
/// dialect B body: `{"message":…,"reason":…}`. Exceptions to that shape are noted per variant.
#[derive(Clone, Debug, PartialEq)]
pub enum QError {
    /// 400 ValidationException, `Improperly formed request.`, reason null.
    ImproperlyFormed,
    /// 400 ValidationException, `Input is too long.`, `CONTENT_LENGTH_EXCEEDS_THRESHOLD`.
    InputTooLong,
    /// 400 ValidationException, `Invalid model. Please select a different model to continue.`, `INVALID_MODEL_ID`.
    InvalidModelId,
    /// 400 ValidationException, `profileArn is required for this request.`, reason null.
    ProfileArnRequired,
    /// 400 ValidationException, `The provided credential is invalid.`, reason null.
    InvalidCredential,
    /// 403 AccessDeniedException, `The bearer token included in the request is invalid.`, reason null.
    BearerInvalid,
    /// 403 AccessDeniedException, `Your User ID (…) temporarily is suspended. …`, `TEMPORARILY_SUSPENDED`.
    TemporarilySuspended,
    /// 400 ThrottlingException, `Maximum Request reached for this month.`, `MONTHLY_REQUEST_COUNT`
    /// (the status of the official client's test).
    MonthlyQuota,
    /// 402 (Kiro), `You have reached the limit.`, `MONTHLY_REQUEST_COUNT`, no `__type` in either dialect.
    MonthlyQuotaKiro,
    /// 429 ThrottlingException, `Daily request limit reached.`, `DAILY_REQUEST_COUNT`.
    DailyQuota,
    /// 429 ThrottlingException, `Rate exceeded`, reason null.
    Throttled,
    /// 429 ThrottlingException, `I am experiencing high traffic, please try again shortly.`, `INSUFFICIENT_MODEL_CAPACITY`.
    InsufficientModelCapacity,
    /// 500 InternalServerException, `Encountered unexpectedly high load when processing the request, please try again.`, reason null.
    HighLoad,
    /// 500 InternalServerException, the high-load message, `MODEL_TEMPORARILY_UNAVAILABLE`.
    ModelTemporarilyUnavailable,
    /// 500 ServiceUnavailableException, `The service is temporarily unavailable. Please try again later.`, reason null.
    ServiceUnavailable,
    /// 500 InternalServerException, `Encountered an unexpected error when processing the request, please try again.`, reason null.
    InternalError,
    /// 400 `{"__type":"com.amazon.coral.service#UnknownOperationException","message":null}`
    /// (dialect B: `{"message":null,"reason":null}`).
    UnknownOperation,
    /// Anything else. `type_name` is the short or the full `__type` (a name without `#` gets
    /// the `com.amazon.aws.codewhisperer#` prefix); `None` leaves `__type` out.
    Custom {
        status: u16,
        type_name: Option<String>,
        message: Option<String>,
        reason: Option<String>,
    },
}

impl QError {
    pub fn status(&self) -> u16 {
        match self {
            QError::ImproperlyFormed
            | QError::InputTooLong
            | QError::InvalidModelId
            | QError::ProfileArnRequired
            | QError::InvalidCredential
            | QError::MonthlyQuota
            | QError::UnknownOperation => 400,
            QError::BearerInvalid | QError::TemporarilySuspended => 403,
            QError::MonthlyQuotaKiro => 402,
            QError::DailyQuota | QError::Throttled | QError::InsufficientModelCapacity => 429,
            QError::HighLoad
            | QError::ModelTemporarilyUnavailable
            | QError::ServiceUnavailable
            | QError::InternalError => 500,
            QError::Custom { status, .. } => *status,
        }
    }

    /// The full `__type` (dialect A), if any.
    pub fn type_name(&self) -> Option<&str> {
        Some(match self {
            QError::ImproperlyFormed
            | QError::InputTooLong
            | QError::InvalidModelId
            | QError::ProfileArnRequired
            | QError::InvalidCredential => "com.amazon.aws.codewhisperer#ValidationException",
            QError::BearerInvalid | QError::TemporarilySuspended => {
                "com.amazon.aws.codewhisperer#AccessDeniedException"
            }
            QError::MonthlyQuota
            | QError::DailyQuota
            | QError::Throttled
            | QError::InsufficientModelCapacity => {
                "com.amazon.aws.codewhisperer#ThrottlingException"
            }
            QError::HighLoad | QError::ModelTemporarilyUnavailable | QError::InternalError => {
                "com.amazon.aws.codewhisperer#InternalServerException"
            }
            QError::ServiceUnavailable => {
                "com.amazon.aws.codewhisperer#ServiceUnavailableException"
            }
            QError::UnknownOperation => "com.amazon.coral.service#UnknownOperationException",
            QError::MonthlyQuotaKiro => return None,
            QError::Custom { type_name, .. } => return type_name.as_deref(),
        })
    }

    pub fn message(&self) -> Option<&str> {
        Some(match self {
            QError::ImproperlyFormed => "Improperly formed request.",
            QError::InputTooLong => "Input is too long.",
            QError::InvalidModelId => "Invalid model. Please select a different model to continue.",
            QError::ProfileArnRequired => "profileArn is required for this request.",
            QError::InvalidCredential => "The provided credential is invalid.",
            QError::BearerInvalid => "The bearer token included in the request is invalid.",
            QError::TemporarilySuspended => {
                "Your User ID (d-9067642ac7.f4a8b468-0001-7094-EXAMPLE) temporarily is suspended. \
                 We've locked your account as a security precaution. To restore access, please \
                 contact our support team to verify your identity: https://aws.amazon.com/contact-us/"
            }
            QError::MonthlyQuota => "Maximum Request reached for this month.",
            QError::MonthlyQuotaKiro => "You have reached the limit.",
            QError::DailyQuota => "Daily request limit reached.",
            QError::Throttled => "Rate exceeded",
            QError::InsufficientModelCapacity => {
                "I am experiencing high traffic, please try again shortly."
            }
            QError::HighLoad | QError::ModelTemporarilyUnavailable => {
                "Encountered unexpectedly high load when processing the request, please try again."
            }
            QError::ServiceUnavailable => {
                "The service is temporarily unavailable. Please try again later."
            }
            QError::InternalError => {
                "Encountered an unexpected error when processing the request, please try again."
            }
            QError::UnknownOperation => return None,
            QError::Custom { message, .. } => return message.as_deref(),
        })
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            QError::InputTooLong => Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
            QError::InvalidModelId => Some("INVALID_MODEL_ID"),
            QError::TemporarilySuspended => Some("TEMPORARILY_SUSPENDED"),
            QError::MonthlyQuota | QError::MonthlyQuotaKiro => Some("MONTHLY_REQUEST_COUNT"),
            QError::DailyQuota => Some("DAILY_REQUEST_COUNT"),
            QError::InsufficientModelCapacity => Some("INSUFFICIENT_MODEL_CAPACITY"),
            QError::ModelTemporarilyUnavailable => Some("MODEL_TEMPORARILY_UNAVAILABLE"),
            QError::Custom { reason, .. } => reason.as_deref(),
            _ => None,
        }
    }

    /// The exact response body in `dialect` (key order: `__type`, `message`, `reason`).
    pub fn body(&self, dialect: Dialect) -> String {
        let message = opt_json(self.message());
        if *self == QError::UnknownOperation && dialect == Dialect::AwsJson {
            return format!(
                r#"{{"__type":{},"message":null}}"#,
                str_json(self.type_name().unwrap_or(""))
            );
        }
        let reason = opt_json(self.reason());
        match (dialect, self.type_name()) {
            (Dialect::AwsJson, Some(type_name)) => {
                let full = if type_name.contains('#') {
                    type_name.to_string()
                } else {
                    format!("{CW_NS}{type_name}")
                };
                format!(
                    r#"{{"__type":{},"message":{message},"reason":{reason}}}"#,
                    str_json(&full)
                )
            }
            _ => format!(r#"{{"message":{message},"reason":{reason}}}"#),
        }
    }
}

fn str_json(s: &str) -> String {
    serde_json::to_string(s).expect("string serializes")
}

fn opt_json(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_string(), str_json)
}

// ---------------------------------------------------------------------------------------------
// Recorded requests
// ---------------------------------------------------------------------------------------------

/// A request the fake received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The query string, without `?` (empty if none).
    pub query: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The parsed JSON body, `Value::Null` if it was not JSON.
    pub body: Value,
    pub raw_body: Vec<u8>,
    /// The chat dialect (`None` for token calls).
    pub dialect: Option<Dialect>,
    /// The account (index returned by `add_idc`/`add_social`) the bearer token belongs to.
    pub account: Option<usize>,
    /// The status the fake answered with (200 for streams, even if they were later cut).
    pub status: u16,
}

impl Recorded {
    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The token of `Authorization: Bearer <token>`.
    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
    }

    /// `conversationState.currentMessage.userInputMessage`.
    pub fn user_input(&self) -> &Value {
        &self.body["conversationState"]["currentMessage"]["userInputMessage"]
    }

    /// `conversationState.currentMessage.userInputMessage.content`.
    pub fn user_content(&self) -> Option<&str> {
        self.user_input()["content"].as_str()
    }

    /// `conversationState.currentMessage.userInputMessage.modelId`.
    pub fn model_id(&self) -> Option<&str> {
        self.user_input()["modelId"].as_str()
    }

    /// `conversationState.history` (empty if absent).
    pub fn history(&self) -> Vec<Value> {
        self.body["conversationState"]["history"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn record(req: &HttpRequest, body: &[u8]) -> Recorded {
    Recorded {
        method: req.method().as_str().to_string(),
        path: req.path().to_string(),
        query: req.query_string().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
        raw_body: body.to_vec(),
        dialect: None,
        account: None,
        status: 0,
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Kind {
    Idc {
        client_id: String,
        client_secret: String,
    },
    Social {
        profile_arn: String,
    },
}

#[derive(Clone, Debug)]
struct Account {
    kind: Kind,
    refresh_token: String,
    revoked: bool,
}

#[derive(Clone, Debug)]
struct AccessToken {
    account: Option<usize>,
    expires_at: Instant,
    revoked: bool,
}

struct State {
    accounts: Vec<Account>,
    access_tokens: HashMap<String, AccessToken>,
    expired_clients: Vec<String>,
    rotate: bool,
    expires_in: u64,
    token_failures: VecDeque<(u16, String)>,
    token_delay: Duration,
    token_calls: usize,
    token_requests: Vec<Recorded>,
    replies: VecDeque<Reply>,
    account_replies: HashMap<usize, VecDeque<Reply>>,
    account_errors: HashMap<usize, QError>,
    default_reply: Reply,
    valid_models: Option<Vec<String>>,
    models: Vec<String>,
    enforce_profile_arn: bool,
    requests: Vec<Recorded>,
    /// Connection-level faults (see the section at the end of the file).
    faults: ConnFaults,
    /// See the section "Reply progress" at the end.
    reply_progress: Vec<Arc<Mutex<ReplyProgress>>>,
}

impl State {
    fn new() -> State {
        State {
            accounts: Vec::new(),
            access_tokens: HashMap::new(),
            expired_clients: Vec::new(),
            rotate: true,
            expires_in: 3600,
            token_failures: VecDeque::new(),
            token_delay: Duration::ZERO,
            token_calls: 0,
            token_requests: Vec::new(),
            replies: VecDeque::new(),
            account_replies: HashMap::new(),
            account_errors: HashMap::new(),
            default_reply: Reply::default_text(),
            valid_models: None,
            models: vec![
                "claude-sonnet-4.5".to_string(),
                "claude-sonnet-4".to_string(),
                "claude-haiku-4.5".to_string(),
            ],
            enforce_profile_arn: true,
            requests: Vec::new(),
            faults: ConnFaults::default(),
            reply_progress: Vec::new(),
        }
    }

    fn mint_access(&mut self, account: Option<usize>) -> String {
        let token = format!("aoaAAAAAGfake{}", random_hex(64));
        self.add_access(token.clone(), account);
        token
    }

    fn add_access(&mut self, token: String, account: Option<usize>) {
        let expires_at = Instant::now() + Duration::from_secs(self.expires_in);
        self.access_tokens.insert(
            token,
            AccessToken {
                account,
                expires_at,
                revoked: false,
            },
        );
    }

    /// `Ok(account)` for a usable bearer token.
    fn check_bearer(&self, req: &HttpRequest) -> Result<Option<usize>, ()> {
        let token = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(())?;
        match self.access_tokens.get(token) {
            Some(t) if !t.revoked && Instant::now() < t.expires_at => Ok(t.account),
            _ => Err(()),
        }
    }
}

fn random_hex(len: usize) -> String {
    let mut s = String::new();
    while s.len() < len {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(len);
    s
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The handle
// ---------------------------------------------------------------------------------------------

/// A running fake Amazon Q. Dropping it stops the server.
pub struct FakeQ {
    addr: SocketAddr,
    state: Shared,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl FakeQ {
    /// Starts on `127.0.0.1:0`.
    pub fn start() -> FakeQ {
        FakeQ::start_on(0)
    }

    /// Starts on `127.0.0.1:port` (0 = any); panics if the port cannot be bound.
    pub fn start_on(port: u16) -> FakeQ {
        FakeQ::try_start_on(port).expect("fake Amazon Q binds its port")
    }

    pub fn try_start_on(port: u16) -> std::io::Result<FakeQ> {
        let state: Shared = Arc::new(Mutex::new(State::new()));
        let server_state = state.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("fake-amazon-q-{port}"))
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let data = web::Data::from(server_state);
                    let bound = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .app_data(web::PayloadConfig::new(MAX_BODY))
                            .default_service(web::to(dispatch))
                    })
                    .on_connect(remember_socket)
                    .workers(1)
                    .tcp_nodelay(true)
                    .disable_signals()
                    .shutdown_timeout(0)
                    .bind(("127.0.0.1", port));
                    match bound {
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                        Ok(server) => {
                            let addr = server.addrs()[0];
                            let server = server.run();
                            let _ = tx.send(Ok((addr, server.handle())));
                            let _ = server.await;
                        }
                    }
                })
            })?;
        match rx.recv() {
            Ok(Ok((addr, handle))) => Ok(FakeQ {
                addr,
                state,
                handle,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(std::io::Error::other("fake Amazon Q thread died"))
            }
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Dialect A chat endpoint: `http://127.0.0.1:PORT/`.
    pub fn api_url(&self) -> String {
        format!("{}/", self.base_url())
    }

    /// Dialect B chat endpoint: `http://127.0.0.1:PORT/generateAssistantResponse`.
    pub fn rest_url(&self) -> String {
        format!("{}/generateAssistantResponse", self.base_url())
    }

    /// SSO-OIDC `CreateToken`: `http://127.0.0.1:PORT/token`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// Kiro social refresh: `http://127.0.0.1:PORT/refreshToken`.
    pub fn social_url(&self) -> String {
        format!("{}/refreshToken", self.base_url())
    }

    // --- credentials ---------------------------------------------------------------------

    /// Registers an IdC/Builder-ID account; returns its account index.
    pub fn add_idc(&self, client_id: &str, client_secret: &str, refresh_token: &str) -> usize {
        let mut st = self.state();
        st.accounts.push(Account {
            kind: Kind::Idc {
                client_id: client_id.to_string(),
                client_secret: client_secret.to_string(),
            },
            refresh_token: refresh_token.to_string(),
            revoked: false,
        });
        st.accounts.len() - 1
    }

    /// Registers a Kiro social account; returns its account index.
    pub fn add_social(&self, refresh_token: &str, profile_arn: &str) -> usize {
        let mut st = self.state();
        st.accounts.push(Account {
            kind: Kind::Social {
                profile_arn: profile_arn.to_string(),
            },
            refresh_token: refresh_token.to_string(),
            revoked: false,
        });
        st.accounts.len() - 1
    }

    /// A valid bearer token tied to no account (no refresh needed).
    pub fn issue_access_token(&self) -> String {
        self.state().mint_access(None)
    }

    /// A valid bearer token of `account` (as if that account had just refreshed).
    pub fn issue_access_token_for(&self, account: usize) -> String {
        self.state().mint_access(Some(account))
    }

    /// Accepts `token` as a valid bearer token (tied to no account).
    pub fn add_access_token(&self, token: &str) {
        self.state().add_access(token.to_string(), None);
    }

    /// Makes every access token issued so far invalid (simulates expiry); later ones work.
    pub fn revoke_access_tokens(&self) {
        for t in self.state().access_tokens.values_mut() {
            t.revoked = true;
        }
    }

    pub fn revoke_access_token(&self, token: &str) {
        if let Some(t) = self.state().access_tokens.get_mut(token) {
            t.revoked = true;
        }
    }

    /// The account's refresh token stops working (invalid_grant) for good.
    pub fn revoke_refresh_token(&self, account: usize) {
        self.state().accounts[account].revoked = true;
    }

    /// The client registration expires: `/token` answers invalid_client for it.
    pub fn expire_client(&self, client_id: &str) {
        self.state().expired_clients.push(client_id.to_string());
    }

    /// The refresh token the fake currently accepts for `account` (after rotations).
    pub fn current_refresh_token(&self, account: usize) -> String {
        self.state().accounts[account].refresh_token.clone()
    }

    /// `true` (default): every refresh rotates the refresh token, the old one stops working.
    /// `false`: the refresh token is kept and OIDC omits `refreshToken` from its answer
    /// (social still returns the unchanged token).
    pub fn set_rotate(&self, rotate: bool) {
        self.state().rotate = rotate;
    }

    /// `expiresIn` of later refreshes and issued tokens (default 3600); tokens really expire.
    pub fn set_expires_in(&self, secs: u64) {
        self.state().expires_in = secs;
    }

    /// The next token call (either endpoint) answers `status` + `body` (`application/json`).
    pub fn push_token_failure(&self, status: u16, body: &str) {
        self.state()
            .token_failures
            .push_back((status, body.to_string()));
    }

    /// Every token call waits this long before answering.
    pub fn set_token_delay(&self, delay: Duration) {
        self.state().token_delay = delay;
    }

    /// Token calls received so far (both endpoints, counted on arrival).
    pub fn token_calls(&self) -> usize {
        self.state().token_calls
    }

    /// Token calls received so far, recorded (status is 0 for calls still waiting).
    pub fn token_requests(&self) -> Vec<Recorded> {
        self.state().token_requests.clone()
    }

    // --- chat ----------------------------------------------------------------------------

    /// Queues a reply for the next accepted chat request (any account).
    pub fn push_reply(&self, reply: Reply) {
        self.state().replies.push_back(reply);
    }

    /// Queues a reply for the next accepted chat request of `account`; served before the
    /// global queue.
    pub fn push_reply_for(&self, account: usize, reply: Reply) {
        self.state()
            .account_replies
            .entry(account)
            .or_default()
            .push_back(reply);
    }

    /// Every accepted chat of `account` answers this error until cleared with `None`
    /// (e.g. a suspended or quota-exhausted account).
    pub fn set_account_error(&self, account: usize, error: Option<QError>) {
        let mut st = self.state();
        match error {
            Some(e) => st.account_errors.insert(account, e),
            None => st.account_errors.remove(&account),
        };
    }

    /// The reply used when no queue has one.
    pub fn set_default_reply(&self, reply: Reply) {
        self.state().default_reply = reply;
    }

    /// `Some(list)`: a `modelId` outside the list answers INVALID_MODEL_ID. `None` (default): any.
    pub fn set_valid_models(&self, models: Option<Vec<String>>) {
        self.state().valid_models = models;
    }

    /// The model ids `ListAvailableModels` returns.
    pub fn set_listed_models(&self, models: Vec<String>) {
        self.state().models = models;
    }

    /// `true` (default): a social account's chat without a top-level `profileArn` gets 400
    /// `profileArn is required for this request.`
    pub fn set_enforce_profile_arn(&self, on: bool) {
        self.state().enforce_profile_arn = on;
    }

    /// Replies still queued (global queue only).
    pub fn pending_replies(&self) -> usize {
        self.state().replies.len()
    }

    /// Chat (`GenerateAssistantResponse`) requests received, rejected ones included.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state()
            .requests
            .iter()
            .filter(|r| {
                r.dialect == Some(Dialect::Rest)
                    || r.header("x-amz-target") != Some(TARGET_LIST_MODELS)
            })
            .cloned()
            .collect()
    }

    /// Everything received on `/` and `/generateAssistantResponse` (chats and model listings).
    pub fn all_requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// Number of chat requests received.
    pub fn chat_calls(&self) -> usize {
        self.requests().len()
    }

    pub fn clear_requests(&self) {
        let mut st = self.state();
        st.requests.clear();
        st.token_requests.clear();
    }
}

impl Drop for FakeQ {
    fn drop(&mut self) {
        // `stop` sends its command eagerly; the returned future only waits for completion.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP handlers
// ---------------------------------------------------------------------------------------------

async fn dispatch(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let known = ["/", "/generateAssistantResponse", "/token", "/refreshToken"];
    if !known.contains(&req.path()) {
        return json_response(404, &[], r#"{"message":"Not Found"}"#, "application/json");
    }
    if req.method() != actix_web::http::Method::POST {
        return json_response(
            405,
            &[],
            r#"{"message":"Method Not Allowed"}"#,
            "application/json",
        );
    }
    match req.path() {
        "/token" => token_call(&req, &body, &state, TokenKind::Oidc).await,
        "/refreshToken" => token_call(&req, &body, &state, TokenKind::Social).await,
        "/" => chat(&req, &body, &state, Dialect::AwsJson).await,
        _ => chat(&req, &body, &state, Dialect::Rest).await,
    }
}

fn json_response(
    status: u16,
    headers: &[(String, String)],
    body: &str,
    content_type: &str,
) -> HttpResponse {
    let mut builder = HttpResponse::build(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    );
    builder.insert_header(("x-amzn-RequestId", uuid::Uuid::new_v4().to_string()));
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        builder.insert_header(("content-type", content_type.to_string()));
    }
    for (name, value) in headers {
        builder.append_header((name.as_str(), value.as_str()));
    }
    builder.body(body.to_string())
}

fn content_type_is(req: &HttpRequest, expected: &str) -> bool {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

// --- token endpoints -------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum TokenKind {
    Oidc,
    Social,
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn oidc_error(exception: &str, error: &str, description: &str) -> Answer {
    Answer {
        status: 400,
        headers: vec![(
            "x-amzn-ErrorType".to_string(),
            format!("{exception}:{OIDC_ERROR_NS}"),
        )],
        body: format!(
            r#"{{"error":{},"error_description":{}}}"#,
            str_json(error),
            str_json(description)
        ),
    }
}

async fn token_call(
    req: &HttpRequest,
    body: &[u8],
    state: &Mutex<State>,
    kind: TokenKind,
) -> HttpResponse {
    let (index, scripted, delay) = {
        let mut st = lock(state);
        st.token_calls += 1;
        st.token_requests.push(record(req, body));
        (
            st.token_requests.len() - 1,
            st.token_failures.pop_front(),
            st.token_delay,
        )
    };
    if !delay.is_zero() {
        actix_web::rt::time::sleep(delay).await;
    }
    let mut st = lock(state);
    let answer = match scripted {
        Some((status, body)) => Answer {
            status,
            headers: Vec::new(),
            body,
        },
        None => match kind {
            TokenKind::Oidc => oidc_refresh(&mut st, req, body),
            TokenKind::Social => social_refresh(&mut st, req, body),
        },
    };
    if let Some(r) = st.token_requests.get_mut(index) {
        r.status = answer.status;
    }
    json_response(
        answer.status,
        &answer.headers,
        &answer.body,
        "application/json",
    )
}

fn oidc_refresh(st: &mut State, req: &HttpRequest, body: &[u8]) -> Answer {
    let invalid_request =
        |what: &str| oidc_error("InvalidRequestException", "invalid_request", what);
    if !content_type_is(req, "application/json") {
        return invalid_request("Invalid request: Content-Type must be application/json");
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return invalid_request("Invalid request: the body is not a JSON object");
    };
    let field = |name: &str| map.get(name).and_then(Value::as_str).map(str::to_string);
    let (Some(client_id), Some(client_secret), Some(grant_type)) =
        (field("clientId"), field("clientSecret"), field("grantType"))
    else {
        return invalid_request(
            "Invalid request: clientId, clientSecret and grantType are required",
        );
    };
    let client_ok = !st.expired_clients.contains(&client_id)
        && st.accounts.iter().any(|a| {
            matches!(&a.kind, Kind::Idc { client_id: c, client_secret: s } if *c == client_id && *s == client_secret)
        });
    if !client_ok {
        return oidc_error(
            "InvalidClientException",
            "invalid_client",
            "Client authentication failed",
        );
    }
    if grant_type != "refresh_token" {
        return oidc_error(
            "UnsupportedGrantTypeException",
            "unsupported_grant_type",
            "Unsupported grant type",
        );
    }
    let Some(refresh_token) = field("refreshToken") else {
        return invalid_request("Invalid request: refreshToken is required");
    };
    let found = st.accounts.iter().position(|a| {
        !a.revoked
            && a.refresh_token == refresh_token
            && matches!(&a.kind, Kind::Idc { client_id: c, .. } if *c == client_id)
    });
    let Some(account) = found else {
        return oidc_error(
            "InvalidGrantException",
            "invalid_grant",
            "Invalid refresh token provided",
        );
    };
    let access = st.mint_access(Some(account));
    let rotated = if st.rotate {
        let fresh = format!("aorAAAAAGfake{}", random_hex(96));
        st.accounts[account].refresh_token = fresh.clone();
        format!(r#""refreshToken":{},"#, str_json(&fresh))
    } else {
        String::new()
    };
    Answer {
        status: 200,
        headers: Vec::new(),
        body: format!(
            r#"{{"accessToken":{},"tokenType":"Bearer","expiresIn":{},{rotated}"idToken":null,"aws_sso_app_session_id":null,"issuedTokenType":null,"originSessionId":null}}"#,
            str_json(&access),
            st.expires_in
        ),
    }
}

fn social_refresh(st: &mut State, req: &HttpRequest, body: &[u8]) -> Answer {
    let bad = |error: &str, message: &str| Answer {
        status: 400,
        headers: Vec::new(),
        body: format!(
            r#"{{"error":{},"message":{}}}"#,
            str_json(error),
            str_json(message)
        ),
    };
    if !content_type_is(req, "application/json") {
        return bad("invalid_request", "Content-Type must be application/json");
    }
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let Some(refresh_token) = parsed.get("refreshToken").and_then(Value::as_str) else {
        return bad("invalid_request", "refreshToken is required");
    };
    let found = st.accounts.iter().position(|a| {
        !a.revoked && a.refresh_token == refresh_token && matches!(a.kind, Kind::Social { .. })
    });
    let Some(account) = found else {
        return bad("invalid_grant", "Invalid refresh token provided");
    };
    let access = st.mint_access(Some(account));
    if st.rotate {
        st.accounts[account].refresh_token = format!("aorAAAAAGfake{}", random_hex(96));
    }
    let Kind::Social { profile_arn } = &st.accounts[account].kind else {
        unreachable!()
    };
    Answer {
        status: 200,
        headers: Vec::new(),
        body: format!(
            r#"{{"accessToken":{},"expiresIn":{},"profileArn":{},"refreshToken":{}}}"#,
            str_json(&access),
            st.expires_in,
            str_json(profile_arn),
            str_json(&st.accounts[account].refresh_token)
        ),
    }
}

// --- chat endpoints --------------------------------------------------------------------------

enum ChatOp {
    Generate,
    ListModels,
}

async fn chat(
    req: &HttpRequest,
    body: &[u8],
    state: &Mutex<State>,
    dialect: Dialect,
) -> HttpResponse {
    if drop_reused_connection(req, state) {
        return HttpResponse::Ok().finish();
    }
    let mut rec = record(req, body);
    rec.dialect = Some(dialect);
    let reply = {
        let mut st = lock(state);
        let reply = decide(&mut st, req, &mut rec, dialect);
        rec.status = reply.status();
        st.requests.push(rec);
        reply
    };
    let socket = req.conn_data::<ConnSocket>().cloned();
    let response = serve(reply, dialect, socket.clone()).await;
    watch_reply(state, socket, response)
}

fn decide(st: &mut State, req: &HttpRequest, rec: &mut Recorded, dialect: Dialect) -> Reply {
    // 1. Protocol / operation routing.
    let op = match dialect {
        Dialect::AwsJson => {
            let target = req
                .headers()
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok());
            match target {
                _ if !content_type_is(req, AMZ_JSON) => {
                    return Reply::Error(QError::UnknownOperation)
                }
                Some(TARGET_GENERATE) => ChatOp::Generate,
                Some(TARGET_LIST_MODELS) => ChatOp::ListModels,
                _ => return Reply::Error(QError::UnknownOperation),
            }
        }
        Dialect::Rest => {
            if !content_type_is(req, "application/json") {
                return Reply::http(415, r#"{"message":"Unsupported Media Type","reason":null}"#);
            }
            ChatOp::Generate
        }
    };
    // 2. Bearer token.
    let Ok(account) = st.check_bearer(req) else {
        return Reply::Error(QError::BearerInvalid);
    };
    rec.account = account;
    if let ChatOp::ListModels = op {
        return list_models(st);
    }
    // 3. Body shape.
    if let Err(e) = validate_chat_body(&rec.body) {
        return Reply::Error(e);
    }
    // 4. profileArn for social accounts.
    if let Some(a) = account {
        let social = matches!(
            st.accounts.get(a).map(|a| &a.kind),
            Some(Kind::Social { .. })
        );
        if social && st.enforce_profile_arn && !rec.body["profileArn"].is_string() {
            return Reply::Error(QError::ProfileArnRequired);
        }
    }
    // 5. Model id.
    if let (Some(valid), Some(model)) = (&st.valid_models, rec.model_id()) {
        if !valid.iter().any(|m| m == model) {
            return Reply::Error(QError::InvalidModelId);
        }
    }
    // Scripted reply.
    if let Some(a) = account {
        if let Some(e) = st.account_errors.get(&a) {
            return Reply::Error(e.clone());
        }
        if let Some(r) = st.account_replies.get_mut(&a).and_then(VecDeque::pop_front) {
            return r;
        }
    }
    st.replies
        .pop_front()
        .unwrap_or_else(|| st.default_reply.clone())
}

fn list_models(st: &State) -> Reply {
    let models: Vec<Value> = st
        .models
        .iter()
        .map(|id| {
            json!({
                "modelId": id,
                "modelName": id,
                "description": format!("{id} (fake)"),
                "rateMultiplier": 1.0,
                "rateUnit": "credit",
                "tokenLimits": { "maxInputTokens": 200000, "maxOutputTokens": 64000 },
                "supportedInputTypes": ["TEXT", "IMAGE"],
                "supportsPromptCache": true
            })
        })
        .collect();
    let default = models.first().cloned().unwrap_or(Value::Null);
    let body = json!({ "models": models, "defaultModel": default, "nextToken": null });
    Reply::http(200, &body.to_string())
}

/// The fake's idea of a well-formed chat body (§3.3, §3.5, §8), each failure being 400
/// `Improperly formed request.`:
/// * `conversationState` is an object; `chatTriggerType` is `MANUAL`, `DIAGNOSTIC` or `INLINE_CHAT`;
/// * `currentMessage` is exactly `{"userInputMessage": {...}}` with a string `content`;
/// * `history`, if present, is an array of single-key `userInputMessage` / `assistantResponseMessage`
///   objects with string `content`, alternating strictly user/assistant, starting with a user
///   turn and ending with an assistant turn (so that `currentMessage` continues the alternation);
/// * every `toolUses[]` entry has string `toolUseId` and `name` and an object `input`;
/// * `profileArn`, if present, is a string.
pub fn validate_chat_body(body: &Value) -> Result<(), QError> {
    let bad = || QError::ImproperlyFormed;
    let cs = body
        .get("conversationState")
        .and_then(Value::as_object)
        .ok_or_else(bad)?;
    match cs.get("chatTriggerType").and_then(Value::as_str) {
        Some("MANUAL" | "DIAGNOSTIC" | "INLINE_CHAT") => {}
        _ => return Err(bad()),
    }
    if body.get("profileArn").is_some_and(|p| !p.is_string()) {
        return Err(bad());
    }
    let current = cs
        .get("currentMessage")
        .and_then(Value::as_object)
        .ok_or_else(bad)?;
    let user = current.get("userInputMessage").ok_or_else(bad)?;
    if current.len() != 1 || !user["content"].is_string() {
        return Err(bad());
    }
    let mut expect_user = true;
    if let Some(history) = cs.get("history") {
        for entry in history.as_array().ok_or_else(bad)? {
            let entry = entry.as_object().filter(|e| e.len() == 1).ok_or_else(bad)?;
            if let Some(u) = entry.get("userInputMessage") {
                if !expect_user || !u["content"].is_string() {
                    return Err(bad());
                }
            } else if let Some(a) = entry.get("assistantResponseMessage") {
                if expect_user || !a["content"].is_string() {
                    return Err(bad());
                }
                if let Some(uses) = a.get("toolUses") {
                    for tool_use in uses.as_array().ok_or_else(bad)? {
                        if !tool_use["toolUseId"].is_string()
                            || !tool_use["name"].is_string()
                            || !tool_use["input"].is_object()
                        {
                            return Err(bad());
                        }
                    }
                }
            } else {
                return Err(bad());
            }
            expect_user = !expect_user;
        }
    }
    if !expect_user {
        return Err(bad());
    }
    Ok(())
}

// --- serving replies -------------------------------------------------------------------------

enum Action {
    Write(Bytes),
    Sleep(Duration),
    /// End the body with an error: no terminating chunk, then a normal close (FIN).
    Close,
    /// Like `Close`, but with `SO_LINGER` 0 so that closing sends a TCP RST.
    Reset,
}

fn actions(steps: &[Step]) -> VecDeque<Action> {
    let mut out = VecDeque::new();
    for step in steps {
        match step {
            Step::Delay(d) => out.push_back(Action::Sleep(*d)),
            Step::Close => out.push_back(Action::Close),
            Step::Abort => out.push_back(Action::Reset),
            Step::DropMidFrame { .. } => {
                out.push_back(Action::Write(Bytes::from(step.encode())));
                out.push_back(Action::Close);
            }
            Step::Split { at, .. } => {
                let frame = step.encode();
                let mut cuts: Vec<usize> = at.iter().map(|&c| c.min(frame.len())).collect();
                cuts.sort_unstable();
                cuts.push(frame.len());
                let mut start = 0;
                for (i, cut) in cuts.into_iter().enumerate() {
                    if cut > start {
                        if i > 0 {
                            out.push_back(Action::Sleep(SPLIT_GAP));
                        }
                        out.push_back(Action::Write(Bytes::copy_from_slice(&frame[start..cut])));
                        start = cut;
                    }
                }
            }
            _ => out.push_back(Action::Write(Bytes::from(step.encode()))),
        }
    }
    out
}

/// A duplicate of the connection's socket, taken in `on_connect`, so that a reply can make the
/// close of its connection a reset. It is dropped with the connection.
#[derive(Clone)]
struct ConnSocket(#[cfg(unix)] Arc<std::os::fd::OwnedFd>);

fn remember_socket(conn: &dyn std::any::Any, ext: &mut actix_web::dev::Extensions) {
    #[cfg(unix)]
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        use std::os::fd::AsFd;
        if let Ok(fd) = tcp.as_fd().try_clone_to_owned() {
            ext.insert(ConnSocket(Arc::new(fd)));
        }
    }
    #[cfg(not(unix))]
    let _ = (conn, ext);
}

/// Sets `SO_LINGER` 0 on the connection, so that its close sends RST instead of FIN.
fn reset_on_close(socket: &ConnSocket) {
    #[cfg(unix)]
    if let Ok(fd) = socket.0.try_clone() {
        // The duplicate shares the (non-blocking) file description; dropping it closes only the
        // duplicate.
        if let Ok(tcp) = actix_web::rt::net::TcpStream::from_std(std::net::TcpStream::from(fd)) {
            let _ = tcp.set_zero_linger();
        }
    }
    #[cfg(not(unix))]
    let _ = socket;
}

async fn serve(mut reply: Reply, dialect: Dialect, socket: Option<ConnSocket>) -> HttpResponse {
    while let Reply::Delay(delay, inner) = reply {
        actix_web::rt::time::sleep(delay).await;
        reply = *inner;
    }
    match reply {
        Reply::Http {
            status,
            headers,
            body,
        } => json_response(status, &headers, &body, dialect.content_type()),
        Reply::Error(error) => json_response(
            error.status(),
            &[],
            &error.body(dialect),
            dialect.content_type(),
        ),
        Reply::Events(steps) => {
            let stream = futures_util::stream::unfold(
                (actions(&steps), false, socket),
                |(mut queue, mut wrote, socket)| async move {
                    loop {
                        match queue.pop_front()? {
                            Action::Sleep(d) => actix_web::rt::time::sleep(d).await,
                            Action::Write(bytes) if bytes.is_empty() => {}
                            Action::Write(bytes) => {
                                if wrote {
                                    // Return Pending once so the previous chunk is flushed on its own.
                                    actix_web::rt::task::yield_now().await;
                                }
                                wrote = true;
                                return Some((Ok(bytes), (queue, wrote, socket)));
                            }
                            action @ (Action::Close | Action::Reset) => {
                                let reset = matches!(action, Action::Reset);
                                if wrote {
                                    actix_web::rt::task::yield_now().await;
                                    if reset {
                                        actix_web::rt::time::sleep(ABORT_GRACE).await;
                                    }
                                }
                                if let (true, Some(socket)) = (reset, &socket) {
                                    reset_on_close(socket);
                                }
                                queue.clear();
                                let error = std::io::Error::new(
                                    std::io::ErrorKind::ConnectionAborted,
                                    "fake Amazon Q dropped the connection",
                                );
                                return Some((Err(error), (queue, wrote, socket)));
                            }
                        }
                    }
                },
            );
            HttpResponse::Ok()
                .insert_header(("x-amzn-RequestId", uuid::Uuid::new_v4().to_string()))
                .content_type(EVENTSTREAM)
                .streaming(stream)
        }
        Reply::Delay(..) => unreachable!("delays are unwrapped above"),
    }
}

// ---------------------------------------------------------------------------------------------
// Upstream faults: connection-level misbehaviour and odd 200s (tests/integration/faults.rs)
// ---------------------------------------------------------------------------------------------

/// Connection-level faults of the chat endpoints.
#[derive(Default)]
struct ConnFaults {
    /// See [`FakeQ::set_close_reused_connections`].
    close_reused: bool,
    /// Connections that served a chat, by the address of their [`ConnSocket`] allocation; the
    /// weak reference tells a live connection from a new one that got the same address.
    #[cfg(unix)]
    served: HashMap<usize, std::sync::Weak<std::os::fd::OwnedFd>>,
    /// Chat requests that found their connection closed.
    dropped: usize,
}

impl FakeQ {
    /// `true`: every connection serves one chat reply, normally and without `Connection: close`;
    /// a later chat request on the same keep-alive connection finds it closed (FIN, not a byte
    /// of an answer). This is an upstream that closes its keep-alive connections after each
    /// reply without saying so, caught at its worst moment: the client reuses the connection
    /// before the close reached it. Every time, not by chance. Token calls are not affected.
    pub fn set_close_reused_connections(&self, on: bool) {
        self.state().faults.close_reused = on;
    }

    /// Chat requests that found their (reused) connection closed so far.
    pub fn dropped_reused_requests(&self) -> usize {
        self.state().faults.dropped
    }
}

impl Reply {
    /// A `200` (or any status) with this exact content type and body.
    pub fn with_content_type(status: u16, content_type: &str, body: &str) -> Reply {
        Reply::Http {
            status,
            headers: vec![("content-type".to_string(), content_type.to_string())],
            body: body.to_string(),
        }
    }

    /// `200 application/vnd.amazon.eventstream` with an empty (chunked) body.
    pub fn empty_stream() -> Reply {
        Reply::Events(Vec::new())
    }
}

/// In close-reused mode: whether this chat came on a connection that already served one; if
/// so the connection is shut down now, before anything of an answer is written.
fn drop_reused_connection(req: &HttpRequest, state: &Mutex<State>) -> bool {
    #[cfg(unix)]
    {
        let mut st = lock(state);
        if !st.faults.close_reused {
            return false;
        }
        let Some(socket) = req.conn_data::<ConnSocket>() else {
            return false;
        };
        let key = Arc::as_ptr(&socket.0) as usize;
        let reused = st
            .faults
            .served
            .get(&key)
            .is_some_and(|w| w.upgrade().is_some_and(|a| Arc::ptr_eq(&a, &socket.0)));
        if !reused {
            st.faults.served.insert(key, Arc::downgrade(&socket.0));
            return false;
        }
        st.faults.dropped += 1;
        if let Ok(fd) = socket.0.try_clone() {
            // Shuts the socket itself down (all its descriptors): the answer cannot be written.
            let _ = std::net::TcpStream::from(fd).shutdown(std::net::Shutdown::Both);
        }
        true
    }
    #[cfg(not(unix))]
    {
        let _ = (req, state);
        false
    }
}

// ---------------------------------------------------------------------------------------------
// Reply progress (client faults): how far each event-stream reply got, and when the gateway
// closed the connection under it
// ---------------------------------------------------------------------------------------------

/// How far one event-stream reply got. Every `200` event-stream reply gets one, in the order
/// the replies were served ([`FakeQ::reply_progress`]).
#[derive(Clone, Debug)]
pub struct ReplyProgress {
    pub started: Instant,
    /// Body bytes handed to the fake's HTTP server so far. Its write buffer holds at most a few
    /// dozen KiB of them, so this stops growing soon after the gateway stops reading.
    pub bytes_sent: u64,
    /// When the whole scripted body had been handed over.
    pub finished: Option<Instant>,
    /// When the gateway closed the connection (FIN or RST) before the reply finished. Seen on
    /// the socket itself as soon as it happens, also during a [`Step::Delay`]; the fake's HTTP
    /// server alone would notice only at its next write.
    pub peer_closed: Option<Instant>,
}

impl FakeQ {
    /// Every event-stream reply served so far, oldest first.
    pub fn reply_progress(&self) -> Vec<ReplyProgress> {
        self.state()
            .reply_progress
            .iter()
            .map(|p| lock_progress(p).clone())
            .collect()
    }
}

fn lock_progress(p: &Mutex<ReplyProgress>) -> MutexGuard<'_, ReplyProgress> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// Tracks an event-stream `response`: counts its bytes and, while it lasts, watches its
/// connection for the peer's close.
fn watch_reply(
    state: &Mutex<State>,
    socket: Option<ConnSocket>,
    response: HttpResponse,
) -> HttpResponse {
    let is_events = response.status() == StatusCode::OK
        && response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes() == EVENTSTREAM.as_bytes());
    if !is_events {
        return response;
    }
    let progress = Arc::new(Mutex::new(ReplyProgress {
        started: Instant::now(),
        bytes_sent: 0,
        finished: None,
        peer_closed: None,
    }));
    lock(state).reply_progress.push(progress.clone());
    let (done, ended) = tokio::sync::oneshot::channel::<()>();
    if let Some(socket) = socket {
        actix_web::rt::spawn(watch_peer_close(socket, progress.clone(), ended));
    }
    response
        .map_body(|_, body| Progressing {
            body,
            progress,
            _done: done,
        })
        .map_into_boxed_body()
}

/// Waits for the peer to close the connection (read side closed: FIN or RST), or for the reply
/// to end (`ended`: the body was dropped), whichever comes first. The duplicate socket it polls
/// is closed when it returns, so it never keeps a connection open.
async fn watch_peer_close(
    socket: ConnSocket,
    progress: Arc<Mutex<ReplyProgress>>,
    ended: tokio::sync::oneshot::Receiver<()>,
) {
    #[cfg(unix)]
    {
        use tokio::io::Interest;
        let Ok(fd) = socket.0.try_clone() else {
            return;
        };
        drop(socket);
        // The duplicate shares the connection's (non-blocking) file description.
        let Ok(tcp) = actix_web::rt::net::TcpStream::from_std(std::net::TcpStream::from(fd)) else {
            return;
        };
        let closed = async {
            loop {
                match tcp.ready(Interest::READABLE).await {
                    Ok(ready) if !ready.is_read_closed() => {
                        // Readable but open (data in the buffer): forget this edge and wait
                        // for the next one.
                        let _ = tcp.try_io(Interest::READABLE, || {
                            Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                        });
                    }
                    _ => return,
                }
            }
        };
        tokio::select! {
            _ = closed => {
                let mut p = lock_progress(&progress);
                if p.finished.is_none() {
                    p.peer_closed.get_or_insert_with(Instant::now);
                }
            }
            _ = ended => {}
        }
    }
    #[cfg(not(unix))]
    let _ = (socket, progress, ended);
}

/// An event-stream body that counts what it hands over; dropping it ends the close watch.
struct Progressing {
    body: actix_web::body::BoxBody,
    progress: Arc<Mutex<ReplyProgress>>,
    _done: tokio::sync::oneshot::Sender<()>,
}

impl actix_web::body::MessageBody for Progressing {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> actix_web::body::BodySize {
        self.body.size()
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        let next = std::task::ready!(std::pin::Pin::new(&mut this.body).poll_next(cx));
        let mut p = lock_progress(&this.progress);
        match &next {
            Some(Ok(bytes)) => p.bytes_sent += bytes.len() as u64,
            None => {
                p.finished.get_or_insert_with(Instant::now);
            }
            Some(Err(_)) => {}
        }
        std::task::Poll::Ready(next)
    }
}
