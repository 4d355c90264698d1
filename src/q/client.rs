//! The chat call (protocol doc §0, §3): one `GenerateAssistantResponse` request in either
//! dialect with the headers of §3.1, the status checked before anything reaches the client, and
//! the event stream read chunk by chunk through the decoder, with an idle timeout between chunks.
//!
//! The answer is handed out only once its first event arrived: everything that can go wrong
//! before that (a non-200, a 200 that is no event stream or is empty, garbage, an exception
//! frame, silence) is an error of the call itself, so the caller can still fail over to another
//! account or answer its client with an HTTP status. A pooled connection that turns out dead
//! before any response byte (the upstream closed it after the last reply without saying so) is
//! retried once on a fresh connection.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::config::{Dialect, UpstreamConfig, TARGET_GENERATE};
use super::error::{
    classify_exception, classify_http, classify_stream_error, ErrorClass, UpstreamError,
};
use super::events::{self, EventError, QEvent};
use super::eventstream::Decoder;
use super::types::GenerateAssistantResponseRequest;
use crate::db::accounts::{Account, AuthKind};

/// Largest error body read from a non-200 answer.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// One client per worker: connection pooling, TLS (rustls with the webpki roots), the connect
/// timeout. awc's own 5-second response timeout is replaced by the idle timeout.
pub fn http_client(cfg: &UpstreamConfig) -> awc::Client {
    awc::Client::builder()
        // No cap on open connections: every open stream holds one, and awc's default of 100 per
        // worker would queue the 101st stream behind the others.
        .connector(awc::Connector::new().timeout(cfg.connect_timeout).limit(0))
        .timeout(cfg.idle_timeout)
        .disable_redirects()
        .finish()
}

/// A client that never reuses a connection (every pooled one is past its zero lifetime), for
/// the one retry after a dead pooled connection. awc has no per-request "fresh connection"
/// switch: `force_close` only keeps the connection out of the pool afterwards.
fn fresh_client(cfg: &UpstreamConfig) -> awc::Client {
    awc::Client::builder()
        .connector(
            awc::Connector::new()
                .timeout(cfg.connect_timeout)
                .limit(0)
                .conn_lifetime(Duration::ZERO),
        )
        .timeout(cfg.idle_timeout)
        .disable_redirects()
        .finish()
}

/// Whether a failed send is what a dead pooled connection gives, before any response byte: the
/// connection closed before the status line (awc: `Connect(Disconnected)`), or it was reset or
/// broken while the request was written or the answer awaited. awc does not say whether the
/// connection came from its pool; a fresh connection failing like this is rare, and retrying
/// it once costs one more attempt at most.
fn dead_connection(e: &awc::error::SendRequestError) -> bool {
    use actix_web::error::ParseError;
    use awc::error::{ConnectError, SendRequestError as E};
    use std::io::ErrorKind as K;
    let lost = |e: &std::io::Error| {
        matches!(
            e.kind(),
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof
        )
    };
    match e {
        E::Connect(ConnectError::Disconnected) => true,
        E::Send(io) => lost(io),
        E::Response(ParseError::Io(io)) => lost(io),
        _ => false,
    }
}

/// Classifies a failed send of the chat request to `host`. Never reaching Amazon Q (DNS,
/// refused, connect timeout, TLS) is [`ErrorClass::Unreachable`](super::error::ErrorClass),
/// no answer within the idle timeout is a timeout, anything else a broken connection.
pub fn send_error(
    e: &awc::error::SendRequestError,
    host: &str,
    idle_timeout: Duration,
) -> UpstreamError {
    use awc::error::{ConnectError as C, SendRequestError as E};
    match e {
        E::Timeout => UpstreamError::timeout(&format!(
            "no answer within the idle timeout ({} s)",
            idle_timeout.as_secs()
        )),
        E::Connect(C::Resolver(cause)) => {
            UpstreamError::unreachable(&format!("cannot resolve the host {host} ({cause})"))
        }
        E::Connect(C::NoRecords | C::Unresolved) => {
            UpstreamError::unreachable(&format!("cannot resolve the host {host}"))
        }
        E::Connect(C::Timeout) => {
            UpstreamError::unreachable(&format!("connecting to {host} timed out"))
        }
        E::Connect(C::Io(io)) => {
            UpstreamError::unreachable(&format!("cannot connect to {host}: {io}"))
        }
        E::Connect(C::Disconnected) => {
            UpstreamError::network("the connection closed before Amazon Q answered")
        }
        other => UpstreamError::network(&other.to_string()),
    }
}

