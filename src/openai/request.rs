//! OpenAI Chat Completions request → Claude Messages request (protocol doc §7b.1), so that both
//! front ends share one request builder and one set of repair rules (`claude::request`). Pure.
//!
//! * `system` and `developer` messages, wherever they are, become the system prompt, joined with
//!   a blank line in order; `response_format` JSON mode adds its instruction at the end of it
//!   (Amazon Q has no JSON mode, so it is asked for in the prompt).
//! * `user` content: a string, or parts: `text`; `image_url` with a `data:` URL (base64) becomes
//!   an image block. An `http(s)` image URL is a 400: the gateway does not fetch URLs for
//!   clients (a server-side fetch would let any key holder make the gateway reach any address).
//!   Other part types (`input_audio`, `file`) are a 400 naming the type.
//! * `assistant`: text (or `refusal` parts), `reasoning_content` (re-sent as earlier thinking),
//!   and `tool_calls` → `tool_use` blocks whose input is the parsed `arguments`. Arguments that
//!   are not a JSON object are a 400 naming the message; empty arguments mean `{}`.
//!   A legacy `function_call` is a tool call whose id is made up (`call_legacy_<n>`).
//! * `tool` messages → `tool_result` blocks; consecutive ones (and a `user` message right after
//!   them) are one user turn. Legacy `function` messages answer the latest unanswered legacy
//!   `function_call` of that name.
//! * `tools` (type `function` only) and legacy `functions` → tool definitions; `tool_choice` /
//!   `function_call` are mapped to Claude's `tool_choice` (accepted, not forwarded, as on
//!   `/v1/messages`).
//! * `max_completion_tokens` (or `max_tokens`), `stop`, `temperature`, `top_p` are carried over
//!   (and, like on `/v1/messages`, not forwarded: Amazon Q has no such settings). `n` other than
//!   1 is a 400. `user` is kept as `metadata.user_id`.
//! * A `-thinking` model suffix (handled by the model map) or `reasoning_effort` other than
//!   `none` turns thinking on, with a budget by effort.

use serde_json::{json, Map, Value};

use super::types::{ChatMessage, ChatRequest, ContentPart, MessageContent, ResponseFormat};
use crate::claude::request::BuildError;
use crate::claude::types::{
    Content, ContentBlock, ImageSource, Message, MessagesRequest, Role, System, ThinkingConfig,
    ToolDef, ToolResultContent,
};

/// The instruction added to the system prompt for `response_format: json_object`.
pub const JSON_OBJECT_INSTRUCTION: &str =
    "Respond with one valid JSON object and nothing else: no prose, no Markdown code fences.";

/// What the OpenAI front end needs besides the Claude request.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    pub claude: MessagesRequest,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
}

fn invalid(msg: impl Into<String>) -> BuildError {
    BuildError::Invalid(msg.into())
}

