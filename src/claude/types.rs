//! Anthropic Messages wire types: the request as clients send it (read leniently: unknown
//! fields and block types are accepted, `null` where a list is expected means empty), and the
//! response shapes we write.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// `POST /v1/messages` (and `/v1/messages/count_tokens`, which has no `max_tokens`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<System>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tools: Vec<ToolDef>,
    /// Accepted, not forwarded (Amazon Q has no equivalent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingConfig>,
    /// Accepted, not forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Accepted, not forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Accepted, not forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
}

/// `system`: a string or a list of text blocks (with `cache_control`, ignored).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum System {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

impl System {
    /// The text of every text block, joined with a blank line.
    pub fn text(&self) -> String {
        match self {
            System::Text(t) => t.clone(),
            System::Blocks(blocks) => blocks
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::Text { text } => Some(text.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n\n"),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    /// Claude Code sends a per-turn `{"role": "system"}` message after the user turn.
    System,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Message {
    pub role: Role,
    #[serde(default = "empty_content")]
    pub content: Content,
}

fn empty_content() -> Content {
    Content::Blocks(Vec::new())
}

/// Message content: a string or a list of blocks (`null` reads as no blocks).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Blocks(Vec<ContentBlock>),
            Null(()),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Text(t) => Content::Text(t),
            Raw::Blocks(b) => Content::Blocks(b),
            Raw::Null(()) => Content::Blocks(Vec::new()),
        })
    }
}

impl Content {
    /// The content as blocks (a string is one text block).
    pub fn blocks(&self) -> Vec<ContentBlock> {
        match self {
            Content::Text(t) => vec![ContentBlock::Text { text: t.clone() }],
            Content::Blocks(b) => b.clone(),
        }
    }
}

/// A content block. Types we cannot use upstream (documents, server tool results, ...) are read
/// as [`ContentBlock::Other`] so a request carrying them is still accepted.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    Image {
        source: ImageSource,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<ToolResultContent>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    RedactedThinking {
        #[serde(default)]
        data: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    Base64 {
        media_type: String,
        data: String,
    },
    Url {
        url: String,
    },
    #[serde(other)]
    Other,
}

/// `tool_result.content`: a string or blocks (text and images).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum ToolResultContent {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

/// A tool definition. Server tools (`web_search_20250305`, ...) have a `type` and no schema.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ToolDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `thinking`: `{"type":"enabled","budget_tokens":N}`, `{"type":"adaptive"}`, `{"type":"disabled"}`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ThinkingConfig {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u64>,
}

pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_claude_code_shapes_leniently() {
        let req: MessagesRequest = serde_json::from_value(serde_json::json!({
            "model": "claude-opus-5-5",
            "max_tokens": 128000,
            "stream": true,
            "system": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "b"}],
            "tools": null,
            "thinking": {"type": "adaptive", "display": "omitted"},
            "context_management": {"edits": []},
            "output_config": {"effort": "medium"},
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}, {"type": "document", "source": {}}]},
                {"role": "system", "content": "per-turn"},
                {"role": "assistant", "content": null}
            ]
        }))
        .unwrap();
        assert_eq!(req.system.unwrap().text(), "a\n\nb");
        assert!(req.tools.is_empty());
        assert_eq!(req.messages[0].content.blocks()[1], ContentBlock::Other);
        assert_eq!(req.messages[1].role, Role::System);
        assert_eq!(req.messages[2].content, Content::Blocks(vec![]));
        assert_eq!(req.thinking.unwrap().kind, "adaptive");
    }
}
