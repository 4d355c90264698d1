//! The benchmark's fake Amazon Q: the baseline, so it is as small and fast as we can make it.
//!
//! An actix-web server with one worker on `127.0.0.1:0` (in its own thread, on the bench's
//! core) that answers every `POST /` with an event stream chosen by the current [`Script`]:
//! either a pre-encoded answer written in one go ([`Script::Fixed`]), or text events paced
//! `interval` apart, each stamped with its send time in nanoseconds since [`crate::stats::now_ns`]'s
//! epoch ([`Script::Paced`]), which also serves as the slow trickle that holds streams open.
//! The request body is read (it must be, for keep-alive) and otherwise ignored: the bench
//! switches scripts between phases instead of sending instructions in the body, so the fake
//! does the same work whether it is called directly or through the gateway.
//!
//! It is not the test suite's fake (`tests/integration/support/fake_q.rs`), which checks every
//! request and scripts failures: that one is built for features and would be the bottleneck.
//! Frames are encoded with `aws-smithy-eventstream` (the AWS SDK's own encoder), never with the
//! gateway's code.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpResponse, HttpServer};
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bytes::Bytes;

/// What the fake answers to the next chat requests.
#[derive(Clone, Debug)]
pub enum Script {
    /// This event stream, pre-encoded, written at once.
    Fixed(Bytes),
    /// A metadata event, then `events` text events `interval` apart (the first at once), each
    /// carrying its send time as its text, then the closing metering and context-usage events.
    Paced { events: u32, interval: Duration },
    /// For the soak (examples/soak.rs), which holds streams open while it sends short
    /// requests: a request whose body contains `marker` is answered as [`Script::Paced`], any
    /// other with `short` at once.
    #[allow(dead_code)] // The benchmark itself does not use it.
    Split {
        marker: &'static str,
        events: u32,
        interval: Duration,
        short: Bytes,
    },
}

/// One event-stream frame: `:event-type`, `:content-type`, `:message-type: event`, JSON payload.
pub fn frame(event_type: &str, payload: &[u8]) -> Vec<u8> {
    let header =
        |name: &'static str, value: String| Header::new(name, HeaderValue::String(value.into()));
    let message = Message::new_from_parts(
        vec![
            header(":event-type", event_type.to_owned()),
            header(":content-type", "application/json".to_owned()),
            header(":message-type", "event".to_owned()),
        ],
        Bytes::copy_from_slice(payload),
    );
    let mut out = Vec::with_capacity(payload.len() + 100);
    write_message_to(&message, &mut out).expect("smithy encodes the frame");
    out
}

/// `assistantResponseEvent {"content": text}`.
pub fn text_frame(text: &str) -> Vec<u8> {
    let payload = serde_json::to_vec(&serde_json::json!({ "content": text })).expect("JSON");
    frame("assistantResponseEvent", &payload)
}

fn metadata_frame() -> Vec<u8> {
    frame(
        "messageMetadataEvent",
        br#"{"conversationId":"3d0c8c52-6a3e-4a8f-9d0e-0d6f1b7f2a11","utteranceId":"b7e1c0de-0000-4000-8000-000000000001"}"#,
    )
}

fn closing_frames() -> Vec<u8> {
    let mut out = frame(
        "meteringEvent",
        br#"{"unit":"credit","unitPlural":"credits","usage":0.0148}"#,
    );
    out.extend(frame(
        "contextUsageEvent",
        br#"{"contextUsagePercentage":1.5}"#,
    ));
    out
}

/// A whole answer: metadata, one text event per chunk, metering and context usage.
pub fn answer(chunks: &[&str]) -> Bytes {
    let mut out = metadata_frame();
    for chunk in chunks {
        out.extend(text_frame(chunk));
    }
    out.extend(closing_frames());
    Bytes::from(out)
}

/// Counters shared by the server and the bench.
struct State {
    script: Mutex<Script>,
    metadata: Bytes,
    closing: Bytes,
    /// Paced answers being written now, and the most at once since the last reset.
    open: AtomicUsize,
    peak: AtomicUsize,
    chats: AtomicU64,
    other: AtomicU64,
}

/// Keeps [`State::open`] right however a paced answer ends (also when the reader leaves).
struct OpenGuard(Arc<State>);

