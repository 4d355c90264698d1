//! The renderer interface the pipeline drives, one implementation per client protocol: a
//! [`Renderer`] turns the interpreter's answers into SSE bytes as they come, a [`Collector`]
//! gathers them into one response body. The protocol types themselves stay pure and know nothing
//! of this trait (`claude::stream`, `openai::stream`).

use bytes::Bytes;
use serde_json::Value;

use crate::claude::stream::{ClaudeMessage, ClaudeStream, SseEvent};
use crate::error::ApiError;
use crate::openai::stream::{Chunk, OpenAiMessage, OpenAiStream};
use crate::q::answer::{Answer, StopReason};

/// A streaming renderer.
pub trait Renderer: Send {
    /// What opens the stream (Claude's `message_start`, OpenAI's role chunk).
    fn start(&mut self) -> Vec<Bytes>;
    fn on_answer(&mut self, a: Answer) -> Vec<Bytes>;
    /// The normal end. `output_upstream` replaces the local output count when the upstream gave one.
    fn finish(&mut self, stop: StopReason, input: u64, output_upstream: Option<u64>) -> Vec<Bytes>;
    /// A failure after the first byte, in-band.
    fn fail(&mut self, e: &ApiError) -> Vec<Bytes>;
    /// A keep-alive while the upstream is silent.
    fn ping(&self) -> Bytes;
    /// Output tokens emitted so far.
    fn output_tokens(&self) -> u64;
}

/// A non-streaming collector.
pub trait Collector {
    fn on_answer(&mut self, a: Answer);
    fn finish(&mut self, stop: StopReason, input: u64, output_upstream: Option<u64>) -> Value;
    fn output_tokens(&self) -> u64;
}

fn sse(events: Vec<SseEvent>) -> Vec<Bytes> {
    events.iter().map(SseEvent::to_bytes).collect()
}

impl Renderer for ClaudeStream {
    fn start(&mut self) -> Vec<Bytes> {
        sse(ClaudeStream::start(self))
    }

    fn on_answer(&mut self, a: Answer) -> Vec<Bytes> {
        sse(ClaudeStream::on_answer(self, a))
    }

    fn finish(&mut self, stop: StopReason, input: u64, output_upstream: Option<u64>) -> Vec<Bytes> {
        sse(ClaudeStream::finish(self, stop, input, output_upstream))
    }

    fn fail(&mut self, e: &ApiError) -> Vec<Bytes> {
        sse(ClaudeStream::fail(self, e.anthropic_type(), &e.message()))
    }

    fn ping(&self) -> Bytes {
        Bytes::from_static(b"event: ping\ndata: {\"type\":\"ping\"}\n\n")
    }

    fn output_tokens(&self) -> u64 {
        ClaudeStream::output_tokens(self)
    }
}

impl Collector for ClaudeMessage {
    fn on_answer(&mut self, a: Answer) {
        ClaudeMessage::on_answer(self, a)
    }

    fn finish(&mut self, stop: StopReason, input: u64, output_upstream: Option<u64>) -> Value {
        ClaudeMessage::finish(self, stop, input, output_upstream)
    }

    fn output_tokens(&self) -> u64 {
        ClaudeMessage::output_tokens(self)
    }
}

fn chunks(chunks: Vec<Chunk>) -> Vec<Bytes> {
    chunks.iter().map(Chunk::to_bytes).collect()
}

impl Renderer for OpenAiStream {
    fn start(&mut self) -> Vec<Bytes> {
        chunks(OpenAiStream::start(self))
    }

    fn on_answer(&mut self, a: Answer) -> Vec<Bytes> {
        chunks(OpenAiStream::on_answer(self, a))
    }

    fn finish(&mut self, stop: StopReason, input: u64, output_upstream: Option<u64>) -> Vec<Bytes> {
        chunks(OpenAiStream::finish(self, stop, input, output_upstream))
    }

    fn fail(&mut self, e: &ApiError) -> Vec<Bytes> {
        let (kind, code) = crate::openai::error::type_and_code(e);
        chunks(OpenAiStream::fail(self, &e.message(), kind, Some(code)))
    }

    /// An SSE comment: OpenAI's SDKs skip it.
    fn ping(&self) -> Bytes {
        Bytes::from_static(b": ping\n\n")
    }

    fn output_tokens(&self) -> u64 {
        OpenAiStream::output_tokens(self)
    }
}

impl Collector for OpenAiMessage {
    fn on_answer(&mut self, a: Answer) {
        OpenAiMessage::on_answer(self, a)
    }

    fn finish(&mut self, stop: StopReason, input: u64, output_upstream: Option<u64>) -> Value {
        OpenAiMessage::finish(self, stop, input, output_upstream)
    }

    fn output_tokens(&self) -> u64 {
        OpenAiMessage::output_tokens(self)
    }
}
