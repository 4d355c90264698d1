//! The OpenAI renderer: turns the interpreter's [`Answer`]s into the exact Chat Completions
//! `chat.completion.chunk` SSE lines ([`OpenAiStream`]) or, for `stream: false`, one
//! `chat.completion` JSON ([`OpenAiMessage`]). Pure: no I/O, fed one answer at a time
//! (protocol reference §6.5, §7b.2, §7.9).
//!
//! # The chunk sequence ([`OpenAiStream`])
//!
//! Every chunk is one `data:` line (no `event:` name), `{"id","object":"chat.completion.chunk",
//! "created","model","choices":[{"index":0,"delta":{…},"finish_reason":null}]}`, with the same
//! `id` and `created` throughout and `model` echoed as the client sent it.
//!
//! 1. [`OpenAiStream::start`]: `delta: {"role":"assistant","content":""}`.
//! 2. One chunk per answer, in answer order, each delta with one field:
//!    * thinking: `{"reasoning_content": …}` (the DeepSeek field that OpenAI-compatible clients
//!      read); the end of thinking sends nothing;
//!    * text: `{"content": …}`;
//!    * a tool call: `{"tool_calls":[{"index":k,"id","type":"function","function":{"name",
//!      "arguments":""}}]}` at its start, then `{"tool_calls":[{"index":k,"function":
//!      {"arguments":<fragment>}}]}` for each upstream fragment. `k` is the 0-based ordinal of the
//!      call in this response, not a content block index: text before a call does not shift it
//!      (§7b.2). Calls the upstream interleaves stream side by side, each under its own `k`.
//! 3. [`OpenAiStream::finish`]: `delta: {}` with the `finish_reason`
//!    ([`StopReason::as_openai`]); with `stream_options.include_usage`, one chunk with
//!    `"choices": []` and `usage` (`prompt_tokens`, `completion_tokens`, `total_tokens`); then
//!    `data: [DONE]`. With `include_usage` every other chunk carries `"usage": null`, as OpenAI
//!    documents; without it no chunk has a `usage` key.
//!
//! Or [`OpenAiStream::fail`] after the first byte: `data: {"error":{"message","type","param":
//! null,"code"}}`, then `data: [DONE]`, and nothing after. There is no finish chunk, and the
//! OpenAI SDKs raise on a data object with an `error` key (`APIError` in Python), so a client
//! reports an error instead of taking a truncated answer as complete.
//!
//! # Tool call arguments
//!
//! Clients `JSON.parse` the concatenation of a call's `arguments` fragments, so it must be JSON:
//!
//! * A call whose fragments never came, or were only whitespace, gets its whole input
//!   (`serde_json` of the `ToolEnd` input, `{}` included) as one fragment at its end (the
//!   interpreter parses whitespace as `{}`, and whitespace then `{}` parses). So does a call that
//!   never ended by [`OpenAiStream::finish`], with `{}` (only possible when the renderer is fed
//!   without the interpreter's `finish`).
//! * Fragments that do not concatenate to a JSON object (the upstream cut or garbled them; the
//!   interpreter then ends the call with `{}` and warns, see
//!   [`ToolInputs`](crate::q::events::ToolInputs)) cannot be taken back: they stay as sent and are
//!   logged at debug; appending to them would invent input the model never gave.
//!   The check needs no copy of the arguments: the interpreter's input is the parse of the same
//!   concatenation, so when it is `{}` the stream was valid only if its non-whitespace characters
//!   were exactly `{}`; only the first three of them are kept per open call.
//!
//! # Left out
//!
//! `logprobs` (optional in a streamed choice, and we have none), `system_fingerprint`,
//! `service_tier` and `refusal`. The non-streamed choice has `"logprobs": null`, which OpenAI's
//! API reference lists as required there.
//!
//! JSON object keys come out sorted (serde_json without `preserve_order`).
//!
//! `completion_tokens` is counted like the Claude renderer's `output_tokens`, with
//! [`OutputCounter`] over the emitted reasoning, text and argument text (which includes a `{}`
//! sent whole), incrementally; the count never merges text across two of those parts.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::q::answer::{Answer, StopReason};
use crate::tokens::{self, OutputCounter};

/// One `data:` line of a Chat Completions stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// A `chat.completion.chunk`, or the error object of [`OpenAiStream::fail`].
    Data(Value),
    /// `[DONE]`, the last line of every stream.
    Done,
}

impl Chunk {
    /// `data: <compact json>\n\n`, or `data: [DONE]\n\n`.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Chunk::Data(data) => Bytes::from(format!("data: {data}\n\n")),
            Chunk::Done => Bytes::from_static(b"data: [DONE]\n\n"),
        }
    }
}

/// Usage as OpenAI reports it.
fn usage(prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens.saturating_add(completion_tokens),
    })
}

fn is_empty_object(v: &Value) -> bool {
    v.as_object().is_some_and(Map::is_empty)
}

/// What the output counter's uncounted text belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Reasoning,
    Content,
    /// The arguments of the call with this index.
    Arguments(usize),
}

