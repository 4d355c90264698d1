//! The chat call (protocol doc §0, §3): one `GenerateAssistantResponse` request in either
//! dialect with the headers of §3.1, the status checked before anything reaches the client, and
//! the event stream read chunk by chunk through the decoder, with an idle timeout between chunks.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::config::{Dialect, UpstreamConfig, TARGET_GENERATE};
use super::error::{classify_exception, classify_http, classify_stream_error, UpstreamError};
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
}

/// Sends the chat request for `account` with `access_token`. A non-200 answer is read and
/// classified here, so the caller can still answer its client with a proper status.
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
    let json = serde_json::to_vec(&body).expect("request types always serialize");
    let mut request = client
        .post(cfg.chat_url(account))
        .insert_header(("authorization", format!("Bearer {access_token}")))
        .insert_header(("x-amzn-codewhisperer-optout", "true"))
        .insert_header(("amz-sdk-invocation-id", uuid::Uuid::new_v4().to_string()))
        .insert_header(("amz-sdk-request", "attempt=1; max=3"))
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
    let response = request.send_body(json).await.map_err(|e| match e {
        awc::error::SendRequestError::Timeout => {
            UpstreamError::timeout("Amazon Q did not answer in time")
        }
        other => super::token::transport_error(&other),
    })?;
    let status = response.status().as_u16();
    if status != 200 {
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut response = response;
        let bytes = response
            .body()
            .limit(MAX_ERROR_BODY)
            .await
            .unwrap_or_default();
        return Err(classify_http(
            status,
            error_type.as_deref(),
            &bytes,
            chrono::Utc::now(),
        ));
    }
    Ok(ChatStream::from_stream(
        Box::pin(response),
        cfg.idle_timeout,
    ))
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
        loop {
            match self.decoder.next_message() {
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
