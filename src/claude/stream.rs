//! The Claude renderer: turns the interpreter's [`Answer`]s into the exact Anthropic Messages
//! SSE events ([`ClaudeStream`]) or, for `stream: false`, one message JSON ([`ClaudeMessage`]).
//! Pure: no I/O, fed one answer at a time (protocol reference §6.5, §7.8, §7.9).
//!
//! # The event sequence ([`ClaudeStream`])
//!
//! 1. [`ClaudeStream::start`]: `message_start` (usage: the input estimate, `output_tokens: 1`
//!    as Anthropic sends, both cache counts 0), then one `ping`, as Anthropic does early in a
//!    stream. Keep-alive pings during silences are the transport's job.
//! 2. Content blocks, one open at a time, indices 0, 1, 2… without gaps, each
//!    `content_block_start` … `content_block_stop`:
//!    * thinking: `{"type":"thinking","thinking":""}`, `thinking_delta`s, then one
//!      `signature_delta` before its stop. Amazon Q gives no signature; ours is the base64 of the
//!      SHA-256 of the thinking text ([`thinking_signature`]): deterministic, opaque, and
//!      meaningless to anyone but us (Claude Code needs one to show the block);
//!    * text: opened on the first text, `text_delta`s; text after another block opens a new one;
//!    * tool_use: `{"type":"tool_use","id","name","input":{}}` then the upstream fragments as
//!      `input_json_delta` `partial_json`, stopped at the tool's end. A tool whose fragments
//!      were never sent gets its whole input as one `partial_json` (none for `{}`, which the
//!      start already says).
//! 3. [`ClaudeStream::finish`]: stop the open block; an empty text block if no block came at
//!    all; `message_delta` (`stop_reason`, `stop_sequence: null`, usage with input, output and
//!    both cache counts); `message_stop`.
//!
//! Or [`ClaudeStream::fail`] after the first byte: one `event: error`
//! (`{"type":"error","error":{"type","message"}}`) and nothing after it, as Anthropic's API
//! does mid-stream; open blocks are not stopped and there is no `message_stop`, so the client
//! reports an error instead of taking a truncated answer as complete.
//!
//! Unusual orders are rendered without breaking the invariants: a second tool starting while a
//! tool block streams is deferred and sent whole at its end (the client never sees two open
//! blocks); text or thinking arriving while a tool block is open stops that block (its later
//! fragments are dropped, so its input may be incomplete: logged).
//!
//! JSON object keys come out sorted (serde_json without `preserve_order`).
//!
//! `output_tokens` is counted with [`tokens::count`] over the emitted thinking, text and tool
//! input JSON, incrementally: text is counted in pieces cut at whitespace, so only the current
//! uncounted piece is kept, not the answer.

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::q::answer::{Answer, StopReason};
use crate::tokens::{self, OutputCounter};

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: &'static str,
    pub data: Value,
}

impl SseEvent {
    fn new(event: &'static str, data: Value) -> Self {
        SseEvent { event, data }
    }

    /// `event: <event>\ndata: <compact json>\n\n`.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(format!("event: {}\ndata: {}\n\n", self.event, self.data))
    }
}

/// The signature we put on thinking blocks: base64 (standard, padded) of the SHA-256 of the
/// thinking text.
pub fn thinking_signature(thinking: &str) -> String {
    signature_of(Sha256::new().chain_update(thinking.as_bytes()))
}

fn signature_of(hasher: Sha256) -> String {
    base64::engine::general_purpose::STANDARD.encode(hasher.finalize())
}

/// Usage with the cache counts Anthropic always sends (clients add them up).
fn usage(input_tokens: u64, output_tokens: u64) -> Value {
    json!({
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    })
}

fn is_empty_object(v: &Value) -> bool {
    v.as_object().is_some_and(Map::is_empty)
}

