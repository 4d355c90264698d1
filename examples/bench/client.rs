//! The load generator: one awc client on the bench's single-threaded actix runtime, requests
//! that read the answer the way the figures need it (the gateway's Claude SSE, or the fake's
//! event stream when called directly), and a closed-loop driver that keeps `n` requests in
//! flight until a request count or a time limit is reached.
//!
//! Written here rather than taken from a load-testing crate because the figures need what
//! such tools do not measure: the time to the first *text* event inside each protocol and the
//! send stamps carried in the event texts. The two parsers are minimal on purpose (the SSE
//! one splits on blank lines and reads only `content_block_delta`, `message_stop` and `error`
//! events; the event-stream one uses `aws-smithy-eventstream`'s frame reader).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;

use crate::stats::now_ns;

/// The bench's HTTP client: no connection limit (awc's default is 100 per client), a
/// keep-alive shorter than actix-web's server default (5 s) so no dead pooled connection is
/// ever reused, and timeouts far beyond any phase's expected latency.
pub fn http_client() -> awc::Client {
    awc::Client::builder()
        .connector(
            awc::Connector::new()
                .limit(0)
                .timeout(Duration::from_secs(10))
                .conn_keep_alive(Duration::from_secs(4)),
        )
        .timeout(Duration::from_secs(120))
        .disable_redirects()
        .finish()
}

/// How the answer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// The gateway's Claude SSE: text = `content_block_delta`; complete = `message_stop` seen.
    Sse,
    /// Amazon Q's event stream: text = `assistantResponseEvent` frames.
    EventStream,
    /// The whole body at once (non-streaming requests, count_tokens).
    Whole,
}

/// One request, sent as often as needed.
pub struct Req {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
    pub wire: Wire,
    /// Event texts are send stamps: collect the forwarding delays.
    pub stamped: bool,
}

/// What one request measured.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// Request sent → response head received.
    pub head: Duration,
    /// Request sent → first text event received (streams only).
    pub first_text: Option<Duration>,
    /// Request sent → answer complete.
    pub total: Duration,
    pub texts: u32,
    /// Per text event, arrival − send stamp, in nanoseconds (stamped requests only).
    pub delays_ns: Vec<u64>,
    /// The whole body ([`Wire::Whole`] only).
    pub body: Bytes,
    pub error: Option<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Sends `req` and reads its answer; every failure (status, transport, truncated stream) is an
/// error in the outcome, never a panic.
pub async fn send(client: &awc::Client, req: &Req) -> Outcome {
    let started = Instant::now();
    let mut out = Outcome::default();
    if let Err(e) = exchange(client, req, started, &mut out).await {
        out.error = Some(e);
    }
    out.total = started.elapsed();
    out
}

async fn exchange(
    client: &awc::Client,
    req: &Req,
    started: Instant,
    out: &mut Outcome,
) -> Result<(), String> {
    let mut request = client.post(&req.url);
    for (name, value) in &req.headers {
        request = request.insert_header((*name, value.as_str()));
    }
    let mut response = request
        .send_body(req.body.clone())
        .await
        .map_err(|e| format!("send: {e}"))?;
    out.head = started.elapsed();
    if response.status() != 200 {
        let body = response.body().limit(4096).await.unwrap_or_default();
        return Err(format!(
            "HTTP {}: {}",
            response.status().as_u16(),
            String::from_utf8_lossy(&body)
        ));
    }
    if req.wire == Wire::Whole {
        out.body = response
            .body()
            .limit(64 << 20)
            .await
            .map_err(|e| format!("body: {e}"))?;
        return Ok(());
    }
    let mut buf = BytesMut::new();
    let mut scanned = 0;
    let mut complete = false;
    while let Some(chunk) = response.next().await {
        let chunk = chunk.map_err(|e| format!("stream: {e}"))?;
        // One arrival time for every event in this chunk: when the bytes were handed to us.
        let arrived = now_ns();
        let since_start = started.elapsed();
        buf.extend_from_slice(&chunk);
        match req.wire {
            Wire::Sse => {
                while let Some(end) = find_blank_line(&buf, scanned) {
                    let event = buf.split_to(end + 2);
                    scanned = 0;
                    match sse_event(&event)? {
                        SseKind::Text(text) => {
                            on_text(out, req.stamped, &text, arrived, since_start)?
                        }
                        SseKind::Stop => complete = true,
                        SseKind::Other => {}
                    }
                }
                scanned = buf.len().saturating_sub(1);
            }
            Wire::EventStream => {
                while buf.len() >= 4 {
                    let total = (&buf[..4]).get_u32() as usize;
                    if buf.len() < total {
                        break;
                    }
                    let frame = buf.split_to(total);
                    let message = aws_smithy_eventstream::frame::read_message_from(frame.freeze())
                        .map_err(|e| format!("bad frame: {e}"))?;
                    let is_text = message.headers().iter().any(|h| {
                        h.name().as_str() == ":event-type"
                            && h.value().as_string().map(|s| s.as_str())
                                == Ok("assistantResponseEvent")
                    });
                    if is_text {
                        let text = if req.stamped {
                            serde_json::from_slice::<Content>(message.payload())
                                .map_err(|e| format!("bad payload: {e}"))?
                                .content
                        } else {
                            String::new()
                        };
                        on_text(out, req.stamped, &text, arrived, since_start)?;
                    }
                }
                complete = true;
            }
            Wire::Whole => unreachable!(),
        }
    }
    match req.wire {
        Wire::Sse if !complete => Err("the stream ended without message_stop".into()),
        Wire::EventStream if !buf.is_empty() => Err("the stream ended inside a frame".into()),
        _ => Ok(()),
    }
}