/// Converts the request; see the module doc for the mapping.
pub fn convert(req: ChatRequest) -> Result<Converted, BuildError> {
    if let Some(n) = req.n {
        if n != 1 {
            return Err(invalid(format!(
                "n: only n = 1 is supported (Amazon Q returns one answer per request), got {n}"
            )));
        }
    }
    if req.messages.is_empty() {
        return Err(invalid("messages: at least one message is required"));
    }
    let mut system: Vec<String> = Vec::new();
    let mut messages: Vec<Message> = Vec::new();
    let mut legacy_calls: Vec<(String, String, bool)> = Vec::new(); // (id, name, answered)
    for (i, m) in req.messages.into_iter().enumerate() {
        let at = format!("messages[{i}]");
        match m.role.as_str() {
            "system" | "developer" => {
                let text = plain_text(m.content.as_ref(), &at)?;
                if !text.trim().is_empty() {
                    system.push(text);
                }
            }
            "user" => {
                let blocks = user_blocks(m.content, &at)?;
                push_blocks(&mut messages, Role::User, blocks);
            }
            "assistant" => {
                let blocks = assistant_blocks(m, &at, &mut legacy_calls)?;
                push_blocks(&mut messages, Role::Assistant, blocks);
            }
            "tool" => {
                let id = m
                    .tool_call_id
                    .filter(|id| !id.trim().is_empty())
                    .ok_or_else(|| invalid(format!("{at}.tool_call_id: required on a tool message")))?;
                let block = tool_result(id, m.content, &at)?;
                push_blocks(&mut messages, Role::User, vec![block]);
            }
            "function" => {
                let name = m
                    .name
                    .clone()
                    .ok_or_else(|| invalid(format!("{at}.name: required on a function message")))?;
                let id = legacy_calls
                    .iter_mut()
                    .rev()
                    .find(|(_, n, answered)| *n == name && !answered)
                    .map(|(id, _, answered)| {
                        *answered = true;
                        id.clone()
                    })
                    .ok_or_else(|| {
                        invalid(format!(
                            "{at}: a function message for {name:?} without an earlier assistant function_call of that name"
                        ))
                    })?;
                let block = tool_result(id, m.content, &at)?;
                push_blocks(&mut messages, Role::User, vec![block]);
            }
            other => {
                return Err(invalid(format!(
                    "{at}.role: unknown role {other:?} (expected system, developer, user, assistant or tool)"
                )))
            }
        }
    }
    if let Some(format) = &req.response_format {
        if let Some(instruction) = json_instruction(format)? {
            system.push(instruction);
        }
    }

    let mut tools = Vec::new();
    for (i, t) in req.tools.into_iter().enumerate() {
        if t.kind != "function" {
            return Err(invalid(format!(
                "tools[{i}].type: only \"function\" tools are supported, got {:?}",
                t.kind
            )));
        }
        let f = t
            .function
            .ok_or_else(|| invalid(format!("tools[{i}].function: required")))?;
        tools.push(tool_def(f));
    }
    tools.extend(req.functions.into_iter().map(tool_def));

    let tool_choice = match req.tool_choice.or(req.function_call) {
        None => None,
        Some(choice) => Some(map_tool_choice(&choice)?),
    };
    let thinking = match req.reasoning_effort.as_deref().map(str::trim) {
        None | Some("") | Some("none") => None,
        Some(effort) => Some(ThinkingConfig {
            kind: "enabled".to_owned(),
            budget_tokens: Some(match effort {
                "minimal" => 1_024,
                "low" => 4_096,
                "medium" => 12_288,
                "high" | "xhigh" => 24_576,
                other => {
                    return Err(invalid(format!(
                    "reasoning_effort: expected none, minimal, low, medium or high, got {other:?}"
                )))
                }
            }),
        }),
    };

    let claude = MessagesRequest {
        model: req.model,
        messages,
        system: (!system.is_empty()).then(|| System::Text(system.join("\n\n"))),
        max_tokens: req.max_completion_tokens.or(req.max_tokens),
        stream: req.stream,
        tools,
        tool_choice,
        thinking,
        metadata: req.user.map(|u| json!({ "user_id": u })),
        stop_sequences: req.stop.map(|s| s.into_vec()),
        temperature: req.temperature,
        top_p: req.top_p,
        top_k: None,
    };
    Ok(Converted {
        claude,
        include_usage: req.stream_options.is_some_and(|o| o.include_usage),
    })
}

/// Appends blocks to the last message when it has the same role (consecutive tool messages and
/// the user message after them are one turn), else starts a message.
fn push_blocks(messages: &mut Vec<Message>, role: Role, blocks: Vec<ContentBlock>) {
    if let Some(last) = messages.last_mut() {
        if last.role == role {
            if let Content::Blocks(existing) = &mut last.content {
                existing.extend(blocks);
                return;
            }
        }
    }
    messages.push(Message {
        role,
        content: Content::Blocks(blocks),
    });
}

