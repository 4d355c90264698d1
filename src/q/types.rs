//! Typed request body of Amazon Q `GenerateAssistantResponse` (protocol doc §3.3–3.4): these
//! structs serialize to exactly the JSON the service expects, and nothing else.
//!
//! Wire rules enforced by the types:
//! * every key is camelCase;
//! * unions (`ChatMessage`, `Tool`, `ToolResultContentBlock`, `ImageSource`, `ReasoningContent`)
//!   are externally tagged, i.e. single-key objects such as `{"userInputMessage":{..}}`;
//! * `null` is never written: optional scalars are `Option` + `skip_serializing_if`, optional
//!   arrays are `Vec` skipped when empty (the service "does not accept null values");
//! * `profileArn` and `agentMode` sit at the top level, next to `conversationState`.
//!
//! Everything also derives `Deserialize` (unknown keys ignored) so tests and the fake upstream can
//! read a body back into the same types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `origin` sent by the official Amazon Q CLI (the default).
pub const ORIGIN_CLI: &str = "CLI";
/// `origin` sent by Kiro CLI peers on dialect A; reportedly needed for Opus-class models.
pub const ORIGIN_KIRO_CLI: &str = "KIRO_CLI";
/// `origin` sent by Kiro-IDE-style peers (dialect B).
pub const ORIGIN_AI_EDITOR: &str = "AI_EDITOR";

/// Longest `currentWorkingDirectory` the official client sends (§3.6); [`EnvState::new`] truncates.
pub const MAX_CWD_CHARS: usize = 256;

/// The whole request body (`GenerateAssistantResponseInput`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateAssistantResponseRequest {
    pub conversation_state: ConversationState,
    /// Top level, never inside `conversationState` (§3.4). Send it for IdC/Pro and Kiro social
    /// accounts; leave it `None` for free Builder ID accounts (a profile there yields 403).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_arn: Option<String>,
    /// Kiro agent mode (`vibe`, `spec`); mirrored in the `x-amzn-kiro-agent-mode` header by the
    /// client. Amazon Q peers omit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_mode: Option<String>,
}

impl GenerateAssistantResponseRequest {
    /// A body with no profile and no agent mode.
    pub fn new(conversation_state: ConversationState) -> Self {
        Self {
            conversation_state,
            profile_arn: None,
            agent_mode: None,
        }
    }
}

/// `conversationState`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// Strictly alternating `U, A, U, A, …`, starting with a user turn without tool results and
    /// ending with an assistant turn (§3.5). Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<ChatMessage>,
    /// Always the user variant; typed so that an assistant `currentMessage` cannot be built.
    pub current_message: CurrentMessage,
    pub chat_trigger_type: ChatTriggerType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customization_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_continuation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_task_type: Option<AgentTaskType>,
}

impl ConversationState {
    /// A state with only the current message and `chatTriggerType: MANUAL`.
    pub fn new(current: UserInputMessage) -> Self {
        Self {
            conversation_id: None,
            workspace_id: None,
            history: Vec::new(),
            current_message: CurrentMessage::new(current),
            chat_trigger_type: ChatTriggerType::Manual,
            customization_arn: None,
            agent_continuation_id: None,
            agent_task_type: None,
        }
    }
}

/// `currentMessage`: on the wire a `ChatMessage` union, but only the `userInputMessage` variant is
/// valid there, so this is a one-field struct that serializes as `{"userInputMessage":{..}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentMessage {
    pub user_input_message: UserInputMessage,
}

impl CurrentMessage {
    pub fn new(user_input_message: UserInputMessage) -> Self {
        Self { user_input_message }
    }
}

impl From<UserInputMessage> for CurrentMessage {
    fn from(m: UserInputMessage) -> Self {
        Self::new(m)
    }
}

/// `chatTriggerType`. Always send `MANUAL` (what the official client does; `AUTO` is rejected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChatTriggerType {
    #[default]
    Manual,
    Diagnostic,
    InlineChat,
}

/// `agentTaskType` (Kiro peers send `vibe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentTaskType {
    Vibe,
    Spectask,
}

/// One history entry: `{"userInputMessage":{..}}` or `{"assistantResponseMessage":{..}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChatMessage {
    UserInputMessage(UserInputMessage),
    AssistantResponseMessage(AssistantResponseMessage),
}

impl From<UserInputMessage> for ChatMessage {
    fn from(m: UserInputMessage) -> Self {
        ChatMessage::UserInputMessage(m)
    }
}

