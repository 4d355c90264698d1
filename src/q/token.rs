//! Access-token refresh (protocol doc §1): the AWS SSO-OIDC `CreateToken` call for Builder ID /
//! Identity Center accounts and the Kiro social `refreshToken` call, storing what comes back
//! (a rotated refresh token always), classifying failures, and making refresh single-flight
//! per account so a rotated refresh token is never spent twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::json;

use super::config::{UpstreamConfig, DEFAULT_OIDC_AMZ_USER_AGENT, DEFAULT_OIDC_USER_AGENT};
use super::error::{classify_token_refresh, ErrorClass, Stage, UpstreamError};
use crate::db::{self, accounts, accounts::Account, accounts::AuthKind, accounts::Health, DbError};

/// Largest token-endpoint answer we read.
const MAX_TOKEN_BODY: usize = 64 * 1024;

/// A usable access token of one account. `Debug` does not print the token.
#[derive(Clone)]
pub struct AccessToken {
    pub account_id: i32,
    pub token: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("account_id", &self.account_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What a successful refresh returned.
#[derive(Clone)]
pub struct Grant {
    pub access_token: String,
    pub expires_at: i64,
    /// A rotated refresh token, when the endpoint returned one.
    pub refresh_token: Option<String>,
    /// Kiro social refreshes return the profile ARN to use.
    pub profile_arn: Option<String>,
}

/// The token endpoints' success body; every field optional, unknown and null ones ignored
/// (they grew nullable fields in 2026, §1.1).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenResponse {
    access_token: Option<String>,
    expires_in: Option<f64>,
    refresh_token: Option<String>,
    profile_arn: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("database: {0}")]
    Database(#[from] DbError),
    #[error("account {0} does not exist")]
    NoSuchAccount(i32),
}

impl TokenError {
    /// The upstream classification, if the failure came from the token endpoint.
    pub fn upstream(&self) -> Option<&UpstreamError> {
        match self {
            TokenError::Upstream(e) => Some(e),
            _ => None,
        }
    }
}

/// One refresh call to the account's token endpoint. Touches nothing but the network (and the
/// refresh counters).
pub async fn request_refresh(
    client: &awc::Client,
    cfg: &UpstreamConfig,
    account: &Account,
    now: i64,
) -> Result<Grant, UpstreamError> {
    let result = call_token_endpoint(client, cfg, account, now).await;
    crate::metrics::token_refresh(result.is_ok());
    if let Err(e) = &result {
        crate::metrics::upstream_error(e.class.as_str());
    }
    result
}

async fn call_token_endpoint(
    client: &awc::Client,
    cfg: &UpstreamConfig,
    account: &Account,
    now: i64,
) -> Result<Grant, UpstreamError> {
    let url = cfg.token_url(account);
    let (request, body) = match account.kind() {
        AuthKind::Idc => {
            let (Some(client_id), Some(client_secret)) =
                (&account.client_id, &account.client_secret)
            else {
                return Err(UpstreamError::new(
                    ErrorClass::ClientRegistrationExpired,
                    Stage::TokenRefresh,
                    "the account has no client id or client secret",
                ));
            };
            let body = json!({
                "clientId": client_id,
                "clientSecret": client_secret,
                "grantType": "refresh_token",
                "refreshToken": account.refresh_token,
            });
            let request = client
                .post(&url)
                .insert_header(("content-type", "application/json"))
                .insert_header(("user-agent", DEFAULT_OIDC_USER_AGENT))
                .insert_header(("x-amz-user-agent", DEFAULT_OIDC_AMZ_USER_AGENT))
                .insert_header(("amz-sdk-request", "attempt=1; max=3"))
                .insert_header(("amz-sdk-invocation-id", uuid::Uuid::new_v4().to_string()));
            (request, body)
        }
        AuthKind::Social => {
            let body = json!({ "refreshToken": account.refresh_token });
            let request = client
                .post(&url)
                .insert_header(("content-type", "application/json"))
                .insert_header(("user-agent", "KiroIDE"));
            (request, body)
        }
    };
    let mut response = request
        .timeout(cfg.idle_timeout)
        .send_body(body.to_string())
        .await
        .map_err(|e| transport_error(&e))?;
    let status = response.status().as_u16();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response
        .body()
        .limit(MAX_TOKEN_BODY)
        .await
        .map_err(|e| UpstreamError::network(&format!("reading the token response: {e}")))?;
    if status != 200 {
        return Err(classify_token_refresh(
            status,
            error_type.as_deref(),
            &bytes,
        ));
    }
    let parsed: TokenResponse = serde_json::from_slice(&bytes).map_err(|_| {
        UpstreamError::new(
            ErrorClass::ServerError,
            Stage::TokenRefresh,
            "the token response is not JSON",
        )
    })?;
    let access_token = parsed
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            UpstreamError::new(
                ErrorClass::ServerError,
                Stage::TokenRefresh,
                "the token response has no accessToken",
            )
        })?;
    let expires_in = parsed
        .expires_in
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(3600.0);
    Ok(Grant {
        access_token,
        expires_at: now + expires_in as i64,
        refresh_token: parsed.refresh_token.filter(|t| !t.is_empty()),
        profile_arn: parsed.profile_arn.filter(|a| !a.is_empty()),
    })
}

