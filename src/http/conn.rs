//! Slow clients on the connection level (`serve --request-timeout`):
//! * [`body_deadline`]: a request body must arrive within the timeout (actix bounds the time to
//!   receive a request's headers, `client_request_timeout`, but not its body);
//! * [`on_connect`] and [`track_request`]: a connection must not sit for longer than the timeout
//!   between the end of one answer and the next request. actix times out the headers of a
//!   connection's first request only: on a reused connection, or while it drains the rest of a
//!   chunked body after an answer, a client trickling bytes would otherwise hold it forever.
//!   A watchdog task per connection shuts the socket down then (actix closes the connection as
//!   soon as it reads the end of the stream, see `h1_allow_half_closed(false)` in `serve`).

use std::cell::Cell;
use std::rc::{Rc, Weak};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::HttpMessage;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::Instant;

/// One connection's state for its watchdog, in the connection's extensions (dropped with it).
pub struct ConnWatch {
    /// A duplicate of the connection's socket, to shut it down.
    #[cfg(unix)]
    socket: std::os::fd::OwnedFd,
    /// Requests being handled or answered (a streamed answer counts until its end).
    requests: Cell<u32>,
    /// When the last answer ended; `None` before the first (actix times out its headers).
    idle_since: Cell<Option<Instant>>,
    /// Dropped with the connection: ends the watchdog at once.
    _alive: tokio::sync::oneshot::Sender<()>,
}

impl ConnWatch {
    /// When the connection has been idle for too long, if it is idle.
    fn deadline(&self, timeout: Duration) -> Option<Instant> {
        match (self.requests.get(), self.idle_since.get()) {
            (0, Some(since)) => Some(since + timeout),
            _ => None,
        }
    }

    fn shut_down(&self) {
        #[cfg(unix)]
        if let Ok(fd) = self.socket.try_clone() {
            // The duplicate shares the socket: shutting it down ends the connection for actix.
            let _ = std::net::TcpStream::from(fd).shutdown(std::net::Shutdown::Both);
        }
    }
}

/// For `HttpServer::on_connect`: starts the watchdog of a new connection.
pub fn on_connect(conn: &dyn std::any::Any, ext: &mut Extensions, timeout: Duration) {
    #[cfg(unix)]
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        use std::os::fd::AsFd;
        let Ok(socket) = tcp.as_fd().try_clone_to_owned() else {
            return;
        };
        let (alive, gone) = tokio::sync::oneshot::channel();
        let watch = Rc::new(ConnWatch {
            socket,
            requests: Cell::new(0),
            idle_since: Cell::new(None),
            _alive: alive,
        });
        actix_web::rt::spawn(watchdog(Rc::downgrade(&watch), gone, timeout));
        ext.insert(watch);
    }
    #[cfg(not(unix))]
    let _ = (conn, ext, timeout);
}

async fn watchdog(
    watch: Weak<ConnWatch>,
    mut gone: tokio::sync::oneshot::Receiver<()>,
    timeout: Duration,
) {
    loop {
        let wake = match watch.upgrade() {
            None => return,
            Some(w) => w
                .deadline(timeout)
                .unwrap_or_else(|| Instant::now() + timeout),
        };
        tokio::select! {
            _ = &mut gone => return,
            _ = tokio::time::sleep_until(wake) => {}
        }
        let Some(w) = watch.upgrade() else {
            return;
        };
        if w.deadline(timeout).is_some_and(|d| d <= Instant::now()) {
            log::debug!(
                "closing a connection that sent no whole request for {} s",
                timeout.as_secs()
            );
            w.shut_down();
            return;
        }
    }
}

/// Counts `req` as in progress on its connection until its answer's body ends (or is dropped).
pub fn track_request(req: &ServiceRequest) -> Option<RequestInProgress> {
    let watch = req.conn_data::<Rc<ConnWatch>>()?.clone();
    watch.requests.set(watch.requests.get() + 1);
    Some(RequestInProgress(watch))
}

/// A request in progress on a watched connection; see [`track_request`].
pub struct RequestInProgress(Rc<ConnWatch>);

impl Drop for RequestInProgress {
    fn drop(&mut self) {
        let watch = &self.0;
        watch.requests.set(watch.requests.get().saturating_sub(1));
        watch.idle_since.set(Some(Instant::now()));
    }
}