#[derive(serde::Deserialize)]
struct Content {
    content: String,
}

fn on_text(
    out: &mut Outcome,
    stamped: bool,
    text: &str,
    arrived: u64,
    since_start: Duration,
) -> Result<(), String> {
    out.texts += 1;
    out.first_text.get_or_insert(since_start);
    if stamped {
        let sent: u64 = text
            .trim()
            .parse()
            .map_err(|_| format!("text {text:?} is not a send stamp"))?;
        out.delays_ns.push(arrived.saturating_sub(sent));
    }
    Ok(())
}

fn find_blank_line(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| i + from)
}

enum SseKind {
    Text(String),
    Stop,
    Other,
}

#[derive(serde::Deserialize)]
struct DeltaEvent {
    delta: Delta,
}

#[derive(serde::Deserialize)]
struct Delta {
    #[serde(default)]
    text: Option<String>,
}

fn sse_event(event: &[u8]) -> Result<SseKind, String> {
    let text = std::str::from_utf8(event).map_err(|_| "SSE event is not UTF-8".to_owned())?;
    let mut name = "";
    let mut data = "";
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("event: ") {
            name = v;
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = v;
        }
    }
    match name {
        "content_block_delta" => {
            let parsed: DeltaEvent =
                serde_json::from_str(data).map_err(|e| format!("bad content_block_delta: {e}"))?;
            Ok(parsed.delta.text.map_or(SseKind::Other, SseKind::Text))
        }
        "message_stop" => Ok(SseKind::Stop),
        "error" => Err(format!("error event: {data}")),
        _ => Ok(SseKind::Other),
    }
}

/// What a closed-loop run measured.
pub struct Run {
    pub outcomes: Vec<Outcome>,
    pub elapsed: Duration,
}

impl Run {
    pub fn errors(&self) -> usize {
        self.outcomes.iter().filter(|o| !o.ok()).count()
    }

    pub fn first_error(&self) -> Option<&str> {
        self.outcomes.iter().find_map(|o| o.error.as_deref())
    }

    pub fn rate(&self) -> f64 {
        (self.outcomes.len() - self.errors()) as f64 / self.elapsed.as_secs_f64()
    }

    /// Milliseconds of `f` over the successful outcomes.
    pub fn ms_of(&self, f: impl Fn(&Outcome) -> Option<Duration>) -> Vec<f64> {
        self.outcomes
            .iter()
            .filter(|o| o.ok())
            .filter_map(&f)
            .map(crate::stats::ms)
            .collect()
    }

    pub fn delays_ms(&self) -> Vec<f64> {
        self.outcomes
            .iter()
            .filter(|o| o.ok())
            .flat_map(|o| o.delays_ns.iter().map(|&d| d as f64 / 1e6))
            .collect()
    }
}

/// Keeps `concurrency` requests in flight until `max_requests` were started or `max_time`
/// has passed; `req(i)` gives the i-th request. With a `stagger`, the k-th of the `n` loops
/// starts `stagger × k / n` late, so that streams of equal length do not move in waves.
pub async fn closed_loop(
    client: &awc::Client,
    concurrency: usize,
    max_requests: usize,
    max_time: Duration,
    stagger: Duration,
    req: impl Fn(usize) -> Rc<Req>,
) -> Run {
    let started = Instant::now();
    let deadline = started + max_time;
    let next = Cell::new(0usize);
    let outcomes = RefCell::new(Vec::with_capacity(max_requests));
    let loops = concurrency.min(max_requests).max(1);
    let (next, outcomes, req) = (&next, &outcomes, &req);
    let worker = |k: usize| async move {
        if !stagger.is_zero() {
            actix_web::rt::time::sleep(stagger * k as u32 / loops as u32).await;
        }
        loop {
            let i = next.get();
            if i >= max_requests || Instant::now() >= deadline {
                break;
            }
            next.set(i + 1);
            let r = req(i);
            let outcome = send(client, &r).await;
            outcomes.borrow_mut().push(outcome);
        }
    };
    futures_util::future::join_all((0..loops).map(worker)).await;
    Run {
        outcomes: outcomes.take(),
        elapsed: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_gateway_sse_events_it_needs() {
        let delta = b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"123\"}}\n\n";
        assert!(matches!(sse_event(delta), Ok(SseKind::Text(t)) if t == "123"));
        assert!(matches!(
            sse_event(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
            Ok(SseKind::Stop)
        ));
        assert!(matches!(
            sse_event(b"event: ping\ndata: {\"type\":\"ping\"}\n\n"),
            Ok(SseKind::Other)
        ));
        assert!(sse_event(b"event: error\ndata: {}\n\n").is_err());
        let two = b"event: a\ndata: 1\n\nevent: b\ndata: 2\n\n";
        assert_eq!(find_blank_line(two, 0), Some(16));
        assert_eq!(find_blank_line(two, 18), Some(34));
        assert_eq!(find_blank_line(b"event: a\n", 0), None);
    }
}