/// How many non-whitespace characters of a call's arguments are kept: enough to tell `{}` from
/// `{}` followed by anything.
const HEAD: usize = 3;

/// One tool call of the response; its position in the stream's `calls` is its `index`.
#[derive(Debug)]
struct Call {
    id: String,
    /// The first (at most [`HEAD`]) non-whitespace characters of the arguments sent so far.
    head: String,
    ended: bool,
}

impl Call {
    fn sent(&mut self, fragment: &str) {
        let room = HEAD - self.head.chars().count();
        self.head
            .extend(fragment.chars().filter(|c| !c.is_whitespace()).take(room));
    }
}

/// The streaming renderer; see the module doc.
#[derive(Debug)]
pub struct OpenAiStream {
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
    started: bool,
    /// `finish` or `fail` was sent: nothing more.
    ended: bool,
    /// Tool calls in start order.
    calls: Vec<Call>,
    counter: OutputCounter,
    /// What the counter's uncounted text belongs to.
    counting: Option<Part>,
}

impl OpenAiStream {
    /// `id` (`chatcmpl-…`) and `created` (Unix seconds) go on every chunk; `model` is echoed as
    /// the client sent it; `include_usage` is the request's `stream_options.include_usage`.
    pub fn new(id: String, model: String, created: i64, include_usage: bool) -> Self {
        OpenAiStream {
            id,
            model,
            created,
            include_usage,
            started: false,
            ended: false,
            calls: Vec::new(),
            counter: OutputCounter::default(),
            counting: None,
        }
    }

    /// The first chunk, with the role. Called again, after an answer (which starts the stream
    /// itself) or after the end, it returns nothing.
    pub fn start(&mut self) -> Vec<Chunk> {
        if self.started || self.ended {
            return Vec::new();
        }
        self.started = true;
        vec![self.chunk(json!({"role": "assistant", "content": ""}), None)]
    }

    /// Render one answer.
    pub fn on_answer(&mut self, a: Answer) -> Vec<Chunk> {
        if self.ended {
            log::debug!("ignoring an answer after the end of the stream");
            return Vec::new();
        }
        let mut out = self.start();
        match a {
            Answer::Thinking(thinking) => {
                if !thinking.is_empty() {
                    self.count(Part::Reasoning, &thinking);
                    out.push(self.chunk(json!({"reasoning_content": thinking}), None));
                }
            }
            Answer::ThinkingEnd => {}
            Answer::Text(text) => {
                if !text.is_empty() {
                    self.count(Part::Content, &text);
                    out.push(self.chunk(json!({"content": text}), None));
                }
            }
            Answer::ToolStart { id, name } => {
                if self.calls.iter().any(|c| c.id == id) {
                    log::debug!("ignoring a repeated start of tool call {id}");
                    return out;
                }
                let index = self.calls.len();
                out.push(self.chunk(
                    json!({"tool_calls": [{
                        "index": index,
                        "id": id,
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }]}),
                    None,
                ));
                self.calls.push(Call {
                    id,
                    head: String::new(),
                    ended: false,
                });
            }
            Answer::ToolInput { id, fragment } => {
                if fragment.is_empty() {
                    return out;
                }
                match self.calls.iter().position(|c| c.id == id && !c.ended) {
                    Some(index) => out.push(self.arguments(index, fragment)),
                    None => log::debug!("ignoring input of tool call {id}, which is not open"),
                }
            }
            Answer::ToolEnd { id, input } => match self.calls.iter().position(|c| c.id == id) {
                Some(index) => self.end_call(index, &input, &mut out),
                None => log::warn!("ignoring the end of tool call {id}, which never started"),
            },
        }
        out
    }

    /// The end: ends calls that never ended (see the module doc), then the finish chunk, the
    /// usage chunk if asked for, and `[DONE]`. `output_tokens_upstream` replaces our count when
    /// the upstream gave one.
    pub fn finish(
        &mut self,
        stop: StopReason,
        input_tokens: u64,
        output_tokens_upstream: Option<u64>,
    ) -> Vec<Chunk> {
        if self.ended {
            return Vec::new();
        }
        let mut out = self.start();
        for index in 0..self.calls.len() {
            self.end_call(index, &Value::Object(Map::new()), &mut out);
        }
        self.ended = true;
        out.push(self.chunk(json!({}), Some(stop.as_openai())));
        if self.include_usage {
            let output_tokens = output_tokens_upstream.unwrap_or_else(|| self.output_tokens());
            out.push(self.envelope(json!([]), usage(input_tokens, output_tokens)));
        }
        out.push(Chunk::Done);
        out
    }

    /// A failure after the first byte: the error object and `[DONE]`, nothing after them (see
    /// the module doc).
    pub fn fail(&mut self, message: &str, error_type: &str, code: Option<&str>) -> Vec<Chunk> {
        if self.ended {
            return Vec::new();
        }
        self.ended = true;
        vec![
            Chunk::Data(json!({"error": {
                "message": message,
                "type": error_type,
                "param": null,
                "code": code,
            }})),
            Chunk::Done,
        ]
    }

    /// Output tokens emitted so far (reasoning, text, tool call arguments).
    pub fn output_tokens(&self) -> u64 {
        self.counter.total()
    }

