//! `POST /v1/chat/completions`: authenticate, read the body, convert it into the one request
//! shape the builder takes, hand over to the proxy, shape errors as OpenAI does.

use actix_web::{web, HttpResponse};

use super::auth::ClientKey;
use super::{read_body, AppState};
use crate::error::ApiError;
use crate::openai::error::OpenAiError;
use crate::openai::request::convert;
use crate::openai::types::ChatRequest;
use crate::proxy::{Call, Front};

pub async fn create_chat_completion(
    state: web::Data<AppState>,
    client: web::Data<awc::Client>,
    key: ClientKey,
    payload: web::Payload,
) -> Result<HttpResponse, OpenAiError> {
    let body = read_body(payload, state.max_body).await?;
    if body.is_empty() {
        return Err(ApiError::InvalidRequest("the request body is empty".into()).into());
    }
    let req: ChatRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::InvalidRequest(format!("invalid request body: {e}")))?;
    let converted = convert(req).map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let call = Call {
        endpoint: "/v1/chat/completions",
        front: Front::OpenAi {
            include_usage: converted.include_usage,
        },
        req: converted.claude,
    };
    crate::proxy::run(state, client, key, call)
        .await
        .map_err(OpenAiError)
}