/// Text of a system/developer/tool message: a string or text parts joined with a blank line.
fn plain_text(content: Option<&MessageContent>, at: &str) -> Result<String, BuildError> {
    Ok(match content {
        None => String::new(),
        Some(MessageContent::Text(t)) => t.clone(),
        Some(MessageContent::Parts(parts)) => {
            let mut texts = Vec::new();
            for (j, p) in parts.iter().enumerate() {
                match p {
                    ContentPart::Text { text } => texts.push(text.as_str()),
                    other => {
                        return Err(invalid(format!(
                            "{at}.content[{j}]: only text parts are allowed here, got {}",
                            part_type(other)
                        )))
                    }
                }
            }
            texts.join("\n\n")
        }
    })
}

fn part_type(p: &ContentPart) -> String {
    match p {
        ContentPart::Text { .. } => "text".to_owned(),
        ContentPart::ImageUrl { .. } => "image_url".to_owned(),
        ContentPart::Refusal { .. } => "refusal".to_owned(),
        ContentPart::Other(v) => match v.get("type").and_then(Value::as_str) {
            Some(t) => format!("{t:?}"),
            None => "a part without a type".to_owned(),
        },
    }
}

fn user_blocks(content: Option<MessageContent>, at: &str) -> Result<Vec<ContentBlock>, BuildError> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(text)) => Ok(vec![ContentBlock::Text { text }]),
        Some(MessageContent::Parts(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, p) in parts.into_iter().enumerate() {
                blocks.push(match p {
                    ContentPart::Text { text } => ContentBlock::Text { text },
                    ContentPart::ImageUrl { image_url } => {
                        image_block(image_url.url(), &format!("{at}.content[{j}].image_url.url"))?
                    }
                    other => {
                        return Err(invalid(format!(
                            "{at}.content[{j}]: unsupported content part type {} (text and image_url are supported)",
                            part_type(&other)
                        )))
                    }
                });
            }
            Ok(blocks)
        }
    }
}

/// A `data:image/…;base64,…` URL → an image block.
fn image_block(url: &str, at: &str) -> Result<ContentBlock, BuildError> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https:/") {
        return Err(invalid(format!(
            "{at}: image URLs are not fetched; send the image inline as a data URL (data:image/png;base64,...)"
        )));
    }
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(invalid(format!(
            "{at}: expected a data URL (data:image/png;base64,...)"
        )));
    };
    let Some((meta, data)) = rest.split_once(',') else {
        return Err(invalid(format!("{at}: a data URL without a comma")));
    };
    let Some(media_type) = meta.strip_suffix(";base64") else {
        return Err(invalid(format!(
            "{at}: the data URL must be base64-encoded"
        )));
    };
    Ok(ContentBlock::Image {
        source: ImageSource::Base64 {
            media_type: media_type.trim().to_ascii_lowercase(),
            data: data.to_owned(),
        },
    })
}