/// The content block being streamed.
#[derive(Debug)]
enum Open {
    Thinking {
        index: u64,
        hasher: Sha256,
    },
    Text {
        index: u64,
    },
    Tool {
        index: u64,
        id: String,
        sent_input: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum ToolPhase {
    /// Its block is open and gets its fragments.
    Streaming,
    /// Started while another tool block was open: sent whole once it has ended and no other
    /// tool block is open. `input` is set at its end.
    Deferred { input: Option<Value> },
    /// Its block was stopped.
    Done,
}

#[derive(Debug)]
struct Tool {
    id: String,
    name: String,
    phase: ToolPhase,
}

/// The streaming renderer; see the module doc.
#[derive(Debug)]
pub struct ClaudeStream {
    message_id: String,
    model: String,
    input_tokens: u64,
    started: bool,
    /// `finish` or `fail` was sent: nothing more.
    ended: bool,
    next_index: u64,
    open: Option<Open>,
    tools: Vec<Tool>,
    counter: OutputCounter,
}

impl ClaudeStream {
    /// `model` is echoed as the client sent it; `input_tokens` is the estimate for
    /// `message_start`.
    pub fn new(message_id: String, model: String, input_tokens: u64) -> Self {
        ClaudeStream {
            message_id,
            model,
            input_tokens,
            started: false,
            ended: false,
            next_index: 0,
            open: None,
            tools: Vec::new(),
            counter: OutputCounter::default(),
        }
    }

    /// `message_start` and a `ping`. Called again, after an answer (which starts the stream
    /// itself) or after the end, it returns nothing.
    pub fn start(&mut self) -> Vec<SseEvent> {
        if self.started || self.ended {
            return Vec::new();
        }
        self.started = true;
        vec![
            SseEvent::new(
                "message_start",
                json!({
                    "type": "message_start",
                    "message": {
                        "id": self.message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": self.model,
                        "content": [],
                        "stop_reason": null,
                        "stop_sequence": null,
                        "usage": usage(self.input_tokens, 1),
                    }
                }),
            ),
            SseEvent::new("ping", json!({"type": "ping"})),
        ]
    }

    /// Render one answer.
    pub fn on_answer(&mut self, a: Answer) -> Vec<SseEvent> {
        if self.ended {
            log::debug!("ignoring an answer after the end of the stream");
            return Vec::new();
        }
        let mut out = self.start();
        match a {
            Answer::Thinking(thinking) => {
                if thinking.is_empty() {
                    return out;
                }
                if !matches!(self.open, Some(Open::Thinking { .. })) {
                    self.close_open(&mut out);
                    self.send_deferred(&mut out);
                    let index =
                        self.open_block(&mut out, json!({"type": "thinking", "thinking": ""}));
                    self.open = Some(Open::Thinking {
                        index,
                        hasher: Sha256::new(),
                    });
                }
                if let Some(Open::Thinking { index, hasher }) = &mut self.open {
                    hasher.update(thinking.as_bytes());
                    let index = *index;
                    self.counter.add(&thinking);
                    out.push(delta(
                        index,
                        json!({"type": "thinking_delta", "thinking": thinking}),
                    ));
                }
            }
            Answer::ThinkingEnd => {
                if matches!(self.open, Some(Open::Thinking { .. })) {
                    self.close_open(&mut out);
                }
            }
            Answer::Text(text) => {
                if text.is_empty() {
                    return out;
                }
                let index = match self.open {
                    Some(Open::Text { index }) => index,
                    _ => {
                        self.close_open(&mut out);
                        self.send_deferred(&mut out);
                        let index = self.open_block(&mut out, json!({"type": "text", "text": ""}));
                        self.open = Some(Open::Text { index });
                        index
                    }
                };
                self.counter.add(&text);
                out.push(delta(index, json!({"type": "text_delta", "text": text})));
            }
            Answer::ToolStart { id, name } => {
                if self.tools.iter().any(|t| t.id == id) {
                    log::debug!("ignoring a repeated start of tool use {id}");
                    return out;
                }
                if matches!(self.open, Some(Open::Tool { .. })) {
                    self.tools.push(Tool {
                        id,
                        name,
                        phase: ToolPhase::Deferred { input: None },
                    });
                    return out;
                }
                self.close_open(&mut out);
                let index = self.open_tool_block(&mut out, &id, &name);
                self.tools.push(Tool {
                    id: id.clone(),
                    name,
                    phase: ToolPhase::Streaming,
                });
                self.open = Some(Open::Tool {
                    index,
                    id,
                    sent_input: false,
                });
            }
            Answer::ToolInput { id, fragment } => {
                if fragment.is_empty() {
                    return out;
                }
                match &mut self.open {
                    Some(Open::Tool {
                        index,
                        id: open_id,
                        sent_input,
                    }) if *open_id == id => {
                        *sent_input = true;
                        let index = *index;
                        self.counter.add(&fragment);
                        out.push(delta(
                            index,
                            json!({"type": "input_json_delta", "partial_json": fragment}),
                        ));
                    }
                    // A deferred tool gets its whole input at its end.
                    _ => {}
                }
            }
            Answer::ToolEnd { id, input } => self.end_tool(&id, &input, &mut out),
        }
        out
    }

    /// The end: stops the open block, sends deferred tools that never ended (with `{}`), an
    /// empty text block if no block came at all, `message_delta` and `message_stop`.
    /// `output_tokens_upstream` replaces our count when the upstream gave one.
    pub fn finish(
        &mut self,
        stop: StopReason,
        input_tokens: u64,
        output_tokens_upstream: Option<u64>,
    ) -> Vec<SseEvent> {
        if self.ended {
            return Vec::new();
        }
        let mut out = self.start();
        self.close_open(&mut out);
        for tool in &mut self.tools {
            if let ToolPhase::Deferred {
                input: input @ None,
            } = &mut tool.phase
            {
                *input = Some(Value::Object(Map::new()));
            }
        }
        self.send_deferred(&mut out);
        if self.next_index == 0 {
            let index = self.open_block(&mut out, json!({"type": "text", "text": ""}));
            out.push(block_stop(index));
        }
        self.ended = true;
        let output_tokens = output_tokens_upstream.unwrap_or_else(|| self.output_tokens());
        out.push(SseEvent::new(
            "message_delta",
            json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop.as_claude(), "stop_sequence": null},
                "usage": usage(input_tokens, output_tokens),
            }),
        ));
        out.push(SseEvent::new(
            "message_stop",
            json!({"type": "message_stop"}),
        ));
        out
    }

    /// A failure after the first byte: one `error` event, nothing after it (see the module doc).
    pub fn fail(&mut self, error_type: &str, message: &str) -> Vec<SseEvent> {
        if self.ended {
            return Vec::new();
        }
        self.ended = true;
        self.open = None;
        vec![SseEvent::new(
            "error",
            json!({"type": "error", "error": {"type": error_type, "message": message}}),
        )]
    }

    /// Output tokens emitted so far (thinking, text, tool input JSON).
    pub fn output_tokens(&self) -> u64 {
        self.counter.total()
    }

    /// Sends `content_block_start` for a new block; returns its index.
    fn open_block(&mut self, out: &mut Vec<SseEvent>, content_block: Value) -> u64 {
        let index = self.next_index;
        self.next_index += 1;
        out.push(SseEvent::new(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": content_block}),
        ));
        index
    }

    fn open_tool_block(&mut self, out: &mut Vec<SseEvent>, id: &str, name: &str) -> u64 {
        self.open_block(
            out,
            json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
        )
    }

    /// Stops the open block (a thinking block gets its signature first).
    fn close_open(&mut self, out: &mut Vec<SseEvent>) {
        let Some(open) = self.open.take() else {
            return;
        };
        self.counter.flush();
        let index = match open {
            Open::Thinking { index, hasher } => {
                out.push(delta(
                    index,
                    json!({"type": "signature_delta", "signature": signature_of(hasher)}),
                ));
                index
            }
            Open::Text { index } => index,
            Open::Tool { index, id, .. } => {
                if let Some(tool) = self.tools.iter_mut().find(|t| t.id == id) {
                    if matches!(tool.phase, ToolPhase::Streaming) {
                        log::warn!("tool use {id} was interrupted before its end; its input may be incomplete");
                    }
                    tool.phase = ToolPhase::Done;
                }
                index
            }
        };
        out.push(block_stop(index));
    }

    fn end_tool(&mut self, id: &str, input: &Value, out: &mut Vec<SseEvent>) {
        let Some(pos) = self.tools.iter().position(|t| t.id == id) else {
            log::warn!("ignoring the end of tool use {id}, which never started");
            return;
        };
        match &self.tools[pos].phase {
            ToolPhase::Done | ToolPhase::Deferred { input: Some(_) } => {}
            ToolPhase::Streaming => {
                if let Some(Open::Tool {
                    index, sent_input, ..
                }) = self.open
                {
                    if !sent_input {
                        self.send_whole_input(index, input, out);
                    }
                }
                self.tools[pos].phase = ToolPhase::Done;
                self.close_open(out);
                self.send_deferred(out);
            }
            ToolPhase::Deferred { input: None } => {
                self.tools[pos].phase = ToolPhase::Deferred {
                    input: Some(input.clone()),
                };
                if !matches!(self.open, Some(Open::Tool { .. })) {
                    self.send_deferred(out);
                }
            }
        }
    }

    /// Sends every deferred tool that has ended, whole, in start order. Call with no tool block
    /// open.
    fn send_deferred(&mut self, out: &mut Vec<SseEvent>) {
        for pos in 0..self.tools.len() {
            let input = match &mut self.tools[pos].phase {
                ToolPhase::Deferred { input } => match input.take() {
                    Some(input) => input,
                    None => continue,
                },
                _ => continue,
            };
            self.tools[pos].phase = ToolPhase::Done;
            self.close_open(out);
            let (id, name) = (self.tools[pos].id.clone(), self.tools[pos].name.clone());
            let index = self.open_tool_block(out, &id, &name);
            self.send_whole_input(index, &input, out);
            self.counter.flush();
            out.push(block_stop(index));
        }
    }

    fn send_whole_input(&mut self, index: u64, input: &Value, out: &mut Vec<SseEvent>) {
        if is_empty_object(input) {
            return;
        }
        let json = input.to_string();
        self.counter.add(&json);
        out.push(delta(
            index,
            json!({"type": "input_json_delta", "partial_json": json}),
        ));
    }
}

