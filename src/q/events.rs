//! Typed Amazon Q stream events (protocol reference §5.2) and the tool-input accumulator (§5.3).
//!
//! [`parse`] turns one decoded [`Message`] from [`super::eventstream`] into a [`QEvent`]. It
//! dispatches on `:message-type` and `:event-type` and reads JSON payloads leniently: unknown
//! keys and unknown event types are ignored, and optional fields that are missing or of the
//! wrong type become `None`. Only an event that lacks its required fields is an error.
//!
//! [`ToolInputs`] concatenates `toolUseEvent` input fragments per `toolUseId` and parses the
//! result when `stop` arrives (or when the stream ends without it).

use std::collections::HashSet;

use bytes::Bytes;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::eventstream::Message;

/// One upstream stream event.
#[derive(Debug, Clone, PartialEq)]
pub enum QEvent {
    /// `initial-response`: the RPC's initial message. Nothing in it is needed.
    InitialResponse,
    /// `messageMetadataEvent`.
    MessageMetadata {
        conversation_id: Option<String>,
        utterance_id: Option<String>,
    },
    /// `assistantResponseEvent`: a text delta, verbatim.
    AssistantText { content: String },
    /// `codeEvent`: treated like text.
    Code { content: String },
    /// `reasoningContentEvent`. `redacted` is the base64 `redactedContent` blob, as sent.
    Reasoning {
        text: Option<String>,
        signature: Option<String>,
        redacted: Option<String>,
    },
    /// `toolUseEvent`. `input` is a fragment of serialized JSON (a non-string `input` value is
    /// re-serialized); feed these to [`ToolInputs::on_tool_use`].
    ToolUse {
        tool_use_id: String,
        name: String,
        input: Option<String>,
        stop: bool,
    },
    /// `metadataEvent`: token usage, from its `tokenUsage` member.
    Metadata {
        uncached_input_tokens: Option<u64>,
        output_tokens: Option<u64>,
        total_tokens: Option<u64>,
        cache_read_input_tokens: Option<u64>,
        cache_write_input_tokens: Option<u64>,
    },
    /// `meteringEvent`: billing units consumed.
    Metering {
        usage: Option<f64>,
        unit: Option<String>,
    },
    /// `contextUsageEvent`: context window use, 0–100 (may exceed 100).
    ContextUsage { percentage: f64 },
    /// `invalidStateEvent`: log it and continue.
    InvalidState {
        reason: Option<String>,
        message: Option<String>,
    },
    /// A known event with nothing for a proxy to do, or an unknown event type.
    Ignored { event_type: String },
    /// `:message-type = exception`: a modeled error, named by `:exception-type` (empty if that
    /// header is missing). `message` and `reason` come from a JSON payload when there is one.
    Exception {
        exception_type: String,
        message: Option<String>,
        reason: Option<String>,
        payload: Bytes,
    },
    /// `:message-type = error`: an unmodeled error, from the `:error-code` and `:error-message`
    /// headers.
    Error {
        code: Option<String>,
        message: Option<String>,
    },
}

/// Why a message could not be turned into a [`QEvent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The payload lacks a required field or is not the JSON the event needs.
    #[error("bad {event_type} payload: {reason}")]
    BadPayload { event_type: String, reason: String },
    /// An `event` message without an `:event-type` string header.
    #[error("event message has no :event-type header")]
    MissingEventType,
    /// A `:message-type` other than `event`, `exception` or `error`.
    #[error("unknown message type {message_type:?}")]
    UnknownMessageType { message_type: String },
}

/// Event types that carry nothing a proxy uses.
const IGNORED_EVENTS: &[&str] = &[
    "codeReferenceEvent",
    "supplementaryWebLinksEvent",
    "followupPromptEvent",
    "intentsEvent",
    "interactionComponentsEvent",
    "toolResultEvent",
    "citationEvent",
    "dryRunSucceedEvent",
];

/// Turn one decoded frame into a typed event. A missing `:message-type` means `event`.
pub fn parse(msg: &Message) -> Result<QEvent, EventError> {
    match msg.header_str(":message-type").unwrap_or("event") {
        "event" => parse_event(msg),
        "exception" => {
            let body: ExceptionPayload = lenient(msg.payload.as_ref());
            Ok(QEvent::Exception {
                exception_type: msg
                    .header_str(":exception-type")
                    .unwrap_or_default()
                    .to_owned(),
                message: body.message,
                reason: body.reason,
                payload: msg.payload.clone(),
            })
        }
        "error" => Ok(QEvent::Error {
            code: msg.header_str(":error-code").map(str::to_owned),
            message: msg.header_str(":error-message").map(str::to_owned),
        }),
        other => Err(EventError::UnknownMessageType {
            message_type: other.to_owned(),
        }),
    }
}

