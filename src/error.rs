//! The one error type of the HTTP side. Everything a request can fail with becomes an
//! [`ApiError`]; each client protocol shapes it into its own error JSON at the edge
//! (`claude::error`, later `openai::error`).

use crate::q::error::{ErrorClass, UpstreamError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The client's request is malformed or cannot be served as asked.
    #[error("{0}")]
    InvalidRequest(String),
    /// Missing, unknown, revoked or expired API key.
    #[error("{0}")]
    Authentication(String),
    #[error("{0}")]
    Permission(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    TooLarge(String),
    /// The client did not send its whole request in time (`serve --request-timeout`).
    #[error("{0}")]
    RequestTimeout(String),
    /// A rate limit of ours (per key), with seconds until a retry may succeed.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Option<u64>,
    },
    /// No account can serve the request right now; the message says why, and `retry_after`
    /// is set when an account comes back soon.
    #[error("{message}")]
    NoAccount {
        message: String,
        retry_after: Option<u64>,
    },
    /// Amazon Q (or its token endpoint) failed; the class decides the status.
    #[error("{0}")]
    Upstream(UpstreamError),
    /// The server is shutting down and its grace period for this request is over.
    #[error("the server is shutting down; retry the request")]
    ShuttingDown,
    /// Our own failure (database, bug). The message is safe to show; details go to the log.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidRequest(_) => 400,
            ApiError::Authentication(_) => 401,
            ApiError::Permission(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::TooLarge(_) => 413,
            ApiError::RequestTimeout(_) => 408,
            ApiError::RateLimited { .. } => 429,
            ApiError::NoAccount { .. } => 503,
            ApiError::Upstream(e) => e.class.client_status(),
            ApiError::ShuttingDown => 503,
            ApiError::Internal(_) => 500,
        }
    }

    /// Anthropic's `error.type` for this error.
    pub fn anthropic_type(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "invalid_request_error",
            ApiError::Authentication(_) => "authentication_error",
            ApiError::Permission(_) => "permission_error",
            ApiError::NotFound(_) => "not_found_error",
            ApiError::TooLarge(_) => "request_too_large",
            ApiError::RequestTimeout(_) => "invalid_request_error",
            ApiError::RateLimited { .. } => "rate_limit_error",
            ApiError::NoAccount { .. } => "overloaded_error",
            ApiError::Upstream(e) => e.class.anthropic_error_type(),
            ApiError::ShuttingDown => "overloaded_error",
            ApiError::Internal(_) => "api_error",
        }
    }

    /// The message a person reads: ours, or the upstream's explained.
    pub fn message(&self) -> String {
        match self {
            ApiError::Upstream(e) => match e.class {
                ErrorClass::InputTooLong => format!(
                    "The conversation is too long for Amazon Q ({}). Start a new conversation or compact this one.",
                    e.message.trim_end_matches('.')
                ),
                ErrorClass::InvalidModel => format!("Amazon Q does not accept this model: {}", e.message),
                _ => e.to_string(),
            },
            other => other.to_string(),
        }
    }

    /// Seconds after which a retry may succeed, for the `retry-after` header.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after, .. } | ApiError::NoAccount { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// The error class written to the usage log.
    pub fn class_name(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::Authentication(_) => "authentication",
            ApiError::Permission(_) => "permission",
            ApiError::NotFound(_) => "not_found",
            ApiError::TooLarge(_) => "too_large",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::NoAccount { .. } => "no_account",
            ApiError::Upstream(e) => e.class.as_str(),
            ApiError::ShuttingDown => "shutting_down",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<UpstreamError> for ApiError {
    fn from(e: UpstreamError) -> Self {
        ApiError::Upstream(e)
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        log::error!("database: {e}");
        ApiError::Internal("internal database error".into())
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        ApiError::from(crate::db::DbError::from(e))
    }
}