fn delta(index: u64, delta: Value) -> SseEvent {
    SseEvent::new(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": index, "delta": delta}),
    )
}

fn block_stop(index: u64) -> SseEvent {
    SseEvent::new(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": index}),
    )
}

/// One block of a non-streamed message.
#[derive(Debug)]
enum Block {
    Thinking {
        text: String,
        open: bool,
    },
    Text(String),
    Tool {
        id: String,
        name: String,
        input: Value,
    },
}

/// The non-streaming renderer: fed the same answers, builds the whole message. Content is in
/// answer order: thinking (with our signature), text, tool_use blocks (input = the parsed
/// object from `ToolEnd`, `{}` for a tool that never ended); adjacent text merges; an empty text
/// block when nothing came. This one holds the answer, by nature.
#[derive(Debug)]
pub struct ClaudeMessage {
    message_id: String,
    model: String,
    content: Vec<Block>,
}

impl ClaudeMessage {
    pub fn new(message_id: String, model: String) -> Self {
        ClaudeMessage {
            message_id,
            model,
            content: Vec::new(),
        }
    }

    pub fn on_answer(&mut self, a: Answer) {
        match a {
            Answer::Thinking(thinking) => {
                if thinking.is_empty() {
                    return;
                }
                match self.content.last_mut() {
                    Some(Block::Thinking { text, open: true }) => text.push_str(&thinking),
                    _ => self.content.push(Block::Thinking {
                        text: thinking,
                        open: true,
                    }),
                }
            }
            Answer::ThinkingEnd => {
                if let Some(Block::Thinking { open, .. }) = self.content.last_mut() {
                    *open = false;
                }
            }
            Answer::Text(t) => {
                if t.is_empty() {
                    return;
                }
                match self.content.last_mut() {
                    Some(Block::Text(text)) => text.push_str(&t),
                    _ => self.content.push(Block::Text(t)),
                }
            }
            Answer::ToolStart { id, name } => {
                if !self
                    .content
                    .iter()
                    .any(|b| matches!(b, Block::Tool { id: i, .. } if *i == id))
                {
                    self.content.push(Block::Tool {
                        id,
                        name,
                        input: Value::Object(Map::new()),
                    });
                }
            }
            // The parsed input comes with the end.
            Answer::ToolInput { .. } => {}
            Answer::ToolEnd { id, input: parsed } => {
                match self.content.iter_mut().find_map(|b| match b {
                    Block::Tool { id: i, input, .. } if *i == id => Some(input),
                    _ => None,
                }) {
                    Some(input) => *input = parsed,
                    None => log::warn!("ignoring the end of tool use {id}, which never started"),
                }
            }
        }
    }

