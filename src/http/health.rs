//! `GET /health`: the seed's shape, without authentication and without secrets.

use actix_web::{web, HttpResponse};
use diesel::prelude::*;
use serde_json::json;

use super::AppState;
use crate::db::schema::api_keys;
use crate::error::ApiError;

pub async fn health(state: web::Data<AppState>) -> Result<HttpResponse, actix_web::Error> {
    let pool = state.pool.clone();
    let counts = web::block(move || -> Result<(i64, i64), ApiError> {
        let mut conn = pool.get().map_err(crate::db::DbError::from)?;
        let now = crate::db::now();
        let active_accounts = crate::pick::candidates(&mut conn, now)?.len() as i64;
        let active_keys = api_keys::table
            .filter(api_keys::revoked_at.is_null())
            .filter(
                api_keys::expires_at
                    .is_null()
                    .or(api_keys::expires_at.gt(now)),
            )
            .count()
            .get_result(&mut conn)?;
        Ok((active_accounts, active_keys))
    })
    .await
    .map_err(|_| {
        crate::claude::error::ClaudeError(ApiError::Internal("health check failed".into()))
    })?
    .map_err(crate::claude::error::ClaudeError)?;
    Ok(HttpResponse::Ok().json(json!({
        "status": if counts.0 > 0 { "healthy" } else { "degraded" },
        "active_accounts": counts.0,
        "active_api_keys": counts.1,
        "version": env!("CARGO_PKG_VERSION"),
    })))
}
