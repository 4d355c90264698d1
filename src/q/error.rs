//! The one classification of upstream failures (Amazon Q chat calls, in-stream exception and
//! error frames, token refresh, transport): every component that reacts to an upstream error
//! (account picking, retry, client error shapes, the usage log) decides from [`ErrorClass`].
//!
//! Sources: protocol doc §1.1/§1.3 (refresh errors), §6.1 (body dialects), §6.2 (catalogue),
//! §6.3 (official client order), §5.2 (in-stream exceptions). The order of checks in
//! [`classify_http`] follows §6.3 first, then §6.2:
//!
//! 1. body contains `Input is too long.` → [`ErrorClass::InputTooLong`];
//! 2. `INSUFFICIENT_MODEL_CAPACITY`, or 5xx + "unexpectedly high load" → [`ErrorClass::ModelOverloaded`];
//! 3. `MONTHLY_REQUEST_COUNT` / `OVERAGE_REQUEST_LIMIT_EXCEEDED` (any status), HTTP 402, or
//!    "reached for this month" → [`ErrorClass::MonthlyQuota`] (`until` = 1st of next month UTC);
//! 4. `TEMPORARILY_SUSPENDED`, or 403 + "suspended" → [`ErrorClass::Suspended`];
//! 5. 403 with bearer/token-invalid text (or `ExpiredToken…`) and any 401 → [`ErrorClass::AccessTokenInvalid`];
//! 6. `DAILY_REQUEST_COUNT`, or any other `ServiceQuotaExceededException` → [`ErrorClass::DailyQuota`];
//! 7. 429 or `ThrottlingException` → [`ErrorClass::Throttled`];
//! 8. `CONTENT_LENGTH_EXCEEDS_THRESHOLD` or 413 → [`ErrorClass::InputTooLong`];
//! 9. `INVALID_MODEL_ID`, or a message saying the model is invalid/unsupported (any status but
//!    403, including the 500 of §4.1) → [`ErrorClass::InvalidModel`];
//! 10. "profileArn is required" → [`ErrorClass::ProfileRequired`];
//! 11. "The provided credential is invalid." and other 403s → [`ErrorClass::AccessDenied`];
//! 12. 408/504 → [`ErrorClass::Timeout`];
//! 13. `MODEL_TEMPORARILY_UNAVAILABLE`, `ServiceUnavailableException`, 503, or 5xx + "temporarily
//!     unavailable" (dialect B has no type) → [`ErrorClass::ModelOverloaded`];
//! 14. other 5xx → [`ErrorClass::ServerError`]; other 4xx → [`ErrorClass::InvalidRequest`].
//!
//! The kept `message` is the upstream's own text, on one line, with anything token-like
//! redacted, cut to [`MAX_MESSAGE_CHARS`]; request data is never copied into it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest upstream message kept in an [`UpstreamError`], in characters (an ellipsis is added).
pub const MAX_MESSAGE_CHARS: usize = 300;

/// Longest error code or reason kept, in characters.
const MAX_CODE_CHARS: usize = 64;

/// What went wrong upstream, at the granularity that decides a reaction.
///
/// Each variant's doc says what it implies for the **account** (see also
/// [`ErrorClass::account_action`]) and for the **client** (see [`ErrorClass::client_status`]).
/// [`ErrorClass::as_str`] is the stable name written to the usage log; the serde form is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// 400 `ValidationException` that is none of the more specific classes ("Improperly formed
    /// request.", `INVALID_CONVERSATION_ID`, `INVALID_KMS_GRANT`, `ConflictException`, other 4xx).
    /// Account: untouched. Client: 400 `invalid_request_error`. Never retried on another account
    /// (the same body fails everywhere, and rotating on it poisons the pool).
    InvalidRequest,
    /// The prompt is too large (`Input is too long.` / `CONTENT_LENGTH_EXCEEDS_THRESHOLD`, HTTP 413).
    /// Account: untouched. Client: 400 `invalid_request_error`. Not retried.
    InputTooLong,
    /// `INVALID_MODEL_ID`, or a message saying the model is unknown/unsupported.
    /// Account: untouched. Client: 400 `invalid_request_error`. Not retried.
    InvalidModel,
    /// The access token was refused (401, or 403 "The bearer token included in the request is
    /// invalid."). Account: force-refresh the token once and retry on it; if that fails too, count
    /// a failure and move to another account. Also caused by sending a `profileArn` with a free
    /// Builder ID token (§3.4). Client: 502 `api_error` only if no account is left.
    AccessTokenInvalid,
    /// Token refresh said `invalid_grant` / `expired_token` (or "Invalid refresh token").
    /// Account: disable permanently (needs a re-import); never retry the refresh. Client: 502.
    RefreshTokenInvalid,
    /// Token refresh said `invalid_client` / `unauthorized_client`: the OIDC client registration
    /// (`clientId`/`clientSecret`) expired. Account: disable; needs a new login. Client: 502.
    ClientRegistrationExpired,
    /// `TEMPORARILY_SUSPENDED` (403): the account is banned. Account: disable, no refresh (don't
    /// hammer it); fail over. Client: 502 if no account is left.
    Suspended,
    /// `MONTHLY_REQUEST_COUNT` / `OVERAGE_REQUEST_LIMIT_EXCEEDED` (400, 402, 429, …). Account:
    /// disabled until [`UpstreamError::until`] (00:00 UTC on the 1st of next month); never retried
    /// on it; fail over. Client: 429 `rate_limit_error` if no account is left.
    MonthlyQuota,
    /// `DAILY_REQUEST_COUNT`, or another `ServiceQuotaExceededException` reason
    /// (`CONVERSATION_LIMIT_EXCEEDED`, none). Account: disabled until [`UpstreamError::until`]
    /// (next 00:00 UTC, an assumption: the reset time is undocumented); fail over. Client: 429.
    DailyQuota,
    /// 429 / `ThrottlingException` without a quota reason: a per-account rate limit. Account:
    /// short cooldown, never disabled; try another account. Client: 429 `rate_limit_error`.
    Throttled,
    /// Capacity, not the account: `INSUFFICIENT_MODEL_CAPACITY`, 500 "unexpectedly high load",
    /// `MODEL_TEMPORARILY_UNAVAILABLE`, `ServiceUnavailableException`, 503. Account: untouched.
    /// Retry with backoff (another account is fine). Client: 529 `overloaded_error`.
    ModelOverloaded,
    /// Other 5xx / `InternalServerException` / unknown in-stream exception. Account: untouched
    /// (a 5xx under load must not disable accounts). Retry elsewhere. Client: 502 `api_error`.
    ServerError,
    /// The connection broke (reset, closed before the answer, I/O error) after it was made.
    /// Account: untouched but counted (N in a row cool it down). Retry elsewhere. Client: 502
    /// `api_error`.
    Network,
    /// Amazon Q could not be reached at all: its host name does not resolve, the connection is
    /// refused, or connecting (TCP or TLS) failed or timed out. The request never got there, so
    /// no account is to blame. Account: untouched and not counted (a DNS or network outage must
    /// not cool down the whole pool). Retry elsewhere (another account may use another region's
    /// host). Client: 502 `api_error`: the gateway got no answer from its upstream.
    Unreachable,
    /// Connect/read timeout, upstream 408 or 504. Account: untouched. Retry elsewhere.
    /// Client: 504 `api_error` (Anthropic has no timeout type).
    Timeout,
    /// The event stream could not be decoded (CRC mismatch, truncated frame, bad JSON payload).
    /// Account: untouched. Retry elsewhere only if nothing was sent to the client yet; otherwise
    /// an in-band error event. Client: 502 `api_error`.
    StreamCorrupt,
    /// In-stream `ContentLengthExceededException`: the **output** hit the length cap. Not a
    /// failure: the stream converter ends the message with `stop_reason: "max_tokens"`
    /// (OpenAI `finish_reason: "length"`). Account: untouched. Not retried.
    OutputLengthExceeded,
    /// `ValidationException "profileArn is required for this request."`: the account (IdC/Pro or
    /// Kiro social) needs a profile ARN that is not configured. An account configuration problem,
    /// not the client's: disable the account until a profile is set (or looked up with
    /// `ListAvailableProfiles`), fail over. Client: 502.
    ProfileRequired,
    /// 403 `AccessDeniedException` that is neither a bad token nor a ban
    /// (`FEATURE_NOT_SUPPORTED`, `UNAUTHORIZED_*`), and 400 "The provided credential is invalid."
    /// (token type vs operation/origin mismatch): the account may not do this. Account: cooldown
    /// (not a permanent disable: unknown 403 texts must not lock the whole pool); fail over.
    /// Client: 502.
    AccessDenied,
    /// Token refresh rejected with a 4xx that is not understood (`invalid_request`,
    /// `invalid_scope`, `unsupported_grant_type`, `access_denied`, unknown 401/403, garbage).
    /// Possibly our bug or corrupt stored credentials, so no permanent disable. Account: cooldown,
    /// operator should look. Client: 502.
    RefreshRejected,
    /// Device-code polling: `authorization_pending` (the user has not approved yet). Keep polling.
    /// Only produced by [`classify_token_refresh`]; never reaches a chat client.
    AuthorizationPending,
}

/// What to do with the account that produced an error; see [`ErrorClass::account_action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountAction {
    /// The account is fine.
    None,
    /// Force-refresh the access token and retry once on the same account.
    RefreshAndRetry,
    /// Take the account out of rotation for a short back-off; it comes back by itself.
    Cooldown,
    /// Take the account out of rotation until [`UpstreamError::until`].
    DisableUntil,
    /// Take the account out of rotation until an operator acts (re-import, re-login, profile).
    Disable,
}

