//! The HTTP server's shape: shared state, every route in one place, and the handlers that turn
//! actix's own rejections (bad JSON, unknown route, wrong method, body too large) into each
//! protocol's error JSON.

pub mod auth;
pub mod health;
pub mod messages;

use std::sync::Arc;
use std::time::Instant;

use actix_web::{error::JsonPayloadError, web, HttpRequest, HttpResponse};

use crate::claude::error::ClaudeError;
use crate::db;
use crate::error::ApiError;
use crate::models::ModelMap;
use crate::q::config::UpstreamConfig;
use crate::q::token::Refresher;

/// Largest request body: ten 10 MiB images in base64 plus the conversation.
pub const MAX_BODY: usize = 160 * 1024 * 1024;

/// What every worker shares.
pub struct AppState {
    pub pool: db::Pool,
    pub upstream: Arc<UpstreamConfig>,
    pub refresher: Arc<Refresher>,
    pub models: Arc<ModelMap>,
    pub started: Instant,
    /// Keys whose `last_used_at` was written recently (written at most once a minute).
    pub key_touches: std::sync::Mutex<std::collections::HashMap<i32, Instant>>,
}

impl AppState {
    pub fn new(pool: db::Pool, upstream: UpstreamConfig, models: ModelMap) -> AppState {
        let upstream = Arc::new(upstream);
        AppState {
            refresher: Arc::new(Refresher::new(pool.clone(), upstream.clone())),
            pool,
            upstream,
            models: Arc::new(models),
            started: Instant::now(),
            key_touches: Default::default(),
        }
    }
}

/// Every route. Used by `serve` and by the tests. The caller adds `web::Data<AppState>` and a
/// per-worker `web::Data<awc::Client>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(MAX_BODY)
            .content_type_required(false)
            .error_handler(json_error),
    )
    .app_data(web::PayloadConfig::default().limit(MAX_BODY))
    .route("/health", web::get().to(health::health))
    .route("/health", web::head().to(health::health))
    .service(
        web::resource(["/v1/messages", "/v1/v1/messages"])
            .route(web::post().to(messages::create_message))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource(["/v1/messages/count_tokens", "/v1/v1/messages/count_tokens"])
            .route(web::post().to(messages::count_tokens))
            .default_service(web::to(method_not_allowed)),
    )
    .default_service(web::to(not_found));
}

/// The error shape for `req`'s protocol.
pub fn error_for(_req: &HttpRequest, e: ApiError) -> actix_web::Error {
    ClaudeError(e).into()
}

fn json_error(err: JsonPayloadError, req: &HttpRequest) -> actix_web::Error {
    let e = match &err {
        JsonPayloadError::OverflowKnownLength { length, limit } => ApiError::TooLarge(format!(
            "request body of {length} bytes is over the {limit}-byte limit"
        )),
        JsonPayloadError::Overflow { limit } => {
            ApiError::TooLarge(format!("request body is over the {limit}-byte limit"))
        }
        JsonPayloadError::Deserialize(e) => {
            ApiError::InvalidRequest(format!("invalid request body: {e}"))
        }
        JsonPayloadError::ContentType => ApiError::InvalidRequest(
            "the body must be JSON (Content-Type: application/json)".into(),
        ),
        other => ApiError::InvalidRequest(format!("invalid request body: {other}")),
    };
    error_for(req, e)
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    error_for(
        &req,
        ApiError::NotFound(format!("no route for {} {}", req.method(), req.path())),
    )
    .error_response()
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let e = ApiError::InvalidRequest(format!(
        "method {} is not allowed on {}",
        req.method(),
        req.path()
    ));
    let mut response = actix_web::ResponseError::error_response(&ClaudeError(e));
    *response.status_mut() = actix_web::http::StatusCode::METHOD_NOT_ALLOWED;
    response
}
