//! The one request builder: a Claude Messages request ([`MessagesRequest`]) → an Amazon Q
//! `GenerateAssistantResponse` body, with every repair rule that keeps real clients (Claude Code,
//! Cline, the SDKs) away from `400 Improperly formed request` (protocol doc §3.5–3.6, §7, §8).
//! The OpenAI endpoint converts its requests into the Claude shape and comes through here too, so
//! the rules below speak of turns, tools and results, never of one client protocol.
//!
//! [`build`] runs these steps in order; each is a small function named after its rule, and each
//! rule that changed something adds its name to [`Built::repairs`] (logged at debug level under
//! `amq2api::claude::request`, never with content):
//!
//! 1. **System prompt** (`system_text`, `insert_system_pair`): `system` plus every
//!    `role: system` message, wherever it is, joined with a blank line, becomes the synthetic first
//!    history pair `user: <system>` / `assistant: "I will follow these instructions."` (§7.2
//!    strategy 1, hank9999's ack). Nothing is prepended to the user's own text.
//! 2. **Merge consecutive same-role turns** (`merge_consecutive_turns`): text joined with a
//!    blank line, images concatenated, tool results unioned and deduped by `toolUseId` (an `error`
//!    duplicate wins), tool uses concatenated.
//! 3. **Drop a trailing assistant prefill** (`drop_trailing_assistant`); no user turn left is a
//!    [`BuildError`].
//! 4. **Start with a user turn** (`ensure_leading_user`): a conversation that starts with an
//!    assistant turn gets a `"Continue"` user turn before it. Tool results in the first user turn
//!    have no tool use before them, so rule 5 turns them into text (what the official client does).
//! 5. **Tool pairing** (`pair_tool_results`): a tool use without a result in the next user turn
//!    gets the official cancelled result (`error`, "Tool use was cancelled by the user"); a result
//!    whose id is not a tool use of the previous assistant turn becomes plain text
//!    (`[Tool result for <id>]\n<text>`) at the start of that user turn's content.
//! 6. **Dedupe and order** (`dedupe_tool_uses`, `pair_tool_results`): a tool use id that
//!    already appeared earlier in the conversation is dropped (its result then becomes text);
//!    results are deduped by id and put in the order of the previous turn's tool uses (q2api).
//! 7. **No empty content** (`fill_empty_content`): a user turn without text and without tool
//!    results says `"Continue"`; a user turn with tool results keeps `""` (official client). An
//!    empty assistant turn (typically tool uses only) gets `" "`: a working peer (hank9999) ships
//!    it, the official client even sends `""` so the service is lenient here, and unlike a short
//!    text such as "OK" it puts no words in the model's mouth that it would learn to repeat before
//!    every tool call. An empty tool result says "Command executed successfully" (success) or
//!    "Tool use was cancelled by the user" (error), as jianweidai/q2api do.
//! 8. **Tool definitions** (`convert_tools`, `fix_tool_schema`): server tools (a `type` such
//!    as `web_search_20250305`, or the exact names `web_search` / `websearch`) are dropped, and so
//!    are their uses in history (Claude Code's own `WebSearch` client tool has a schema and is
//!    kept). An empty description becomes the tool's name (the upstream name when the client's
//!    is blank); a description over 10,000 characters is cut to 10,000 including a
//!    "[description truncated]" marker (the rest is dropped, not moved into the prompt: the tool
//!    list is sent with every turn and the prompt would grow by the same amount each time). Schemas: `type: "object"` at the top, `properties` an object,
//!    `required` an array of strings (anything else is removed), the same repairs in every nested
//!    schema, a non-string `type` removed from nested schemas, and a missing schema becomes
//!    `{"type":"object","properties":{}}`. Duplicate names (case-insensitive) keep the first.
//!    Every name, in tools and in history, goes through [`ToolNames::register`].
//! 9. **Tools used in history but not defined** (`add_history_tool_placeholders`), e.g. after
//!    Claude Code compaction: a placeholder spec per missing name (compared case-insensitively,
//!    as the service does).
//! 10. **Tool input is an object** (`normalize_tool_input`): a string that parses as an object
//!     becomes that object, anything else `{}`; top-level `""` keys are removed.
//! 11. **Images** (`image_block`, `limit_images`): base64 png/jpeg/gif/webp (and `data:` URLs
//!     of those) become image blocks; other formats, remote URLs, data that is not valid base64
//!     and images over 10 MiB decoded become a text note `[image omitted: …]`; images inside tool results move to that user
//!     turn's images; at most 10 per request, the most recent kept.
//! 12. **Thinking** (`thinking_tags`): earlier assistant `thinking` blocks are re-sent as
//!     `<thinking>…</thinking>` text before the visible text (redacted thinking is dropped).
//!     `thinking.type == "enabled"` (budget clamped to 1024..=24576, default 20000), a
//!     `-thinking` model suffix (default budget; it wins over `"disabled"`, the model name being
//!     the more deliberate choice), or `"adaptive"` (effort `high`: the Anthropic default effort
//!     for adaptive thinking; Claude Code's `output_config.effort` is not kept by the request
//!     types) puts the prompt tags at the start of the system text of rule 1, creating the pair
//!     when there is no system text.
//! 13. **Envelope**: `modelId` and `origin` on the current message, `origin` on history user
//!     messages too, `chatTriggerType: MANUAL`, a `conversationId` (given or a new UUID v4).
//!     Assistant history entries carry no `messageId` (optional upstream; keeps bodies
//!     deterministic).
//! 14. **Size** (`truncate_oversized`): user content over 600,000 characters and tool results
//!     over 800,000 keep their head and tail around an omission marker. These are the service
//!     limits quoted by the official client; its own 400,000 cap is a safety margin we do not
//!     need, and cutting more than the service demands loses content the model may need.
//!
//! [`check_history_rules`] checks a finished body against every rule of §3.5; tests use it on
//! what the builder produces and on what a fake Amazon Q receives.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::claude::types::{
    Content, ContentBlock, ImageSource as ClaudeImageSource, Message, MessagesRequest, Role,
    ThinkingConfig, ToolDef, ToolResultContent,
};
use crate::models::ModelMap;
use crate::q::tool_names::ToolNames;
use crate::q::types::{
    AssistantResponseMessage, ChatMessage, ConversationState, GenerateAssistantResponseRequest,
    ImageBlock, ImageFormat, ImageSource, Tool, ToolInputSchema, ToolResult,
    ToolResultContentBlock, ToolResultStatus, ToolSpecification, ToolUse, UserInputMessage,
    UserInputMessageContext,
};

/// The assistant half of the synthetic system pair (rule 1).
const SYSTEM_ACK: &str = "I will follow these instructions.";
/// Content of a user turn that has nothing to say (rules 4 and 7).
const USER_PLACEHOLDER: &str = "Continue";
/// Content of an assistant turn that has no text (rule 7).
const ASSISTANT_PLACEHOLDER: &str = " ";
/// Text of an empty successful tool result (rule 7).
const TOOL_SUCCESS_PLACEHOLDER: &str = "Command executed successfully";
/// Text of a synthesized or empty failed tool result (rules 5 and 7; the official wording).
const TOOL_CANCELLED: &str = "Tool use was cancelled by the user";
/// Description of a placeholder spec for a tool only seen in history (rule 9).
const HISTORY_TOOL_DESCRIPTION: &str = "Tool used in conversation history";
/// Server tools Amazon Q cannot run, by name (rule 8).
const SERVER_TOOL_NAMES: &[&str] = &["web_search", "websearch"];
/// Server tools by `type` prefix (rule 8).
const SERVER_TOOL_KINDS: &[&str] = &["web_search", "web_fetch", "code_execution"];
const MAX_TOOL_DESCRIPTION: usize = 10_000;
const DESCRIPTION_MARKER: &str = "… [description truncated]";
const MAX_IMAGES: usize = 10;
const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;
const MAX_USER_CONTENT: usize = 600_000;
const MAX_TOOL_RESULT: usize = 800_000;
const THINKING_BUDGET_DEFAULT: u64 = 20_000;
const THINKING_BUDGET_MIN: u64 = 1_024;
const THINKING_BUDGET_MAX: u64 = 24_576;
/// Longest tool name the checker accepts (§3.6; the builder sends at most 63).
const MAX_TOOL_NAME_CHECK: usize = 64;

/// What [`build`] needs besides the request.
#[derive(Debug, Clone)]
pub struct BuildOptions<'a> {
    /// `origin` of user messages (`CLI`, `KIRO_CLI`, `AI_EDITOR`).
    pub origin: &'a str,
    pub models: &'a ModelMap,
    /// `None` → a new UUID v4.
    pub conversation_id: Option<String>,
}

/// A built upstream request and what the answer side needs to interpret the reply.
#[derive(Debug, Clone)]
pub struct Built {
    pub request: GenerateAssistantResponseRequest,
    /// Upstream tool name → client tool name, for tool calls in the answer.
    pub tool_names: ToolNames,
    pub upstream_model: String,
    /// Thinking tags were added: the answer interpreter must scan for `<thinking>`.
    pub thinking: bool,
    /// Names of the repair rules that changed something, in the order they ran.
    pub repairs: Vec<&'static str>,
}

/// A request nothing can repair; answered with a 400 carrying this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Invalid(String),
}

/// Builds the Amazon Q request for a Claude Messages request (see the module doc for the rules).
pub fn build(req: &MessagesRequest, opts: &BuildOptions) -> Result<Built, BuildError> {
    let resolved = opts
        .models
        .resolve(&req.model)
        .map_err(BuildError::Invalid)?;
    if req.messages.is_empty() {
        return Err(BuildError::Invalid(
            "messages: at least one message is required".to_owned(),
        ));
    }
    if !req.messages.iter().any(has_content) {
        return Err(BuildError::Invalid(
            "messages: no user or assistant message has any content".to_owned(),
        ));
    }
    let mut repairs = Repairs::default();

    let server_tools = server_tool_names(&req.tools);
    let mut turns = convert_messages(&req.messages, &server_tools, &mut repairs);
    merge_consecutive_turns(&mut turns, &mut repairs);
    drop_trailing_assistant(&mut turns, &mut repairs)?;
    ensure_leading_user(&mut turns, &mut repairs);
    dedupe_tool_uses(&mut turns, &mut repairs);
    pair_tool_results(&mut turns, &mut repairs);
    let tags = thinking_tags(req.thinking.as_ref(), resolved.thinking);
    if tags.is_some() {
        repairs.note("thinking_tags");
    }
    let system = system_text(req, &mut repairs);
    insert_system_pair(&mut turns, tags.as_deref(), system, &mut repairs);
    limit_images(&mut turns, &mut repairs);

    let mut names = ToolNames::default();
    let mut tools = convert_tools(&req.tools, &mut names, &mut repairs);
    let mut messages: Vec<ChatMessage> = turns
        .into_iter()
        .map(|t| render_turn(t, opts.origin, &mut names))
        .collect();
    fill_empty_content(&mut messages, &mut repairs);
    truncate_oversized(&mut messages, &mut repairs);
    add_history_tool_placeholders(&messages, &mut tools, &mut repairs);

    let Some(ChatMessage::UserInputMessage(mut current)) = messages.pop() else {
        // drop_trailing_assistant guarantees a final user turn.
        return Err(BuildError::Invalid(
            "messages: the conversation must end with a user message".to_owned(),
        ));
    };
    current.model_id = Some(resolved.upstream.clone());
    let results = current
        .user_input_message_context
        .take()
        .map(|c| c.tool_results)
        .unwrap_or_default();
    if !results.is_empty() || !tools.is_empty() {
        current.user_input_message_context = Some(UserInputMessageContext {
            env_state: None,
            tool_results: results,
            tools,
        });
    }
    let mut state = ConversationState::new(current);
    state.conversation_id = Some(
        opts.conversation_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
    );
    state.history = messages;

    log::debug!(
        target: "amq2api::claude::request",
        "built request: model {} → {}, {} history entries, {} tools, repairs {:?}",
        req.model,
        resolved.upstream,
        state.history.len(),
        state
            .current_message
            .user_input_message
            .user_input_message_context
            .as_ref()
            .map_or(0, |c| c.tools.len()),
        repairs.0
    );
    Ok(Built {
        request: GenerateAssistantResponseRequest::new(state),
        tool_names: names,
        upstream_model: resolved.upstream,
        thinking: tags.is_some(),
        repairs: repairs.0,
    })
}

