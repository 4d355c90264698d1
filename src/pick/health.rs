//! The health state machine of one account (protocol doc §6.2 and §9): what an upstream error
//! does to the account that produced it, what a success does, and when a pause is over. Pure
//! functions of the error class, the account's recent trouble and the time; the pool applies
//! the result, logs it and writes it back to the database.
//!
//! | error class | account |
//! |---|---|
//! | request invalid, input too long, invalid model | untouched (the client's fault) |
//! | model overloaded | untouched (capacity, not the account) |
//! | access token refused | refreshed and retried by the caller; refused again: a failure |
//! | refresh token invalid, client registration expired, profileArn required | disabled, with the reason |
//! | suspended | suspended, never retried automatically |
//! | monthly / daily quota | paused until the 1st of next month / next midnight, UTC |
//! | throttled | cooling down, 30 s doubling on every throttle in a row, capped |
//! | access denied, refresh rejected | cooling down for a fixed time |
//! | 5xx, network, timeout, corrupt stream | counted; N in a row within the window: cooling down |
//! | unreachable (DNS, refused connection) | untouched, not counted (Amazon Q was never reached) |

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::db::accounts::Health;
use crate::q::error::{first_of_next_month_utc, next_midnight_utc, ErrorClass, UpstreamError};
use crate::q::token::permanent_reason;

/// The tunable numbers of the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// First cooldown after a throttle; doubled for every further throttle without a success.
    pub throttle_base: Duration,
    /// Longest throttle cooldown.
    pub throttle_cap: Duration,
    /// Failures in a row (5xx, network, ...) that make an account cool down.
    pub failure_threshold: u32,
    /// ... when they all happen within this window.
    pub failure_window: Duration,
    /// How long an account cools down after too many failures (the seed's 30 minutes).
    pub failure_cooldown: Duration,
    /// How long an account rests after a refusal we do not understand (access denied, a
    /// rejected token refresh).
    pub denied_cooldown: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            throttle_base: Duration::from_secs(30),
            throttle_cap: Duration::from_secs(15 * 60),
            failure_threshold: 5,
            failure_window: Duration::from_secs(10 * 60),
            failure_cooldown: Duration::from_secs(30 * 60),
            denied_cooldown: Duration::from_secs(5 * 60),
        }
    }
}

/// An account's health as the pool sees it: the state, until when (milliseconds since the
/// epoch; the database keeps whole seconds) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub health: Health,
    pub until_ms: Option<i64>,
    pub reason: Option<String>,
}

impl State {
    pub fn active() -> State {
        State {
            health: Health::Active,
            until_ms: None,
            reason: None,
        }
    }

    /// From the database's columns.
    pub fn from_row(health: &str, until: Option<i64>, reason: Option<&str>) -> State {
        State {
            health: Health::parse(health),
            until_ms: until.map(|s| s.saturating_mul(1000)),
            reason: reason.map(str::to_owned),
        }
    }

    /// `health_until` for the database: whole seconds, rounded up so the pause never looks
    /// shorter than it is.
    pub fn until_secs(&self) -> Option<i64> {
        self.until_ms
            .map(|ms| ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) > 0))
    }

    /// Paused until a time that has not come yet.
    pub fn paused(&self, now_ms: i64) -> bool {
        match self.health {
            Health::Active => false,
            Health::Cooling | Health::Quota => self.until_ms.is_none_or(|u| u > now_ms),
            Health::Disabled | Health::Suspended => true,
        }
    }

    /// A pause whose end has come: the account is back.
    pub fn pause_over(&self, now_ms: i64) -> bool {
        matches!(self.health, Health::Cooling | Health::Quota)
            && self.until_ms.is_some_and(|u| u <= now_ms)
    }

    /// "cooling until 14:05:07 UTC: throttled", for the log.
    pub fn describe(&self) -> String {
        let mut text = self.health.as_str().to_owned();
        if let Some(until) = self
            .until_ms
            .and_then(DateTime::<Utc>::from_timestamp_millis)
        {
            text.push_str(&until.format(" until %Y-%m-%d %H:%M:%S UTC").to_string());
        }
        if let Some(reason) = &self.reason {
            text.push_str(": ");
            text.push_str(reason);
        }
        text
    }
}

