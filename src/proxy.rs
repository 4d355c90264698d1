//! The pipeline for one request, the one place that strings the stages together:
//! pick an account → its access token → the request builder → Amazon Q → decode → interpret →
//! render (streamed or as one message) → the usage row and the access-log line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::claude::stream::{ClaudeMessage, ClaudeStream, SseEvent};
use crate::claude::types::MessagesRequest;
use crate::claude::{count, request as build};
use crate::db::{self, usage::NewUsageRecord};
use crate::error::ApiError;
use crate::http::auth::ClientKey;
use crate::http::{write_later, AppState};
use crate::models::ModelMap;
use crate::pick;
use crate::q::answer::Interpreter;
use crate::q::client::ChatStream;

/// What the usage row and the access-log line need, filled in as the request goes.
struct Usage {
    started: Instant,
    key: ClientKey,
    endpoint: &'static str,
    model_requested: String,
    model_upstream: Option<String>,
    stream: bool,
    account: Option<(i32, String)>,
    /// Holds the account's concurrency slot until the usage is recorded (the response's end).
    lease: Option<pick::AccountLease>,
    input_tokens: u64,
    output_tokens: u64,
    status: u16,
    error_class: Option<&'static str>,
    ttfb: Option<Duration>,
}

impl Usage {
    /// Writes the usage row (off the async threads) and logs the access line.
    fn record(self, state: &AppState) {
        let latency = self.started.elapsed();
        log::info!(
            target: "amq2api::access",
            "POST {} {} key={} account={} model={} in={} out={} {}ms{}",
            self.endpoint,
            self.status,
            self.key.name,
            self.account.as_ref().map_or("-", |a| a.1.as_str()),
            self.model_requested,
            self.input_tokens,
            self.output_tokens,
            latency.as_millis(),
            self.error_class.map(|c| format!(" error={c}")).unwrap_or_default(),
        );
        let row = NewUsageRecord {
            created_at: db::now(),
            api_key_id: Some(self.key.id),
            account_id: self.account.as_ref().map(|a| a.0),
            account_name: self.account.map(|a| a.1),
            endpoint: self.endpoint.to_owned(),
            model_requested: self.model_requested,
            model_upstream: self.model_upstream,
            stream: self.stream,
            input_tokens: self.input_tokens as i64,
            output_tokens: self.output_tokens as i64,
            status: self.status as i32,
            error_class: self.error_class.map(str::to_owned),
            ttfb_ms: self.ttfb.map(|d| d.as_millis() as i64),
            latency_ms: latency.as_millis() as i64,
        };
        write_later(&state.pool, "the usage row", move |conn| {
            db::usage::insert(conn, &row)
        });
    }

    fn fail(mut self, state: &AppState, e: &ApiError) {
        self.status = e.status();
        self.error_class = Some(e.class_name());
        self.record(state);
    }
}

/// `POST /v1/messages`.
pub async fn messages(
    state: web::Data<AppState>,
    client: web::Data<awc::Client>,
    key: ClientKey,
    req: MessagesRequest,
) -> Result<HttpResponse, ApiError> {
    let mut usage = Usage {
        started: Instant::now(),
        key,
        endpoint: "/v1/messages",
        model_requested: req.model.clone(),
        model_upstream: None,
        stream: req.stream,
        account: None,
        lease: None,
        input_tokens: count::input_tokens(&req),
        output_tokens: 0,
        status: 200,
        error_class: None,
        ttfb: None,
    };
    let built = match build_request(&req, &state.upstream.origin, &state.models) {
        Ok(b) => b,
        Err(e) => {
            usage.fail(&state, &e);
            return Err(e);
        }
    };
    usage.model_upstream = Some(built.upstream_model.clone());
    let (lease, stream) = match pick::open(&state, &client, &built.request).await {
        Ok(opened) => opened,
        Err(e) => {
            usage.fail(&state, &e);
            return Err(e);
        }
    };
    usage.account = Some((lease.id(), lease.name().to_owned()));
    usage.lease = Some(lease);
    let interpreter = Interpreter::new(
        built.thinking,
        built.tool_names.clone(),
        ModelMap::context_window(&built.upstream_model),
    );
    let message_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    if req.stream {
        Ok(stream_response(
            state,
            stream,
            interpreter,
            message_id,
            req.model,
            usage,
        ))
    } else {
        collect_response(&state, stream, interpreter, message_id, req.model, usage).await
    }
}

fn build_request(
    req: &MessagesRequest,
    origin: &str,
    models: &ModelMap,
) -> Result<build::Built, ApiError> {
    let options = build::BuildOptions {
        origin,
        models,
        conversation_id: None,
    };
    let built = build::build(req, &options).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    if !built.repairs.is_empty() {
        log::debug!(target: "amq2api::claude::request", "repairs applied: {}", built.repairs.join(", "));
    }
    Ok(built)
}