/// A transport failure as an [`UpstreamError`]; awc's messages hold no request data.
pub fn transport_error(e: &awc::error::SendRequestError) -> UpstreamError {
    use awc::error::SendRequestError as E;
    match e {
        E::Timeout => UpstreamError::timeout("no answer from the token endpoint in time"),
        E::Connect(awc::error::ConnectError::Timeout) => {
            UpstreamError::timeout("connecting timed out")
        }
        other => UpstreamError::network(&other.to_string()),
    }
}

/// When the caller wants a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// The stored one while it has more than the refresh margin left.
    Usable,
    /// A new one, unless another caller already replaced the one that was refused.
    ReplacingRefused,
    /// A new one, now (`accounts refresh`).
    Fresh,
    /// A new one unless the stored token already outlives the one expiring at this time
    /// (refreshing ahead of expiry: another caller may have refreshed meanwhile).
    Outliving(i64),
}

/// Hands out access tokens, refreshing them when due. One refresh at a time per account: callers
/// that arrive while a refresh runs wait for it and use its result.
pub struct Refresher {
    pool: db::Pool,
    cfg: Arc<UpstreamConfig>,
    locks: Mutex<HashMap<i32, Arc<tokio::sync::Mutex<()>>>>,
    /// The last token loaded or refreshed per account: a usable one is handed out from here,
    /// with no database read and no wait on the account's refresh lock (the hot path of every
    /// request). A refused token is never served from here again: replacing it goes to the
    /// database and refreshes.
    known: Mutex<HashMap<i32, AccessToken>>,
}

