//! The chat call against the fake Amazon Q: headers and body per dialect, profileArn placement,
//! decoding a streamed answer, and the classification of every §6.2 error as an HTTP answer and
//! as an in-stream exception, plus broken streams.

use std::time::Duration;

use amq2api::db::accounts::Account;
use amq2api::q::client::{http_client, send_chat};
use amq2api::q::config::{Dialect, UpstreamConfig};
use amq2api::q::error::{ErrorClass, UpstreamError};
use amq2api::q::events::QEvent;
use amq2api::q::types::{ConversationState, GenerateAssistantResponseRequest, UserInputMessage};
use serde_json::json;

use crate::support::fake_q::{FakeQ, QError, Reply, Script, Step};

fn account(kind: &str, profile_arn: Option<&str>) -> Account {
    Account {
        id: 1,
        name: "a".into(),
        auth_kind: kind.into(),
        client_id: None,
        client_secret: None,
        refresh_token: "r".into(),
        refresh_token_hash: String::new(),
        imported_token_hash: String::new(),
        access_token: None,
        access_token_expires_at: None,
        region: "us-east-1".into(),
        profile_arn: profile_arn.map(str::to_owned),
        start_url: None,
        enabled: true,
        health: "active".into(),
        health_until: None,
        health_reason: None,
        rpm_limit: None,
        created_at: 0,
        updated_at: 0,
        last_used_at: None,
        concurrency_limit: None,
        weight: 1,
    }
}

fn body(text: &str) -> GenerateAssistantResponseRequest {
    let mut msg = UserInputMessage::new(text);
    msg.model_id = Some("claude-sonnet-4.5".into());
    msg.origin = Some("CLI".into());
    GenerateAssistantResponseRequest::new(ConversationState::new(msg))
}

fn cfg(fake: &FakeQ, dialect: Dialect) -> UpstreamConfig {
    UpstreamConfig {
        api_endpoint: Some(fake.api_url()),
        dialect,
        idle_timeout: Duration::from_secs(5),
        ..UpstreamConfig::default()
    }
}

/// Sends one chat and collects every event, or the first error.
fn chat(
    fake: &FakeQ,
    cfg: &UpstreamConfig,
    account: &Account,
    token: &str,
) -> Result<Vec<QEvent>, UpstreamError> {
    let (cfg, account, token) = (cfg.clone(), account.clone(), token.to_owned());
    let _ = fake;
    actix_web::rt::System::new().block_on(async move {
        let client = http_client(&cfg);
        let mut stream = send_chat(&client, &cfg, &account, &token, body("hello")).await?;
        let mut events = Vec::new();
        while let Some(ev) = stream.next_event().await? {
            events.push(ev);
        }
        Ok(events)
    })
}