/// Non-streaming: read the whole answer, then reply with one message.
async fn collect_response(
    state: &AppState,
    mut stream: ChatStream,
    mut interpreter: Interpreter,
    message_id: String,
    model: String,
    mut usage: Usage,
) -> Result<HttpResponse, ApiError> {
    let mut message = ClaudeMessage::new(message_id, model);
    loop {
        match stream.next_event().await {
            Ok(Some(event)) => {
                usage.ttfb.get_or_insert_with(|| usage.started.elapsed());
                for answer in interpreter.on_event(event) {
                    message.on_answer(answer);
                }
            }
            Ok(None) => {
                for answer in interpreter.finish() {
                    message.on_answer(answer);
                }
                break;
            }
            Err(e) => match interpreter.on_error(&e) {
                Some(answers) => {
                    for answer in answers {
                        message.on_answer(answer);
                    }
                    break;
                }
                None => {
                    let e = ApiError::Upstream(e);
                    usage.fail(state, &e);
                    return Err(e);
                }
            },
        }
    }
    let input = interpreter
        .upstream_input_tokens()
        .unwrap_or(usage.input_tokens);
    let body = message.finish(
        interpreter.stop_reason(),
        input,
        interpreter.upstream_output_tokens(),
    );
    usage.input_tokens = input;
    usage.output_tokens = message.output_tokens();
    usage.record(state);
    Ok(HttpResponse::Ok().json(body))
}

/// Streaming: `message_start` at once, then every event as soon as it is rendered, pings while
/// Amazon Q is silent, and the usage row when the stream ends (also when the client leaves).
fn stream_response(
    state: web::Data<AppState>,
    stream: ChatStream,
    interpreter: Interpreter,
    message_id: String,
    model: String,
    usage: Usage,
) -> HttpResponse {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let renderer = ClaudeStream::new(message_id, model, usage.input_tokens);
    actix_web::rt::spawn(pump(
        state.into_inner(),
        stream,
        interpreter,
        renderer,
        usage,
        tx,
    ));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    HttpResponse::Ok()
        .insert_header(("content-type", "text/event-stream"))
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body)
}

async fn send(tx: &mpsc::Sender<Result<Bytes, std::io::Error>>, events: Vec<SseEvent>) -> bool {
    for event in events {
        if tx.send(Ok(event.to_bytes())).await.is_err() {
            return false;
        }
    }
    true
}

async fn pump(
    state: Arc<AppState>,
    mut stream: ChatStream,
    mut interpreter: Interpreter,
    mut renderer: ClaudeStream,
    mut usage: Usage,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut open = send(&tx, renderer.start()).await;
    while open {
        let next = match tokio::time::timeout(state.ping_every, stream.next_event()).await {
            Err(_) => {
                open = send(
                    &tx,
                    vec![SseEvent {
                        event: "ping",
                        data: serde_json::json!({"type": "ping"}),
                    }],
                )
                .await;
                continue;
            }
            Ok(next) => next,
        };
        match next {
            Ok(Some(event)) => {
                usage.ttfb.get_or_insert_with(|| usage.started.elapsed());
                let mut out = Vec::new();
                for answer in interpreter.on_event(event) {
                    out.extend(renderer.on_answer(answer));
                }
                open = send(&tx, out).await;
            }
            Ok(None) => {
                finish(&mut interpreter, &mut renderer, &mut usage, &tx).await;
                break;
            }
            Err(e) => {
                match interpreter.on_error(&e) {
                    Some(answers) => {
                        let mut out = Vec::new();
                        for answer in answers {
                            out.extend(renderer.on_answer(answer));
                        }
                        send(&tx, out).await;
                        finish(&mut interpreter, &mut renderer, &mut usage, &tx).await;
                    }
                    None => {
                        log::warn!("Amazon Q failed mid-stream: {e}");
                        usage.error_class = Some(e.class.as_str());
                        usage.output_tokens = renderer.output_tokens();
                        send(
                            &tx,
                            renderer.fail(
                                e.class.anthropic_error_type(),
                                &ApiError::Upstream(e).message(),
                            ),
                        )
                        .await;
                    }
                }
                break;
            }
        }
    }
    if !open {
        usage.error_class = Some("client_disconnected");
        usage.output_tokens = renderer.output_tokens();
    }
    usage.record(&state);
}

async fn finish(
    interpreter: &mut Interpreter,
    renderer: &mut ClaudeStream,
    usage: &mut Usage,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut out = Vec::new();
    for answer in interpreter.finish() {
        out.extend(renderer.on_answer(answer));
    }
    let input = interpreter
        .upstream_input_tokens()
        .unwrap_or(usage.input_tokens);
    out.extend(renderer.finish(
        interpreter.stop_reason(),
        input,
        interpreter.upstream_output_tokens(),
    ));
    usage.input_tokens = input;
    usage.output_tokens = renderer.output_tokens();
    send(tx, out).await;
}
