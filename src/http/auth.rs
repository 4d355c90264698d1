//! Who is calling: the API key from `x-api-key` or `Authorization: Bearer`, looked up by its
//! SHA-256 (so a revoked key stops working at once, from the CLI too), as an extractor.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use diesel::prelude::*;
use subtle::ConstantTimeEq;

use super::{error_for, AppState};
use crate::db::api_keys::{self, HashedKey};
use crate::db::{self, schema};
use crate::error::ApiError;

/// How often a key's `last_used_at` is written at most.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// The caller's key (never the key itself).
#[derive(Debug, Clone)]
pub struct ClientKey {
    pub id: i32,
    pub name: String,
    pub is_admin: bool,
    pub rpm_limit: Option<i32>,
}

/// The key a request presents, if any.
fn presented(req: &HttpRequest) -> Option<String> {
    if let Some(v) = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_owned());
    }
    let auth = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

impl FromRequest for ClientKey {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<ClientKey, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .expect("AppState is registered")
                .clone();
            authenticate(&state, presented(&req)).await.map_err(|e| {
                log::info!("{} {}: rejected: {e}", req.method(), req.path());
                error_for(&req, e)
            })
        })
    }
}

async fn authenticate(
    state: &web::Data<AppState>,
    key: Option<String>,
) -> Result<ClientKey, ApiError> {
    let pool = state.pool.clone();
    let presented_hash = key.as_deref().filter(|k| !k.is_empty()).map(HashedKey::of);
    let lookup = presented_hash.clone();
    let found = web::block(
        move || -> Result<(Option<api_keys::ApiKey>, bool), ApiError> {
            let mut conn = pool.get().map_err(db::DbError::from)?;
            let now = db::now();
            let found = match &lookup {
                Some(h) => api_keys::find_live(&mut conn, h, now)?,
                None => None,
            };
            let any_live = found.is_some()
                || schema::api_keys::table
                    .filter(schema::api_keys::revoked_at.is_null())
                    .count()
                    .get_result::<i64>(&mut conn)?
                    > 0;
            Ok((found, any_live))
        },
    )
    .await
    .map_err(|_| ApiError::Internal("authentication failed".into()))??;
    let key = match found {
        (Some(key), _) => key,
        (None, false) => {
            return Err(ApiError::Authentication(
                "no API key exists yet: create one on the server with `amq2api keys create --name NAME`".into(),
            ))
        }
        (None, true) if key.is_none() => {
            return Err(ApiError::Authentication(
                "missing API key: send it as x-api-key or Authorization: Bearer".into(),
            ))
        }
        (None, true) => return Err(ApiError::Authentication("invalid, revoked or expired API key".into())),
    };
    // Only hashes are compared: the index lookup leaks at most how much of a SHA-256 matched,
    // which says nothing about the key. The final check is constant-time as well.
    match &presented_hash {
        Some(h) if same_hash(h.as_str(), &key.key_hash) => {}
        _ => {
            return Err(ApiError::Authentication(
                "invalid, revoked or expired API key".into(),
            ))
        }
    }
    touch(state, key.id);
    Ok(ClientKey {
        id: key.id,
        name: key.name,
        is_admin: key.is_admin,
        rpm_limit: key.rpm_limit,
    })
}

/// Writes `last_used_at` at most once a minute per key, off the request path.
fn touch(state: &web::Data<AppState>, key_id: i32) {
    let now = Instant::now();
    {
        let mut touched = state.key_touches.lock().unwrap_or_else(|p| p.into_inner());
        if touched
            .get(&key_id)
            .is_some_and(|t| now.duration_since(*t) < TOUCH_EVERY)
        {
            return;
        }
        touched.insert(key_id, now);
    }
    super::write_later(&state.pool, "the key's last use", move |conn| {
        api_keys::touch_last_used(conn, key_id, db::now())
    });
}

/// Constant-time equality of two stored hashes.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}
