//! `POST /v1/messages` and `POST /v1/messages/count_tokens`: authenticate, read the body,
//! hand over to the proxy (or the local token estimate), shape errors as Anthropic does.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::auth::{ClientKey, Unmetered};
use super::{read_body, AppState};
use crate::claude::error::ClaudeError;
use crate::claude::types::MessagesRequest;
use crate::error::ApiError;
use crate::proxy::{Call, Front};

/// The body as a Claude request; the key is checked before the body is looked at.
fn parse(body: &[u8]) -> Result<MessagesRequest, ClaudeError> {
    if body.is_empty() {
        return Err(ApiError::InvalidRequest("the request body is empty".into()).into());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidRequest(format!("invalid request body: {e}")).into())
}

pub async fn create_message(
    state: web::Data<AppState>,
    client: web::Data<awc::Client>,
    key: ClientKey,
    payload: web::Payload,
) -> Result<HttpResponse, ClaudeError> {
    let body = read_body(payload, state.max_body).await?;
    let req = parse(&body)?;
    let call = Call {
        endpoint: "/v1/messages",
        front: Front::Claude,
        req,
    };
    crate::proxy::run(state, client, key, call)
        .await
        .map_err(ClaudeError)
}

/// Answered here, never upstream: Claude Code sends dozens of these a second, so they do not
/// count against the key's limits.
pub async fn count_tokens(
    state: web::Data<AppState>,
    _key: Unmetered,
    payload: web::Payload,
) -> Result<HttpResponse, ClaudeError> {
    let body = read_body(payload, state.max_body).await?;
    let req = parse(&body)?;
    // What `/v1/messages` would refuse before building anything is refused here too.
    state
        .models
        .resolve(&req.model)
        .map_err(ApiError::InvalidRequest)?;
    if req.messages.is_empty() {
        return Err(
            ApiError::InvalidRequest("messages: at least one message is required".into()).into(),
        );
    }
    // Off the async workers: a cold 100k-token count takes tens of milliseconds.
    let tokens = web::block(move || crate::claude::count::input_tokens(&req))
        .await
        .map_err(|_| ApiError::Internal("token counting failed".into()))?;
    Ok(HttpResponse::Ok().json(json!({ "input_tokens": tokens })))
}