impl Refresher {
    pub fn new(pool: db::Pool, cfg: Arc<UpstreamConfig>) -> Refresher {
        Refresher {
            pool,
            cfg,
            locks: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// A token with more than the refresh margin left, refreshing if needed.
    pub async fn access_token(
        &self,
        client: &awc::Client,
        account_id: i32,
    ) -> Result<AccessToken, TokenError> {
        self.get(client, account_id, Want::Usable, None).await
    }

    /// After Amazon Q refused `refused`: a new token, unless another caller already got one.
    pub async fn replace_refused(
        &self,
        client: &awc::Client,
        account_id: i32,
        refused: &str,
    ) -> Result<AccessToken, TokenError> {
        self.get(client, account_id, Want::ReplacingRefused, Some(refused))
            .await
    }

    /// Refreshes now, whatever the stored token's expiry.
    pub async fn refresh_now(
        &self,
        client: &awc::Client,
        account_id: i32,
    ) -> Result<AccessToken, TokenError> {
        self.get(client, account_id, Want::Fresh, None).await
    }

    /// Refreshes ahead of expiry the token that expires at `expires_at`, unless it has been
    /// replaced by a longer-lived one meanwhile.
    pub async fn refresh_ahead(
        &self,
        client: &awc::Client,
        account_id: i32,
        expires_at: i64,
    ) -> Result<AccessToken, TokenError> {
        self.get(client, account_id, Want::Outliving(expires_at), None)
            .await
    }

    fn lock_for(&self, account_id: i32) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(account_id).or_default().clone()
    }

    async fn get(
        &self,
        client: &awc::Client,
        account_id: i32,
        want: Want,
        refused: Option<&str>,
    ) -> Result<AccessToken, TokenError> {
        let margin = self.cfg.refresh_margin.as_secs() as i64;
        if want == Want::Usable {
            if let Some(known) = self.known(account_id) {
                if known.expires_at > db::now() + margin {
                    return Ok(known);
                }
            }
        }
        let lock = self.lock_for(account_id);
        let _guard = lock.lock().await;
        let account = self.load(account_id).await?;
        let now = db::now();
        if let (Some(token), Some(expires_at)) =
            (&account.access_token, account.access_token_expires_at)
        {
            let reuse = match want {
                Want::Usable => expires_at > now + margin,
                Want::ReplacingRefused => Some(token.as_str()) != refused && expires_at > now,
                Want::Fresh => false,
                Want::Outliving(old) => expires_at > old,
            };
            if reuse {
                return Ok(self.remember(AccessToken {
                    account_id,
                    token: token.clone(),
                    expires_at,
                }));
            }
        }
        log::debug!(target: "amq2api::q::token", "refreshing the access token of account {} ({})", account.id, account.name);
        match request_refresh(client, &self.cfg, &account, now).await {
            Ok(grant) => {
                let stored = grant.clone();
                self.blocking(move |conn| {
                    accounts::store_tokens(
                        conn,
                        account_id,
                        &stored.access_token,
                        stored.expires_at,
                        stored.refresh_token.as_deref(),
                        stored.profile_arn.as_deref(),
                        db::now(),
                    )
                })
                .await?;
                log::info!(target: "amq2api::q::token", "refreshed the access token of account {} ({})", account.id, account.name);
                Ok(self.remember(AccessToken {
                    account_id,
                    token: grant.access_token,
                    expires_at: grant.expires_at,
                }))
            }
            Err(err) => {
                log::warn!(target: "amq2api::q::token", "refreshing account {} ({}) failed: {err}", account.id, account.name);
                if let Some(reason) = permanent_reason(err.class) {
                    self.blocking(move |conn| {
                        accounts::set_health(
                            conn,
                            account_id,
                            Health::Disabled,
                            None,
                            Some(reason),
                            db::now(),
                        )
                    })
                    .await?;
                }
                Err(err.into())
            }
        }
    }

    fn known(&self, account_id: i32) -> Option<AccessToken> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.get(&account_id).cloned()
    }

    fn remember(&self, token: AccessToken) -> AccessToken {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.insert(token.account_id, token.clone());
        token
    }

    async fn load(&self, account_id: i32) -> Result<Account, TokenError> {
        self.blocking(move |conn| accounts::find(conn, account_id))
            .await?
            .ok_or(TokenError::NoSuchAccount(account_id))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut diesel::SqliteConnection) -> diesel::QueryResult<T> + Send + 'static,
    ) -> Result<T, DbError> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            Ok(f(&mut conn)?)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }
}

/// The health reason recorded for a refresh failure that needs an operator; `None` for
/// transient ones (429, 5xx, network), which leave the account untouched.
pub fn permanent_reason(class: ErrorClass) -> Option<&'static str> {
    match class {
        ErrorClass::RefreshTokenInvalid => Some("refresh token invalid"),
        ErrorClass::ClientRegistrationExpired => Some("client registration expired"),
        _ => None,
    }
}
