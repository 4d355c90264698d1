//! Choosing the account for a request and trying the next one when an account fails before
//! anything reached the client. The pool itself (which accounts are usable, their health,
//! limits and leases) is [`roster`]; what an error does to an account is [`health`]; the order
//! accounts are tried in is [`strategy`]; the "why no account" answer is [`unavailable`]; the
//! background token refresh is [`refresh_ahead`].

pub mod health;
pub mod refresh_ahead;
pub mod roster;
pub mod strategy;
pub mod unavailable;

use crate::error::ApiError;
use crate::http::AppState;
use crate::q::client::{send_chat, ChatStream};
use crate::q::error::{AccountAction, ErrorClass};
use crate::q::token::TokenError;
use crate::q::types::GenerateAssistantResponseRequest;

pub use roster::{AccountLease, PoolConfig, Roster};
pub use strategy::Strategy;

/// Milliseconds since the epoch: the pool's clock.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Sends the request on the first account that takes it, trying at most
/// `max_accounts_per_request` accounts: a refused access token is refreshed once and the call
/// retried on the same account; an error that is the account's fault moves on to the next
/// account; an error that is the request's fault is returned at once.
///
/// Returns the lease of the account that answered (keep it until the response has ended: it
/// holds the account's concurrency slot) and the upstream event stream.
pub async fn open(
    state: &AppState,
    client: &awc::Client,
    body: &GenerateAssistantResponseRequest,
) -> Result<(AccountLease, ChatStream), ApiError> {
    let roster = &state.accounts;
    let mut tried: Vec<i32> = Vec::new();
    let mut last_error: Option<ApiError> = None;
    while tried.len() < roster.config().max_accounts_per_request.max(1) {
        let lease = match roster.acquire(&tried, now_ms()) {
            Ok(lease) => lease,
            Err(none_left) => return Err(last_error.unwrap_or(none_left)),
        };
        tried.push(lease.id());
        match try_account(state, client, &lease, body).await {
            Ok(stream) => {
                roster.on_success(lease.id());
                return Ok((lease, stream));
            }
            Err(e) => {
                let retry = match &e {
                    ApiError::Upstream(u) => u.is_retryable_on_other_account(),
                    _ => false,
                };
                log::warn!(
                    "account {} ({}) failed: {e}{}",
                    lease.name(),
                    lease.id(),
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
    Err(last_error.expect("at least one account was tried"))
}

async fn try_account(
    state: &AppState,
    client: &awc::Client,
    lease: &AccountLease,
    body: &GenerateAssistantResponseRequest,
) -> Result<ChatStream, ApiError> {
    let account = lease.account();
    let now = now_ms();
    let margin = i64::try_from(state.upstream.refresh_margin.as_millis()).unwrap_or(i64::MAX);
    let expires_ms = account
        .access_token_expires_at
        .map_or(i64::MIN, |t| t.saturating_mul(1000));
    let valid = account.access_token.clone().filter(|_| expires_ms > now);
    // The token the pool holds while it has more than the margin left (or while a failed
    // refresh waits for its retry); else the refresher (single-flight per account) reads the
    // database and refreshes if it must.
    let token = match valid {
        Some(token) if expires_ms > now.saturating_add(margin) || lease.refresh_waiting() => token,
        valid => match state.refresher.access_token(client, account.id).await {
            Ok(t) => {
                state
                    .accounts
                    .on_refreshed(account.id, &t.token, t.expires_at);
                t.token
            }
            // Refreshing ahead of expiry failed, but not for good: the old token still works.
            Err(TokenError::Upstream(u))
                if valid.is_some() && u.account_action() != AccountAction::Disable =>
            {
                log::warn!(
                    target: "amq2api::pick",
                    "account {} ({}): keeping its current token after a failed refresh: {u}",
                    account.name,
                    account.id
                );
                state.accounts.on_error(account.id, &u, now_ms());
                valid.expect("checked above")
            }
            Err(e) => return Err(token_error(state, account.id, e)),
        },
    };
    let first = send_chat(client, &state.upstream, account, &token, body.clone()).await;
    let result = match first {
        Err(e) if e.class == ErrorClass::AccessTokenInvalid => {
            log::info!(
                target: "amq2api::pick",
                "account {} ({}): the access token was refused; refreshing it",
                account.name,
                account.id
            );
            let fresh = state
                .refresher
                .replace_refused(client, account.id, &token)
                .await
                .map_err(|e| token_error(state, account.id, e))?;
            state
                .accounts
                .on_refreshed(account.id, &fresh.token, fresh.expires_at);
            send_chat(client, &state.upstream, account, &fresh.token, body.clone()).await
        }
        other => other,
    };
    result.map_err(|e| {
        state.accounts.on_error(account.id, &e, now_ms());
        ApiError::Upstream(e)
    })
}

fn token_error(state: &AppState, account_id: i32, e: TokenError) -> ApiError {
    match e {
        TokenError::Upstream(u) => {
            state.accounts.on_error(account_id, &u, now_ms());
            ApiError::Upstream(u)
        }
        TokenError::Database(d) => ApiError::from(d),
        TokenError::NoSuchAccount(_) => ApiError::NoAccount {
            message: "the account was removed while the request was waiting for it".into(),
            retry_after: Some(1),
        },
    }
}