/// Where the error was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// A non-200 HTTP answer to the chat call.
    Http,
    /// An exception/error frame inside a 200 event stream.
    Stream,
    /// The OIDC or Kiro-social token refresh call.
    TokenRefresh,
    /// Below HTTP: connection, timeout, undecodable stream.
    Transport,
}

impl ErrorClass {
    /// Every class, in declaration order.
    pub const ALL: [ErrorClass; 21] = [
        ErrorClass::InvalidRequest,
        ErrorClass::InputTooLong,
        ErrorClass::InvalidModel,
        ErrorClass::AccessTokenInvalid,
        ErrorClass::RefreshTokenInvalid,
        ErrorClass::ClientRegistrationExpired,
        ErrorClass::Suspended,
        ErrorClass::MonthlyQuota,
        ErrorClass::DailyQuota,
        ErrorClass::Throttled,
        ErrorClass::ModelOverloaded,
        ErrorClass::ServerError,
        ErrorClass::Network,
        ErrorClass::Unreachable,
        ErrorClass::Timeout,
        ErrorClass::StreamCorrupt,
        ErrorClass::OutputLengthExceeded,
        ErrorClass::ProfileRequired,
        ErrorClass::AccessDenied,
        ErrorClass::RefreshRejected,
        ErrorClass::AuthorizationPending,
    ];

    /// Stable snake_case name, stored in the usage log and the account's last error. Never change
    /// an existing name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorClass::InvalidRequest => "invalid_request",
            ErrorClass::InputTooLong => "input_too_long",
            ErrorClass::InvalidModel => "invalid_model",
            ErrorClass::AccessTokenInvalid => "access_token_invalid",
            ErrorClass::RefreshTokenInvalid => "refresh_token_invalid",
            ErrorClass::ClientRegistrationExpired => "client_registration_expired",
            ErrorClass::Suspended => "suspended",
            ErrorClass::MonthlyQuota => "monthly_quota",
            ErrorClass::DailyQuota => "daily_quota",
            ErrorClass::Throttled => "throttled",
            ErrorClass::ModelOverloaded => "model_overloaded",
            ErrorClass::ServerError => "server_error",
            ErrorClass::Network => "network",
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::Timeout => "timeout",
            ErrorClass::StreamCorrupt => "stream_corrupt",
            ErrorClass::OutputLengthExceeded => "output_length_exceeded",
            ErrorClass::ProfileRequired => "profile_required",
            ErrorClass::AccessDenied => "access_denied",
            ErrorClass::RefreshRejected => "refresh_rejected",
            ErrorClass::AuthorizationPending => "authorization_pending",
        }
    }

    /// The request itself is at fault: surface a 400 and don't retry anywhere.
    pub fn is_client_fault(&self) -> bool {
        matches!(
            self,
            ErrorClass::InvalidRequest | ErrorClass::InputTooLong | ErrorClass::InvalidModel
        )
    }

    /// Sending the same request through another account may succeed. For
    /// [`ErrorClass::AccessTokenInvalid`] the first move is still a refresh on the same account
    /// ([`AccountAction::RefreshAndRetry`]); for [`ErrorClass::StreamCorrupt`] and in-stream errors
    /// only while nothing has been sent to the client.
    pub fn is_retryable_on_other_account(&self) -> bool {
        match self {
            ErrorClass::InvalidRequest
            | ErrorClass::InputTooLong
            | ErrorClass::InvalidModel
            | ErrorClass::OutputLengthExceeded
            | ErrorClass::AuthorizationPending => false,
            ErrorClass::AccessTokenInvalid
            | ErrorClass::RefreshTokenInvalid
            | ErrorClass::ClientRegistrationExpired
            | ErrorClass::Suspended
            | ErrorClass::MonthlyQuota
            | ErrorClass::DailyQuota
            | ErrorClass::Throttled
            | ErrorClass::ModelOverloaded
            | ErrorClass::ServerError
            | ErrorClass::Network
            | ErrorClass::Unreachable
            | ErrorClass::Timeout
            | ErrorClass::StreamCorrupt
            | ErrorClass::ProfileRequired
            | ErrorClass::AccessDenied
            | ErrorClass::RefreshRejected => true,
        }
    }

    /// What the account that produced this error should go through.
    pub fn account_action(&self) -> AccountAction {
        match self {
            ErrorClass::InvalidRequest
            | ErrorClass::InputTooLong
            | ErrorClass::InvalidModel
            | ErrorClass::ModelOverloaded
            | ErrorClass::ServerError
            | ErrorClass::Network
            | ErrorClass::Unreachable
            | ErrorClass::Timeout
            | ErrorClass::StreamCorrupt
            | ErrorClass::OutputLengthExceeded
            | ErrorClass::AuthorizationPending => AccountAction::None,
            ErrorClass::AccessTokenInvalid => AccountAction::RefreshAndRetry,
            ErrorClass::Throttled | ErrorClass::AccessDenied | ErrorClass::RefreshRejected => {
                AccountAction::Cooldown
            }
            ErrorClass::MonthlyQuota | ErrorClass::DailyQuota => AccountAction::DisableUntil,
            ErrorClass::RefreshTokenInvalid
            | ErrorClass::ClientRegistrationExpired
            | ErrorClass::Suspended
            | ErrorClass::ProfileRequired => AccountAction::Disable,
        }
    }

    /// HTTP status to give the client when this error is the final outcome (no account left to
    /// try, or a client fault). [`ErrorClass::OutputLengthExceeded`] is not an error for the
    /// client: 200, and the response ends with `max_tokens`.
    pub fn client_status(&self) -> u16 {
        match self {
            ErrorClass::InvalidRequest | ErrorClass::InputTooLong | ErrorClass::InvalidModel => 400,
            ErrorClass::MonthlyQuota | ErrorClass::DailyQuota | ErrorClass::Throttled => 429,
            ErrorClass::ModelOverloaded => 529,
            ErrorClass::Timeout => 504,
            ErrorClass::OutputLengthExceeded => 200,
            ErrorClass::AccessTokenInvalid
            | ErrorClass::RefreshTokenInvalid
            | ErrorClass::ClientRegistrationExpired
            | ErrorClass::Suspended
            | ErrorClass::ServerError
            | ErrorClass::Network
            | ErrorClass::Unreachable
            | ErrorClass::StreamCorrupt
            | ErrorClass::ProfileRequired
            | ErrorClass::AccessDenied
            | ErrorClass::RefreshRejected
            | ErrorClass::AuthorizationPending => 502,
        }
    }

    /// Anthropic `error.type` matching [`ErrorClass::client_status`] (also used for in-band
    /// `event: error` after the stream started). Account-side failures are `api_error`, never
    /// `authentication_error`/`permission_error`: those would blame the client's own API key.
    pub fn anthropic_error_type(&self) -> &'static str {
        match self.client_status() {
            400 => "invalid_request_error",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        }
    }

    /// A neutral message for when the upstream gave none.
    fn default_message(&self) -> &'static str {
        match self {
            ErrorClass::InvalidRequest => "the request was rejected",
            ErrorClass::InputTooLong => "Input is too long.",
            ErrorClass::InvalidModel => "the model id was rejected",
            ErrorClass::AccessTokenInvalid => "the access token was rejected",
            ErrorClass::RefreshTokenInvalid => "the refresh token was rejected",
            ErrorClass::ClientRegistrationExpired => "the OIDC client registration was rejected",
            ErrorClass::Suspended => "the account is suspended",
            ErrorClass::MonthlyQuota => "the monthly request quota is exhausted",
            ErrorClass::DailyQuota => "the daily request quota is exhausted",
            ErrorClass::Throttled => "too many requests",
            ErrorClass::ModelOverloaded => "the model is overloaded",
            ErrorClass::ServerError => "internal server error",
            ErrorClass::Network => "network error",
            ErrorClass::Unreachable => "Amazon Q cannot be reached",
            ErrorClass::Timeout => "timed out",
            ErrorClass::StreamCorrupt => "undecodable event stream",
            ErrorClass::OutputLengthExceeded => "the response reached the output length limit",
            ErrorClass::ProfileRequired => "profileArn is required for this request.",
            ErrorClass::AccessDenied => "access denied",
            ErrorClass::RefreshRejected => "the token refresh request was rejected",
            ErrorClass::AuthorizationPending => "authorization pending",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name given to [`ErrorClass::from_str`] is not a known class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error class {0:?}")]
pub struct UnknownErrorClass(pub String);

impl FromStr for ErrorClass {
    type Err = UnknownErrorClass;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorClass::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownErrorClass(s.to_owned()))
    }
}

/// One classified upstream failure. Safe to log and to show: it never holds tokens or request
/// data, and `message` is bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    pub class: ErrorClass,
    /// Where it was observed; only changes the wording of `Display`.
    pub stage: Stage,
    /// HTTP status, for [`Stage::Http`] and [`Stage::TokenRefresh`].
    pub status: Option<u16>,
    /// Sanitized error type (`x-amzn-errortype` header, else `__type`, else the in-stream
    /// `:exception-type` / `:error-code`, else the OAuth `error`), e.g. `ValidationException`,
    /// `InvalidGrantException`, `invalid_grant`.
    pub code: Option<String>,
    /// Upstream `reason` (e.g. `MONTHLY_REQUEST_COUNT`); for token refresh the OAuth `error`
    /// (e.g. `invalid_grant`) when there is no `reason`.
    pub reason: Option<String>,
    /// The upstream's message: one line, token-like strings redacted, at most
    /// [`MAX_MESSAGE_CHARS`] characters (plus `…`). Never empty.
    pub message: String,
    /// For [`ErrorClass::MonthlyQuota`]: 00:00 UTC on the 1st of next month; for
    /// [`ErrorClass::DailyQuota`]: the next 00:00 UTC. `None` otherwise.
    pub until: Option<DateTime<Utc>>,
}

