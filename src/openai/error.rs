//! OpenAI's error shape, `{"error":{"message","type","param","code"}}`, for every failure on the
//! OpenAI routes (`/v1/chat/completions`, `/v1/models`), including actix's own rejections.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::q::error::ErrorClass;

/// An [`ApiError`] rendered the way OpenAI clients expect.
#[derive(Debug)]
pub struct OpenAiError(pub ApiError);

impl std::fmt::Display for OpenAiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<ApiError> for OpenAiError {
    fn from(e: ApiError) -> Self {
        OpenAiError(e)
    }
}

/// The HTTP status on the OpenAI routes: as on the Claude routes, except that Anthropic's 529
/// ("overloaded") is OpenAI's 503.
pub fn status(e: &ApiError) -> u16 {
    match e.status() {
        529 => 503,
        s => s,
    }
}

/// OpenAI's `error.type` and `error.code` for `e`: OpenAI's own values where OpenAI has one for
/// the case (`invalid_api_key`, `context_length_exceeded`, `rate_limit_exceeded`,
/// `insufficient_quota`, `model_not_found`), else our error class as the code.
pub fn type_and_code(e: &ApiError) -> (&'static str, &'static str) {
    if let ApiError::Upstream(u) = e {
        match u.class {
            ErrorClass::InputTooLong => {
                return ("invalid_request_error", "context_length_exceeded")
            }
            ErrorClass::InvalidModel => return ("invalid_request_error", "model_not_found"),
            ErrorClass::MonthlyQuota | ErrorClass::DailyQuota => {
                return ("insufficient_quota", "insufficient_quota")
            }
            ErrorClass::Throttled => return ("requests", "rate_limit_exceeded"),
            _ => {}
        }
    }
    let kind = match status(e) {
        401 | 403 | 404 | 405 | 413 => "invalid_request_error",
        429 => "requests",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    };
    let code = match e {
        ApiError::Authentication(_) => "invalid_api_key",
        ApiError::RateLimited { .. } => "rate_limit_exceeded",
        other => other.class_name(),
    };
    (kind, code)
}

/// The error JSON body.
pub fn body(e: &ApiError) -> Value {
    let (kind, code) = type_and_code(e);
    json!({"error": {"message": e.message(), "type": kind, "param": null, "code": code}})
}

impl ResponseError for OpenAiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(status(&self.0)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(secs) = self.0.retry_after() {
            response.insert_header(("retry-after", secs.to_string()));
        }
        response.json(body(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::q::error::classify_http;

    fn render(e: ApiError) -> (u16, Option<String>, Value) {
        let r = OpenAiError(e).error_response();
        let status = r.status().as_u16();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = actix_web::rt::System::new()
            .block_on(actix_web::body::to_bytes(r.into_body()))
            .unwrap();
        (status, retry, serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn exact_json_for_each_kind() {
        assert_eq!(
            render(ApiError::Authentication(
                "invalid, revoked or expired API key".into()
            )),
            (
                401,
                None,
                json!({"error":{"message":"invalid, revoked or expired API key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}})
            )
        );
        assert_eq!(
            render(ApiError::InvalidRequest("n: bad".into())),
            (
                400,
                None,
                json!({"error":{"message":"n: bad","type":"invalid_request_error","param":null,"code":"invalid_request"}})
            )
        );
        assert_eq!(
            render(ApiError::RateLimited {
                message: "slow down".into(),
                retry_after: Some(7)
            }),
            (
                429,
                Some("7".into()),
                json!({"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}})
            )
        );
        assert_eq!(
            render(ApiError::NoAccount {
                message: "No available accounts in pool".into(),
                retry_after: None
            }),
            (
                503,
                None,
                json!({"error":{"message":"No available accounts in pool","type":"server_error","param":null,"code":"no_account"}})
            )
        );
        let too_long = classify_http(
            400,
            None,
            br#"{"__type":"com.amazon.aws.codewhisperer#ValidationException","message":"Input is too long.","reason":"CONTENT_LENGTH_EXCEEDS_THRESHOLD"}"#,
            chrono::Utc::now(),
        );
        assert_eq!(
            render(ApiError::Upstream(too_long)),
            (
                400,
                None,
                json!({"error":{"message":"The conversation is too long for Amazon Q (Input is too long). Start a new conversation or compact this one.","type":"invalid_request_error","param":null,"code":"context_length_exceeded"}})
            )
        );
        let busy = classify_http(
            500,
            None,
            br#"{"__type":"com.amazon.aws.codewhisperer#InternalServerException","message":"Encountered unexpectedly high load when processing the request, please try again.","reason":null}"#,
            chrono::Utc::now(),
        );
        let (status, _, body) = render(ApiError::Upstream(busy));
        assert_eq!(status, 503);
        assert_eq!(body["error"]["type"], "server_error");
    }
}