    /// Output tokens of the content so far (thinking, text, tool input JSON).
    pub fn output_tokens(&self) -> u64 {
        self.content
            .iter()
            .map(|b| match b {
                Block::Thinking { text, .. } | Block::Text(text) => tokens::count(text),
                Block::Tool { input, .. } if is_empty_object(input) => 0,
                Block::Tool { input, .. } => tokens::count(&input.to_string()),
            })
            .sum()
    }

    /// The message JSON. `output_tokens_upstream` replaces our count when the upstream gave one.
    pub fn finish(
        &self,
        stop: StopReason,
        input_tokens: u64,
        output_tokens_upstream: Option<u64>,
    ) -> Value {
        let mut content: Vec<Value> = self
            .content
            .iter()
            .map(|b| match b {
                Block::Thinking { text, .. } => json!({
                    "type": "thinking",
                    "thinking": text,
                    "signature": thinking_signature(text),
                }),
                Block::Text(text) => json!({"type": "text", "text": text}),
                Block::Tool { id, name, input } => {
                    json!({"type": "tool_use", "id": id, "name": name, "input": input})
                }
            })
            .collect();
        if content.is_empty() {
            content.push(json!({"type": "text", "text": ""}));
        }
        let output_tokens = output_tokens_upstream.unwrap_or_else(|| self.output_tokens());
        json!({
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop.as_claude(),
            "stop_sequence": null,
            "usage": usage(input_tokens, output_tokens),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;
    use crate::q::answer::Interpreter;
    use crate::q::error::{ErrorClass, Stage, UpstreamError};
    use crate::q::events::QEvent;
    use crate::q::tool_names::ToolNames;

    const WINDOW: u64 = 200_000;
    const ESTIMATE: u64 = 42;

    use crate::q::events::test_events::{text, tool};

    /// How the upstream stream ends.
    enum End {
        Finish,
        Error(UpstreamError),
    }

    /// Upstream events through the interpreter and the renderer, as the proxy strings them.
    /// Also renders the same answers as a non-streamed message and checks that both agree on the
    /// tool inputs.
    fn events(thinking: bool, names: ToolNames, upstream: Vec<QEvent>, end: End) -> Vec<SseEvent> {
        let mut interp = Interpreter::new(thinking, names, WINDOW);
        let mut stream = ClaudeStream::new("msg_test".into(), "claude-sonnet-4-5".into(), ESTIMATE);
        let mut msg = ClaudeMessage::new("msg_test".into(), "claude-sonnet-4-5".into());
        let mut out = stream.start();
        fn render(a: Answer, stream: &mut ClaudeStream, msg: &mut ClaudeMessage) -> Vec<SseEvent> {
            msg.on_answer(a.clone());
            stream.on_answer(a)
        }
        for ev in upstream {
            for a in interp.on_event(ev) {
                out.extend(render(a, &mut stream, &mut msg));
            }
        }
        let ending = match end {
            End::Finish => Some(interp.finish()),
            End::Error(err) => match interp.on_error(&err) {
                Some(answers) => Some(answers),
                None => {
                    out.extend(stream.fail(err.class.anthropic_error_type(), &err.message));
                    None
                }
            },
        };
        if let Some(answers) = ending {
            for a in answers {
                out.extend(render(a, &mut stream, &mut msg));
            }
            let message = msg.finish(interp.stop_reason(), 0, None);
            out.extend(stream.finish(
                interp.stop_reason(),
                interp.upstream_input_tokens().unwrap_or(ESTIMATE),
                interp.upstream_output_tokens(),
            ));
            check_invariants(&out);
            check_tool_inputs(&out, &message);
        }
        // Nothing comes after the end.
        assert!(stream.on_answer(Answer::Text("late".into())).is_empty());
        assert!(stream.finish(StopReason::EndTurn, 0, None).is_empty());
        assert!(stream.fail("api_error", "late").is_empty());
        out
    }

    fn wire(events: &[SseEvent]) -> String {
        events
            .iter()
            .map(|e| String::from_utf8(e.to_bytes().to_vec()).unwrap())
            .collect()
    }

    fn transcript(thinking: bool, upstream: Vec<QEvent>, end: End) -> String {
        wire(&events(thinking, ToolNames::default(), upstream, end))
    }

    /// Each tool_use block's `partial_json` pieces make the input the message has for it.
    fn check_tool_inputs(events: &[SseEvent], message: &Value) {
        let mut streamed: Vec<(Value, String)> = Vec::new();
        for e in events {
            match e.event {
                "content_block_start" if e.data["content_block"]["type"] == "tool_use" => {
                    streamed.push((e.data["content_block"]["id"].clone(), String::new()));
                }
                "content_block_delta" if e.data["delta"]["type"] == "input_json_delta" => {
                    let json = e.data["delta"]["partial_json"].as_str().unwrap();
                    streamed.last_mut().unwrap().1.push_str(json);
                }
                _ => {}
            }
        }
        let tools: Vec<&Value> = message["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "tool_use")
            .collect();
        assert_eq!(streamed.len(), tools.len());
        for (id, json) in streamed {
            let tool = tools.iter().find(|t| t["id"] == id).expect("same tools");
            let input: Value = if json.is_empty() {
                json!({})
            } else {
                serde_json::from_str(&json).unwrap()
            };
            assert_eq!(input, tool["input"], "tool {id}");
        }
    }

    /// §7.8 invariants of a complete stream.
    fn check_invariants(events: &[SseEvent]) {
        let names: Vec<&str> = events.iter().map(|e| e.event).collect();
        assert_eq!(names[..2], ["message_start", "ping"]);
        assert_eq!(names[names.len() - 2..], ["message_delta", "message_stop"]);
        assert_eq!(names.iter().filter(|n| **n == "message_start").count(), 1);
        assert_eq!(names.iter().filter(|n| **n == "message_delta").count(), 1);
        let mut next = 0;
        let mut open: Option<(u64, String)> = None;
        let mut stopped = BTreeSet::new();
        let mut signed = false;
        for e in &events[2..events.len() - 2] {
            assert_eq!(e.data["type"], e.event);
            let index = e.data["index"].as_u64().unwrap();
            match e.event {
                "content_block_start" => {
                    assert!(open.is_none(), "two open blocks");
                    assert_eq!(index, next, "indices are contiguous");
                    next += 1;
                    let kind = e.data["content_block"]["type"].as_str().unwrap().to_owned();
                    if kind == "tool_use" {
                        assert_eq!(e.data["content_block"]["input"], json!({}));
                    }
                    open = Some((index, kind));
                    signed = false;
                }
                "content_block_delta" => {
                    let (i, kind) = open.as_ref().expect("delta outside a block");
                    assert_eq!(*i, index);
                    let delta = e.data["delta"]["type"].as_str().unwrap();
                    let expected: &[&str] = match kind.as_str() {
                        "thinking" => &["thinking_delta", "signature_delta"],
                        "text" => &["text_delta"],
                        _ => &["input_json_delta"],
                    };
                    assert!(expected.contains(&delta), "{delta} in a {kind} block");
                    assert!(!signed, "nothing after the signature");
                    signed = delta == "signature_delta";
                }
                "content_block_stop" => {
                    let (i, kind) = open.take().expect("stop outside a block");
                    assert_eq!(i, index);
                    if kind == "thinking" {
                        assert!(signed, "a thinking block is signed before it stops");
                    }
                    stopped.insert(index);
                }
                other => panic!("unexpected {other} inside the message"),
            }
        }
        assert!(open.is_none());
        assert!(next > 0, "at least one content block");
        assert_eq!(stopped.len() as u64, next, "every block stopped");
        let usage = &events[events.len() - 2].data["usage"];
        for key in [
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        ] {
            assert!(usage[key].is_u64(), "{key} in {usage}");
        }
    }

    #[test]
    fn plain_text_in_chunks() {
        let upstream = vec![
            QEvent::InitialResponse,
            QEvent::MessageMetadata {
                conversation_id: Some("conv".into()),
                utterance_id: None,
            },
            text("Hello"),
            text(""),
            text(", world"),
            text("!"),
            QEvent::Metering {
                usage: Some(0.01),
                unit: Some("credit".into()),
            },
        ];
        insta::assert_snapshot!("plain_text", transcript(false, upstream, End::Finish));
    }

    #[test]
    fn text_and_a_tool_call_in_three_fragments() {
        let upstream = vec![
            text("Let me check."),
            tool("tooluse_1", "run_shell", None, false),
            tool("tooluse_1", "run_shell", Some(r#"{"cmd":"#), false),
            tool("tooluse_1", "run_shell", Some(r#""ls /srv","#), false),
            tool("tooluse_1", "run_shell", Some(r#""n":3}"#), false),
            tool("tooluse_1", "run_shell", None, true),
            QEvent::ContextUsage { percentage: 1.5 },
        ];
        insta::assert_snapshot!("text_and_tool", transcript(false, upstream, End::Finish));
    }

    #[test]
    fn two_tool_calls_and_text_between() {
        let upstream = vec![
            tool("tooluse_a", "read", Some(r#"{"path":"/etc/hosts"}"#), true),
            text("and then"),
            tool("tooluse_b", "list", None, false),
            tool("tooluse_b", "list", None, true),
        ];
        insta::assert_snapshot!("two_tools", transcript(false, upstream, End::Finish));
    }

    #[test]
    fn interleaved_tools_are_sent_one_after_the_other() {
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
    fn thinking_then_text() {
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
    fn thinking_then_a_tool_call() {
        let upstream = vec![
            text("<thinking>I should look.</thinking>"),
            tool("t", "read", Some(r#"{"path":"a"}"#), true),
        ];
        insta::assert_snapshot!(
            "thinking_then_tool",
            transcript(true, upstream, End::Finish)
        );
    }

    #[test]
    fn a_quoted_tag_in_normal_text_is_text() {
        let upstream = vec![
            text("Wrap it in `<thin"),
            text("king>` tags, like <thinking>this</thinking>\n\n."),
        ];
        insta::assert_snapshot!("quoted_tag", transcript(true, upstream, End::Finish));
    }

    #[test]
    fn exception_after_text_is_an_error_event() {
        let upstream = vec![text("Half an ans"), text("wer")];
        let err = UpstreamError::new(
            ErrorClass::ModelOverloaded,
            Stage::Stream,
            "Encountered an unexpected error",
        );
        insta::assert_snapshot!(
            "exception_after_text",
            transcript(false, upstream, End::Error(err))
        );
    }

    #[test]
    fn output_length_exceeded_is_max_tokens() {
        let upstream = vec![text("A very long ans")];
        let err = UpstreamError::new(ErrorClass::OutputLengthExceeded, Stage::Stream, "");
        insta::assert_snapshot!("max_tokens", transcript(false, upstream, End::Error(err)));
    }

    #[test]
    fn full_context_is_model_context_window_exceeded() {
        let upstream = vec![
            text("Out of room"),
            QEvent::Metering {
                usage: Some(0.5),
                unit: Some("credit".into()),
            },
            QEvent::ContextUsage { percentage: 100.0 },
        ];
        insta::assert_snapshot!(
            "context_window_exceeded",
            transcript(false, upstream, End::Finish)
        );
    }

    #[test]
    fn empty_reply_has_one_empty_text_block() {
        let upstream = vec![QEvent::InitialResponse, text("")];
        insta::assert_snapshot!("empty_reply", transcript(true, upstream, End::Finish));
    }

    #[test]
    fn shortened_tool_name_is_mapped_back() {
        let long = "mcp__plugin_claude-code-home_playwright__browser_take_screenshot_of_the_page";
        let mut names = ToolNames::default();
        let upstream_name = names.register(long);
        assert_ne!(upstream_name, long);
        let upstream = vec![
            tool("tooluse_s", &upstream_name, None, false),
            tool(
                "tooluse_s",
                &upstream_name,
                Some(r#"{"fullPage":true}"#),
                true,
            ),
        ];
        let out = wire(&events(false, names, upstream, End::Finish));
        assert!(!out.contains(&upstream_name));
        insta::assert_snapshot!("shortened_tool_name", out);
    }

    #[test]
    fn upstream_usage_replaces_the_estimates() {
        let upstream = vec![
            text("ok"),
            QEvent::Metadata {
                uncached_input_tokens: Some(900),
                output_tokens: Some(3),
                total_tokens: None,
                cache_read_input_tokens: Some(100),
                cache_write_input_tokens: None,
            },
        ];
        let out = events(false, ToolNames::default(), upstream, End::Finish);
        let delta = &out[out.len() - 2].data;
        assert_eq!(delta["usage"]["input_tokens"], 1000);
        assert_eq!(delta["usage"]["output_tokens"], 3);
    }

    #[test]
    fn renderer_alone_handles_odd_orders() {
        let mut s = ClaudeStream::new("msg_x".into(), "m".into(), 5);
        // No explicit start: the first answer starts the stream.
        let mut out = s.on_answer(Answer::Text("a".into()));
        out.extend(s.on_answer(Answer::Thinking("late".into())));
        out.extend(s.on_answer(Answer::ToolStart {
            id: "t".into(),
            name: "n".into(),
        }));
        out.extend(s.on_answer(Answer::ToolInput {
            id: "t".into(),
            fragment: r#"{"a":"#.into(),
        }));
        // Text interrupts the tool block; the tool's later pieces are dropped.
        out.extend(s.on_answer(Answer::Text("b".into())));
        out.extend(s.on_answer(Answer::ToolInput {
            id: "t".into(),
            fragment: "1}".into(),
        }));
        out.extend(s.on_answer(Answer::ToolEnd {
            id: "t".into(),
            input: json!({"a": 1}),
        }));
        // A tool end without a start, a repeated start, a tool never ended.
        out.extend(s.on_answer(Answer::ToolEnd {
            id: "ghost".into(),
            input: json!({}),
        }));
        out.extend(s.on_answer(Answer::ToolStart {
            id: "u".into(),
            name: "m".into(),
        }));
        out.extend(s.on_answer(Answer::ToolStart {
            id: "u".into(),
            name: "m".into(),
        }));
        out.extend(s.on_answer(Answer::ToolStart {
            id: "v".into(),
            name: "deferred".into(),
        }));
        out.extend(s.finish(StopReason::ToolUse, 5, None));
        check_invariants(&out);
        insta::assert_snapshot!("odd_orders", wire(&out));
    }

    #[test]
    fn fail_before_start_is_only_the_error() {
        let mut s = ClaudeStream::new("msg_x".into(), "m".into(), 5);
        let out = s.fail("overloaded_error", "busy");
        assert_eq!(
            wire(&out),
            "event: error\ndata: {\"error\":{\"message\":\"busy\",\"type\":\"overloaded_error\"},\"type\":\"error\"}\n\n"
        );
        assert!(s.start().is_empty());
        assert!(s.on_answer(Answer::Text("x".into())).is_empty());
    }

    #[test]
    fn output_tokens_are_counted_incrementally() {
        let mut s = ClaudeStream::new("msg_x".into(), "m".into(), 5);
        let word = "token ";
        let mut whole = String::new();
        for _ in 0..2000 {
            let _ = s.on_answer(Answer::Text(word.into()));
            whole.push_str(word);
        }
        assert_eq!(s.output_tokens(), tokens::count(&whole));
        let _ = s.on_answer(Answer::ToolStart {
            id: "t".into(),
            name: "n".into(),
        });
        let _ = s.on_answer(Answer::ToolInput {
            id: "t".into(),
            fragment: r#"{"path":"/etc/hosts"}"#.into(),
        });
        assert_eq!(
            s.output_tokens(),
            tokens::count(&whole) + tokens::count(r#"{"path":"/etc/hosts"}"#)
        );
    }

    #[test]
    fn signature_is_base64_sha256_of_the_thinking() {
        assert_eq!(
            thinking_signature("abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        let mut s = ClaudeStream::new("msg_x".into(), "m".into(), 5);
        let _ = s.on_answer(Answer::Thinking("a".into()));
        let _ = s.on_answer(Answer::Thinking("bc".into()));
        let out = s.on_answer(Answer::ThinkingEnd);
        assert_eq!(out[0].data["delta"]["signature"], thinking_signature("abc"));
    }

    /// Upstream events through the interpreter into the non-streaming message.
    fn message(thinking: bool, names: ToolNames, upstream: Vec<QEvent>) -> Value {
        let mut interp = Interpreter::new(thinking, names, WINDOW);
        let mut msg = ClaudeMessage::new("msg_test".into(), "claude-sonnet-4-5".into());
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
        let m = message(
            false,
            ToolNames::default(),
            vec![text("Hello"), text(", world!")],
        );
        insta::assert_json_snapshot!("message_text", m);
    }

    #[test]
    fn non_stream_tools() {
        let long = "mcp__plugin_claude-code-home_playwright__browser_take_screenshot_of_the_page";
        let mut names = ToolNames::default();
        let upstream_name = names.register(long);
        let m = message(
            false,
            names,
            vec![
                text("Two calls."),
                tool("tooluse_1", "run_shell", None, false),
                tool("tooluse_1", "run_shell", Some(r#"{"cmd":"#), false),
                tool("tooluse_1", "run_shell", Some(r#""ls"}"#), true),
                tool("tooluse_2", &upstream_name, Some(r#"{"fullPage":"#), false),
            ],
        );
        insta::assert_json_snapshot!("message_tools", m);
    }

    #[test]
    fn non_stream_thinking() {
        let m = message(
            true,
            ToolNames::default(),
            vec![
                text("<thinking>\nTwo plus"),
                text(" two.</thinking>\n\nIt is 4."),
                QEvent::ContextUsage { percentage: 0.5 },
            ],
        );
        assert_eq!(
            m["content"][0]["signature"],
            thinking_signature("Two plus two.")
        );
        insta::assert_json_snapshot!("message_thinking", m);
    }

    #[test]
    fn non_stream_empty_and_truncated() {
        let m = message(false, ToolNames::default(), vec![]);
        assert_eq!(m["content"], json!([{"type": "text", "text": ""}]));
        assert_eq!(m["stop_reason"], "end_turn");
        assert_eq!(m["usage"]["output_tokens"], 0);
        let mut msg = ClaudeMessage::new("msg_x".into(), "m".into());
        msg.on_answer(Answer::Text("cut".into()));
        let m = msg.finish(StopReason::MaxTokens, 10, Some(99));
        assert_eq!(m["stop_reason"], "max_tokens");
        assert_eq!(m["usage"]["output_tokens"], 99);
        assert_eq!(m["stop_sequence"], Value::Null);
    }
}