impl UpstreamError {
    /// An error built by the caller (e.g. the HTTP client on a transport failure). `message` is
    /// cleaned like an upstream message; an empty one is replaced by the class default.
    pub fn new(class: ErrorClass, stage: Stage, message: &str) -> Self {
        let message = clean_message(message);
        UpstreamError {
            class,
            stage,
            status: None,
            code: None,
            reason: None,
            message: if message.is_empty() {
                class.default_message().to_owned()
            } else {
                message
            },
            until: None,
        }
    }

    /// Connection/TLS/I-O failure. Pass the transport error's text (it must not contain the
    /// request headers).
    pub fn network(detail: &str) -> Self {
        Self::new(ErrorClass::Network, Stage::Transport, detail)
    }

    /// Amazon Q was never reached: DNS, refused or failed connection (see
    /// [`ErrorClass::Unreachable`]).
    pub fn unreachable(detail: &str) -> Self {
        Self::new(ErrorClass::Unreachable, Stage::Transport, detail)
    }

    /// A 200 answer that is no event stream (another content type): nothing in it can be
    /// trusted, and nothing of it is kept (it may echo the request).
    pub fn not_an_event_stream(content_type: &str) -> Self {
        let mut e = Self::new(
            ErrorClass::ServerError,
            Stage::Http,
            &format!("answered with content type {content_type} instead of an event stream"),
        );
        e.status = Some(200);
        e
    }

    /// A 200 event stream that ended before its first message.
    pub fn empty_answer() -> Self {
        let mut e = Self::new(
            ErrorClass::ServerError,
            Stage::Http,
            "answered with an empty event stream",
        );
        e.status = Some(200);
        e
    }

    /// Connect or read timeout.
    pub fn timeout(detail: &str) -> Self {
        Self::new(ErrorClass::Timeout, Stage::Transport, detail)
    }

    /// The event-stream decoder gave up (CRC mismatch, truncated frame, bad payload).
    pub fn stream_corrupt(detail: &str) -> Self {
        Self::new(ErrorClass::StreamCorrupt, Stage::Transport, detail)
    }

    /// Shorthand for `self.class.account_action()`.
    pub fn account_action(&self) -> AccountAction {
        self.class.account_action()
    }

    /// Shorthand for `self.class.is_retryable_on_other_account()`.
    pub fn is_retryable_on_other_account(&self) -> bool {
        self.class.is_retryable_on_other_account()
    }

    /// Shorthand for `self.class.is_client_fault()`.
    pub fn is_client_fault(&self) -> bool {
        self.class.is_client_fault()
    }

    fn label(&self) -> Option<String> {
        match (&self.code, self.status) {
            (Some(code), _) => Some(code.clone()),
            (None, Some(status)) => Some(format!("HTTP {status}")),
            (None, None) => None,
        }
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head: &str = match (self.stage, self.class) {
            (Stage::TokenRefresh, _) => "token refresh failed",
            (Stage::Transport, ErrorClass::Network) => "the connection to Amazon Q broke",
            (Stage::Transport, ErrorClass::Unreachable) => "could not reach Amazon Q",
            (Stage::Transport, ErrorClass::Timeout) => "Amazon Q timed out",
            (Stage::Transport, ErrorClass::StreamCorrupt) => {
                "Amazon Q sent an undecodable event stream"
            }
            (Stage::Transport, _) => "Amazon Q request failed",
            (stage, class) => {
                let mid = stage == Stage::Stream;
                match class {
                    ErrorClass::OutputLengthExceeded => "Amazon Q stopped the response",
                    ErrorClass::ServerError
                    | ErrorClass::ModelOverloaded
                    | ErrorClass::Network
                    | ErrorClass::Timeout
                    | ErrorClass::StreamCorrupt => {
                        if mid {
                            "Amazon Q failed mid-stream"
                        } else {
                            "Amazon Q failed"
                        }
                    }
                    _ => {
                        if mid {
                            "Amazon Q rejected the request mid-stream"
                        } else {
                            "Amazon Q rejected the request"
                        }
                    }
                }
            }
        };
        match self.label() {
            Some(label) => write!(f, "{head} ({label}): {}", self.message),
            None => write!(f, "{head}: {}", self.message),
        }
    }
}

impl std::error::Error for UpstreamError {}