fn parse_event(msg: &Message) -> Result<QEvent, EventError> {
    let event_type = msg
        .header_str(":event-type")
        .ok_or(EventError::MissingEventType)?;
    let payload = msg.payload.as_ref();
    let event = match event_type {
        "initial-response" => QEvent::InitialResponse,
        "messageMetadataEvent" => {
            let p: MessageMetadataPayload = lenient(payload);
            QEvent::MessageMetadata {
                conversation_id: p.conversation_id,
                utterance_id: p.utterance_id,
            }
        }
        "assistantResponseEvent" => QEvent::AssistantText {
            content: strict::<ContentPayload>(event_type, payload)?.content,
        },
        "codeEvent" => QEvent::Code {
            content: strict::<ContentPayload>(event_type, payload)?.content,
        },
        "reasoningContentEvent" => {
            let p: ReasoningPayload = lenient(payload);
            QEvent::Reasoning {
                text: p.text,
                signature: p.signature,
                redacted: p.redacted_content,
            }
        }
        "toolUseEvent" => {
            let p: ToolUsePayload = strict(event_type, payload)?;
            QEvent::ToolUse {
                tool_use_id: p.tool_use_id,
                name: p.name,
                input: match p.input {
                    None => None,
                    Some(Value::String(s)) => Some(s),
                    Some(other) => Some(other.to_string()),
                },
                stop: p.stop.unwrap_or(false),
            }
        }
        "metadataEvent" => {
            let usage = lenient::<MetadataPayload>(payload)
                .token_usage
                .unwrap_or_default();
            QEvent::Metadata {
                uncached_input_tokens: usage.uncached_input_tokens,
                output_tokens: usage.output_tokens,
                total_tokens: usage.total_tokens,
                cache_read_input_tokens: usage.cache_read_input_tokens,
                cache_write_input_tokens: usage.cache_write_input_tokens,
            }
        }
        "meteringEvent" => {
            let p: MeteringPayload = lenient(payload);
            QEvent::Metering {
                usage: p.usage,
                unit: p.unit,
            }
        }
        "contextUsageEvent" => QEvent::ContextUsage {
            percentage: strict::<ContextUsagePayload>(event_type, payload)?
                .context_usage_percentage,
        },
        "invalidStateEvent" => {
            let p: InvalidStatePayload = lenient(payload);
            QEvent::InvalidState {
                reason: p.reason,
                message: p.message,
            }
        }
        known if IGNORED_EVENTS.contains(&known) => QEvent::Ignored {
            event_type: known.to_owned(),
        },
        unknown => {
            log::debug!("ignoring unknown upstream event type {unknown:?}");
            QEvent::Ignored {
                event_type: unknown.to_owned(),
            }
        }
    };
    Ok(event)
}

/// Parse a payload the event cannot do without.
fn strict<T: for<'de> Deserialize<'de>>(event_type: &str, payload: &[u8]) -> Result<T, EventError> {
    serde_json::from_slice(payload).map_err(|err| EventError::BadPayload {
        event_type: event_type.to_owned(),
        reason: if err.is_data() {
            err.to_string()
        } else {
            format!("not valid json ({err})")
        },
    })
}

/// Parse a payload whose fields are all optional: empty or unusable means all `None`.
fn lenient<T: for<'de> Deserialize<'de> + Default>(payload: &[u8]) -> T {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return T::default();
    }
    serde_json::from_slice(payload).unwrap_or_else(|err| {
        log::debug!("unreadable upstream event payload ({err}); ignoring its fields");
        T::default()
    })
}

/// A string field; any other JSON type reads as `None`.
fn opt_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        _ => None,
    })
}

/// A number field; any other JSON type reads as `None`.
fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.and_then(|v| v.as_f64()))
}

/// A count: a non-negative integer, or a non-negative float rounded; anything else is `None`.
fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.and_then(|v| {
        v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                // `as` saturates, so a huge float can't wrap.
                .map(|f| f.round() as u64)
        })
    }))
}