type Body = Pin<Box<dyn Stream<Item = Result<Bytes, awc::error::PayloadError>>>>;

/// A 200 answer whose event stream is read one event at a time.
pub struct ChatStream {
    body: Body,
    decoder: Decoder,
    idle_timeout: Duration,
    /// When the last chunk arrived: silence is measured from here, so a caller may wrap
    /// [`ChatStream::next_event`] in its own shorter timeout (for pings) and call it again.
    last_chunk: tokio::time::Instant,
    ended: bool,
    /// The first result, read before the stream was handed out (see [`send_chat`]).
    first: Option<Result<Option<QEvent>, UpstreamError>>,
    /// Messages decoded so far: a body that ends before the first one is an empty answer.
    messages: u64,
}

/// Sends the chat request for `account` with `access_token`. A non-200 answer is read and
/// classified here, so the caller can still answer its client with a proper status; so is a
/// 200 that fails before its first event (see the module docs).
pub async fn send_chat(
    client: &awc::Client,
    cfg: &UpstreamConfig,
    account: &Account,
    access_token: &str,
    body: GenerateAssistantResponseRequest,
) -> Result<ChatStream, UpstreamError> {
    let result = open_chat(client, cfg, account, access_token, body).await;
    if let Err(e) = &result {
        crate::metrics::upstream_error(e.class.as_str());
    }
    result
}

async fn open_chat(
    client: &awc::Client,
    cfg: &UpstreamConfig,
    account: &Account,
    access_token: &str,
    mut body: GenerateAssistantResponseRequest,
) -> Result<ChatStream, UpstreamError> {
    // §3.4: social accounts must send their profile; IdC/Pro accounts send the one they have;
    // free Builder ID accounts have none (sending one there is refused).
    if body.profile_arn.is_none()
        && (account.kind() == AuthKind::Social || account.profile_arn.is_some())
    {
        body.profile_arn = account.profile_arn.clone();
    }
    let json = Bytes::from(serde_json::to_vec(&body).expect("request types always serialize"));
    let url = cfg.chat_url(account);
    let invocation = uuid::Uuid::new_v4().to_string();
    let build = |client: &awc::Client, attempt: u8| {
        let mut request = client
            .post(url.as_str())
            .insert_header(("authorization", format!("Bearer {access_token}")))
            .insert_header(("x-amzn-codewhisperer-optout", "true"))
            .insert_header(("amz-sdk-invocation-id", invocation.as_str()))
            .insert_header(("amz-sdk-request", format!("attempt={attempt}; max=3")))
            .insert_header(("user-agent", cfg.user_agent.as_str()))
            .insert_header(("x-amz-user-agent", cfg.amz_user_agent.as_str()))
            .insert_header(("accept", "*/*"));
        request = match cfg.dialect {
            Dialect::A => request
                .insert_header(("content-type", "application/x-amz-json-1.0"))
                .insert_header(("x-amz-target", TARGET_GENERATE)),
            Dialect::B => request.insert_header(("content-type", "application/json")),
        };
        if let Some(mode) = &body.agent_mode {
            request = request.insert_header(("x-amzn-kiro-agent-mode", mode.as_str()));
        }
        request
    };
    let sent = match build(client, 1).send_body(json.clone()).await {
        Err(e) if dead_connection(&e) => {
            log::debug!(
                target: "amq2api::q",
                "the connection to Amazon Q was closed before it answered ({e}); retrying once on a fresh connection"
            );
            // `force_close`: the retry's connection is not kept either.
            build(&fresh_client(cfg), 2)
                .force_close()
                .send_body(json)
                .await
        }
        other => other,
    };
    let host = url_host(&url);
    let response = sent.map_err(|e| send_error(&e, &host, cfg.idle_timeout))?;
    let status = response.status().as_u16();
    if status != 200 {
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut response = response;
        // Bounded in size and in time: an error body that stalls must not hold the request.
        let bytes = tokio::time::timeout(cfg.idle_timeout, response.body().limit(MAX_ERROR_BODY))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        return Err(classify_http(
            status,
            error_type.as_deref(),
            &bytes,
            chrono::Utc::now(),
        ));
    }
    if let Some(content_type) = response
        .headers()
        .get("content-type")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    {
        if !is_event_stream(&content_type) {
            return Err(UpstreamError::not_an_event_stream(&content_type));
        }
    }
    let mut stream = ChatStream::from_stream(Box::pin(response), cfg.idle_timeout);
    // Wait for the first event: a failure before it is still the call's (see the module docs).
    // An output length cap is not a failure: the caller ends the answer with it.
    stream.first = match stream.decode_next().await {
        Err(e) if e.class != ErrorClass::OutputLengthExceeded => return Err(e),
        first => Some(first),
    };
    Ok(stream)
}

