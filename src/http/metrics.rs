//! `GET /metrics`: the Prometheus text format, for an admin key (as `x-api-key` or
//! `Authorization: Bearer`, which Prometheus' `authorization` setting sends) or for anyone when
//! `serve --metrics-public` is given.

use actix_web::{web, FromRequest, HttpRequest, HttpResponse};

use super::auth::Unmetered;
use super::{error_for, AppState};
use crate::db::accounts::{self, Health};
use crate::error::ApiError;
use crate::metrics::StateLabels;

pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    if !state.metrics_public {
        let Unmetered(key) = Unmetered::extract(&req).await?;
        if !key.is_admin {
            return Err(error_for(
                &req,
                ApiError::Permission("/metrics needs an admin key (keys create --admin)".into()),
            ));
        }
    }
    let pool = state.pool.clone();
    let states = web::block(move || -> Result<Vec<&'static str>, ApiError> {
        let mut conn = pool.get().map_err(crate::db::DbError::from)?;
        let now = crate::db::now();
        Ok(accounts::list(&mut conn)?
            .iter()
            .map(|a| account_state(a, now))
            .collect())
    })
    .await
    .map_err(|_| error_for(&req, ApiError::Internal("cannot read the accounts".into())))?
    .map_err(|e| error_for(&req, e))?;
    let m = crate::metrics::get();
    for state in ["active", "cooling", "quota", "disabled", "suspended", "off"] {
        let n = states.iter().filter(|s| **s == state).count();
        m.account_health
            .get_or_create(&StateLabels { state })
            .set(n as i64);
    }
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(m.render()))
}

/// What an account is doing now: `off` when the operator disabled it; a cooldown or quota pause
/// that has ended is `active`.
pub(crate) fn account_state(a: &accounts::Account, now: i64) -> &'static str {
    if !a.enabled {
        return "off";
    }
    match a.health_state() {
        Health::Cooling | Health::Quota if a.health_until.is_none_or(|t| t <= now) => "active",
        h => h.as_str(),
    }
}
