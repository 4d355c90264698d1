//! The background token refresh of `serve`: access tokens of accounts in use are refreshed
//! before they expire (the seed's "5 minutes before expiry", the refresh margin), so requests
//! rarely wait for a refresh. Each account's moment is jittered by up to a minute so accounts
//! imported together are not refreshed in lockstep; idle accounts are left alone (they are
//! refreshed when a request needs them), and no account is refreshed ahead more than once in
//! [`MIN_GAP`]: frequent automated refreshes are a suspension risk.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use super::now_ms;
use crate::http::AppState;

/// How often the task looks for tokens to refresh (± a few seconds of jitter).
const TICK: Duration = Duration::from_secs(10);
/// Only accounts that served a request within this time are refreshed ahead.
const ACTIVE_WITHIN: Duration = Duration::from_secs(60 * 60);
/// Never refresh one account ahead more often than this.
pub const MIN_GAP: Duration = Duration::from_secs(10 * 60);

/// Runs until the server stops. Spawn it on the server's actix runtime (awc is not `Send`).
pub async fn run(state: Arc<AppState>, client: awc::Client) {
    loop {
        let jitter = rand::rng().random_range(0..3000);
        actix_web::rt::time::sleep(TICK + Duration::from_millis(jitter)).await;
        tick(&state, &client).await;
    }
}

/// One pass: refreshes, one after the other, every account that is due.
pub async fn tick(state: &AppState, client: &awc::Client) {
    let due = state.accounts.due_for_refresh(
        now_ms(),
        state.upstream.refresh_margin,
        ACTIVE_WITHIN,
        MIN_GAP,
    );
    for (id, expires_at) in due {
        state.accounts.refreshed_ahead(id, now_ms());
        match state.refresher.refresh_ahead(client, id, expires_at).await {
            Ok(token) => state
                .accounts
                .on_refreshed(id, &token.token, token.expires_at),
            Err(e) => {
                if let Some(u) = e.upstream() {
                    state.accounts.on_error(id, u, now_ms());
                }
                // The refresher has logged the failure.
            }
        }
    }
}
