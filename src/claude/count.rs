//! The input-token estimate of a Claude request: what `/v1/messages/count_tokens` answers and
//! what `message_start` reports before Amazon Q says better (protocol doc §7.9). Counted with
//! tiktoken over everything the model reads: system, message text, tool calls and results, and
//! tool definitions, plus small per-message and per-image allowances. Long texts are counted
//! through the content cache ([`count_cached`]): a conversation re-sent with one more turn only
//! encodes the new turn. Blocking for large requests: callers run it off the async workers;
//! [`approx_input_tokens`] is the instant stand-in while the count runs.

use super::types::{Content, ContentBlock, MessagesRequest, System, ToolResultContent};
use crate::tokens::{count, count_cached};

/// Role markers and separators around each message.
const PER_MESSAGE: u64 = 4;
/// Anthropic bills an image by its size (about 1,600 tokens for a 1092×1092 one); without
/// decoding it we take that typical value.
const PER_IMAGE: u64 = 1_600;

/// What the estimate reads: text, or JSON that the model reads as its serialized text.
enum Part<'a> {
    Text(&'a str),
    Json(&'a serde_json::Value),
}

/// The estimate: every part counted with tiktoken (long ones through the cache). Blocking for
/// large requests: callers run it off the async workers.
pub fn input_tokens(req: &MessagesRequest) -> u64 {
    walk(req, &mut |part| match part {
        Part::Text(t) => count_cached(t),
        Part::Json(v) => count_cached(&v.to_string()),
    })
}

/// About 4 bytes a token (cl100k on English prose and code): a stand-in for [`input_tokens`]
/// that costs a pass over the bytes and no encoding.
const BYTES_PER_TOKEN: u64 = 4;

/// A quick stand-in for [`input_tokens`] (within about a quarter of it on prose and code): a
/// pass over the bytes, no encoding.
pub fn approx_input_tokens(req: &MessagesRequest) -> u64 {
    walk(req, &mut |part| {
        let bytes = match part {
            Part::Text(t) => t.len() as u64,
            Part::Json(v) => json_len(v),
        };
        bytes.div_ceil(BYTES_PER_TOKEN)
    })
}

/// The length of `value` serialized, without building the string.
fn json_len(value: &serde_json::Value) -> u64 {
    struct Counter(u64);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Sums `part` over everything the model reads, plus the fixed allowances.
fn walk(req: &MessagesRequest, part: &mut dyn FnMut(Part) -> u64) -> u64 {
    let mut total = match &req.system {
        None => 0,
        Some(System::Text(t)) => part(Part::Text(t)),
        // Counted as the builder sends it: the text blocks joined with a blank line.
        Some(system @ System::Blocks(_)) => part(Part::Text(&system.text())),
    };
    for message in &req.messages {
        total += PER_MESSAGE;
        total += match &message.content {
            Content::Text(t) => part(Part::Text(t)),
            Content::Blocks(blocks) => blocks.iter().map(|b| block(b, part)).sum(),
        };
    }
    for tool in &req.tools {
        total += count(&tool.name);
        total += tool
            .description
            .as_deref()
            .map_or(0, |d| part(Part::Text(d)));
        total += tool
            .input_schema
            .as_ref()
            .map_or(0, |s| part(Part::Json(s)));
    }
    total
}

fn block(b: &ContentBlock, part: &mut dyn FnMut(Part) -> u64) -> u64 {
    match b {
        ContentBlock::Text { text } => part(Part::Text(text)),
        ContentBlock::Image { .. } => PER_IMAGE,
        ContentBlock::ToolUse { name, input, .. } => count(name) + part(Part::Json(input)),
        ContentBlock::ToolResult { content, .. } => match content {
            None => 0,
            Some(ToolResultContent::Text(t)) => part(Part::Text(t)),
            Some(ToolResultContent::Blocks(blocks)) => blocks.iter().map(|b| block(b, part)).sum(),
        },
        ContentBlock::Thinking { thinking, .. } => part(Part::Text(thinking)),
        ContentBlock::RedactedThinking { .. } | ContentBlock::Other => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_part() {
        let req: MessagesRequest = serde_json::from_value(serde_json::json!({
            "model": "m",
            "system": "hello world",
            "messages": [{"role": "user", "content": "hello world"}],
            "tools": [{"name": "run", "description": "hello world", "input_schema": {"type": "object"}}]
        }))
        .unwrap();
        // system 2 + message 4 + 2 + tool name 1 + description 2 + schema {"type":"object"} 5
        assert_eq!(
            input_tokens(&req),
            2 + 4 + 2 + 1 + 2 + count(r#"{"type":"object"}"#)
        );
    }
}