/// `application/vnd.amazon.eventstream`, in any case, with or without parameters.
fn is_event_stream(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/vnd.amazon.eventstream")
}

/// `host` or `host:port` of a URL, for messages.
fn url_host(url: &str) -> String {
    url.parse::<awc::http::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.as_str().to_owned()))
        .unwrap_or_else(|| "the Amazon Q endpoint".to_owned())
}

impl ChatStream {
    /// A stream over raw bytes (tests, benchmarks): the same decoding as a live answer.
    pub fn from_stream(body: Body, idle_timeout: Duration) -> ChatStream {
        ChatStream {
            body,
            decoder: Decoder::new(),
            idle_timeout,
            last_chunk: tokio::time::Instant::now(),
            ended: false,
            first: None,
            messages: 0,
        }
    }

    /// The next event; `Ok(None)` when the body ended cleanly after a whole frame. Exception and
    /// error frames, corrupt or truncated frames, a broken connection and silence longer than the
    /// idle timeout are classified errors. Cancel-safe: dropping the future loses no data.
    pub async fn next_event(&mut self) -> Result<Option<QEvent>, UpstreamError> {
        let result = self.decode_next().await;
        if let Err(e) = &result {
            crate::metrics::upstream_error(e.class.as_str());
        }
        result
    }