/// What the pool remembers about an account's recent trouble. Kept in memory only: a restart
/// forgets it (the pause it led to is in the database).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trouble {
    /// Throttles since the last success (the backoff exponent).
    pub throttles: u32,
    /// Failures in a row within the current window.
    pub failures: u32,
    /// When the first of those failures happened.
    pub window_start_ms: i64,
}

/// What an error does to the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing: the account is fine.
    None,
    /// One more failure in a row, not yet enough to pause.
    Counted(u32),
    /// The account goes into this state.
    Enter(State),
}

/// The cooldown after the `n`-th throttle in a row (n ≥ 1): base, 2 × base, 4 × base, ... up to
/// the cap.
pub fn throttle_backoff(cfg: &HealthConfig, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
    cfg.throttle_base
        .checked_mul(factor)
        .unwrap_or(cfg.throttle_cap)
        .min(cfg.throttle_cap)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn cooling(now_ms: i64, pause: Duration, reason: String) -> Effect {
    Effect::Enter(State {
        health: Health::Cooling,
        until_ms: Some(now_ms.saturating_add(millis(pause))),
        reason: Some(reason),
    })
}

/// What `err` (from a chat call or a token refresh of this account) does to it.
pub fn on_error(
    cfg: &HealthConfig,
    trouble: &mut Trouble,
    err: &UpstreamError,
    now_ms: i64,
) -> Effect {
    let now = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default();
    let until = |fallback: fn(DateTime<Utc>) -> DateTime<Utc>| {
        Some(
            err.until
                .unwrap_or_else(|| fallback(now))
                .timestamp_millis(),
        )
    };
    let disabled = |health: Health, reason: &str| {
        Effect::Enter(State {
            health,
            until_ms: None,
            reason: Some(reason.to_owned()),
        })
    };
    match err.class {
        ErrorClass::InvalidRequest
        | ErrorClass::InputTooLong
        | ErrorClass::InvalidModel
        | ErrorClass::OutputLengthExceeded
        | ErrorClass::AuthorizationPending
        | ErrorClass::ModelOverloaded => Effect::None,
        // Amazon Q was never reached (DNS, refused connection): no account is to blame, and
        // counting it would cool down the whole pool during an outage.
        ErrorClass::Unreachable => Effect::None,
        ErrorClass::RefreshTokenInvalid | ErrorClass::ClientRegistrationExpired => disabled(
            Health::Disabled,
            permanent_reason(err.class).unwrap_or("refresh token invalid"),
        ),
        ErrorClass::ProfileRequired => disabled(Health::Disabled, "profileArn required"),
        ErrorClass::Suspended => disabled(Health::Suspended, "suspended by Amazon Q"),
        ErrorClass::MonthlyQuota => Effect::Enter(State {
            health: Health::Quota,
            until_ms: until(first_of_next_month_utc),
            reason: Some("monthly quota exhausted".into()),
        }),
        ErrorClass::DailyQuota => Effect::Enter(State {
            health: Health::Quota,
            until_ms: until(next_midnight_utc),
            reason: Some("daily quota exhausted".into()),
        }),
        ErrorClass::Throttled => {
            trouble.throttles = trouble.throttles.saturating_add(1);
            cooling(
                now_ms,
                throttle_backoff(cfg, trouble.throttles),
                "throttled".into(),
            )
        }
        ErrorClass::AccessDenied => cooling(now_ms, cfg.denied_cooldown, "access denied".into()),
        ErrorClass::RefreshRejected => {
            cooling(now_ms, cfg.denied_cooldown, "token refresh rejected".into())
        }
        ErrorClass::AccessTokenInvalid
        | ErrorClass::ServerError
        | ErrorClass::Network
        | ErrorClass::Timeout
        | ErrorClass::StreamCorrupt => {
            if trouble.failures == 0
                || now_ms.saturating_sub(trouble.window_start_ms) > millis(cfg.failure_window)
            {
                trouble.failures = 1;
                trouble.window_start_ms = now_ms;
            } else {
                trouble.failures += 1;
            }
            if trouble.failures < cfg.failure_threshold.max(1) {
                return Effect::Counted(trouble.failures);
            }
            let n = std::mem::take(&mut trouble.failures);
            cooling(
                now_ms,
                cfg.failure_cooldown,
                format!(
                    "{n} failures in a row (the last: {})",
                    err.class.as_str().replace('_', " ")
                ),
            )
        }
    }
}

/// A request went through: the trouble is forgotten.
pub fn on_success(trouble: &mut Trouble) {
    *trouble = Trouble::default();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::q::error::Stage;

    const NOW: i64 = 1_795_000_000_000; // 2026-11-18T...Z

    fn err(class: ErrorClass) -> UpstreamError {
        UpstreamError::new(class, Stage::Http, "x")
    }

    fn cfg() -> HealthConfig {
        HealthConfig::default()
    }

    fn enter(effect: Effect) -> State {
        match effect {
            Effect::Enter(s) => s,
            other => panic!("expected a transition, got {other:?}"),
        }
    }

    #[test]
    fn client_faults_and_capacity_leave_the_account_untouched() {
        for class in [
            ErrorClass::InvalidRequest,
            ErrorClass::InputTooLong,
            ErrorClass::InvalidModel,
            ErrorClass::ModelOverloaded,
            ErrorClass::OutputLengthExceeded,
        ] {
            let mut t = Trouble::default();
            for _ in 0..50 {
                assert_eq!(on_error(&cfg(), &mut t, &err(class), NOW), Effect::None);
            }
            assert_eq!(t, Trouble::default(), "{class}");
        }
    }

    #[test]
    fn dead_credentials_disable_and_a_ban_suspends() {
        let mut t = Trouble::default();
        let s = enter(on_error(
            &cfg(),
            &mut t,
            &err(ErrorClass::RefreshTokenInvalid),
            NOW,
        ));
        assert_eq!(
            s,
            State {
                health: Health::Disabled,
                until_ms: None,
                reason: Some("refresh token invalid".into())
            }
        );
        let s = enter(on_error(
            &cfg(),
            &mut t,
            &err(ErrorClass::ClientRegistrationExpired),
            NOW,
        ));
        assert_eq!(s.reason.as_deref(), Some("client registration expired"));
        let s = enter(on_error(&cfg(), &mut t, &err(ErrorClass::Suspended), NOW));
        assert_eq!((s.health, s.until_ms), (Health::Suspended, None));
        assert!(s.paused(i64::MAX));
        let s = enter(on_error(
            &cfg(),
            &mut t,
            &err(ErrorClass::ProfileRequired),
            NOW,
        ));
        assert_eq!(s.reason.as_deref(), Some("profileArn required"));
    }

    #[test]
    fn monthly_quota_pauses_until_the_first_of_next_month_utc() {
        let mut t = Trouble::default();
        let s = enter(on_error(
            &cfg(),
            &mut t,
            &err(ErrorClass::MonthlyQuota),
            NOW,
        ));
        assert_eq!(s.health, Health::Quota);
        // NOW is in November 2026.
        assert_eq!(s.until_ms, Some(1_796_083_200_000)); // 2026-12-01T00:00:00Z
        assert_eq!(s.until_secs(), Some(1_796_083_200));
        assert!(s.paused(1_796_083_199_999));
        assert!(s.pause_over(1_796_083_200_000));
        // The classifier's own date wins.
        let mut e = err(ErrorClass::DailyQuota);
        e.until = DateTime::from_timestamp(1_795_046_400, 0);
        let s = enter(on_error(&cfg(), &mut t, &e, NOW));
        assert_eq!(
            (s.health, s.until_ms, s.reason.as_deref()),
            (
                Health::Quota,
                Some(1_795_046_400_000),
                Some("daily quota exhausted")
            )
        );
    }

    #[test]
    fn throttles_back_off_exponentially_up_to_the_cap_and_a_success_resets() {
        let c = HealthConfig {
            throttle_base: Duration::from_secs(30),
            throttle_cap: Duration::from_secs(200),
            ..cfg()
        };
        let mut t = Trouble::default();
        let pauses: Vec<i64> = (0..5)
            .map(|_| {
                let s = enter(on_error(&c, &mut t, &err(ErrorClass::Throttled), NOW));
                assert_eq!(
                    (s.health, s.reason.as_deref()),
                    (Health::Cooling, Some("throttled"))
                );
                (s.until_ms.unwrap() - NOW) / 1000
            })
            .collect();
        assert_eq!(pauses, [30, 60, 120, 200, 200]);
        on_success(&mut t);
        let s = enter(on_error(&c, &mut t, &err(ErrorClass::Throttled), NOW));
        assert_eq!(s.until_ms, Some(NOW + 30_000));
        assert_eq!(throttle_backoff(&c, 1000), Duration::from_secs(200));
    }

    #[test]
    fn failures_in_a_row_within_the_window_cool_down_then_start_over() {
        let c = cfg();
        let mut t = Trouble::default();
        let e = err(ErrorClass::ServerError);
        for n in 1..5 {
            assert_eq!(
                on_error(&c, &mut t, &e, NOW + i64::from(n)),
                Effect::Counted(n)
            );
        }
        let s = enter(on_error(&c, &mut t, &e, NOW + 5));
        assert_eq!(
            s,
            State {
                health: Health::Cooling,
                until_ms: Some(NOW + 5 + 30 * 60 * 1000),
                reason: Some("5 failures in a row (the last: server error)".into())
            }
        );
        assert_eq!(t.failures, 0);
        // A success in between starts the count again.
        for _ in 0..4 {
            on_error(&c, &mut t, &err(ErrorClass::Network), NOW);
        }
        on_success(&mut t);
        assert_eq!(
            on_error(&c, &mut t, &err(ErrorClass::Timeout), NOW),
            Effect::Counted(1)
        );
        // So does a failure after the window has passed.
        for _ in 0..3 {
            on_error(&c, &mut t, &e, NOW);
        }
        assert_eq!(t.failures, 4);
        assert_eq!(
            on_error(&c, &mut t, &e, NOW + 10 * 60 * 1000 + 1),
            Effect::Counted(1)
        );
    }

    #[test]
    fn an_unreachable_upstream_is_never_counted() {
        let c = cfg();
        let mut t = Trouble::default();
        for _ in 0..20 {
            assert_eq!(
                on_error(&c, &mut t, &err(ErrorClass::Unreachable), NOW),
                Effect::None
            );
        }
        assert_eq!(t, Trouble::default());
    }

    #[test]
    fn refusals_we_do_not_understand_rest_for_a_fixed_time() {
        let mut t = Trouble::default();
        let s = enter(on_error(
            &cfg(),
            &mut t,
            &err(ErrorClass::AccessDenied),
            NOW,
        ));
        assert_eq!(
            (s.health, s.until_ms, s.reason.as_deref()),
            (Health::Cooling, Some(NOW + 300_000), Some("access denied"))
        );
        assert!(!s.paused(NOW + 300_000) && s.pause_over(NOW + 300_000));
    }

    #[test]
    fn rows_round_trip_with_whole_seconds_rounded_up() {
        let s = State::from_row("cooling", Some(100), Some("throttled"));
        assert_eq!(s.until_ms, Some(100_000));
        assert_eq!(s.until_secs(), Some(100));
        let s = State {
            until_ms: Some(100_001),
            ..s
        };
        assert_eq!(s.until_secs(), Some(101));
        assert_eq!(
            s.describe(),
            "cooling until 1970-01-01 00:01:40 UTC: throttled"
        );
        assert!(!State::active().paused(0));
        assert_eq!(State::from_row("active", None, None), State::active());
    }
}