#[derive(Deserialize)]
struct ContentPayload {
    content: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContextUsagePayload {
    context_usage_percentage: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolUsePayload {
    tool_use_id: String,
    /// Continuation fragments sometimes lack it (§5.3); [`ToolInputs`] keeps the first name.
    #[serde(default)]
    name: String,
    #[serde(default)]
    input: Option<Value>,
    #[serde(default)]
    stop: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MessageMetadataPayload {
    #[serde(default, deserialize_with = "opt_str")]
    conversation_id: Option<String>,
    #[serde(default, deserialize_with = "opt_str")]
    utterance_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ReasoningPayload {
    #[serde(default, deserialize_with = "opt_str")]
    text: Option<String>,
    #[serde(default, deserialize_with = "opt_str")]
    signature: Option<String>,
    #[serde(default, deserialize_with = "opt_str")]
    redacted_content: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MetadataPayload {
    #[serde(default, deserialize_with = "token_usage")]
    token_usage: Option<TokenUsagePayload>,
}

/// `tokenUsage` that is not an object reads as absent.
fn token_usage<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TokenUsagePayload>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?
        .filter(Value::is_object)
        .and_then(|v| serde_json::from_value(v).ok()))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct TokenUsagePayload {
    #[serde(default, deserialize_with = "opt_u64")]
    uncached_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    output_tokens: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    total_tokens: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    cache_read_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    cache_write_input_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MeteringPayload {
    #[serde(default, deserialize_with = "opt_f64")]
    usage: Option<f64>,
    #[serde(default, deserialize_with = "opt_str")]
    unit: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct InvalidStatePayload {
    #[serde(default, deserialize_with = "opt_str")]
    reason: Option<String>,
    #[serde(default, deserialize_with = "opt_str")]
    message: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ExceptionPayload {
    #[serde(default, alias = "Message", deserialize_with = "opt_str")]
    message: Option<String>,
    #[serde(default, deserialize_with = "opt_str")]
    reason: Option<String>,
}

/// What one `toolUseEvent` did to the accumulator, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolStep {
    /// The first event for this id: open a tool-use block.
    Started { id: String, name: String },
    /// A non-empty input fragment to forward as-is.
    Fragment { id: String, fragment: String },
    /// The tool's input is complete. `input` is always a JSON object (`{}` on failure).
    Finished {
        id: String,
        name: String,
        input: Value,
    },
}

#[derive(Debug)]
struct OpenTool {
    id: String,
    name: String,
    input: String,
}

/// Per-`toolUseId` accumulator of tool input fragments. Several tools may be open at once.
#[derive(Debug, Default)]
pub struct ToolInputs {
    /// Open tools, in the order they started.
    open: Vec<OpenTool>,
    finished: HashSet<String>,
}

impl ToolInputs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply one `toolUseEvent`. The first event for an id starts it; a non-empty `input` is
    /// appended (taken before `stop`, so a stop event may carry the last fragment); `stop`
    /// finishes it. A repeated start, or any event for an id already finished, does nothing.
    /// The name given at start is kept.
    #[must_use]
    pub fn on_tool_use(
        &mut self,
        id: &str,
        name: &str,
        input: Option<&str>,
        stop: bool,
    ) -> Vec<ToolStep> {
        if self.finished.contains(id) {
            log::debug!("ignoring toolUseEvent for already finished tool use {id}");
            return Vec::new();
        }
        let mut steps = Vec::new();
        let index = match self.open.iter().position(|tool| tool.id == id) {
            Some(index) => {
                if self.open[index].name.is_empty() && !name.is_empty() {
                    self.open[index].name = name.to_owned();
                }
                index
            }
            None => {
                self.open.push(OpenTool {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    input: String::new(),
                });
                steps.push(ToolStep::Started {
                    id: id.to_owned(),
                    name: name.to_owned(),
                });
                self.open.len() - 1
            }
        };
        if let Some(fragment) = input.filter(|f| !f.is_empty()) {
            self.open[index].input.push_str(fragment);
            steps.push(ToolStep::Fragment {
                id: id.to_owned(),
                fragment: fragment.to_owned(),
            });
        }
        if stop {
            let tool = self.open.remove(index);
            let input = object_or_empty(&tool, false);
            self.finished.insert(tool.id.clone());
            steps.push(ToolStep::Finished {
                id: tool.id,
                name: tool.name,
                input,
            });
        }
        steps
    }

    /// Close every tool that never got `stop` (call when the stream ends), in start order. The
    /// input is used if it parses as a complete JSON object, else `{}`.
    #[must_use]
    pub fn finish_open(&mut self) -> Vec<ToolStep> {
        let open = std::mem::take(&mut self.open);
        open.into_iter()
            .map(|tool| {
                let input = object_or_empty(&tool, true);
                self.finished.insert(tool.id.clone());
                ToolStep::Finished {
                    id: tool.id,
                    name: tool.name,
                    input,
                }
            })
            .collect()
    }

    /// Whether any tool use was started in this stream (then `stop_reason` is `tool_use`).
    pub fn saw_tool_use(&self) -> bool {
        !self.open.is_empty() || !self.finished.is_empty()
    }

    /// Whether some tool use is still waiting for `stop`.
    pub fn has_open(&self) -> bool {
        !self.open.is_empty()
    }
}

/// The tool's accumulated input as a JSON object: `{}` when empty, unparseable or not an object.
/// Logs problems without logging the input itself.
fn object_or_empty(tool: &OpenTool, unterminated: bool) -> Value {
    let empty = || Value::Object(serde_json::Map::new());
    if unterminated {
        log::warn!(
            "tool use {} ({}) never got stop before the stream ended",
            tool.id,
            tool.name
        );
    }
    if tool.input.trim().is_empty() {
        return empty();
    }
    match serde_json::from_str::<Value>(&tool.input) {
        Ok(Value::Object(map)) => Value::Object(map),
        Ok(other) => {
            let kind = match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            };
            log::warn!(
                "tool use {} ({}) input is {kind}, not a json object; using {{}}",
                tool.id,
                tool.name
            );
            empty()
        }
        Err(err) => {
            log::warn!(
                "tool use {} ({}) input is not valid json ({} bytes, {:?} error at line {} column {}); using {{}}",
                tool.id,
                tool.name,
                tool.input.len(),
                err.classify(),
                err.line(),
                err.column()
            );
            empty()
        }
    }
}

/// Event builders for the tests of everything fed by [`QEvent`]s (interpreter, renderers).
#[cfg(test)]
pub(crate) mod test_events {
    use super::QEvent;

    pub fn text(s: &str) -> QEvent {
        QEvent::AssistantText {
            content: s.to_owned(),
        }
    }

    pub fn tool(id: &str, name: &str, input: Option<&str>, stop: bool) -> QEvent {
        QEvent::ToolUse {
            tool_use_id: id.to_owned(),
            name: name.to_owned(),
            input: input.map(str::to_owned),
            stop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::q::eventstream::{Decoder, HeaderValue};
    use serde_json::json;

    fn s(v: &str) -> HeaderValue {
        HeaderValue::String(v.to_owned())
    }

    fn ev(event_type: &str, payload: &str) -> Message {
        Message {
            headers: vec![
                (":event-type".to_owned(), s(event_type)),
                (":content-type".to_owned(), s("application/json")),
                (":message-type".to_owned(), s("event")),
            ],
            payload: Bytes::copy_from_slice(payload.as_bytes()),
        }
    }

    fn parse_ev(event_type: &str, payload: &str) -> Result<QEvent, EventError> {
        parse(&ev(event_type, payload))
    }

    fn bad_payload(result: Result<QEvent, EventError>, event_type: &str) -> String {
        match result {
            Err(EventError::BadPayload {
                event_type: t,
                reason,
            }) => {
                assert_eq!(t, event_type);
                reason
            }
            other => panic!("expected BadPayload, got {other:?}"),
        }
    }

    #[test]
    fn initial_response() {
        assert_eq!(
            parse_ev("initial-response", "{}"),
            Ok(QEvent::InitialResponse)
        );
        assert_eq!(
            parse_ev("initial-response", r#"{"conversationId":"c"}"#),
            Ok(QEvent::InitialResponse)
        );
        assert_eq!(
            parse_ev("initial-response", ""),
            Ok(QEvent::InitialResponse)
        );
    }

    #[test]
    fn message_metadata() {
        assert_eq!(
            parse_ev(
                "messageMetadataEvent",
                r#"{"conversationId":"3d0c","utteranceId":"b7e1","tokenUsage":{"x":1}}"#
            ),
            Ok(QEvent::MessageMetadata {
                conversation_id: Some("3d0c".to_owned()),
                utterance_id: Some("b7e1".to_owned()),
            })
        );
        let none = QEvent::MessageMetadata {
            conversation_id: None,
            utterance_id: None,
        };
        assert_eq!(parse_ev("messageMetadataEvent", "{}"), Ok(none.clone()));
        assert_eq!(parse_ev("messageMetadataEvent", ""), Ok(none.clone()));
        assert_eq!(parse_ev("messageMetadataEvent", "not json"), Ok(none));
        // A wrongly typed field doesn't take the others down.
        assert_eq!(
            parse_ev(
                "messageMetadataEvent",
                r#"{"conversationId":5,"utteranceId":"u"}"#
            ),
            Ok(QEvent::MessageMetadata {
                conversation_id: None,
                utterance_id: Some("u".to_owned()),
            })
        );
    }

    #[test]
    fn assistant_text() {
        assert_eq!(
            parse_ev("assistantResponseEvent", r#"{"content":"Hi"}"#),
            Ok(QEvent::AssistantText {
                content: "Hi".to_owned()
            })
        );
        // Verbatim: whitespace, escapes, unicode, unknown keys.
        assert_eq!(
            parse_ev(
                "assistantResponseEvent",
                r#"{"content":"  a\n\t\"b\" \u00e9 <thin","modelId":"claude","x":[1]}"#
            ),
            Ok(QEvent::AssistantText {
                content: "  a\n\t\"b\" é <thin".to_owned()
            })
        );
        assert_eq!(
            parse_ev("assistantResponseEvent", r#"{"content":""}"#),
            Ok(QEvent::AssistantText {
                content: String::new()
            })
        );
        let reason = bad_payload(
            parse_ev("assistantResponseEvent", "{}"),
            "assistantResponseEvent",
        );
        assert!(reason.contains("missing field `content`"), "{reason}");
        bad_payload(
            parse_ev("assistantResponseEvent", r#"{"content":5}"#),
            "assistantResponseEvent",
        );
        bad_payload(
            parse_ev("assistantResponseEvent", r#"{"content":null}"#),
            "assistantResponseEvent",
        );
        let reason = bad_payload(
            parse_ev("assistantResponseEvent", "{'x'"),
            "assistantResponseEvent",
        );
        assert!(reason.starts_with("not valid json"), "{reason}");
        bad_payload(
            parse_ev("assistantResponseEvent", ""),
            "assistantResponseEvent",
        );
    }

    #[test]
    fn code_event() {
        assert_eq!(
            parse_ev("codeEvent", r#"{"content":"fn main() {}"}"#),
            Ok(QEvent::Code {
                content: "fn main() {}".to_owned()
            })
        );
        bad_payload(parse_ev("codeEvent", "{}"), "codeEvent");
    }

    #[test]
    fn reasoning() {
        assert_eq!(
            parse_ev(
                "reasoningContentEvent",
                r#"{"text":"hmm","signature":"sig","redactedContent":"AAEC"}"#
            ),
            Ok(QEvent::Reasoning {
                text: Some("hmm".to_owned()),
                signature: Some("sig".to_owned()),
                redacted: Some("AAEC".to_owned()),
            })
        );
        assert_eq!(
            parse_ev("reasoningContentEvent", r#"{"text":"t"}"#),
            Ok(QEvent::Reasoning {
                text: Some("t".to_owned()),
                signature: None,
                redacted: None,
            })
        );
    }

    #[test]
    fn tool_use() {
        assert_eq!(
            parse_ev(
                "toolUseEvent",
                r#"{"toolUseId":"tooluse_1","name":"run_shell"}"#
            ),
            Ok(QEvent::ToolUse {
                tool_use_id: "tooluse_1".to_owned(),
                name: "run_shell".to_owned(),
                input: None,
                stop: false,
            })
        );
        assert_eq!(
            parse_ev(
                "toolUseEvent",
                r#"{"input":"{\"cmd\":","name":"run_shell","toolUseId":"tooluse_1","extra":1}"#
            ),
            Ok(QEvent::ToolUse {
                tool_use_id: "tooluse_1".to_owned(),
                name: "run_shell".to_owned(),
                input: Some(r#"{"cmd":"#.to_owned()),
                stop: false,
            })
        );
        assert_eq!(
            parse_ev(
                "toolUseEvent",
                r#"{"toolUseId":"t","name":"n","input":null,"stop":true}"#
            ),
            Ok(QEvent::ToolUse {
                tool_use_id: "t".to_owned(),
                name: "n".to_owned(),
                input: None,
                stop: true,
            })
        );
        // Input as a JSON object (or other JSON) is re-serialized.
        assert_eq!(
            parse_ev(
                "toolUseEvent",
                r#"{"toolUseId":"t","name":"n","input":{"cmd":"ls","n":[1,2]},"stop":true}"#
            ),
            Ok(QEvent::ToolUse {
                tool_use_id: "t".to_owned(),
                name: "n".to_owned(),
                input: Some(r#"{"cmd":"ls","n":[1,2]}"#.to_owned()),
                stop: true,
            })
        );
        assert_eq!(
            parse_ev("toolUseEvent", r#"{"toolUseId":"t","name":"n","input":42}"#),
            Ok(QEvent::ToolUse {
                tool_use_id: "t".to_owned(),
                name: "n".to_owned(),
                input: Some("42".to_owned()),
                stop: false,
            })
        );
        let reason = bad_payload(parse_ev("toolUseEvent", r#"{"name":"n"}"#), "toolUseEvent");
        assert!(reason.contains("toolUseId"), "{reason}");
        // A continuation fragment without `name` is accepted.
        assert_eq!(
            parse_ev("toolUseEvent", r#"{"toolUseId":"t","input":"{}"}"#).unwrap(),
            QEvent::ToolUse {
                tool_use_id: "t".to_owned(),
                name: String::new(),
                input: Some("{}".to_owned()),
                stop: false,
            }
        );
        bad_payload(parse_ev("toolUseEvent", "[]"), "toolUseEvent");
    }

    #[test]
    fn metadata() {
        assert_eq!(
            parse_ev(
                "metadataEvent",
                r#"{"tokenUsage":{"uncachedInputTokens":10,"outputTokens":20,"totalTokens":30,"cacheReadInputTokens":5,"cacheWriteInputTokens":0}}"#
            ),
            Ok(QEvent::Metadata {
                uncached_input_tokens: Some(10),
                output_tokens: Some(20),
                total_tokens: Some(30),
                cache_read_input_tokens: Some(5),
                cache_write_input_tokens: Some(0),
            })
        );
        assert_eq!(
            parse_ev(
                "metadataEvent",
                r#"{"tokenUsage":{"outputTokens":7.0,"totalTokens":-1,"uncachedInputTokens":"x"}}"#
            ),
            Ok(QEvent::Metadata {
                uncached_input_tokens: None,
                output_tokens: Some(7),
                total_tokens: None,
                cache_read_input_tokens: None,
                cache_write_input_tokens: None,
            })
        );
        let empty = QEvent::Metadata {
            uncached_input_tokens: None,
            output_tokens: None,
            total_tokens: None,
            cache_read_input_tokens: None,
            cache_write_input_tokens: None,
        };
        assert_eq!(parse_ev("metadataEvent", "{}"), Ok(empty.clone()));
        assert_eq!(parse_ev("metadataEvent", r#"{"tokenUsage":3}"#), Ok(empty));
    }

    #[test]
    fn metering() {
        assert_eq!(
            parse_ev(
                "meteringEvent",
                r#"{"unit":"credit","unitPlural":"credits","usage":0.0148,"usedTools":["x"]}"#
            ),
            Ok(QEvent::Metering {
                usage: Some(0.0148),
                unit: Some("credit".to_owned()),
            })
        );
        assert_eq!(
            parse_ev("meteringEvent", r#"{"usage":1}"#),
            Ok(QEvent::Metering {
                usage: Some(1.0),
                unit: None,
            })
        );
    }

    #[test]
    fn context_usage() {
        assert_eq!(
            parse_ev("contextUsageEvent", r#"{"contextUsagePercentage":12.5}"#),
            Ok(QEvent::ContextUsage { percentage: 12.5 })
        );
        assert_eq!(
            parse_ev("contextUsageEvent", r#"{"contextUsagePercentage":100}"#),
            Ok(QEvent::ContextUsage { percentage: 100.0 })
        );
        bad_payload(parse_ev("contextUsageEvent", "{}"), "contextUsageEvent");
    }

    #[test]
    fn invalid_state() {
        assert_eq!(
            parse_ev(
                "invalidStateEvent",
                r#"{"reason":"INVALID_TASK_ASSIST_PLAN","message":"bad plan"}"#
            ),
            Ok(QEvent::InvalidState {
                reason: Some("INVALID_TASK_ASSIST_PLAN".to_owned()),
                message: Some("bad plan".to_owned()),
            })
        );
    }

    #[test]
    fn ignored_and_unknown_events() {
        for event_type in IGNORED_EVENTS {
            assert_eq!(
                parse_ev(event_type, r#"{"followupPrompt":{"content":"not text"}}"#),
                Ok(QEvent::Ignored {
                    event_type: (*event_type).to_owned()
                })
            );
        }
        assert_eq!(
            parse_ev("dryRunSucceedEvent", ""),
            Ok(QEvent::Ignored {
                event_type: "dryRunSucceedEvent".to_owned()
            })
        );
        assert_eq!(
            parse_ev("brandNewEvent", "garbage"),
            Ok(QEvent::Ignored {
                event_type: "brandNewEvent".to_owned()
            })
        );
    }

    #[test]
    fn message_type_dispatch() {
        // No :message-type means event.
        let mut msg = ev("assistantResponseEvent", r#"{"content":"x"}"#);
        msg.headers.retain(|(n, _)| n != ":message-type");
        assert_eq!(
            parse(&msg),
            Ok(QEvent::AssistantText {
                content: "x".to_owned()
            })
        );
        let mut msg = ev("x", "{}");
        msg.headers.retain(|(n, _)| n != ":event-type");
        assert_eq!(parse(&msg), Err(EventError::MissingEventType));
        let msg = Message {
            headers: vec![(":message-type".to_owned(), s("bogus"))],
            payload: Bytes::new(),
        };
        assert_eq!(
            parse(&msg),
            Err(EventError::UnknownMessageType {
                message_type: "bogus".to_owned()
            })
        );
    }

    fn exception(exception_type: Option<&str>, payload: &'static [u8]) -> Message {
        let mut headers = vec![
            (":content-type".to_owned(), s("application/json")),
            (":message-type".to_owned(), s("exception")),
        ];
        if let Some(t) = exception_type {
            headers.push((":exception-type".to_owned(), s(t)));
        }
        Message {
            headers,
            payload: Bytes::from_static(payload),
        }
    }

    #[test]
    fn exception_frames() {
        let payload: &[u8] = br#"{"message":"Encountered an unexpected error","reason":"MODEL_TEMPORARILY_UNAVAILABLE"}"#;
        assert_eq!(
            parse(&exception(Some("error"), br#"{"message":"Encountered an unexpected error","reason":"MODEL_TEMPORARILY_UNAVAILABLE"}"#)),
            Ok(QEvent::Exception {
                exception_type: "error".to_owned(),
                message: Some("Encountered an unexpected error".to_owned()),
                reason: Some("MODEL_TEMPORARILY_UNAVAILABLE".to_owned()),
                payload: Bytes::from_static(payload),
            })
        );
        assert_eq!(
            parse(&exception(Some("ContentLengthExceededException"), b"")),
            Ok(QEvent::Exception {
                exception_type: "ContentLengthExceededException".to_owned(),
                message: None,
                reason: None,
                payload: Bytes::new(),
            })
        );
        assert_eq!(
            parse(&exception(Some("ThrottlingException"), b"Rate exceeded")),
            Ok(QEvent::Exception {
                exception_type: "ThrottlingException".to_owned(),
                message: None,
                reason: None,
                payload: Bytes::from_static(b"Rate exceeded"),
            })
        );
        assert_eq!(
            parse(&exception(
                None,
                br#"{"Message":"capitalised","reason":null}"#
            )),
            Ok(QEvent::Exception {
                exception_type: String::new(),
                message: Some("capitalised".to_owned()),
                reason: None,
                payload: Bytes::from_static(br#"{"Message":"capitalised","reason":null}"#),
            })
        );
    }

    #[test]
    fn error_frames() {
        let msg = Message {
            headers: vec![
                (":message-type".to_owned(), s("error")),
                (":error-code".to_owned(), s("InternalFailure")),
                (":error-message".to_owned(), s("boom")),
            ],
            payload: Bytes::new(),
        };
        assert_eq!(
            parse(&msg),
            Ok(QEvent::Error {
                code: Some("InternalFailure".to_owned()),
                message: Some("boom".to_owned()),
            })
        );
        let msg = Message {
            headers: vec![(":message-type".to_owned(), s("error"))],
            payload: Bytes::from_static(b"ignored"),
        };
        assert_eq!(
            parse(&msg),
            Ok(QEvent::Error {
                code: None,
                message: None
            })
        );
    }

    #[test]
    fn test_vector_3_through_decoder_and_parser() {
        let hex = "0000009a000000527bf1d0000b3a6576656e742d7479706507000c746f6f6c5573654576656e740d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b22746f6f6c5573654964223a22746f6f6c7573655f31222c226e616d65223a2272756e5f7368656c6c222c2273746f70223a747275657dc51884c1";
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let mut decoder = Decoder::new();
        decoder.feed(&bytes);
        let msg = decoder.next_message().unwrap().unwrap();
        assert_eq!(
            parse(&msg),
            Ok(QEvent::ToolUse {
                tool_use_id: "tooluse_1".to_owned(),
                name: "run_shell".to_owned(),
                input: None,
                stop: true,
            })
        );
    }

    fn started(id: &str, name: &str) -> ToolStep {
        ToolStep::Started {
            id: id.to_owned(),
            name: name.to_owned(),
        }
    }

    fn fragment(id: &str, fragment: &str) -> ToolStep {
        ToolStep::Fragment {
            id: id.to_owned(),
            fragment: fragment.to_owned(),
        }
    }

    fn finished(id: &str, name: &str, input: Value) -> ToolStep {
        ToolStep::Finished {
            id: id.to_owned(),
            name: name.to_owned(),
            input,
        }
    }

    #[test]
    fn three_fragments_make_an_object() {
        let mut tools = ToolInputs::new();
        assert!(!tools.saw_tool_use());
        assert_eq!(
            tools.on_tool_use("t1", "run_shell", None, false),
            vec![started("t1", "run_shell")]
        );
        assert!(tools.saw_tool_use());
        assert!(tools.has_open());
        assert_eq!(
            tools.on_tool_use("t1", "run_shell", Some(r#"{"cmd":"#), false),
            vec![fragment("t1", r#"{"cmd":"#)]
        );
        assert_eq!(
            tools.on_tool_use("t1", "run_shell", Some(r#""ls /srv","#), false),
            vec![fragment("t1", r#""ls /srv","#)]
        );
        assert_eq!(
            tools.on_tool_use("t1", "run_shell", Some(r#""n":3}"#), false),
            vec![fragment("t1", r#""n":3}"#)]
        );
        assert_eq!(
            tools.on_tool_use("t1", "run_shell", None, true),
            vec![finished(
                "t1",
                "run_shell",
                json!({"cmd": "ls /srv", "n": 3})
            )]
        );
        assert!(!tools.has_open());
        assert!(tools.saw_tool_use());
        assert_eq!(tools.finish_open(), vec![]);
    }

    #[test]
    fn stop_event_carries_the_last_fragment() {
        let mut tools = ToolInputs::new();
        let _ = tools.on_tool_use("t", "n", None, false);
        let _ = tools.on_tool_use("t", "n", Some(r#"{"a":"#), false);
        assert_eq!(
            tools.on_tool_use("t", "n", Some("1}"), true),
            vec![fragment("t", "1}"), finished("t", "n", json!({"a": 1}))]
        );
        // Everything in a single event: start, fragment and stop.
        let mut tools = ToolInputs::new();
        assert_eq!(
            tools.on_tool_use("u", "m", Some(r#"{"b":2}"#), true),
            vec![
                started("u", "m"),
                fragment("u", r#"{"b":2}"#),
                finished("u", "m", json!({"b": 2}))
            ]
        );
    }

    #[test]
    fn empty_input_is_an_empty_object() {
        let mut tools = ToolInputs::new();
        let _ = tools.on_tool_use("t", "n", None, false);
        assert_eq!(tools.on_tool_use("t", "n", Some(""), false), vec![]);
        assert_eq!(
            tools.on_tool_use("t", "n", None, true),
            vec![finished("t", "n", json!({}))]
        );
    }

    #[test]
    fn repeated_start_is_ignored() {
        let mut tools = ToolInputs::new();
        let _ = tools.on_tool_use("t", "n", None, false);
        assert_eq!(tools.on_tool_use("t", "n", None, false), vec![]);
        // A continuation with a different (or missing) name keeps the first name.
        assert_eq!(
            tools.on_tool_use("t", "other", Some("{}"), false),
            vec![fragment("t", "{}")]
        );
        assert_eq!(
            tools.on_tool_use("t", "", None, true),
            vec![finished("t", "n", json!({}))]
        );
        // Anything for a finished id is ignored: a restart, a late fragment, a second stop.
        assert_eq!(tools.on_tool_use("t", "n", None, false), vec![]);
        assert_eq!(tools.on_tool_use("t", "n", Some("x"), false), vec![]);
        assert_eq!(tools.on_tool_use("t", "n", None, true), vec![]);
        assert!(!tools.has_open());
    }

    #[test]
    fn interleaved_tools() {
        let mut tools = ToolInputs::new();
        let _ = tools.on_tool_use("a", "read", None, false);
        let _ = tools.on_tool_use("b", "write", None, false);
        let _ = tools.on_tool_use("a", "read", Some(r#"{"path":"#), false);
        let _ = tools.on_tool_use("b", "write", Some(r#"{"text":"hi"#), false);
        let _ = tools.on_tool_use("a", "read", Some(r#""/etc"}"#), false);
        assert_eq!(
            tools.on_tool_use("b", "write", Some(r#""}"#), true),
            vec![
                fragment("b", r#""}"#),
                finished("b", "write", json!({"text": "hi"}))
            ]
        );
        assert!(tools.has_open());
        assert_eq!(
            tools.on_tool_use("a", "read", None, true),
            vec![finished("a", "read", json!({"path": "/etc"}))]
        );
        assert!(!tools.has_open());
    }

    #[test]
    fn invalid_or_non_object_input_is_an_empty_object() {
        for input in [
            r#"{"a":"#, "not json", "[1,2]", "\"str\"", "3", "null", "{} {}",
        ] {
            let mut tools = ToolInputs::new();
            let _ = tools.on_tool_use("t", "n", Some(input), false);
            assert_eq!(
                tools.on_tool_use("t", "n", None, true),
                vec![finished("t", "n", json!({}))],
                "{input}"
            );
        }
        // Whitespace around an object is fine.
        let mut tools = ToolInputs::new();
        let _ = tools.on_tool_use("t", "n", Some(" {\"a\": 1}\n"), false);
        assert_eq!(
            tools.on_tool_use("t", "n", None, true),
            vec![finished("t", "n", json!({"a": 1}))]
        );
    }

    #[test]
    fn finish_open_closes_unstopped_tools_in_order() {
        let mut tools = ToolInputs::new();
        let _ = tools.on_tool_use("a", "one", None, false);
        let _ = tools.on_tool_use("a", "one", Some(r#"{"x":1}"#), false);
        let _ = tools.on_tool_use("b", "two", Some(r#"{"y":"#), false);
        let _ = tools.on_tool_use("c", "three", None, false);
        let _ = tools.on_tool_use("d", "four", None, true);
        assert_eq!(
            tools.finish_open(),
            vec![
                finished("a", "one", json!({"x": 1})),
                finished("b", "two", json!({})),
                finished("c", "three", json!({})),
            ]
        );
        assert!(!tools.has_open());
        assert!(tools.saw_tool_use());
        assert_eq!(tools.finish_open(), vec![]);
        // Closed tools stay closed.
        assert_eq!(tools.on_tool_use("a", "one", Some("{}"), true), vec![]);
    }

    #[test]
    fn error_messages_are_lowercase_phrases() {
        for err in [
            EventError::BadPayload {
                event_type: "toolUseEvent".to_owned(),
                reason: "missing field `name`".to_owned(),
            },
            EventError::MissingEventType,
            EventError::UnknownMessageType {
                message_type: "x".to_owned(),
            },
        ] {
            let text = err.to_string();
            assert!(text.starts_with(|c: char| c.is_ascii_lowercase()), "{text}");
        }
    }
}