impl From<AssistantResponseMessage> for ChatMessage {
    fn from(m: AssistantResponseMessage) -> Self {
        ChatMessage::AssistantResponseMessage(m)
    }
}

/// `userInputMessage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInputMessage {
    /// Required; may be `""` when the turn only carries tool results.
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_input_message_context: Option<UserInputMessageContext>,
    /// `CLI` (default), `KIRO_CLI` or `AI_EDITOR`; see the `ORIGIN_*` constants. A string, not an
    /// enum, because the service accepts values newer than any published model (`KIRO_CLI`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// At most 10 images of at most 10 MiB each (§3.6). Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageBlock>,
    /// Upstream model id (§4.1), e.g. `claude-sonnet-4.5`. Needed on `currentMessage` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_point: Option<CachePoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cache_config: Option<ClientCacheConfig>,
}

impl UserInputMessage {
    /// A message with only `content`.
    pub fn new(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            user_input_message_context: None,
            origin: None,
            images: Vec::new(),
            model_id: None,
            cache_point: None,
            client_cache_config: None,
        }
    }
}

/// `userInputMessageContext`. IDE-only members (editor, shell, git state, …) are not modelled.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInputMessageContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_state: Option<EnvState>,
    /// Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_results: Vec<ToolResult>,
    /// Omitted when empty. Must name every tool used in history `toolUses` (§3.5 rule 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
}

/// `envState`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvState {
    /// `macos`, `linux` or `windows`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_system: Option<String>,
    /// At most [`MAX_CWD_CHARS`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_working_directory: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment_variables: Vec<EnvironmentVariable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone_offset: Option<i32>,
}

impl EnvState {
    /// `{"operatingSystem": os, "currentWorkingDirectory": cwd}`, the directory cut to
    /// [`MAX_CWD_CHARS`] characters as the official client does.
    pub fn new(operating_system: impl Into<String>, current_working_directory: &str) -> Self {
        let cwd: String = current_working_directory
            .chars()
            .take(MAX_CWD_CHARS)
            .collect();
        Self {
            operating_system: Some(operating_system.into()),
            current_working_directory: Some(cwd),
            environment_variables: Vec::new(),
            timezone_offset: None,
        }
    }
}

/// `envState.environmentVariables[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentVariable {
    pub key: String,
    pub value: String,
}

/// `tools[]`: `{"toolSpecification":{..}}` or `{"cachePoint":{"type":"default"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Tool {
    ToolSpecification(ToolSpecification),
    CachePoint(CachePoint),
}

/// `toolSpecification`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpecification {
    /// `^[a-zA-Z][a-zA-Z0-9_-]*$`, at most 64 characters (§3.6); the request builder shortens.
    pub name: String,
    /// Optional in the model, but an empty or missing description is rejected in practice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub input_schema: ToolInputSchema,
}

/// `inputSchema`: the JSON Schema wrapped in a `json` key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInputSchema {
    pub json: Value,
}

/// `toolResults[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    pub tool_use_id: String,
    pub content: Vec<ToolResultContentBlock>,
    pub status: ToolResultStatus,
}

/// `toolResults[].content[]`: `{"text":".."}` or `{"json":<any>}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolResultContentBlock {
    Text(String),
    Json(Value),
}

/// `toolResults[].status`, lower case on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolResultStatus {
    Success,
    Error,
}

/// `images[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageBlock {
    pub format: ImageFormat,
    pub source: ImageSource,
}

/// `images[].format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Png,
    Jpeg,
    Gif,
    Webp,
}

/// `images[].source`: `{"bytes":"<base64>"}`. The string is standard base64 of the raw image
/// (what Claude and OpenAI clients already send), passed through without re-encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ImageSource {
    Bytes(String),
}

/// `cachePoint`: `{"type":"default"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CachePoint {
    #[serde(rename = "type")]
    pub kind: CachePointType,
}

/// `cachePoint.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CachePointType {
    #[default]
    Default,
}

/// `clientCacheConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCacheConfig {
    pub use_client_caching_only: bool,
}

/// `assistantResponseMessage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantResponseMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Required. Use a placeholder such as `" "` when the turn only has tool uses (§8 item 6).
    pub content: String,
    /// Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_uses: Vec<ToolUse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<ReasoningContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_point: Option<CachePoint>,
}

