//! The pipeline for one request, the one place that strings the stages together:
//! pick an account → its access token → the request builder → Amazon Q → decode → interpret →
//! render (streamed or as one message) → the usage row and the access-log line. Both front ends
//! (Claude, OpenAI) come through here; they differ only in their renderer ([`Front`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use bytes::Bytes;
use tokio::sync::mpsc;

use futures_util::future::{select, Either, LocalBoxFuture};

use crate::claude::stream::{ClaudeMessage, ClaudeStream};
use crate::claude::types::MessagesRequest;
use crate::claude::{count, request as build};
use crate::db::{self, usage::NewUsageRecord};
use crate::error::ApiError;
use crate::http::auth::ClientKey;
use crate::http::AppState;
use crate::metrics::{EndpointLabels, RequestLabels, TokenLabels};
use crate::models::ModelMap;
use crate::pick;
use crate::q::answer::Interpreter;
use crate::q::client::ChatStream;
use crate::render::{Collector, Renderer};

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
    /// The input estimate while it is not settled into `input_tokens`.
    estimate: Option<Estimate>,
    output_tokens: u64,
    status: u16,
    error_class: Option<&'static str>,
    ttfb: Option<Duration>,
}

/// The input estimate, counted while the upstream call opens, never before it is sent: a
/// 100k-token request takes milliseconds to count, Amazon Q's first event takes longer.
enum Estimate {
    /// A small request, counted on the async worker once Amazon Q has answered (microseconds:
    /// not worth a trip to a blocking thread).
    Later(Box<MessagesRequest>),
    /// A large one, counted on a low-priority counting thread; `approx` stands in for it in
    /// `message_start` when Amazon Q is faster than the count (the final usage has the counted
    /// figure).
    Counting {
        count: tokio::sync::oneshot::Receiver<u64>,
        approx: u64,
    },
}

/// Requests estimated at fewer tokens than this are counted on the async worker.
const COUNT_INLINE_BELOW: u64 = 2_048;

impl Estimate {
    /// Starts the estimate of `req` (the upstream call must be under way or about to be).
    fn start(req: MessagesRequest) -> Estimate {
        let approx = count::approx_input_tokens(&req);
        if approx < COUNT_INLINE_BELOW {
            return Estimate::Later(Box::new(req));
        }
        Estimate::Counting {
            count: crate::tokens::count_in_background(move || count::input_tokens(&req)),
            approx,
        }
    }
}

impl Usage {
    /// The counted input estimate, waiting for the count if it still runs.
    async fn settle(&mut self) {
        match self.estimate.take() {
            Some(Estimate::Later(req)) => self.input_tokens = count::input_tokens(&req),
            Some(Estimate::Counting { count, approx }) => {
                self.input_tokens = count.await.unwrap_or(approx);
            }
            None => {}
        }
    }

    /// The counted estimate if it is ready (a small one is counted now), else the stand-in: for
    /// rows written where nobody can wait (a client that left, a failure).
    fn estimate_now(&mut self) {
        match self.estimate.take() {
            Some(Estimate::Later(req)) => self.input_tokens = count::input_tokens(&req),
            Some(Estimate::Counting { mut count, approx }) => {
                self.input_tokens = count.try_recv().unwrap_or(approx);
            }
            None => {}
        }
    }

    /// The input estimate for `message_start`: the counted one when it is ready, else the quick
    /// stand-in, so the first byte never waits for a count.
    async fn early_estimate(&mut self) -> u64 {
        match &self.estimate {
            Some(Estimate::Counting { count, approx }) if count.is_empty() => *approx,
            _ => {
                self.settle().await;
                self.input_tokens
            }
        }
    }

    /// Writes the usage row (off the async threads) and logs the access line.
    fn record(mut self, state: &AppState) {
        self.estimate_now();
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
        let m = crate::metrics::get();
        let model = row.model_upstream.clone().unwrap_or_else(|| "-".to_owned());
        m.requests
            .get_or_create(&RequestLabels {
                endpoint: row.endpoint.clone(),
                model: model.clone(),
                status: self.status,
            })
            .inc();
        for (direction, n) in [("input", row.input_tokens), ("output", row.output_tokens)] {
            m.tokens
                .get_or_create(&TokenLabels {
                    direction,
                    model: model.clone(),
                })
                .inc_by(n.max(0) as u64);
        }
        let endpoint = EndpointLabels {
            endpoint: row.endpoint.clone(),
        };
        if let Some(ttfb) = self.ttfb {
            m.ttfb.get_or_create(&endpoint).observe(ttfb.as_secs_f64());
        }
        m.latency
            .get_or_create(&endpoint)
            .observe(latency.as_secs_f64());
        state.usage.push(row);
    }