    async fn decode_next(&mut self) -> Result<Option<QEvent>, UpstreamError> {
        if let Some(first) = self.first.take() {
            return first;
        }
        loop {
            let next = self.decoder.next_message();
            if let Ok(Some(_)) = next {
                self.messages += 1;
            }
            match next {
                Ok(Some(message)) => match events::parse(&message) {
                    Ok(QEvent::Exception {
                        exception_type,
                        payload,
                        ..
                    }) => {
                        return Err(classify_exception(
                            &exception_type,
                            &payload,
                            chrono::Utc::now(),
                        ))
                    }
                    Ok(QEvent::Error { code, message }) => {
                        return Err(classify_stream_error(code.as_deref(), message.as_deref()))
                    }
                    Ok(event) => return Ok(Some(event)),
                    Err(EventError::BadPayload { event_type, reason })
                        if !matches!(
                            event_type.as_str(),
                            "assistantResponseEvent" | "toolUseEvent"
                        ) =>
                    {
                        // An informational event we cannot read must not end the answer.
                        log::debug!(target: "amq2api::q", "skipping unreadable {event_type}: {reason}");
                        continue;
                    }
                    Err(e) => return Err(UpstreamError::stream_corrupt(&e.to_string())),
                },
                Ok(None) => {}
                Err(e) => return Err(UpstreamError::stream_corrupt(&e.to_string())),
            }
            if self.ended {
                return match self.decoder.finish() {
                    Ok(()) if self.messages == 0 => Err(UpstreamError::empty_answer()),
                    Ok(()) => Ok(None),
                    Err(e) => Err(UpstreamError::stream_corrupt(&e.to_string())),
                };
            }
            let deadline = self.last_chunk + self.idle_timeout;
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => {
                    return Err(UpstreamError::timeout(&format!(
                        "no data from Amazon Q for {} s",
                        self.idle_timeout.as_secs()
                    )))
                }
                Ok(None) => self.ended = true,
                Ok(Some(Ok(chunk))) => {
                    self.last_chunk = tokio::time::Instant::now();
                    self.decoder.feed(&chunk);
                }
                Ok(Some(Err(e))) => {
                    return Err(UpstreamError::network(&format!(
                        "the stream broke off: {e}"
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use awc::error::{ConnectError, SendRequestError as E};
    use std::io::{Error, ErrorKind};

    const IDLE: Duration = Duration::from_secs(2);

    #[test]
    fn only_a_connection_lost_before_the_answer_is_retried() {
        assert!(dead_connection(&E::Connect(ConnectError::Disconnected)));
        assert!(dead_connection(&E::Send(Error::from(
            ErrorKind::BrokenPipe
        ))));
        assert!(dead_connection(&E::Send(Error::from(
            ErrorKind::ConnectionReset
        ))));
        assert!(dead_connection(&E::Response(
            actix_web::error::ParseError::Io(Error::from(ErrorKind::ConnectionReset))
        )));
        // Never reached, too slow, or a real answer that could not be read: not retried.
        assert!(!dead_connection(&E::Connect(ConnectError::Io(
            Error::from(ErrorKind::ConnectionRefused)
        ))));
        assert!(!dead_connection(&E::Connect(ConnectError::Timeout)));
        assert!(!dead_connection(&E::Timeout));
        assert!(!dead_connection(&E::Response(
            actix_web::error::ParseError::Header
        )));
    }

    #[test]
    fn send_errors_are_classified() {
        let host = "q.example:443";
        let e = send_error(
            &E::Connect(ConnectError::Resolver(Box::new(Error::other(
                "Name or service not known",
            )))),
            host,
            IDLE,
        );
        assert_eq!(e.class, ErrorClass::Unreachable);
        assert_eq!(
            e.to_string(),
            "could not reach Amazon Q: cannot resolve the host q.example:443 (Name or service not known)"
        );
        let e = send_error(
            &E::Connect(ConnectError::Io(Error::new(
                ErrorKind::ConnectionRefused,
                "Connection refused (os error 111)",
            ))),
            host,
            IDLE,
        );
        assert_eq!(e.class, ErrorClass::Unreachable);
        assert_eq!(
            e.message,
            "cannot connect to q.example:443: Connection refused (os error 111)"
        );
        assert_eq!(
            send_error(&E::Connect(ConnectError::Timeout), host, IDLE).class,
            ErrorClass::Unreachable
        );
        let e = send_error(&E::Timeout, host, IDLE);
        assert_eq!(e.class, ErrorClass::Timeout);
        assert_eq!(
            e.to_string(),
            "Amazon Q timed out: no answer within the idle timeout (2 s)"
        );
        assert_eq!(
            send_error(&E::Connect(ConnectError::Disconnected), host, IDLE).class,
            ErrorClass::Network
        );
    }

    #[test]
    fn event_stream_content_types() {
        assert!(is_event_stream("application/vnd.amazon.eventstream"));
        assert!(is_event_stream(
            "Application/VND.Amazon.EventStream; charset=x"
        ));
        assert!(!is_event_stream("application/json"));
        assert!(!is_event_stream("text/html"));
        assert!(!is_event_stream(""));
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://q.us-east-1.amazonaws.com/"),
            "q.us-east-1.amazonaws.com"
        );
        assert_eq!(
            url_host("http://amazonq-upstream.invalid:9/x"),
            "amazonq-upstream.invalid:9"
        );
    }

    fn stream_of(chunks: Vec<&'static [u8]>) -> ChatStream {
        let body =
            futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))));
        ChatStream::from_stream(Box::pin(body), IDLE)
    }

    #[actix_web::test]
    async fn an_empty_body_is_an_error_not_an_empty_answer() {
        let e = stream_of(vec![]).next_event().await.unwrap_err();
        assert_eq!(e, UpstreamError::empty_answer());
        // Garbage is a corrupt stream.
        let e = stream_of(vec![b"<html>oops</html>"])
            .next_event()
            .await
            .unwrap_err();
        assert_eq!(e.class, ErrorClass::StreamCorrupt);
    }

    #[actix_web::test]
    async fn the_first_result_is_handed_out_first() {
        let mut s = stream_of(vec![]);
        s.first = Some(Ok(Some(QEvent::ContextUsage { percentage: 1.0 })));
        assert_eq!(
            s.next_event().await.unwrap(),
            Some(QEvent::ContextUsage { percentage: 1.0 })
        );
        assert_eq!(
            s.next_event().await.unwrap_err(),
            UpstreamError::empty_answer()
        );
    }
}
