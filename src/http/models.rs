//! `GET /v1/models` and `GET /v1/models/{id}`: the models the gateway serves, in OpenAI's list
//! shape, or in Anthropic's when the request carries an `anthropic-version` header.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};

use super::auth::Unmetered;
use super::{error_for, AppState};
use crate::error::ApiError;
use crate::models::ListedModel;

/// Whether the caller speaks Anthropic's API (its SDKs always send `anthropic-version`).
pub fn is_anthropic(req: &HttpRequest) -> bool {
    req.headers().contains_key("anthropic-version")
}

fn openai_model(m: &ListedModel) -> Value {
    json!({"id": m.id, "object": "model", "created": m.created, "owned_by": "anthropic"})
}

fn anthropic_model(m: &ListedModel) -> Value {
    let created_at = Utc
        .timestamp_opt(m.created, 0)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    json!({"type": "model", "id": m.id, "display_name": m.display_name, "created_at": created_at})
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>, _key: Unmetered) -> HttpResponse {
    let models = state.models.listed();
    if is_anthropic(&req) {
        HttpResponse::Ok().json(json!({
            "data": models.iter().map(anthropic_model).collect::<Vec<_>>(),
            "has_more": false,
            "first_id": models.first().map(|m| m.id.as_str()),
            "last_id": models.last().map(|m| m.id.as_str()),
        }))
    } else {
        HttpResponse::Ok().json(json!({
            "object": "list",
            "data": models.iter().map(openai_model).collect::<Vec<_>>(),
        }))
    }
}

pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    _key: Unmetered,
    id: web::Path<String>,
) -> Result<HttpResponse, actix_web::Error> {
    let id = id.into_inner();
    let found = state
        .models
        .listed()
        .into_iter()
        .find(|m| m.id.eq_ignore_ascii_case(&id));
    match found {
        Some(m) if is_anthropic(&req) => Ok(HttpResponse::Ok().json(anthropic_model(&m))),
        Some(m) => Ok(HttpResponse::Ok().json(openai_model(&m))),
        None => Err(error_for(
            &req,
            ApiError::NotFound(format!(
                "model {id:?} is not listed by this gateway (GET /v1/models lists them)"
            )),
        )),
    }
}