/// Classify a non-200 answer to the chat call (§6.1–§6.3). `error_type_header` is the value of
/// `x-amzn-errortype` (it wins over the body's `__type`); `body` may be empty or not JSON.
pub fn classify_http(
    status: u16,
    error_type_header: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> UpstreamError {
    let parsed = Parsed::new(error_type_header, body);
    let class = decide(status, &parsed);
    parsed.into_error(class, Stage::Http, Some(status), now)
}

/// Classify an in-stream `:message-type = exception` frame (`:exception-type` header + JSON
/// payload). `ContentLengthExceededException` here means the **output** hit its cap
/// ([`ErrorClass::OutputLengthExceeded`]); `error` is the official client's name for an internal
/// server error; unknown types are [`ErrorClass::ServerError`] unless the payload says more.
pub fn classify_exception(
    exception_type: &str,
    payload: &[u8],
    now: DateTime<Utc>,
) -> UpstreamError {
    let parsed = Parsed::new(Some(exception_type), payload);
    let class = if base_is(parsed.code_base(), "ContentLengthExceeded") {
        ErrorClass::OutputLengthExceeded
    } else {
        decide(pseudo_status(parsed.code_base()), &parsed)
    };
    parsed.into_error(class, Stage::Stream, None, now)
}

/// Classify an unmodeled `:message-type = error` frame from its `:error-code` and
/// `:error-message` headers. Uses the current time for a quota's `until`.
pub fn classify_stream_error(code: Option<&str>, message: Option<&str>) -> UpstreamError {
    classify_stream_error_at(code, message, Utc::now())
}

/// [`classify_stream_error`] with an explicit clock.
pub fn classify_stream_error_at(
    code: Option<&str>,
    message: Option<&str>,
    now: DateTime<Utc>,
) -> UpstreamError {
    let parsed = Parsed::new(code, message.unwrap_or("").as_bytes());
    let class = if base_is(parsed.code_base(), "ContentLengthExceeded") {
        ErrorClass::OutputLengthExceeded
    } else {
        decide(pseudo_status(parsed.code_base()), &parsed)
    };
    parsed.into_error(class, Stage::Stream, None, now)
}

/// Classify a failed token refresh: AWS SSO-OIDC `CreateToken` (§1.1; `x-amzn-errortype` like
/// `InvalidGrantException:http://…`, body `{"error":"invalid_grant","error_description":…}`) or
/// the Kiro social `refreshToken` call (§1.3).
///
/// * `invalid_grant`, `expired_token`, "Invalid refresh token" → [`ErrorClass::RefreshTokenInvalid`];
/// * `invalid_client`, `unauthorized_client` → [`ErrorClass::ClientRegistrationExpired`];
/// * `authorization_pending` → [`ErrorClass::AuthorizationPending`] (device-code polling);
/// * `slow_down` or 429 → [`ErrorClass::Throttled`];
/// * `server_error`/`InternalServerException` or 5xx → [`ErrorClass::ServerError`]; 408 → [`ErrorClass::Timeout`];
/// * any other 4xx (`invalid_request`, `invalid_scope`, `unsupported_grant_type`,
///   `access_denied`, unknown 401/403, garbage) → [`ErrorClass::RefreshRejected`];
/// * anything else (e.g. a 200 whose body could not be used) → [`ErrorClass::ServerError`].
pub fn classify_token_refresh(
    status: u16,
    error_type_header: Option<&str>,
    body: &[u8],
) -> UpstreamError {
    let parsed = Parsed::new(error_type_header, body);
    let oauth = parsed
        .oauth_error
        .as_deref()
        .unwrap_or("")
        .to_ascii_lowercase();
    let base = parsed.code_base();
    let is = |oauth_name: &str, exception: &str| oauth == oauth_name || base_is(base, exception);
    let msg = parsed.message_lc();

    let class = if is("invalid_grant", "InvalidGrant")
        || is("expired_token", "ExpiredToken")
        || msg.contains("invalid refresh token")
    {
        ErrorClass::RefreshTokenInvalid
    } else if is("invalid_client", "InvalidClient")
        || is("unauthorized_client", "UnauthorizedClient")
    {
        ErrorClass::ClientRegistrationExpired
    } else if is("authorization_pending", "AuthorizationPending") {
        ErrorClass::AuthorizationPending
    } else if is("slow_down", "SlowDown") || status == 429 {
        ErrorClass::Throttled
    } else if is("server_error", "InternalServer") || status >= 500 {
        ErrorClass::ServerError
    } else if status == 408 {
        ErrorClass::Timeout
    } else if (400..500).contains(&status) {
        ErrorClass::RefreshRejected
    } else {
        ErrorClass::ServerError
    };
    let mut err = parsed.into_error(class, Stage::TokenRefresh, Some(status), Utc::now());
    err.until = None;
    err
}

/// 00:00 UTC on the first day of the month after `now` (when a monthly quota resets).
pub fn first_of_next_month_utc(now: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    Utc.with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()
        .unwrap_or(now + chrono::Duration::days(31))
}

/// The next 00:00 UTC strictly after `now` (when a daily quota is assumed to reset).
pub fn next_midnight_utc(now: DateTime<Utc>) -> DateTime<Utc> {
    match now.date_naive().succ_opt() {
        Some(day) => day.and_time(NaiveTime::MIN).and_utc(),
        None => now + chrono::Duration::days(1),
    }
}

/// The official `sanitize_error_code`: drop everything from the first `:` (a trailing URL), then
/// everything up to the first `#` (a namespace). Keeps `[A-Za-z0-9_.-]`, at most 64 characters;
/// `None` if nothing is left.
pub fn sanitize_error_code(raw: &str) -> Option<String> {
    let code = raw.split(':').next().unwrap_or("");
    let code = match code.find('#') {
        Some(i) => &code[i + 1..],
        None => code,
    };
    keep_identifier(code.trim())
}

/// The leading identifier characters of `s`, bounded.
fn keep_identifier(s: &str) -> Option<String> {
    let kept: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(MAX_CODE_CHARS)
        .collect();
    (!kept.is_empty()).then_some(kept)
}

/// `ValidationException` / `ValidationError` → `Validation`; anything else unchanged.
fn strip_code_suffix(code: &str) -> &str {
    for suffix in ["Exception", "Error"] {
        if let Some(base) = code.strip_suffix(suffix) {
            if !base.is_empty() {
                return base;
            }
        }
    }
    code
}

fn base_is(base: &str, name: &str) -> bool {
    base.eq_ignore_ascii_case(name)
}

/// The HTTP status an in-stream exception of this type would have had, so in-stream frames go
/// through the same [`decide`] as HTTP errors.
fn pseudo_status(base: &str) -> u16 {
    const TABLE: [(&str, u16); 7] = [
        ("Validation", 400),
        ("ServiceQuotaExceeded", 400),
        ("AccessDenied", 403),
        ("ResourceNotFound", 404),
        ("Conflict", 409),
        ("Throttling", 429),
        ("ServiceUnavailable", 503),
    ];
    TABLE
        .iter()
        .find(|(name, _)| base_is(base, name))
        .map_or(500, |&(_, status)| status)
}

/// The body fields that matter, from either dialect (§6.1), the Kiro 402 nesting or OIDC.
#[derive(Debug, Default)]
struct Parsed {
    /// Sanitized: header, else `__type`/`code`, else OAuth `error`.
    code: Option<String>,
    /// Sanitized `reason` (top level, else nested under `error`).
    reason: Option<String>,
    /// OIDC `error` string (`invalid_grant`), sanitized.
    oauth_error: Option<String>,
    /// The upstream's message as sent (not yet cleaned).
    message: Option<String>,
    /// The body as text, for "body contains" checks.
    raw: String,
}

impl Parsed {
    fn new(error_type_header: Option<&str>, body: &[u8]) -> Self {
        let raw = String::from_utf8_lossy(body).into_owned();
        let mut parsed = Parsed::default();
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(obj)) => parsed.read_object(&obj),
            Ok(Value::String(s)) => parsed.message = Some(s),
            Ok(_) => {}
            Err(_) => {
                let text = raw.trim();
                // An HTML error page from a load balancer says nothing useful.
                if !text.is_empty() && !text.starts_with('<') {
                    parsed.message = Some(text.to_owned());
                }
            }
        }
        if let Some(code) = error_type_header.and_then(sanitize_error_code) {
            parsed.code = Some(code);
        }
        if parsed.code.is_none() {
            parsed.code = parsed.oauth_error.clone();
        }
        parsed.raw = raw;
        parsed
    }

    fn read_object(&mut self, obj: &Map<String, Value>) {
        let text = |o: &Map<String, Value>, keys: &[&str]| {
            keys.iter()
                .find_map(|k| o.get(*k).and_then(Value::as_str))
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
        };
        self.code = text(obj, &["__type", "code", "Code"]).and_then(|c| sanitize_error_code(&c));
        self.reason = text(obj, &["reason", "Reason"]).and_then(|r| keep_identifier(r.trim()));
        self.message = text(
            obj,
            &["message", "Message", "errorMessage", "error_description"],
        );
        match obj.get("error") {
            Some(Value::String(e)) => self.oauth_error = keep_identifier(e.trim()),
            Some(Value::Object(inner)) => {
                if self.reason.is_none() {
                    self.reason =
                        text(inner, &["reason", "Reason"]).and_then(|r| keep_identifier(r.trim()));
                }
                if self.message.is_none() {
                    self.message = text(inner, &["message", "Message"]);
                }
                if self.code.is_none() {
                    self.code = text(inner, &["__type", "code", "type"])
                        .and_then(|c| sanitize_error_code(&c));
                }
            }
            _ => {}
        }
    }

    fn code_base(&self) -> &str {
        self.code.as_deref().map_or("", strip_code_suffix)
    }

    fn message_lc(&self) -> String {
        self.message.as_deref().unwrap_or("").to_lowercase()
    }

    /// `reason == token`, or the body mentions it anywhere (covers nesting and odd dialects).
    fn has(&self, token: &str) -> bool {
        self.reason.as_deref() == Some(token) || self.raw.contains(token)
    }

    fn into_error(
        self,
        class: ErrorClass,
        stage: Stage,
        status: Option<u16>,
        now: DateTime<Utc>,
    ) -> UpstreamError {
        let cleaned = self
            .message
            .as_deref()
            .map(clean_message)
            .unwrap_or_default();
        let message = if cleaned.is_empty() {
            class.default_message().to_owned()
        } else {
            cleaned
        };
        let until = match class {
            ErrorClass::MonthlyQuota => Some(first_of_next_month_utc(now)),
            ErrorClass::DailyQuota => Some(next_midnight_utc(now)),
            _ => None,
        };
        UpstreamError {
            class,
            stage,
            status,
            reason: self.reason.or_else(|| self.oauth_error.clone()),
            code: self.code,
            message,
            until,
        }
    }
}

/// The ordered decision of the module docs. `status` is the real HTTP status, or for in-stream
/// frames the one implied by the exception type.
fn decide(status: u16, p: &Parsed) -> ErrorClass {
    let base = p.code_base();
    let is = |name: &str| base_is(base, name);
    let msg = p.message_lc();

    if p.raw.contains("Input is too long.") || msg.contains("input is too long") {
        return ErrorClass::InputTooLong;
    }
    if p.has("INSUFFICIENT_MODEL_CAPACITY")
        || (status >= 500 && msg.contains("unexpectedly high load"))
    {
        return ErrorClass::ModelOverloaded;
    }
    if p.has("MONTHLY_REQUEST_COUNT")
        || p.has("OVERAGE_REQUEST_LIMIT_EXCEEDED")
        || status == 402
        || msg.contains("reached for this month")
    {
        return ErrorClass::MonthlyQuota;
    }
    if p.has("TEMPORARILY_SUSPENDED") || (status == 403 && msg.contains("suspended")) {
        return ErrorClass::Suspended;
    }
    if status == 401 || (status == 403 && access_token_refused(base, &msg)) {
        return ErrorClass::AccessTokenInvalid;
    }
    if p.has("DAILY_REQUEST_COUNT") || is("ServiceQuotaExceeded") {
        return ErrorClass::DailyQuota;
    }
    if status == 429 || is("Throttling") {
        return ErrorClass::Throttled;
    }
    if p.has("CONTENT_LENGTH_EXCEEDS_THRESHOLD") || status == 413 || is("ContentLengthExceeded") {
        return ErrorClass::InputTooLong;
    }
    if p.has("INVALID_MODEL_ID") || (status != 403 && model_rejected(&msg)) {
        return ErrorClass::InvalidModel;
    }
    if msg.contains("profilearn is required") {
        return ErrorClass::ProfileRequired;
    }
    if msg.contains("provided credential is invalid") || status == 403 || is("AccessDenied") {
        return ErrorClass::AccessDenied;
    }
    if status == 408 || status == 504 {
        return ErrorClass::Timeout;
    }
    if p.has("MODEL_TEMPORARILY_UNAVAILABLE")
        || is("ServiceUnavailable")
        || status == 503
        || (status >= 500 && msg.contains("temporarily unavailable"))
    {
        return ErrorClass::ModelOverloaded;
    }
    if (400..500).contains(&status) && !is("InternalServer") {
        return ErrorClass::InvalidRequest;
    }
    ErrorClass::ServerError
}

/// A 403 that is about the bearer token itself (so a refresh can fix it).
fn access_token_refused(base: &str, msg: &str) -> bool {
    [
        "ExpiredToken",
        "InvalidToken",
        "UnrecognizedClient",
        "InvalidAccessToken",
    ]
    .iter()
    .any(|name| base_is(base, name))
        || msg.contains("bearer token")
        || ((msg.contains("token") || msg.contains("authorization"))
            && (msg.contains("invalid") || msg.contains("expired")))
}

