//! The input-token estimate of a Claude request: what `/v1/messages/count_tokens` answers and
//! what `message_start` reports before Amazon Q says better (protocol doc §7.9). Counted with
//! tiktoken over everything the model reads: system, message text, tool calls and results, and
//! tool definitions, plus small per-message and per-image allowances. Long texts are counted
//! through the content cache ([`count_cached`]): a conversation re-sent with one more turn only
//! encodes the new turn. Blocking for large requests: callers run it off the async workers.

use super::types::{ContentBlock, MessagesRequest, ToolResultContent};
use crate::tokens::{count, count_cached};

/// Role markers and separators around each message.
const PER_MESSAGE: u64 = 4;
/// Anthropic bills an image by its size (about 1,600 tokens for a 1092×1092 one); without
/// decoding it we take that typical value.
const PER_IMAGE: u64 = 1_600;

pub fn input_tokens(req: &MessagesRequest) -> u64 {
    let mut total = req.system.as_ref().map_or(0, |s| count_cached(&s.text()));
    for message in &req.messages {
        total += PER_MESSAGE;
        for block in message.content.blocks() {
            total += block_tokens(&block);
        }
    }
    for tool in &req.tools {
        total += count(&tool.name);
        total += tool.description.as_deref().map_or(0, count_cached);
        total += tool
            .input_schema
            .as_ref()
            .map_or(0, |s| count_cached(&s.to_string()));
    }
    total
}

fn block_tokens(block: &ContentBlock) -> u64 {
    match block {
        ContentBlock::Text { text } => count_cached(text),
        ContentBlock::Image { .. } => PER_IMAGE,
        ContentBlock::ToolUse { name, input, .. } => count(name) + count_cached(&input.to_string()),
        ContentBlock::ToolResult { content, .. } => match content {
            None => 0,
            Some(ToolResultContent::Text(t)) => count_cached(t),
            Some(ToolResultContent::Blocks(blocks)) => blocks.iter().map(block_tokens).sum(),
        },
        ContentBlock::Thinking { thinking, .. } => count_cached(thinking),
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
