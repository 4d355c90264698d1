//! Tests of the fake Amazon Q itself: its frames, its token endpoints, its chat checks and its
//! scripted replies.

use std::time::{Duration, Instant};

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use serde_json::{json, Value};

use crate::support::fake_q::*;

/// §5.1 test vector 2: `assistantResponseEvent` `{"content":"Hi"}`.
const VECTOR_2: &str = "0000007c0000005c3bddcf780b3a6576656e742d74797065070016617373697374616e74526573706f6e73654576656e740d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b22636f6e74656e74223a224869227db02babdc";
/// §5.1 test vector 3: `toolUseEvent` `{"toolUseId":"tooluse_1","name":"run_shell","stop":true}`.
const VECTOR_3: &str = "0000009a000000527bf1d0000b3a6576656e742d7479706507000c746f6f6c5573654576656e740d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b22746f6f6c5573654964223a22746f6f6c7573655f31222c226e616d65223a2272756e5f7368656c6c222c2273746f70223a747275657dc51884c1";
/// §5.1 test vector 1 (emblica README): header `content-type`, payload `{'foo':'bar'}`.
const VECTOR_1: &str = "0000003d0000002007fd83960c636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b27666f6f273a27626172277d8d9c08b1";

const BEARER_INVALID_A: &str = r#"{"__type":"com.amazon.aws.codewhisperer#AccessDeniedException","message":"The bearer token included in the request is invalid.","reason":null}"#;
const BEARER_INVALID_B: &str =
    r#"{"message":"The bearer token included in the request is invalid.","reason":null}"#;
const IMPROPER_A: &str = r#"{"__type":"com.amazon.aws.codewhisperer#ValidationException","message":"Improperly formed request.","reason":null}"#;
const INVALID_GRANT: &str =
    r#"{"error":"invalid_grant","error_description":"Invalid refresh token provided"}"#;
const INVALID_CLIENT: &str =
    r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#;

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Result<Vec<u8>, String>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn bytes(&self) -> &[u8] {
        self.body.as_ref().expect("a complete body")
    }

    fn text(&self) -> &str {
        std::str::from_utf8(self.bytes()).expect("UTF-8 body")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(self.bytes()).expect("JSON body")
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    actix_web::rt::System::new().block_on(f)
}

async fn post(url: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(5))
        .finish();
    let mut request = client.post(url);
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let mut response = request
        .send_body(body.to_string())
        .await
        .expect("the fake answers");
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = response
        .body()
        .limit(16 * 1024 * 1024)
        .await
        .map(|b| b.to_vec())
        .map_err(|e| e.to_string());
    Resp {
        status: response.status().as_u16(),
        headers,
        body,
    }
}

fn chat_body(content: &str) -> String {
    json!({
        "conversationState": {
            "conversationId": "3d0c8c52-6a3e-4a8f-9d0e-0d6f1b7f2a11",
            "chatTriggerType": "MANUAL",
            "currentMessage": { "userInputMessage": { "content": content, "modelId": "claude-sonnet-4.5", "origin": "CLI" } }
        }
    })
    .to_string()
}

async fn chat_a(fake: &FakeQ, token: &str, body: &str) -> Resp {
    let auth = format!("Bearer {token}");
    post(
        &fake.api_url(),
        &[
            ("content-type", AMZ_JSON),
            ("x-amz-target", TARGET_GENERATE),
            ("authorization", &auth),
        ],
        body,
    )
    .await
}

async fn chat_b(fake: &FakeQ, token: &str, body: &str) -> Resp {
    let auth = format!("Bearer {token}");
    post(
        &fake.rest_url(),
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        body,
    )
    .await
}

async fn oidc(fake: &FakeQ, body: Value) -> Resp {
    post(
        &fake.token_url(),
        &[("content-type", "application/json")],
        &body.to_string(),
    )
    .await
}

fn refresh_body(client_id: &str, secret: &str, refresh: &str) -> Value {
    json!({ "clientId": client_id, "clientSecret": secret, "grantType": "refresh_token", "refreshToken": refresh })
}