/// A message saying the requested model does not exist or is not offered (§4.1: one peer saw a
/// 500 for unknown model ids; only the text can tell that apart from a real 500). Phrases only,
/// so that "the model returned an invalid response" stays a server error.
fn model_rejected(msg: &str) -> bool {
    const PHRASES: [&str; 9] = [
        "invalid model",
        "unsupported model",
        "unknown model",
        "model not supported",
        "model is not supported",
        "model not found",
        "model does not exist",
        "model is not available",
        "model not available",
    ];
    if msg.contains("temporarily") {
        return false;
    }
    PHRASES.iter().any(|p| msg.contains(p))
        || ((msg.contains("model id") || msg.contains("modelid"))
            && (msg.contains("invalid") || msg.contains("not ")))
}

/// One line, token-like runs redacted, at most [`MAX_MESSAGE_CHARS`] characters (+ `…`).
fn clean_message(raw: &str) -> String {
    let one_line = raw
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let redacted = redact_secrets(&one_line);
    if redacted.chars().count() <= MAX_MESSAGE_CHARS {
        return redacted;
    }
    let mut cut: String = redacted.chars().take(MAX_MESSAGE_CHARS).collect();
    cut.push('…');
    cut
}

/// Replace anything that looks like a credential with `[redacted]`: AWS access/refresh tokens
/// (`aoa…`/`aor…`), JWTs (`eyJ…`, e.g. OIDC client secrets), Kiro API keys (`ksk_…`), the word
/// after `Bearer`, and any opaque run of 64+ token characters.
fn redact_secrets(text: &str) -> String {
    fn is_token_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-' | '.' | '~')
    }
    fn looks_secret(run: &str, after_bearer: bool) -> bool {
        let len = run.chars().count();
        if after_bearer && len >= 8 {
            return true;
        }
        let prefixed = ["aoa", "aor", "eyJ", "ksk_"]
            .iter()
            .any(|p| run.starts_with(p));
        (prefixed && len >= 20) || len >= 64
    }

    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let mut after_bearer = false;
    let flush = |run: &mut String, out: &mut String, after_bearer: &mut bool| {
        if run.is_empty() {
            return;
        }
        if looks_secret(run, *after_bearer) {
            out.push_str("[redacted]");
        } else {
            out.push_str(run);
        }
        *after_bearer = run.eq_ignore_ascii_case("bearer");
        run.clear();
    };
    for c in text.chars() {
        if is_token_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out, &mut after_bearer);
            if c != ' ' && c != ':' {
                after_bearer = false;
            }
            out.push(c);
        }
    }
    flush(&mut run, &mut out, &mut after_bearer);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 14, 15, 9, 26).unwrap()
    }

    fn at(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, mi, s).unwrap()
    }

    fn http(status: u16, header: Option<&str>, body: &str) -> UpstreamError {
        classify_http(status, header, body.as_bytes(), now())
    }

    fn dialect_a(type_name: &str, message: &str, reason: Option<&str>) -> String {
        serde_json::json!({
            "__type": format!("com.amazon.aws.codewhisperer#{type_name}"),
            "message": message,
            "reason": reason,
        })
        .to_string()
    }

    // ---- §6.2 catalogue, one test per row -------------------------------------------------

    #[test]
    fn row_content_length_exceeds_threshold() {
        let e = http(
            400,
            Some("ValidationException"),
            r#"{"message":"Input is too long.","reason":"CONTENT_LENGTH_EXCEEDS_THRESHOLD"}"#,
        );
        assert_eq!(e.class, ErrorClass::InputTooLong);
        assert_eq!(e.code.as_deref(), Some("ValidationException"));
        assert_eq!(
            e.reason.as_deref(),
            Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD")
        );
        assert_eq!(e.message, "Input is too long.");
        assert!(e.is_client_fault());
        assert_eq!(e.class.client_status(), 400);
        // The reason alone, without the text, is enough.
        let e = http(
            400,
            None,
            &dialect_a(
                "ValidationException",
                "Too big",
                Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"),
            ),
        );
        assert_eq!(e.class, ErrorClass::InputTooLong);
    }

    #[test]
    fn row_improperly_formed_request() {
        let e = http(
            400,
            None,
            &dialect_a("ValidationException", "Improperly formed request.", None),
        );
        assert_eq!(e.class, ErrorClass::InvalidRequest);
        assert_eq!(e.code.as_deref(), Some("ValidationException"));
        assert_eq!(e.reason, None);
        assert_eq!(
            e.to_string(),
            "Amazon Q rejected the request (ValidationException): Improperly formed request."
        );
        assert!(!e.is_retryable_on_other_account());
        assert_eq!(e.account_action(), AccountAction::None);
        // Dialect B with an explicit null reason.
        let e = http(
            400,
            None,
            r#"{"message":"Improperly formed request.","reason":null}"#,
        );
        assert_eq!(e.class, ErrorClass::InvalidRequest);
        assert_eq!(e.code, None);
        assert_eq!(
            e.to_string(),
            "Amazon Q rejected the request (HTTP 400): Improperly formed request."
        );
    }

    #[test]
    fn row_invalid_model_id() {
        let e = http(
            400,
            None,
            &dialect_a(
                "ValidationException",
                "Invalid model.",
                Some("INVALID_MODEL_ID"),
            ),
        );
        assert_eq!(e.class, ErrorClass::InvalidModel);
        assert!(e.is_client_fault());
    }

    #[test]
    fn row_invalid_conversation_id_and_kms_grant() {
        for reason in ["INVALID_CONVERSATION_ID", "INVALID_KMS_GRANT"] {
            let e = http(
                400,
                None,
                &dialect_a("ValidationException", "Bad.", Some(reason)),
            );
            assert_eq!(e.class, ErrorClass::InvalidRequest, "{reason}");
            assert_eq!(e.reason.as_deref(), Some(reason));
        }
    }

    #[test]
    fn row_profile_arn_required() {
        let e = http(
            400,
            Some("ValidationException"),
            r#"{"message":"profileArn is required for this request.","reason":null}"#,
        );
        assert_eq!(e.class, ErrorClass::ProfileRequired);
        assert!(!e.is_client_fault());
        assert!(e.is_retryable_on_other_account());
        assert_eq!(e.account_action(), AccountAction::Disable);
    }

    #[test]
    fn row_provided_credential_invalid() {
        let e = http(
            400,
            None,
            &dialect_a(
                "ValidationException",
                "The provided credential is invalid.",
                None,
            ),
        );
        assert_eq!(e.class, ErrorClass::AccessDenied);
        assert!(e.is_retryable_on_other_account());
        assert_eq!(e.account_action(), AccountAction::Cooldown);
    }

    #[test]
    fn row_bearer_token_invalid() {
        let e = http(
            403,
            Some("AccessDeniedException"),
            r#"{"message":"The bearer token included in the request is invalid.","reason":null}"#,
        );
        assert_eq!(e.class, ErrorClass::AccessTokenInvalid);
        assert_eq!(
            e.message,
            "The bearer token included in the request is invalid."
        );
        assert_eq!(e.account_action(), AccountAction::RefreshAndRetry);
        assert_eq!(e.code.as_deref(), Some("AccessDeniedException"));
        assert_eq!(e.class.anthropic_error_type(), "api_error");
    }

    #[test]
    fn row_temporarily_suspended() {
        let body = dialect_a(
            "AccessDeniedException",
            "Your User ID (a1b2c3) temporarily is suspended. We've locked your account as a security precaution.",
            Some("TEMPORARILY_SUSPENDED"),
        );
        let e = http(403, None, &body);
        assert_eq!(e.class, ErrorClass::Suspended);
        assert_eq!(e.account_action(), AccountAction::Disable);
        assert!(e.is_retryable_on_other_account());
        // Without the reason, the text on a 403 still says it.
        let e = http(
            403,
            None,
            r#"{"message":"Your User ID temporarily is suspended."}"#,
        );
        assert_eq!(e.class, ErrorClass::Suspended);
    }

    #[test]
    fn row_access_denied_other_reasons() {
        for reason in [
            "FEATURE_NOT_SUPPORTED",
            "UNAUTHORIZED_CUSTOMIZATION_RESOURCE_ACCESS",
            "UNAUTHORIZED_WORKSPACE_CONTEXT_FEATURE_ACCESS",
        ] {
            let e = http(
                403,
                None,
                &dialect_a("AccessDeniedException", "Not allowed.", Some(reason)),
            );
            assert_eq!(e.class, ErrorClass::AccessDenied, "{reason}");
        }
        // A 403 about the model is an entitlement of this account, not a bad model id.
        let e = http(
            403,
            None,
            r#"{"message":"The requested model is not supported for your subscription."}"#,
        );
        assert_eq!(e.class, ErrorClass::AccessDenied);
    }

    #[test]
    fn row_401() {
        let e = http(401, None, "");
        assert_eq!(e.class, ErrorClass::AccessTokenInvalid);
        assert_eq!(e.message, "the access token was rejected");
        assert_eq!(
            e.to_string(),
            "Amazon Q rejected the request (HTTP 401): the access token was rejected"
        );
    }

    #[test]
    fn row_monthly_request_count_400_and_429() {
        for status in [400, 429] {
            let e = http(
                status,
                None,
                &dialect_a(
                    "ThrottlingException",
                    "Maximum Request reached for this month.",
                    Some("MONTHLY_REQUEST_COUNT"),
                ),
            );
            assert_eq!(e.class, ErrorClass::MonthlyQuota, "{status}");
            assert_eq!(e.until, Some(at(2026, 4, 1, 0, 0, 0)));
            assert_eq!(e.account_action(), AccountAction::DisableUntil);
            assert_eq!(e.class.client_status(), 429);
            assert_eq!(e.class.anthropic_error_type(), "rate_limit_error");
        }
        // The text alone (aws/amazon-q-developer-cli#1736) also counts.
        let e = http(
            400,
            Some("ThrottlingException"),
            r#"{"message":"Maximum Request reached for this month."}"#,
        );
        assert_eq!(e.class, ErrorClass::MonthlyQuota);
    }

    #[test]
    fn row_kiro_402_monthly() {
        let e = http(
            402,
            None,
            r#"{"error":{"reason":"MONTHLY_REQUEST_COUNT","message":"You have reached the limit."}}"#,
        );
        assert_eq!(e.class, ErrorClass::MonthlyQuota);
        assert_eq!(e.reason.as_deref(), Some("MONTHLY_REQUEST_COUNT"));
        assert_eq!(e.message, "You have reached the limit.");
        assert_eq!(e.until, Some(at(2026, 4, 1, 0, 0, 0)));
        let e = http(
            402,
            None,
            r#"{"message":"You have reached the limit.","reason":"MONTHLY_REQUEST_COUNT"}"#,
        );
        assert_eq!(e.class, ErrorClass::MonthlyQuota);
        // A bare 402 is a quota too.
        assert_eq!(http(402, None, "").class, ErrorClass::MonthlyQuota);
    }

    #[test]
    fn row_daily_request_count() {
        let e = http(
            429,
            None,
            &dialect_a(
                "ThrottlingException",
                "Daily limit.",
                Some("DAILY_REQUEST_COUNT"),
            ),
        );
        assert_eq!(e.class, ErrorClass::DailyQuota);
        assert_eq!(e.until, Some(at(2026, 3, 15, 0, 0, 0)));
        assert_eq!(e.account_action(), AccountAction::DisableUntil);
    }

    #[test]
    fn row_insufficient_model_capacity_and_high_load() {
        let e = http(
            429,
            None,
            &dialect_a(
                "ThrottlingException",
                "Capacity.",
                Some("INSUFFICIENT_MODEL_CAPACITY"),
            ),
        );
        assert_eq!(e.class, ErrorClass::ModelOverloaded);
        let e = http(
            500,
            Some("InternalServerException"),
            r#"{"message":"Encountered unexpectedly high load when processing the request, please try again."}"#,
        );
        assert_eq!(e.class, ErrorClass::ModelOverloaded);
        assert_eq!(e.class.client_status(), 529);
        assert_eq!(e.class.anthropic_error_type(), "overloaded_error");
        assert_eq!(e.account_action(), AccountAction::None);
        assert!(e.is_retryable_on_other_account());
    }

    #[test]
    fn row_throttling_rate() {
        let e = http(
            429,
            None,
            &dialect_a("ThrottlingException", "Rate exceeded.", None),
        );
        assert_eq!(e.class, ErrorClass::Throttled);
        assert_eq!(e.account_action(), AccountAction::Cooldown);
        assert!(e.is_retryable_on_other_account());
        assert_eq!(e.until, None);
        // A 429 with no body at all.
        assert_eq!(http(429, None, "").class, ErrorClass::Throttled);
    }

    #[test]
    fn row_service_quota_exceeded() {
        for (reason, class) in [
            ("MONTHLY_REQUEST_COUNT", ErrorClass::MonthlyQuota),
            ("OVERAGE_REQUEST_LIMIT_EXCEEDED", ErrorClass::MonthlyQuota),
            ("CONVERSATION_LIMIT_EXCEEDED", ErrorClass::DailyQuota),
        ] {
            let e = http(
                400,
                None,
                &dialect_a("ServiceQuotaExceededException", "Quota.", Some(reason)),
            );
            assert_eq!(e.class, class, "{reason}");
            assert!(e.until.is_some());
        }
    }

    #[test]
    fn row_model_temporarily_unavailable() {
        let e = http(
            500,
            None,
            &dialect_a(
                "InternalServerException",
                "Try later.",
                Some("MODEL_TEMPORARILY_UNAVAILABLE"),
            ),
        );
        assert_eq!(e.class, ErrorClass::ModelOverloaded);
    }

    #[test]
    fn row_service_unavailable() {
        let e = http(
            500,
            Some("ServiceUnavailableException"),
            r#"{"message":"The service is temporarily unavailable. Please try again later."}"#,
        );
        assert_eq!(e.class, ErrorClass::ModelOverloaded);
        assert_eq!(
            e.to_string(),
            "Amazon Q failed (ServiceUnavailableException): The service is temporarily unavailable. Please try again later."
        );
        assert_eq!(http(503, None, "").class, ErrorClass::ModelOverloaded);
    }

    #[test]
    fn row_500_unsupported_model() {
        // A bare 500 cannot be told apart from a real server error: ServerError (retry elsewhere).
        let e = http(
            500,
            Some("InternalServerException"),
            r#"{"message":"Encountered an unexpected error when processing the request, please try again."}"#,
        );
        assert_eq!(e.class, ErrorClass::ServerError);
        assert_eq!(e.account_action(), AccountAction::None);
        // A 500 whose text names the model as unsupported is a model error.
        let e = http(
            500,
            None,
            r#"{"message":"The requested model is not supported."}"#,
        );
        assert_eq!(e.class, ErrorClass::InvalidModel);
        let e = http(500, None, r#"{"message":"Invalid modelId: gpt-4"}"#);
        assert_eq!(e.class, ErrorClass::InvalidModel);
        // Mentioning a model is not enough.
        let e = http(
            500,
            None,
            r#"{"message":"The model returned an invalid response."}"#,
        );
        assert_eq!(e.class, ErrorClass::ServerError);
    }

    #[test]
    fn row_conflict_kms() {
        let e = http(
            409,
            None,
            &dialect_a("ConflictException", "KMS.", Some("MISMATCHED_KMS_KEY")),
        );
        assert_eq!(e.class, ErrorClass::InvalidRequest);
    }

    #[test]
    fn other_statuses() {
        assert_eq!(http(413, None, "").class, ErrorClass::InputTooLong);
        assert_eq!(http(408, None, "").class, ErrorClass::Timeout);
        assert_eq!(http(504, None, "").class, ErrorClass::Timeout);
        assert_eq!(
            http(502, None, "<html>Bad Gateway</html>").class,
            ErrorClass::ServerError
        );
        assert_eq!(http(404, None, "").class, ErrorClass::InvalidRequest);
    }

    /// The whole catalogue in both dialects (A: `__type` in the body, with and without the
    /// `x-amzn-errortype` header; B: `{"message","reason"}` only): the class never depends on
    /// the dialect.
    #[test]
    fn catalogue_in_both_dialects() {
        use ErrorClass::*;
        /// status, type name, message, reason, expected class.
        type Row = (
            u16,
            Option<&'static str>,
            Option<&'static str>,
            Option<&'static str>,
            ErrorClass,
        );
        let rows: &[Row] = &[
            (400, Some("ValidationException"), Some("Improperly formed request."), None, InvalidRequest),
            (400, Some("ValidationException"), Some("Input is too long."), Some("CONTENT_LENGTH_EXCEEDS_THRESHOLD"), InputTooLong),
            (400, Some("ValidationException"), Some("Invalid model. Please select a different model to continue."), Some("INVALID_MODEL_ID"), InvalidModel),
            (400, Some("ValidationException"), Some("profileArn is required for this request."), None, ProfileRequired),
            (400, Some("ValidationException"), Some("The provided credential is invalid."), None, AccessDenied),
            (403, Some("AccessDeniedException"), Some("The bearer token included in the request is invalid."), None, AccessTokenInvalid),
            (403, Some("AccessDeniedException"), Some("Your User ID (d-9067642ac7.f4a8b468-0001-7094-EXAMPLE) temporarily is suspended."), Some("TEMPORARILY_SUSPENDED"), Suspended),
            (400, Some("ThrottlingException"), Some("Maximum Request reached for this month."), Some("MONTHLY_REQUEST_COUNT"), MonthlyQuota),
            (402, None, Some("You have reached the limit."), Some("MONTHLY_REQUEST_COUNT"), MonthlyQuota),
            (429, Some("ThrottlingException"), Some("Daily request limit reached."), Some("DAILY_REQUEST_COUNT"), DailyQuota),
            (429, Some("ThrottlingException"), Some("Rate exceeded"), None, Throttled),
            (429, Some("ThrottlingException"), Some("I am experiencing high traffic, please try again shortly."), Some("INSUFFICIENT_MODEL_CAPACITY"), ModelOverloaded),
            (500, Some("InternalServerException"), Some("Encountered unexpectedly high load when processing the request, please try again."), None, ModelOverloaded),
            (500, Some("InternalServerException"), Some("Encountered unexpectedly high load when processing the request, please try again."), Some("MODEL_TEMPORARILY_UNAVAILABLE"), ModelOverloaded),
            (500, Some("ServiceUnavailableException"), Some("The service is temporarily unavailable. Please try again later."), None, ModelOverloaded),
            (500, Some("InternalServerException"), Some("Encountered an unexpected error when processing the request, please try again."), None, ServerError),
            (400, Some("UnknownOperationException"), None, None, InvalidRequest),
        ];
        for &(status, type_name, message, reason, class) in rows {
            let b = serde_json::json!({ "message": message, "reason": reason }).to_string();
            let mut a = serde_json::json!({ "message": message, "reason": reason });
            if let Some(t) = type_name {
                a["__type"] = format!("com.amazon.aws.codewhisperer#{t}").into();
            }
            let a = a.to_string();
            for (header, body) in [(None, &a), (type_name, &a), (None, &b), (type_name, &b)] {
                let e = http(status, header, body);
                assert_eq!(e.class, class, "{status} {header:?} {body}");
                assert_eq!(e.reason.as_deref(), reason);
                assert_eq!(e.message, message.unwrap_or(class.default_message()));
                assert!(e.message.len() <= 4 * MAX_MESSAGE_CHARS);
            }
        }
    }

    // ---- §6.1 parsing ---------------------------------------------------------------------

    #[test]
    fn header_wins_over_type() {
        let body = dialect_a("ValidationException", "Rate exceeded.", None);
        let e = http(400, Some("ThrottlingException:http://internal.amazon.com/coral/com.amazon.aws.codewhisperer/"), &body);
        assert_eq!(e.code.as_deref(), Some("ThrottlingException"));
        assert_eq!(e.class, ErrorClass::Throttled);
        // An unusable header falls back to __type.
        let e = http(400, Some(""), &body);
        assert_eq!(e.code.as_deref(), Some("ValidationException"));
        assert_eq!(e.class, ErrorClass::InvalidRequest);
    }

    #[test]
    fn both_spellings_are_accepted() {
        for code in ["ThrottlingException", "ThrottlingError"] {
            let e = http(400, Some(code), r#"{"message":"Slow down."}"#);
            assert_eq!(e.class, ErrorClass::Throttled, "{code}");
            assert_eq!(e.code.as_deref(), Some(code));
        }
        for code in ["AccessDeniedException", "AccessDeniedError"] {
            let e = classify_exception(code, br#"{"message":"no"}"#, now());
            assert_eq!(e.class, ErrorClass::AccessDenied, "{code}");
        }
        for code in ["ServiceUnavailableException", "ServiceUnavailableError"] {
            assert_eq!(
                http(500, Some(code), "").class,
                ErrorClass::ModelOverloaded,
                "{code}"
            );
        }
    }

    #[test]
    fn empty_and_garbage_bodies() {
        let e = http(400, None, "");
        assert_eq!(e.class, ErrorClass::InvalidRequest);
        assert_eq!(e.code, None);
        assert_eq!(e.reason, None);
        assert_eq!(e.message, "the request was rejected");
        let e = http(500, None, "");
        assert_eq!(e.class, ErrorClass::ServerError);
        assert_eq!(
            e.to_string(),
            "Amazon Q failed (HTTP 500): internal server error"
        );
        let e = http(
            500,
            None,
            "upstream connect error or disconnect/reset before headers",
        );
        assert_eq!(e.class, ErrorClass::ServerError);
        assert_eq!(
            e.message,
            "upstream connect error or disconnect/reset before headers"
        );
        let e = classify_http(400, None, &[0xff, 0xfe, b'{'], now());
        assert_eq!(e.class, ErrorClass::InvalidRequest);
        let e = http(400, None, "[1,2]");
        assert_eq!(e.class, ErrorClass::InvalidRequest);
        assert_eq!(e.message, "the request was rejected");
    }

    #[test]
    fn sanitize_codes() {
        assert_eq!(
            sanitize_error_code("com.amazon.aws.codewhisperer#ValidationException").as_deref(),
            Some("ValidationException")
        );
        assert_eq!(
            sanitize_error_code(
                "InvalidGrantException:http://internal.amazon.com/coral/com.amazonaws.sso.oidc/"
            )
            .as_deref(),
            Some("InvalidGrantException")
        );
        assert_eq!(
            sanitize_error_code("aws.protocoltests#FooError:http://x/").as_deref(),
            Some("FooError")
        );
        assert_eq!(sanitize_error_code("  "), None);
        assert_eq!(
            sanitize_error_code("Bad Thing<script>").as_deref(),
            Some("Bad")
        );
        assert_eq!(sanitize_error_code(&"A".repeat(500)).unwrap().len(), 64);
    }

    #[test]
    fn message_is_bounded_one_line_and_redacted() {
        let long = format!("{{\"message\":\"{}\"}}", "é".repeat(1000));
        let e = http(400, None, &long);
        assert_eq!(e.message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(e.message.ends_with('…'));

        let e = http(400, None, r#"{"message":"line one\n\tline two"}"#);
        assert_eq!(e.message, "line one line two");

        let e = http(
            403,
            None,
            r#"{"message":"Token aoaAAAAAGlzIGFuIGFjY2VzcyB0b2tlbiBmb3IgdGVzdA expired; refresh aorAAAAAEXAMPLEREFRESHTOKEN1234; Authorization: Bearer abcdefgh12345678; secret eyJraWQiOiJrZXktMTIzIiwiYWxnIjoiSFMzODQifQ.EXAMPLE.EXAMPLE"}"#,
        );
        assert_eq!(
            e.message,
            "Token [redacted] expired; refresh [redacted]; Authorization: Bearer [redacted]; secret [redacted]"
        );
        assert_eq!(e.class, ErrorClass::AccessTokenInvalid);
        // Ordinary words and ARNs-like text survive.
        assert_eq!(
            redact_secrets(
                "profile arn:aws:codewhisperer:us-east-1:123456789012:profile/ABC is bad"
            ),
            "profile arn:aws:codewhisperer:us-east-1:123456789012:profile/ABC is bad"
        );
    }

    // ---- in-stream exceptions and error frames ----------------------------------------------

    #[test]
    fn stream_content_length_exceeded_is_output_cap() {
        let e = classify_exception(
            "ContentLengthExceededException",
            br#"{"message":"Response too long."}"#,
            now(),
        );
        assert_eq!(e.class, ErrorClass::OutputLengthExceeded);
        assert_eq!(e.stage, Stage::Stream);
        assert_eq!(e.status, None);
        assert_eq!(e.class.client_status(), 200);
        assert!(!e.is_retryable_on_other_account());
        assert_eq!(
            e.to_string(),
            "Amazon Q stopped the response (ContentLengthExceededException): Response too long."
        );
    }

    #[test]
    fn stream_throttling() {
        let e = classify_exception(
            "ThrottlingException",
            br#"{"message":"Rate exceeded."}"#,
            now(),
        );
        assert_eq!(e.class, ErrorClass::Throttled);
        assert_eq!(
            e.to_string(),
            "Amazon Q rejected the request mid-stream (ThrottlingException): Rate exceeded."
        );
        let e = classify_exception(
            "ThrottlingException",
            br#"{"message":"Maximum Request reached for this month.","reason":"MONTHLY_REQUEST_COUNT"}"#,
            now(),
        );
        assert_eq!(e.class, ErrorClass::MonthlyQuota);
        assert_eq!(e.until, Some(at(2026, 4, 1, 0, 0, 0)));
        let e = classify_exception(
            "ThrottlingException",
            br#"{"reason":"INSUFFICIENT_MODEL_CAPACITY"}"#,
            now(),
        );
        assert_eq!(e.class, ErrorClass::ModelOverloaded);
    }

    #[test]
    fn stream_internal_server_and_error() {
        let e = classify_exception("InternalServerException", br#"{"message":"Oops."}"#, now());
        assert_eq!(e.class, ErrorClass::ServerError);
        assert_eq!(
            e.to_string(),
            "Amazon Q failed mid-stream (InternalServerException): Oops."
        );
        let e = classify_exception(
            "error",
            br#"{"message":"Model unavailable.","reason":"MODEL_TEMPORARILY_UNAVAILABLE"}"#,
            now(),
        );
        assert_eq!(e.class, ErrorClass::ModelOverloaded);
        assert_eq!(e.code.as_deref(), Some("error"));
        let e = classify_exception("error", br#"{"message":"Something broke."}"#, now());
        assert_eq!(e.class, ErrorClass::ServerError);
        let e = classify_exception(
            "InternalServerException",
            br#"{"message":"Encountered unexpectedly high load when processing the request, please try again."}"#,
            now(),
        );
        assert_eq!(e.class, ErrorClass::ModelOverloaded);
    }

    #[test]
    fn stream_validation_and_others() {
        let e = classify_exception(
            "ValidationException",
            br#"{"message":"Improperly formed request."}"#,
            now(),
        );
        assert_eq!(e.class, ErrorClass::InvalidRequest);
        let e = classify_exception(
            "ValidationException",
            br#"{"message":"Input is too long."}"#,
            now(),
        );
        assert_eq!(e.class, ErrorClass::InputTooLong);
        let e = classify_exception(
            "AccessDeniedException",
            br#"{"message":"The bearer token included in the request is invalid."}"#,
            now(),
        );
        assert_eq!(e.class, ErrorClass::AccessTokenInvalid);
        let e = classify_exception("ServiceUnavailableException", b"", now());
        assert_eq!(e.class, ErrorClass::ModelOverloaded);
        // A frame without `:exception-type` (events.rs passes "").
        let e = classify_exception(
            "",
            br#"{"message":"Rate exceeded","reason":"DAILY_REQUEST_COUNT"}"#,
            now(),
        );
        assert_eq!(e.class, ErrorClass::DailyQuota);
        assert_eq!(e.code, None);
        let e = classify_exception("", b"", now());
        assert_eq!(e.class, ErrorClass::ServerError);
        let e = classify_exception("SomethingNewException", b"not json", now());
        assert_eq!(e.class, ErrorClass::ServerError);
        assert_eq!(e.message, "not json");
    }

    #[test]
    fn stream_error_frames() {
        let e = classify_stream_error(Some("InternalServerException"), Some("Internal failure"));
        assert_eq!(e.class, ErrorClass::ServerError);
        assert_eq!(e.message, "Internal failure");
        assert_eq!(e.code.as_deref(), Some("InternalServerException"));
        let e = classify_stream_error(None, None);
        assert_eq!(e.class, ErrorClass::ServerError);
        assert_eq!(
            e.to_string(),
            "Amazon Q failed mid-stream: internal server error"
        );
        let e = classify_stream_error(Some("ThrottlingException"), Some("Rate exceeded"));
        assert_eq!(e.class, ErrorClass::Throttled);
        let e = classify_stream_error_at(
            Some("ThrottlingException"),
            Some("MONTHLY_REQUEST_COUNT"),
            at(2025, 12, 31, 23, 59, 59),
        );
        assert_eq!(e.class, ErrorClass::MonthlyQuota);
        assert_eq!(e.until, Some(at(2026, 1, 1, 0, 0, 0)));
        let e = classify_stream_error(Some("ContentLengthExceededException"), None);
        assert_eq!(e.class, ErrorClass::OutputLengthExceeded);
    }

    // ---- token refresh ----------------------------------------------------------------------

    fn refresh(status: u16, header: Option<&str>, body: &str) -> UpstreamError {
        classify_token_refresh(status, header, body.as_bytes())
    }

    #[test]
    fn refresh_invalid_grant_aws_cli_8561() {
        let e = refresh(
            400,
            Some("InvalidGrantException:http://internal.amazon.com/coral/com.amazonaws.sso.oidc/"),
            r#"{"error":"invalid_grant","error_description":"Invalid refresh token provided"}"#,
        );
        assert_eq!(e.class, ErrorClass::RefreshTokenInvalid);
        assert_eq!(e.code.as_deref(), Some("InvalidGrantException"));
        assert_eq!(e.reason.as_deref(), Some("invalid_grant"));
        assert_eq!(e.message, "Invalid refresh token provided");
        assert_eq!(e.stage, Stage::TokenRefresh);
        assert_eq!(e.account_action(), AccountAction::Disable);
        assert_eq!(
            e.to_string(),
            "token refresh failed (InvalidGrantException): Invalid refresh token provided"
        );
        // Without the header (Kiro social refresh): the body alone decides.
        let e = refresh(
            400,
            None,
            r#"{"error":"invalid_grant","error_description":"Invalid refresh token provided"}"#,
        );
        assert_eq!(e.class, ErrorClass::RefreshTokenInvalid);
        assert_eq!(e.code.as_deref(), Some("invalid_grant"));
        let e = refresh(401, None, r#"{"message":"Invalid refresh token provided"}"#);
        assert_eq!(e.class, ErrorClass::RefreshTokenInvalid);
    }

    #[test]
    fn refresh_expired_token() {
        let e = refresh(
            400,
            Some("ExpiredTokenException"),
            r#"{"error":"expired_token","error_description":"Token is expired"}"#,
        );
        assert_eq!(e.class, ErrorClass::RefreshTokenInvalid);
    }

    #[test]
    fn refresh_invalid_client() {
        let e = refresh(
            400,
            Some("InvalidClientException:http://internal.amazon.com/coral/com.amazonaws.sso.oidc/"),
            r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
        );
        assert_eq!(e.class, ErrorClass::ClientRegistrationExpired);
        assert_eq!(e.account_action(), AccountAction::Disable);
        let e = refresh(
            400,
            Some("UnauthorizedClientException"),
            r#"{"error":"unauthorized_client"}"#,
        );
        assert_eq!(e.class, ErrorClass::ClientRegistrationExpired);
    }

    #[test]
    fn refresh_slow_down_and_429() {
        let e = refresh(400, Some("SlowDownException"), r#"{"error":"slow_down"}"#);
        assert_eq!(e.class, ErrorClass::Throttled);
        let e = refresh(429, None, "");
        assert_eq!(e.class, ErrorClass::Throttled);
        assert_eq!(e.account_action(), AccountAction::Cooldown);
    }

    #[test]
    fn refresh_authorization_pending() {
        let e = refresh(
            400,
            Some("AuthorizationPendingException"),
            r#"{"error":"authorization_pending","error_description":null}"#,
        );
        assert_eq!(e.class, ErrorClass::AuthorizationPending);
        assert_eq!(e.message, "authorization pending");
    }

    #[test]
    fn refresh_server_errors() {
        let e = refresh(
            500,
            Some("InternalServerException"),
            r#"{"error":"server_error","error_description":"Internal error"}"#,
        );
        assert_eq!(e.class, ErrorClass::ServerError);
        assert_eq!(e.account_action(), AccountAction::None);
        assert_eq!(refresh(503, None, "").class, ErrorClass::ServerError);
    }

    #[test]
    fn refresh_garbage_and_other_4xx() {
        let e = refresh(400, None, "<html>oops</html>");
        assert_eq!(e.class, ErrorClass::RefreshRejected);
        assert_eq!(e.message, "the token refresh request was rejected");
        assert_eq!(e.account_action(), AccountAction::Cooldown);
        let e = refresh(502, None, "garbage");
        assert_eq!(e.class, ErrorClass::ServerError);
        let e = refresh(
            400,
            Some("InvalidRequestException"),
            r#"{"error":"invalid_request"}"#,
        );
        assert_eq!(e.class, ErrorClass::RefreshRejected);
        let e = refresh(
            400,
            Some("AccessDeniedException"),
            r#"{"error":"access_denied"}"#,
        );
        assert_eq!(e.class, ErrorClass::RefreshRejected);
        let e = refresh(200, None, "{}");
        assert_eq!(e.class, ErrorClass::ServerError);
        assert_eq!(e.until, None);
    }

    // ---- until -----------------------------------------------------------------------------

    #[test]
    fn until_first_of_next_month() {
        assert_eq!(first_of_next_month_utc(now()), at(2026, 4, 1, 0, 0, 0));
        assert_eq!(
            first_of_next_month_utc(at(2025, 12, 31, 23, 59, 59)),
            at(2026, 1, 1, 0, 0, 0)
        );
        assert_eq!(
            first_of_next_month_utc(at(2025, 12, 1, 0, 0, 0)),
            at(2026, 1, 1, 0, 0, 0)
        );
        assert_eq!(
            first_of_next_month_utc(at(2026, 1, 1, 0, 0, 0)),
            at(2026, 2, 1, 0, 0, 0)
        );
        assert_eq!(
            first_of_next_month_utc(at(2024, 2, 29, 12, 0, 0)),
            at(2024, 3, 1, 0, 0, 0)
        );
        assert_eq!(
            next_midnight_utc(at(2025, 12, 31, 23, 59, 59)),
            at(2026, 1, 1, 0, 0, 0)
        );
        assert_eq!(
            next_midnight_utc(at(2026, 3, 14, 0, 0, 0)),
            at(2026, 3, 15, 0, 0, 0)
        );
        // December through classify_http.
        let e = classify_http(
            429,
            None,
            br#"{"__type":"ThrottlingException","message":"x","reason":"MONTHLY_REQUEST_COUNT"}"#,
            at(2026, 12, 20, 8, 0, 0),
        );
        assert_eq!(e.until, Some(at(2027, 1, 1, 0, 0, 0)));
    }

    // ---- the class itself ------------------------------------------------------------------

    #[test]
    fn class_names_are_stable_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for class in ErrorClass::ALL {
            assert!(seen.insert(class.as_str()), "duplicate {}", class.as_str());
            assert_eq!(class.as_str().parse::<ErrorClass>().unwrap(), class);
            assert_eq!(serde_json::to_value(class).unwrap(), class.as_str());
            assert_eq!(class.to_string(), class.as_str());
            // Client faults are never retried elsewhere.
            if class.is_client_fault() {
                assert!(!class.is_retryable_on_other_account());
                assert_eq!(class.client_status(), 400);
            }
        }
        assert_eq!(ErrorClass::MonthlyQuota.as_str(), "monthly_quota");
        assert!("nope".parse::<ErrorClass>().is_err());
    }

    #[test]
    fn transport_constructors() {
        let e = UpstreamError::network("connection reset by peer");
        assert_eq!(e.class, ErrorClass::Network);
        assert_eq!(
            e.to_string(),
            "the connection to Amazon Q broke: connection reset by peer"
        );
        let e = UpstreamError::unreachable("connection refused");
        assert_eq!(e.class, ErrorClass::Unreachable);
        assert_eq!(
            e.to_string(),
            "could not reach Amazon Q: connection refused"
        );
        assert_eq!(e.class.client_status(), 502);
        assert_eq!(e.account_action(), AccountAction::None);
        assert!(e.is_retryable_on_other_account());
        let e = UpstreamError::not_an_event_stream("text/html; charset=utf-8");
        assert_eq!((e.class, e.status), (ErrorClass::ServerError, Some(200)));
        assert_eq!(
            e.to_string(),
            "Amazon Q failed (HTTP 200): answered with content type text/html; charset=utf-8 instead of an event stream"
        );
        let e = UpstreamError::empty_answer();
        assert_eq!(
            e.to_string(),
            "Amazon Q failed (HTTP 200): answered with an empty event stream"
        );
        let e = UpstreamError::timeout("");
        assert_eq!(e.to_string(), "Amazon Q timed out: timed out");
        assert_eq!(e.class.anthropic_error_type(), "api_error");
        let e = UpstreamError::stream_corrupt("prelude CRC mismatch");
        assert_eq!(e.class, ErrorClass::StreamCorrupt);
        assert_eq!(
            e.to_string(),
            "Amazon Q sent an undecodable event stream: prelude CRC mismatch"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert!(boxed.to_string().contains("CRC"));
    }
}