fn texts(events: &[QEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            QEvent::AssistantText { content } => Some(content.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn dialect_a_sends_the_official_headers_and_body_and_decodes_the_stream() {
    let fake = FakeQ::start();
    let token = fake.issue_access_token();
    fake.push_reply(
        Script::new()
            .initial_response()
            .metadata()
            .texts(&["Hel", "lo", " there"])
            .end()
            .reply(),
    );
    let cfg = cfg(&fake, Dialect::A);
    let events = chat(&fake, &cfg, &account("idc", None), &token).unwrap();
    assert_eq!(texts(&events), "Hello there");
    assert!(matches!(events[0], QEvent::InitialResponse));
    assert!(
        matches!(events.last(), Some(QEvent::ContextUsage { percentage }) if *percentage == 1.5)
    );
    let req = &fake.requests()[0];
    assert_eq!(req.path, "/");
    assert_eq!(
        req.header("content-type"),
        Some("application/x-amz-json-1.0")
    );
    assert_eq!(
        req.header("x-amz-target"),
        Some("AmazonCodeWhispererStreamingService.GenerateAssistantResponse")
    );
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    assert_eq!(req.header("x-amzn-codewhisperer-optout"), Some("true"));
    assert_eq!(req.header("amz-sdk-request"), Some("attempt=1; max=3"));
    assert_eq!(
        req.header("user-agent"),
        Some(amq2api::q::config::DEFAULT_USER_AGENT)
    );
    assert_eq!(
        req.header("x-amz-user-agent"),
        Some(amq2api::q::config::DEFAULT_AMZ_USER_AGENT)
    );
    assert_eq!(req.header("amz-sdk-invocation-id").map(str::len), Some(36));
    assert_eq!(
        req.body,
        json!({"conversationState":{"currentMessage":{"userInputMessage":{"content":"hello","origin":"CLI","modelId":"claude-sonnet-4.5"}},"chatTriggerType":"MANUAL"}})
    );
}

#[test]
fn dialect_b_posts_to_generate_assistant_response() {
    let fake = FakeQ::start();
    let token = fake.issue_access_token();
    let mut cfg = cfg(&fake, Dialect::B);
    cfg.user_agent = "custom-ua/1".into();
    let events = chat(&fake, &cfg, &account("idc", None), &token).unwrap();
    assert!(!texts(&events).is_empty());
    let req = &fake.requests()[0];
    assert_eq!(req.path, "/generateAssistantResponse");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("x-amz-target"), None);
    assert_eq!(req.header("user-agent"), Some("custom-ua/1"));
}

#[test]
fn profile_arn_is_top_level_for_social_and_pro_and_absent_for_builder_id() {
    let fake = FakeQ::start();
    let token = fake.issue_access_token();
    let cfg = cfg(&fake, Dialect::A);
    let arn = "arn:aws:codewhisperer:us-east-1:123456789012:profile/FAKE";
    chat(&fake, &cfg, &account("social", Some(arn)), &token).unwrap();
    chat(&fake, &cfg, &account("idc", Some(arn)), &token).unwrap();
    chat(&fake, &cfg, &account("idc", None), &token).unwrap();
    let reqs = fake.requests();
    assert_eq!(reqs[0].body["profileArn"], arn);
    assert!(reqs[0].body["conversationState"]
        .get("profileArn")
        .is_none());
    assert_eq!(reqs[1].body["profileArn"], arn);
    assert!(reqs[2].body.get("profileArn").is_none());
}

#[test]
fn tool_calls_arrive_as_fragments() {
    let fake = FakeQ::start();
    let token = fake.issue_access_token();
    fake.push_reply(
        Script::new()
            .text("Let me look.")
            .tool_use("tooluse_1", "run_shell", &["{\"cmd\":", "\"ls /srv\"}"])
            .tool_use("tooluse_2", "read", &[])
            .end()
            .reply(),
    );
    let events = chat(
        &fake,
        &cfg(&fake, Dialect::A),
        &account("idc", None),
        &token,
    )
    .unwrap();
    let tools: Vec<(String, Option<String>, bool)> = events
        .into_iter()
        .filter_map(|e| match e {
            QEvent::ToolUse {
                tool_use_id,
                input,
                stop,
                ..
            } => Some((tool_use_id, input, stop)),
            _ => None,
        })
        .collect();
    assert_eq!(
        tools,
        [
            ("tooluse_1".into(), None, false),
            ("tooluse_1".into(), Some("{\"cmd\":".into()), false),
            ("tooluse_1".into(), Some("\"ls /srv\"}".into()), false),
            ("tooluse_1".into(), None, true),
            ("tooluse_2".into(), None, false),
            ("tooluse_2".into(), None, true),
        ]
    );
}

/// Every §6.2 row, as the fake sends it over HTTP, with the class it must get.
fn catalogue() -> Vec<(QError, ErrorClass)> {
    vec![
        (QError::ImproperlyFormed, ErrorClass::InvalidRequest),
        (QError::InputTooLong, ErrorClass::InputTooLong),
        (QError::InvalidModelId, ErrorClass::InvalidModel),
        (QError::ProfileArnRequired, ErrorClass::ProfileRequired),
        (QError::InvalidCredential, ErrorClass::AccessDenied),
        (QError::BearerInvalid, ErrorClass::AccessTokenInvalid),
        (QError::TemporarilySuspended, ErrorClass::Suspended),
        (QError::MonthlyQuota, ErrorClass::MonthlyQuota),
        (QError::MonthlyQuotaKiro, ErrorClass::MonthlyQuota),
        (QError::DailyQuota, ErrorClass::DailyQuota),
        (QError::Throttled, ErrorClass::Throttled),
        (
            QError::InsufficientModelCapacity,
            ErrorClass::ModelOverloaded,
        ),
        (QError::HighLoad, ErrorClass::ModelOverloaded),
        (
            QError::ModelTemporarilyUnavailable,
            ErrorClass::ModelOverloaded,
        ),
        (QError::ServiceUnavailable, ErrorClass::ModelOverloaded),
        (QError::InternalError, ErrorClass::ServerError),
    ]
}

#[test]
fn every_http_error_of_the_catalogue_is_classified() {
    let fake = FakeQ::start();
    let token = fake.issue_access_token();
    for dialect in [Dialect::A, Dialect::B] {
        let cfg = cfg(&fake, dialect);
        for (error, class) in catalogue() {
            fake.push_reply(Reply::Error(error.clone()));
            let err = chat(&fake, &cfg, &account("idc", None), &token).unwrap_err();
            assert_eq!(err.class, class, "{error:?} in dialect {dialect:?}: {err}");
            assert_eq!(err.status, Some(error.status()), "{error:?}");
            if class == ErrorClass::MonthlyQuota {
                assert!(err.until.is_some());
            }
        }
    }
    // A token the fake never issued: its real 403.
    let err = chat(
        &fake,
        &cfg(&fake, Dialect::A),
        &account("idc", None),
        "aoa-not-issued",
    )
    .unwrap_err();
    assert_eq!(err.class, ErrorClass::AccessTokenInvalid);
    assert_eq!(
        err.message,
        "The bearer token included in the request is invalid."
    );
}

#[test]
fn in_stream_exceptions_are_classified_after_the_text_before_them() {
    let fake = FakeQ::start();
    let token = fake.issue_access_token();
    let cfg = cfg(&fake, Dialect::A);
    let mut cases: Vec<(Step, ErrorClass)> = catalogue()
        .into_iter()
        .filter(|(e, _)| {
            // Errors that only ever come as HTTP answers (auth, quota, request shape before streaming).
            !matches!(
                e,
                QError::BearerInvalid | QError::InvalidCredential | QError::MonthlyQuotaKiro
            )
        })
        .map(|(e, class)| (Step::exception_for(&e), class))
        .collect();
    cases.push((
        Step::content_length_exceeded(),
        ErrorClass::OutputLengthExceeded,
    ));
    cases.push((
        Step::error("InternalFailure", "boom"),
        ErrorClass::ServerError,
    ));
    for (step, class) in cases {
        fake.push_reply(
            Script::new()
                .text("partial")
                .step(step.clone())
                .text("never")
                .reply(),
        );
        let (cfg, acc, token) = (cfg.clone(), account("idc", None), token.clone());
        let (events, err) = actix_web::rt::System::new().block_on(async move {
            let client = http_client(&cfg);
            let mut stream = send_chat(&client, &cfg, &acc, &token, body("x"))
                .await
                .unwrap();
            let mut events = Vec::new();
            loop {
                match stream.next_event().await {
                    Ok(Some(e)) => events.push(e),
                    Ok(None) => panic!("the stream ended without the error"),
                    Err(e) => return (events, e),
                }
            }
        });
        assert_eq!(texts(&events), "partial", "{step:?}");
        assert_eq!(err.class, class, "{step:?}: {err}");
    }
}

#[test]
fn broken_streams_are_typed_errors() {
    let fake = FakeQ::start();
    let token = fake.issue_access_token();
    let cfg = cfg(&fake, Dialect::A);
    let corrupt = Step::CorruptCrc {
        event_type: "assistantResponseEvent".into(),
        payload: json!({"content": "x"}),
    };
    let dropped = Step::DropMidFrame {
        event_type: "assistantResponseEvent".into(),
        payload: json!({"content": "x"}),
    };
    for (script, class) in [
        (
            Script::new().text("a").step(corrupt),
            ErrorClass::StreamCorrupt,
        ),
        // The fake cuts the connection after half a frame: seen as a body ending inside a frame.
        (
            Script::new().text("a").step(dropped),
            ErrorClass::StreamCorrupt,
        ),
        (
            Script::new().text("a").raw(&[0, 0, 0]),
            ErrorClass::StreamCorrupt,
        ),
        // A connection reset after a whole frame.
        (Script::new().text("a").abort(), ErrorClass::Network),
        // Not listed: a clean close *between* frames over plain HTTP/1.1 (`Step::Close`). awc
        // ends an unterminated chunked body as if it were complete (awc 3.11 `PlStream` maps EOF
        // to the end of the body), and the event stream has no end marker. Real Amazon Q is
        // reached over TLS (ALPN h2, TLS close_notify), where such a cut is an error.
    ] {
        fake.push_reply(script.reply());
        let err = chat(&fake, &cfg, &account("idc", None), &token).unwrap_err();
        assert_eq!(err.class, class, "{err}");
    }
    // Silence longer than the idle timeout.
    let mut short = cfg.clone();
    short.idle_timeout = Duration::from_millis(300);
    fake.push_reply(
        Script::new()
            .text("a")
            .delay(Duration::from_secs(2))
            .text("b")
            .reply(),
    );
    let err = chat(&fake, &short, &account("idc", None), &token).unwrap_err();
    assert_eq!(err.class, ErrorClass::Timeout);
    // A split frame is fine.
    fake.push_reply(
        Script::new()
            .step(Step::Split {
                event_type: "assistantResponseEvent".into(),
                payload: json!({"content": "whole"}),
                at: vec![1, 5, 13, 40],
            })
            .reply(),
    );
    assert_eq!(
        texts(&chat(&fake, &cfg, &account("idc", None), &token).unwrap()),
        "whole"
    );
}