/// Encodes with smithy directly (independently of the fake's helpers).
fn smithy_event(event_type: &str, payload: &[u8]) -> Vec<u8> {
    let string = |s: &str| HeaderValue::String(s.to_string().into());
    let message = Message::new_from_parts(
        vec![
            Header::new(":event-type", string(event_type)),
            Header::new(":content-type", string("application/json")),
            Header::new(":message-type", string("event")),
        ],
        payload.to_vec(),
    );
    let mut out = Vec::new();
    write_message_to(&message, &mut out).unwrap();
    out
}

#[test]
fn fake_q_smithy_writer_reproduces_the_protocol_test_vectors() {
    let v2 = smithy_event("assistantResponseEvent", br#"{"content":"Hi"}"#);
    assert_eq!(hex::encode(&v2), VECTOR_2);
    let v3 = smithy_event(
        "toolUseEvent",
        br#"{"toolUseId":"tooluse_1","name":"run_shell","stop":true}"#,
    );
    assert_eq!(hex::encode(&v3), VECTOR_3);
    // The fake's own helpers produce the same bytes.
    assert_eq!(
        hex::encode(encode_event(
            "assistantResponseEvent",
            br#"{"content":"Hi"}"#
        )),
        VECTOR_2
    );
    assert_eq!(
        hex::encode(Step::text("Hi").encode()),
        VECTOR_2,
        "serde_json writes {{\"content\":\"Hi\"}} compactly"
    );
    assert_eq!(
        hex::encode(encode_frame(
            &[("content-type", "application/json")],
            b"{'foo':'bar'}"
        )),
        VECTOR_1
    );
    // Corrupt CRC: only the last byte differs. Drop mid-frame: the first half.
    let corrupt = Step::CorruptCrc {
        event_type: "assistantResponseEvent".into(),
        payload: json!({"content": "Hi"}),
    }
    .encode();
    assert_eq!(corrupt[..corrupt.len() - 1], v2[..v2.len() - 1]);
    assert_ne!(corrupt.last(), v2.last());
    let half = Step::DropMidFrame {
        event_type: "assistantResponseEvent".into(),
        payload: json!({"content": "Hi"}),
    }
    .encode();
    assert_eq!(half, v2[..v2.len() / 2]);
}

#[test]
fn fake_q_thinking_reply_splits_the_tags_across_events() {
    let Reply::Events(steps) = Reply::thinking("Let me think.", "Hi!") else {
        panic!("an event stream")
    };
    let texts: Vec<String> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Event {
                event_type,
                payload,
            } if event_type == "assistantResponseEvent" => {
                Some(payload["content"].as_str().unwrap().to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(texts.concat(), "<thinking>Let me think.</thinking>\n\nHi!");
    assert!(!texts
        .iter()
        .any(|t| t.contains("<thinking>") || t.contains("</thinking>")));
    assert_eq!(
        steps.first().map(|s| s.encode()),
        Some(Script::new().metadata().steps()[0].encode())
    );
}

#[test]
fn fake_q_oidc_refresh_issues_and_rotates() {
    let fake = FakeQ::start();
    let account = fake.add_idc("cid-1", "secret-1", "aorFIRST");
    run(async {
        let ok = oidc(&fake, refresh_body("cid-1", "secret-1", "aorFIRST")).await;
        assert_eq!(ok.status, 200, "{}", ok.text());
        assert_eq!(ok.header("content-type"), Some("application/json"));
        let body = ok.json();
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = vec![
            "accessToken",
            "tokenType",
            "expiresIn",
            "refreshToken",
            "idToken",
            "aws_sso_app_session_id",
            "issuedTokenType",
            "originSessionId",
        ];
        let mut got = keys.clone();
        got.sort_unstable();
        expected.sort_unstable();
        assert_eq!(got, expected);
        assert!(
            ok.text().starts_with(r#"{"accessToken":"aoa"#),
            "{}",
            ok.text()
        );
        assert_eq!(body["tokenType"], "Bearer");
        assert_eq!(body["expiresIn"], 3600);
        assert!(body["idToken"].is_null());
        let rotated = body["refreshToken"].as_str().unwrap().to_string();
        assert_ne!(rotated, "aorFIRST");
        assert_eq!(fake.current_refresh_token(account), rotated);

        // The access token works on the chat endpoint and is tied to the account.
        let access = body["accessToken"].as_str().unwrap();
        let chat = chat_a(&fake, access, &chat_body("hi")).await;
        assert_eq!(chat.status, 200);
        assert_eq!(fake.requests()[0].account, Some(account));

        // The old refresh token is dead after rotation.
        let old = oidc(&fake, refresh_body("cid-1", "secret-1", "aorFIRST")).await;
        assert_eq!(old.status, 400);
        assert_eq!(old.text(), INVALID_GRANT);
        assert_eq!(
            old.header("x-amzn-ErrorType"),
            Some("InvalidGrantException:http://internal.amazon.com/coral/com.amazonaws.sso.oidc/")
        );

        // Wrong secret / unknown client.
        let bad = oidc(&fake, refresh_body("cid-1", "nope", &rotated)).await;
        assert_eq!((bad.status, bad.text()), (400, INVALID_CLIENT));
        assert!(bad
            .header("x-amzn-ErrorType")
            .unwrap()
            .starts_with("InvalidClientException:"));
        let bad = oidc(&fake, refresh_body("cid-x", "secret-1", &rotated)).await;
        assert_eq!((bad.status, bad.text()), (400, INVALID_CLIENT));

        // snake_case body.
        let snake = oidc(
            &fake,
            json!({"client_id": "cid-1", "client_secret": "secret-1", "grant_type": "refresh_token", "refresh_token": rotated}),
        )
        .await;
        assert_eq!(snake.status, 400);
        assert_eq!(snake.json()["error"], "invalid_request");
        assert!(snake
            .header("x-amzn-ErrorType")
            .unwrap()
            .starts_with("InvalidRequestException:"));

        // No rotation: refreshToken omitted, the same token keeps working.
        fake.set_rotate(false);
        for _ in 0..2 {
            let kept = oidc(&fake, refresh_body("cid-1", "secret-1", &rotated)).await;
            assert_eq!(kept.status, 200);
            assert!(kept.json().get("refreshToken").is_none());
        }

        // Scripted failure, then back to normal.
        fake.push_token_failure(500, r#"{"error":"server_error"}"#);
        let failed = oidc(&fake, refresh_body("cid-1", "secret-1", &rotated)).await;
        assert_eq!(
            (failed.status, failed.text()),
            (500, r#"{"error":"server_error"}"#)
        );
        let again = oidc(&fake, refresh_body("cid-1", "secret-1", &rotated)).await;
        assert_eq!(again.status, 200);
        assert_eq!(fake.token_calls(), 9);
        assert_eq!(fake.token_requests()[0].body["grantType"], "refresh_token");
    });
}

#[test]
fn fake_q_social_refresh_issues_and_rotates() {
    let fake = FakeQ::start();
    let arn = "arn:aws:codewhisperer:us-east-1:123456789012:profile/ABCDEFGHIJKL";
    let account = fake.add_social("aorSOCIAL", arn);
    run(async {
        let body = json!({"refreshToken": "aorSOCIAL"}).to_string();
        let headers = [("content-type", "application/json")];
        let ok = post(&fake.social_url(), &headers, &body).await;
        assert_eq!(ok.status, 200);
        let json = ok.json();
        assert_eq!(json["expiresIn"], 3600);
        assert_eq!(json["profileArn"], arn);
        assert_eq!(
            json["refreshToken"].as_str().unwrap(),
            fake.current_refresh_token(account)
        );
        assert_ne!(json["refreshToken"], "aorSOCIAL");

        let old = post(&fake.social_url(), &headers, &body).await;
        assert_eq!(old.status, 400);
        assert_eq!(
            old.text(),
            r#"{"error":"invalid_grant","message":"Invalid refresh token provided"}"#
        );

        // A social token needs profileArn on chat requests.
        let access = json["accessToken"].as_str().unwrap();
        let without = chat_b(&fake, access, &chat_body("hi")).await;
        assert_eq!(
            (without.status, without.text()),
            (
                400,
                r#"{"message":"profileArn is required for this request.","reason":null}"#
            )
        );
        let mut with: Value = serde_json::from_str(&chat_body("hi")).unwrap();
        with["profileArn"] = json!(arn);
        let ok = chat_b(&fake, access, &with.to_string()).await;
        assert_eq!(ok.status, 200);
    });
}

#[test]
fn fake_q_token_delay_lets_concurrent_callers_overlap() {
    let fake = FakeQ::start();
    fake.add_idc("cid", "sec", "aorSAME");
    fake.set_rotate(false);
    fake.set_token_delay(Duration::from_millis(150));
    run(async {
        let started = Instant::now();
        let calls = (0..10).map(|_| oidc(&fake, refresh_body("cid", "sec", "aorSAME")));
        let answers = futures_util::future::join_all(calls).await;
        assert!(answers.iter().all(|a| a.status == 200));
        assert!(
            started.elapsed() < Duration::from_millis(600),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(fake.token_calls(), 10);
    });
}

#[test]
fn fake_q_chat_rejects_bad_bearer_headers_and_bodies() {
    let fake = FakeQ::start();
    let token = fake.issue_access_token();
    run(async {
        // Missing bearer.
        let none = post(
            &fake.api_url(),
            &[
                ("content-type", AMZ_JSON),
                ("x-amz-target", TARGET_GENERATE),
            ],
            &chat_body("hi"),
        )
        .await;
        assert_eq!((none.status, none.text()), (403, BEARER_INVALID_A));
        // Unknown bearer, both dialects.
        let bad = chat_a(&fake, "aoaNOTISSUED", &chat_body("hi")).await;
        assert_eq!((bad.status, bad.text()), (403, BEARER_INVALID_A));
        assert_eq!(bad.header("content-type"), Some(AMZ_JSON));
        let bad = chat_b(&fake, "aoaNOTISSUED", &chat_body("hi")).await;
        assert_eq!((bad.status, bad.text()), (403, BEARER_INVALID_B));

        // Dialect A needs its content type and target.
        let auth = format!("Bearer {token}");
        let wrong_type = post(
            &fake.api_url(),
            &[
                ("content-type", "application/json"),
                ("x-amz-target", TARGET_GENERATE),
                ("authorization", &auth),
            ],
            &chat_body("hi"),
        )
        .await;
        let unknown_op =
            r#"{"__type":"com.amazon.coral.service#UnknownOperationException","message":null}"#;
        assert_eq!((wrong_type.status, wrong_type.text()), (400, unknown_op));
        let no_target = post(
            &fake.api_url(),
            &[("content-type", AMZ_JSON), ("authorization", &auth)],
            &chat_body("hi"),
        )
        .await;
        assert_eq!((no_target.status, no_target.text()), (400, unknown_op));

        // Body checks.
        let no_trigger = json!({"conversationState": {"currentMessage": {"userInputMessage": {"content": "hi"}}}});
        let r = chat_a(&fake, &token, &no_trigger.to_string()).await;
        assert_eq!((r.status, r.text()), (400, IMPROPER_A));
        let no_current = json!({"conversationState": {"chatTriggerType": "MANUAL"}});
        let r = chat_a(&fake, &token, &no_current.to_string()).await;
        assert_eq!((r.status, r.text()), (400, IMPROPER_A));
        let two_users = json!({"conversationState": {
            "chatTriggerType": "MANUAL",
            "history": [{"userInputMessage": {"content": "a"}}],
            "currentMessage": {"userInputMessage": {"content": "b"}}}});
        let r = chat_b(&fake, &token, &two_users.to_string()).await;
        assert_eq!(
            (r.status, r.text()),
            (
                400,
                r#"{"message":"Improperly formed request.","reason":null}"#
            )
        );
        let good_history = json!({"conversationState": {
            "chatTriggerType": "MANUAL",
            "history": [{"userInputMessage": {"content": "a"}},
                        {"assistantResponseMessage": {"content": "b", "toolUses": [{"toolUseId": "t1", "name": "x", "input": {}}]}}],
            "currentMessage": {"userInputMessage": {"content": "c"}}}});
        assert_eq!(
            chat_b(&fake, &token, &good_history.to_string())
                .await
                .status,
            200
        );

        // Revoked tokens stop working; new ones work.
        fake.revoke_access_tokens();
        let r = chat_a(&fake, &token, &chat_body("hi")).await;
        assert_eq!((r.status, r.text()), (403, BEARER_INVALID_A));
        let fresh = fake.issue_access_token();
        assert_eq!(chat_a(&fake, &fresh, &chat_body("hi")).await.status, 200);

        // Everything was recorded, rejected requests included.
        let recorded = fake.requests();
        assert_eq!(recorded.len(), 11);
        assert_eq!(recorded[0].status, 403);
        assert_eq!(recorded.last().unwrap().status, 200);
    });
}

#[test]
fn fake_q_chat_records_requests_and_streams_the_scripted_frames() {
    let fake = FakeQ::start();
    let token = fake.issue_access_token();
    fake.push_reply(Reply::text(&["Hel", "lo"]));
    fake.push_reply(Reply::tool_call(
        "tooluse_1",
        "run_shell",
        &["{\"cmd\":", "\"ls\"}"],
    ));
    run(async {
        let r = chat_a(&fake, &token, &chat_body("first")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some(EVENTSTREAM));
        let mut expected = smithy_event(
            "messageMetadataEvent",
            format!(r#"{{"conversationId":"{FAKE_CONVERSATION_ID}","utteranceId":"{FAKE_UTTERANCE_ID}"}}"#)
                .as_bytes(),
        );
        expected.extend(smithy_event(
            "assistantResponseEvent",
            br#"{"content":"Hel"}"#,
        ));
        expected.extend(smithy_event(
            "assistantResponseEvent",
            br#"{"content":"lo"}"#,
        ));
        expected.extend(smithy_event(
            "meteringEvent",
            br#"{"unit":"credit","unitPlural":"credits","usage":0.0148}"#,
        ));
        expected.extend(smithy_event(
            "contextUsageEvent",
            br#"{"contextUsagePercentage":1.5}"#,
        ));
        assert_eq!(r.bytes(), expected.as_slice());

        let r = chat_b(&fake, &token, &chat_body("second")).await;
        assert_eq!(r.status, 200);
        let tool = Reply::tool_call("tooluse_1", "run_shell", &["{\"cmd\":", "\"ls\"}"]);
        assert_eq!(r.bytes(), tool.expected_body().as_slice());
        let second_frame = smithy_event(
            "toolUseEvent",
            br#"{"name":"run_shell","toolUseId":"tooluse_1"}"#,
        );
        assert!(r
            .bytes()
            .windows(second_frame.len())
            .any(|w| w == second_frame));

        // Queue empty: the default reply.
        let r = chat_a(&fake, &token, &chat_body("third")).await;
        assert_eq!(r.bytes(), Reply::default_text().expected_body().as_slice());

        let recorded = fake.requests();
        assert_eq!(recorded.len(), 3);
        let first = &recorded[0];
        assert_eq!((first.method.as_str(), first.path.as_str()), ("POST", "/"));
        assert_eq!(first.dialect, Some(Dialect::AwsJson));
        assert_eq!(first.header("X-Amz-Target"), Some(TARGET_GENERATE));
        assert!(first
            .headers
            .iter()
            .all(|(n, _)| *n == n.to_ascii_lowercase()));
        assert_eq!(first.bearer(), Some(token.as_str()));
        assert_eq!(first.user_content(), Some("first"));
        assert_eq!(first.model_id(), Some("claude-sonnet-4.5"));
        assert_eq!(recorded[1].path, "/generateAssistantResponse");
        assert_eq!(recorded[1].dialect, Some(Dialect::Rest));
        assert_eq!(
            recorded[1].body["conversationState"]["chatTriggerType"],
            "MANUAL"
        );
    });
}

#[test]
fn fake_q_http_error_replies_have_exact_status_and_body() {
    let fake = FakeQ::start();
    let token = fake.issue_access_token();
    fake.push_reply(Reply::error(QError::MonthlyQuota));
    fake.push_reply(Reply::error(QError::InputTooLong));
    fake.push_reply(Reply::error(QError::TemporarilySuspended));
    fake.push_reply(Reply::Http {
        status: 503,
        headers: vec![("retry-after".into(), "7".into())],
        body: "upstream unavailable".into(),
    });
    run(async {
        let r = chat_a(&fake, &token, &chat_body("a")).await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.text(),
            r#"{"__type":"com.amazon.aws.codewhisperer#ThrottlingException","message":"Maximum Request reached for this month.","reason":"MONTHLY_REQUEST_COUNT"}"#
        );
        let r = chat_b(&fake, &token, &chat_body("b")).await;
        assert_eq!(
            (r.status, r.text()),
            (
                400,
                r#"{"message":"Input is too long.","reason":"CONTENT_LENGTH_EXCEEDS_THRESHOLD"}"#
            )
        );
        let r = chat_a(&fake, &token, &chat_body("c")).await;
        assert_eq!(r.status, 403);
        assert_eq!(r.json()["reason"], "TEMPORARILY_SUSPENDED");
        assert!(r.json()["message"]
            .as_str()
            .unwrap()
            .contains("temporarily is suspended"));
        let r = chat_a(&fake, &token, &chat_body("d")).await;
        assert_eq!((r.status, r.text()), (503, "upstream unavailable"));
        assert_eq!(r.header("retry-after"), Some("7"));
    });
    // Catalogue sanity: statuses and dialect-B shapes.
    let cases = [
        (QError::ImproperlyFormed, 400),
        (QError::InvalidModelId, 400),
        (QError::ProfileArnRequired, 400),
        (QError::BearerInvalid, 403),
        (QError::MonthlyQuotaKiro, 402),
        (QError::DailyQuota, 429),
        (QError::Throttled, 429),
        (QError::InsufficientModelCapacity, 429),
        (QError::HighLoad, 500),
        (QError::ModelTemporarilyUnavailable, 500),
        (QError::ServiceUnavailable, 500),
    ];
    for (error, status) in cases {
        assert_eq!(error.status(), status, "{error:?}");
        let b: Value = serde_json::from_str(&error.body(Dialect::Rest)).unwrap();
        assert!(
            b.get("__type").is_none() && b.get("message").is_some(),
            "{error:?}"
        );
    }
    assert_eq!(
        QError::Throttled.body(Dialect::AwsJson),
        r#"{"__type":"com.amazon.aws.codewhisperer#ThrottlingException","message":"Rate exceeded","reason":null}"#
    );
}

#[test]
fn fake_q_broken_streams_splits_and_delays() {
    let fake = FakeQ::start();
    let token = fake.issue_access_token();
    let hi = json!({"content": "Hi"});
    fake.push_reply(Reply::Events(vec![
        Step::text("ok"),
        Step::DropMidFrame {
            event_type: "assistantResponseEvent".into(),
            payload: hi.clone(),
        },
        Step::text("never sent"),
    ]));
    fake.push_reply(Script::new().text("a").abort().reply());
    fake.push_reply(Reply::Events(vec![
        Step::Split {
            event_type: "assistantResponseEvent".into(),
            payload: hi.clone(),
            at: vec![3, 10, 60],
        },
        Step::Delay(Duration::from_millis(100)),
        Step::exception_for(&QError::Throttled),
        Step::error("InternalFailure", "boom"),
        Step::Raw(vec![0xde, 0xad]),
    ]));
    fake.push_reply(Reply::delayed(
        Duration::from_millis(100),
        Reply::error(QError::HighLoad),
    ));
    run(async {
        // awc ends the body quietly when the connection closes at a chunk boundary, so all
        // it sees is the truncated frame (the raw view is checked in the next test).
        let r = chat_a(&fake, &token, &chat_body("a")).await;
        assert_eq!(r.status, 200);
        let mut cut = Step::text("ok").encode();
        cut.extend(&smithy_event("assistantResponseEvent", br#"{"content":"Hi"}"#)[..62]);
        assert_eq!(r.body.as_deref().unwrap_or_default(), cut.as_slice());

        // A reset is an error for awc too.
        let r = chat_a(&fake, &token, &chat_body("reset")).await;
        assert_eq!(r.status, 200);
        assert!(r.body.is_err(), "{:?}", r.body);

        let started = Instant::now();
        let r = chat_a(&fake, &token, &chat_body("b")).await;
        assert!(started.elapsed() >= Duration::from_millis(100));
        let mut expected = smithy_event("assistantResponseEvent", br#"{"content":"Hi"}"#);
        expected.extend(encode_exception(
            "ThrottlingException",
            br#"{"message":"Rate exceeded","reason":null}"#,
        ));
        expected.extend(encode_error("InternalFailure", "boom"));
        expected.extend([0xde, 0xad]);
        assert_eq!(r.bytes(), expected.as_slice());

        let started = Instant::now();
        let r = chat_a(&fake, &token, &chat_body("c")).await;
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(r.status, 500);
        assert_eq!(r.json()["message"], QError::HighLoad.message().unwrap());
    });
}

#[test]
fn fake_q_stops_when_dropped_even_inside_a_runtime() {
    let port = run(async {
        let fake = FakeQ::start();
        let port = fake.port();
        drop(fake);
        port
    });
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// One HTTP/1.1 request over a plain TcpStream with `Connection: close`; returns the raw response.
fn raw_post(port: u16, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    raw_post_result(port, path, headers, body).0
}

/// [`raw_post`], plus the error that ended the read, if any.
fn raw_post_result(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (Vec<u8>, Option<std::io::ErrorKind>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(e.kind())),
        }
    }
}

/// Splits a raw chunked response into its head, its chunks and whether the terminating
/// zero-length chunk arrived.
fn dechunk(raw: &[u8]) -> (String, Vec<Vec<u8>>, bool) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block")
        + 4;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut rest = &raw[split..];
    let mut chunks = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (head, chunks, false);
        };
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
        if size == 0 {
            return (head, chunks, &rest[eol..] == b"\r\n\r\n");
        }
        let data = &rest[eol + 2..];
        if data.len() < size + 2 {
            chunks.push(data.to_vec());
            return (head, chunks, false);
        }
        chunks.push(data[..size].to_vec());
        rest = &data[size + 2..];
    }
}

#[test]
fn fake_q_streams_each_step_as_its_own_chunk_and_drops_mid_frame() {
    let fake = FakeQ::start();
    let token = fake.issue_access_token();
    let auth = format!("Bearer {token}");
    let headers = [
        ("Content-Type", AMZ_JSON),
        ("X-Amz-Target", TARGET_GENERATE),
        ("Authorization", auth.as_str()),
    ];
    let hi = json!({"content": "Hi"});
    let whole = smithy_event("assistantResponseEvent", br#"{"content":"Hi"}"#);

    let reply = Reply::text(&["a", "b"]);
    fake.push_reply(reply.clone());
    let (head, chunks, terminated) =
        dechunk(&raw_post(fake.port(), "/", &headers, &chat_body("x")));
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(terminated);
    let Reply::Events(steps) = &reply else {
        unreachable!()
    };
    let expected: Vec<Vec<u8>> = steps.iter().map(Step::encode).collect();
    assert_eq!(chunks, expected, "one HTTP chunk per step");

    fake.push_reply(Reply::Events(vec![Step::Split {
        event_type: "assistantResponseEvent".into(),
        payload: hi.clone(),
        at: vec![5, 200, 3],
    }]));
    let (_, chunks, terminated) = dechunk(&raw_post(fake.port(), "/", &headers, &chat_body("x")));
    assert!(terminated);
    assert_eq!(
        chunks,
        vec![
            whole[..3].to_vec(),
            whole[3..5].to_vec(),
            whole[5..].to_vec()
        ]
    );

    fake.push_reply(Reply::Events(vec![
        Step::text("ok"),
        Step::DropMidFrame {
            event_type: "assistantResponseEvent".into(),
            payload: hi,
        },
        Step::text("never sent"),
    ]));
    let (raw, error) = raw_post_result(fake.port(), "/", &headers, &chat_body("x"));
    assert_eq!(error, None, "a close, not a reset");
    let (_, chunks, terminated) = dechunk(&raw);
    assert!(!terminated, "the chunked body must not be terminated");
    assert_eq!(
        chunks,
        vec![Step::text("ok").encode(), whole[..whole.len() / 2].to_vec()]
    );

    // Abort: the data before it arrives, then the connection is reset.
    fake.push_reply(Script::new().text("ok").abort().text("never sent").reply());
    let (raw, error) = raw_post_result(fake.port(), "/", &headers, &chat_body("x"));
    assert_eq!(error, Some(std::io::ErrorKind::ConnectionReset));
    let (_, chunks, terminated) = dechunk(&raw);
    assert!(!terminated);
    assert_eq!(chunks, vec![Step::text("ok").encode()]);

    // The next connection works normally.
    let (head, _, terminated) = dechunk(&raw_post(fake.port(), "/", &headers, &chat_body("x")));
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n") && terminated);
}

#[test]
fn fake_q_per_account_scripts_models_and_expiry() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<FakeQ>();

    let fake = FakeQ::start();
    let a = fake.add_idc("cid", "sec", "aorA");
    let b = fake.add_idc("cid", "sec", "aorB");
    let token_a = fake.issue_access_token_for(a);
    let token_b = fake.issue_access_token_for(b);
    fake.set_account_error(a, Some(QError::TemporarilySuspended));
    fake.push_reply_for(b, Reply::text(&["for b"]));
    fake.push_reply(Reply::error(QError::Throttled));
    fake.set_valid_models(Some(vec!["claude-sonnet-4.5".into()]));
    run(async {
        assert_eq!(chat_a(&fake, &token_a, &chat_body("x")).await.status, 403);
        assert_eq!(chat_a(&fake, &token_a, &chat_body("x")).await.status, 403);
        let r = chat_a(&fake, &token_b, &chat_body("x")).await;
        assert_eq!(
            r.bytes(),
            Reply::text(&["for b"]).expected_body().as_slice()
        );
        assert_eq!(chat_a(&fake, &token_b, &chat_body("x")).await.status, 429);
        fake.set_account_error(a, None);
        assert_eq!(chat_a(&fake, &token_a, &chat_body("x")).await.status, 200);
        let recorded = fake.requests();
        let accounts: Vec<Option<usize>> = recorded.iter().map(|r| r.account).collect();
        assert_eq!(accounts, vec![Some(a), Some(a), Some(b), Some(b), Some(a)]);

        let other_model = chat_body("x").replace("claude-sonnet-4.5", "claude-nope");
        let r = chat_b(&fake, &token_b, &other_model).await;
        assert_eq!(
            (r.status, r.text()),
            (
                400,
                r#"{"message":"Invalid model. Please select a different model to continue.","reason":"INVALID_MODEL_ID"}"#
            )
        );

        let auth = format!("Bearer {token_b}");
        let models = post(
            &fake.api_url(),
            &[
                ("content-type", AMZ_JSON),
                ("x-amz-target", TARGET_LIST_MODELS),
                ("authorization", &auth),
            ],
            r#"{"origin":"CLI"}"#,
        )
        .await;
        assert_eq!(models.status, 200);
        assert_eq!(models.json()["models"][0]["modelId"], "claude-sonnet-4.5");
        assert_eq!(fake.requests().len(), 6, "model listings are not chats");
        assert_eq!(fake.all_requests().len(), 7);

        fake.set_expires_in(0);
        let expired = fake.issue_access_token();
        assert_eq!(chat_a(&fake, &expired, &chat_body("x")).await.status, 403);
    });
}

#[test]
fn fake_q_drop_cuts_a_reply_in_progress() {
    let fake = FakeQ::start();
    let token = fake.issue_access_token();
    fake.push_reply(Reply::delayed(
        Duration::from_secs(10),
        Reply::text(&["late"]),
    ));
    let port = fake.port();
    let client = std::thread::spawn(move || {
        let auth = format!("Bearer {token}");
        let headers = [
            ("Content-Type", AMZ_JSON),
            ("X-Amz-Target", TARGET_GENERATE),
            ("Authorization", auth.as_str()),
        ];
        raw_post(port, "/", &headers, &chat_body("x"))
    });
    while fake.chat_calls() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    drop(fake);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(client.join().unwrap().is_empty(), "no answer was sent");
}