fn assistant_blocks(
    m: ChatMessage,
    at: &str,
    legacy_calls: &mut Vec<(String, String, bool)>,
) -> Result<Vec<ContentBlock>, BuildError> {
    let mut blocks = Vec::new();
    if let Some(reasoning) = m.reasoning_content.filter(|r| !r.trim().is_empty()) {
        blocks.push(ContentBlock::Thinking {
            thinking: reasoning,
            signature: None,
        });
    }
    match m.content {
        None => {}
        Some(MessageContent::Text(text)) => blocks.push(ContentBlock::Text { text }),
        Some(MessageContent::Parts(parts)) => {
            for (j, p) in parts.into_iter().enumerate() {
                match p {
                    ContentPart::Text { text } => blocks.push(ContentBlock::Text { text }),
                    ContentPart::Refusal { refusal } => {
                        blocks.push(ContentBlock::Text { text: refusal })
                    }
                    other => {
                        return Err(invalid(format!(
                            "{at}.content[{j}]: unsupported content part type {} in an assistant message",
                            part_type(&other)
                        )))
                    }
                }
            }
        }
    }
    for (k, call) in m.tool_calls.into_iter().enumerate() {
        let where_ = format!("{at}.tool_calls[{k}]");
        if let Some(kind) = call.kind.as_deref() {
            if kind != "function" {
                return Err(invalid(format!(
                    "{where_}.type: only \"function\" tool calls are supported, got {kind:?}"
                )));
            }
        }
        let id = call
            .id
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| invalid(format!("{where_}.id: required")))?;
        let input = arguments(
            call.function.arguments,
            &format!("{where_}.function.arguments"),
        )?;
        blocks.push(ContentBlock::ToolUse {
            id,
            name: call.function.name,
            input,
        });
    }
    if let Some(call) = m.function_call {
        let id = format!("call_legacy_{}", legacy_calls.len());
        let input = arguments(call.arguments, &format!("{at}.function_call.arguments"))?;
        legacy_calls.push((id.clone(), call.name.clone(), false));
        blocks.push(ContentBlock::ToolUse {
            id,
            name: call.name,
            input,
        });
    }
    Ok(blocks)
}

/// `function.arguments`: a JSON string holding an object (empty means `{}`); an object given
/// directly is accepted too.
fn arguments(raw: Option<Value>, at: &str) -> Result<Value, BuildError> {
    let parsed = match raw {
        None | Some(Value::Null) => return Ok(Value::Object(Map::new())),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(Value::Object(Map::new())),
        Some(Value::String(s)) => serde_json::from_str::<Value>(&s)
            .map_err(|e| invalid(format!("{at}: not valid JSON ({e})")))?,
        Some(other) => other,
    };
    if parsed.is_object() {
        Ok(parsed)
    } else {
        Err(invalid(format!("{at}: must be a JSON object")))
    }
}

fn tool_result(
    id: String,
    content: Option<MessageContent>,
    at: &str,
) -> Result<ContentBlock, BuildError> {
    let text = plain_text(content.as_ref(), at)?;
    Ok(ContentBlock::ToolResult {
        tool_use_id: id,
        content: Some(ToolResultContent::Text(text)),
        is_error: None,
    })
}

fn tool_def(f: super::types::FunctionDef) -> ToolDef {
    ToolDef {
        name: f.name,
        description: f.description,
        input_schema: f.parameters,
        kind: None,
    }
}

/// `tool_choice` / legacy `function_call` → Claude's `tool_choice`.
fn map_tool_choice(choice: &Value) -> Result<Value, BuildError> {
    let name = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_owned);
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(json!({"type": "auto"})),
            "none" => Ok(json!({"type": "none"})),
            "required" => Ok(json!({"type": "any"})),
            other => Err(invalid(format!(
                "tool_choice: expected auto, none, required or a function, got {other:?}"
            ))),
        },
        Value::Object(o) => {
            let name = o
                .get("function")
                .and_then(name)
                .or_else(|| name(choice))
                .ok_or_else(|| invalid("tool_choice: a function choice needs function.name"))?;
            Ok(json!({"type": "tool", "name": name}))
        }
        _ => Err(invalid("tool_choice: expected a string or an object")),
    }
}

/// The prompt instruction for JSON mode, if any.
fn json_instruction(format: &ResponseFormat) -> Result<Option<String>, BuildError> {
    match format.kind.as_str() {
        "text" => Ok(None),
        "json_object" => Ok(Some(JSON_OBJECT_INSTRUCTION.to_owned())),
        "json_schema" => {
            let schema = format
                .json_schema
                .as_ref()
                .and_then(|s| s.schema.as_ref())
                .ok_or_else(|| invalid("response_format.json_schema.schema: required"))?;
            Ok(Some(format!(
                "Respond with one valid JSON value that conforms to this JSON Schema, and nothing else: no prose, no Markdown code fences.\n{schema}"
            )))
        }
        other => Err(invalid(format!(
            "response_format.type: expected text, json_object or json_schema, got {other:?}"
        ))),
    }
}

