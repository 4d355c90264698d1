//! Anthropic's error shape, `{"type":"error","error":{"type":…,"message":…}}`, for every
//! failure on the Claude routes, including actix's own rejections (bad JSON, 404, 405, 413).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::error::ApiError;

/// An [`ApiError`] rendered the way Anthropic clients expect.
#[derive(Debug)]
pub struct ClaudeError(pub ApiError);

impl std::fmt::Display for ClaudeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<ApiError> for ClaudeError {
    fn from(e: ApiError) -> Self {
        ClaudeError(e)
    }
}

/// The error JSON body.
pub fn body(e: &ApiError) -> serde_json::Value {
    json!({"type": "error", "error": {"type": e.anthropic_type(), "message": e.message()}})
}

impl ResponseError for ClaudeError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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
    use crate::q::error::{classify_http, ErrorClass};

    fn render(e: ApiError) -> (u16, serde_json::Value) {
        let r = ClaudeError(e).error_response();
        let status = r.status().as_u16();
        let bytes = actix_web::rt::System::new()
            .block_on(actix_web::body::to_bytes(r.into_body()))
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn exact_json_for_each_kind() {
        assert_eq!(
            render(ApiError::Authentication("invalid x-api-key".into())),
            (
                401,
                json!({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}})
            )
        );
        assert_eq!(
            render(ApiError::NoAccount {
                message: "No available accounts in pool".into(),
                retry_after: Some(30)
            }),
            (
                503,
                json!({"type":"error","error":{"type":"overloaded_error","message":"No available accounts in pool"}})
            )
        );
        let too_long = classify_http(
            400,
            None,
            br#"{"__type":"com.amazon.aws.codewhisperer#ValidationException","message":"Input is too long.","reason":"CONTENT_LENGTH_EXCEEDS_THRESHOLD"}"#,
            chrono::Utc::now(),
        );
        assert_eq!(too_long.class, ErrorClass::InputTooLong);
        assert_eq!(
            render(ApiError::Upstream(too_long)),
            (
                400,
                json!({"type":"error","error":{"type":"invalid_request_error","message":"The conversation is too long for Amazon Q (Input is too long). Start a new conversation or compact this one."}})
            )
        );
        let busy = classify_http(
            500,
            None,
            br#"{"__type":"com.amazon.aws.codewhisperer#InternalServerException","message":"Encountered unexpectedly high load when processing the request, please try again.","reason":null}"#,
            chrono::Utc::now(),
        );
        let (status, body) = render(ApiError::Upstream(busy));
        assert_eq!(status, 529);
        assert_eq!(body["error"]["type"], "overloaded_error");
    }
}