    /// A chunk with one choice.
    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Chunk {
        self.envelope(
            json!([{"index": 0, "delta": delta, "finish_reason": finish_reason}]),
            Value::Null,
        )
    }

    /// `usage` is only sent with `include_usage`.
    fn envelope(&self, choices: Value, usage: Value) -> Chunk {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if self.include_usage {
            chunk["usage"] = usage;
        }
        Chunk::Data(chunk)
    }

    /// An arguments fragment of the call at `index`.
    fn arguments(&mut self, index: usize, fragment: String) -> Chunk {
        self.calls[index].sent(&fragment);
        self.count(Part::Arguments(index), &fragment);
        self.chunk(
            json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
            None,
        )
    }

    /// Ends the call at `index` (nothing if it has ended): its whole input if no argument text
    /// was sent, else a check that what was sent parses (see the module doc).
    fn end_call(&mut self, index: usize, input: &Value, out: &mut Vec<Chunk>) {
        let call = &mut self.calls[index];
        if call.ended {
            return;
        }
        call.ended = true;
        let head = std::mem::take(&mut call.head);
        if head.is_empty() {
            out.push(self.arguments(index, input.to_string()));
        } else if is_empty_object(input) && head != "{}" {
            log::debug!(
                "the arguments streamed for tool call {} do not parse as a JSON object; \
                 they cannot be taken back",
                self.calls[index].id
            );
        }
    }

    fn count(&mut self, part: Part, text: &str) {
        if self.counting != Some(part) {
            self.counter.flush();
            self.counting = Some(part);
        }
        self.counter.add(text);
    }
}

/// A tool call of a non-streamed message.
#[derive(Debug)]
struct MessageCall {
    id: String,
    name: String,
    input: Value,
}

/// The non-streaming renderer: fed the same answers, builds the whole `chat.completion`.
/// `message.content` is the text, or `null` when there is none but tool calls (`""` when the
/// answer is empty, as OpenAI answers an empty completion and as a streamed one adds up);
/// `reasoning_content` is there only when thinking came, `tool_calls` only when calls came, in
/// call order, with `arguments` the JSON of the `ToolEnd` input (`{}` for a call that never
/// ended). This one holds the answer, by nature.
#[derive(Debug)]
pub struct OpenAiMessage {
    id: String,
    model: String,
    created: i64,
    reasoning: String,
    content: String,
    calls: Vec<MessageCall>,
}

impl OpenAiMessage {
    pub fn new(id: String, model: String, created: i64) -> Self {
        OpenAiMessage {
            id,
            model,
            created,
            reasoning: String::new(),
            content: String::new(),
            calls: Vec::new(),
        }
    }

    pub fn on_answer(&mut self, a: Answer) {
        match a {
            Answer::Thinking(thinking) => self.reasoning.push_str(&thinking),
            Answer::ThinkingEnd => {}
            Answer::Text(text) => self.content.push_str(&text),
            Answer::ToolStart { id, name } => {
                if !self.calls.iter().any(|c| c.id == id) {
                    self.calls.push(MessageCall {
                        id,
                        name,
                        input: Value::Object(Map::new()),
                    });
                }
            }
            // The parsed input comes with the end.
            Answer::ToolInput { .. } => {}
            Answer::ToolEnd { id, input } => match self.calls.iter_mut().find(|c| c.id == id) {
                Some(call) => call.input = input,
                None => log::warn!("ignoring the end of tool call {id}, which never started"),
            },
        }
    }

    /// Output tokens of the message so far (reasoning, text, tool call arguments).
    pub fn output_tokens(&self) -> u64 {
        tokens::count(&self.reasoning)
            + tokens::count(&self.content)
            + self
                .calls
                .iter()
                .map(|c| tokens::count(&c.input.to_string()))
                .sum::<u64>()
    }