    fn fail(mut self, state: &AppState, e: &ApiError) {
        self.status = e.status();
        self.error_class = Some(e.class_name());
        self.record(state);
    }
}

/// The status of a usage row whose client left before the response head went out (nginx's
/// "client closed request"; never sent to anyone).
const CLIENT_CLOSED: u16 = 499;

/// A usage row not written yet, in a request future that actix drops when its client leaves
/// before the response head went out (a non-streamed answer being collected, a stream whose
/// upstream is still opening). The row is then written on drop: status 499,
/// `client_disconnected`, and the output collected so far. Once a stream's head is out, its
/// usage belongs to the pump, which outlives the handler.
struct Unrecorded {
    state: web::Data<AppState>,
    usage: Option<Usage>,
    /// The non-streamed answer collected so far.
    collected: Option<Box<dyn Collector>>,
}

impl Unrecorded {
    fn usage(&mut self) -> &mut Usage {
        self.usage.as_mut().expect("the usage is recorded once")
    }

    /// Hands the row over to whoever records it.
    fn take(&mut self) -> Usage {
        self.usage.take().expect("the usage is recorded once")
    }

    fn fail(&mut self, e: &ApiError) {
        let usage = self.take();
        usage.fail(&self.state, e);
    }
}

impl Drop for Unrecorded {
    fn drop(&mut self) {
        let Some(mut usage) = self.usage.take() else {
            return;
        };
        usage.status = CLIENT_CLOSED;
        usage.error_class = Some("client_disconnected");
        // No waiting here: `record` takes the estimate as far as it got.
        if let Some(collected) = &self.collected {
            usage.output_tokens = collected.output_tokens();
        }
        usage.record(&self.state);
    }
}

/// Which client protocol a request came in on, with what its renderer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    Claude,
    OpenAi { include_usage: bool },
}

/// One proxied request: the endpoint (for the usage row and the log), the protocol, and the
/// request in the one shape the builder takes.
pub struct Call {
    pub endpoint: &'static str,
    pub front: Front,
    pub req: MessagesRequest,
}

/// The account that took the request and its open answer stream.
type Opened = (pick::AccountLease, ChatStream);

/// Runs one request through the pipeline.
pub async fn run(
    state: web::Data<AppState>,
    client: web::Data<awc::Client>,
    key: ClientKey,
    call: Call,
) -> Result<HttpResponse, ApiError> {
    let Call {
        endpoint,
        front,
        req,
    } = call;
    let mut pending = Unrecorded {
        state: state.clone(),
        usage: Some(Usage {
            started: Instant::now(),
            key,
            endpoint,
            model_requested: req.model.clone(),
            model_upstream: None,
            stream: req.stream,
            account: None,
            lease: None,
            input_tokens: 0,
            estimate: None,
            output_tokens: 0,
            status: 200,
            error_class: None,
            ttfb: None,
        }),
        collected: None,
    };
    let built = match build_request(&req, &state.upstream.origin, &state.models) {
        Ok(b) => b,
        Err(e) => {
            pending.fail(&e);
            return Err(e);
        }
    };
    pending.usage().model_upstream = Some(built.upstream_model.clone());
    let interpreter = Interpreter::new(
        built.thinking,
        built.tool_names.clone(),
        ModelMap::context_window(&built.upstream_model),
    );
    let stream = req.stream;
    let answer = Answering {
        interpreter,
        front,
        model: req.model.clone(),
        created: chrono::Utc::now().timestamp(),
    };
    let mut opening: LocalBoxFuture<'static, Result<Opened, ApiError>> = {
        let (state, client, body) = (state.clone(), client.clone(), built.request);
        Box::pin(async move { pick::open(&state, &client, &body).await })
    };
    pending.usage().estimate = Some(Estimate::start(req));
    if !stream {
        return match opening.await {
            Ok(opened) => collect_response(opened, answer, pending).await,
            Err(e) => {
                pending.usage().settle().await;
                pending.fail(&e);
                Err(e)
            }
        };
    }
    // A stream answers with its HTTP status when the upstream opens (or fails) within a ping
    // interval; a failover that takes longer commits to the stream and keeps the client waiting
    // with pings, and an error then goes in-band.
    let deadline = Box::pin(tokio::time::sleep(state.ping_every));
    match select(opening, deadline).await {
        Either::Left((Ok(opened), _)) => Ok(stream_response(
            state,
            Upstream::Open(Box::new(opened)),
            answer,
            pending.take(),
        )),
        Either::Left((Err(e), _)) => {
            pending.usage().settle().await;
            pending.fail(&e);
            Err(e)
        }
        Either::Right((_, still_opening)) => {
            opening = still_opening;
            Ok(stream_response(
                state,
                Upstream::Opening(opening),
                answer,
                pending.take(),
            ))
        }
    }
}

