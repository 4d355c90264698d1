//! How to reach Amazon Q: endpoints (overridable so tests point at the fake), dialect, the
//! user-agent strings of protocol doc §3.1, origin, and timeouts. Built from [`UpstreamArgs`].

use std::time::Duration;

use crate::cli::UpstreamArgs;
use crate::db::accounts::{Account, AuthKind};

pub const DEFAULT_API_ENDPOINT: &str = "https://q.us-east-1.amazonaws.com/";
pub const DEFAULT_USER_AGENT: &str = "aws-sdk-rust/1.3.9 ua/2.1 api/codewhispererstreaming/0.1.11582 os/linux lang/rust/1.87.0 md/appVersion-1.19.7 app/AmazonQ-For-CLI";
pub const DEFAULT_AMZ_USER_AGENT: &str = "aws-sdk-rust/1.3.9 ua/2.1 api/codewhispererstreaming/0.1.11582 os/linux lang/rust/1.87.0 m/F app/AmazonQ-For-CLI";
pub const DEFAULT_OIDC_USER_AGENT: &str = "aws-sdk-rust/1.3.9 os/linux lang/rust/1.87.0";
pub const DEFAULT_OIDC_AMZ_USER_AGENT: &str =
    "aws-sdk-rust/1.3.9 ua/2.1 api/ssooidc/1.88.0 os/linux lang/rust/1.87.0 m/E app/AmazonQ-For-CLI";
pub const TARGET_GENERATE: &str = "AmazonCodeWhispererStreamingService.GenerateAssistantResponse";

/// The two wire styles of the chat call (protocol doc §0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Dialect {
    /// AWS-JSON RPC: `POST /` with `X-Amz-Target` (what the Amazon Q CLI sends).
    A,
    /// REST: `POST /generateAssistantResponse` (what Kiro sends).
    B,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Set explicitly: used for every account. Unset: `https://q.{region}.amazonaws.com/`, the
    /// region taken from the account's profile ARN (as the official client does), else us-east-1.
    pub api_endpoint: Option<String>,
    pub dialect: Dialect,
    /// Set: every IdC refresh goes there. Unset: `https://oidc.{account region}.amazonaws.com/token`.
    pub token_endpoint: Option<String>,
    /// Set: every social refresh goes there. Unset: `https://prod.{region}.auth.desktop.kiro.dev/refreshToken`.
    pub social_token_endpoint: Option<String>,
    pub user_agent: String,
    pub amz_user_agent: String,
    pub origin: String,
    pub connect_timeout: Duration,
    /// Longest wait for the response head, and between two chunks of the event stream.
    pub idle_timeout: Duration,
    /// Refresh an access token this long before it expires.
    pub refresh_margin: Duration,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            api_endpoint: None,
            dialect: Dialect::A,
            token_endpoint: None,
            social_token_endpoint: None,
            user_agent: DEFAULT_USER_AGENT.into(),
            amz_user_agent: DEFAULT_AMZ_USER_AGENT.into(),
            origin: "CLI".into(),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            refresh_margin: Duration::from_secs(300),
        }
    }
}

impl UpstreamConfig {
    pub fn from_args(args: &UpstreamArgs) -> UpstreamConfig {
        UpstreamConfig {
            api_endpoint: args.api_endpoint.clone(),
            dialect: args.dialect,
            token_endpoint: args.token_endpoint.clone(),
            social_token_endpoint: args.social_token_endpoint.clone(),
            user_agent: args.user_agent.clone(),
            amz_user_agent: args.amz_user_agent.clone(),
            origin: args.origin.clone(),
            connect_timeout: Duration::from_secs(args.connect_timeout),
            idle_timeout: Duration::from_secs(args.idle_timeout),
            refresh_margin: Duration::from_secs(args.refresh_margin),
        }
    }

    /// Where an account's chat call goes, with the dialect's path.
    pub fn chat_url(&self, account: &Account) -> String {
        let base = match &self.api_endpoint {
            Some(url) => url.clone(),
            None => {
                let region = account
                    .profile_arn
                    .as_deref()
                    .and_then(|arn| arn.split(':').nth(3))
                    .filter(|r| !r.is_empty())
                    .unwrap_or("us-east-1");
                format!("https://q.{region}.amazonaws.com/")
            }
        };
        match self.dialect {
            Dialect::A => base,
            Dialect::B => format!("{}/generateAssistantResponse", base.trim_end_matches('/')),
        }
    }

    /// Where an account refreshes its access token (protocol doc §1.1 and §1.3).
    pub fn token_url(&self, account: &Account) -> String {
        match account.kind() {
            AuthKind::Idc => self
                .token_endpoint
                .clone()
                .unwrap_or_else(|| format!("https://oidc.{}.amazonaws.com/token", account.region)),
            AuthKind::Social => self.social_token_endpoint.clone().unwrap_or_else(|| {
                format!(
                    "https://prod.{}.auth.desktop.kiro.dev/refreshToken",
                    account.region
                )
            }),
        }
    }
}