/// The rule names that changed something, each once.
#[derive(Debug, Default)]
struct Repairs(Vec<&'static str>);

impl Repairs {
    fn note(&mut self, rule: &'static str) {
        if !self.0.contains(&rule) {
            self.0.push(rule);
        }
    }
}

/// One conversation turn while the rules run: text pieces (joined with a blank line at the end),
/// images, and tool results or tool uses (tool names still the client's).
#[derive(Debug, Clone, PartialEq)]
enum Turn {
    User(UserTurn),
    Assistant(AssistantTurn),
}

#[derive(Debug, Clone, Default, PartialEq)]
struct UserTurn {
    text: Vec<String>,
    images: Vec<ImageBlock>,
    results: Vec<ToolResult>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct AssistantTurn {
    text: Vec<String>,
    uses: Vec<ToolUse>,
}

impl UserTurn {
    fn text(text: &str) -> Self {
        Self {
            text: vec![text.to_owned()],
            ..Self::default()
        }
    }
}

/// Whether a user or assistant message carries anything at all.
fn has_content(m: &Message) -> bool {
    if m.role == Role::System {
        return false;
    }
    match &m.content {
        Content::Text(t) => !t.trim().is_empty(),
        Content::Blocks(blocks) => blocks.iter().any(|b| match b {
            ContentBlock::Text { text } => !text.trim().is_empty(),
            ContentBlock::Thinking { thinking, .. } => !thinking.trim().is_empty(),
            ContentBlock::Image { .. }
            | ContentBlock::ToolUse { .. }
            | ContentBlock::ToolResult { .. } => true,
            ContentBlock::RedactedThinking { .. } | ContentBlock::Other => false,
        }),
    }
}

/// Text of a message's text blocks, joined with a blank line.
fn plain_text(content: &Content) -> String {
    match content {
        Content::Text(t) => t.clone(),
        Content::Blocks(blocks) => blocks
            .iter()
            .filter_map(|b| match b {
                ContentBlock::Text { text } if !text.trim().is_empty() => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n\n"),
    }
}

/// Rule 1, input: `system` and the text of every `role: system` message, in order.
fn system_text(req: &MessagesRequest, repairs: &mut Repairs) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(system) = &req.system {
        parts.push(system.text());
    }
    for m in req.messages.iter().filter(|m| m.role == Role::System) {
        repairs.note("system_messages_to_system");
        parts.push(plain_text(&m.content));
    }
    parts.retain(|p| !p.trim().is_empty());
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// Rule 1 (and 12): the synthetic first history pair `user: [tags\n\n]system`, `assistant: ack`.
fn insert_system_pair(
    turns: &mut Vec<Turn>,
    tags: Option<&str>,
    system: Option<String>,
    repairs: &mut Repairs,
) {
    let text = match (tags, system) {
        (None, None) => return,
        (Some(tags), None) => tags.to_owned(),
        (None, Some(system)) => system,
        (Some(tags), Some(system)) => format!("{tags}\n\n{system}"),
    };
    repairs.note("system_prompt_pair");
    turns.splice(
        0..0,
        [
            Turn::User(UserTurn::text(&text)),
            Turn::Assistant(AssistantTurn {
                text: vec![SYSTEM_ACK.to_owned()],
                uses: Vec::new(),
            }),
        ],
    );
}

/// Rule 12: the prompt tags that switch thinking on, if the request or the model name asks.
fn thinking_tags(cfg: Option<&ThinkingConfig>, model_suffix: bool) -> Option<String> {
    let enabled = |budget: Option<u64>| {
        let budget = budget
            .unwrap_or(THINKING_BUDGET_DEFAULT)
            .clamp(THINKING_BUDGET_MIN, THINKING_BUDGET_MAX);
        format!(
            "<thinking_mode>enabled</thinking_mode><max_thinking_length>{budget}</max_thinking_length>"
        )
    };
    match cfg.map(|c| c.kind.to_ascii_lowercase()).as_deref() {
        Some("enabled") => Some(enabled(cfg.and_then(|c| c.budget_tokens))),
        Some("adaptive") => Some(
            "<thinking_mode>adaptive</thinking_mode><thinking_effort>high</thinking_effort>"
                .to_owned(),
        ),
        _ if model_suffix => Some(enabled(None)),
        _ => None,
    }
}

/// Rules 8 (server tools), 10, 11 and 12 per block: each user/assistant message → one [`Turn`].
fn convert_messages(
    messages: &[Message],
    server_tools: &HashSet<String>,
    repairs: &mut Repairs,
) -> Vec<Turn> {
    let mut turns = Vec::with_capacity(messages.len());
    for m in messages {
        match m.role {
            Role::System => {}
            Role::User => turns.push(Turn::User(convert_user(&m.content, repairs))),
            Role::Assistant => turns.push(Turn::Assistant(convert_assistant(
                &m.content,
                server_tools,
                repairs,
            ))),
        }
    }
    turns
}

fn convert_user(content: &Content, repairs: &mut Repairs) -> UserTurn {
    let mut turn = UserTurn::default();
    let blocks = match content {
        Content::Text(t) => {
            turn.text.push(t.clone());
            return turn;
        }
        Content::Blocks(blocks) => blocks,
    };
    for block in blocks {
        match block {
            ContentBlock::Text { text } => turn.text.push(text.clone()),
            ContentBlock::Image { source } => match image_block(source, repairs) {
                Ok(img) => turn.images.push(img),
                Err(note) => turn.text.push(note),
            },
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                let status = if *is_error == Some(true) {
                    ToolResultStatus::Error
                } else {
                    ToolResultStatus::Success
                };
                let text = tool_result_text(content.as_ref(), &mut turn.images, repairs);
                turn.results.push(ToolResult {
                    tool_use_id: tool_use_id.clone(),
                    content: vec![ToolResultContentBlock::Text(result_text_or_placeholder(
                        text, status, repairs,
                    ))],
                    status,
                });
            }
            ContentBlock::ToolUse { .. }
            | ContentBlock::Thinking { .. }
            | ContentBlock::RedactedThinking { .. } => repairs.note("drop_misplaced_blocks"),
            ContentBlock::Other => repairs.note("drop_unsupported_blocks"),
        }
    }
    turn
}

fn convert_assistant(
    content: &Content,
    server_tools: &HashSet<String>,
    repairs: &mut Repairs,
) -> AssistantTurn {
    let mut turn = AssistantTurn::default();
    let blocks = match content {
        Content::Text(t) => {
            turn.text.push(t.clone());
            return turn;
        }
        Content::Blocks(blocks) => blocks,
    };
    for block in blocks {
        match block {
            ContentBlock::Text { text } => turn.text.push(text.clone()),
            ContentBlock::Thinking { thinking, .. } => {
                if !thinking.trim().is_empty() {
                    repairs.note("history_thinking_as_text");
                    turn.text.push(format!("<thinking>{thinking}</thinking>"));
                }
            }
            ContentBlock::RedactedThinking { .. } => repairs.note("drop_redacted_thinking"),
            ContentBlock::ToolUse { id, name, input } => {
                if server_tools.contains(name) {
                    repairs.note("filter_server_tools");
                    continue;
                }
                let (input, changed) = normalize_tool_input(input);
                if changed {
                    repairs.note("tool_input_to_object");
                }
                turn.uses.push(ToolUse {
                    tool_use_id: id.clone(),
                    name: name.clone(),
                    input,
                });
            }
            ContentBlock::Image { .. } | ContentBlock::ToolResult { .. } => {
                repairs.note("drop_misplaced_blocks")
            }
            ContentBlock::Other => repairs.note("drop_unsupported_blocks"),
        }
    }
    turn
}

/// Rule 10: a tool use `input` as a JSON object without `""` keys. Returns whether it changed.
fn normalize_tool_input(input: &Value) -> (Value, bool) {
    let (mut map, mut changed) = match input {
        Value::Object(map) => (map.clone(), false),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(map)) => (map, true),
            _ => (Map::new(), true),
        },
        _ => (Map::new(), true),
    };
    if map.remove("").is_some() {
        changed = true;
    }
    (Value::Object(map), changed)
}

/// Rule 11: a Claude image source → an upstream image block, or the note that replaces it.
fn image_block(source: &ClaudeImageSource, repairs: &mut Repairs) -> Result<ImageBlock, String> {
    let (media_type, data) = match source {
        ClaudeImageSource::Base64 { media_type, data } => (media_type.as_str(), data.as_str()),
        ClaudeImageSource::Url { url } => match parse_data_url(url) {
            Some(parts) => parts,
            None => {
                repairs.note("drop_unsupported_images");
                let shown: String = url.chars().take(200).collect();
                return Err(format!(
                    "[image omitted: URL images are not supported ({shown})]"
                ));
            }
        },
        ClaudeImageSource::Other => {
            repairs.note("drop_unsupported_images");
            return Err("[image omitted: unsupported image source]".to_owned());
        }
    };
    let format = match media_type.trim().to_ascii_lowercase().as_str() {
        "image/png" => ImageFormat::Png,
        "image/jpeg" | "image/jpg" => ImageFormat::Jpeg,
        "image/gif" => ImageFormat::Gif,
        "image/webp" => ImageFormat::Webp,
        other => {
            repairs.note("drop_unsupported_images");
            return Err(format!("[image omitted: unsupported format {other}]"));
        }
    };
    if decoded_len(data) > MAX_IMAGE_BYTES {
        repairs.note("drop_oversized_images");
        return Err("[image omitted: larger than 10 MiB]".to_owned());
    }
    if !is_base64(data) {
        repairs.note("drop_unsupported_images");
        return Err("[image omitted: the image data is not valid base64]".to_owned());
    }
    Ok(ImageBlock {
        format,
        source: ImageSource::Bytes(data.to_owned()),
    })
}

/// `data:image/png;base64,AAAA` → `("image/png", "AAAA")`.
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

/// Whether `b64` is standard base64 (RFC 4648 alphabet, no whitespace, padding optional but
/// only at the end): what the service's blob decoder takes. Anything else would make Amazon Q
/// reject the whole request, so the image becomes a note instead (rule 11).
fn is_base64(b64: &str) -> bool {
    let body = b64.trim_end_matches('=');
    let padding = b64.len() - body.len();
    !body.is_empty()
        && padding <= 2
        && body.len() % 4 != 1
        && (padding == 0 || b64.len() % 4 == 0)
        && body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// Decoded size of standard base64 text, from its length.
fn decoded_len(b64: &str) -> usize {
    let trimmed = b64.trim_end_matches('=');
    trimmed.len() * 3 / 4
}

/// A tool result's text (text blocks joined with a blank line); its images move to `images`
/// (rule 11), unusable ones leave a note in the text.
fn tool_result_text(
    content: Option<&ToolResultContent>,
    images: &mut Vec<ImageBlock>,
    repairs: &mut Repairs,
) -> String {
    match content {
        None => String::new(),
        Some(ToolResultContent::Text(t)) => t.clone(),
        Some(ToolResultContent::Blocks(blocks)) => {
            let mut parts: Vec<String> = Vec::new();
            for block in blocks {
                match block {
                    ContentBlock::Text { text } => parts.push(text.clone()),
                    ContentBlock::Image { source } => match image_block(source, repairs) {
                        Ok(img) => {
                            repairs.note("tool_result_images_to_message");
                            images.push(img);
                        }
                        Err(note) => parts.push(note),
                    },
                    _ => repairs.note("drop_unsupported_blocks"),
                }
            }
            parts.retain(|p| !p.trim().is_empty());
            parts.join("\n\n")
        }
    }
}

/// Rule 7 for tool results: empty text gets the placeholder that matches the status.
fn result_text_or_placeholder(
    text: String,
    status: ToolResultStatus,
    repairs: &mut Repairs,
) -> String {
    if !text.trim().is_empty() {
        return text;
    }
    repairs.note("empty_tool_result_placeholder");
    match status {
        ToolResultStatus::Success => TOOL_SUCCESS_PLACEHOLDER.to_owned(),
        ToolResultStatus::Error => TOOL_CANCELLED.to_owned(),
    }
}

/// Rule 2: consecutive same-role turns become one.
fn merge_consecutive_turns(turns: &mut Vec<Turn>, repairs: &mut Repairs) {
    let mut merged: Vec<Turn> = Vec::with_capacity(turns.len());
    for turn in turns.drain(..) {
        match (merged.last_mut(), turn) {
            (Some(Turn::User(prev)), Turn::User(next)) => {
                repairs.note("merge_consecutive_turns");
                prev.text.extend(next.text);
                prev.images.extend(next.images);
                prev.results.extend(next.results);
                if dedupe_results(&mut prev.results) {
                    repairs.note("dedupe_tool_results");
                }
            }
            (Some(Turn::Assistant(prev)), Turn::Assistant(next)) => {
                repairs.note("merge_consecutive_turns");
                prev.text.extend(next.text);
                prev.uses.extend(next.uses);
            }
            (_, turn) => merged.push(turn),
        }
    }
    *turns = merged;
}

/// Rule 3: the conversation ends with a user turn; an assistant prefill after it is dropped.
fn drop_trailing_assistant(turns: &mut Vec<Turn>, repairs: &mut Repairs) -> Result<(), BuildError> {
    while matches!(turns.last(), Some(Turn::Assistant(_))) {
        repairs.note("drop_trailing_assistant");
        turns.pop();
    }
    if turns.is_empty() {
        return Err(BuildError::Invalid(
            "messages: the conversation has no user message to answer".to_owned(),
        ));
    }
    Ok(())
}

/// Rule 4: history starts with a user turn.
fn ensure_leading_user(turns: &mut Vec<Turn>, repairs: &mut Repairs) {
    if matches!(turns.first(), Some(Turn::Assistant(_))) {
        repairs.note("leading_user_placeholder");
        turns.insert(0, Turn::User(UserTurn::text(USER_PLACEHOLDER)));
    }
}

/// Rule 6: a tool use id is used once in the whole conversation (the first wins).
fn dedupe_tool_uses(turns: &mut [Turn], repairs: &mut Repairs) {
    let mut seen: HashSet<String> = HashSet::new();
    for turn in turns.iter_mut() {
        if let Turn::Assistant(a) = turn {
            let before = a.uses.len();
            a.uses.retain(|u| seen.insert(u.tool_use_id.clone()));
            if a.uses.len() != before {
                repairs.note("dedupe_tool_uses");
            }
        }
    }
}

/// Rule 6: one result per id; an `error` duplicate wins. Returns whether anything was removed.
fn dedupe_results(results: &mut Vec<ToolResult>) -> bool {
    let before = results.len();
    let mut out: Vec<ToolResult> = Vec::with_capacity(results.len());
    for r in results.drain(..) {
        match out.iter_mut().find(|o| o.tool_use_id == r.tool_use_id) {
            Some(existing) => {
                if existing.status != ToolResultStatus::Error && r.status == ToolResultStatus::Error
                {
                    *existing = r;
                }
            }
            None => out.push(r),
        }
    }
    *results = out;
    results.len() != before
}

/// Rules 5 and 6: every user turn answers exactly the tool uses of the assistant turn before it,
/// in their order; orphan results become text, unanswered uses get a cancelled result.
fn pair_tool_results(turns: &mut [Turn], repairs: &mut Repairs) {
    for i in 0..turns.len() {
        let prev_ids: Vec<String> = match i.checked_sub(1).map(|j| &turns[j]) {
            Some(Turn::Assistant(a)) => a.uses.iter().map(|u| u.tool_use_id.clone()).collect(),
            _ => Vec::new(),
        };
        let Turn::User(user) = &mut turns[i] else {
            continue;
        };
        if prev_ids.is_empty() && user.results.is_empty() {
            continue;
        }
        if dedupe_results(&mut user.results) {
            repairs.note("dedupe_tool_results");
        }
        let (mut answered, orphans): (Vec<ToolResult>, Vec<ToolResult>) = user
            .results
            .drain(..)
            .partition(|r| prev_ids.contains(&r.tool_use_id));
        if !orphans.is_empty() {
            repairs.note("orphan_tool_results_to_text");
            let texts = orphans.into_iter().map(|r| {
                let label = match r.status {
                    ToolResultStatus::Success => format!("[Tool result for {}]", r.tool_use_id),
                    ToolResultStatus::Error => {
                        format!("[Tool result for {} (error)]", r.tool_use_id)
                    }
                };
                format!("{label}\n{}", result_text(&r))
            });
            user.text.splice(0..0, texts);
        }
        let given: Vec<String> = answered.iter().map(|r| r.tool_use_id.clone()).collect();
        let mut ordered = Vec::with_capacity(prev_ids.len());
        for id in &prev_ids {
            match answered.iter().position(|r| &r.tool_use_id == id) {
                Some(pos) => ordered.push(answered.remove(pos)),
                None => {
                    repairs.note("cancelled_tool_results");
                    ordered.push(ToolResult {
                        tool_use_id: id.clone(),
                        content: vec![ToolResultContentBlock::Text(TOOL_CANCELLED.to_owned())],
                        status: ToolResultStatus::Error,
                    });
                }
            }
        }
        let given_in_new_order = ordered
            .iter()
            .filter(|r| given.contains(&r.tool_use_id))
            .map(|r| &r.tool_use_id);
        if !given_in_new_order.eq(given.iter()) {
            repairs.note("order_tool_results");
        }
        user.results = ordered;
    }
}

/// The text of a tool result's text blocks.
fn result_text(r: &ToolResult) -> String {
    r.content
        .iter()
        .map(|c| match c {
            ToolResultContentBlock::Text(t) => t.clone(),
            ToolResultContentBlock::Json(v) => v.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Rule 11: at most 10 images in the request, the most recent kept; each turn that lost some says so.
fn limit_images(turns: &mut [Turn], repairs: &mut Repairs) {
    let mut budget = MAX_IMAGES;
    for turn in turns.iter_mut().rev() {
        let Turn::User(user) = turn else { continue };
        let n = user.images.len();
        if n <= budget {
            budget -= n;
            continue;
        }
        let dropped = n - budget;
        user.images.drain(..dropped);
        budget = 0;
        repairs.note("limit_image_count");
        user.text.push(format!(
            "[{dropped} image(s) omitted: only the {MAX_IMAGES} most recent images are sent]"
        ));
    }
}

/// Text pieces joined with a blank line; blank pieces skipped.
fn join_text(pieces: Vec<String>) -> String {
    pieces
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Rule 13 per turn: the upstream message, tool names registered, `origin` on user messages.
fn render_turn(turn: Turn, origin: &str, names: &mut ToolNames) -> ChatMessage {
    match turn {
        Turn::User(u) => UserInputMessage {
            origin: Some(origin.to_owned()),
            images: u.images,
            user_input_message_context: (!u.results.is_empty()).then(|| UserInputMessageContext {
                tool_results: u.results,
                ..Default::default()
            }),
            ..UserInputMessage::new(join_text(u.text))
        }
        .into(),
        Turn::Assistant(a) => AssistantResponseMessage {
            tool_uses: a
                .uses
                .into_iter()
                .map(|u| ToolUse {
                    name: names.register(&u.name),
                    ..u
                })
                .collect(),
            ..AssistantResponseMessage::new(join_text(a.text))
        }
        .into(),
    }
}

/// Rule 7: no user message is empty unless it carries tool results; no assistant message is empty.
fn fill_empty_content(messages: &mut [ChatMessage], repairs: &mut Repairs) {
    for m in messages.iter_mut() {
        match m {
            ChatMessage::UserInputMessage(u) if u.content.trim().is_empty() => {
                let has_results = u
                    .user_input_message_context
                    .as_ref()
                    .is_some_and(|c| !c.tool_results.is_empty());
                if has_results {
                    u.content.clear();
                } else {
                    repairs.note("empty_user_placeholder");
                    u.content = USER_PLACEHOLDER.to_owned();
                }
            }
            ChatMessage::AssistantResponseMessage(a) if a.content.trim().is_empty() => {
                repairs.note("empty_assistant_placeholder");
                a.content = ASSISTANT_PLACEHOLDER.to_owned();
            }
            _ => {}
        }
    }
}

/// Rule 14: user content and tool results within the service limits, head and tail kept.
fn truncate_oversized(messages: &mut [ChatMessage], repairs: &mut Repairs) {
    for m in messages.iter_mut() {
        let ChatMessage::UserInputMessage(u) = m else {
            continue;
        };
        if let Some(cut) = head_and_tail(&u.content, MAX_USER_CONTENT) {
            repairs.note("truncate_user_content");
            u.content = cut;
        }
        let Some(ctx) = u.user_input_message_context.as_mut() else {
            continue;
        };
        for block in ctx
            .tool_results
            .iter_mut()
            .flat_map(|r| r.content.iter_mut())
        {
            if let ToolResultContentBlock::Text(t) = block {
                if let Some(cut) = head_and_tail(t, MAX_TOOL_RESULT) {
                    repairs.note("truncate_tool_result");
                    *t = cut;
                }
            }
        }
    }
}

/// `text` cut to at most `max` characters: its head, an omission marker, its tail. `None` when
/// it already fits.
fn head_and_tail(text: &str, max: usize) -> Option<String> {
    let total = text.chars().count();
    if total <= max {
        return None;
    }
    // The marker's length depends on the number it shows; size it for the worst case.
    let marker_len = format!("\n\n[… {total} characters omitted …]\n\n")
        .chars()
        .count();
    let keep = max.saturating_sub(marker_len);
    let head = keep / 2;
    let tail = keep - head;
    let omitted = total - keep;
    let head_end = text.char_indices().nth(head).map_or(text.len(), |(i, _)| i);
    let tail_start = text
        .char_indices()
        .nth(total - tail)
        .map_or(text.len(), |(i, _)| i);
    Some(format!(
        "{}\n\n[… {omitted} characters omitted …]\n\n{}",
        &text[..head_end],
        &text[tail_start..]
    ))
}

/// Rule 8: the names of this request's server tools (plus the names that always are).
fn server_tool_names(defs: &[ToolDef]) -> HashSet<String> {
    defs.iter()
        .filter(|d| is_server_tool(d))
        .map(|d| d.name.clone())
        .chain(SERVER_TOOL_NAMES.iter().map(|n| n.to_string()))
        .collect()
}

fn is_server_tool(def: &ToolDef) -> bool {
    SERVER_TOOL_NAMES.contains(&def.name.as_str())
        || def
            .kind
            .as_deref()
            .is_some_and(|k| SERVER_TOOL_KINDS.iter().any(|p| k.starts_with(p)))
}

/// Rule 8: client tool definitions → upstream tool specifications.
fn convert_tools(defs: &[ToolDef], names: &mut ToolNames, repairs: &mut Repairs) -> Vec<Tool> {
    let mut tools = Vec::with_capacity(defs.len());
    let mut seen: HashSet<String> = HashSet::new();
    for def in defs {
        if is_server_tool(def) {
            repairs.note("filter_server_tools");
            continue;
        }
        let name = names.register(&def.name);
        if !seen.insert(name.to_ascii_lowercase()) {
            repairs.note("dedupe_tool_specs");
            continue;
        }
        if name != def.name {
            repairs.note("shorten_tool_names");
        }
        let description = match def.description.as_deref() {
            Some(d) if !d.trim().is_empty() => d.to_owned(),
            _ => {
                repairs.note("tool_description_from_name");
                // A blank client name describes nothing: the upstream name is never blank.
                if def.name.trim().is_empty() {
                    name.clone()
                } else {
                    def.name.clone()
                }
            }
        };
        let description = truncate_description(description, repairs);
        let (schema, changed) = fix_tool_schema(def.input_schema.as_ref());
        if changed {
            repairs.note("fix_tool_schema");
        }
        tools.push(Tool::ToolSpecification(ToolSpecification {
            name,
            description: Some(description),
            input_schema: ToolInputSchema { json: schema },
        }));
    }
    tools
}

/// Rule 8: a description over 10,000 characters is cut to 10,000 including a marker.
fn truncate_description(description: String, repairs: &mut Repairs) -> String {
    if description.chars().count() <= MAX_TOOL_DESCRIPTION {
        return description;
    }
    repairs.note("truncate_tool_description");
    let keep = MAX_TOOL_DESCRIPTION - DESCRIPTION_MARKER.chars().count();
    let mut cut: String = description.chars().take(keep).collect();
    cut.push_str(DESCRIPTION_MARKER);
    cut
}

/// Rule 8: a tool's JSON Schema as Amazon Q accepts it. Returns whether anything changed.
fn fix_tool_schema(schema: Option<&Value>) -> (Value, bool) {
    match schema {
        Some(Value::Object(map)) => {
            let mut map = map.clone();
            let changed = fix_schema_object(&mut map, true);
            (Value::Object(map), changed)
        }
        _ => (json!({"type": "object", "properties": {}}), true),
    }
}

/// Fixes one schema object and, recursively, every schema nested in it.
fn fix_schema_object(map: &mut Map<String, Value>, root: bool) -> bool {
    let mut changed = false;
    if root {
        if map.get("type") != Some(&json!("object")) {
            map.insert("type".to_owned(), json!("object"));
            changed = true;
        }
        if !matches!(map.get("properties"), Some(Value::Object(_))) {
            map.insert("properties".to_owned(), json!({}));
            changed = true;
        }
    } else {
        let type_ok = match map.get("type") {
            None | Some(Value::String(_)) => true,
            Some(Value::Array(items)) => items.iter().all(Value::is_string),
            Some(_) => false,
        };
        if !type_ok {
            map.remove("type");
            changed = true;
        }
        if map.get("properties").is_some_and(|p| !p.is_object()) {
            map.insert("properties".to_owned(), json!({}));
            changed = true;
        }
    }
    match map.get_mut("required") {
        None => {}
        Some(Value::Array(items)) => {
            let before = items.len();
            items.retain(Value::is_string);
            changed |= items.len() != before;
        }
        Some(_) => {
            map.remove("required");
            changed = true;
        }
    }
    // Nested schemas: maps of schemas, single schemas, and lists of schemas.
    for key in ["properties", "patternProperties", "$defs", "definitions"] {
        if let Some(Value::Object(children)) = map.get_mut(key) {
            for child in children.values_mut() {
                if let Value::Object(c) = child {
                    changed |= fix_schema_object(c, false);
                }
            }
        }
    }
    for key in [
        "items",
        "additionalProperties",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
    ] {
        match map.get_mut(key) {
            Some(Value::Object(c)) => changed |= fix_schema_object(c, false),
            Some(Value::Array(list)) if key == "items" => {
                for item in list.iter_mut() {
                    if let Value::Object(c) = item {
                        changed |= fix_schema_object(c, false);
                    }
                }
            }
            _ => {}
        }
    }
    for key in ["anyOf", "oneOf", "allOf", "prefixItems"] {
        if let Some(Value::Array(list)) = map.get_mut(key) {
            for item in list.iter_mut() {
                if let Value::Object(c) = item {
                    changed |= fix_schema_object(c, false);
                }
            }
        }
    }
    changed
}

/// Rule 9: a placeholder spec for every tool name used in history but not in `tools`.
fn add_history_tool_placeholders(
    messages: &[ChatMessage],
    tools: &mut Vec<Tool>,
    repairs: &mut Repairs,
) {
    let mut known: HashSet<String> = tools
        .iter()
        .filter_map(|t| match t {
            Tool::ToolSpecification(s) => Some(s.name.to_ascii_lowercase()),
            Tool::CachePoint(_) => None,
        })
        .collect();
    for m in messages {
        let ChatMessage::AssistantResponseMessage(a) = m else {
            continue;
        };
        for u in &a.tool_uses {
            if known.insert(u.name.to_ascii_lowercase()) {
                repairs.note("history_tool_placeholders");
                tools.push(Tool::ToolSpecification(ToolSpecification {
                    name: u.name.clone(),
                    description: Some(HISTORY_TOOL_DESCRIPTION.to_owned()),
                    input_schema: ToolInputSchema {
                        json: json!({"type": "object", "properties": {}}),
                    },
                }));
            }
        }
    }
}

/// Checks a request body against every history rule of protocol doc §3.5 (and the limits of §3.6
/// the builder enforces): strict alternation starting with a user message without tool results
/// and ending with an assistant message; every tool use answered in the next user message and
/// every result matching a tool use of the previous assistant message; no duplicate tool use ids;
/// every tool name used in history defined in the current tools (case-insensitively); valid,
/// unique tool names and non-empty descriptions; tool inputs are objects; no empty content where
/// it is not allowed; at most 10 images. The error names the first broken rule.
pub fn check_history_rules(req: &GenerateAssistantResponseRequest) -> Result<(), String> {
    let state = &req.conversation_state;
    let history = &state.history;
    let current = &state.current_message.user_input_message;

    for (i, m) in history.iter().enumerate() {
        let is_user = matches!(m, ChatMessage::UserInputMessage(_));
        if is_user != (i % 2 == 0) {
            return Err(format!(
                "history[{i}]: expected {} message (strict alternation starting with a user message)",
                if i % 2 == 0 { "a user" } else { "an assistant" }
            ));
        }
    }
    if history.len() % 2 != 0 {
        return Err("history must end with an assistant message".to_owned());
    }
    if let Some(ChatMessage::UserInputMessage(first)) = history.first() {
        if !user_results(first).is_empty() {
            return Err("history[0]: the first user message must not carry toolResults".to_owned());
        }
    }

    let tools: Vec<&ToolSpecification> = current
        .user_input_message_context
        .as_ref()
        .map(|c| {
            c.tools
                .iter()
                .filter_map(|t| match t {
                    Tool::ToolSpecification(s) => Some(s),
                    Tool::CachePoint(_) => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut tool_names: HashSet<String> = HashSet::new();
    for spec in &tools {
        if !valid_tool_name(&spec.name) {
            return Err(format!("tools: invalid tool name {:?}", spec.name));
        }
        if !tool_names.insert(spec.name.to_ascii_lowercase()) {
            return Err(format!("tools: duplicate tool name {:?}", spec.name));
        }
        if spec
            .description
            .as_deref()
            .is_none_or(|d| d.trim().is_empty())
        {
            return Err(format!("tools: {:?} has an empty description", spec.name));
        }
        let schema = &spec.input_schema.json;
        if schema.get("type") != Some(&json!("object"))
            || !schema.get("properties").is_some_and(Value::is_object)
        {
            return Err(format!(
                "tools: {:?} schema must be an object schema with properties",
                spec.name
            ));
        }
    }

    // The whole conversation, current message last.
    let all: Vec<(String, ChatRef)> = history
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let r = match m {
                ChatMessage::UserInputMessage(u) => ChatRef::User(u),
                ChatMessage::AssistantResponseMessage(a) => ChatRef::Assistant(a),
            };
            (format!("history[{i}]"), r)
        })
        .chain(std::iter::once((
            "currentMessage".to_owned(),
            ChatRef::User(current),
        )))
        .collect();

    let mut use_ids: HashSet<&str> = HashSet::new();
    let mut images = 0;
    for (i, (at, m)) in all.iter().enumerate() {
        match m {
            ChatRef::Assistant(a) => {
                if a.content.is_empty() {
                    return Err(format!("{at}: empty assistant content"));
                }
                for u in &a.tool_uses {
                    if !use_ids.insert(u.tool_use_id.as_str()) {
                        return Err(format!("{at}: duplicate toolUseId {:?}", u.tool_use_id));
                    }
                    if !u.input.is_object() {
                        return Err(format!(
                            "{at}: toolUse {:?} input is not an object",
                            u.tool_use_id
                        ));
                    }
                    if !valid_tool_name(&u.name) {
                        return Err(format!("{at}: invalid tool name {:?}", u.name));
                    }
                    if !tool_names.contains(&u.name.to_ascii_lowercase()) {
                        return Err(format!(
                            "{at}: tool {:?} is used in history but not in the current tools",
                            u.name
                        ));
                    }
                }
                let Some((next_at, ChatRef::User(next))) = all.get(i + 1) else {
                    return Err(format!("{at}: no user message follows"));
                };
                let results = user_results(next);
                for u in &a.tool_uses {
                    if !results.iter().any(|r| r.tool_use_id == u.tool_use_id) {
                        return Err(format!(
                            "{next_at}: no toolResult for toolUse {:?}",
                            u.tool_use_id
                        ));
                    }
                }
            }
            ChatRef::User(u) => {
                images += u.images.len();
                for image in &u.images {
                    let ImageSource::Bytes(data) = &image.source;
                    if !is_base64(data) || decoded_len(data) > MAX_IMAGE_BYTES {
                        return Err(format!(
                            "{at}: an image is not valid base64 of at most 10 MiB"
                        ));
                    }
                }
                let results = user_results(u);
                if u.content.is_empty() && results.is_empty() {
                    return Err(format!("{at}: empty user content without toolResults"));
                }
                let prev_uses: &[ToolUse] = match i.checked_sub(1).map(|j| &all[j].1) {
                    Some(ChatRef::Assistant(a)) => &a.tool_uses,
                    _ => &[],
                };
                let mut seen: HashSet<&str> = HashSet::new();
                for r in results {
                    if !seen.insert(r.tool_use_id.as_str()) {
                        return Err(format!("{at}: duplicate toolResult {:?}", r.tool_use_id));
                    }
                    if !prev_uses.iter().any(|p| p.tool_use_id == r.tool_use_id) {
                        return Err(format!(
                            "{at}: toolResult {:?} matches no toolUse of the previous assistant message",
                            r.tool_use_id
                        ));
                    }
                    let empty = r.content.iter().all(|c| match c {
                        ToolResultContentBlock::Text(t) => t.trim().is_empty(),
                        ToolResultContentBlock::Json(_) => false,
                    });
                    if empty {
                        return Err(format!(
                            "{at}: toolResult {:?} has no content",
                            r.tool_use_id
                        ));
                    }
                }
            }
        }
    }
    if images > MAX_IMAGES {
        return Err(format!("{images} images (at most {MAX_IMAGES})"));
    }
    Ok(())
}

/// A borrowed conversation entry, current message included.
enum ChatRef<'a> {
    User(&'a UserInputMessage),
    Assistant(&'a AssistantResponseMessage),
}

fn user_results(u: &UserInputMessage) -> &[ToolResult] {
    u.user_input_message_context
        .as_ref()
        .map_or(&[], |c| c.tool_results.as_slice())
}

/// `^[a-zA-Z][a-zA-Z0-9_-]*$`, at most 64 characters.
fn valid_tool_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_TOOL_NAME_CHECK
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Checks one arbitrary input end to end, panicking on any broken promise: used by the
/// `claude_request` fuzz target (`fuzz/`) and by the test that replays its committed corpus.
/// `data` is read as a JSON [`MessagesRequest`] (not JSON or not that shape: nothing to check);
/// [`build`] must not panic, and whenever it succeeds its body must satisfy
/// [`check_history_rules`] and serialize. The local token count (`count_tokens`) must not panic
/// either.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<MessagesRequest>(data) {
        check_build(&req);
    }
}

/// The [`fuzz_one`] checks for a request already parsed (the OpenAI harness converts first).
#[doc(hidden)]
pub fn check_build(req: &MessagesRequest) {
    let models = ModelMap::default();
    let opts = BuildOptions {
        origin: "CLI",
        models: &models,
        conversation_id: Some("fuzz".to_owned()),
    };
    let _ = crate::claude::count::input_tokens(req);
    if let Ok(built) = build(req, &opts) {
        if let Err(e) = check_history_rules(&built.request) {
            panic!("the builder broke a history rule: {e}");
        }
        serde_json::to_vec(&built.request).expect("a built request serializes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::q::tool_names::upstream_name;
    use serde_json::json;

    fn request(v: Value) -> MessagesRequest {
        serde_json::from_value(v).unwrap()
    }

    fn try_build(v: Value) -> Result<Built, BuildError> {
        let models = ModelMap::default();
        let opts = BuildOptions {
            origin: "CLI",
            models: &models,
            conversation_id: Some("conv-1".to_owned()),
        };
        build(&request(v), &opts)
    }

    /// Builds, checks the §3.5 rules, and returns the result.
    fn build_ok(v: Value) -> Built {
        let built = try_build(v).unwrap();
        check_history_rules(&built.request).unwrap();
        built
    }

    fn state(built: &Built) -> Value {
        serde_json::to_value(&built.request).unwrap()["conversationState"].clone()
    }

    fn user(content: &str) -> Value {
        json!({"userInputMessage": {"content": content, "origin": "CLI"}})
    }

    fn assistant(content: &str) -> Value {
        json!({"assistantResponseMessage": {"content": content}})
    }

    fn current(content: &str) -> Value {
        json!({"userInputMessage": {"content": content, "origin": "CLI", "modelId": "claude-sonnet-4.5"}})
    }

    fn run_tool() -> Value {
        json!({"name": "run", "description": "Run a command", "input_schema": {"type": "object", "properties": {"cmd": {"type": "string"}}}})
    }

    fn run_spec() -> Value {
        json!({"toolSpecification": {"name": "run", "description": "Run a command", "inputSchema": {"json": {"type": "object", "properties": {"cmd": {"type": "string"}}}}}})
    }

    fn ok(id: &str, text: &str) -> Value {
        json!({"toolUseId": id, "content": [{"text": text}], "status": "success"})
    }

    fn err(id: &str, text: &str) -> Value {
        json!({"toolUseId": id, "content": [{"text": text}], "status": "error"})
    }

    fn use_(id: &str, name: &str, input: Value) -> Value {
        json!({"toolUseId": id, "name": name, "input": input})
    }

    #[test]
    fn plain_request_has_no_history_and_no_repairs() {
        let built = build_ok(
            json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert_eq!(
            state(&built),
            json!({"conversationId": "conv-1", "currentMessage": current("hi"), "chatTriggerType": "MANUAL"})
        );
        assert!(built.repairs.is_empty());
        assert!(!built.thinking);
        assert_eq!(built.upstream_model, "claude-sonnet-4.5");
    }

    /// Rule 1: `system` (blocks) and a `role: system` message after the user turn → first pair.
    #[test]
    fn rule1_system_prompt_pair() {
        let built = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "system": [
                {"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Use tools."}
            ],
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "Per-turn note."}
            ]
        }));
        assert_eq!(
            state(&built),
            json!({
                "conversationId": "conv-1",
                "history": [
                    user("Be terse.\n\nUse tools.\n\nPer-turn note."),
                    assistant("I will follow these instructions.")
                ],
                "currentMessage": current("hi"),
                "chatTriggerType": "MANUAL"
            })
        );
        assert_eq!(
            built.repairs,
            ["system_messages_to_system", "system_prompt_pair"]
        );
    }

    /// Rule 2: consecutive users and assistants merge; results deduped with `error` winning.
    #[test]
    fn rule2_merge_consecutive_turns() {
        let built = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "tools": [run_tool()],
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]},
                {"role": "assistant", "content": "x"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "t1", "name": "run", "input": {"cmd": "ls"}},
                    {"type": "tool_use", "id": "t2", "name": "run", "input": {"cmd": "pwd"}}
                ]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "one"}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "boom", "is_error": true},
                    {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "two"}]}
                ]}
            ]
        }));
        assert_eq!(
            state(&built),
            json!({
                "conversationId": "conv-1",
                "history": [
                    {"userInputMessage": {"content": "a\n\nb", "origin": "CLI", "images": [{"format": "png", "source": {"bytes": "iVBORw0KGgo="}}]}},
                    {"assistantResponseMessage": {"content": "x", "toolUses": [
                        use_("t1", "run", json!({"cmd": "ls"})),
                        use_("t2", "run", json!({"cmd": "pwd"}))
                    ]}}
                ],
                "currentMessage": {"userInputMessage": {
                    "content": "",
                    "origin": "CLI",
                    "modelId": "claude-sonnet-4.5",
                    "userInputMessageContext": {
                        "toolResults": [err("t1", "boom"), ok("t2", "two")],
                        "tools": [run_spec()]
                    }
                }},
                "chatTriggerType": "MANUAL"
            })
        );
        assert_eq!(
            built.repairs,
            ["merge_consecutive_turns", "dedupe_tool_results"]
        );
    }

    /// Rule 3: a trailing assistant prefill is dropped; nothing left to answer is an error.
    #[test]
    fn rule3_drop_trailing_assistant() {
        let built = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "messages": [
                {"role": "user", "content": "Write JSON."},
                {"role": "assistant", "content": "{"}
            ]
        }));
        assert_eq!(
            state(&built),
            json!({"conversationId": "conv-1", "currentMessage": current("Write JSON."), "chatTriggerType": "MANUAL"})
        );
        assert_eq!(built.repairs, ["drop_trailing_assistant"]);

        let e = try_build(json!({"model": "claude-sonnet-4-5", "messages": [{"role": "assistant", "content": "hello"}]}))
            .unwrap_err();
        assert_eq!(
            e,
            BuildError::Invalid(
                "messages: the conversation has no user message to answer".to_owned()
            )
        );
    }

    /// Requests nothing can repair.
    #[test]
    fn invalid_requests_are_errors() {
        let cases = [
            json!({"model": "claude-sonnet-4-5", "messages": []}),
            json!({"model": "", "messages": [{"role": "user", "content": "hi"}]}),
            json!({"model": "not a model", "messages": [{"role": "user", "content": "hi"}]}),
            json!({"model": "claude-sonnet-4-5", "messages": [{"role": "system", "content": "only system"}]}),
            json!({"model": "claude-sonnet-4-5", "system": "s", "messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": []}]}),
        ];
        for case in cases {
            let e = try_build(case.clone()).unwrap_err();
            let BuildError::Invalid(msg) = &e;
            assert!(!msg.is_empty(), "{case}");
        }
        assert_eq!(
            try_build(json!({"model": "", "messages": [{"role": "user", "content": "hi"}]}))
                .unwrap_err()
                .to_string(),
            "model: a model name is required"
        );
    }

    /// Rule 4: a leading assistant turn gets a user turn before it; results in the first user
    /// turn become text.
    #[test]
    fn rule4_history_starts_with_a_plain_user_turn() {
        let built = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "messages": [
                {"role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": "hi"}
            ]
        }));
        assert_eq!(
            state(&built),
            json!({
                "conversationId": "conv-1",
                "history": [user("Continue"), assistant("Hello! How can I help?")],
                "currentMessage": current("hi"),
                "chatTriggerType": "MANUAL"
            })
        );
        assert_eq!(built.repairs, ["leading_user_placeholder"]);

        let built = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "messages": [
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t0", "content": "early result"},
                    {"type": "text", "text": "go on"}
                ]},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "next"}
            ]
        }));
        assert_eq!(
            state(&built)["history"],
            json!([
                user("[Tool result for t0]\nearly result\n\ngo on"),
                assistant("ok")
            ])
        );
        assert_eq!(built.repairs, ["orphan_tool_results_to_text"]);
    }

    /// Rule 5: unanswered tool uses get cancelled results; stray results become text.
    #[test]
    fn rule5_tool_pairing() {
        let built = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "tools": [run_tool()],
            "messages": [
                {"role": "user", "content": "start"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "a", "name": "run", "input": {"cmd": "1"}},
                    {"type": "tool_use", "id": "b", "name": "run", "input": {"cmd": "2"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "b", "content": "B"},
                    {"type": "tool_result", "tool_use_id": "zz", "content": "stray", "is_error": true},
                    {"type": "text", "text": "and also"}
                ]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "c", "name": "run", "input": {"cmd": "3"}}]},
                {"role": "user", "content": "never mind"}
            ]
        }));
        assert_eq!(
            state(&built),
            json!({
                "conversationId": "conv-1",
                "history": [
                    user("start"),
                    {"assistantResponseMessage": {"content": " ", "toolUses": [
                        use_("a", "run", json!({"cmd": "1"})),
                        use_("b", "run", json!({"cmd": "2"}))
                    ]}},
                    {"userInputMessage": {
                        "content": "[Tool result for zz (error)]\nstray\n\nand also",
                        "origin": "CLI",
                        "userInputMessageContext": {"toolResults": [
                            err("a", "Tool use was cancelled by the user"),
                            ok("b", "B")
                        ]}
                    }},
                    {"assistantResponseMessage": {"content": " ", "toolUses": [use_("c", "run", json!({"cmd": "3"}))]}}
                ],
                "currentMessage": {"userInputMessage": {
                    "content": "never mind",
                    "origin": "CLI",
                    "modelId": "claude-sonnet-4.5",
                    "userInputMessageContext": {
                        "toolResults": [err("c", "Tool use was cancelled by the user")],
                        "tools": [run_spec()]
                    }
                }},
                "chatTriggerType": "MANUAL"
            })
        );
        assert_eq!(
            built.repairs,
            [
                "orphan_tool_results_to_text",
                "cancelled_tool_results",
                "empty_assistant_placeholder"
            ]
        );
    }

    /// Rule 6: results deduped and in tool-use order; a repeated tool use id is dropped.
    #[test]
    fn rule6_dedupe_and_order() {
        let built = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "tools": [run_tool()],
            "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "two calls"},
                    {"type": "tool_use", "id": "a", "name": "run", "input": {}},
                    {"type": "tool_use", "id": "b", "name": "run", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "b", "content": "B"},
                    {"type": "tool_result", "tool_use_id": "a", "content": "A"},
                    {"type": "tool_result", "tool_use_id": "a", "content": "A again"}
                ]}
            ]
        }));
        assert_eq!(
            state(&built)["currentMessage"]["userInputMessage"]["userInputMessageContext"]
                ["toolResults"],
            json!([ok("a", "A"), ok("b", "B")])
        );
        assert_eq!(built.repairs, ["dedupe_tool_results", "order_tool_results"]);

        let built = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "tools": [run_tool()],
            "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "run", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": "first"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "again"}, {"type": "tool_use", "id": "a", "name": "run", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": "second"}]}
            ]
        }));
        let st = state(&built);
        assert_eq!(st["history"][3], assistant("again"));
        assert_eq!(
            st["currentMessage"]["userInputMessage"]["content"],
            "[Tool result for a]\nsecond"
        );
        assert!(
            st["currentMessage"]["userInputMessage"]["userInputMessageContext"]
                .get("toolResults")
                .is_none()
        );
        assert_eq!(
            built.repairs,
            [
                "dedupe_tool_uses",
                "orphan_tool_results_to_text",
                "empty_assistant_placeholder"
            ]
        );
    }

    /// Rule 7: placeholders where content must not be empty.
    #[test]
    fn rule7_empty_content_placeholders() {
        let built = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "tools": [run_tool()],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lGOD=="}}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "run", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": ""}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "b", "name": "run", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "b", "content": [], "is_error": true}]}
            ]
        }));
        assert_eq!(
            state(&built),
            json!({
                "conversationId": "conv-1",
                "history": [
                    {"userInputMessage": {"content": "Continue", "origin": "CLI", "images": [{"format": "gif", "source": {"bytes": "R0lGOD=="}}]}},
                    {"assistantResponseMessage": {"content": " ", "toolUses": [use_("a", "run", json!({}))]}},
                    {"userInputMessage": {"content": "", "origin": "CLI", "userInputMessageContext": {"toolResults": [ok("a", "Command executed successfully")]}}},
                    {"assistantResponseMessage": {"content": " ", "toolUses": [use_("b", "run", json!({}))]}}
                ],
                "currentMessage": {"userInputMessage": {
                    "content": "",
                    "origin": "CLI",
                    "modelId": "claude-sonnet-4.5",
                    "userInputMessageContext": {
                        "toolResults": [err("b", "Tool use was cancelled by the user")],
                        "tools": [run_spec()]
                    }
                }},
                "chatTriggerType": "MANUAL"
            })
        );
        assert_eq!(
            built.repairs,
            [
                "empty_tool_result_placeholder",
                "empty_user_placeholder",
                "empty_assistant_placeholder"
            ]
        );
    }

    /// Rule 8: server tools filtered (with their history uses), descriptions, schemas, names.
    #[test]
    fn rule8_tool_definitions() {
        let long_name = "mcp__plugin_claude-code-home_playwright__browser_take_screenshot_of_page";
        let short = upstream_name(long_name);
        let built = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "tools": [
                {"name": "web_search", "type": "web_search_20250305", "max_uses": 5},
                {"name": "websearch", "description": "x", "input_schema": {"type": "object", "properties": {}}},
                {"name": "WebSearch", "description": "Search the web", "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}},
                {"name": "nodesc", "input_schema": {"type": "object", "properties": {}}},
                {"name": "blank", "description": "  ", "input_schema": null},
                {"name": "long", "description": "d".repeat(10_001), "input_schema": {"type": "object", "properties": {}}},
                {"name": long_name, "description": "MCP", "input_schema": {"properties": null, "required": null}},
                {"name": "nested", "description": "N", "input_schema": {
                    "type": "object",
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "properties": {
                        "opts": {"type": "object", "properties": null, "required": null},
                        "list": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": 7}}, "required": ["x", 3]}},
                        "maybe": {"type": ["string", "null"]},
                        "any": {"anyOf": [{"type": "object", "properties": null}, {"type": "string"}]}
                    },
                    "required": "opts",
                    "additionalProperties": false
                }},
                {"name": "NESTED", "description": "duplicate", "input_schema": {"type": "object", "properties": {}}}
            ],
            "messages": [
                {"role": "user", "content": "find"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Searching."},
                    {"type": "tool_use", "id": "ws1", "name": "web_search", "input": {"query": "rust"}}
                ]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "ws1", "content": "r1"}]}
            ]
        }));
        let long_description = format!(
            "{}{}",
            "d".repeat(MAX_TOOL_DESCRIPTION - DESCRIPTION_MARKER.chars().count()),
            DESCRIPTION_MARKER
        );
        assert_eq!(long_description.chars().count(), 10_000);
        assert_eq!(
            state(&built),
            json!({
                "conversationId": "conv-1",
                "history": [user("find"), assistant("Searching.")],
                "currentMessage": {"userInputMessage": {
                    "content": "[Tool result for ws1]\nr1",
                    "origin": "CLI",
                    "modelId": "claude-sonnet-4.5",
                    "userInputMessageContext": {"tools": [
                        {"toolSpecification": {"name": "WebSearch", "description": "Search the web", "inputSchema": {"json": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}},
                        {"toolSpecification": {"name": "nodesc", "description": "nodesc", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
                        {"toolSpecification": {"name": "blank", "description": "blank", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
                        {"toolSpecification": {"name": "long", "description": long_description, "inputSchema": {"json": {"type": "object", "properties": {}}}}},
                        {"toolSpecification": {"name": short, "description": "MCP", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
                        {"toolSpecification": {"name": "nested", "description": "N", "inputSchema": {"json": {
                            "type": "object",
                            "$schema": "http://json-schema.org/draft-07/schema#",
                            "properties": {
                                "opts": {"type": "object", "properties": {}},
                                "list": {"type": "array", "items": {"type": "object", "properties": {"x": {}}, "required": ["x"]}},
                                "maybe": {"type": ["string", "null"]},
                                "any": {"anyOf": [{"type": "object", "properties": {}}, {"type": "string"}]}
                            },
                            "additionalProperties": false
                        }}}}
                    ]}
                }},
                "chatTriggerType": "MANUAL"
            })
        );
        assert_eq!(
            built.repairs,
            [
                "filter_server_tools",
                "orphan_tool_results_to_text",
                "tool_description_from_name",
                "fix_tool_schema",
                "truncate_tool_description",
                "shorten_tool_names",
                "dedupe_tool_specs"
            ]
        );
        assert_eq!(built.tool_names.client_name(&short), long_name);
    }

    /// Rule 8: valid schemas are left exactly as they are.
    #[test]
    fn rule8_valid_schema_is_untouched() {
        let schema = json!({
            "type": "object",
            "properties": {"a": {"type": "array", "items": {"type": "string"}}, "b": {"type": ["number", "null"]}},
            "required": ["a"],
            "additionalProperties": false,
            "$schema": "http://json-schema.org/draft-07/schema#"
        });
        assert_eq!(fix_tool_schema(Some(&schema)), (schema.clone(), false));
        assert_eq!(
            fix_tool_schema(None),
            (json!({"type": "object", "properties": {}}), true)
        );
        assert_eq!(
            fix_tool_schema(Some(&json!("nope"))),
            (json!({"type": "object", "properties": {}}), true)
        );
    }

    /// Rule 9: tools used in history but not defined get placeholder specs.
    #[test]
    fn rule9_history_tool_placeholders() {
        let long_name =
            "mcp__plugin_claude-code-home_playwright__browser_navigate_back_to_previous_page";
        let short = upstream_name(long_name);
        let built = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "tools": [{"name": "read", "description": "Read a file", "input_schema": {"type": "object", "properties": {}}}],
            "messages": [
                {"role": "user", "content": "do"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "a", "name": "Bash", "input": {"command": "ls"}},
                    {"type": "tool_use", "id": "b", "name": "Read", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "a", "content": "out"},
                    {"type": "tool_result", "tool_use_id": "b", "content": "text"}
                ]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "c", "name": long_name, "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c", "content": "ok"}]}
            ]
        }));
        let st = state(&built);
        assert_eq!(
            st["currentMessage"]["userInputMessage"]["userInputMessageContext"]["tools"],
            json!([
                {"toolSpecification": {"name": "read", "description": "Read a file", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
                {"toolSpecification": {"name": "Bash", "description": "Tool used in conversation history", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
                {"toolSpecification": {"name": short, "description": "Tool used in conversation history", "inputSchema": {"json": {"type": "object", "properties": {}}}}}
            ])
        );
        assert_eq!(
            st["history"][3]["assistantResponseMessage"]["toolUses"][0]["name"],
            json!(short)
        );
        assert_eq!(built.tool_names.client_name(&short), long_name);
        assert_eq!(
            built.repairs,
            ["empty_assistant_placeholder", "history_tool_placeholders"]
        );
    }

    /// Rule 10: tool inputs become objects without `""` keys.
    #[test]
    fn rule10_tool_input_is_an_object() {
        let built = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "tools": [run_tool()],
            "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "five"},
                    {"type": "tool_use", "id": "c1", "name": "run", "input": "{\"cmd\":\"ls\",\"\":1}"},
                    {"type": "tool_use", "id": "c2", "name": "run", "input": [1, 2]},
                    {"type": "tool_use", "id": "c3", "name": "run", "input": "not json"},
                    {"type": "tool_use", "id": "c4", "name": "run", "input": {"": "x", "cmd": "pwd"}},
                    {"type": "tool_use", "id": "c5", "name": "run"}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "c1", "content": "1"},
                    {"type": "tool_result", "tool_use_id": "c2", "content": "2"},
                    {"type": "tool_result", "tool_use_id": "c3", "content": "3"},
                    {"type": "tool_result", "tool_use_id": "c4", "content": "4"},
                    {"type": "tool_result", "tool_use_id": "c5", "content": "5"}
                ]}
            ]
        }));
        assert_eq!(
            state(&built)["history"][1],
            json!({"assistantResponseMessage": {"content": "five", "toolUses": [
                use_("c1", "run", json!({"cmd": "ls"})),
                use_("c2", "run", json!({})),
                use_("c3", "run", json!({})),
                use_("c4", "run", json!({"cmd": "pwd"})),
                use_("c5", "run", json!({}))
            ]}})
        );
        assert_eq!(built.repairs, ["tool_input_to_object"]);
    }

    /// Rule 11: supported images pass, others become notes, tool-result images move to the message.
    #[test]
    fn rule11_images() {
        let big = "A".repeat(14 * 1024 * 1024 + 8); // 10.5 MiB decoded
        let built = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "tools": [run_tool()],
            "messages": [
                {"role": "user", "content": "shoot"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "s", "name": "run", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "s", "content": [
                        {"type": "text", "text": "saved"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}}
                    ]},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "Qk0="}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                    {"type": "image", "source": {"type": "url", "url": "data:image/webp;base64,UklGRg=="}},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": big}},
                    {"type": "text", "text": "compare"}
                ]}
            ]
        }));
        assert_eq!(
            state(&built)["currentMessage"],
            json!({"userInputMessage": {
                "content": "[image omitted: unsupported format image/bmp]\n\n[image omitted: URL images are not supported (https://example.com/cat.png)]\n\n[image omitted: larger than 10 MiB]\n\ncompare",
                "origin": "CLI",
                "modelId": "claude-sonnet-4.5",
                "images": [
                    {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}},
                    {"format": "webp", "source": {"bytes": "UklGRg=="}}
                ],
                "userInputMessageContext": {
                    "toolResults": [ok("s", "saved")],
                    "tools": [run_spec()]
                }
            }})
        );
        assert_eq!(
            built.repairs,
            [
                "tool_result_images_to_message",
                "drop_unsupported_images",
                "drop_oversized_images",
                "empty_assistant_placeholder"
            ]
        );
    }

    /// Rule 11: at most 10 images, the most recent kept.
    #[test]
    fn rule11_image_count_limit() {
        let images = |prefix: &str| -> Vec<Value> {
            (0..6)
                .map(|i| json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": format!("{prefix}{i}")}}))
                .collect()
        };
        let png = |data: String| json!({"format": "png", "source": {"bytes": data}});
        let mut first = images("old");
        first.push(json!({"type": "text", "text": "six old"}));
        let mut second = images("new");
        second.push(json!({"type": "text", "text": "six new"}));
        let built = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "messages": [
                {"role": "user", "content": first},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": second}
            ]
        }));
        let st = state(&built);
        assert_eq!(
            st["history"][0],
            json!({"userInputMessage": {
                "content": "six old\n\n[2 image(s) omitted: only the 10 most recent images are sent]",
                "origin": "CLI",
                "images": (2..6).map(|i| png(format!("old{i}"))).collect::<Vec<_>>()
            }})
        );
        assert_eq!(
            st["currentMessage"]["userInputMessage"]["images"],
            json!((0..6).map(|i| png(format!("new{i}"))).collect::<Vec<_>>())
        );
        assert_eq!(built.repairs, ["limit_image_count"]);
    }

    fn thinking_pair(text: &str) -> Value {
        json!([user(text), assistant("I will follow these instructions.")])
    }

    /// Rule 12: thinking tags from the request or the model name; history thinking as text.
    #[test]
    fn rule12_thinking() {
        let hi = json!([{"role": "user", "content": "hi"}]);
        let tags = |budget: u64| {
            format!("<thinking_mode>enabled</thinking_mode><max_thinking_length>{budget}</max_thinking_length>")
        };
        let cases = [
            (
                json!({"type": "enabled", "budget_tokens": 31999}),
                "claude-sonnet-4-5",
                tags(24576),
            ),
            (
                json!({"type": "enabled", "budget_tokens": 500}),
                "claude-sonnet-4-5",
                tags(1024),
            ),
            (
                json!({"type": "enabled", "budget_tokens": 8000}),
                "claude-sonnet-4-5",
                tags(8000),
            ),
            (json!({"type": "enabled"}), "claude-sonnet-4-5", tags(20000)),
            (
                json!({"type": "disabled"}),
                "claude-sonnet-4-5-thinking",
                tags(20000),
            ),
            (
                json!({"type": "adaptive", "display": "omitted"}),
                "claude-sonnet-4-5",
                "<thinking_mode>adaptive</thinking_mode><thinking_effort>high</thinking_effort>"
                    .to_owned(),
            ),
        ];
        for (thinking, model, want) in cases {
            let built = build_ok(json!({"model": model, "thinking": thinking, "messages": hi}));
            assert!(built.thinking);
            assert_eq!(built.upstream_model, "claude-sonnet-4.5");
            assert_eq!(state(&built)["history"], thinking_pair(&want), "{thinking}");
            assert_eq!(built.repairs, ["thinking_tags", "system_prompt_pair"]);
        }

        let built = build_ok(
            json!({"model": "claude-sonnet-4-5", "thinking": {"type": "disabled"}, "messages": hi}),
        );
        assert!(!built.thinking);
        assert!(state(&built).get("history").is_none());

        // Tags go first in existing system text; earlier thinking is re-sent as text.
        let built = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "system": "Be terse.",
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [
                {"role": "user", "content": "2+2?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Simple sum.", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "abc"},
                    {"type": "thinking", "thinking": "", "signature": "omitted"},
                    {"type": "text", "text": "4"}
                ]},
                {"role": "user", "content": "3+3?"}
            ]
        }));
        assert_eq!(
            state(&built)["history"],
            json!([
                user(&format!("{}\n\nBe terse.", tags(2048))),
                assistant("I will follow these instructions."),
                user("2+2?"),
                assistant("<thinking>Simple sum.</thinking>\n\n4")
            ])
        );
        assert_eq!(
            built.repairs,
            [
                "history_thinking_as_text",
                "drop_redacted_thinking",
                "thinking_tags",
                "system_prompt_pair"
            ]
        );
    }

    /// Rule 13: model id and origin on the current message, origin on history users, MANUAL,
    /// a fresh conversation id when none is given.
    #[test]
    fn rule13_envelope() {
        let models = ModelMap::default();
        let opts = BuildOptions {
            origin: "KIRO_CLI",
            models: &models,
            conversation_id: None,
        };
        let req = request(json!({
            "model": "claude-opus-4-5-20251101",
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"}
            ]
        }));
        let built = build(&req, &opts).unwrap();
        check_history_rules(&built.request).unwrap();
        let v = serde_json::to_value(&built.request).unwrap();
        let id = v["conversationState"]["conversationId"].as_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
        assert_eq!(
            v,
            json!({"conversationState": {
                "conversationId": id,
                "history": [
                    {"userInputMessage": {"content": "a", "origin": "KIRO_CLI"}},
                    assistant("b")
                ],
                "currentMessage": {"userInputMessage": {"content": "c", "origin": "KIRO_CLI", "modelId": "claude-opus-4.5"}},
                "chatTriggerType": "MANUAL"
            }})
        );
        assert_eq!(built.upstream_model, "claude-opus-4.5");
        let again = build(&req, &opts).unwrap();
        assert_ne!(
            again.request.conversation_state.conversation_id,
            built.request.conversation_state.conversation_id
        );
    }

    /// Rule 14: oversized user content and tool results keep head and tail.
    #[test]
    fn rule14_size_limits() {
        let text = format!("{}{}", "h".repeat(400_000), "t".repeat(300_000));
        let result = format!("{}{}", "H".repeat(500_000), "T".repeat(400_000));
        let built = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "tools": [run_tool()],
            "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "run", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "a", "content": result},
                    {"type": "text", "text": text}
                ]}
            ]
        }));
        let cur = &built
            .request
            .conversation_state
            .current_message
            .user_input_message;
        let content = &cur.content;
        // 599,965 kept characters + a 35-character marker.
        assert_eq!(content.chars().count(), MAX_USER_CONTENT);
        assert!(content.starts_with("hhhh") && content.ends_with("tttt"));
        assert!(content.contains("h\n\n[… 100035 characters omitted …]\n\nt"));
        let ToolResultContentBlock::Text(r) = &cur
            .user_input_message_context
            .as_ref()
            .unwrap()
            .tool_results[0]
            .content[0]
        else {
            panic!("text result");
        };
        assert!(r.chars().count() <= MAX_TOOL_RESULT);
        assert!(r.starts_with("HHHH") && r.ends_with("TTTT"));
        assert!(r.contains("characters omitted"));
        assert_eq!(
            built.repairs,
            [
                "empty_assistant_placeholder",
                "truncate_user_content",
                "truncate_tool_result"
            ]
        );
        assert_eq!(head_and_tail("short", 10), None);
        assert_eq!(head_and_tail("ééééé", 5), None);
    }

    fn fixture(name: &str) -> MessagesRequest {
        let path = format!(
            "{}/tests/fixtures/claude/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn build_fixture(name: &str) -> Built {
        let models = ModelMap::default();
        let opts = BuildOptions {
            origin: "CLI",
            models: &models,
            conversation_id: Some("conv-1".to_owned()),
        };
        let built = build(&fixture(name), &opts).unwrap();
        if let Err(e) = check_history_rules(&built.request) {
            panic!("{name}: {e}");
        }
        built
    }

    fn tool_spec_names(built: &Built) -> Vec<String> {
        built
            .request
            .conversation_state
            .current_message
            .user_input_message
            .user_input_message_context
            .as_ref()
            .map(|c| {
                c.tools
                    .iter()
                    .filter_map(|t| match t {
                        Tool::ToolSpecification(s) => Some(s.name.clone()),
                        Tool::CachePoint(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// (a) Claude Code with `--model claude-sonnet-4-5`: 23 tools with long MCP names, system
    /// as three cached blocks, thinking enabled with budget 31999.
    #[test]
    fn e2e_sonnet_with_many_tools() {
        let req = fixture("a_sonnet_many_tools");
        let built = build_fixture("a_sonnet_many_tools");
        assert_eq!(built.upstream_model, "claude-sonnet-4.5");
        assert!(built.thinking);
        let names = tool_spec_names(&built);
        assert_eq!(names.len(), req.tools.len());
        for def in &req.tools {
            let up = upstream_name(&def.name);
            assert!(names.contains(&up), "{}", def.name);
            assert_eq!(built.tool_names.client_name(&up), def.name);
        }
        let st = &built.request.conversation_state;
        let ChatMessage::UserInputMessage(sys) = &st.history[0] else {
            panic!("system pair");
        };
        assert!(sys.content.starts_with(
            "<thinking_mode>enabled</thinking_mode><max_thinking_length>24576</max_thinking_length>\n\nYou are Claude Code"
        ));
        assert!(sys.content.contains("<env>"));
        let ChatMessage::AssistantResponseMessage(first) = &st.history[3] else {
            panic!("assistant");
        };
        assert!(first
            .content
            .starts_with("<thinking>The user wants a screenshot."));
        assert_eq!(
            first.tool_uses[0].name,
            upstream_name("mcp__plugin_claude-code-home_playwright__browser_take_screenshot")
        );
        let ChatMessage::UserInputMessage(shot) = &st.history[4] else {
            panic!("user");
        };
        assert_eq!(shot.images.len(), 1);
        let results = user_results(&st.current_message.user_input_message);
        let ids: Vec<&str> = results.iter().map(|r| r.tool_use_id.as_str()).collect();
        assert_eq!(ids, ["toolu_01B2", "toolu_01B3"]);
        assert!(built.repairs.contains(&"fix_tool_schema"));
        assert!(built.repairs.contains(&"shorten_tool_names"));
        assert!(built.repairs.contains(&"tool_description_from_name"));
        assert!(built.repairs.contains(&"order_tool_results"));
    }

    /// (b) After compaction: tool turns in history, `tools: []`.
    #[test]
    fn e2e_compacted_history_without_tools() {
        let built = build_fixture("b_compacted_no_tools");
        let names = tool_spec_names(&built);
        assert_eq!(
            names,
            [
                "Read".to_owned(),
                "Edit".to_owned(),
                upstream_name("mcp__plugin_claude-code-home_playwright__browser_navigate_back_to_previous_page"),
                "Bash".to_owned()
            ]
        );
        let cur = &built
            .request
            .conversation_state
            .current_message
            .user_input_message;
        assert_eq!(
            cur.content,
            "Your task is to create a detailed summary of the conversation so far."
        );
        assert_eq!(user_results(cur)[0].tool_use_id, "toolu_01C4");
        assert!(built.repairs.contains(&"history_tool_placeholders"));
        assert!(built.repairs.contains(&"merge_consecutive_turns"));
        assert!(built.repairs.contains(&"tool_input_to_object"));
    }

    /// (c) Consecutive assistant turns left by a dropped stream.
    #[test]
    fn e2e_consecutive_assistants() {
        let built = build_fixture("c_consecutive_assistants");
        let st = &built.request.conversation_state;
        assert_eq!(st.history.len(), 6);
        let ChatMessage::AssistantResponseMessage(a) = &st.history[1] else {
            panic!("assistant");
        };
        assert_eq!(
            a.content,
            "Let me look for Rust fil\n\nLet me look for Rust files."
        );
        assert_eq!(a.tool_uses.len(), 1);
        let ChatMessage::AssistantResponseMessage(last) = &st.history[5] else {
            panic!("assistant");
        };
        assert_eq!(
            last.content,
            "`src/main.rs` holds an empty `main`.\n\nAnything else?"
        );
        assert_eq!(built.upstream_model, "claude-haiku-4.5");
        assert!(built.repairs.contains(&"merge_consecutive_turns"));
    }

    /// (d) Tool results next to fresh user text in one user message: both kept.
    #[test]
    fn e2e_tool_result_next_to_text() {
        let built = build_fixture("d_tool_result_with_text");
        let cur = &built
            .request
            .conversation_state
            .current_message
            .user_input_message;
        assert_eq!(cur.content, "Also, please explain why the test failed.");
        let results = user_results(cur);
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].tool_use_id, "toolu_01E1");
        assert_eq!(results[0].status, ToolResultStatus::Error);
        assert_eq!(results[1].tool_use_id, "toolu_01E2");
    }

    /// (e) Claude Code's default-model shape: `[user, system]`, adaptive thinking, unknown fields.
    #[test]
    fn e2e_default_model_adaptive() {
        let built = build_fixture("e_default_model_adaptive");
        assert_eq!(built.upstream_model, "claude-opus-4.5");
        assert!(built.thinking);
        let st = &built.request.conversation_state;
        assert_eq!(st.history.len(), 2);
        let ChatMessage::UserInputMessage(sys) = &st.history[0] else {
            panic!("system pair");
        };
        assert!(sys.content.starts_with(
            "<thinking_mode>adaptive</thinking_mode><thinking_effort>high</thinking_effort>\n\nYou are Claude Code"
        ));
        assert!(sys
            .content
            .ends_with("<system-reminder>The current date is 2026-05-01.</system-reminder>"));
        let cur = &st.current_message.user_input_message;
        assert!(cur.content.ends_with("\n\nsay hi"));
        assert_eq!(cur.model_id.as_deref(), Some("claude-opus-4.5"));
        assert_eq!(tool_spec_names(&built).len(), 12);
        assert!(built.repairs.contains(&"system_messages_to_system"));
    }

    /// The checker finds each broken rule.
    #[test]
    fn checker_rejects_broken_bodies() {
        let good = build_ok(json!({
            "model": "claude-sonnet-4-5",
            "system": "s",
            "tools": [run_tool()],
            "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "run", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": "A"}]}
            ]
        }))
        .request;
        let v = serde_json::to_value(&good).unwrap();
        let broken = |f: &dyn Fn(&mut Value)| {
            let mut v = v.clone();
            f(&mut v);
            let req: GenerateAssistantResponseRequest = serde_json::from_value(v).unwrap();
            check_history_rules(&req).unwrap_err()
        };
        let h = "/conversationState/history";
        let cur = "/conversationState/currentMessage/userInputMessage";
        let e = broken(&|v| {
            v.pointer_mut(h).unwrap().as_array_mut().unwrap().remove(1);
        });
        assert!(
            e.starts_with("history[1]: expected an assistant message"),
            "{e}"
        );
        let e = broken(&|v| {
            v.pointer_mut(h).unwrap().as_array_mut().unwrap().pop();
        });
        assert!(e.contains("must end with an assistant"), "{e}");
        let e = broken(&|v| {
            v.pointer_mut(&format!("{h}/0/userInputMessage")).unwrap()["userInputMessageContext"] =
                json!({"toolResults": [ok("x", "y")]});
        });
        assert!(e.contains("first user message"), "{e}");
        let e = broken(&|v| {
            v.pointer_mut(&format!("{cur}/userInputMessageContext/toolResults"))
                .unwrap()[0]["toolUseId"] = json!("other");
        });
        assert!(e.contains("no toolResult for toolUse"), "{e}");
        let e = broken(&|v| {
            v.pointer_mut(&format!("{cur}/userInputMessageContext/toolResults"))
                .unwrap()
                .as_array_mut()
                .unwrap()
                .push(ok("zz", "z"));
        });
        assert!(e.contains("matches no toolUse"), "{e}");
        let e = broken(&|v| {
            v.pointer_mut(&format!("{cur}/userInputMessageContext/toolResults"))
                .unwrap()
                .as_array_mut()
                .unwrap()
                .push(ok("a", "again"));
        });
        assert!(e.contains("duplicate toolResult"), "{e}");
        let e = broken(&|v| {
            v.pointer_mut(&format!("{cur}/userInputMessageContext/tools"))
                .unwrap()[0]["toolSpecification"]["name"] = json!("other");
        });
        assert!(e.contains("not in the current tools"), "{e}");
        let e = broken(&|v| {
            v.pointer_mut(&format!("{cur}/userInputMessageContext/tools"))
                .unwrap()[0]["toolSpecification"]["description"] = json!("");
        });
        assert!(e.contains("empty description"), "{e}");
        let e = broken(&|v| {
            v.pointer_mut(&format!("{cur}/userInputMessageContext/tools"))
                .unwrap()[0]["toolSpecification"]["name"] = json!("bad.name");
        });
        assert!(e.contains("invalid tool name"), "{e}");
        let e = broken(&|v| {
            v.pointer_mut(&format!("{h}/3/assistantResponseMessage/toolUses"))
                .unwrap()[0]["input"] = json!("{}");
        });
        assert!(e.contains("not an object"), "{e}");
        let e = broken(&|v| {
            v.pointer_mut(&format!("{h}/3/assistantResponseMessage"))
                .unwrap()["content"] = json!("");
        });
        assert!(e.contains("empty assistant content"), "{e}");
        let e = broken(&|v| {
            v.pointer_mut(&format!("{h}/1/assistantResponseMessage"))
                .unwrap()["toolUses"] = json!([use_("a", "run", json!({}))]);
        });
        assert!(
            e.contains("duplicate toolUseId") || e.contains("no toolResult"),
            "{e}"
        );
        let e = broken(&|v| {
            v.pointer_mut(cur).unwrap()["images"] = json!((0..11)
                .map(|_| json!({"format": "png", "source": {"bytes": "AA=="}}))
                .collect::<Vec<_>>());
        });
        assert!(e.contains("11 images"), "{e}");
    }

    /// Property tests: arbitrary requests, built from small pools of ids, names, texts and
    /// schemas so that collisions (duplicate ids, unpaired results, clashing names) are common.
    mod properties {
        use super::*;
        use crate::claude::types::System;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                Just(String::new()),
                Just("  \n".to_owned()),
                Just("hi".to_owned()),
                Just("<thinking>x</thinking>".to_owned()),
                "\\PC{0,12}",
            ]
        }

        fn id() -> impl Strategy<Value = String> {
            prop_oneof![Just("t0"), Just("t1"), Just("t2"), Just(""), Just("T0")]
                .prop_map(str::to_owned)
        }

        fn tool_name() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("run".to_owned()),
                Just("Run".to_owned()),
                Just("read.file".to_owned()),
                Just("mcp__server__do-it".to_owned()),
                Just("web_search".to_owned()),
                Just(String::new()),
                Just("9lives".to_owned()),
                Just("x".repeat(80)),
                "\\PC{0,8}",
            ]
        }

        fn json_value() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                Just(json!({})),
                Just(json!({"": 1, "a": [1, {"b": null}]})),
                Just(json!("{\"cmd\":\"ls\"}")),
                Just(json!("not json")),
                Just(json!([1, 2])),
                Just(json!(3.5)),
            ]
        }

        fn schema() -> impl Strategy<Value = Option<Value>> {
            prop_oneof![
                Just(None),
                Just(Some(
                    json!({"type": "object", "properties": {"a": {"type": "string"}}})
                )),
                Just(Some(
                    json!({"type": "array", "properties": [], "required": "a"})
                )),
                Just(Some(
                    json!({"properties": {"a": {"type": ["string", "null"], "properties": 3, "required": [1, "x"]}}})
                )),
                Just(Some(json!("schema"))),
                Just(Some(
                    json!({"type": "object", "properties": {"n": {"type": "object", "properties": {"m": {"items": {"type": 7}}}}}})
                )),
            ]
        }

        fn image_source() -> impl Strategy<Value = ClaudeImageSource> {
            let media = prop_oneof![
                Just("image/png"),
                Just("image/JPEG"),
                Just("application/pdf"),
                Just("")
            ];
            let data = prop_oneof![
                Just("iVBORw0KGgo="),
                Just("R0lGOD=="),
                Just("abc"),
                Just("a"),
                Just("%%%"),
                Just("")
            ];
            prop_oneof![
                (media, data).prop_map(|(m, d)| ClaudeImageSource::Base64 {
                    media_type: m.to_owned(),
                    data: d.to_owned()
                }),
                prop_oneof![
                    Just("https://x/y.png"),
                    Just("data:image/png;base64,iVBORw0KGgo="),
                    Just("data:text/plain,hi"),
                    Just("data:")
                ]
                .prop_map(|u| ClaudeImageSource::Url { url: u.to_owned() }),
                Just(ClaudeImageSource::Other),
            ]
        }

        fn leaf_block() -> impl Strategy<Value = ContentBlock> {
            prop_oneof![
                text().prop_map(|text| ContentBlock::Text { text }),
                image_source().prop_map(|source| ContentBlock::Image { source }),
                (text(), proptest::option::of(text())).prop_map(|(thinking, signature)| {
                    ContentBlock::Thinking {
                        thinking,
                        signature,
                    }
                }),
                text().prop_map(|data| ContentBlock::RedactedThinking { data }),
                Just(ContentBlock::Other),
            ]
        }

        fn block() -> impl Strategy<Value = ContentBlock> {
            let result_content = prop_oneof![
                Just(None),
                text().prop_map(|t| Some(ToolResultContent::Text(t))),
                proptest::collection::vec(leaf_block(), 0..3)
                    .prop_map(|b| Some(ToolResultContent::Blocks(b))),
            ];
            prop_oneof![
                3 => leaf_block(),
                2 => (id(), tool_name(), json_value()).prop_map(|(id, name, input)| ContentBlock::ToolUse { id, name, input }),
                2 => (id(), result_content, proptest::option::of(any::<bool>()))
                    .prop_map(|(tool_use_id, content, is_error)| ContentBlock::ToolResult { tool_use_id, content, is_error }),
            ]
        }

        fn message() -> impl Strategy<Value = Message> {
            let role = prop_oneof![4 => Just(Role::User), 4 => Just(Role::Assistant), 1 => Just(Role::System)];
            let content = prop_oneof![
                text().prop_map(Content::Text),
                proptest::collection::vec(block(), 0..4).prop_map(Content::Blocks),
            ];
            (role, content).prop_map(|(role, content)| Message { role, content })
        }

        fn tool_def() -> impl Strategy<Value = ToolDef> {
            let kind = prop_oneof![4 => Just(None), 1 => Just(Some("web_search_20250305".to_owned())), 1 => Just(Some("custom".to_owned()))];
            (tool_name(), proptest::option::of(text()), schema(), kind).prop_map(
                |(name, description, input_schema, kind)| ToolDef {
                    name,
                    description,
                    input_schema,
                    kind,
                },
            )
        }

        pub(crate) fn request() -> impl Strategy<Value = MessagesRequest> {
            let model = prop_oneof![
                Just("claude-sonnet-4-5"),
                Just("claude-opus-4-1-thinking"),
                Just("gpt-4o"),
                Just("claude-haiku-4.5")
            ];
            let system = prop_oneof![
                Just(None),
                text().prop_map(|t| Some(System::Text(t))),
                proptest::collection::vec(leaf_block(), 0..3).prop_map(|b| Some(System::Blocks(b))),
            ];
            let thinking = prop_oneof![
                Just(None),
                proptest::option::of(0u64..100_000).prop_map(|b| Some(ThinkingConfig {
                    kind: "enabled".into(),
                    budget_tokens: b
                })),
                Just(Some(ThinkingConfig {
                    kind: "adaptive".into(),
                    budget_tokens: None
                })),
                Just(Some(ThinkingConfig {
                    kind: "disabled".into(),
                    budget_tokens: None
                })),
            ];
            (
                model,
                proptest::collection::vec(message(), 0..10),
                system,
                proptest::collection::vec(tool_def(), 0..4),
                thinking,
            )
                .prop_map(|(model, messages, system, tools, thinking)| {
                    MessagesRequest {
                        model: model.to_owned(),
                        messages,
                        system,
                        max_tokens: Some(100),
                        stream: false,
                        tools,
                        tool_choice: None,
                        thinking,
                        metadata: None,
                        stop_sequences: None,
                        temperature: None,
                        top_p: None,
                        top_k: None,
                    }
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

            /// Never a panic; a success satisfies every history rule and is deterministic.
            #[test]
            fn arbitrary_requests_build_within_the_rules(req in request()) {
                let models = ModelMap::default();
                let opts = BuildOptions { origin: "CLI", models: &models, conversation_id: Some("c".into()) };
                match build(&req, &opts) {
                    Ok(built) => {
                        prop_assert_eq!(check_history_rules(&built.request), Ok(()));
                        let again = build(&req, &opts).unwrap();
                        prop_assert_eq!(&again.request, &built.request);
                    }
                    Err(BuildError::Invalid(message)) => prop_assert!(!message.is_empty()),
                }
            }

            /// The size rule (14) cuts on character boundaries, keeps the head and the tail, and
            /// stays within the limit whenever the limit has room for the marker. The fuzzer never
            /// reaches the real limits (600,000 characters), so they are checked here small.
            #[test]
            fn head_and_tail_keeps_both_ends_within_the_limit(
                text in "\\PC{0,120}",
                max in 0usize..120,
            ) {
                let total = text.chars().count();
                match head_and_tail(&text, max) {
                    None => prop_assert!(total <= max),
                    Some(cut) => {
                        prop_assert!(total > max);
                        let marker = format!("\n\n[… {total} characters omitted …]\n\n").chars().count();
                        if max >= marker {
                            prop_assert!(cut.chars().count() <= max, "{} > {}", cut.chars().count(), max);
                        }
                        let (head, tail) = cut.split_once("\n\n[… ").unwrap();
                        prop_assert!(text.starts_with(head));
                        let tail = tail.split_once(" characters omitted …]\n\n").unwrap().1;
                        prop_assert!(text.ends_with(tail));
                    }
                }
            }

            /// The same through the JSON a client sends, and the fuzz harness's own checks.
            #[test]
            fn arbitrary_requests_survive_the_json_round_trip(req in request()) {
                let bytes = serde_json::to_vec(&req).unwrap();
                fuzz_one(&bytes);
            }
        }
    }
}
