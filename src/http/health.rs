//! `GET /health`: the seed's shape, without authentication and without secrets, from the
//! server's in-memory pool and key table.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;

pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let active_accounts = state.accounts.usable_count(crate::pick::now_ms());
    let active_keys = state.keys.live_count(crate::db::now());
    HttpResponse::Ok().json(json!({
        "status": if active_accounts > 0 { "healthy" } else { "degraded" },
        "active_accounts": active_accounts,
        "active_api_keys": active_keys,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