impl OpenGuard {
    fn new(state: Arc<State>) -> OpenGuard {
        let now = state.open.fetch_add(1, Ordering::Relaxed) + 1;
        state.peak.fetch_max(now, Ordering::Relaxed);
        OpenGuard(state)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The running fake; stopped when dropped.
pub struct Fake {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    state: Arc<State>,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Fake {
    pub fn start(script: Script) -> anyhow::Result<Fake> {
        let state = Arc::new(State {
            script: Mutex::new(script),
            metadata: Bytes::from(metadata_frame()),
            closing: Bytes::from(closing_frames()),
            open: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            chats: AtomicU64::new(0),
            other: AtomicU64::new(0),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("fake-q".into())
            .spawn(move || {
                let system = actix_web::rt::System::new();
                let started = system.block_on(async move {
                    let data = web::Data::from(shared);
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .app_data(web::PayloadConfig::new(256 << 20))
                            .route("/", web::post().to(chat))
                            .default_service(web::to(other))
                    })
                    .workers(1)
                    .tcp_nodelay(true)
                    // Longer than the gateway's pooled-connection keep-alive (15 s), so the
                    // gateway never reuses a connection the fake has just closed.
                    .keep_alive(Duration::from_secs(300))
                    .client_request_timeout(Duration::from_secs(60))
                    .backlog(4096)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .bind(("127.0.0.1", 0))?;
                    let addr = server.addrs()[0];
                    let server = server.run();
                    Ok::<_, std::io::Error>((addr, server))
                });
                match started {
                    Ok((addr, server)) => {
                        let _ = tx.send(Ok((addr, server.handle())));
                        let _ = system.block_on(server);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })?;
        let (addr, handle) = rx.recv()??;
        Ok(Fake {
            url: format!("http://{addr}"),
            state,
            handle,
            thread: Some(thread),
        })
    }

    pub fn set_script(&self, script: Script) {
        *self.state.script.lock().unwrap() = script;
    }

    /// Paced answers open right now.
    pub fn open(&self) -> usize {
        self.state.open.load(Ordering::Relaxed)
    }

    /// The most paced answers open at once since the last call; resets it.
    pub fn take_peak(&self) -> usize {
        self.state.peak.swap(self.open(), Ordering::Relaxed)
    }

    /// Chat requests answered so far.
    pub fn chats(&self) -> u64 {
        self.state.chats.load(Ordering::Relaxed)
    }

    /// Requests to anything but `POST /` (a token refresh would land here).
    pub fn other_requests(&self) -> u64 {
        self.state.other.load(Ordering::Relaxed)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = futures_util::FutureExt::now_or_never(self.handle.stop(false));
        // `stop` only sends the command; the server thread ends on its own.
        drop(self.thread.take());
    }
}

const EVENTSTREAM: &str = "application/vnd.amazon.eventstream";

async fn chat(state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    state.chats.fetch_add(1, Ordering::Relaxed);
    let script = state.script.lock().unwrap().clone();
    let script = match script {
        Script::Split {
            marker,
            events,
            interval,
            short,
        } => {
            let marked = body.windows(marker.len()).any(|w| w == marker.as_bytes());
            if marked {
                Script::Paced { events, interval }
            } else {
                Script::Fixed(short)
            }
        }
        other => other,
    };
    match script {
        Script::Fixed(bytes) => HttpResponse::Ok().content_type(EVENTSTREAM).body(bytes),
        Script::Paced { events, interval } => {
            let state = state.into_inner();
            let guard = OpenGuard::new(state.clone());
            let stream =
                futures_util::stream::unfold((0u32, guard), move |(step, guard)| async move {
                    let state = guard.0.clone();
                    let bytes = if step == 0 {
                        state.metadata.clone()
                    } else if step <= events {
                        if step > 1 {
                            actix_web::rt::time::sleep(interval).await;
                        }
                        // Stamped as late as possible: right before the bytes go to the writer.
                        Bytes::from(text_frame(&crate::stats::now_ns().to_string()))
                    } else if step == events + 1 {
                        state.closing.clone()
                    } else {
                        return None;
                    };
                    Some((Ok::<_, std::io::Error>(bytes), (step + 1, guard)))
                });
            HttpResponse::Ok()
                .content_type(EVENTSTREAM)
                .streaming(stream)
        }
        Script::Split { .. } => unreachable!("resolved above"),
    }
}

async fn other(state: web::Data<State>) -> HttpResponse {
    state.other.fetch_add(1, Ordering::Relaxed);
    HttpResponse::NotFound().body("the bench's fake Amazon Q only answers POST /")
}