/// `res` with `guard` held until its body ends.
pub fn until_answered<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
    guard: Option<RequestInProgress>,
) -> ServiceResponse<BoxBody> {
    match guard {
        None => res.map_into_boxed_body(),
        Some(guard) => res
            .map_body(|_, body| Answered {
                body: BoxBody::new(body),
                _guard: guard,
            })
            .map_into_boxed_body(),
    }
}

struct Answered {
    body: BoxBody,
    _guard: RequestInProgress,
}

impl MessageBody for Answered {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// The error a body gets when its deadline passes, inside `PayloadError::Io`.
#[derive(Debug)]
struct BodyTimedOut(Duration);

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} s",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for BodyTimedOut {}

/// Gives `req`'s body `within` to arrive in full, counted from now (its headers are in): after
/// that, reading it fails with an error that [`timed_out`] recognises.
pub fn body_deadline(mut req: ServiceRequest, within: Duration) -> ServiceRequest {
    match req.take_payload() {
        Payload::None => {}
        payload => req.set_payload(with_deadline(payload, within)),
    }
    req
}

fn with_deadline(payload: Payload, within: Duration) -> Payload {
    let deadline = Instant::now() + within;
    let stream = futures_util::stream::unfold(Some(payload), move |payload| async move {
        let mut payload = payload?;
        match tokio::time::timeout_at(deadline, payload.next()).await {
            Ok(Some(item)) => Some((item, Some(payload))),
            Ok(None) => None,
            // The rest of the body is dropped: actix closes the connection after the answer.
            Err(_) => {
                let e = std::io::Error::new(std::io::ErrorKind::TimedOut, BodyTimedOut(within));
                Some((Err(PayloadError::Io(e)), None))
            }
        }
    });
    Payload::Stream {
        payload: Box::pin(stream),
    }
}

/// The deadline that `e` missed, if it is the error of [`body_deadline`].
pub fn timed_out(e: &PayloadError) -> Option<Duration> {
    match e {
        PayloadError::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<BodyTimedOut>())
            .map(|t| t.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix_web::dev::Service;
    use actix_web::{test, web, App, HttpResponse};
    use bytes::Bytes;
    use futures_util::StreamExt;

    use super::body_deadline;
    use crate::claude::error::ClaudeError;
    use crate::http::read_body;

    /// A body that sends `{"a":` and then nothing, never ending.
    fn stalled_body() -> actix_web::dev::Payload {
        let stream = futures_util::stream::once(async { Ok(Bytes::from_static(b"{\"a\":")) })
            .chain(futures_util::stream::pending());
        let stream: std::pin::Pin<Box<dyn futures_util::Stream<Item = _>>> = Box::pin(stream);
        actix_web::dev::Payload::from(stream)
    }

    #[actix_web::test]
    async fn a_body_that_stalls_is_a_408_in_anthropic_shape_and_a_whole_one_passes() {
        let app = test::init_service(
            App::new()
                .wrap_fn(|req, srv| srv.call(body_deadline(req, Duration::from_millis(100))))
                // Requests marked `x-stall` get a body that never ends.
                .wrap_fn(|mut req, srv| {
                    if req.headers().contains_key("x-stall") {
                        req.set_payload(stalled_body());
                    }
                    srv.call(req)
                })
                .route(
                    "/",
                    web::post().to(|p: web::Payload| async move {
                        let body = read_body(p, 1024).await.map_err(ClaudeError)?;
                        Ok::<_, ClaudeError>(HttpResponse::Ok().body(body))
                    }),
                ),
        )
        .await;
        let req = test::TestRequest::post()
            .uri("/")
            .insert_header(("x-stall", "1"))
            .set_payload("ignored")
            .to_request();
        let resp = test::call_service(&app, req).await;
        assert_eq!(resp.status(), 408);
        let body: serde_json::Value = test::read_body_json(resp).await;
        assert_eq!(
            body,
            serde_json::json!({"type":"error","error":{"type":"invalid_request_error","message":"the request body did not arrive within 0 s"}})
        );
        let req = test::TestRequest::post()
            .uri("/")
            .set_payload("whole")
            .to_request();
        let resp = test::call_service(&app, req).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(test::read_body(resp).await, "whole");
    }
}