    /// The `chat.completion` JSON. `output_tokens_upstream` replaces our count when the upstream
    /// gave one.
    pub fn finish(
        &self,
        stop: StopReason,
        input_tokens: u64,
        output_tokens_upstream: Option<u64>,
    ) -> Value {
        let content = if self.content.is_empty() && !self.calls.is_empty() {
            Value::Null
        } else {
            Value::String(self.content.clone())
        };
        let mut message = json!({"role": "assistant", "content": content});
        if !self.reasoning.is_empty() {
            message["reasoning_content"] = Value::String(self.reasoning.clone());
        }
        if !self.calls.is_empty() {
            message["tool_calls"] = self
                .calls
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.input.to_string()},
                    })
                })
                .collect();
        }
        let output_tokens = output_tokens_upstream.unwrap_or_else(|| self.output_tokens());
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": null,
                "finish_reason": stop.as_openai(),
            }],
            "usage": usage(input_tokens, output_tokens),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::q::answer::Interpreter;
    use crate::q::error::{ErrorClass, Stage, UpstreamError};
    use crate::q::events::QEvent;
    use crate::q::tool_names::ToolNames;

    const ID: &str = "chatcmpl-test";
    const MODEL: &str = "gpt-4o";
    const CREATED: i64 = 1_700_000_000;
    const WINDOW: u64 = 200_000;
    const ESTIMATE: u64 = 42;

    use crate::q::events::test_events::{text, tool};

    fn stream(include_usage: bool) -> OpenAiStream {
        OpenAiStream::new(ID.into(), MODEL.into(), CREATED, include_usage)
    }

    /// How the upstream stream ends.
    enum End {
        Finish,
        Error(UpstreamError),
    }

    /// Upstream events through the interpreter and the renderer, as the proxy strings them.
    /// Also renders the same answers as a non-streamed message and checks that both agree on the
    /// tool calls.
    fn chunks(thinking: bool, upstream: Vec<QEvent>, end: End, include_usage: bool) -> Vec<Chunk> {
        let mut interp = Interpreter::new(thinking, ToolNames::default(), WINDOW);
        let mut s = stream(include_usage);
        let mut msg = OpenAiMessage::new(ID.into(), MODEL.into(), CREATED);
        let mut out = s.start();
        fn render(a: Answer, s: &mut OpenAiStream, msg: &mut OpenAiMessage) -> Vec<Chunk> {
            msg.on_answer(a.clone());
            s.on_answer(a)
        }
        for ev in upstream {
            for a in interp.on_event(ev) {
                out.extend(render(a, &mut s, &mut msg));
            }
        }
        let ending = match end {
            End::Finish => Some(interp.finish()),
            End::Error(err) => match interp.on_error(&err) {
                Some(answers) => Some(answers),
                None => {
                    out.extend(s.fail(&err.message, "server_error", None));
                    None
                }
            },
        };
        if let Some(answers) = ending {
            for a in answers {
                out.extend(render(a, &mut s, &mut msg));
            }
            let message = msg.finish(interp.stop_reason(), 0, None);
            out.extend(s.finish(
                interp.stop_reason(),
                interp.upstream_input_tokens().unwrap_or(ESTIMATE),
                interp.upstream_output_tokens(),
            ));
            check_invariants(&out, include_usage);
            check_tool_calls(&out, &message);
            assert_eq!(
                finish_reason(&out),
                message["choices"][0]["finish_reason"].as_str().unwrap()
            );
        }
        // Nothing comes after the end.
        assert!(s.start().is_empty());
        assert!(s.on_answer(Answer::Text("late".into())).is_empty());
        assert!(s.finish(StopReason::EndTurn, 0, None).is_empty());
        assert!(s.fail("late", "server_error", None).is_empty());
        out
    }

    fn wire(chunks: &[Chunk]) -> String {
        chunks
            .iter()
            .map(|c| String::from_utf8(c.to_bytes().to_vec()).unwrap())
            .collect()
    }

    fn transcript(thinking: bool, upstream: Vec<QEvent>, end: End) -> String {
        wire(&chunks(thinking, upstream, end, false))
    }

    fn data(chunks: &[Chunk]) -> Vec<&Value> {
        chunks
            .iter()
            .filter_map(|c| match c {
                Chunk::Data(v) => Some(v),
                Chunk::Done => None,
            })
            .collect()
    }

    fn finish_reason(chunks: &[Chunk]) -> &str {
        let reasons: Vec<&str> = data(chunks)
            .iter()
            .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
            .collect();
        assert_eq!(reasons.len(), 1, "one finish_reason");
        reasons[0]
    }

    /// Per tool call, in index order: its id, name and concatenated arguments.
    fn streamed_calls(chunks: &[Chunk]) -> Vec<(String, String, String)> {
        let mut calls: Vec<(String, String, String)> = Vec::new();
        for c in data(chunks) {
            let Some(tool_calls) = c["choices"][0]["delta"]["tool_calls"].as_array() else {
                continue;
            };
            assert_eq!(tool_calls.len(), 1, "one call per chunk");
            let call = &tool_calls[0];
            let index = call["index"].as_u64().unwrap() as usize;
            let arguments = call["function"]["arguments"].as_str().unwrap();
            if index == calls.len() {
                // The first chunk of a call names it, with empty arguments.
                assert_eq!(call["type"], "function");
                assert_eq!(arguments, "");
                let keys: Vec<&String> = call.as_object().unwrap().keys().collect();
                assert_eq!(keys, ["function", "id", "index", "type"]);
                calls.push((
                    call["id"].as_str().unwrap().to_owned(),
                    call["function"]["name"].as_str().unwrap().to_owned(),
                    String::new(),
                ));
            } else {
                assert!(index < calls.len(), "indices are contiguous, {index}");
                assert_eq!(
                    call,
                    &json!({"index": index, "function": {"arguments": arguments}})
                );
                calls[index].2.push_str(arguments);
            }
        }
        calls
    }

    /// Each call's streamed arguments parse to the arguments of the non-streamed message.
    fn check_tool_calls(chunks: &[Chunk], message: &Value) {
        let streamed = streamed_calls(chunks);
        let empty = Vec::new();
        let calls = message["choices"][0]["message"]["tool_calls"]
            .as_array()
            .unwrap_or(&empty);
        assert_eq!(streamed.len(), calls.len());
        for ((id, name, arguments), call) in streamed.iter().zip(calls) {
            assert_eq!(call["id"], **id);
            assert_eq!(call["function"]["name"], **name);
            let streamed: Value = serde_json::from_str(arguments).unwrap();
            let whole: Value =
                serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
            assert_eq!(streamed, whole, "call {id}");
        }
    }

    /// The envelope of every chunk of a complete stream.
    fn check_invariants(chunks: &[Chunk], include_usage: bool) {
        assert_eq!(chunks.last(), Some(&Chunk::Done));
        assert_eq!(chunks.iter().filter(|c| **c == Chunk::Done).count(), 1);
        let data = data(chunks);
        for c in &data {
            assert_eq!(c["id"], ID);
            assert_eq!(c["created"], CREATED);
            assert_eq!(c["model"], MODEL);
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c.get("usage").is_some(), include_usage, "{c}");
        }
        let choices = if include_usage {
            let (last, rest) = data.split_last().unwrap();
            assert_eq!(last["choices"], json!([]));
            let usage = &last["usage"];
            assert_eq!(
                usage["total_tokens"].as_u64().unwrap(),
                usage["prompt_tokens"].as_u64().unwrap()
                    + usage["completion_tokens"].as_u64().unwrap()
            );
            assert_eq!(usage.as_object().unwrap().len(), 3);
            rest
        } else {
            &data[..]
        };
        let (finish, body) = choices.split_last().unwrap();
        assert_eq!(finish["choices"][0]["delta"], json!({}));
        assert!(finish["choices"][0]["finish_reason"].is_string());
        assert_eq!(
            body[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        for c in choices {
            if include_usage {
                assert_eq!(c["usage"], Value::Null);
            }
            let choices = c["choices"].as_array().unwrap();
            assert_eq!(choices.len(), 1);
            let keys: Vec<&String> = choices[0].as_object().unwrap().keys().collect();
            assert_eq!(keys, ["delta", "finish_reason", "index"]);
            assert_eq!(choices[0]["index"], 0);
        }
        for c in &body[1..] {
            assert_eq!(c["choices"][0]["finish_reason"], Value::Null);
            let delta = c["choices"][0]["delta"].as_object().unwrap();
            assert_eq!(delta.len(), 1, "one field per delta: {c}");
            let (key, value) = delta.iter().next().unwrap();
            assert!(
                ["content", "reasoning_content", "tool_calls"].contains(&key.as_str()),
                "{key}"
            );
            if key != "tool_calls" {
                assert!(!value.as_str().unwrap().is_empty());
            }
        }
    }

    #[test]
    fn text_only() {
        let upstream = vec![
            QEvent::InitialResponse,
            text("Hello"),
            text(""),
            text(", world"),
            text("!"),
            QEvent::Metering {
                usage: Some(0.01),
                unit: Some("credit".into()),
            },
        ];
        insta::assert_snapshot!("text_only", transcript(false, upstream, End::Finish));
    }

    #[test]
    fn text_then_two_tool_calls() {
        let upstream = vec![
            text("Let me check."),
            tool("tooluse_1", "run_shell", None, false),
            tool("tooluse_1", "run_shell", Some(r#"{"cmd":"#), false),
            tool("tooluse_1", "run_shell", Some(r#""ls /srv","#), false),
            tool("tooluse_1", "run_shell", Some(r#""n":3}"#), false),
            tool("tooluse_1", "run_shell", None, true),
            tool("tooluse_2", "list", None, false),
            tool("tooluse_2", "list", None, true),
        ];
        let out = chunks(false, upstream, End::Finish, false);
        assert_eq!(call_indices(&out), [0, 0, 0, 0, 1, 1]);
        assert_eq!(finish_reason(&out), "tool_calls");
        insta::assert_snapshot!("text_then_two_tools", wire(&out));
    }

    #[test]
    fn interleaved_calls_stream_side_by_side() {
        let upstream = vec![
            tool("a", "read", None, false),
            tool("b", "write", None, false),
            tool("a", "read", Some(r#"{"path":"#), false),
            tool("b", "write", Some(r#"{"text":"hi"}"#), true),
            tool("a", "read", Some(r#""/x"}"#), true),
        ];
        insta::assert_snapshot!(
            "interleaved_tools",
            transcript(false, upstream, End::Finish)
        );
    }

    const THOUGHT_OPEN: &str = "<thinking>\n";
    const THOUGHT_CLOSE: &str = "</thinking>\n\n";

    fn thinking_events(split_open: usize, split_close: usize) -> Vec<QEvent> {
        let (o1, o2) = THOUGHT_OPEN.split_at(split_open);
        let (c1, c2) = THOUGHT_CLOSE.split_at(split_close);
        vec![
            text(o1),
            text(&format!("{o2}Two plus two")),
            text(&format!(" is four.{c1}")),
            text(&format!("{c2}It is 4.")),
        ]
    }

    #[test]
    fn thinking_as_reasoning_content_then_text() {
        let expected = transcript(true, thinking_events(0, 0), End::Finish);
        insta::assert_snapshot!("thinking_then_text", expected);
        for split_open in 0..=THOUGHT_OPEN.len() {
            for split_close in 0..=THOUGHT_CLOSE.len() {
                assert_eq!(
                    transcript(true, thinking_events(split_open, split_close), End::Finish),
                    expected,
                    "split at {split_open} and {split_close}"
                );
            }
        }
    }

    #[test]
    fn include_usage_adds_a_usage_chunk() {
        let upstream = vec![text("Hi there."), QEvent::ContextUsage { percentage: 1.5 }];
        let out = chunks(false, upstream, End::Finish, true);
        let usage = &data(&out).last().unwrap()["usage"];
        assert_eq!(usage["prompt_tokens"], 3000);
        assert_eq!(usage["completion_tokens"], tokens::count("Hi there."));
        insta::assert_snapshot!("include_usage", wire(&out));
    }

    #[test]
    fn exception_after_text_is_an_error_object_then_done() {
        let upstream = vec![text("Half an ans"), text("wer")];
        let err = UpstreamError::new(
            ErrorClass::ModelOverloaded,
            Stage::Stream,
            "Encountered an unexpected error",
        );
        // With include_usage: a failed stream has no usage chunk.
        let out = chunks(false, upstream, End::Error(err), true);
        let (done, rest) = out.split_last().unwrap();
        assert_eq!(done, &Chunk::Done);
        let (error, rest) = rest.split_last().unwrap();
        assert!(data(rest)
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null()));
        insta::assert_snapshot!("exception_after_text", wire(&out));
        assert_eq!(
            error,
            &Chunk::Data(json!({"error": {
                "message": "Encountered an unexpected error",
                "type": "server_error",
                "param": null,
                "code": null,
            }}))
        );
    }

    #[test]
    fn fail_before_start_and_with_a_code() {
        let mut s = stream(false);
        let out = s.fail("busy", "server_error", Some("overloaded"));
        assert_eq!(
            wire(&out),
            "data: {\"error\":{\"code\":\"overloaded\",\"message\":\"busy\",\"param\":null,\"type\":\"server_error\"}}\n\ndata: [DONE]\n\n"
        );
        assert!(s.start().is_empty());
        assert!(s.on_answer(Answer::Text("x".into())).is_empty());
        assert!(s.finish(StopReason::EndTurn, 1, None).is_empty());
    }

    #[test]
    fn same_id_and_created_on_every_chunk() {
        let upstream = vec![
            text("<thinking>hm</thinking>\n\nSo:"),
            tool("t1", "read", Some(r#"{"a":1}"#), true),
            text(" and"),
            tool("t2", "read", None, true),
            QEvent::ContextUsage { percentage: 3.0 },
        ];
        let out = chunks(true, upstream, End::Finish, true);
        let data = data(&out);
        assert!(data.len() > 6);
        for c in data {
            assert_eq!(c["id"], ID);
            assert_eq!(c["created"], CREATED);
            assert_eq!(c["model"], MODEL);
        }
    }

    #[test]
    fn start_is_idempotent_and_answers_start_the_stream() {
        let mut s = stream(false);
        assert_eq!(s.start().len(), 1);
        assert!(s.start().is_empty());
        let mut s = stream(false);
        let out = s.on_answer(Answer::Text("a".into()));
        assert_eq!(out.len(), 2);
        assert!(s.start().is_empty());
        let mut s = stream(false);
        let out = s.finish(StopReason::EndTurn, 1, None);
        let names: Vec<Value> = data(&out)
            .iter()
            .map(|c| c["choices"][0]["delta"].clone())
            .collect();
        assert_eq!(
            names,
            [json!({"role": "assistant", "content": ""}), json!({})]
        );
        assert_eq!(out.last(), Some(&Chunk::Done));
    }

    /// The index of each chunk's tool call, in order.
    fn call_indices(chunks: &[Chunk]) -> Vec<u64> {
        data(chunks)
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["index"].as_u64())
            .collect()
    }

    #[test]
    fn indices_count_tool_calls_not_blocks() {
        let upstream = vec![
            text("<thinking>plan</thinking>\n\nFirst"),
            tool("t1", "read", Some(r#"{"path":"a"}"#), true),
            text("then"),
            tool("t2", "read", Some(r#"{"path":"b"}"#), true),
        ];
        let out = chunks(true, upstream, End::Finish, false);
        assert_eq!(call_indices(&out), [0, 0, 1, 1]);
        let ids: Vec<String> = streamed_calls(&out).into_iter().map(|c| c.0).collect();
        assert_eq!(ids, ["t1", "t2"]);

        // Interleaved ids keep their own index; a repeated start changes nothing.
        let mut s = stream(false);
        let mut out = Vec::new();
        for a in [
            Answer::ToolStart {
                id: "a".into(),
                name: "n".into(),
            },
            Answer::ToolStart {
                id: "b".into(),
                name: "n".into(),
            },
            Answer::ToolStart {
                id: "a".into(),
                name: "n".into(),
            },
            Answer::ToolInput {
                id: "b".into(),
                fragment: "{}".into(),
            },
            Answer::ToolInput {
                id: "a".into(),
                fragment: "{}".into(),
            },
        ] {
            out.extend(s.on_answer(a));
        }
        assert_eq!(call_indices(&out), [0, 1, 1, 0]);
    }

    /// Fragments of one call through the interpreter: the streamed arguments.
    fn arguments_of(fragments: &[&str]) -> (Vec<Chunk>, Value) {
        let mut upstream = vec![tool("t", "n", None, false)];
        upstream.extend(fragments.iter().map(|f| tool("t", "n", Some(f), false)));
        upstream.push(tool("t", "n", None, true));
        let mut interp = Interpreter::new(false, ToolNames::default(), WINDOW);
        let mut s = stream(false);
        let mut out = Vec::new();
        let mut input = Value::Null;
        for ev in upstream {
            for a in interp.on_event(ev) {
                if let Answer::ToolEnd { input: i, .. } = &a {
                    input = i.clone();
                }
                out.extend(s.on_answer(a));
            }
        }
        out.extend(s.finish(StopReason::ToolUse, 1, None));
        (out, input)
    }

    #[test]
    fn arguments_concatenate_to_the_input() {
        for fragments in [
            &[][..],
            &[r#"{"a":"#, r#"[1,"#, r#"2]}"#],
            &[r#"{"a":1}"#],
            &["{}"],
            &["{", " }"],
            &[" ", "\n"],
            &[" {\"b\"", ":true} "],
        ] {
            let (out, input) = arguments_of(fragments);
            let calls = streamed_calls(&out);
            assert_eq!(calls.len(), 1);
            let parsed: Value = serde_json::from_str(&calls[0].2)
                .unwrap_or_else(|e| panic!("{fragments:?}: {:?}: {e}", calls[0].2));
            assert_eq!(parsed, input, "{fragments:?}");
            assert!(input.is_object());
        }
        // Nothing streamed: the whole input, `{}` included, in one fragment at the end.
        let (out, _) = arguments_of(&[]);
        assert_eq!(streamed_calls(&out)[0].2, "{}");
        let mut s = stream(false);
        let _ = s.on_answer(Answer::ToolStart {
            id: "t".into(),
            name: "n".into(),
        });
        let out = s.on_answer(Answer::ToolEnd {
            id: "t".into(),
            input: json!({"q": "x y"}),
        });
        assert_eq!(
            out[0],
            Chunk::Data(json!({
                "id": ID, "object": "chat.completion.chunk", "created": CREATED, "model": MODEL,
                "choices": [{"index": 0, "finish_reason": null, "delta": {"tool_calls": [
                    {"index": 0, "function": {"arguments": r#"{"q":"x y"}"#}}
                ]}}],
            }))
        );
    }

    #[test]
    fn unparseable_streamed_arguments_are_left_as_sent() {
        // Cut by the output cap, or garbled: nothing is appended to what went out.
        for fragments in [&[r#"{"a":"#][..], &["{}", "x"], &["[1]"]] {
            let (out, input) = arguments_of(fragments);
            assert_eq!(input, json!({}));
            assert_eq!(streamed_calls(&out)[0].2, fragments.concat());
        }
        // A call never ended: `{}` if nothing was sent, else left as it is.
        let mut s = stream(false);
        let mut out = Vec::new();
        for a in [
            Answer::ToolStart {
                id: "a".into(),
                name: "n".into(),
            },
            Answer::ToolStart {
                id: "b".into(),
                name: "n".into(),
            },
            Answer::ToolInput {
                id: "b".into(),
                fragment: r#"{"x""#.into(),
            },
            // Unknown ids change nothing.
            Answer::ToolInput {
                id: "ghost".into(),
                fragment: "1".into(),
            },
            Answer::ToolEnd {
                id: "ghost".into(),
                input: json!({}),
            },
        ] {
            out.extend(s.on_answer(a));
        }
        out.extend(s.finish(StopReason::ToolUse, 1, None));
        let calls = streamed_calls(&out);
        assert_eq!(calls[0].2, "{}");
        assert_eq!(calls[1].2, r#"{"x""#);
        // A call's end comes once; input after it is dropped.
        let mut s = stream(false);
        let _ = s.on_answer(Answer::ToolStart {
            id: "a".into(),
            name: "n".into(),
        });
        assert_eq!(
            s.on_answer(Answer::ToolEnd {
                id: "a".into(),
                input: json!({})
            })
            .len(),
            1
        );
        for a in [
            Answer::ToolEnd {
                id: "a".into(),
                input: json!({}),
            },
            Answer::ToolInput {
                id: "a".into(),
                fragment: "1".into(),
            },
        ] {
            assert!(s.on_answer(a).is_empty());
        }
    }

    #[test]
    fn finish_reason_for_every_stop_reason() {
        for (stop, expected) in [
            (StopReason::EndTurn, "stop"),
            (StopReason::ToolUse, "tool_calls"),
            (StopReason::MaxTokens, "length"),
            (StopReason::ModelContextWindowExceeded, "length"),
        ] {
            let mut s = stream(false);
            let _ = s.on_answer(Answer::Text("x".into()));
            assert_eq!(finish_reason(&s.finish(stop, 1, None)), expected);
            let mut msg = OpenAiMessage::new(ID.into(), MODEL.into(), CREATED);
            msg.on_answer(Answer::Text("x".into()));
            assert_eq!(
                msg.finish(stop, 1, None)["choices"][0]["finish_reason"],
                expected
            );
        }
        // Through the interpreter: output cut off, context full.
        let cap = UpstreamError::new(ErrorClass::OutputLengthExceeded, Stage::Stream, "");
        let out = chunks(false, vec![text("A very long ans")], End::Error(cap), false);
        assert_eq!(finish_reason(&out), "length");
        let upstream = vec![
            text("Out of room"),
            QEvent::ContextUsage { percentage: 100.0 },
        ];
        let out = chunks(false, upstream, End::Finish, false);
        assert_eq!(finish_reason(&out), "length");
    }

    #[test]
    fn output_tokens_count_reasoning_text_and_arguments() {
        let mut s = stream(true);
        let word = "token ";
        let mut whole = String::new();
        for _ in 0..2000 {
            let _ = s.on_answer(Answer::Thinking(word.into()));
            whole.push_str(word);
        }
        assert_eq!(s.output_tokens(), tokens::count(&whole));
        let _ = s.on_answer(Answer::ThinkingEnd);
        let _ = s.on_answer(Answer::Text("Hello world".into()));
        let _ = s.on_answer(Answer::ToolStart {
            id: "t".into(),
            name: "n".into(),
        });
        let _ = s.on_answer(Answer::ToolInput {
            id: "t".into(),
            fragment: r#"{"path":"/etc/hosts"}"#.into(),
        });
        let expected = tokens::count(&whole)
            + tokens::count("Hello world")
            + tokens::count(r#"{"path":"/etc/hosts"}"#);
        assert_eq!(s.output_tokens(), expected);
        let out = s.finish(StopReason::ToolUse, 7, None);
        assert_eq!(
            data(&out).last().unwrap()["usage"],
            json!({"prompt_tokens": 7, "completion_tokens": expected, "total_tokens": 7 + expected})
        );
        // The upstream's figure replaces ours.
        let mut s = stream(true);
        let _ = s.on_answer(Answer::Text("ok".into()));
        let out = s.finish(StopReason::EndTurn, 7, Some(3));
        assert_eq!(data(&out).last().unwrap()["usage"]["completion_tokens"], 3);
    }

    /// Upstream events through the interpreter into the non-streaming message.
    fn message(thinking: bool, upstream: Vec<QEvent>) -> Value {
        let mut interp = Interpreter::new(thinking, ToolNames::default(), WINDOW);
        let mut msg = OpenAiMessage::new(ID.into(), MODEL.into(), CREATED);
        for ev in upstream {
            for a in interp.on_event(ev) {
                msg.on_answer(a);
            }
        }
        for a in interp.finish() {
            msg.on_answer(a);
        }
        msg.finish(
            interp.stop_reason(),
            interp.upstream_input_tokens().unwrap_or(ESTIMATE),
            interp.upstream_output_tokens(),
        )
    }

    #[test]
    fn non_stream_text() {
        let m = message(false, vec![text("Hello"), text(", world!")]);
        insta::assert_json_snapshot!("message_text", m);
    }

    #[test]
    fn non_stream_only_tool_calls_has_null_content() {
        let m = message(
            false,
            vec![
                tool("tooluse_1", "run_shell", None, false),
                tool("tooluse_1", "run_shell", Some(r#"{"cmd":"#), false),
                tool("tooluse_1", "run_shell", Some(r#""ls"}"#), true),
                tool("tooluse_2", "list", None, false),
            ],
        );
        assert_eq!(m["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(m["choices"][0]["finish_reason"], "tool_calls");
        assert!(m["choices"][0]["message"]
            .get("reasoning_content")
            .is_none());
        insta::assert_json_snapshot!("message_tools", m);
    }

    #[test]
    fn non_stream_thinking_is_reasoning_content() {
        let m = message(
            true,
            vec![
                text("<thinking>\nTwo plus"),
                text(" two.</thinking>\n\nIt is 4."),
                QEvent::ContextUsage { percentage: 0.5 },
            ],
        );
        assert!(m["choices"][0]["message"].get("tool_calls").is_none());
        insta::assert_json_snapshot!("message_thinking", m);
    }

    #[test]
    fn non_stream_empty_and_upstream_usage() {
        let m = message(false, vec![]);
        assert_eq!(
            m["choices"][0]["message"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(m["usage"]["completion_tokens"], 0);
        let mut msg = OpenAiMessage::new(ID.into(), MODEL.into(), CREATED);
        msg.on_answer(Answer::Text("cut".into()));
        let m = msg.finish(StopReason::MaxTokens, 10, Some(99));
        assert_eq!(
            m["usage"],
            json!({"prompt_tokens": 10, "completion_tokens": 99, "total_tokens": 109})
        );
        assert_eq!(m["choices"][0]["logprobs"], Value::Null);
        assert_eq!(msg.output_tokens(), tokens::count("cut"));
    }
}