/// What turns the upstream's events into the client's answer.
struct Answering {
    interpreter: Interpreter,
    front: Front,
    /// The model as the client named it, echoed back.
    model: String,
    created: i64,
}

impl Answering {
    fn renderer(&self, input_tokens: u64) -> Box<dyn Renderer> {
        match self.front {
            Front::Claude => Box::new(ClaudeStream::new(
                message_id(self.front),
                self.model.clone(),
                input_tokens,
            )),
            Front::OpenAi { include_usage } => Box::new(crate::openai::stream::OpenAiStream::new(
                message_id(self.front),
                self.model.clone(),
                self.created,
                include_usage,
            )),
        }
    }

    fn collector(&self) -> Box<dyn Collector> {
        match self.front {
            Front::Claude => Box::new(ClaudeMessage::new(
                message_id(self.front),
                self.model.clone(),
            )),
            Front::OpenAi { .. } => Box::new(crate::openai::stream::OpenAiMessage::new(
                message_id(self.front),
                self.model.clone(),
                self.created,
            )),
        }
    }
}

fn message_id(front: Front) -> String {
    let id = uuid::Uuid::new_v4().simple();
    match front {
        Front::Claude => format!("msg_{id}"),
        Front::OpenAi { .. } => format!("chatcmpl-{id}"),
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

/// Non-streaming: read the whole answer, then reply with one body.
async fn collect_response(
    (lease, mut stream): Opened,
    answer: Answering,
    mut pending: Unrecorded,
) -> Result<HttpResponse, ApiError> {
    let state = pending.state.clone();
    let usage = pending.usage();
    usage.account = Some((lease.id(), lease.name().to_owned()));
    let started = usage.started;
    let mut ttfb = None;
    let message = pending.collected.insert(answer.collector());
    let mut interpreter = answer.interpreter;
    let mut shutdown = state.shutdown.subscribe();
    let outcome = loop {
        let next = tokio::select! {
            next = stream.next_event() => next,
            _ = shutting_down(&mut shutdown) => break Err(ApiError::ShuttingDown),
        };
        match next {
            Ok(Some(event)) => {
                ttfb.get_or_insert_with(|| started.elapsed());
                for a in interpreter.on_event(event) {
                    message.on_answer(a);
                }
            }
            Ok(None) => {
                for a in interpreter.finish() {
                    message.on_answer(a);
                }
                break Ok(());
            }
            Err(e) => match interpreter.on_error(&e) {
                Some(answers) => {
                    for a in answers {
                        message.on_answer(a);
                    }
                    break Ok(());
                }
                None => {
                    lease.report_failure(&e);
                    break Err(ApiError::Upstream(e));
                }
            },
        }
    };
    let mut message = pending.collected.take().expect("collected above");
    let mut usage = pending.take();
    usage.ttfb = ttfb;
    usage.lease = Some(lease);
    if let Err(e) = outcome {
        usage.fail(&state, &e);
        return Err(e);
    }
    usage.settle().await;
    let input = interpreter
        .upstream_input_tokens()
        .unwrap_or(usage.input_tokens);
    // A collector counts the whole answer each time it is asked: count once, for both the body
    // (unless Amazon Q gave its own figure) and the usage row.
    let counted = message.output_tokens();
    let body = message.finish(
        interpreter.stop_reason(),
        input,
        Some(interpreter.upstream_output_tokens().unwrap_or(counted)),
    );
    usage.input_tokens = input;
    usage.output_tokens = counted;
    usage.record(&state);
    Ok(HttpResponse::Ok().json(body))
}

/// The upstream side of a stream: open, or still failing over.
enum Upstream {
    Open(Box<Opened>),
    Opening(LocalBoxFuture<'static, Result<Opened, ApiError>>),
}

type Tx = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Streaming: the opening event at once, then every event as soon as it is rendered, pings while
/// Amazon Q is silent, and the usage row when the stream ends (also when the client leaves).
fn stream_response(
    state: web::Data<AppState>,
    upstream: Upstream,
    answer: Answering,
    usage: Usage,
) -> HttpResponse {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    actix_web::rt::spawn(pump(state.into_inner(), upstream, answer, usage, tx));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    HttpResponse::Ok()
        .insert_header(("content-type", "text/event-stream"))
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body)
}

async fn send(tx: &Tx, chunks: Vec<Bytes>) -> bool {
    for chunk in chunks {
        if tx.send(Ok(chunk)).await.is_err() {
            return false;
        }
    }
    true
}

async fn pump(
    state: Arc<AppState>,
    upstream: Upstream,
    answer: Answering,
    mut usage: Usage,
    tx: Tx,
) {
    let mut renderer = answer.renderer(usage.early_estimate().await);
    let mut interpreter = answer.interpreter;
    let mut shutdown = state.shutdown.subscribe();
    let mut open = send(&tx, renderer.start()).await;
    let opened = match upstream {
        Upstream::Open(opened) => Some(*opened),
        Upstream::Opening(mut opening) => loop {
            if !open {
                break None;
            }
            tokio::select! {
                opened = &mut opening => match opened {
                    Ok(opened) => break Some(opened),
                    Err(e) => {
                        usage.status = e.status();
                        usage.error_class = Some(e.class_name());
                        send(&tx, renderer.fail(&e)).await;
                        usage.record(&state);
                        return;
                    }
                },
                _ = tokio::time::sleep(state.ping_every) => {
                    open = send(&tx, vec![renderer.ping()]).await;
                }
                // The client left: stop failing over now (dropping `opening` cancels it).
                _ = tx.closed() => open = false,
            }
        },
    };
    if let Some((lease, mut stream)) = opened {
        usage.account = Some((lease.id(), lease.name().to_owned()));
        usage.lease = Some(lease);
        while open {
            let next = tokio::select! {
                next = tokio::time::timeout(state.ping_every, stream.next_event()) => next,
                // The client left: stop reading from Amazon Q now, not at the next event.
                _ = tx.closed() => {
                    open = false;
                    break;
                }
                _ = shutting_down(&mut shutdown) => {
                    let e = ApiError::ShuttingDown;
                    usage.status = e.status();
                    usage.error_class = Some(e.class_name());
                    usage.output_tokens = renderer.output_tokens();
                    send(&tx, renderer.fail(&e)).await;
                    break;
                }
            };
            let next = match next {
                Err(_) => {
                    open = send(&tx, vec![renderer.ping()]).await;
                    continue;
                }
                Ok(next) => next,
            };
            match next {
                Ok(Some(event)) => {
                    usage.ttfb.get_or_insert_with(|| usage.started.elapsed());
                    let mut out = Vec::new();
                    for a in interpreter.on_event(event) {
                        out.extend(renderer.on_answer(a));
                    }
                    open = send(&tx, out).await;
                }
                Ok(None) => {
                    finish(&mut interpreter, renderer.as_mut(), &mut usage, &tx).await;
                    break;
                }
                Err(e) => {
                    match interpreter.on_error(&e) {
                        Some(answers) => {
                            let mut out = Vec::new();
                            for a in answers {
                                out.extend(renderer.on_answer(a));
                            }
                            send(&tx, out).await;
                            finish(&mut interpreter, renderer.as_mut(), &mut usage, &tx).await;
                        }
                        None => {
                            log::warn!("Amazon Q failed mid-stream: {e}");
                            if let Some(lease) = &usage.lease {
                                lease.report_failure(&e);
                            }
                            usage.error_class = Some(e.class.as_str());
                            usage.output_tokens = renderer.output_tokens();
                            send(&tx, renderer.fail(&ApiError::Upstream(e))).await;
                        }
                    }
                    break;
                }
            }
        }
    }
    if !open {
        usage.error_class = Some("client_disconnected");
        usage.output_tokens = renderer.output_tokens();
    }
    usage.record(&state);
}

/// Resolves once the shutdown grace period is over.
async fn shutting_down(rx: &mut tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|over| *over).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn finish(
    interpreter: &mut Interpreter,
    renderer: &mut dyn Renderer,
    usage: &mut Usage,
    tx: &Tx,
) {
    usage.settle().await;
    let mut out = Vec::new();
    for a in interpreter.finish() {
        out.extend(renderer.on_answer(a));
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