/// Checks one arbitrary input end to end, panicking on any broken promise: used by the
/// `openai_request` fuzz target (`fuzz/`) and by the test that replays its committed corpus.
/// `data` is read as a JSON [`ChatRequest`]; [`convert`] must not panic, and whenever it succeeds
/// the Claude request goes through [`crate::claude::request::check_build`].
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<ChatRequest>(data) {
        if let Ok(converted) = convert(req) {
            crate::claude::request::check_build(&converted.claude);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claude::request::{build, check_history_rules, BuildOptions};
    use crate::models::ModelMap;

    fn convert_json(v: Value) -> Result<Converted, BuildError> {
        convert(serde_json::from_value(v).expect("valid OpenAI request"))
    }

    fn claude(v: Value) -> MessagesRequest {
        convert_json(v).unwrap().claude
    }

    fn err(v: Value) -> String {
        convert_json(v).unwrap_err().to_string()
    }

    fn body_of(req: &MessagesRequest) -> Value {
        let models = ModelMap::default();
        let opts = BuildOptions {
            origin: "CLI",
            models: &models,
            conversation_id: Some("conv-1".into()),
        };
        let built = build(req, &opts).unwrap();
        check_history_rules(&built.request).unwrap();
        serde_json::to_value(&built.request).unwrap()
    }

    /// The two front ends share the road: a multi-turn tool conversation in OpenAI form gives the
    /// same Amazon Q body as the same conversation in Claude form.
    #[test]
    fn openai_and_claude_forms_build_the_same_amazon_q_body() {
        let openai = claude(json!({
            "model": "claude-sonnet-4-5",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
                {"role": "user", "content": "Weather in Paris and Oslo?"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "4C"}]},
                {"role": "assistant", "content": "Paris 18C, Oslo 4C."},
                {"role": "user", "content": [
                    {"type": "text", "text": "And this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
                ]}
            ],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather by city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
        }));
        let claude_form: MessagesRequest = serde_json::from_value(json!({
            "model": "claude-sonnet-4-5",
            "system": "You are terse.\n\nUse tools.",
            "messages": [
                {"role": "user", "content": "Weather in Paris and Oslo?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Oslo"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "4C"}
                ]},
                {"role": "assistant", "content": "Paris 18C, Oslo 4C."},
                {"role": "user", "content": [
                    {"type": "text", "text": "And this?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
                ]}
            ],
            "tools": [{"name": "get_weather", "description": "Weather by city", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
        }))
        .unwrap();
        let a = body_of(&openai);
        let b = body_of(&claude_form);
        assert_eq!(a, b);
        // And the body really carries the pieces.
        let history = a["conversationState"]["history"].as_array().unwrap();
        assert_eq!(
            history[0]["userInputMessage"]["content"],
            "You are terse.\n\nUse tools."
        );
        let current = &a["conversationState"]["currentMessage"]["userInputMessage"];
        assert_eq!(current["images"][0]["format"], "png");
        assert_eq!(current["images"][0]["source"]["bytes"], "iVBORw0KGgo=");
    }

    #[test]
    fn consecutive_tool_messages_and_the_next_user_message_are_one_turn() {
        let req = claude(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "f", "arguments": ""}},
                    {"id": "b", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}
                ]},
                {"role": "tool", "tool_call_id": "a", "content": "1"},
                {"role": "tool", "tool_call_id": "b", "content": "2"},
                {"role": "user", "content": "thanks"}
            ]
        }));
        assert_eq!(req.messages.len(), 3);
        assert_eq!(
            req.messages[1].content,
            Content::Blocks(vec![
                ContentBlock::ToolUse {
                    id: "a".into(),
                    name: "f".into(),
                    input: json!({})
                },
                ContentBlock::ToolUse {
                    id: "b".into(),
                    name: "f".into(),
                    input: json!({"x": 1})
                },
            ])
        );
        assert_eq!(
            req.messages[2].content,
            Content::Blocks(vec![
                ContentBlock::ToolResult {
                    tool_use_id: "a".into(),
                    content: Some(ToolResultContent::Text("1".into())),
                    is_error: None
                },
                ContentBlock::ToolResult {
                    tool_use_id: "b".into(),
                    content: Some(ToolResultContent::Text("2".into())),
                    is_error: None
                },
                ContentBlock::Text {
                    text: "thanks".into()
                },
            ])
        );
    }

    #[test]
    fn legacy_functions_and_function_call() {
        let req = claude(json!({
            "model": "m",
            "functions": [{"name": "lookup", "parameters": {"type": "object"}}],
            "function_call": {"name": "lookup"},
            "messages": [
                {"role": "user", "content": "find it"},
                {"role": "assistant", "content": null, "function_call": {"name": "lookup", "arguments": "{\"q\":\"it\"}"}},
                {"role": "function", "name": "lookup", "content": "found"}
            ]
        }));
        assert_eq!(req.tools[0].name, "lookup");
        assert_eq!(
            req.tool_choice,
            Some(json!({"type": "tool", "name": "lookup"}))
        );
        assert_eq!(
            req.messages[1].content,
            Content::Blocks(vec![ContentBlock::ToolUse {
                id: "call_legacy_0".into(),
                name: "lookup".into(),
                input: json!({"q": "it"})
            }])
        );
        assert_eq!(
            req.messages[2].content,
            Content::Blocks(vec![ContentBlock::ToolResult {
                tool_use_id: "call_legacy_0".into(),
                content: Some(ToolResultContent::Text("found".into())),
                is_error: None
            }])
        );
        body_of(&req);
    }

    #[test]
    fn settings_are_carried_over() {
        let c = convert_json(json!({
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 10,
            "max_completion_tokens": 20,
            "stop": "END",
            "temperature": 0.5,
            "top_p": 0.9,
            "n": 1,
            "user": "u-1",
            "tool_choice": "required",
            "reasoning_effort": "low",
            "response_format": {"type": "json_object"},
            "presence_penalty": 0.1,
            "seed": 7
        }))
        .unwrap();
        assert!(c.include_usage);
        let r = c.claude;
        assert!(r.stream);
        assert_eq!(r.max_tokens, Some(20));
        assert_eq!(r.stop_sequences, Some(vec!["END".to_owned()]));
        assert_eq!(r.temperature, Some(0.5));
        assert_eq!(r.top_p, Some(0.9));
        assert_eq!(r.metadata, Some(json!({"user_id": "u-1"})));
        assert_eq!(r.tool_choice, Some(json!({"type": "any"})));
        assert_eq!(r.thinking.unwrap().budget_tokens, Some(4_096));
        assert_eq!(
            r.system,
            Some(System::Text(JSON_OBJECT_INSTRUCTION.to_owned()))
        );
    }

    #[test]
    fn json_schema_mode_puts_the_schema_in_the_prompt() {
        let r = claude(json!({
            "model": "m",
            "messages": [{"role": "system", "content": "Be exact."}, {"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
        }));
        assert_eq!(
            r.system,
            Some(System::Text("Be exact.\n\nRespond with one valid JSON value that conforms to this JSON Schema, and nothing else: no prose, no Markdown code fences.\n{\"type\":\"object\"}".into()))
        );
    }

    #[test]
    fn thinking_from_the_model_suffix_reaches_the_builder() {
        let models = ModelMap::default();
        let opts = BuildOptions {
            origin: "CLI",
            models: &models,
            conversation_id: None,
        };
        let r = claude(
            json!({"model": "claude-sonnet-4-5-thinking", "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert!(build(&r, &opts).unwrap().thinking);
        let r = claude(
            json!({"model": "claude-sonnet-4-5", "reasoning_effort": "none", "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert!(!build(&r, &opts).unwrap().thinking);
        let r = claude(
            json!({"model": "claude-sonnet-4-5", "reasoning_effort": "high", "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert!(build(&r, &opts).unwrap().thinking);
    }

    #[test]
    fn clear_errors_for_what_cannot_be_served() {
        let hi = json!([{"role": "user", "content": "hi"}]);
        let cases = [
            (json!({"model": "m", "messages": hi, "n": 2}), "n: only n = 1 is supported (Amazon Q returns one answer per request), got 2"),
            (json!({"model": "m", "messages": []}), "messages: at least one message is required"),
            (json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}), "messages[0].role: unknown role \"robot\" (expected system, developer, user, assistant or tool)"),
            (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}), "messages[0].content[0].image_url.url: image URLs are not fetched; send the image inline as a data URL (data:image/png;base64,...)"),
            (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}]}]}), "messages[0].content[0].image_url.url: the data URL must be base64-encoded"),
            (json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}), "messages[0].content[0]: unsupported content part type \"input_audio\" (text and image_url are supported)"),
            (json!({"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]}), "messages[1].tool_calls[0].function.arguments: not valid JSON (key must be a string at line 1 column 2)"),
            (json!({"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}), "messages[1].tool_calls[0].function.arguments: must be a JSON object"),
            (json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}), "messages[0].tool_call_id: required on a tool message"),
            (json!({"model": "m", "messages": [{"role": "function", "name": "f", "content": "x"}]}), "messages[0]: a function message for \"f\" without an earlier assistant function_call of that name"),
            (json!({"model": "m", "messages": hi, "tools": [{"type": "code_interpreter"}]}), "tools[0].type: only \"function\" tools are supported, got \"code_interpreter\""),
            (json!({"model": "m", "messages": hi, "tool_choice": "sometimes"}), "tool_choice: expected auto, none, required or a function, got \"sometimes\""),
            (json!({"model": "m", "messages": hi, "response_format": {"type": "xml"}}), "response_format.type: expected text, json_object or json_schema, got \"xml\""),
            (json!({"model": "m", "messages": hi, "reasoning_effort": "max"}), "reasoning_effort: expected none, minimal, low, medium or high, got \"max\""),
        ];
        for (req, want) in cases {
            assert_eq!(err(req.clone()), want, "for {req}");
        }
    }

    #[test]
    fn assistant_reasoning_and_refusals_are_kept() {
        let r = claude(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "reasoning_content": "hmm", "content": [{"type": "refusal", "refusal": "no"}]},
                {"role": "user", "content": "b"}
            ]
        }));
        assert_eq!(
            r.messages[1].content,
            Content::Blocks(vec![
                ContentBlock::Thinking {
                    thinking: "hmm".into(),
                    signature: None
                },
                ContentBlock::Text { text: "no".into() },
            ])
        );
    }

    /// Property tests: arbitrary Chat Completions requests as JSON, from small pools of roles,
    /// ids, names and contents so that unanswered calls, stray tool messages and legacy
    /// functions meet often.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(json!("")),
                Just(json!("hi")),
                Just(Value::Null),
                "\\PC{0,10}".prop_map(Value::String),
            ]
        }

        fn part() -> impl Strategy<Value = Value> {
            prop_oneof![
                text().prop_map(|t| json!({"type": "text", "text": t})),
                prop_oneof![
                    Just("data:image/png;base64,iVBORw0KGgo="),
                    Just("data:image/webp;base64,%%%"),
                    Just("data:text/plain,hi"),
                    Just("https://example.com/a.png"),
                    Just("data:"),
                    Just("é"),
                ]
                .prop_map(|u| json!({"type": "image_url", "image_url": {"url": u}})),
                Just(json!({"type": "refusal", "refusal": "no"})),
                Just(json!({"type": "input_audio"})),
            ]
        }

        fn content() -> impl Strategy<Value = Value> {
            prop_oneof![
                text(),
                proptest::collection::vec(part(), 0..3).prop_map(Value::from)
            ]
        }

        fn name() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(json!("f")),
                Just(json!("g.h")),
                Just(json!("")),
                Just(json!("web_search"))
            ]
        }

        fn id() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(json!("c0")),
                Just(json!("c1")),
                Just(json!("")),
                Just(Value::Null)
            ]
        }

        fn arguments() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(json!("{}")),
                Just(json!("{\"a\":1}")),
                Just(json!("")),
                Just(json!("[1]")),
                Just(json!({"a": 1})),
                Just(Value::Null),
            ]
        }

        fn message() -> impl Strategy<Value = Value> {
            let role = prop_oneof![
                Just("system"),
                Just("developer"),
                Just("user"),
                Just("user"),
                Just("assistant"),
                Just("assistant"),
                Just("tool"),
                Just("function"),
                Just("bot"),
            ];
            let call = (id(), name(), arguments())
                .prop_map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}));
            (
                role,
                content(),
                proptest::collection::vec(call, 0..3),
                id(),
                proptest::option::of(name()),
                proptest::option::of((name(), arguments())),
                proptest::option::of(text()),
            )
                .prop_map(
                    |(role, content, calls, tool_call_id, name, legacy, reasoning)| {
                        let mut m = json!({"role": role, "content": content});
                        if role == "assistant" && !calls.is_empty() {
                            m["tool_calls"] = Value::from(calls);
                        }
                        if role == "tool" {
                            m["tool_call_id"] = tool_call_id;
                        }
                        if let Some(name) = name {
                            m["name"] = name;
                        }
                        if let (Some((n, a)), "assistant") = (legacy, role) {
                            m["function_call"] = json!({"name": n, "arguments": a});
                        }
                        if let Some(r) = reasoning {
                            m["reasoning_content"] = r;
                        }
                        m
                    },
                )
        }

        fn request() -> impl Strategy<Value = Value> {
            let tool = (
                name(),
                prop_oneof![
                    Just(Value::Null),
                    Just(json!({"type": "object"})),
                    Just(json!({"properties": 3}))
                ],
            )
                .prop_map(
                    |(n, p)| json!({"type": "function", "function": {"name": n, "parameters": p}}),
                );
            (
                prop_oneof![Just("gpt-4o"), Just("claude-sonnet-4-5-thinking"), Just("o3")],
                proptest::collection::vec(message(), 0..10),
                proptest::collection::vec(tool, 0..3),
                prop_oneof![Just(Value::Null), Just(json!("auto")), Just(json!("required")), Just(json!({"type": "function", "function": {"name": "f"}})), Just(json!(5))],
                prop_oneof![Just(Value::Null), Just(json!("high")), Just(json!("none")), Just(json!("bogus"))],
                prop_oneof![Just(Value::Null), Just(json!({"type": "json_object"})), Just(json!({"type": "json_schema", "json_schema": {"schema": {"type": "object"}}})), Just(json!({"type": "text"}))],
                prop_oneof![Just(Value::Null), Just(json!(1)), Just(json!(2))],
            )
                .prop_map(|(model, messages, tools, choice, effort, format, n)| json!({
                    "model": model, "messages": messages, "tools": tools, "tool_choice": choice,
                    "reasoning_effort": effort, "response_format": format, "n": n,
                }))
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

            /// Never a panic; a conversion that succeeds builds (or is refused) within the rules.
            #[test]
            fn arbitrary_requests_convert_and_build_within_the_rules(body in request()) {
                if let Ok(req) = serde_json::from_value::<ChatRequest>(body.clone()) {
                    match convert(req) {
                        Ok(converted) => crate::claude::request::check_build(&converted.claude),
                        Err(BuildError::Invalid(message)) => prop_assert!(!message.is_empty()),
                    }
                }
                fuzz_one(&serde_json::to_vec(&body).unwrap());
            }
        }
    }
}
