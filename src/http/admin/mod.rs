//! The read-only monitoring page under `/admin`: sign in with an admin key (`GET`/`POST
//! /admin/login`), a session cookie, `POST /admin/logout`, and `GET /admin/dashboard` with the
//! accounts' health, the keys' usage, token charts, errors by class and the latest failures.
//! Managing stays with the CLI. Every response carries strict security headers; the pages load
//! nothing from anywhere (CSS inline, charts as inline SVG, no script).
//!
//! CSRF: the session cookie is `SameSite=Strict`, so no other site can make a browser send it,
//! and nothing here changes state except the session itself (signing in needs the key; signing
//! out from elsewhere cannot carry the cookie).

pub mod page;
pub mod session;
pub mod svg;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse};
use diesel::prelude::*;
use serde::Deserialize;

use super::auth::same_hash;
use super::AppState;
use crate::db::api_keys::{self, ApiKey, HashedKey};
use crate::db::stats::{self, Aggregate, Bucket, Filter, GroupBy, DELETED_KEY};
use crate::db::{self, accounts, schema};
use page::{AccountView, Dashboard, KeyView};

/// How many failed requests the dashboard lists.
const FAILURES_SHOWN: u32 = 20;

/// The `/admin` routes, with the security headers on every response (errors included).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .wrap(security_headers())
            .service(
                web::resource("/login")
                    .route(web::get().to(login_form))
                    .route(web::post().to(login))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/logout")
                    .route(web::post().to(logout))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/dashboard")
                    .route(web::get().to(dashboard))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource(["", "/"])
                    .route(web::get().to(|| async { see_other("/admin/dashboard") }))
                    .default_service(web::to(method_not_allowed)),
            )
            .default_service(web::to(not_found)),
    );
}

/// The Content-Security-Policy: nothing may load, the one inline stylesheet is allowed by its
/// hash, forms post only here, and no one may frame the page.
fn csp() -> String {
    format!(
        "default-src 'none'; style-src {}; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        *page::STYLE_HASH
    )
}

fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, csp()))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::CACHE_CONTROL, "no-store"))
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Back to the sign-in form, dropping the cookie the browser sent, if any.
fn to_login(req: &HttpRequest) -> HttpResponse {
    let mut resp = see_other("/admin/login");
    if session::from_request(req).is_some() {
        if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(req)) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    html(
        StatusCode::NOT_FOUND,
        page::message("Not found", &format!("There is no page at {}.", req.path())),
    )
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    html(
        StatusCode::METHOD_NOT_ALLOWED,
        page::message(
            "Method not allowed",
            &format!("{} is not allowed on {}.", req.method(), req.path()),
        ),
    )
}

fn server_error(what: &str) -> HttpResponse {
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        page::message(
            "Something went wrong",
            &format!("{what}; the server log has the details."),
        ),
    )
}

/// `GET /admin/login`: the form, or the dashboard for a browser that has a session.
async fn login_form(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if session::from_request(&req).is_some_and(|id| state.admin_sessions.key_of(&id).is_some()) {
        return see_other("/admin/dashboard");
    }
    html(StatusCode::OK, page::login(None))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    key: String,
}

/// `POST /admin/login`: an admin key that is live starts a session; anything else gets the form
/// again with a reason (never the key).
async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Result<web::Form<LoginForm>, actix_web::Error>,
) -> HttpResponse {
    let Ok(form) = form else {
        return html(
            StatusCode::BAD_REQUEST,
            page::login(Some(
                "Send the form: the request was not a form submission.",
            )),
        );
    };
    let presented = form.into_inner().key.trim().to_owned();
    if presented.is_empty() {
        return html(
            StatusCode::UNAUTHORIZED,
            page::login(Some("Enter an admin key.")),
        );
    }
    let hash = HashedKey::of(&presented);
    drop(presented);
    let pool = state.pool.clone();
    let found = web::block(move || -> Result<Option<ApiKey>, db::DbError> {
        let mut conn = pool.get()?;
        let key = api_keys::find_live(&mut conn, &hash, db::now())?;
        // The index lookup compares hashes; the final comparison is constant-time as well.
        Ok(key.filter(|k| same_hash(hash.as_str(), &k.key_hash)))
    })
    .await;
    let key = match found {
        Ok(Ok(key)) => key,
        Ok(Err(e)) => {
            log::error!("admin login: cannot read the keys: {e}");
            return server_error("The keys could not be read");
        }
        Err(_) => return server_error("The keys could not be read"),
    };
    match key {
        None => {
            log::info!("admin login refused: unknown, revoked or expired key");
            html(
                StatusCode::UNAUTHORIZED,
                page::login(Some(
                    "That key is not valid: it is wrong, revoked or expired.",
                )),
            )
        }
        Some(k) if !k.is_admin => {
            log::info!("admin login refused: key {:?} is not an admin key", k.name);
            html(
                StatusCode::FORBIDDEN,
                page::login(Some(
                    "That key works for the API but is not an admin key. The monitoring page needs one made with: amq2api keys create --admin",
                )),
            )
        }
        Some(k) => {
            log::info!("admin login: key {:?}", k.name);
            let id = state.admin_sessions.create(k.id);
            super::write_later(&state.pool, "the key's last use", move |conn| {
                api_keys::touch_last_used(conn, k.id, db::now())
            });
            let mut resp = see_other("/admin/dashboard");
            if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&req, &id)) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
    }
}

