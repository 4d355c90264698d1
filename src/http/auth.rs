//! Who is calling, and whether they may call now: the API key from `x-api-key` or
//! `Authorization: Bearer`, looked up by its SHA-256 in the server's in-memory key table (kept
//! in step with the database by `crate::watch`, so a key revoked or created with the CLI counts
//! within a second), then the key's limits: requests per minute and requests in flight.
//!
//! [`ClientKey`] is the extractor for calls that reach Amazon Q: it holds the key's concurrency
//! slot until the last clone of it is dropped, so keep it (the proxy keeps it in its usage
//! record) until the response, stream included, has ended. [`Unmetered`] authenticates without
//! the limits, for calls answered locally (`count_tokens`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use subtle::ConstantTimeEq;

use super::{error_for, AppState};
use crate::db;
use crate::db::api_keys::{self, ApiKey, HashedKey};
use crate::error::ApiError;
use crate::limits::{retry_after_secs, Rpm, SlotGuard, Slots};

/// How often a key's `last_used_at` is written at most.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// The caller's key (never the key itself), admitted under its limits.
#[derive(Debug, Clone)]
pub struct ClientKey {
    pub id: i32,
    pub name: String,
    pub is_admin: bool,
    pub rpm_limit: Option<i32>,
    /// The key's concurrency slot, released when the last clone is dropped (`None` for
    /// [`Unmetered`] calls).
    pub slot: Option<Arc<SlotGuard>>,
}

/// A key that authenticated but is not counted against its limits (local answers).
#[derive(Debug, Clone)]
pub struct Unmetered(pub ClientKey);

/// Limits for keys created without their own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyDefaults {
    pub rpm: Option<u32>,
    pub concurrency: Option<u32>,
}

/// One key in memory, with its limiters.
pub struct KeyEntry {
    pub key: ApiKey,
    limits: Arc<KeyLimits>,
}

/// A key's limiters; shared by the entries of one key across reloads while its limits stay.
struct KeyLimits {
    rpm: Option<Rpm>,
    concurrency: Option<u32>,
    slots: Slots,
}

/// Every key that is not revoked, by hash; replaced as a whole when the database changes.
/// Limiters of keys whose limits did not change carry over.
pub struct KeyTable {
    defaults: KeyDefaults,
    keys: RwLock<Arc<HashMap<String, Arc<KeyEntry>>>>,
}

fn limit(own: Option<i32>, default: Option<u32>) -> Option<u32> {
    match own {
        Some(n) => u32::try_from(n).ok(),
        None => default,
    }
    .filter(|n| *n > 0)
}

impl KeyTable {
    pub fn new(defaults: KeyDefaults) -> KeyTable {
        KeyTable {
            defaults,
            keys: RwLock::new(Arc::new(HashMap::new())),
        }
    }

    fn current(&self) -> Arc<HashMap<String, Arc<KeyEntry>>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes in the keys as the database has them now (revoked ones left out).
    pub fn load(&self, keys: Vec<ApiKey>) {
        let old = self.current();
        let next: HashMap<String, Arc<KeyEntry>> = keys
            .into_iter()
            .map(|key| {
                let kept = old.get(&key.key_hash).filter(|e| {
                    e.key.id == key.id
                        && e.key.rpm_limit == key.rpm_limit
                        && e.key.concurrency_limit == key.concurrency_limit
                });
                let limits = match kept {
                    Some(e) => e.limits.clone(),
                    None => Arc::new(KeyLimits {
                        rpm: limit(key.rpm_limit, self.defaults.rpm).and_then(Rpm::new),
                        concurrency: limit(key.concurrency_limit, self.defaults.concurrency),
                        slots: Slots::default(),
                    }),
                };
                (key.key_hash.clone(), Arc::new(KeyEntry { key, limits }))
            })
            .collect();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
    }

    /// Keys usable now, for `/health`.
    pub fn live_count(&self, now: i64) -> usize {
        self.current()
            .values()
            .filter(|e| e.key.is_live(now))
            .count()
    }
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

fn extract(
    req: &HttpRequest,
    metered: bool,
) -> Pin<Box<dyn Future<Output = Result<ClientKey, actix_web::Error>>>> {
    let req = req.clone();
    Box::pin(async move {
        let state = req
            .app_data::<web::Data<AppState>>()
            .expect("AppState is registered")
            .clone();
        authenticate(&state, presented(&req), metered).map_err(|e| {
            log::info!("{} {}: rejected: {e}", req.method(), req.path());
            error_for(&req, e)
        })
    })
}

impl FromRequest for ClientKey {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<ClientKey, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        extract(req, true)
    }
}

impl FromRequest for Unmetered {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Unmetered, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let key = extract(req, false);
        Box::pin(async move { key.await.map(Unmetered) })
    }
}

