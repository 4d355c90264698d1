//! Choosing the account for a request, trying the next one when an account fails before
//! anything reached the client, and what an upstream error does to the account that produced it.

use actix_web::web;
use diesel::prelude::*;

use crate::db;
use crate::error::ApiError;
use crate::http::{write_later, AppState};
use crate::q::client::{send_chat, ChatStream};
use crate::q::token::TokenError;
use crate::q::types::GenerateAssistantResponseRequest;

use crate::db::accounts::{self, Account, Health};
use crate::db::schema::accounts as a;
use crate::q::error::{AccountAction, ErrorClass, UpstreamError};
use crate::q::token::permanent_reason;

/// Most accounts tried for one request.
const MAX_ACCOUNTS_TRIED: usize = 3;

/// How long a throttled account rests.
pub const THROTTLE_COOLDOWN_SECS: i64 = 60;
/// How long an account rests after a refusal we do not understand.
pub const DENIED_COOLDOWN_SECS: i64 = 300;

/// Accounts that may serve a request now, least recently used first (a round robin that
/// survives restarts): enabled, and active or past the end of their cooldown or quota pause.
pub fn candidates(conn: &mut SqliteConnection, now: i64) -> QueryResult<Vec<Account>> {
    a::table
        .filter(a::enabled.eq(true))
        .filter(
            a::health.eq(Health::Active.as_str()).or(a::health
                .eq_any([Health::Cooling.as_str(), Health::Quota.as_str()])
                .and(a::health_until.le(now))),
        )
        .order((
            a::last_used_at.is_not_null(),
            a::last_used_at.asc(),
            a::id.asc(),
        ))
        .select(Account::as_select())
        .load(conn)
}

/// Records what `err` means for the account (protocol doc §6.2 reactions). Returns whether
/// the account changed.
pub fn apply_failure(
    conn: &mut SqliteConnection,
    account_id: i32,
    err: &UpstreamError,
    now: i64,
) -> QueryResult<bool> {
    let (health, until, reason): (Health, Option<i64>, Option<String>) = match err.account_action()
    {
        AccountAction::None | AccountAction::RefreshAndRetry => return Ok(false),
        AccountAction::Cooldown => {
            let secs = if err.class == ErrorClass::Throttled {
                THROTTLE_COOLDOWN_SECS
            } else {
                DENIED_COOLDOWN_SECS
            };
            (
                Health::Cooling,
                Some(now + secs),
                Some(err.class.as_str().replace('_', " ")),
            )
        }
        AccountAction::DisableUntil => (
            Health::Quota,
            Some(err.until.map_or(now + 86_400, |t| t.timestamp())),
            Some(err.class.as_str().replace('_', " ")),
        ),
        AccountAction::Disable => match err.class {
            ErrorClass::Suspended => (
                Health::Suspended,
                None,
                Some("suspended by Amazon Q".into()),
            ),
            ErrorClass::ProfileRequired => {
                (Health::Disabled, None, Some("profileArn required".into()))
            }
            // The same reasons a failed refresh records.
            class => (
                Health::Disabled,
                None,
                Some(
                    permanent_reason(class)
                        .unwrap_or("refresh token invalid")
                        .into(),
                ),
            ),
        },
    };
    accounts::set_health(conn, account_id, health, until, reason.as_deref(), now)?;
    Ok(true)
}

/// Sends the request on the first account that takes it: a refused access token is refreshed
/// once; an error that is the account's fault moves on to the next account; an error that is
/// the request's fault (or a capacity problem) is returned at once.
pub async fn open(
    state: &AppState,
    client: &awc::Client,
    body: &GenerateAssistantResponseRequest,
) -> Result<(Account, ChatStream), ApiError> {
    let pool = state.pool.clone();
    let candidates = web::block(move || {
        let mut conn = pool.get().map_err(db::DbError::from)?;
        candidates(&mut conn, db::now()).map_err(db::DbError::from)
    })
    .await
    .map_err(|_| ApiError::Internal("cannot read the account pool".into()))??;
    if candidates.is_empty() {
        return Err(ApiError::NoAccount(
            "No available accounts in pool: every account is disabled, cooling down or out of quota (see `amq2api accounts list`)".into(),
        ));
    }
    let mut last_error: Option<ApiError> = None;
    for account in candidates.into_iter().take(MAX_ACCOUNTS_TRIED) {
        match try_account(state, client, &account, body).await {
            Ok(stream) => {
                let id = account.id;
                write_later(&state.pool, "the account's last use", move |conn| {
                    db::accounts::touch_last_used(conn, id, db::now())
                });
                return Ok((account, stream));
            }
            Err(e) => {
                let retry = match &e {
                    ApiError::Upstream(u) => u.is_retryable_on_other_account(),
                    _ => false,
                };
                log::warn!(
                    "account {} ({}) failed: {e}{}",
                    account.id,
                    account.name,
                    if retry {
                        "; trying another account"
                    } else {
                        ""
                    }
                );
                if !retry {
                    return Err(e);
                }
                last_error = Some(e);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| ApiError::NoAccount("No available accounts in pool".into())))
}

async fn try_account(
    state: &AppState,
    client: &awc::Client,
    account: &Account,
    body: &GenerateAssistantResponseRequest,
) -> Result<ChatStream, ApiError> {
    let token = state
        .refresher
        .access_token(client, account.id)
        .await
        .map_err(token_error)?;
    let first = send_chat(client, &state.upstream, account, &token.token, body.clone()).await;
    let result = match first {
        Err(e) if e.class == ErrorClass::AccessTokenInvalid => {
            let fresh = state
                .refresher
                .replace_refused(client, account.id, &token.token)
                .await
                .map_err(token_error)?;
            send_chat(client, &state.upstream, account, &fresh.token, body.clone()).await
        }
        other => other,
    };
    result.map_err(|e| {
        note_failure(state, account.id, &e);
        ApiError::Upstream(e)
    })
}

fn token_error(e: TokenError) -> ApiError {
    match e {
        TokenError::Upstream(u) => ApiError::Upstream(u),
        TokenError::Database(d) => ApiError::from(d),
        TokenError::NoSuchAccount(_) => ApiError::NoAccount("the account was removed".into()),
    }
}

/// Records what an upstream error means for the account, off the request path.
fn note_failure(state: &AppState, account_id: i32, err: &UpstreamError) {
    let err = err.clone();
    write_later(&state.pool, "the account's health", move |conn| {
        apply_failure(conn, account_id, &err, db::now())
    });
}
