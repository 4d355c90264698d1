//! The HTTP server's shape: shared state, every route in one place, and the handlers that turn
//! actix's own rejections (bad JSON, unknown route, wrong method, body too large) into each
//! protocol's error JSON.

pub mod admin;
pub mod auth;
pub mod chat;
pub mod conn;
pub mod health;
pub mod messages;
pub mod metrics;
pub mod models;

use std::sync::Arc;
use std::time::Instant;

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use crate::claude::error::ClaudeError;
use crate::db;
use crate::error::ApiError;
use crate::models::ModelMap;
use crate::openai::error::OpenAiError;
use crate::q::config::UpstreamConfig;
use crate::q::token::Refresher;
use crate::usage::UsageLog;

/// Default largest request body (`serve --max-body-bytes`): ten 10 MiB images in base64 plus
/// the conversation.
pub const MAX_BODY: usize = 160 * 1024 * 1024;

/// What every worker shares.
pub struct AppState {
    pub pool: db::Pool,
    pub upstream: Arc<UpstreamConfig>,
    pub refresher: Arc<Refresher>,
    pub models: Arc<ModelMap>,
    pub started: Instant,
    /// A `ping` event after this much upstream silence in a stream.
    pub ping_every: std::time::Duration,
    /// Keys whose `last_used_at` was written recently (written at most once a minute).
    pub key_touches: std::sync::Mutex<std::collections::HashMap<i32, Instant>>,
    /// The usage rows' write queue.
    pub usage: Arc<UsageLog>,
    /// `/metrics` without an admin key.
    pub metrics_public: bool,
    /// Largest request body on the API routes; a larger one is a 413 (`serve --max-body-bytes`).
    pub max_body: usize,
    /// Becomes `true` when the shutdown grace period is over: open streams end with an error.
    pub shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    /// The account pool in memory (`crate::watch` keeps it in step with the database).
    pub accounts: Arc<crate::pick::Roster>,
    /// The API keys in memory (likewise).
    pub keys: Arc<auth::KeyTable>,
    /// The monitoring page's sign-in sessions.
    pub admin_sessions: admin::session::Sessions,
}

impl AppState {
    pub fn new(pool: db::Pool, upstream: UpstreamConfig, models: ModelMap) -> AppState {
        let upstream = Arc::new(upstream);
        AppState {
            refresher: Arc::new(Refresher::new(pool.clone(), upstream.clone())),
            usage: Arc::new(UsageLog::start(pool.clone(), crate::usage::QUEUE_CAPACITY)),
            pool,
            upstream,
            models: Arc::new(models),
            started: Instant::now(),
            ping_every: std::time::Duration::from_secs(15),
            key_touches: Default::default(),
            metrics_public: false,
            max_body: MAX_BODY,
            shutdown: Arc::new(tokio::sync::watch::Sender::new(false)),
            accounts: Arc::new(crate::pick::Roster::new(Default::default())),
            keys: Arc::new(auth::KeyTable::new(Default::default())),
            admin_sessions: Default::default(),
        }
    }
}

/// Every route. Used by `serve` and by the tests. The caller adds `web::Data<AppState>` and a
/// per-worker `web::Data<awc::Client>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::health))
        .route("/health", web::head().to(health::health))
        .route("/metrics", web::get().to(metrics::metrics))
        .configure(admin::configure)
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
        .service(
            web::resource(["/v1/chat/completions", "/v1/v1/chat/completions"])
                .route(web::post().to(chat::create_chat_completion))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource(["/v1/models", "/v1/v1/models"])
                .route(web::get().to(models::list))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource(["/v1/models/{id}", "/v1/v1/models/{id}"])
                .route(web::get().to(models::get))
                .default_service(web::to(method_not_allowed)),
        )
        .default_service(web::to(not_found));
}

/// Path prefixes of OpenAI's API: errors there are in OpenAI's shape (unless the caller sends
/// `anthropic-version`, as Anthropic's SDKs do on `/v1/models`).
const OPENAI_PREFIXES: &[&str] = &[
    "/v1/chat/",
    "/v1/v1/chat/",
    "/v1/models",
    "/v1/v1/models",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/responses",
];

/// Whether `req` gets OpenAI-shaped errors.
pub fn speaks_openai(req: &HttpRequest) -> bool {
    !models::is_anthropic(req) && OPENAI_PREFIXES.iter().any(|p| req.path().starts_with(p))
}

/// The error shape for `req`'s protocol.
pub fn error_for(req: &HttpRequest, e: ApiError) -> actix_web::Error {
    if speaks_openai(req) {
        OpenAiError(e).into()
    } else {
        ClaudeError(e).into()
    }
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
    let mut response = error_for(&req, e).error_response();
    *response.status_mut() = actix_web::http::StatusCode::METHOD_NOT_ALLOWED;
    response
}

/// Runs a database write off the request path (usage rows, last-used times, health changes):
/// the request does not wait for it, and a failure is logged, never returned.
pub fn write_later<T: Send + 'static>(
    pool: &db::Pool,
    what: &'static str,
    f: impl FnOnce(&mut diesel::SqliteConnection) -> diesel::QueryResult<T> + Send + 'static,
) {
    let pool = pool.clone();
    actix_web::rt::spawn(async move {
        let result = web::block(move || -> Result<T, db::DbError> {
            let mut conn = pool.get()?;
            Ok(f(&mut conn)?)
        })
        .await;
        if let Ok(Err(e)) = result {
            log::error!("cannot write {what}: {e}");
        }
    });
}

/// Reads a request body of at most `limit` bytes; a larger one is a 413 in the client's shape
/// (actix's own payload errors would be plain text), and one that does not arrive within the
/// request timeout ([`conn::body_deadline`]) a 408.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match conn::timed_out(&e) {
            Some(within) => ApiError::RequestTimeout(format!(
                "the request body did not arrive within {} s",
                within.as_secs()
            )),
            None => ApiError::InvalidRequest(format!("cannot read the request body: {e}")),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(format!(
                "the request body is over the {limit}-byte limit"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use actix_web::{test, web, App, HttpResponse};

    use super::read_body;
    use crate::claude::error::ClaudeError;

    #[actix_web::test]
    async fn an_oversized_body_is_a_413_in_anthropic_shape() {
        let app = test::init_service(App::new().route(
            "/",
            web::post().to(|p: web::Payload| async move {
                read_body(p, 10).await.map_err(ClaudeError)?;
                Ok::<_, ClaudeError>(HttpResponse::Ok().finish())
            }),
        ))
        .await;
        let req = test::TestRequest::post()
            .uri("/")
            .set_payload("x".repeat(11))
            .to_request();
        let resp = test::call_service(&app, req).await;
        assert_eq!(resp.status(), 413);
        let body: serde_json::Value = test::read_body_json(resp).await;
        assert_eq!(
            body,
            serde_json::json!({"type":"error","error":{"type":"request_too_large","message":"the request body is over the 10-byte limit"}})
        );
        let req = test::TestRequest::post()
            .uri("/")
            .set_payload("x".repeat(10))
            .to_request();
        assert_eq!(test::call_service(&app, req).await.status(), 200);
    }
}