fn authenticate(
    state: &web::Data<AppState>,
    key: Option<String>,
    metered: bool,
) -> Result<ClientKey, ApiError> {
    let now = db::now();
    let table = state.keys.current();
    let presented_hash = key.as_deref().filter(|k| !k.is_empty()).map(HashedKey::of);
    let found = presented_hash
        .as_ref()
        .and_then(|h| table.get(h.as_str()))
        .filter(|e| e.key.is_live(now));
    let entry = match found {
        Some(entry) => entry,
        None if !table.values().any(|e| e.key.is_live(now)) => {
            return Err(ApiError::Authentication(
                "no API key exists yet: create one on the server with `amq2api keys create --name NAME`".into(),
            ))
        }
        None if key.is_none() => {
            return Err(ApiError::Authentication(
                "missing API key: send it as x-api-key or Authorization: Bearer".into(),
            ))
        }
        None => {
            return Err(ApiError::Authentication(
                "invalid, revoked or expired API key".into(),
            ))
        }
    };
    // Only hashes are compared: the map lookup leaks at most how much of a SHA-256 matched,
    // which says nothing about the key. The final check is constant-time as well.
    match &presented_hash {
        Some(h) if same_hash(h.as_str(), &entry.key.key_hash) => {}
        _ => {
            return Err(ApiError::Authentication(
                "invalid, revoked or expired API key".into(),
            ))
        }
    }
    let slot = if metered { Some(admit(entry)?) } else { None };
    touch(state, entry.key.id);
    Ok(ClientKey {
        id: entry.key.id,
        name: entry.key.name.clone(),
        is_admin: entry.key.is_admin,
        rpm_limit: entry.key.rpm_limit,
        slot: slot.map(Arc::new),
    })
}

/// The key's limits: a slot in flight first (so a refused request does not use up the
/// per-minute allowance), then the allowance.
fn admit(entry: &KeyEntry) -> Result<SlotGuard, ApiError> {
    let limits = &entry.limits;
    let slot = limits.slots.try_take(limits.concurrency).ok_or_else(|| {
        let n = limits.concurrency.unwrap_or_default();
        ApiError::RateLimited {
            message: format!(
                "concurrency limit of this API key reached: {n} request{} at a time",
                if n == 1 { "" } else { "s" }
            ),
            retry_after: Some(1),
        }
    })?;
    if let Some(rpm) = &limits.rpm {
        if let Err(wait) = rpm.check() {
            return Err(ApiError::RateLimited {
                message: format!(
                    "rate limit of this API key reached: {} request{} per minute",
                    rpm.per_minute(),
                    if rpm.per_minute() == 1 { "" } else { "s" }
                ),
                retry_after: Some(retry_after_secs(wait)),
            });
        }
    }
    Ok(slot)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: i32, hash: &str, rpm: Option<i32>, concurrency: Option<i32>) -> ApiKey {
        ApiKey {
            id,
            name: format!("k{id}"),
            prefix: "sk-amq-xxxxx".into(),
            key_hash: hash.into(),
            is_admin: false,
            rpm_limit: rpm,
            expires_at: None,
            revoked_at: None,
            created_at: 0,
            last_used_at: None,
            concurrency_limit: concurrency,
        }
    }

    #[test]
    fn limits_are_enforced_and_carry_over_a_reload() {
        let table = KeyTable::new(KeyDefaults {
            rpm: None,
            concurrency: Some(5),
        });
        table.load(vec![
            key(1, "h1", Some(2), Some(1)),
            key(2, "h2", None, None),
        ]);
        let one = table.current()["h1"].clone();
        let slot = admit(&one).unwrap();
        let busy = admit(&one).unwrap_err();
        assert_eq!(
            (busy.to_string(), busy.retry_after()),
            (
                "concurrency limit of this API key reached: 1 request at a time".into(),
                Some(1)
            )
        );
        drop(slot);
        admit(&one).unwrap();
        // A reload with the same limits keeps the limiter: the allowance is used up.
        table.load(vec![
            key(1, "h1", Some(2), Some(1)),
            key(2, "h2", None, None),
        ]);
        let one = table.current()["h1"].clone();
        let limited = admit(&one).unwrap_err();
        assert_eq!(
            limited.to_string(),
            "rate limit of this API key reached: 2 requests per minute"
        );
        assert_eq!(limited.retry_after(), Some(30));
        // Key 2 has the default concurrency.
        let two = table.current()["h2"].clone();
        let slots: Vec<_> = (0..5).map(|_| admit(&two).unwrap()).collect();
        assert!(admit(&two).is_err());
        drop(slots);
        assert_eq!(table.live_count(0), 2);
        table.load(vec![]);
        assert_eq!(table.live_count(0), 0);
    }
}
