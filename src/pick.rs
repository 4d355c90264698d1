//! Choosing the account for a request, and what an upstream error does to the account that
//! produced it. (The pool issue adds per-account rate limits and smarter balancing.)

use diesel::prelude::*;

use crate::db::accounts::{self, Account, Health};
use crate::db::schema::accounts as a;
use crate::q::error::{AccountAction, ErrorClass, UpstreamError};
use crate::q::token::permanent_reason;

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