/// `POST /admin/logout`: ends the session and drops the cookie.
async fn logout(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(id) = session::from_request(&req) {
        state.admin_sessions.remove(&id);
    }
    let mut resp = see_other("/admin/login");
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(&req)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /admin/dashboard`: for a live session whose key is still a live admin key.
async fn dashboard(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(id) = session::from_request(&req) else {
        return to_login(&req);
    };
    let Some(key_id) = state.admin_sessions.key_of(&id) else {
        return to_login(&req);
    };
    let pool = state.pool.clone();
    let loaded = web::block(move || -> Result<Option<Dashboard>, db::DbError> {
        let mut conn = pool.get()?;
        let now = db::now();
        let key: Option<ApiKey> = schema::api_keys::table
            .find(key_id)
            .select(ApiKey::as_select())
            .first(&mut conn)
            .optional()?;
        match key {
            Some(k) if k.is_admin && k.is_live(now) => Ok(Some(load(&mut conn, now, k.name)?)),
            _ => Ok(None),
        }
    })
    .await;
    match loaded {
        Ok(Ok(Some(d))) => html(StatusCode::OK, page::dashboard(&d)),
        Ok(Ok(None)) => {
            log::info!("admin session ended: its key is no longer a live admin key");
            state.admin_sessions.remove_key(key_id);
            to_login(&req)
        }
        Ok(Err(e)) => {
            log::error!("dashboard: cannot read the database: {e}");
            server_error("The database could not be read")
        }
        Err(_) => server_error("The database could not be read"),
    }
}

/// Reads everything the dashboard shows, in one read transaction.
pub fn load(conn: &mut SqliteConnection, now: i64, viewer: String) -> QueryResult<Dashboard> {
    const DAY: i64 = 86_400;
    conn.transaction(|conn| {
        let accounts = accounts::list(conn)?
            .iter()
            .map(|a| {
                let state = super::metrics::account_state(a, now);
                let stored = a.health_state();
                AccountView {
                    name: a.name.clone(),
                    enabled: a.enabled,
                    state,
                    reason: a
                        .health_reason
                        .clone()
                        .filter(|_| stored != accounts::Health::Active && state != "active"),
                    until: a.health_until.filter(|_| state != "active"),
                    last_used: a.last_used_at,
                    token_expires: a.access_token.as_ref().and(a.access_token_expires_at),
                }
            })
            .collect();
        let day = stats::summarize(
            conn,
            &Filter {
                since: now - DAY,
                ..Filter::default()
            },
            Some(GroupBy::Key),
        )?;
        let month = stats::summarize(
            conn,
            &Filter {
                since: now - 30 * DAY,
                ..Filter::default()
            },
            Some(GroupBy::Key),
        )?;
        let keys = key_views(&api_keys::list(conn)?, &day.rows, &month.rows, now);
        Ok(Dashboard {
            now,
            viewer,
            accounts,
            keys,
            day: day.totals,
            hours: stats::token_series(conn, now, Bucket::Hour, 24)?,
            days: stats::token_series(conn, now, Bucket::Day, 30)?,
            errors: stats::errors_by_class(conn, now - DAY)?,
            failures: stats::recent_failures(conn, FAILURES_SHOWN)?,
        })
    })
}

/// One row per key name: the live key of that name (else its latest revoked one), with the
/// name's usage; revoked names only while they have requests in the last 30 days, and a
/// `(deleted)` row for requests whose key row is gone.
fn key_views(
    keys: &[ApiKey],
    day: &[stats::Group],
    month: &[stats::Group],
    now: i64,
) -> Vec<KeyView> {
    let usage = |rows: &[stats::Group], name: &str| -> Aggregate {
        rows.iter()
            .find(|g| g.label == name)
            .map(|g| g.stats.clone())
            .unwrap_or_default()
    };
    let mut names: Vec<&str> = Vec::new();
    for k in keys {
        if !names.contains(&k.name.as_str()) {
            names.push(&k.name);
        }
    }
    let mut views: Vec<KeyView> = Vec::new();
    for name in names {
        let same: Vec<&ApiKey> = keys.iter().filter(|k| k.name == name).collect();
        let Some(k) = same
            .iter()
            .find(|k| k.revoked_at.is_none())
            .or_else(|| same.iter().max_by_key(|k| k.id))
        else {
            continue;
        };
        let state = if k.revoked_at.is_some() {
            "revoked"
        } else if k.is_live(now) {
            "active"
        } else {
            "expired"
        };
        let month = usage(month, name);
        if state == "revoked" && month.requests == 0 {
            continue;
        }
        views.push(KeyView {
            name: name.to_owned(),
            prefix: Some(k.prefix.clone()),
            admin: k.is_admin,
            state,
            created: Some(k.created_at),
            last_used: k.last_used_at,
            day: usage(day, name),
            month,
        });
    }
    // Live keys first, in creation order; then the revoked ones.
    views.sort_by_key(|v| v.state == "revoked");
    let deleted = usage(month, DELETED_KEY);
    if deleted.requests > 0 && !keys.iter().any(|k| k.name == DELETED_KEY) {
        views.push(KeyView {
            name: DELETED_KEY.into(),
            prefix: None,
            admin: false,
            state: "deleted",
            created: None,
            last_used: None,
            day: usage(day, DELETED_KEY),
            month: deleted,
        });
    }
    views
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: i32, name: &str, admin: bool, revoked: Option<i64>) -> ApiKey {
        ApiKey {
            id,
            name: name.into(),
            prefix: format!("sk-amq-{id:05}"),
            key_hash: format!("hash{id}"),
            is_admin: admin,
            rpm_limit: None,
            concurrency_limit: None,
            expires_at: None,
            revoked_at: revoked,
            created_at: 100 + i64::from(id),
            last_used_at: Some(200 + i64::from(id)),
        }
    }

    fn group(label: &str, requests: u64) -> stats::Group {
        stats::Group {
            label: label.into(),
            stats: Aggregate {
                requests,
                input_tokens: requests * 10,
                ..Aggregate::default()
            },
        }
    }

    #[test]
    fn one_row_per_key_name_with_revoked_and_deleted_keys() {
        let keys = [
            key(1, "ci", false, Some(150)),
            key(2, "old", false, Some(150)),
            key(3, "gone", false, Some(150)),
            key(4, "ci", false, None),
            key(5, "boss", true, None),
            ApiKey {
                expires_at: Some(999),
                ..key(6, "temp", false, None)
            },
        ];
        let day = [group("ci", 2), group(DELETED_KEY, 1)];
        let month = [
            group("ci", 5),
            group("old", 3),
            group(DELETED_KEY, 4),
            group("temp", 1),
        ];
        let views = key_views(&keys, &day, &month, 1000);
        let rows: Vec<(&str, &str, Option<&str>, u64, u64)> = views
            .iter()
            .map(|v| {
                (
                    v.name.as_str(),
                    v.state,
                    v.prefix.as_deref(),
                    v.day.requests,
                    v.month.requests,
                )
            })
            .collect();
        // `ci` is its live key (id 4) with the name's usage; `gone` has no recent requests.
        assert_eq!(
            rows,
            [
                ("ci", "active", Some("sk-amq-00004"), 2, 5),
                ("boss", "active", Some("sk-amq-00005"), 0, 0),
                ("temp", "expired", Some("sk-amq-00006"), 0, 1),
                ("old", "revoked", Some("sk-amq-00002"), 0, 3),
                (DELETED_KEY, "deleted", None, 1, 4),
            ]
        );
        assert_eq!(views[0].last_used, Some(204));
        assert!(views[1].admin);
    }
}