impl AssistantResponseMessage {
    /// A message with only `content`.
    pub fn new(content: impl Into<String>) -> Self {
        Self {
            message_id: None,
            content: content.into(),
            tool_uses: Vec::new(),
            reasoning_content: None,
            cache_point: None,
        }
    }
}

/// `toolUses[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse {
    pub tool_use_id: String,
    pub name: String,
    /// Must be a JSON **object** (not a string, not an array; §8 item 3). The request builder is
    /// responsible for converting client input; an empty input is `{}`.
    pub input: Value,
}

/// `reasoningContent`: `{"reasoningText":{..}}` or `{"redactedContent":"<base64>"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReasoningContent {
    ReasoningText(ReasoningText),
    RedactedContent(String),
}

/// `reasoningContent.reasoningText`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasoningText {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn linux_root() -> UserInputMessageContext {
        UserInputMessageContext {
            env_state: Some(EnvState::new("linux", "/")),
            ..Default::default()
        }
    }

    fn cli_user(content: &str) -> UserInputMessage {
        UserInputMessage {
            user_input_message_context: Some(linux_root()),
            origin: Some(ORIGIN_CLI.to_owned()),
            ..UserInputMessage::new(content)
        }
    }

    /// The complete example of protocol doc §3.7, built from the types.
    fn doc_example() -> GenerateAssistantResponseRequest {
        let current = UserInputMessage {
            model_id: Some("claude-sonnet-4.5".to_owned()),
            origin: Some(ORIGIN_CLI.to_owned()),
            user_input_message_context: Some(UserInputMessageContext {
                env_state: Some(EnvState::new("linux", "/")),
                tool_results: vec![ToolResult {
                    tool_use_id: "tooluse_Q1w2E3r4T5y6".to_owned(),
                    status: ToolResultStatus::Success,
                    content: vec![ToolResultContentBlock::Text("backup\nwww".to_owned())],
                }],
                tools: vec![Tool::ToolSpecification(ToolSpecification {
                    name: "run_shell".to_owned(),
                    description: Some("Run a shell command and return stdout.".to_owned()),
                    input_schema: ToolInputSchema {
                        json: json!({
                            "type": "object",
                            "properties": { "cmd": { "type": "string" } },
                            "required": ["cmd"]
                        }),
                    },
                })],
            }),
            ..UserInputMessage::new("")
        };
        let mut state = ConversationState::new(current);
        state.conversation_id = Some("3d0c8c52-6a3e-4a8f-9d0e-0d6f1b7f2a11".to_owned());
        state.history = vec![
            cli_user("You are a terse assistant. Follow the project rules.").into(),
            AssistantResponseMessage {
                message_id: Some("a0b1c2d3-0000-4000-8000-000000000001".to_owned()),
                ..AssistantResponseMessage::new("Understood.")
            }
            .into(),
            cli_user("What is in /srv?").into(),
            AssistantResponseMessage {
                message_id: Some("a0b1c2d3-0000-4000-8000-000000000002".to_owned()),
                tool_uses: vec![ToolUse {
                    tool_use_id: "tooluse_Q1w2E3r4T5y6".to_owned(),
                    name: "run_shell".to_owned(),
                    input: json!({ "cmd": "ls /srv" }),
                }],
                ..AssistantResponseMessage::new("Let me look.")
            }
            .into(),
        ];
        GenerateAssistantResponseRequest::new(state)
    }

    /// The §3.7 JSON, as written in the doc.
    const DOC_EXAMPLE_JSON: &str = r#"{
      "conversationState": {
        "conversationId": "3d0c8c52-6a3e-4a8f-9d0e-0d6f1b7f2a11",
        "chatTriggerType": "MANUAL",
        "history": [
          {
            "userInputMessage": {
              "content": "You are a terse assistant. Follow the project rules.",
              "userInputMessageContext": { "envState": { "operatingSystem": "linux", "currentWorkingDirectory": "/" } },
              "origin": "CLI"
            }
          },
          { "assistantResponseMessage": { "messageId": "a0b1c2d3-0000-4000-8000-000000000001", "content": "Understood." } },
          {
            "userInputMessage": {
              "content": "What is in /srv?",
              "userInputMessageContext": { "envState": { "operatingSystem": "linux", "currentWorkingDirectory": "/" } },
              "origin": "CLI"
            }
          },
          {
            "assistantResponseMessage": {
              "messageId": "a0b1c2d3-0000-4000-8000-000000000002",
              "content": "Let me look.",
              "toolUses": [ { "toolUseId": "tooluse_Q1w2E3r4T5y6", "name": "run_shell", "input": { "cmd": "ls /srv" } } ]
            }
          }
        ],
        "currentMessage": {
          "userInputMessage": {
            "content": "",
            "modelId": "claude-sonnet-4.5",
            "origin": "CLI",
            "userInputMessageContext": {
              "envState": { "operatingSystem": "linux", "currentWorkingDirectory": "/" },
              "toolResults": [
                { "toolUseId": "tooluse_Q1w2E3r4T5y6", "status": "success", "content": [ { "text": "backup\nwww" } ] }
              ],
              "tools": [
                {
                  "toolSpecification": {
                    "name": "run_shell",
                    "description": "Run a shell command and return stdout.",
                    "inputSchema": { "json": { "type": "object", "properties": { "cmd": { "type": "string" } }, "required": ["cmd"] } }
                  }
                }
              ]
            }
          }
        }
      }
    }"#;

    fn assert_no_null(v: &Value, path: &str) {
        match v {
            Value::Null => panic!("null at {path}"),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    assert_no_null(item, &format!("{path}[{i}]"));
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    assert_no_null(item, &format!("{path}.{k}"));
                }
            }
            _ => {}
        }
    }

    #[test]
    fn complete_example_matches_doc() {
        let built = serde_json::to_value(doc_example()).unwrap();
        let doc: Value = serde_json::from_str(DOC_EXAMPLE_JSON).unwrap();
        assert_eq!(built, doc);
    }

    #[test]
    fn complete_example_round_trips() {
        let doc: GenerateAssistantResponseRequest = serde_json::from_str(DOC_EXAMPLE_JSON).unwrap();
        assert_eq!(doc, doc_example());
    }

    #[test]
    fn minimal_body_matches_doc() {
        let body = GenerateAssistantResponseRequest::new(ConversationState::new(
            UserInputMessage::new("hello"),
        ));
        let expected: Value = serde_json::from_str(
            r#"{"conversationState":{"currentMessage":{"userInputMessage":{"content":"hello"}},"chatTriggerType":"MANUAL"}}"#,
        )
        .unwrap();
        assert_eq!(serde_json::to_value(&body).unwrap(), expected);
        // Field order of the compact string is also the doc's.
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"conversationState":{"currentMessage":{"userInputMessage":{"content":"hello"}},"chatTriggerType":"MANUAL"}}"#
        );
    }

    #[test]
    fn profile_arn_and_agent_mode_are_top_level() {
        let mut body = doc_example();
        body.profile_arn =
            Some("arn:aws:codewhisperer:us-east-1:123456789012:profile/ABCDEFGHIJKL".to_owned());
        body.agent_mode = Some("vibe".to_owned());
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(
            v["profileArn"],
            "arn:aws:codewhisperer:us-east-1:123456789012:profile/ABCDEFGHIJKL"
        );
        assert_eq!(v["agentMode"], "vibe");
        let state = v["conversationState"].as_object().unwrap();
        assert!(!state.contains_key("profileArn"));
        assert!(!state.contains_key("agentMode"));
        let top: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(top.len(), 3, "{top:?}");

        // Without a profile the key is absent, not null.
        let v = serde_json::to_value(doc_example()).unwrap();
        assert!(!v.as_object().unwrap().contains_key("profileArn"));
        assert!(!v.as_object().unwrap().contains_key("agentMode"));
    }

    /// A body with every optional member left empty, and one with every member filled: neither
    /// contains `null` anywhere.
    #[test]
    fn no_null_anywhere() {
        let empty_state = ConversationState::new(UserInputMessage::new(""));
        let empty = GenerateAssistantResponseRequest::new(empty_state);
        let v = serde_json::to_value(&empty).unwrap();
        assert_no_null(&v, "$");
        assert!(!serde_json::to_string(&empty).unwrap().contains("null"));

        let mut full = doc_example();
        full.profile_arn = Some("arn:aws:codewhisperer:us-east-1:1:profile/X".to_owned());
        full.agent_mode = Some("vibe".to_owned());
        let st = &mut full.conversation_state;
        st.workspace_id = Some("ws".to_owned());
        st.customization_arn = Some("arn:c".to_owned());
        st.agent_continuation_id = Some("8f3c".to_owned());
        st.agent_task_type = Some(AgentTaskType::Vibe);
        let cur = &mut st.current_message.user_input_message;
        cur.images = vec![ImageBlock {
            format: ImageFormat::Png,
            source: ImageSource::Bytes("iVBORw0KGgo=".to_owned()),
        }];
        cur.cache_point = Some(CachePoint::default());
        cur.client_cache_config = Some(ClientCacheConfig {
            use_client_caching_only: false,
        });
        let ctx = cur.user_input_message_context.as_mut().unwrap();
        ctx.tools.push(Tool::CachePoint(CachePoint::default()));
        ctx.tool_results.push(ToolResult {
            tool_use_id: "tooluse_2".to_owned(),
            status: ToolResultStatus::Error,
            content: vec![ToolResultContentBlock::Json(json!({"ok": false}))],
        });
        let env = ctx.env_state.as_mut().unwrap();
        env.environment_variables.push(EnvironmentVariable {
            key: "LANG".to_owned(),
            value: "C".to_owned(),
        });
        env.timezone_offset = Some(-60);
        st.history.push(
            AssistantResponseMessage {
                reasoning_content: Some(ReasoningContent::ReasoningText(ReasoningText {
                    text: "hmm".to_owned(),
                    signature: None,
                })),
                cache_point: Some(CachePoint::default()),
                ..AssistantResponseMessage::new("ok")
            }
            .into(),
        );
        let v = serde_json::to_value(&full).unwrap();
        assert_no_null(&v, "$");
        let back: GenerateAssistantResponseRequest = serde_json::from_value(v).unwrap();
        assert_eq!(back, full);
    }

    #[test]
    fn unions_are_single_key_objects() {
        let img = ImageBlock {
            format: ImageFormat::Jpeg,
            source: ImageSource::Bytes("AAAA".to_owned()),
        };
        assert_eq!(
            serde_json::to_value(&img).unwrap(),
            json!({"format": "jpeg", "source": {"bytes": "AAAA"}})
        );
        assert_eq!(
            serde_json::to_value(Tool::CachePoint(CachePoint::default())).unwrap(),
            json!({"cachePoint": {"type": "default"}})
        );
        assert_eq!(
            serde_json::to_value(ToolResultContentBlock::Json(json!([1, 2]))).unwrap(),
            json!({"json": [1, 2]})
        );
        assert_eq!(
            serde_json::to_value(ReasoningContent::RedactedContent("Zm9v".to_owned())).unwrap(),
            json!({"redactedContent": "Zm9v"})
        );
        assert_eq!(
            serde_json::to_value(ReasoningContent::ReasoningText(ReasoningText {
                text: "t".to_owned(),
                signature: Some("s".to_owned()),
            }))
            .unwrap(),
            json!({"reasoningText": {"text": "t", "signature": "s"}})
        );
        assert_eq!(
            serde_json::to_value(ChatMessage::from(AssistantResponseMessage::new(" "))).unwrap(),
            json!({"assistantResponseMessage": {"content": " "}})
        );
    }

    #[test]
    fn enums_use_wire_spelling() {
        assert_eq!(
            serde_json::to_value(ToolResultStatus::Error).unwrap(),
            json!("error")
        );
        assert_eq!(
            serde_json::to_value(ChatTriggerType::InlineChat).unwrap(),
            json!("INLINE_CHAT")
        );
        assert_eq!(
            serde_json::to_value(AgentTaskType::Spectask).unwrap(),
            json!("spectask")
        );
        assert_eq!(
            serde_json::to_value(ImageFormat::Webp).unwrap(),
            json!("webp")
        );
    }

    #[test]
    fn env_state_truncates_cwd() {
        let long = "é".repeat(300);
        let env = EnvState::new("macos", &long);
        assert_eq!(
            env.current_working_directory.unwrap().chars().count(),
            MAX_CWD_CHARS
        );
    }

    #[test]
    fn unknown_keys_are_ignored_on_read() {
        let body = r#"{"conversationState":{"currentMessage":{"userInputMessage":{"content":"hi","userIntent":"EXPLAIN_CODE_SELECTION"}},"chatTriggerType":"MANUAL","somethingNew":1}}"#;
        let parsed: GenerateAssistantResponseRequest = serde_json::from_str(body).unwrap();
        assert_eq!(
            parsed
                .conversation_state
                .current_message
                .user_input_message
                .content,
            "hi"
        );
    }
}
